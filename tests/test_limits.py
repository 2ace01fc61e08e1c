"""Stated limits (docs/limits.md), one class of hostile input per section:

- sizes: every numeric option of every command has a finite upper bound; counts beyond it, work
  beyond the caps (without force) and parquet files whose footer announces too many rows are
  refused in one line before anything is allocated, read or run;
- values: surrogates, tables and store chunks holding values outside their plausible ranges are
  refused (or set aside as damaged); -0.0 and 0.0 are one key; text read from files never prints
  a control character; errors are exactly one line on stderr, warnings never precede them;
- two writers into one new store folder never store a run twice;
- worker processes end when the process that started them is killed.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import click
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _cli_helpers import run_in_process as run_main
from hypothesis import given, settings
from hypothesis import strategies as st
from surrogate_fixtures import make_stand_in_surrogate

from nascsim import limits
from nascsim.cli import COMMANDS, cli
from nascsim.config import SearchConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--thresholds", "20,30", "--loss", "0,0.3", "--seeds", "1", "--steps", "50", "--methods", "nasc"]


def assert_one_line_exit_2(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("Error: "), err
    for n in needles:
        assert n in err, (n, err)


def files_under(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def surrogate_file(tmp_path_factory) -> str:
    from nascsim.surrogate import save_surrogate

    return str(save_surrogate(make_stand_in_surrogate("fbnet", 0), tmp_path_factory.mktemp("sur") / "stand-in.json"))


# ------------------------------------------------------------------------------------------------
# sizes
# ------------------------------------------------------------------------------------------------

def _commands():
    ctx = click.Context(cli)
    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            for sub in cmd.commands.values():
                yield f"{name} {sub.name}", sub
        else:
            yield name, cmd


def test_every_numeric_option_of_every_command_has_a_finite_upper_bound():
    unbounded = []
    for name, cmd in _commands():
        for p in cmd.params:
            if not isinstance(p.type, (click.types.IntParamType, click.types.FloatParamType)):
                continue
            ranged = isinstance(p.type, (click.IntRange, click.FloatRange)) and p.type.max is not None \
                and math.isfinite(p.type.max)
            if not ranged and getattr(p.callback, "bounded_by", None) is None:
                unbounded.append(f"{name} {p.opts[0]}")
    assert unbounded == []


# value just beyond each stated bound (the examples among them), through the command line
BEYOND = [
    (["supernet", "evaluate", "--checkpoint", "c", "--data", "d", "--out", "o.parquet", "--pairs", 2_000_000_000], "--pairs"),
    (["supernet", "evaluate", "--checkpoint", "c", "--data", "d", "--out", "o.parquet", "--noise-pairs", 10**9], "--noise-pairs"),
    (["supernet", "evaluate", "--checkpoint", "c", "--data", "d", "--out", "o.parquet", "--threads", 100_000], "--threads"),
    (["supernet", "train", "--data", "d", "--out", "o", "--monitor-pairs", 10**9], "--monitor-pairs"),
    (["supernet", "train", "--data", "d", "--out", "o", "--lambda-x", 10**8], "--lambda-x"),
    (["supernet", "train", "--data", "d", "--out", "o", "--lr", "1e300"], "--lr"),
    (["supernet", "train", "--data", "d", "--out", "o", "--lr", "nan"], "--lr"),
    (["supernet", "campaign", "--data", "d", "--out", "o", "--budget-s", "1e300"], "--budget-s"),
    (["supernet", "campaign", "--data", "d", "--out", "o", "--budget-s", "60", "--main-pairs", 10**8], "--main-pairs"),
    (["retrain", "--data", "d", "--out", "o", "--arch", "0", "--split", 99, "--epochs", 10**9], "--split"),
    (["confirm", "r.json", "--data", "d", "--out", "o.parquet", "--top", 10**6], "--top"),
    (["surrogate", "fit", "e.parquet", "--seed", 2**40], "--seed"),
    (["bench", "--seeds", 10**6], "--seeds"),
    (["sweep", "--seeds", 10**9], "--seeds"),
]


@pytest.mark.parametrize("args, needle", BEYOND, ids=[" ".join(map(str, a[:2])) + " " + n for a, n in BEYOND])
def test_a_count_beyond_its_bound_is_one_line_exit_2_and_nothing_written(tmp_path, args, needle):
    code, out, err = run_main(args, tmp_path)
    assert_one_line_exit_2(code, err, needle)
    assert out == "" and files_under(tmp_path) == []


def test_more_search_work_than_the_cap_needs_force_and_says_how_long(tmp_path, surrogate_file):
    args = ["search", "--steps", 10_000_000, "--lam", 10, "--surrogate", surrogate_file]
    code, _, err = run_main(args, tmp_path)
    assert_one_line_exit_2(code, err, "100,000,000 samples", "CPU-", "--force")
    import nascsim

    with pytest.raises(ValueError, match="force=True"):
        nascsim.search("nasc", 30, steps=10_000_000, lam=10, surrogate=surrogate_file)


@pytest.mark.parametrize("extra, needle", [
    (["--thresholds", "10:30:0.1", "--steps", 10_000_000], "201 pending runs"),  # 201 searches x 2e7 samples
    (["--thresholds", "30", "--steps", 10_000_000, "--lam", 10], "a search of 10,000,000 steps"),
])
def test_more_sweep_work_than_the_caps_needs_force(tmp_path, surrogate_file, extra, needle):
    args = ["sweep", *extra, "--loss", "0", "--methods", "nasc", "--seeds", 1, "--surrogate", surrogate_file,
            "--out", tmp_path / "out"]
    code, _, err = run_main(args, tmp_path)
    assert_one_line_exit_2(code, err, needle, "samples", "CPU-", "--force")
    assert files_under(tmp_path) == []


def test_the_api_sweep_refuses_a_grid_beyond_max_runs_without_force(tmp_path, surrogate_file):
    import nascsim
    from nascsim.sweep.grid import MAX_RUNS

    with pytest.raises(ValueError, match="more than 100,000"):
        nascsim.sweep(thresholds="10:40:0.01", losses="0", methods="nasc", seeds=400, surrogate=surrogate_file,
                      out=tmp_path / "out")
    assert MAX_RUNS == 100_000 and not (tmp_path / "out").exists()


@settings(max_examples=200, deadline=None)
@given(value=st.integers(min_value=-(2**70), max_value=2**70), low=st.integers(0, 10), high=st.integers(10, 10**6))
def test_check_count_admits_exactly_the_integers_within_its_bounds(value, low, high):
    if low <= value <= high:
        assert limits.check_count("n", value, low, high) == value
    else:
        with pytest.raises(ValueError, match="n must be an integer in"):
            limits.check_count("n", value, low, high)


@settings(max_examples=200, deadline=None)
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_check_number_admits_exactly_the_finite_numbers_within_its_bounds(value):
    if math.isfinite(value) and 0 < value <= 1e6:
        assert limits.check_number("x", value, 0, 1e6, low_open=True) == value
    else:
        with pytest.raises(ValueError, match="x must be a number in"):
            limits.check_number("x", value, 0, 1e6, low_open=True)


def _compressible_parquet(path: Path, rows: int) -> Path:
    pq.write_table(pa.table({"pair": pa.array(np.zeros(rows, np.int8))}), path)
    return path


def test_a_small_parquet_of_30_million_rows_is_refused_from_its_footer(tmp_path):
    f = _compressible_parquet(tmp_path / "evals.parquet", 30_000_000)
    assert f.stat().st_size < 2 * 2**20
    assert limits.parquet_size(f)[0] == 30_000_000
    code, _, err = run_main(["surrogate", "fit", f, "--out", tmp_path / "out"], tmp_path)
    assert_one_line_exit_2(code, err, "30,000,000 rows", "5,000,000")
    assert not (tmp_path / "out").exists()


def test_a_garbage_footer_is_one_line(tmp_path):
    f = tmp_path / "x.parquet"
    f.write_bytes(b"PAR1" + b"\xff" * 64 + b"PAR1")
    with pytest.raises(ValueError, match="not a readable parquet file"):
        limits.parquet_size(f)


# ------------------------------------------------------------------------------------------------
# the result store: oversized and damaged chunks, -0.0
# ------------------------------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path, surrogate_file) -> Path:
    out = tmp_path / "store"
    code, _, err = run_main(["sweep", *TINY, "--surrogate", surrogate_file, "--out", out, "--jobs", 1,
                             "--no-report", "--quiet"], tmp_path)
    assert code == 0, err
    return out


def _rewrite_chunk(store: Path, change) -> Path:
    chunk = sorted((store / "runs").glob("chunk-*.parquet"))[0]
    frame = pl.read_parquet(chunk)
    change(frame).write_parquet(chunk)
    return chunk


DAMAGE = {
    "nan accuracy": lambda f: f.with_columns(pl.lit(float("nan")).alias("accuracy")),
    "accuracy 7": lambda f: f.with_columns(pl.lit(7.0).alias("accuracy")),
    "inf T": lambda f: f.with_columns(pl.lit(float("inf")).alias("T_ms")),
    "T not the sum": lambda f: f.with_columns((pl.col("T_ms") + 1.0).alias("T_ms")),
    "rewritten hash": lambda f: f.with_columns(pl.lit("0123456789abcdef").alias("config_hash")),
    "hash of another row": lambda f: f.with_columns(pl.col("config_hash").reverse()),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_chunk_with_values_out_of_range_or_a_wrong_hash_is_set_aside_and_recomputed(store, tmp_path, surrogate_file,
                                                                                      damage):
    from nascsim.sweep.store import open_store

    before = open_store(store)[1].read()
    damaged = _rewrite_chunk(store, DAMAGE[damage])
    lines: list[str] = []
    s = open_store(store)[1]
    s.on_damaged = lines.append
    kept = s.read()
    assert len(kept) == len(before) - len(pl.read_parquet(damaged)) and list(s.damaged) == [damaged]
    assert len(lines) == 1 and damaged.name in lines[0]
    code, _, err = run_main(["sweep", *TINY, "--surrogate", surrogate_file, "--out", store, "--jobs", 1,
                             "--no-report", "--quiet"], tmp_path)
    assert code == 0, err
    after = open_store(store)[1].read()
    assert len(after) == len(before) == after["config_hash"].n_unique()
    assert after.sort("config_hash")["accuracy"].to_list() == before.sort("config_hash")["accuracy"].to_list()
    assert len(list((store / "damaged").iterdir())) == 1


def test_an_oversized_chunk_is_refused_from_its_footer(store):
    from nascsim.sweep.store import open_store

    _compressible_parquet(store / "runs" / "chunk-99999999999999999999-1-000000.parquet", 3_000_000)
    lines: list[str] = []
    s = open_store(store)[1]
    s.on_damaged = lines.append
    frame = s.read()
    assert len(frame) == 4
    assert len(lines) == 1 and "3,000,000 rows" in lines[0]
    assert "100,000" in lines[0]


@settings(max_examples=50, deadline=None)
@given(field=st.sampled_from([f for f, kind in (("threshold_ms", 1), ("loss", 1), ("bits", 1), ("bandwidth", 1),
                                                 ("eps_loss", 1), ("eps_lat", 1), ("alpha", 1), ("delta0", 1))]),
       negative=st.booleans())
def test_minus_zero_and_zero_are_one_config(field, negative):
    zero = -0.0 if negative else 0.0
    a, b = SearchConfig(**{field: zero}), SearchConfig(**{field: 0.0})
    assert a.content_hash() == b.content_hash()
    assert math.copysign(1.0, getattr(a, field)) == 1.0
    assert SearchConfig(loss_set=(-0.0, 0.1)).content_hash() == SearchConfig(loss_set=(0.0, 0.1)).content_hash()


def test_a_sweep_at_loss_minus_zero_adds_nothing_to_a_store_made_at_zero(store, tmp_path, surrogate_file):
    from nascsim.sweep.store import open_store

    chunks = sorted((store / "runs").glob("chunk-*.parquet"))
    grid = [a if a != "0,0.3" else "-0,0.3" for a in TINY]
    code, _, err = run_main(["sweep", *grid, "--surrogate", surrogate_file, "--out", store, "--jobs", 1,
                             "--no-report", "--quiet"], tmp_path)
    assert code == 0, err
    frame = open_store(store)[1].read()
    assert len(frame) == 4 and sorted((store / "runs").glob("chunk-*.parquet")) == chunks


# ------------------------------------------------------------------------------------------------
# values read from surrogates and tables
# ------------------------------------------------------------------------------------------------

def _doc(surrogate_file: str) -> dict:
    return json.loads(Path(surrogate_file).read_text())


def _first_leaf(e: dict) -> int:
    return next(i for i, f in enumerate(e["flags"]) if f & 1)


def _leaf(target, value):
    def change(doc):
        e = doc["targets"][target]
        e["value"][_first_leaf(e)] = value
    return change


def _baseline(target, value):
    def change(doc):
        doc["targets"][target]["baseline"] = value
    return change


def _noise_sd(value):
    def change(doc):
        doc["noise"]["loss"][0] = value
    return change


BAD_SURROGATES = {
    "loss leaf 1e308": (_leaf("loss", 1e308), "targets.loss"),
    "acc leaf 1e308": (_leaf("acc", 1e308), "targets.acc"),
    "lsc leaf -1e308": (_leaf("lsc", -1e308), "targets.lsc"),
    "acc baseline 5": (_baseline("acc", 5.0), "targets.acc.baseline"),
    "loss baseline -1": (_baseline("loss", -1.0), "targets.loss.baseline"),
    "noise sd 1e308": (_noise_sd(1e308), "noise.loss[0]"),
}


@pytest.mark.parametrize("case", list(BAD_SURROGATES))
def test_a_surrogate_that_could_predict_out_of_range_is_refused_by_every_command(tmp_path, surrogate_file, case):
    change, where = BAD_SURROGATES[case]
    doc = _doc(surrogate_file)
    change(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    for args in (["search", "--surrogate", bad, "--steps", 20], ["surrogate", "show", bad]):
        code, out, err = run_main(args, tmp_path)
        assert_one_line_exit_2(code, err, where)
        assert out == ""


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(min_value=0.0, max_value=1e300))
def test_any_loadable_surrogate_predicts_within_range(surrogate_file, scale):
    """Scaled leaves either load and then predict an accuracy in [0, 1] and a finite loss, or are
    refused: never an out-of-range or infinite prediction."""
    from nascsim.surrogate.model import surrogate_from_doc

    doc = _doc(surrogate_file)
    for e in doc["targets"].values():
        e["value"] = [v * scale for v in e["value"]]
    try:
        s = surrogate_from_doc(doc)
    except ValueError:
        return
    archs = np.random.default_rng(0).integers(0, 9, size=(64, 22))
    splits = np.arange(64) % 23
    assert np.all((s.predict("acc", archs, splits, 0.2) >= 0) & (s.predict("acc", archs, splits, 0.2) <= 1))
    assert np.all(np.isfinite(s.predict("loss", archs, splits, 0.2)))


def test_a_table_entry_of_1e308_is_refused(tmp_path):
    from nascsim._data import shipped_path
    from nascsim.hw.tables import TABLE_FILE

    table = pq.read_table(shipped_path("tables") / TABLE_FILE)
    col = next(n for n in table.column_names if n.endswith("_latency"))
    values = table.column(col).to_numpy().copy()
    values[5] = 1e308
    bad = tmp_path / "t.parquet"
    pq.write_table(table.set_column(table.column_names.index(col), col, pa.array(values)), bad)
    code, _, err = run_main(["tables", "check", bad], tmp_path)
    assert_one_line_exit_2(code, err, col, "1e+308")


# ------------------------------------------------------------------------------------------------
# text from files, JSON, one-line errors
# ------------------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_printable_leaves_no_control_character(text):
    shown = limits.printable(text)
    assert shown.isprintable()
    if text.isprintable():
        assert shown == text


def test_surrogate_show_escapes_control_characters_and_writes_strict_json(tmp_path, surrogate_file):
    doc = _doc(surrogate_file)
    doc["card"]["note"] = "fine\x1b[2J\x07 \u202e and more"
    doc["card"]["score"] = float("nan")
    f = tmp_path / "card.json"
    f.write_text(json.dumps(doc))
    code, out, err = run_main(["surrogate", "show", f], tmp_path)
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    code, out, err = run_main(["surrogate", "show", f, "--json"], tmp_path)
    assert code == 0, err

    def no_constants(name):
        raise AssertionError(f"bare {name} in the JSON")

    shown = json.loads(out, parse_constant=no_constants)
    assert shown["card"]["score"] is None


@pytest.fixture
def latency_callback(monkeypatch):
    from nascsim.cli.latency_cmd import latency

    def replace(fn):
        monkeypatch.setattr(latency, "callback", fn)

    return replace


def test_an_error_after_warnings_is_one_line_alone(latency_callback, tmp_path):
    from nascsim.cli import warn

    def noisy(**kw):
        warn("one surrogate in two roles")
        warnings.warn("a library's warning\nover two lines", UserWarning)
        raise ValueError("a bad value\nthat spans two lines")

    latency_callback(noisy)
    code, _, err = run_main(["latency", "--arch", "0", "--split", 3], tmp_path)
    assert_one_line_exit_2(code, err, "a bad value")


def test_warnings_of_a_command_that_succeeds_are_printed_one_line_each(latency_callback, tmp_path):
    from nascsim.cli import warn

    def noisy(**kw):
        warn("held\x1b[31m")
        warnings.warn("a library's warning\nover two lines", UserWarning)
        click.echo("result")

    latency_callback(noisy)
    code, out, err = run_main(["latency", "--arch", "0", "--split", 3], tmp_path)
    assert code == 0 and out == "result\n"
    assert err.splitlines() == ["Warning: held\\x1b[31m", "Warning: a library's warning"]


# ------------------------------------------------------------------------------------------------
# two writers into one new folder
# ------------------------------------------------------------------------------------------------

def _rows(n: int) -> list[dict]:
    from nascsim.sweep.store import make_row

    rec = {"arch": ["skip"] * 22, "split": 3, "T_head_ms": 1.0, "T_comm_ms": 2.0, "T_tail_ms": 3.0, "T_ms": 6.0,
           "feasible": True, "accuracy": 0.5, "surrogate": "s", "dataset": "d"}
    return [make_row(SearchConfig(seed=i), rec, 0.1) for i in range(n)]


def _spec():
    from nascsim.sweep.grid import Grid
    from nascsim.sweep.store import SweepSpec

    return SweepSpec(Grid.build(seed=range(400)), "default", "sid")


def test_two_stores_that_both_found_the_new_folder_empty_store_each_run_once(tmp_path):
    from nascsim.sweep.store import ResultStore

    out = tmp_path / "new"
    a, b = ResultStore.create(out, _spec()), ResultStore.create(out, _spec())
    assert a.done_hashes() == b.done_hashes() == set()  # both looked before either wrote
    a.commit(_rows(4))
    a.close()
    b.commit(_rows(400))
    b.close()
    frame = ResultStore(out).read()
    assert len(frame) == 400 == len(pl.concat([pl.read_parquet(c) for c in ResultStore(out).chunks()]))


def test_two_sweeps_started_together_into_a_new_folder_store_no_run_twice(tmp_path, surrogate_file):
    out = tmp_path / "new"
    common = ["--loss", "0", "--methods", "nasc", "--steps", "50", "--surrogate", surrogate_file, "--out", str(out),
              "--jobs", "1", "--no-report", "--quiet"]
    small = [sys.executable, "-m", "nascsim", "sweep", "--thresholds", "20,30", "--seeds", "2", *common]
    large = [sys.executable, "-m", "nascsim", "sweep", "--thresholds", "20:38:2", "--seeds", "40", *common]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
             for c in (small, large)]
    results = [(p.wait(timeout=600), p.stderr.read().decode()) for p in procs]
    for code, err in results:
        assert code == 0 or (code == 2 and err.count("\n") == 1 and err.startswith("Error: ")), err
    assert any(code == 0 for code, _ in results)
    from nascsim.sweep.store import open_store

    frame = pl.concat([pl.read_parquet(c) for c in open_store(out)[1].chunks()])
    assert frame["config_hash"].n_unique() == len(frame)


# ------------------------------------------------------------------------------------------------
# children end with their parent
# ------------------------------------------------------------------------------------------------

SLOW = textwrap.dedent('''
    """A blob that takes an hour to arrive (importable by the workers, which do not re-run the
    parent's script)."""
    import time


    def slow_bytes(data):
        time.sleep(3600)
        return data


    class SlowBlob(bytes):
        def __reduce__(self):
            return (slow_bytes, (bytes(self),))
''')

PARENT = textwrap.dedent('''
    """Decodes images on nascsim's worker pool; every blob takes an hour to arrive, so the
    workers are busy when the test kills this process."""
    import os

    from slowblob import SlowBlob

    if __name__ == "__main__":
        from nascsim.train import data

        data.PARALLEL_FROM = 1
        print(os.getpid(), flush=True)
        data.decode_images([SlowBlob(b"x")] * 8, [f"img{i}" for i in range(8)], workers=2)
''')


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and state != "Z" and b"spawn_main" in cmd:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def assert_children_end_with_their_parent(proc: subprocess.Popen, n_children: int, busy_s: float, parent: str,
                                          children: str) -> None:
    """Wait (at most 120 s) for ``n_children`` spawned children of ``proc``, let them work ``busy_s``
    seconds, SIGKILL ``proc``, and assert that every child ends (within a 60 s hang guard, not a
    timing); kills whatever is left."""
    kids: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(kids) < n_children:
            assert proc.poll() is None, f"the {parent} ended before its {children} started"
            assert time.monotonic() < deadline, f"the {children} did not start in time"
            time.sleep(0.1)
            kids = _children(proc.pid)
        time.sleep(busy_s)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed = time.monotonic()
        while any(_alive(k) for k in kids) and time.monotonic() - killed < 60:  # a hang guard, not a timing
            time.sleep(0.1)
        assert [k for k in kids if _alive(k)] == []
    finally:
        for k in kids:
            if _alive(k):
                os.kill(k, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_image_decode_workers_end_when_their_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    (tmp_path / "slowblob.py").write_text(SLOW)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert_children_end_with_their_parent(proc, 2, 1.0, "parent", "workers")  # 1 s: inside their first task


CAMPAIGN_PARENT = textwrap.dedent('''
    """Starts one campaign lane the way the campaign does (its worker entry, spawned, given this
    process's pid); the lane waits at a barrier for a second lane that never comes."""
    import multiprocessing as mp
    import os
    import sys
    import time

    if __name__ == "__main__":
        from nascsim.train.campaign import CampaignSettings, _worker

        ctx = mp.get_context("spawn")
        s = CampaignSettings(data=sys.argv[1], out=sys.argv[2], device="cpu", dropouts=(0.5,), valid_images=8,
                             threads=1)
        lane = ctx.Process(target=_worker, args=(s.to_dict(), 0, time.time(), ctx.Queue(), ctx.Queue(), ctx.Barrier(2),
                                                  False, os.getpid()), daemon=True)
        lane.start()
        lane.join()
''')


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_campaign_lane_ends_when_the_campaign_is_killed(tmp_path):
    pytest.importorskip("torch")
    from _train_fixtures import write_cifar10

    write_cifar10(tmp_path / "data", per_batch=8, test=6)
    script = tmp_path / "campaign_parent.py"
    script.write_text(CAMPAIGN_PARENT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "data"), str(tmp_path / "out")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    # 2 s: the lane is loading torch and the data, then waits at the barrier
    assert_children_end_with_their_parent(proc, 1, 2.0, "campaign", "lane")
