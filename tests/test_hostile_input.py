"""The input contract of the commands ``search``, ``sweep``, ``report``, ``latency`` and ``devices``:
a bad flag or a bad file ends in exactly one line on stderr naming the bad value, exit code 2,
and nothing written (the working folder's tree, sizes and times, is the same before and after).

The table below holds one case per class of bad input found so far (issue 13), each run through
the real entry point (``nascsim.cli.main``) in this process; a few run as ``python -m nascsim`` too.
Property tests (hypothesis) fuzz the configs; the grid parsers are fuzzed in test_sweep_grid.py.
"""

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _cli_helpers import run_in_process as nascsim_in_process
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from surrogate_fixtures import make_stand_in_surrogate

from nascsim.config import SearchConfig
from nascsim.validate import RULES

ARCH = ",".join(["k3_e1"] * 22)
TINY = ["--thresholds", "20,30", "--loss", "0,0.3", "--seeds", "2", "--steps", "20"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A stand-in surrogate, a second one, and a finished tiny sweep, outside the test's folder."""
    from nascsim.surrogate import save_surrogate

    root = tmp_path_factory.mktemp("hostile")
    sur = save_surrogate(make_stand_in_surrogate("fbnet", 0), root / "stand-in.json")
    other = save_surrogate(make_stand_in_surrogate("fbnet", 1), root / "other.json")
    code, _, err = nascsim_in_process(["sweep", *TINY, "--surrogate", str(sur), "--out", str(root / "store"),
                                       "--jobs", "1", "--no-report", "--quiet"], root)
    assert code == 0, err
    return {"sur": str(sur), "other": str(other), "store": root / "store"}


def tree(root: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1, p.stat().st_mtime_ns)
                  for p in root.rglob("*"))


@pytest.fixture
def workdir(tmp_path, files):
    """The test's working folder, holding what the cases point at: a copy of a finished store
    (``store``), a store whose chunks are all damaged (``ruined``), a folder of someone else's files
    (``notes``), a file (``file.txt``), sweep files bad in several ways."""
    shutil.copytree(files["store"], tmp_path / "store")
    shutil.copytree(files["store"], tmp_path / "ruined")
    for chunk in (tmp_path / "ruined" / "runs").iterdir():
        chunk.write_bytes(chunk.read_bytes()[:50])
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("mine")
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "garbage.toml").write_bytes(b"\x00\xff[grid")
    (tmp_path / "table.parquet").write_text("not a table")
    (tmp_path / "nogrid.toml").write_text("grid = 3\n[surrogate]\npath = 'default'\nid = 'x'\n")
    big = (files["store"] / "sweep.toml").read_text().replace("steps = [20]", "steps = [100000000000000000000]")
    (tmp_path / "bigsteps").mkdir()
    (tmp_path / "bigsteps" / "sweep.toml").write_text(big)
    moved = (files["store"] / "sweep.toml").read_text().replace(files["sur"], files["other"])
    (tmp_path / "changed").mkdir()
    (tmp_path / "changed" / "sweep.toml").write_text(moved)
    (tmp_path / "nosweep").mkdir()
    return tmp_path


S = ["search", "--steps", "20", "--surrogate", "{sur}"]
W = ["sweep", *TINY, "--surrogate", "{sur}", "--jobs", "1"]
L = ["latency", "--arch", ARCH, "--split", "3"]

