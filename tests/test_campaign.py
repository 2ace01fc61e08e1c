"""``nascsim supernet campaign`` end to end on a CPU: both supernets trained and evaluated in the
three designs, files `nascsim surrogate fit` accepts, no polars anywhere on the way, the
two-process mode the GPU runs, and a whole budget used by the clock.

No test here depends on the machine's speed or load: the budget test runs on a :class:`CostClock`
(time moves with the images processed), and the runs on the wall clock fix their epochs and pair
counts and give them a budget (``HANG_GUARD_S``) that only stops a hung run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from _train_fixtures import write_cifar10  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NO_POLARS = "import sys; sys.modules['polars'] = None; from nascsim.cli import main; main()"
MAX_FILES, MAX_BYTES = 8, 16 * 2**20
HANG_GUARD_S = 1200  # the budget of the wall-clock runs: fixed work of seconds, so this only stops a hung run

# a campaign small enough for a CPU: tiny batches, tiny sets
TINY = ["--device", "cpu", "--threads", "1", "--valid-images", "32", "--batch-images", "8", "--monitor-images", "8",
        "--monitor-pairs", "2", "--noise-images", "4", "--noise-batches", "2", "--noise-pairs", "2", "--lowvar-pairs", "2",
        "--main-pairs", "6", "--batch-size", "32", "--calibrate-s", "0.3"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("c10")
    write_cifar10(root, per_batch=120, test=8)  # 600 training images
    return root


def campaign(args, timeout=HANG_GUARD_S + 300):
    """The CLI in a fresh interpreter in which ``import polars`` fails."""
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "NUMBA_NUM_THREADS": "1",
           "PATH": "/usr/bin:/bin"}
    t = time.time()
    p = subprocess.run([sys.executable, "-c", NO_POLARS, "supernet", "campaign", *map(str, args)], capture_output=True,
                       text=True, env=env, timeout=timeout, cwd=ROOT)
    return p, time.time() - t


def check_outputs(out: Path, lanes: int = 2):
    import polars as pl

    files = sorted(out.iterdir())
    assert len(files) <= MAX_FILES and all(f.is_file() and f.stat().st_size <= MAX_BYTES for f in files)
    log = json.loads((out / "campaign.json").read_text())
    assert log["finished"] and len(log["lanes"]) == lanes and {ln["status"] for ln in log["lanes"]} == {"done"}
    assert log["plans"] and log["calibration"] and log["wall_s"] <= log["budget_s"]
    frames = {}
    for lane in log["lanes"]:
        f = out / lane["file"]
        df = pl.read_parquet(f)
        frames[lane["name"]] = df
        assert set(df["design"]) == {"main", "lowvar", "noise"}
        assert (df["lowvar"] == (df["design"] == "lowvar")).all()
        main = df.filter(pl.col("design") == "main")
        n_main = main["pair"].n_unique()
        assert main.filter(pl.col("repeat") == 1)["pair"].n_unique() >= 0.15 * n_main
        assert (main.group_by("pair", "repeat").agg(pl.col("batch").n_unique())["batch"] == 1).all()
        lv = df.filter(pl.col("design") == "lowvar")
        assert (lv["batch"] == -1).all() and lv["pair"].n_unique() >= 1
        noise = df.filter(pl.col("design") == "noise")
        grid = noise.group_by("pair").agg(pl.col("batch").unique().sort())
        batches = grid["batch"].to_list()
        assert len(batches) >= 2 and all(b == batches[0] for b in batches) and len(batches[0]) >= 2  # crossed design
        assert (noise["repeat"] == 0).all() and noise["n_images"].unique().to_list() == [4]
        per = df.group_by("pair", "batch", "repeat").agg(pl.col("p").n_unique())
        assert (per["p"] == 6).all()
        assert set(main["pair"]).isdisjoint(lv["pair"]) and set(main["pair"]).isdisjoint(noise["pair"])
        from nascsim.train.evaluate import read_metadata

        md = read_metadata(f)
        for key in ("recipe", "epochs_log", "train_device", "machine", "torch", "git_commit", "wall_s", "plan", "split_dropout_train"):
            assert key in md, key
        assert {"train_s", "noise_s", "lowvar_s", "main_s"} <= set(md["wall_s"])
        assert md["epochs_log"] and {"loss", "subnet_acc_mean", "subnet_acc_sd"} <= set(md["epochs_log"][0])
        assert md["split_dropout_train"] == lane["split_dropout"] and md["id"] == f.name.removesuffix(".parquet")
    return log, frames


def fit_accepts(path: Path, out: Path, monkeypatch, capsys):
    import nascsim.surrogate.fit as fit
    from nascsim.cli import main
    from surrogate_fixtures import quick_options

    monkeypatch.setattr(fit, "FitOptions", lambda **kw: quick_options(**kw))
    with pytest.raises(SystemExit) as exc:
        main(["surrogate", "fit", str(path), "--out", str(out)])
    captured = capsys.readouterr()
    assert exc.value.code == 0, captured.err
    return json.loads((out / f"{path.name.removesuffix('.parquet')}.json").read_text())


def test_the_campaign_import_path_does_not_import_polars():
    code = ("import sys; sys.modules['polars'] = None\n"
            "import nascsim.cli.train_cmd, nascsim.train.campaign, nascsim.train.lane, nascsim.train.evaluate\n"
            "import numpy as np\n"
            "from nascsim.space import get_space\n"
            "from nascsim.train.evaluate import near_threshold_pairs\n"
            "a, k = near_threshold_pairs(get_space('fbnet'), 5, (40.0,), 0.1, np.random.default_rng(0))\n"
            "assert len(k) == 5 and sys.modules['polars'] is None\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT), "NUMBA_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr


def test_a_fixed_plan_campaign_writes_three_designs_for_both_supernets_that_fit_accepts(data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    p, _ = campaign(["--data", data, "--out", out, "--budget-s", HANG_GUARD_S, "--epochs", "1", "--train-images", "64", *TINY])
    assert p.returncode == 0, p.stderr + p.stdout
    assert p.stdout.index("plan (") < p.stdout.index("epoch 1/1")  # the plan is printed first
    log, frames = check_outputs(out)
    assert [ln["name"] for ln in log["lanes"]] == ["drop50", "drop00"]
    for lane in log["lanes"]:
        assert len(lane["epochs_log"]) == 1 and lane["plan"]["main_pairs"] == 6
    # the same pairs on the same batches in both lanes (paired comparisons between supernets)
    a, b = frames["drop50"], frames["drop00"]
    assert a.select("pair", "arch", "split", "batch", "p").equals(b.select("pair", "arch", "split", "batch", "p"))
    doc = fit_accepts(out / log["lanes"][0]["file"], tmp_path / "fit", monkeypatch, capsys)
    assert doc["split_dropout_train"] == 0.5


class CostClock:
    """A clock that moves only with the work: every image row entering a supernet's stem or its
    header (training and evaluation alike; a shared evaluation runs the stem once and the header
    once per pair and loss rate) costs ``row_s`` seconds, and nothing else takes time. Read in
    place of ``time`` by the campaign's modules, it makes the calibration, the plan and every
    deadline the same on any machine under any load (a cost model, not a measurement)."""

    strftime, localtime = staticmethod(time.strftime), staticmethod(time.localtime)  # dates: the real ones

    def __init__(self, row_s: float, start: float = 1e6) -> None:  # small: fine float steps
        self.row_s, self.t = row_s, start

    def time(self) -> float:
        return self.t

    perf_counter = monotonic = time


@pytest.fixture
def cost_clock(monkeypatch):
    """Put a :class:`CostClock` (0.02 s per row) in place of the wall clock of the campaign."""
    import nascsim.train.campaign as campaign_mod
    import nascsim.train.evaluate as evaluate_mod
    import nascsim.train.lane as lane_mod
    import nascsim.train.loop as loop_mod
    import nascsim.train.supernet as supernet_mod

    clock = CostClock(row_s=0.02)

    def charge(module, inputs):  # a plain function: a deep copy of the model keeps charging this clock
        clock.t += clock.row_s * inputs[0].shape[0]

    def with_cost(build):
        def build_and_charge(*args):
            module = build(*args)
            module.register_forward_pre_hook(charge)
            return module
        return build_and_charge

    for name in ("build_stem", "build_header"):
        monkeypatch.setattr(supernet_mod, name, with_cost(getattr(supernet_mod, name)))
    for module in (campaign_mod, lane_mod, evaluate_mod, loop_mod):
        monkeypatch.setattr(module, "time", clock)
    return clock


def test_a_campaign_uses_its_budget_by_the_clock_and_ends_inside_it(data, tmp_path, monkeypatch, capsys, cost_clock):
    """The budget is in seconds of the :class:`CostClock`: the plan fills it with epochs and pairs
    (calibrated on that clock) and the lanes stop inside it, whatever the machine's speed or load."""
    import torch

    from nascsim.train.campaign import CampaignSettings, run_campaign

    torch.set_num_threads(1)
    out = tmp_path / "out"
    budget = 90.0
    settings = CampaignSettings(data=str(data), out=str(out), budget_s=budget, device="cpu", threads=1,
                                train_images=64, valid_images=32, batch_images=8, monitor_images=8, monitor_pairs=2,
                                noise_images=4, noise_batches=2, noise_pairs=2, lowvar_pairs=2, main_pairs=40,
                                recipe={"batch_size": 32}, calibrate_s=1.0, workers="1")  # the clock lives in this process
    start = cost_clock.time()
    log = run_campaign(settings)
    print(json.dumps(log["plans"]), cost_clock.time() - start)  # with -s
    assert cost_clock.time() - start <= budget  # every image the campaign ran was paid for inside the budget
    log, _ = check_outputs(out)
    assert log["wall_s"] <= budget
    for name, plan in log["plans"].items():
        assert plan["epochs"] >= 2, name  # the plan spends the budget: several epochs, ...
        assert plan["total_s"] >= 0.5 * plan["seconds"], name  # ... most of each lane's share
    assert log["wall_s"] >= 0.5 * budget
    fit_accepts(out / log["lanes"][1]["file"], tmp_path / "fit", monkeypatch, capsys)


