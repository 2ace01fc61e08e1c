"""Supernet pre-training (Algorithm 1, lines 2-4): it runs, logs, checkpoints every epoch, resumes
exactly; and the evaluation file it feeds follows the surrogate's schema."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny tensors: one thread avoids oversubscription when the suite shares cores

from _train_fixtures import write_cifar10  # noqa: E402

from nascsim.train.evaluate import evaluate_supernet, read_metadata  # noqa: E402
from nascsim.train.loop import Recipe, lr_at  # noqa: E402
from nascsim.train.pretrain import CHECKPOINT, pretrain  # noqa: E402

TINY = dict(valid_images=8, progress=False, monitor_pairs=2, train_images=16)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("c10")
    write_cifar10(root, per_batch=5, test=4)
    return root


def recipe(**kw):
    return Recipe(**{"epochs": 2, "batch_size": 8, "lr": 0.02, **kw})


def test_warmup_then_cosine_schedule():
    r = Recipe(epochs=4, lr=0.1, warmup_epochs=1)
    lrs = [lr_at(s, 10, r) for s in range(40)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] < 0.001


def test_bad_recipe_value_is_named():
    with pytest.raises(ValueError, match="split_dropout"):
        Recipe(split_dropout=1.0)


def test_resume_from_an_epoch_checkpoint_equals_an_uninterrupted_run(data, tmp_path):
    full = pretrain(data, tmp_path / "full", recipe=recipe(), **TINY)
    part = pretrain(data, tmp_path / "part", recipe=recipe(), max_epochs=1, **TINY)
    assert part["epoch"] == 1 and (tmp_path / "part" / CHECKPOINT).exists()
    resumed = pretrain(data, tmp_path / "part", resume=True, **TINY)
    assert resumed["epoch"] == 2
    for k, v in full["model"].items():
        assert torch.equal(v, resumed["model"][k]), k
    assert [e["loss"] for e in full["log"]] == [e["loss"] for e in resumed["log"]]
    for e in full["log"]:
        assert {"loss", "images_per_s", "subnet_acc_mean", "subnet_acc_sd"} <= set(e)


def test_existing_checkpoint_is_not_overwritten_without_resume(data, tmp_path):
    pretrain(data, tmp_path / "r", recipe=recipe(epochs=1), **TINY)
    with pytest.raises(ValueError, match="--resume"):
        pretrain(data, tmp_path / "r", recipe=recipe(epochs=1), **TINY)


def test_evaluation_file_follows_the_schema(data, tmp_path):
    pretrain(data, tmp_path / "sn", recipe=recipe(epochs=1, split_dropout=0.0), **TINY)
    out = tmp_path / "evals.parquet"
    ps = (0.0, 0.25, 0.5)
    meta = evaluate_supernet(tmp_path / "sn", data, out, pairs=5, lowvar_pairs=2, ps=ps, batch_images=4,
                             repeat_share=1.0, near_share=0.4, seed=1, progress=False)
    import polars as pl

    df = pl.read_parquet(out)
    ops = [f"op{i:02d}" for i in range(22)]
    assert df.columns == ["supernet", "pair", "arch", *ops, "split", "p", "batch", "repeat", "n_images", "loss",
                          "acc", "dataset", "seed", "lowvar", "design"]
    assert set(df["design"]) == {"main", "lowvar"} and (df["lowvar"] == (df["design"] == "lowvar")).all()
    assert df.schema["lowvar"] == pl.Boolean and df.schema["p"] == pl.Float64 and df.schema["op00"] == pl.Int64
    main = df.filter(~pl.col("lowvar"))
    # every pair has every p on its first batch, and (repeat_share 1) once more on another batch
    assert main.height == 5 * 2 * len(ps)
    per = main.group_by("pair", "repeat").agg(pl.col("p").sort(), pl.col("batch").n_unique())
    assert all(list(p) == list(ps) for p in per["p"]) and (per["batch"] == 1).all()
    assert (main.group_by("pair").agg(pl.col("batch").n_unique())["batch"] == 2).all()
    lv = df.filter(pl.col("lowvar"))
    assert lv.height == 2 * len(ps) and (lv["n_images"] == 8).all() and (lv["batch"] == -1).all()
    assert set(lv["pair"]).isdisjoint(set(main["pair"]))
    row = df.row(0, named=True)
    assert row["arch"] == ",".join(str(row[c]) for c in ops)
    assert df["acc"].is_between(0, 1).all() and (df["loss"] > 0).all()
    assert (df["supernet"] == "fbnet-cifar10-drop00-1ep").all() and (df["seed"] == 1).all()
    md = read_metadata(out)
    assert md == json.loads(json.dumps(meta))
    for key in ("dataset", "space", "classes", "split_dropout_train", "epochs", "images", "seed", "git_commit", "final_train_loss"):
        assert key in md, key
    assert md["split_dropout_train"] == 0.0 and md["epochs"] == 1 and md["images"] == 16
    assert md["eval"]["evals_per_s"] > 0 and md["eval"]["near_pairs"] == 2


def test_near_threshold_pairs_lie_in_the_band():
    from nascsim.hw.latency import breakdown, build_latency_model
    from nascsim.space import get_space
    from nascsim.train.evaluate import near_threshold_pairs

    sp = get_space("fbnet")
    archs, splits = near_threshold_pairs(sp, 20, (40.0,), 0.05, np.random.default_rng(0))
    model = build_latency_model(sp)
    T = np.array([breakdown(model, a, int(k))["T_ms"] for a, k in zip(archs, splits)])
    assert ((T >= 38.0) & (T <= 42.0)).all()


def test_git_commit_comes_from_the_environment_where_the_copy_has_no_git(monkeypatch):
    """A GPU machine gets the working tree without .git: the campaign records the commit that
    scripts/gpu-campaign.sh passes in NASCSIM_GIT_COMMIT (hex only), else "unknown"."""
    from nascsim.train import pretrain

    class NoGit:
        returncode, stdout = 128, ""

    monkeypatch.setattr(pretrain.subprocess, "run", lambda *a, **k: NoGit())
    monkeypatch.setenv("NASCSIM_GIT_COMMIT", "3fe2ed8")
    assert pretrain.git_commit() == "3fe2ed8"
    monkeypatch.setenv("NASCSIM_GIT_COMMIT", "$(rm -rf /)")
    assert pretrain.git_commit() == "unknown"
    monkeypatch.delenv("NASCSIM_GIT_COMMIT")
    assert pretrain.git_commit() == "unknown"