# (case id, command line, text the one line must contain)
CASES = [
    # search: numbers out of range, NaN, infinity, integers past int64, huge lists
    ("search-steps-2**63", [*S, "--steps", "9223372036854775808"], "9223372036854775808"),
    ("search-steps-1e30", [*S, "--steps", "1e30"], "1e30"),
    ("search-steps-1e5000", [*S, "--steps", "1e5000"], "1e5000"),
    ("search-steps-0", [*S, "--steps", "0"], "got 0"),
    ("search-eps-lat-nan", [*S, "--eps-lat", "nan"], "nan"),
    ("search-eps-lat-inf", [*S, "--eps-lat", "inf"], "inf"),
    ("search-eps-lat-negative", [*S, "--eps-lat", "-1"], "-1"),
    ("search-eps-loss-nan", [*S, "--eps-loss", "nan"], "nan"),
    ("search-eps-both-0", [*S, "--eps-loss", "0", "--eps-lat", "0"], "both 0"),
    ("search-lam-2**40", [*S, "--lam", "1099511627776"], "1099511627776"),
    ("search-lam-1", [*S, "--lam", "1"], "got 1"),
    ("search-steps-x-lam", [*S, "--steps", "10000000", "--lam", "1000"], "steps x lam"),
    ("search-threshold-nan", [*S, "--threshold", "nan"], "nan"),
    ("search-threshold-1e400", [*S, "--threshold", "1e400"], "inf"),
    ("search-threshold-0", [*S, "--threshold", "0"], "got 0"),
    ("search-loss-1", [*S, "--loss", "1"], "got 1"),
    ("search-loss-nan", [*S, "--loss", "nan"], "nan"),
    ("search-seed-negative", [*S, "--seed", "-1"], "-1"),
    ("search-seed-2**63", [*S, "--seed", "9223372036854775808"], "9223372036854775808"),
    ("search-bits-inf", [*S, "--bits", "inf"], "inf"),
    ("search-bits-0.5", [*S, "--bits", "0.5"], "0.5"),
    ("search-bandwidth-inf", [*S, "--bandwidth", "inf"], "inf"),
    ("search-bandwidth-0", [*S, "--bandwidth", "0"], "got 0"),
    ("search-loss-set-nan", [*S, "--loss-set", "0,nan"], "nan"),
    ("search-loss-set-1.5", [*S, "--loss-set", "0,1.5"], "1.5"),
    ("search-loss-set-text", [*S, "--loss-set", "0,x"], "0,x"),
    ("search-loss-set-huge", [*S, "--loss-set", ",".join(["0.1"] * 1000)], "loss_set"),
    ("search-no-split-alone", [*S, "--no-split-search"], "--fixed-split"),
    ("search-fixed-split-30", [*S, "--no-split-search", "--fixed-split", "30"], "30"),
    ("search-method", [*S, "--method", "darts"], "darts"),
    ("search-space", [*S, "--space", "darts"], "darts"),
    ("search-head", [*S, "--head", "tpu"], "tpu"),
    ("search-source", [*S, "--source", "guess"], "guess"),
    ("search-classes-0", [*S, "--classes", "0"], "--classes 0"),
    ("search-trace-random", [*S, "--method", "random", "--trace", "t.parquet"], "random"),
    ("search-surrogate-missing", ["search", "--surrogate", "no/such.json"], "no/such.json"),
    ("search-unknown-flag", [*S, "--bogus"], "--bogus"),
    ("search-tables-garbage", [*S, "--tables", "table.parquet"], "table.parquet"),
    # sweep: the same values as grid text, sizes, ranges, executors, folders, sweep files
    ("sweep-steps-2**63", [*W, "--steps", "9223372036854775808"], "9223372036854775808"),
    ("sweep-steps-1e30", [*W, "--steps", "1e30"], "steps"),
    ("sweep-steps-1e5000", [*W, "--steps", "1e5000"], "1e5000"),
    ("sweep-steps-fraction", [*W, "--steps", "2.5"], "2.5"),
    ("sweep-eps-lat-nan", [*W, "--eps-lat", "nan"], "nan"),
    ("sweep-eps-lat-inf", [*W, "--eps-lat", "inf"], "inf"),
    ("sweep-eps-loss-nan", [*W, "--eps-loss", "nan"], "nan"),
    ("sweep-delta0-inf", [*W, "--delta0", "inf"], "delta0"),
    ("sweep-delta0-100", [*W, "--delta0", "100"], "delta0"),
    ("sweep-delta-max-0.5", [*W, "--delta-max", "0.5"], "Delta_max"),
    ("sweep-alpha-0.5", [*W, "--alpha", "0.5"], "alpha"),
    ("sweep-lam-2**40", [*W, "--lam", "1099511627776"], "1099511627776"),
    ("sweep-lam-1e30", [*W, "--lam", "1e30"], "lam"),
    ("sweep-lam-expression", [*W, "--lam", "2**40"], "2**40"),
    ("sweep-bandwidth-inf", [*W, "--bandwidth", "inf"], "inf"),
    ("sweep-bits-inf", [*W, "--bits", "inf"], "inf"),
    ("sweep-bits-0", [*W, "--bits", "0"], "bits"),
    ("sweep-seeds-1e9", [*W, "--seeds", "1000000000"], "1000000000 seed"),
    ("sweep-seeds-0", [*W, "--seeds", "0"], "--seeds"),
    ("sweep-thresholds-overflow", [*W, "--thresholds", "0:1e999999999:1"], "1e999999999"),
    ("sweep-thresholds-too-many", [*W, "--thresholds", "1:1e300:1"], "1:1e300:1"),
    ("sweep-thresholds-tiny", [*W, "--thresholds", "1e-400"], "1e-400"),
    ("sweep-thresholds-empty-range", [*W, "--thresholds", "10:5:5"], "10:5:5"),
    ("sweep-thresholds-zero-step", [*W, "--thresholds", "10:40:0"], "10:40:0"),
    ("sweep-thresholds-text", [*W, "--thresholds", "a:b"], "a:b"),
    ("sweep-grid-1e10", [*W, "--thresholds", "1:1000:1", "--loss", "0:0.999:0.001", "--seeds", "10000"], "runs"),
    ("sweep-grid-1e10-forced", [*W, "--thresholds", "1:1000:1", "--loss", "0:0.999:0.001", "--seeds", "10000",
                                "--force"], "split it"),
    ("sweep-grid-above-limit", [*W, "--thresholds", "1:1000:1", "--loss", "0:0.99:0.01"], "--force"),
    ("sweep-axis-lam-range", [*W, "--axis", "lam=2:1e30:1e29"], "lam"),
    ("sweep-axis-unknown", [*W, "--axis", "colour=red"], "colour"),
    ("sweep-axis-twice", [*W, "--axis", "eps_lat=1", "--eps-lat", "2"], "eps_lat"),
    ("sweep-loss-1", [*W, "--loss", "0.5,1"], "got 1"),
    ("sweep-loss-set", [*W, "--loss-set", "0/1.5"], "1.5"),
    ("sweep-methods", [*W, "--methods", "nasc,bogus"], "bogus"),
    ("sweep-head", [*W, "--head", "jetson"], "jetson"),
    ("sweep-no-split-alone", [*W, "--no-split-search"], "--fixed-split"),
    ("sweep-fixed-split-23", [*W, "--no-split-search", "--fixed-split", "23"], "23"),
    ("sweep-jobs-0", [*W, "--jobs", "0"], "--jobs"),
    ("sweep-jobs-huge", [*W, "--jobs", "100000"], "--jobs"),
    ("sweep-dask-no-address", [*W, "--executor", "dask"], "--address"),
    ("sweep-address-local", [*W, "--address", "tcp://127.0.0.1:9"], "--address"),
    ("sweep-dask-bad-address", [*W, "--executor", "dask", "--address", "nowhere"], "nowhere"),
    ("sweep-dask-unreachable", [*W, "--executor", "dask", "--address", "tcp://127.0.0.1:9"], "127.0.0.1:9"),
    ("sweep-surrogate-missing", [*W[:-4], "--jobs", "1", "--surrogate", "no/such.json"], "no/such.json"),
    ("sweep-scatter-one-number", [*W, "--scatter", "30"], "30"),
    ("sweep-scatter-nan", [*W, "--scatter", "nan,0.2"], "nan,0.2"),
    ("sweep-scatter-loss-1.5", [*W, "--scatter", "30,1.5"], "30,1.5"),
    ("sweep-out-is-a-file", [*W, "--out", "file.txt"], "file.txt"),
    ("sweep-out-holds-other-files", [*W, "--out", "notes"], "notes"),
    ("sweep-out-other-surrogate", [*W[:-4], "--jobs", "1", "--surrogate", "{other}", "--out", "store"],
     "other surrogates"),
    ("sweep-config-missing", ["sweep", "--config", "no/sweep.toml"], "no/sweep.toml"),
    ("sweep-config-garbage", ["sweep", "--config", "garbage.toml"], "garbage.toml"),
    ("sweep-config-no-grid", ["sweep", "--config", "nogrid.toml"], "[grid]"),
    ("sweep-config-huge-steps", ["sweep", "--config", "bigsteps/sweep.toml"], "steps"),
    ("sweep-config-surrogate-changed", ["sweep", "--config", "changed/sweep.toml"], "has changed"),
    ("sweep-config-and-flags", ["sweep", "--config", "store/sweep.toml", "--thresholds", "5"], "--thresholds"),
    ("sweep-config-is-a-folder", ["sweep", "--config", "store"], "store"),
    ("sweep-tables-garbage", [*W, "--tables", "table.parquet"], "table.parquet"),
    ("sweep-tables-missing", [*W, "--tables", "no/table.parquet"], "no/table.parquet"),
    # report: missing, not a sweep, damaged, bad cells
    ("report-missing", ["report", "no/such/dir"], "no/such/dir"),
    ("report-a-file", ["report", "file.txt"], "file.txt"),
    ("report-no-sweep-file", ["report", "nosweep"], "nosweep"),
    ("report-all-chunks-damaged", ["report", "ruined"], "no finished runs"),
    ("report-scatter-one-number", ["report", "store", "--scatter", "30"], "30"),
    ("report-scatter-nan", ["report", "store", "--scatter", "nan,0.2"], "nan,0.2"),
    ("report-scatter-absent-cell", ["report", "store", "--scatter", "25,0.1"], "25"),
    # latency and devices
    ("latency-head", [*L, "--head", "tpu"], "tpu"),
    ("latency-tail", [*L, "--tail", "phone"], "phone"),
    ("latency-bits-inf", [*L, "--bits", "inf"], "inf"),
    ("latency-bits-nan", [*L, "--bits", "nan"], "nan"),
    ("latency-bits-0", [*L, "--bits", "0"], "got 0"),
    ("latency-bandwidth-inf", [*L, "--bandwidth", "inf"], "inf"),
    ("latency-bandwidth-negative", [*L, "--bandwidth", "-5"], "-5"),
    ("latency-split-30", ["latency", "--arch", ARCH, "--split", "30"], "30"),
    ("latency-split-2**70", ["latency", "--arch", ARCH, "--split", str(2**70)], str(2**70)),
    ("latency-source", [*L, "--source", "guess"], "guess"),
    ("latency-space", [*L, "--space", "darts"], "darts"),
    ("latency-classes-0", [*L, "--classes", "0"], "got 0"),
    ("latency-classes-huge", [*L, "--classes", str(10**30)], str(10**30)),
    ("latency-classes-not-in-table", [*L, "--classes", "7"], "7"),
    ("latency-arch-short", ["latency", "--arch", "k3_e1,k9", "--split", "3"], "22"),
    ("latency-arch-op", ["latency", "--arch", ARCH.replace("k3_e1", "bogus", 1), "--split", "3"], "bogus"),
    ("latency-arch-index", ["latency", "--arch", ",".join(["99"] * 22), "--split", "3"], "99"),
    ("latency-arch-empty", ["latency", "--arch", "", "--split", "3"], "0 ops"),
    ("latency-tables-garbage", [*L, "--tables", "table.parquet"], "table.parquet"),
    ("latency-head-not-in-table", [*L, "--head", "jetson"], "jetson"),
    ("devices-tables-garbage", ["devices", "--tables", "table.parquet"], "table.parquet"),
    ("devices-unknown-flag", ["devices", "--bogus"], "--bogus"),
    ("devices-extra-argument", ["devices", "extra"], "extra"),
]


