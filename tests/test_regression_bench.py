"""``nascsim bench``: the regression benchmark, end to end on a small suite (few cells, short
searches, the stand-in surrogate), and its statistics against scipy and published examples.

Specification: NASC passes against its own baseline on other seed sets; a deliberately worse
method posing as NASC fails; a baseline made with another surrogate, table or suite is refused
unless asked; exit codes 0 / 1 / 2; reports written atomically; bad input is one line, exit 2,
nothing written. No test hard-codes a search result: expectations come from the runs.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from surrogate_fixtures import make_stand_in_surrogate, ship_only

from nascsim.bench import stats
from nascsim.cli import cli
from nascsim.methods import nasc, random_search, registry
from nascsim.methods.registry import MethodSpec

SEEDS = 12
SUITE = f"""format = "nascsim-bench-suite"
name = "test-small"
version = 1
methods = ["nasc"]
reference = "nasc"
seeds = {SEEDS}
check_confidence = 0.99

[options]
steps = 300

[[group]]
space = "fbnet"
threshold_ms = [20, 30]
loss = [0, 0.5]

[tolerance]
feasible_rate = 0.15
accuracy = 0.005
accuracy_feasible = 0.005
T_ms = 1.5
"""


# -- deliberately worse methods (module level: the registry hands them to the search by reference)

def random_posing_as_nasc(config, surrogates, space, trace=False):
    return random_search.run(config, surrogates, space, trace)


def nasc_without_latency_term(config, surrogates, space, trace=False):
    return nasc.run(config.with_(eps_lat=0.0), surrogates, space, trace)


# -- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The small suite and two different stand-in surrogates, as files."""
    from nascsim.surrogate import save_surrogate

    d = tmp_path_factory.mktemp("bench-inputs")
    (d / "small.toml").write_text(SUITE)
    return {"suite": str(d / "small.toml"), "dir": d,
            "surrogate": str(save_surrogate(make_stand_in_surrogate("fbnet", 0), d / "stand-in-0.json")),
            "other_surrogate": str(save_surrogate(make_stand_in_surrogate("fbnet", 1), d / "stand-in-1.json"))}


def bench(files, *args, surrogate=None):
    args = ["bench", "--suite", files["suite"], "--surrogate", surrogate or files["surrogate"], "--jobs", "1", *args]
    return CliRunner().invoke(cli, args)


@pytest.fixture(scope="module")
def nasc_baseline(files, tmp_path_factory):
    """A NASC baseline on seeds 0..SEEDS-1, and the bench.json of that run."""
    d = tmp_path_factory.mktemp("bench-baseline")
    r = bench(files, "--out", str(d / "run"), "--save-baseline", str(d / "baseline.json"))
    assert r.exit_code == 0, r.output
    return {"file": str(d / "baseline.json"), "report": json.loads((d / "run" / "bench.json").read_text())}


def one_error_line(r) -> str:
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    return lines[0]


# -- the check against a baseline -----------------------------------------------------------------

