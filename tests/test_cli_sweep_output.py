"""What ``nascsim sweep`` prints and the surrogate-role options: the compact summary (full tables
in the files), the warning for one surrogate in both roles, separate roles recorded and
replayed, and an ETA that does not count the warm-up."""

import polars as pl
import pytest
from click.testing import CliRunner
from surrogate_fixtures import make_stand_in_surrogate

from nascsim.cli import cli
from nascsim.cli.sweep_cmd import Progress
from nascsim.surrogate import save_surrogate
from nascsim.sweep.store import open_store

TINY = ["--thresholds", "20,30", "--loss", "0,0.3", "--seeds", "2", "--steps", "150", "--jobs", "1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sur")
    return (str(save_surrogate(make_stand_in_surrogate("fbnet", 0), d / "drop.json")),
            str(save_surrogate(make_stand_in_surrogate("fbnet", 0, split_dropout_train=0.0), d / "plain.json")))


def sweep(*args):
    return CliRunner().invoke(cli, ["sweep", *args])


def test_the_printed_summary_is_compact_and_points_to_the_full_tables(tmp_path, files):
    out = tmp_path / "out"
    r = sweep(*TINY, "--surrogate-dropout", files[0], "--surrogate-no-dropout", files[1], "--out", str(out))
    assert r.exit_code == 0, r.output
    rows = [line for line in r.stdout.splitlines() if line.split()[1:2] and line.split()[1] in ("nasc", "hwnas", "hwnas-dropout")]
    assert len(rows) == 2 * 3  # one per threshold and method, not per loss rate too
    assert "all|feas" in r.stdout and "summary.txt" in r.stdout
    assert len(pl.read_csv(out / "summary.csv")) == 2 * 2 * 3  # the file keeps every loss rate


def test_one_surrogate_in_both_roles_warns(tmp_path, files):
    r = sweep(*TINY, "--surrogate", files[0], "--out", str(tmp_path / "out"), "--no-report")
    assert r.exit_code == 0 and "Warning: one surrogate holds both roles" in r.stderr
    r = sweep(*TINY, "--methods", "nasc", "--surrogate", files[0], "--out", str(tmp_path / "nasc"), "--no-report")
    assert r.exit_code == 0 and "Warning" not in r.stderr  # nasc alone uses one role


def test_separate_roles_judge_hwnas_and_hwnas_dropout_apart_and_replay(tmp_path, files):
    first, second = tmp_path / "first", tmp_path / "second"
    r = sweep(*TINY, "--surrogate-dropout", files[0], "--surrogate-no-dropout", files[1], "--out", str(first),
              "--no-report")
    assert r.exit_code == 0 and "Warning" not in r.stderr
    runs = open_store(first)[1].read()
    by = {m: set(runs.filter(pl.col("method") == m)["surrogate"]) for m in ("nasc", "hwnas", "hwnas-dropout")}
    assert by["hwnas"] != by["hwnas-dropout"] == by["nasc"]
    assert set(runs["dropout_distinguished"].drop_nulls()) == {True}
    r = sweep("--config", str(first / "sweep.toml"), "--out", str(second), "--no-report", "--jobs", "1")
    assert r.exit_code == 0, r.output
    again = open_store(second)[1].read()
    assert sorted(again["surrogate"].to_list()) == sorted(runs["surrogate"].to_list())


def test_eta_is_measured_after_each_worker_has_committed_its_first_batch(monkeypatch):
    clock = iter([100.0, 101.0, 102.0, 104.0])  # commits at 100 s (warm-up), 101, 102, 104
    monkeypatch.setattr("nascsim.cli.sweep_cmd.time.perf_counter", lambda: next(clock))
    p = Progress(total=100, done=0, workers=2, quiet=True)
    p.update(10)  # the first worker's warm-up batch
    assert "ETA after warm-up" in p.bar.postfix
    p.update(10)  # the second's: the rate is measured from here
    assert "ETA after warm-up" in p.bar.postfix
    p.update(10)  # 10 runs in 1 s: 70 left -> 7 s
    assert "ETA 0:07" in p.bar.postfix and "10.0 runs/s" in p.bar.postfix
    p.update(10)  # 20 runs in 3 s: 60 left -> 9 s
    assert "ETA 0:09" in p.bar.postfix
    p.close()