@pytest.mark.parametrize("args, named", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(workdir, files, monkeypatch, args, named):
    from nascsim.sweep import run

    monkeypatch.setattr(run, "CONNECT_TIMEOUT", "1s")
    args = [a.format(sur=files["sur"], other=files["other"]) for a in args]
    before = tree(workdir)
    code, out, err = nascsim_in_process(args, workdir)
    assert code == 2, (code, out, err)
    assert err.count("\n") == 1 and err.startswith("Error: "), err
    assert named in err, err
    assert tree(workdir) == before


def test_every_bad_input_class_of_the_issue_has_a_case():
    ids = {c[0] for c in CASES}
    for needed in ("search-steps-2**63", "search-steps-1e30", "sweep-steps-1e5000", "search-eps-lat-nan",
                   "search-eps-lat-inf", "search-eps-loss-nan", "sweep-delta0-inf", "sweep-lam-2**40",
                   "sweep-lam-1e30", "sweep-bandwidth-inf", "sweep-bits-inf", "sweep-seeds-1e9",
                   "sweep-thresholds-overflow", "sweep-grid-1e10", "sweep-dask-unreachable"):
        assert needed in ids
    for command in ("search", "sweep", "report", "latency", "devices"):
        assert any(c[1][0] == command for c in CASES)


@pytest.mark.parametrize("args", [
    ["search", "--eps-lat", "nan"],
    ["sweep", "--steps", "1e5000", "--out", "out"],
    ["latency", "--arch", ARCH, "--split", "3", "--bits", "inf"],
])
def test_the_installed_entry_point_keeps_the_contract(tmp_path, args):
    r = subprocess.run([sys.executable, "-m", "nascsim", *args], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("Error: "), r.stderr
    assert list(tmp_path.iterdir()) == []


# -- configs: hypothesis ------------------------------------------------------------------------

def anything():
    return st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=8),
                     st.lists(st.floats(), max_size=3).map(tuple))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from([f for f in RULES if f in SearchConfig.__dataclass_fields__]), anything()))