@pytest.mark.parametrize("offset", [1, 2, 3, 5, 8])
def test_nasc_passes_against_its_own_baseline_on_other_seed_sets(files, nasc_baseline, tmp_path, offset):
    r = bench(files, "--seed-offset", str(offset * SEEDS), "--baseline", nasc_baseline["file"],
              "--out", str(tmp_path / "out"), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "pass" and doc["baseline"]["regressed"] == 0
    assert doc["baseline"]["checked"] > 0
    assert doc["suite"]["seeds"] == list(range(offset * SEEDS, (offset + 1) * SEEDS))


def test_the_same_seeds_reproduce_the_baseline_exactly(files, nasc_baseline, tmp_path):
    r = bench(files, "--baseline", nasc_baseline["file"], "--out", str(tmp_path / "out"), "--json")
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert report["summary"] == nasc_baseline["report"]["summary"]
    assert all(c["move"] == 0 for c in report["baseline"]["checks"] if c["status"] != "n/a")


@pytest.mark.parametrize("worse", [random_posing_as_nasc, nasc_without_latency_term])
def test_a_deliberately_worse_method_posing_as_nasc_fails_against_the_nasc_baseline(
        files, nasc_baseline, tmp_path, monkeypatch, worse):
    monkeypatch.setitem(registry._REGISTRY, "nasc", MethodSpec("nasc", worse, ("dropout",), "worse", "builtin"))
    r = bench(files, "--seed-offset", str(SEEDS), "--baseline", nasc_baseline["file"], "--out", str(tmp_path / "out"))
    assert r.exit_code == 1, r.output
    assert "REGRESSED" in r.stdout
    doc = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert doc["verdict"] == "regressed" and doc["exit_code"] == 1
    regressed = [c for c in doc["baseline"]["checks"] if c["status"] == "regressed"]
    assert regressed
    for c in regressed:  # each names its cell and metric, how far it moved and that it is beyond noise
        assert c["beyond_noise"] and c["beyond_tolerance"]
        higher_is_better = c["metric"] != "T_ms"
        assert (c["move"] < -c["tolerance"]) if higher_is_better else (c["move"] > c["tolerance"])
        assert f"{c['cell']}" in r.stdout


def test_compare_as_checks_a_method_against_the_baselines_nasc(files, nasc_baseline, tmp_path):
    r = bench(files, "--methods", "random", "--compare-as", "random=nasc", "--seed-offset", str(SEEDS),
              "--baseline", nasc_baseline["file"], "--out", str(tmp_path / "out"), "--json")
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    moves = doc["baseline"]["moves"]
    assert any(m["method"] == "random" and m["against"] == "nasc" and m["status"] == "regressed" for m in moves)
    assert not any(m["method"] == "nasc" and m["status"] == "regressed" for m in moves)


def test_the_verdict_needs_a_move_beyond_both_tolerance_and_noise():
    # higher is better (accuracy, feasibility): a drop beyond tolerance and beyond noise regressed
    assert stats.verdict(-0.02, 0.005, True, True) == (True, stats.REGRESSED)
    assert stats.verdict(-0.02, 0.005, True, False) == (True, stats.WORSE_IN_NOISE)
    assert stats.verdict(-0.004, 0.005, True, True) == (False, stats.OK)
    assert stats.verdict(0.02, 0.005, True, True) == (True, stats.IMPROVED)
    # lower is better (latency): an increase is the worse side
    assert stats.verdict(2.0, 1.0, False, True)[1] == stats.REGRESSED
    assert stats.verdict(-2.0, 1.0, False, True)[1] == stats.IMPROVED
    assert stats.verdict(float("nan"), 1.0, True, False)[1] == stats.NOT_CHECKED


def test_a_check_is_beyond_noise_only_when_the_exact_statistics_say_so():
    from nascsim.bench.compare import check_cell

    def cell(acc, ok):
        return {"seed": list(range(len(acc))), "accuracy": acc, "T_ms": [20.0] * len(acc), "feasible": ok}

    tol = {"feasible_rate": 0.1, "accuracy": 0.0025}
    # 12/20 feasible against 4/20: Fisher's exact p = 0.022, not beyond noise at 99%
    rates = {c.metric: c for c in check_cell("m", "m", "c", cell([0.3] * 20, [True] * 4 + [False] * 16),
                                             cell([0.3] * 20, [True] * 12 + [False] * 8), tol, 0.99)}
    assert rates["feasible_rate"].status == stats.WORSE_IN_NOISE and math.isclose(rates["feasible_rate"].move, -0.4)
    # 20/20 against 10/20 and every accuracy 1 point lower: both beyond noise
    worse = {c.metric: c for c in check_cell("m", "m", "c", cell(list(np.linspace(0.28, 0.29, 20)), [True] * 10 + [False] * 10),
                                             cell(list(np.linspace(0.29, 0.30, 20)), [True] * 20), tol, 0.99)}
    assert worse["feasible_rate"].status == stats.REGRESSED and worse["feasible_rate"].p < 0.01
    assert worse["accuracy"].status == stats.REGRESSED
    assert worse["accuracy"].ci_high < 0 and math.isclose(worse["accuracy"].move, -0.01, abs_tol=1e-12)


def test_the_checks_confidence_holds_for_the_whole_family_of_tests():
    from nascsim.bench.compare import check, per_test_confidence

    def cell(ok):
        return {"seed": list(range(20)), "accuracy": [0.3] * 20, "T_ms": [20.0] * 20, "feasible": ok}

    assert per_test_confidence(0.99, 1) == 0.99
    assert math.isclose(per_test_confidence(0.99, 144), 1 - 0.01 / 144)
    tol = {"feasible_rate": 0.1, "accuracy": 0.0025}
    now, base = cell([True] * 13 + [False] * 7), cell([True] * 20)  # Fisher's exact p = 0.0083
    one = check({"m": {"c": now}}, {"m": {"c": base}}, tol, 0.99)[0]
    assert {c.metric: c.status for c in one}["feasible_rate"] == stats.WORSE_IN_NOISE  # 2 tests: each at 99.5%
    alone = check({"m": {"c": now}}, {"m": {"c": base}}, {"feasible_rate": 0.1}, 0.99)[0]
    assert alone[0].status == stats.REGRESSED  # 1 test: at 99%, p < 0.01


# -- identity -------------------------------------------------------------------------------------

def test_a_baseline_made_with_another_surrogate_is_refused_unless_allowed(files, nasc_baseline, tmp_path):
    out = tmp_path / "out"
    r = bench(files, "--baseline", nasc_baseline["file"], "--out", str(out), surrogate=files["other_surrogate"])
    assert r.exit_code == 2
    line = one_error_line(r)
    assert "surrogates" in line and "--allow-identity-change" in line
    assert not out.exists()
    r = bench(files, "--baseline", nasc_baseline["file"], "--out", str(out), "--allow-identity-change", "--json",
              surrogate=files["other_surrogate"])
    assert r.exit_code in (0, 1), r.output
    doc = json.loads(r.stdout)
    assert any("surrogates" in m for m in doc["baseline"]["identity_mismatches"])


def test_a_baseline_made_with_another_latency_table_or_suite_version_is_refused(files, nasc_baseline, tmp_path):
    import polars as pl

    from nascsim._data import shipped_path

    table = pl.read_parquet(shipped_path("tables") / "hwnasbench_fbnet_cifar.parquet")
    table.with_columns(pl.col("raspi4_latency") * 1.01).write_parquet(tmp_path / "t.parquet")
    r = bench(files, "--baseline", nasc_baseline["file"], "--tables", str(tmp_path / "t.parquet"),
              "--out", str(tmp_path / "a"))
    assert r.exit_code == 2 and "latency table" in one_error_line(r)
    (tmp_path / "v2.toml").write_text(SUITE.replace("version = 1", "version = 2"))
    r = CliRunner().invoke(cli, ["bench", "--suite", str(tmp_path / "v2.toml"), "--surrogate", files["surrogate"],
                                 "--baseline", nasc_baseline["file"], "--out", str(tmp_path / "b")])
    assert r.exit_code == 2 and "suite" in one_error_line(r)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_baseline_records_surrogate_table_engine_and_suite_identity(nasc_baseline):
    ident = json.loads(Path(nasc_baseline["file"]).read_text())["identity"]
    assert ident["suite"]["name"] == "test-small" and ident["suite"]["version"] == 1
    assert set(ident["surrogates"]["fbnet"]) == {"dropout", "no_dropout"}
    assert all(len(v["digest"]) == 16 for v in ident["surrogates"]["fbnet"].values())
    assert ident["surrogates"]["fbnet"]["dropout"]["id"] == make_stand_in_surrogate("fbnet", 0).id
    assert len(ident["tables"]["digest"]) == 16 and ident["nascsim_version"] and ident["engine_digest"]


# -- runs, store, reports ------------------------------------------------------------------------------

def test_the_report_gives_per_cell_figures_and_paired_comparisons_with_intervals(files, tmp_path):
    r = bench(files, "--methods", "nasc,random", "--out", str(tmp_path / "out"))
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "out" / "bench.json").read_text())
    cells = ["fbnet T20 p0", "fbnet T20 p0.5", "fbnet T30 p0", "fbnet T30 p0.5"]
    assert [(s["cell"], s["method"]) for s in doc["summary"]] == [(c, m) for c in cells for m in ("nasc", "random")]
    for s in doc["summary"]:
        assert s["runs"] == SEEDS and 0 <= s["feasible_rate"] <= 1
        for key in ("accuracy", "accuracy_feasible", "T_ms", "T_ms_feasible"):
            assert key in s
    assert [c["cell"] for c in doc["comparisons"]] == cells
    for c in doc["comparisons"]:
        assert c["method"] == "random" and c["reference"] == "nasc" and c["pairs"] == SEEDS
        for key in ("accuracy", "T_ms"):
            assert c[key]["ci_low"] <= c[key]["median_diff"] <= c[key]["ci_high"]
            assert 0 < c[key]["p"] <= 1
        assert 0 < c["feasible"]["p"] <= 1
    md = (tmp_path / "out" / "bench.md").read_text()
    assert md.startswith("# nascsim bench: test-small v1") and "| fbnet T30 p0.5 | random |" in md
    assert "Against the reference (nasc), paired per seed" in r.stdout
    # the surrogate, its data and status from its model card, in every form of the report
    assert doc["provenance"].startswith("accuracy surrogate: synthetic-fbnet-dropout-seed0 (synthetic, ")
    assert doc["provenance"] + "." in md.splitlines() and doc["provenance"] in r.stdout.splitlines()


