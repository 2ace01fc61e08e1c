"""``nascsim supernet campaign --resume``: a campaign cut off at any moment (SIGKILL at a named
point: ``NASCSIM_CAMPAIGN_KILL_AT``) continues in the same folder and ends with the same rows as
one never interrupted; a resume call that would change the campaign, or whose budget cannot hold
the rest of training, or whose folder holds a link, is refused in one line; ``--workers auto``
runs the lanes side by side on a CPU with a core per lane.

No test depends on the machine's speed or load: the runs fix their plans (``--epochs``, target
pair counts) and have a budget that only stops a hung run; the refusals need no training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from test_campaign import HANG_GUARD_S, NO_POLARS, ROOT, TINY, check_outputs, data  # noqa: E402,F401

KILL = "NASCSIM_CAMPAIGN_KILL_AT"
FIXED = ["--epochs", "2", "--train-images", "64", *TINY]


def cli(args, kill_at: str | None = None, timeout=HANG_GUARD_S + 300):
    """The CLI in a fresh interpreter (``kill_at``: the cut-off it is to suffer)."""
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "NUMBA_NUM_THREADS": "1",
           "PATH": "/usr/bin:/bin", **({KILL: kill_at} if kill_at else {})}
    return subprocess.run([sys.executable, "-c", NO_POLARS, "supernet", "campaign", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT)


def rows(out: Path) -> dict:
    import polars as pl

    log = json.loads((out / "campaign.json").read_text())
    return {lane["name"]: pl.read_parquet(out / lane["file"]) for lane in log["lanes"]}


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "out"
    p = cli(["--data", data, "--out", out, "--budget-s", HANG_GUARD_S, *FIXED])
    assert p.returncode == 0, p.stderr + p.stdout
    return rows(out)


def killed_then_resumed(data, out: Path, kill_at: str, first: list, again: list) -> subprocess.CompletedProcess:
    p = cli(["--data", data, "--out", out, "--budget-s", HANG_GUARD_S, *FIXED, *first], kill_at=kill_at)
    assert p.returncode == -signal.SIGKILL, p.stderr + p.stdout
    log = json.loads((out / "campaign.json").read_text())
    assert not log.get("finished") and (out / "resume").is_dir()
    p = cli(["--out", out, "--budget-s", HANG_GUARD_S, "--resume", *again])
    assert p.returncode == 0, p.stderr + p.stdout
    assert "resuming" in p.stdout
    return p


def assert_same_rows(out: Path, uninterrupted: dict) -> None:
    check_outputs(out)
    assert not (out / "resume").exists()  # the lanes' checkpoints go when the campaign finishes
    resumed = rows(out)
    assert set(resumed) == set(uninterrupted) == {"drop50", "drop00"}
    for name, df in uninterrupted.items():
        assert resumed[name].equals(df), name  # row for row: pairs, batches, losses, accuracies


def test_a_campaign_killed_after_a_training_epoch_resumes_to_the_rows_of_an_uninterrupted_one(data, tmp_path,
                                                                                           uninterrupted):
    out = tmp_path / "out"
    # two lane processes; the kill comes right after drop50's first epoch, drop00 anywhere
    p = killed_then_resumed(data, out, "drop50:epoch:1", ["--workers", "2"], [])
    assert "drop50: resumed after epoch 1 of 2" in p.stdout
    log = json.loads((out / "campaign.json").read_text())
    assert log["workers"] == 2 and log["settings"]["workers"] == "2"  # taken from campaign.json
    assert len(log["resumes"]) == 1 and log["finished"]
    assert [len(lane["epochs_log"]) for lane in log["lanes"]] == [2, 2]
    assert_same_rows(out, uninterrupted)


def test_a_campaign_killed_in_the_middle_of_the_main_pairs_resumes_to_the_rows_of_an_uninterrupted_one(data, tmp_path,
                                                                                                   uninterrupted):
    out = tmp_path / "out"
    # one process, lanes one after the other: drop50 is done, drop00 has one main block of three
    p = killed_then_resumed(data, out, "drop00:main:1", ["--workers", "1"], ["--workers", "1", "--epochs", "2"])
    assert "drop00: resumed after epoch 2 of 2 (training done)" in p.stdout
    assert_same_rows(out, uninterrupted)


# -- refusals: one line, exit code 2, nothing written ------------------------------------------------

def stored_campaign(data, out: Path, epochs_done: int = 1, epoch_s: float = 100.0) -> dict:
    """A campaign folder as a cut-off leaves it: ``campaign.json`` with its settings and plans,
    ``epochs_done`` of 10 planned epochs logged per lane."""
    from nascsim.train.campaign import CampaignSettings
    from nascsim.train.plan import LanePlan

    settings = CampaignSettings(data=str(data), out=str(out), device="cpu", workers="1", epochs=10,
                                recipe={"lr": 0.1, "batch_size": 32})
    plan = LanePlan(seconds=5000, epochs=10, train_s=10 * epoch_s, noise_pairs=2, noise_batches=2, noise_s=1,
                    lowvar_pairs=1, lowvar_s=1, main_pairs=2, main_block=2, main_s=1, total_s=1003, targets_met=True)
    doc = {"t0": 0.0, "started": "x", "budget_s": 5000, "settings": settings.to_dict(), "data_s": 1.0,
           "dataset": {"name": "cifar10", "train": 600, "test": 8, "classes": 10}, "mode": "sequential (one process)",
           "plans": {"drop50": plan.to_dict(), "drop00": plan.to_dict()},
           "lanes": [{"name": n, "split_dropout": p, "status": "running", "parts": {},
                      "epochs_log": [{"epoch": e + 1, "s": epoch_s} for e in range(epochs_done)]}
                     for n, p in (("drop50", 0.5), ("drop00", 0.0))]}
    out.mkdir(parents=True, exist_ok=True)
    (out / "campaign.json").write_text(json.dumps(doc))
    (out / "resume").mkdir(exist_ok=True)
    return doc


def run_cli(args, capsys) -> tuple[int, str]:
    from nascsim.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["supernet", "campaign", *map(str, args)])
    return exc.value.code, capsys.readouterr().err


def snapshot(folder: Path) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("option, value", [("--lr", "0.5"), ("--main-pairs", "7"), ("--dropouts", "0.5"),
                                           ("--epochs", "11"), ("--data", "/elsewhere")])
def test_a_resume_call_with_an_option_that_differs_is_refused_naming_it(data, tmp_path, capsys, option, value):
    out = tmp_path / "out"
    stored_campaign(data, out)
    before = snapshot(out)
    code, err = run_cli(["--out", out, "--budget-s", 5000, "--resume", option, value], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert option in err and "does not match" in err
    assert snapshot(out) == before


def test_a_resume_budget_that_cannot_hold_the_rest_of_training_is_refused_at_once(data, tmp_path, capsys):
    out = tmp_path / "out"
    stored_campaign(data, out, epochs_done=4, epoch_s=100.0)  # 6 epochs of 100 s left per lane, one after the other
    before = snapshot(out)
    code, err = run_cli(["--out", out, "--budget-s", 1000, "--resume"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "does not fit the rest of training" in err and "drop50 6 of 10 epochs" in err
    assert snapshot(out) == before


def test_resume_refuses_a_resume_folder_that_is_a_link_or_holds_one(data, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "drop50.pt").write_bytes(b"not a checkpoint")
    for i, make in enumerate((lambda out: (os.rmdir(out / "resume"), os.symlink(elsewhere, out / "resume")),
                              lambda out: os.symlink(elsewhere / "drop50.pt", out / "resume" / "drop50.pt"))):
        out = tmp_path / f"out{i}"
        stored_campaign(data, out)
        make(out)
        code, err = run_cli(["--out", out, "--budget-s", 5000, "--resume"], capsys)
        assert code == 2 and "symbolic link" in err and len(err.strip().splitlines()) == 1, err


def test_resume_needs_a_campaign_that_was_cut_off_and_a_fresh_run_refuses_one(data, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code, err = run_cli(["--out", out, "--budget-s", 5000, "--resume"], capsys)
    assert code == 2 and "cannot resume" in err
    doc = stored_campaign(data, out)
    code, err = run_cli(["--data", data, "--out", out, "--budget-s", 5000], capsys)
    assert code == 2 and "--resume" in err
    (out / "campaign.json").write_text(json.dumps({**doc, "finished": True}))
    code, err = run_cli(["--out", out, "--budget-s", 5000, "--resume"], capsys)
    assert code == 2 and "nothing to resume" in err
    code, err = run_cli(["--out", tmp_path / "new", "--budget-s", 5000], capsys)
    assert code == 2 and "--data is required" in err


# -- one process per core -------------------------------------------------------------------------

@pytest.mark.parametrize("device, n_cores, lanes, workers, expect", [
    ("cpu", 2, (0.5, 0.0), "auto", "2"),  # a core per lane: side by side
    ("cpu", 16, (0.5, 0.0), "auto", "2"),
    ("cpu", 1, (0.5, 0.0), "auto", "1"),  # fewer cores than lanes: one after the other
    ("cpu", 4, (0.5,), "auto", "1"),  # one lane: no second process
    ("cuda", 1, (0.5, 0.0), "auto", "2"),
    ("cpu", 2, (0.5, 0.0), "1", "1"),  # --workers 1 keeps one process
])
def test_workers_auto_runs_a_process_per_lane_on_a_cpu_with_a_core_per_lane(monkeypatch, device, n_cores, lanes,
                                                                              workers, expect):
    import nascsim.train.campaign as campaign_mod

    monkeypatch.setattr(campaign_mod, "cores", lambda: n_cores)
    s = campaign_mod.CampaignSettings(data="d", out="o", dropouts=lanes, workers=workers)
    assert campaign_mod.resolve_workers(s, device) == expect
