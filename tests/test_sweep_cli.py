"""``nascsim sweep`` and ``nascsim report`` end to end on a tiny grid with the stand-in surrogate:
files written, resume, replay from sweep.toml, bad input, and a sweep killed with SIGKILL."""

import os
import signal
import subprocess
import sys
import time

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


def test_an_out_dir_holding_another_sweep_is_refused(tmp_path, surrogate_file):
    out = tmp_path / "out"
    assert sweep(*TINY, "--surrogate", surrogate_file, "--out", str(out), "--no-report", "--jobs", "1").exit_code == 0
    before = sorted(p.name for p in out.rglob("*"))
    r = sweep(*TINY[:-1], "300", "--surrogate", surrogate_file, "--out", str(out), "--jobs", "1")
    assert r.exit_code == 2
    assert "different sweep" in r.stderr and "steps 200 vs 300" in r.stderr
    assert sorted(p.name for p in out.rglob("*")) == before


def test_a_sweep_killed_with_sigkill_resumes_to_the_same_result(tmp_path, surrogate_file):
    grid = ["--thresholds", "20:35:5", "--loss", "0,0.2", "--seeds", "4", "--steps", "1500",
            "--surrogate", surrogate_file, "--jobs", "1", "--no-report", "--quiet"]
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "nascsim", "sweep", *grid, "--out", str(killed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    runs = killed / "runs"
    deadline = time.monotonic() + 120
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