def test_rerunning_the_same_command_resumes_from_the_store(files, tmp_path):
    out = tmp_path / "out"
    assert bench(files, "--out", str(out)).exit_code == 0
    chunks = sorted(p.name for p in (out / "cells-1" / "runs").iterdir())
    r = bench(files, "--out", str(out))
    assert r.exit_code == 0
    assert f"{2 * 2 * SEEDS} already stored" in r.stderr
    assert sorted(p.name for p in (out / "cells-1" / "runs").iterdir()) == chunks
    assert (out / "cells-1" / "sweep.toml").is_file() and (out / "bench-suite.toml").read_text() == SUITE


def test_report_files_are_written_atomically(files, tmp_path, monkeypatch):
    from nascsim.bench import report

    out = tmp_path / "out"
    assert bench(files, "--out", str(out)).exit_code == 0
    before = {name: (out / name).read_bytes() for name in ("bench.json", "bench.md")}
    doc = json.loads(before["bench.json"])
    doc["wall_s"] = 12345.0

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("nascsim.atomic.os.replace", crash)
    with pytest.raises(OSError):
        report.write(doc, out)
    assert {name: (out / name).read_bytes() for name in before} == before  # old reports whole
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # no partial file left


def test_json_prints_a_machine_summary_on_stdout(files, nasc_baseline, tmp_path):
    r = bench(files, "--baseline", nasc_baseline["file"], "--out", str(tmp_path / "out"), "--json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "pass" and doc["exit_code"] == 0
    assert doc["report"]["json"].endswith("bench.json") and doc["report"]["markdown"].endswith("bench.md")
    assert doc["identity"]["suite"]["name"] == "test-small"


def test_exit_code_is_0_without_a_baseline(files, tmp_path):
    r = bench(files, "--out", str(tmp_path / "out"), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["verdict"] == "no baseline"


# -- user methods -------------------------------------------------------------------------------------

METHOD_MODULE = '''
from nascsim.methods import nasc

def nasc_margin(config, surrogates, space, trace=False):
    """NASC searching against a threshold 10% tighter than the one it is judged at."""
    return nasc.run(config.with_(threshold_ms=0.9 * config.threshold_ms), surrogates, space, trace)
'''


def test_a_method_given_as_a_module_path_is_benchmarked_like_the_builtins(files, tmp_path, monkeypatch):
    (tmp_path / "my_bench_methods.py").write_text(METHOD_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["bench", "--suite", files["suite"], "--surrogate", files["surrogate"], "--jobs", "2",
                                 "--methods", "nasc,my_bench_methods:nasc_margin", "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "bench.json").read_text())
    assert {s["method"] for s in doc["summary"]} == {"nasc", "nasc_margin"}
    assert {c["method"] for c in doc["comparisons"]} == {"nasc_margin"}
    # worker processes ran it: the same rows as a search of NASC at 0.9 T_th in this process
    from nascsim.config import SearchConfig
    from nascsim.methods import run_search

    sur = make_stand_in_surrogate("fbnet", 0)
    rec = run_search(SearchConfig("nasc", 27.0, 0.0, seed=3, steps=300), {"dropout": sur, "no_dropout": sur})
    row = next(s for s in doc["summary"] if s["cell"] == "fbnet T30 p0" and s["method"] == "nasc_margin")
    assert row["runs"] == SEEDS
    from nascsim.sweep.store import open_store

    frame = open_store(out / "cells-1")[1].read()
    mine = frame.filter((frame["method"] == "nasc_margin") & (frame["seed"] == 3) & (frame["threshold_ms"] == 30.0))
    assert mine["T_ms"][0] == rec["T_ms"] and mine["arch"][0].to_list() == rec["arch"]


def test_runs_of_changed_method_code_are_not_resumed(files, tmp_path, monkeypatch):
    (tmp_path / "my_changing_method.py").write_text(METHOD_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    args = ["--methods", "nasc,my_changing_method:nasc_margin", "--out", str(tmp_path / "out")]
    assert bench(files, *args).exit_code == 0
    (tmp_path / "my_changing_method.py").write_text(METHOD_MODULE.replace("0.9 *", "0.8 *"))
    r = bench(files, *args)
    assert r.exit_code == 2 and "code of method nasc_margin" in one_error_line(r)


def test_a_registered_method_is_benchmarked_like_the_builtins(files, tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register_method("nasc-nolat", nasc_without_latency_term, roles=("dropout",))
    r = bench(files, "--methods", "nasc-nolat", "--out", str(tmp_path / "out"))
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert {s["method"] for s in doc["summary"]} == {"nasc", "nasc-nolat"}  # the reference joins
    assert {c["method"] for c in doc["comparisons"]} == {"nasc-nolat"}


# -- suites -------------------------------------------------------------------------------------------

def test_the_shipped_paper_suite_is_the_papers_setting_and_skips_the_extended_space_without_a_surrogate(
        monkeypatch, tmp_path):
    from nascsim.bench.run import plan
    from nascsim.bench.suite import load_suite

    ship_only(monkeypatch, tmp_path, ("fbnet",))
    suite = load_suite("paper")
    assert suite.source == "shipped:paper" and suite.methods == ("nasc", "hwnas", "hwnas-dropout")
    fb, ext = suite.groups
    assert fb.fields["threshold_ms"] == [20.0, 25.0, 30.0, 40.0] and fb.fields["loss"] == [0.0, 0.2, 0.5]
    assert ext.space == "extended" and ext.fields["threshold_ms"] == [15.0] and ext.optional
    p = plan(suite)
    assert [g.space for g, _, _ in p.groups] == ["fbnet"]
    assert p.n_runs == 3 * 4 * 3 * suite.seeds and p.n_searches == 3 * 4 * suite.seeds
    assert any("extended" in note for note in p.notes)


def test_the_shipped_paper_suite_runs_the_extended_cells_once_that_space_ships_its_surrogates(monkeypatch, tmp_path):
    from nascsim.bench.run import plan
    from nascsim.bench.suite import load_suite
    from nascsim.surrogate import save_surrogate

    folder = ship_only(monkeypatch, tmp_path, ("fbnet",))
    save_surrogate(make_stand_in_surrogate("extended", 0, split_dropout_train=0.5), folder / "extended-dropout.json")
    save_surrogate(make_stand_in_surrogate("extended", 1, split_dropout_train=0.0), folder / "extended-no_dropout.json")
    suite = load_suite("paper")
    p = plan(suite)
    assert [g.space for g, _, _ in p.groups] == ["fbnet", "extended"]
    assert p.n_runs == 3 * 4 * 3 * suite.seeds + 3 * 1 * len(suite.groups[1].fields["loss"]) * suite.seeds


def test_the_extended_cells_run_when_a_surrogate_of_that_space_is_given(files, tmp_path):
    from nascsim.surrogate import save_surrogate

    ext = str(save_surrogate(make_stand_in_surrogate("extended", 0), tmp_path / "ext.json"))
    text = SUITE.replace('threshold_ms = [20, 30]\nloss = [0, 0.5]',
                         'threshold_ms = [30]\nloss = [0]\n\n[[group]]\nspace = "extended"\nthreshold_ms = [15]\n'
                         'loss = [0, 0.2]\noptional = true')
    (tmp_path / "s.toml").write_text(text)
    r = CliRunner().invoke(cli, ["bench", "--suite", str(tmp_path / "s.toml"), "--surrogate", ext, "--jobs", "1",
                                 "--out", str(tmp_path / "out"), "--seeds", "3", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert [s["cell"] for s in doc["summary"]] == ["fbnet T30 p0", "extended T15 p0", "extended T15 p0.2"]
    r = CliRunner().invoke(cli, ["bench", "--suite", str(tmp_path / "s.toml"), "--surrogate", files["surrogate"],
                                 "--jobs", "1", "--out", str(tmp_path / "out2"), "--seeds", "3"])
    assert r.exit_code == 0 and "Note: skipped the extended cells" in r.stderr


BAD_SUITES = {
    "not TOML": "format = [",
    "wrong format": SUITE.replace("nascsim-bench-suite", "something-else"),
    "unknown key": SUITE + "\nspeed = 3\n",
    "bad threshold": SUITE.replace("threshold_ms = [20, 30]", "threshold_ms = [20, -5]"),
    "unknown option": SUITE.replace("steps = 300", "stepz = 300"),
    "no groups": SUITE.split("[[group]]")[0] + "[tolerance]\naccuracy = 0.01\n",
    "unknown metric": SUITE.replace("T_ms = 1.5", "speed = 1.5"),
    "negative tolerance": SUITE.replace("T_ms = 1.5", "T_ms = -1"),
    "unknown method": SUITE.replace('methods = ["nasc"]', 'methods = ["nasc", "nope"]'),
    "one seed": SUITE.replace(f"seeds = {SEEDS}", "seeds = 1"),
    "bad confidence": SUITE.replace("check_confidence = 0.99", "check_confidence = 1.5"),
    "duplicate cells": SUITE + '\n[[group]]\nspace = "fbnet"\nthreshold_ms = [30]\n',
    "path in options": SUITE.replace("steps = 300", 'steps = 300\ntables = "/etc/passwd"'),
    "seed per group": SUITE.replace('space = "fbnet"', 'space = "fbnet"\nseed = [1, 2]'),
    "unknown space": SUITE.replace('space = "fbnet"', 'space = "mobilenet"'),
    "bad name": SUITE.replace('name = "test-small"', 'name = "../../x"'),
}


@pytest.mark.parametrize("case", sorted(BAD_SUITES))
def test_a_bad_suite_file_is_one_line_exit_2_and_nothing_written(files, tmp_path, case):
    (tmp_path / "bad.toml").write_text(BAD_SUITES[case])
    out, saved = tmp_path / "out", tmp_path / "b.json"
    r = CliRunner().invoke(cli, ["bench", "--suite", str(tmp_path / "bad.toml"), "--surrogate", files["surrogate"],
                                 "--out", str(out), "--save-baseline", str(saved)])
    assert r.exit_code == 2, (case, r.output)
    assert "bad.toml" in one_error_line(r)
    assert not out.exists() and not saved.exists()


def run_main(args, capsys) -> tuple[int, str, str]:
    """``nascsim ARGS`` as the console script runs it (click usage errors become one line)."""
    from nascsim.cli import main

    with pytest.raises(SystemExit) as e:
        main(args)
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err


def test_bad_flags_are_one_line_exit_2_and_nothing_written(files, tmp_path, capsys):
    (tmp_path / "garbage.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "nascsim-bench-baseline", "format_version": 1,
                                                      "identity": {}, "runs": {}}))
    (tmp_path / "folder").mkdir()
    out, saved = tmp_path / "out", tmp_path / "b.json"
    cases = [["--jobs", "0"], ["--seeds", "1"], ["--seed-offset", "-1"], ["--methods", "nasc,nope"],
             ["--methods", "no_such_module_xyz:fn"], ["--methods", "json:no_such_function"], ["--methods", "nasc,,"],
             ["--reference", "nope"], ["--suite", "no-such-suite"], ["--baseline", str(tmp_path / "missing.json")],
             ["--baseline", str(tmp_path / "garbage.json")], ["--baseline", str(tmp_path / "other.json")],
             ["--save-baseline", str(tmp_path / "folder")], ["--tables", str(tmp_path / "garbage.json")],
             ["--compare-as", "nasc=random"], ["--compare-as", "nasc"], ["--no-such-flag"]]
    for args in cases:
        suite = [] if args[0] == "--suite" else ["--suite", files["suite"]]
        save = [] if args[0] == "--save-baseline" else ["--save-baseline", str(saved)]
        code, stdout, stderr = run_main(["bench", "--surrogate", files["surrogate"], "--out", str(out), *save,
                                         *suite, *args], capsys)
        assert code == 2, (args, stdout, stderr)
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, stderr)
        assert stdout == "" and not out.exists() and not saved.exists(), args


def test_a_folder_holding_something_else_is_refused(files, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    r = bench(files, "--out", str(tmp_path / "out"))
    assert r.exit_code == 2 and "holds no benchmark" in one_error_line(r)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["notes.txt"]


def test_bench_is_listed_by_help_without_loading_it():
    import subprocess

    code = ("import sys; from nascsim.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit: pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('nascsim.bench') or m in ('numba', 'polars')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "  bench " in r.stdout and r.stdout.strip().splitlines()[-1] == "[]"


# -- the statistics against scipy and published examples ---------------------------------------------------

def test_wilcoxon_and_mcnemar_p_values_equal_scipys_exact_tests():
    from scipy import stats as st

    rng = np.random.default_rng(0)
    for n in (1, 4, 7, 12, 20):
        d = rng.normal(0.3, 1.0, n)
        assert math.isclose(stats.wilcoxon_p(d), st.wilcoxon(d, method="exact").pvalue, rel_tol=1e-9)
    for b, c in ((0, 0), (3, 10), (7, 7), (0, 9)):
        expected = 1.0 if b + c == 0 else st.binomtest(b, b + c).pvalue
        assert math.isclose(stats.mcnemar_p(b, c), expected, rel_tol=1e-9)


def test_wilcoxon_with_ties_is_the_exact_permutation_test_over_midranks():
    d = np.array([1.0, -1.0, 2.0, 2.0, 2.0, 3.0, 0.0, -3.0])
    nz = d[d != 0]
    ranks = stats._midranks(np.abs(nz))
    t_obs = ranks[nz > 0].sum()
    ts = [sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product([0, 1], repeat=len(nz))]
    lower = np.mean([t <= t_obs + 1e-9 for t in ts])
    upper = np.mean([t >= t_obs - 1e-9 for t in ts])
    assert math.isclose(stats.wilcoxon_p(d), min(1.0, 2 * min(lower, upper)), rel_tol=1e-12)


def test_the_mann_whitney_null_distribution_is_exact():
    for n, m in ((1, 1), (3, 4), (5, 2), (4, 4)):
        counts = np.zeros(n * m + 1)
        for xs in itertools.combinations(range(n + m), n):  # ranks of the first sample
            counts[sum(xs) - n * (n - 1) // 2] += 1
        np.testing.assert_allclose(stats._mann_whitney_cdf(n, m), np.cumsum(counts) / counts.sum(), rtol=1e-12)


def test_interval_bounds_are_where_the_exact_tests_stop_rejecting():
    from scipy import stats as st

    rng = np.random.default_rng(3)
    x, y = rng.normal(0.5, 1, 11), rng.normal(0, 1, 9)
    est, lo, hi = stats.hodges_lehmann(x, y, 0.95)
    assert lo < est < hi
    assert math.isclose(est, float(np.median(np.subtract.outer(x, y))))
    eps = 1e-9  # just inside the interval the exact test keeps the shift, just outside it rejects it
    assert st.mannwhitneyu(x - (lo + eps), y, method="exact").pvalue > 0.05
    assert st.mannwhitneyu(x - (lo - eps), y, method="exact").pvalue <= 0.05
    assert st.mannwhitneyu(x - (hi - eps), y, method="exact").pvalue > 0.05
    assert st.mannwhitneyu(x - (hi + eps), y, method="exact").pvalue <= 0.05
    d = rng.normal(0.2, 1, 15)
    lo, hi = stats.sign_ci(d, 0.95)
    for m, inside in ((lo + eps, True), (lo - eps, False), (hi - eps, True), (hi + eps, False)):
        k = int((d > m).sum())
        assert (st.binomtest(k, d.size).pvalue > 0.05) == inside
    assert stats.sign_ci(d[:5], 0.95) == (-math.inf, math.inf)  # too few pairs for 95%


def test_fisher_p_values_equal_scipys_exact_test():
    from scipy import stats as st

    for k1, n1, k2, n2 in ((12, 20, 4, 20), (20, 20, 10, 20), (0, 20, 20, 20), (3, 7, 5, 9), (5, 5, 5, 5), (1, 12, 0, 8)):
        expected = st.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue
        assert math.isclose(stats.fisher_p(k1, n1, k2, n2), expected, rel_tol=1e-9), (k1, n1, k2, n2)


def test_the_committed_ci_baseline_measures_the_shipped_suite_surrogates_and_table():
    # .ci/bench-baseline.json is what the README's CI job checks against: a new shipped surrogate
    # or table needs a new baseline (`nascsim bench --save-baseline .ci/bench-baseline.json`)
    from nascsim.bench.baseline import load_baseline
    from nascsim.bench.identity import mismatches
    from nascsim.bench.run import plan
    from nascsim.bench.suite import load_suite

    saved = load_baseline(Path(__file__).resolve().parents[1] / ".ci" / "bench-baseline.json")
    suite = load_suite()
    current = plan(suite).identity
    assert mismatches(saved["identity"], current) == []
    assert saved["seeds"] == suite.seed_list()
    assert sorted(saved["runs"]) == sorted(suite.methods)
    # ... and was recorded with the search code it ships with (else the report's "search code
    # changed since the baseline" note is wrong from the first run): after a change to
    # ENGINE_SOURCES or a method, `nascsim bench --save-baseline .ci/bench-baseline.json`
    redo = "re-record .ci/bench-baseline.json (nascsim bench --jobs 2 --out /tmp/b --save-baseline .ci/bench-baseline.json)"
    assert saved["identity"]["engine_digest"] == current["engine_digest"], redo
    assert saved["identity"]["methods"] == current["methods"], redo
    assert saved["identity"]["nascsim_version"] == current["nascsim_version"], redo


def test_the_engine_digest_is_a_function_of_the_sources_text_alone(tmp_path):
    """Not of the machine or the checkout: a copy of the sources with Windows line endings (git's
    ``core.autocrlf``) elsewhere on disk has the same digest; a changed line changes it."""
    from nascsim.bench.identity import ENGINE_SOURCES, engine_digest

    package = Path(__file__).resolve().parents[1] / "nascsim"
    for name in ENGINE_SOURCES:
        copy = tmp_path / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes((package / name).read_bytes().replace(b"\n", b"\r\n"))
    assert engine_digest(tmp_path) == engine_digest()
    first = tmp_path / ENGINE_SOURCES[0]
    first.write_bytes(first.read_bytes() + b"# changed\r\n")
    assert engine_digest(tmp_path) != engine_digest()