def test_two_lane_processes_calibrate_together_and_both_finish(data, tmp_path):
    out = tmp_path / "out"
    p, _ = campaign(["--data", data, "--out", out, "--budget-s", HANG_GUARD_S, "--epochs", "1", "--train-images", "64",
                     "--workers", "2", *TINY])
    assert p.returncode == 0, p.stderr + p.stdout
    log, _ = check_outputs(out)
    assert log["workers"] == 2 and "concurrency_speedup" in log
    assert log["calibration"]["drop50"]["train_image_s_solo"] > 0


def test_a_lane_whose_training_diverges_evaluates_its_last_finite_weights(data, tmp_path):
    import numpy as np

    from nascsim.train.campaign import CampaignSettings
    from nascsim.train.lane import Lane
    from nascsim.train.plan import LanePlan

    s = CampaignSettings(data=str(data), out=str(tmp_path), device="cpu", train_images=64, valid_images=32,
                         batch_images=8, monitor_images=8, monitor_pairs=2, noise_images=4, noise_batches=2,
                         noise_pairs=2, lowvar_pairs=1, main_pairs=2,
                         recipe={"batch_size": 32, "lr": 1e30, "warmup_epochs": 0.0, "grad_clip": 0.0})
    plan = LanePlan(seconds=600, epochs=3, train_s=1, noise_pairs=2, noise_batches=2, noise_s=1, lowvar_pairs=1, lowvar_s=1,
                    main_pairs=2, main_block=2, main_s=1, total_s=5, targets_met=True)
    summary = Lane(s, 0, time.time()).run(plan, time.time() + 600, lambda msg: None)
    assert "diverged" in summary["training_cut"] and len(summary["epochs_log"]) < 3
    import polars as pl

    df = pl.read_parquet(tmp_path / summary["file"])
    assert np.isfinite(df["loss"].to_numpy()).all() and set(df["design"]) == {"main", "lowvar", "noise"}
