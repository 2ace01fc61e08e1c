"""``nascsim sweep`` and ``nascsim report`` end to end on a tiny grid with the stand-in surrogate:
files written, resume, replay from sweep.toml, bad input, and a sweep killed with SIGKILL."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from surrogate_fixtures import make_stand_in_surrogate

from nascsim.cli import cli
from nascsim.sweep.store import open_store

TINY = ["--thresholds", "20,30", "--loss", "0,0.3", "--seeds", "2", "--steps", "200"]


@pytest.fixture(scope="module")
def surrogate_file(tmp_path_factory):
    from nascsim.surrogate import save_surrogate

    return str(save_surrogate(make_stand_in_surrogate("fbnet", 0), tmp_path_factory.mktemp("sur") / "stand-in.json"))


def sweep(*args):
    return CliRunner().invoke(cli, ["sweep", *args])


def runs_of(path) -> pl.DataFrame:
    frame = open_store(path)[1].read()
    return frame.drop([c for c in frame.columns if c.endswith("_s")]).sort("config_hash")


def test_sweep_writes_the_store_tables_and_plots(tmp_path, surrogate_file):
    out = tmp_path / "out"
    r = sweep(*TINY, "--surrogate", surrogate_file, "--out", str(out), "--jobs", "1")
    assert r.exit_code == 0, r.output
    frame = runs_of(out)
    assert len(frame) == 2 * 2 * 3 * 2
    for col in ("method", "threshold_ms", "loss", "seed", "arch", "split", "T_head_ms", "T_comm_ms", "T_tail_ms",
                "T_ms", "feasible", "accuracy", "surrogate", "dataset", "nascsim_version", "config_hash"):
        assert col in frame.columns
    assert {p.name for p in out.iterdir()} >= {"sweep.toml", "runs", "summary.csv", "comparison.csv", "summary.txt", "plots"}
    assert len(list((out / "plots").glob("*.png"))) == len(list((out / "plots").glob("*.pdf"))) >= 4
    assert "NASC vs baselines" in r.stdout


def test_rerunning_the_same_command_resumes_without_running_anything(tmp_path, surrogate_file):
    out = str(tmp_path / "out")
    args = [*TINY, "--surrogate", surrogate_file, "--out", out, "--jobs", "1", "--no-report"]
    assert sweep(*args).exit_code == 0
    chunks = sorted(p.name for p in (tmp_path / "out" / "runs").iterdir())
    r = sweep(*args)
    assert r.exit_code == 0
    assert "24 runs (24 already stored)" in r.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "runs").iterdir()) == chunks


def test_report_regenerates_tables_and_plots_without_running(tmp_path, surrogate_file):
    out = tmp_path / "out"
    assert sweep(*TINY, "--surrogate", surrogate_file, "--out", str(out), "--jobs", "1", "--no-report").exit_code == 0
    assert not (out / "summary.csv").exists()
    r = CliRunner().invoke(cli, ["report", str(out), "--scatter", "30,0.3"])
    assert r.exit_code == 0, r.output
    assert (out / "summary.csv").exists() and (out / "plots" / "scatter_T30_p0.3.pdf").exists()
    assert len(pl.read_csv(out / "summary.csv")) == 2 * 2 * 3


def test_sweep_toml_replays_the_same_sweep(tmp_path, surrogate_file):
    first, second = tmp_path / "first", tmp_path / "second"
    assert sweep(*TINY, "--surrogate", surrogate_file, "--out", str(first), "--no-report", "--jobs", "1").exit_code == 0
    r = sweep("--config", str(first / "sweep.toml"), "--out", str(second), "--no-report", "--jobs", "1")
    assert r.exit_code == 0, r.output
    assert runs_of(first).equals(runs_of(second))
    text = (first / "sweep.toml").read_text()
    assert '"--thresholds", "20,30"' in text


def test_an_ablation_is_one_sweep_over_extra_axes(tmp_path, surrogate_file):
    out = tmp_path / "out"
    r = sweep("--thresholds", "30", "--loss", "0.2", "--seeds", "2", "--steps", "100", "--axis", "eps_lat=0.5,2",
              "--axis", "lam=2,4", "--methods", "nasc", "--surrogate", surrogate_file, "--out", str(out), "--jobs", "1")
    assert r.exit_code == 0, r.output
    frame = runs_of(out)
    assert len(frame) == 2 * 2 * 2
    assert set(pl.read_csv(out / "summary.csv")["variant"]) == {f"lam={l} eps_lat={e}" for e in (0.5, 2.0) for l in (2, 4)}


@pytest.mark.parametrize(
    "args, named",
    [
        (["--thresholds", "10:5:5"], "10:5:5"),
        (["--thresholds", "a:b"], "a:b"),
        (["--thresholds", "10:40:0"], "10:40:0"),
        (["--thresholds", "10:40:-5"], "10:40:-5"),
        (["--thresholds", "0"], "got 0"),
        (["--loss", "0.5,1"], "got 1"),
        (["--methods", "nasc,bogus"], "bogus"),
        (["--head", "jetson"], "jetson"),
        (["--tail", "tpu"], "tpu"),
        (["--axis", "colour=red"], "colour"),
        (["--axis", "eps_lat=1", "--eps-lat", "2"], "eps_lat"),
        (["--executor", "dask"], "--address"),
        (["--surrogate", "/no/such/file.json"], "/no/such/file.json"),
        (["--scatter", "30"], "30"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, surrogate_file, args, named):
    out = tmp_path / "out"
    r = sweep(*TINY, "--surrogate", surrogate_file, *args, "--out", str(out))
    assert r.exit_code == 2, r.output
    assert named in r.stderr and r.stderr.count("\n") == 1
    assert not out.exists()


def test_an_out_dir_of_runs_on_another_surrogate_is_refused(tmp_path, surrogate_file):
    from nascsim.surrogate import save_surrogate

    other = save_surrogate(make_stand_in_surrogate("fbnet", 1), tmp_path / "other.json")
    out = tmp_path / "out"
    assert sweep(*TINY, "--surrogate", surrogate_file, "--out", str(out), "--no-report", "--jobs", "1").exit_code == 0
    before = sorted(p.name for p in out.rglob("*"))
    r = sweep(*TINY, "--surrogate", str(other), "--out", str(out), "--jobs", "1")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "other surrogates" in r.stderr and "choose another --out" in r.stderr
    assert sorted(p.name for p in out.rglob("*")) == before


def test_more_seeds_thresholds_and_steps_are_added_to_a_store(tmp_path, surrogate_file):
    out = tmp_path / "out"
    base = ["--surrogate", surrogate_file, "--out", str(out), "--jobs", "1", "--no-report"]
    assert sweep(*TINY, *base).exit_code == 0
    r = sweep("--thresholds", "20,30,40", "--loss", "0,0.3", "--seeds", "3", "--steps", "200", *base)
    assert r.exit_code == 0, r.output
    assert "54 runs (24 already stored)" in r.stderr
    r = sweep(*TINY[:-1], "300", *base)  # other steps: other runs, added too
    assert r.exit_code == 0 and "24 runs (0 already stored)" in r.stderr
    frame = runs_of(out)
    assert len(frame) == 54 + 24 == frame["config_hash"].n_unique()
    text = (out / "sweep.toml").read_text()
    assert text.count("[[added]]") == 2
    r = sweep("--config", str(out / "sweep.toml"), "--jobs", "1", "--no-report")  # the union, all stored
    assert r.exit_code == 0 and "78 runs (78 already stored)" in r.stderr


def test_without_out_the_folder_is_named_by_the_grid_and_the_same_command_resumes(tmp_path, surrogate_file,
                                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [*TINY, "--surrogate", surrogate_file, "--jobs", "1", "--no-report"]
    first = sweep(*args)
    assert first.exit_code == 0, first.output
    (folder,) = (tmp_path / "nascsim-results").iterdir()
    assert f"into {Path('nascsim-results') / folder.name}" in first.stderr
    again = sweep(*args)
    assert again.exit_code == 0 and "24 runs (24 already stored)" in again.stderr
    assert list((tmp_path / "nascsim-results").iterdir()) == [folder]


def test_config_of_a_stored_sweep_resumes_in_its_folder(tmp_path, surrogate_file):
    out = tmp_path / "out"
    assert sweep(*TINY, "--surrogate", surrogate_file, "--out", str(out), "--jobs", "1", "--no-report").exit_code == 0
    chunk = sorted((out / "runs").iterdir())[-1]
    chunk.unlink()  # as if killed before the last commit
    r = sweep("--config", str(out / "sweep.toml"), "--jobs", "1", "--no-report")
    assert r.exit_code == 0, r.output
    assert "already stored) into " + str(out) in r.stderr and "(24 already stored)" not in r.stderr
    assert len(runs_of(out)) == 24


def test_a_damaged_chunk_is_reported_skipped_by_report_and_recomputed_by_the_resume(tmp_path, surrogate_file):
    out, reference = tmp_path / "out", tmp_path / "reference"
    args = [*TINY, "--surrogate", surrogate_file, "--jobs", "1", "--no-report"]
    assert sweep(*args, "--out", str(out)).exit_code == 0
    assert sweep(*args, "--out", str(reference)).exit_code == 0
    chunk = sorted((out / "runs").iterdir())[0]
    stored = len(pl.read_parquet(chunk))
    chunk.write_bytes(chunk.read_bytes()[:100])  # half-written
    r = CliRunner().invoke(cli, ["report", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert r.stderr.count("\n") == 1 and chunk.name in r.stderr and "damaged" in r.stderr
    assert len(pl.read_csv(out / "summary.csv")["n_runs"]) > 0
    assert pl.read_csv(out / "summary.csv")["n_runs"].sum() == 24 - stored
    r = sweep(*args, "--out", str(out))
    assert r.exit_code == 0, r.output
    assert f"({24 - stored} already stored)" in r.stderr
    assert (out / "damaged" / chunk.name).exists()
    assert runs_of(out).equals(runs_of(reference))


def test_a_second_sweep_into_a_folder_being_written_is_refused(tmp_path, surrogate_file):
    from nascsim.sweep.store import ResultStore

    out = tmp_path / "out"
    assert sweep(*TINY, "--surrogate", surrogate_file, "--out", str(out), "--jobs", "1", "--no-report").exit_code == 0
    holder = ResultStore(out)
    holder.lock()  # a running sweep holds the lock
    before = sorted(p.name for p in out.rglob("*"))
    more_seeds = ["--thresholds", "20,30", "--loss", "0,0.3", "--seeds", "3", "--steps", "200"]
    r = sweep(*more_seeds, "--surrogate", surrogate_file, "--out", str(out), "--jobs", "1")
    holder.close()
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "another nascsim sweep is writing" in r.stderr
    assert sorted(p.name for p in out.rglob("*")) == before


def test_an_unreachable_dask_scheduler_writes_nothing(tmp_path, surrogate_file, monkeypatch):
    from nascsim.sweep import run

    monkeypatch.setattr(run, "CONNECT_TIMEOUT", "1s")
    out = tmp_path / "out"
    r = sweep(*TINY, "--surrogate", surrogate_file, "--out", str(out), "--executor", "dask", "--address",
              "tcp://127.0.0.1:9")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "127.0.0.1:9" in r.stderr
    assert not out.exists()


def test_a_sweep_killed_with_sigkill_resumes_to_the_same_result(tmp_path, surrogate_file):
    grid = ["--thresholds", "20:35:5", "--loss", "0,0.2", "--seeds", "4", "--steps", "1500",
            "--surrogate", surrogate_file, "--jobs", "1", "--no-report", "--quiet"]
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "nascsim", "sweep", *grid, "--out", str(killed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    runs = killed / "runs"
    deadline = time.monotonic() + 1800  # only against a hang: workers of a starved machine may start late
    while not (runs.is_dir() and list(runs.glob("chunk-*.parquet"))):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no chunk was committed in time"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()

    chunks = list(runs.glob("chunk-*.parquet"))
    for c in chunks:  # every visible chunk is whole
        pl.read_parquet(c)
    stored = len(open_store(killed)[1].read())
    assert 0 < stored < 4 * 2 * 3 * 4

    r = sweep(*grid, "--out", str(killed))
    assert r.exit_code == 0, r.output
    reference = tmp_path / "reference"
    assert sweep(*grid, "--out", str(reference)).exit_code == 0
    resumed = runs_of(killed)
    assert len(resumed) == 4 * 2 * 3 * 4 == resumed["config_hash"].n_unique()
    assert resumed.equals(runs_of(reference))


HANG_GUARD_S = 60  # far below the killed sweep's remaining work, far above a process's exit under load


def children_of(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_and_resource_tracker_end_soon_after_the_sweep_is_killed(tmp_path, surrogate_file):
    """The workers end because the sweep died, not because their work did: the grid holds minutes
    of searches (48 of 10 million steps, about 14 s each on this project's machine; longer on a
    slower or busier one), and the children must be gone well inside ``HANG_GUARD_S`` of the
    SIGKILL. No wall-clock figure is asserted beyond that guard, so the machine's load cannot fail it."""
    grid = ["--thresholds", "20:35:5", "--loss", "0,0.2", "--seeds", "6", "--steps", "10000000",
            "--surrogate", surrogate_file, "--jobs", "2", "--no-report", "--quiet"]
    cmd = [sys.executable, "-m", "nascsim", "sweep", *grid, "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 1800  # only against a hang: workers of a starved machine may start late
    kids: list[int] = []
    while len(kids) < 3:  # two workers and the resource tracker
        assert proc.poll() is None, "the sweep ended before its workers started"
        assert time.monotonic() < deadline, "the workers did not start in time"
        time.sleep(0.05)
        kids = children_of(proc.pid)
    time.sleep(1.0)  # workers busy in their first batch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = time.monotonic()
    while any(alive(k) for k in kids) and time.monotonic() - killed < HANG_GUARD_S:
        time.sleep(0.05)
    left = [k for k in kids if alive(k)]
    print(f"{len(kids)} child processes gone {time.monotonic() - killed:.2f} s after the SIGKILL")  # with -s
    for k in left:  # never leave them behind, even when the test fails
        os.kill(k, signal.SIGKILL)
    assert left == [], f"processes still running {time.monotonic() - killed:.1f} s after the sweep was killed"