def test_any_config_is_either_refused_with_a_value_error_or_within_every_rule(changes):
    """Whatever the fields hold, validation answers with a ValueError or accepts a config whose
    every value lies within its rule (finite where the rule is)."""
    from nascsim.methods.common import validate

    config = SearchConfig(**changes)
    try:
        validate(config)
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    for name, rule in RULES.items():
        value = getattr(config, name, None)
        if isinstance(value, float) and rule.high != math.inf:
            assert math.isfinite(value)
    assert config.steps is None or 1 <= config.steps <= RULES["steps"].high


def within(name):
    rule = RULES[name]
    if rule.kind.rstrip("?") == "int":
        return st.integers(int(rule.low), int(min(rule.high, 2**62)))
    high = 1e6 if rule.high == math.inf else rule.high
    return st.floats(rule.low, high, exclude_min=rule.low_open, exclude_max=rule.high_open)


@pytest.fixture(scope="module")
def stand_in():
    from nascsim.methods import run_search

    s = make_stand_in_surrogate("fbnet", 0)
    sets = {"dropout": s, "no_dropout": s}
    run_search(SearchConfig(steps=5), sets)  # numba compiled (or loaded) outside the deadline
    return sets


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(method=st.sampled_from(["nasc", "hwnas", "random"]), threshold=within("threshold_ms"), bits=within("bits"),
       bandwidth=within("bandwidth"), lam=st.integers(2, 16), alpha=within("alpha"), delta0=within("delta0"),
       Delta_max=within("Delta_max"), eps_loss=within("eps_loss"), eps_lat=within("eps_lat"),
       seed=within("seed"), steps=st.integers(1, 300))
def test_a_config_within_the_rules_gives_a_finite_result(stand_in, method, threshold, bits, bandwidth, lam, alpha,
                                                         delta0, Delta_max, eps_loss, eps_lat, seed, steps):
    from nascsim.methods import run_search

    if eps_loss == 0 and eps_lat == 0:
        eps_lat = 1.0
    config = SearchConfig(method=method, threshold_ms=threshold, bits=bits, bandwidth=bandwidth, lam=lam,
                          alpha=alpha, delta0=delta0, Delta_max=Delta_max, eps_loss=eps_loss, eps_lat=eps_lat,
                          seed=seed, steps=steps)
    rec = run_search(config, stand_in)
    for key in ("T_ms", "T_head_ms", "T_comm_ms", "T_tail_ms", "accuracy", "l_sc", "payload_bits"):
        assert math.isfinite(rec[key]), key
    for key in ("Delta", "theta_op_confidence", "theta_min_confidence", "theta_decided_share"):
        assert method == "random" or math.isfinite(rec[key]), key
    # the split is a variable of θ for NASC only (HWNAS chooses it after the search)
    assert (rec["theta_split_prob"] is None) if method != "nasc" else math.isfinite(rec["theta_split_prob"])
