"""``nascsim confirm SWEEP``: the Fig. 2 cell of a sweep re-trained network by network -- which runs
it takes, the split dropout each method is re-trained with, the proxy setting read from the
surrogate's model card, resume, the same table whatever --jobs, the table's columns, and a cell
the sweep does not hold (one line, exit 2, nothing written).

Everything at a tiny size: a sweep of 2 seeds x 3 methods at 200 steps on a stand-in surrogate,
a 3-class dataset of 12 training images, width 0.25 at 8 px, 1 epoch."""

import json
import os
import shutil

import polars as pl
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from _train_fixtures import write_image_folder  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from surrogate_fixtures import make_stand_in_surrogate  # noqa: E402

from nascsim.cli import cli  # noqa: E402
from nascsim.train.confirm_report import kendall_tau, read_table  # noqa: E402
from nascsim.train.confirm_sweep import Cell, ConfirmSettings, card_proxy, plan  # noqa: E402

FIG2 = ("nasc", "hwnas", "hwnas-dropout")
SEEDS = (0, 1)
TINY = ["--epochs", "1", "--batch-size", "8", "--lr", "0.02", "--no-progress"]


def _proxy_surrogate(tmp, name: str) -> str:
    """The stand-in surrogate as ``name``, its model card saying that its supernet was trained at
    width 0.25, 8 px (one fit serves both roles: the roles differ by id)."""
    from nascsim.surrogate import Surrogate, save_surrogate

    doc = json.loads(json.dumps(make_stand_in_surrogate("fbnet", 0).doc))
    doc["id"] = f"proxy-{name}"
    doc["card"]["supernet"] = {**doc["card"].get("supernet", {}), "recipe": {"width": 0.25, "resolution": 8}}
    return str(save_surrogate(Surrogate(doc), tmp / f"{name}.json"))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A sweep folder: T_th 30 and 40 ms, p 0 and 0.2, the three Fig. 2 methods, seeds 0 and 1."""
    tmp = tmp_path_factory.mktemp("sweep")
    drop, nodrop = _proxy_surrogate(tmp, "dropout"), _proxy_surrogate(tmp, "no_dropout")
    r = CliRunner().invoke(cli, ["sweep", "--thresholds", "30,40", "--loss", "0,0.2", "--seeds", "2", "--steps", "200",
                                 "--methods", ",".join(FIG2), "--surrogate-dropout", drop, "--surrogate-no-dropout", nodrop,
                                 "--out", str(tmp / "out"), "--jobs", "1", "--no-report"])
    assert r.exit_code == 0, r.output
    return tmp / "out"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    write_image_folder(root, classes=3, per_class=4, fmt="PNG", tar=True)
    return root


def confirm(*args):
    return CliRunner().invoke(cli, ["confirm", *map(str, args)])


@pytest.fixture(scope="module")
def one_job(sweep, data, tmp_path_factory):
    """The default cell re-trained (two processes)."""
    out = tmp_path_factory.mktemp("c2") / "confirm"
    r = confirm(sweep, "--data", data, "--out", out, "--jobs", "2", *TINY)
    assert r.exit_code == 0, r.output
    return out


def test_the_default_cell_is_every_fig2_method_and_seed_at_30_ms_and_p_0_2(one_job, sweep):
    from nascsim.sweep.store import read_runs

    table, meta = read_table(one_job / "confirm.parquet")
    assert table.height == len(FIG2) * len(SEEDS)
    assert table.select("method", "seed").rows() == [(m, s) for m in FIG2 for s in SEEDS]
    assert set(table["T_th"]) == {30.0} and set(table["p"]) == {0.2}
    runs = read_runs(sweep).filter((pl.col("threshold_ms") == 30.0) & (pl.col("loss") == 0.2))
    for r in table.iter_rows(named=True):
        run = runs.filter((pl.col("method") == r["method"]) & (pl.col("seed") == r["seed"])).row(0, named=True)
        assert r["arch"] == ",".join(run["arch"]) and r["split"] == run["split"]
        assert r["T_ms"] == run["T_ms"] and r["surrogate_acc"] == run["accuracy"]
    assert meta["cell"] == {"threshold_ms": 30.0, "loss": 0.2, "methods": list(FIG2), "seeds": list(SEEDS)}
    assert {p.name for p in one_job.iterdir()} >= {"confirm.parquet", "confirm.md", "confirm.png",
                                                   *(f"{m}-seed{s}" for m in FIG2 for s in SEEDS)}


def test_each_method_is_retrained_with_the_papers_split_dropout(one_job):
    table, meta = read_table(one_job / "confirm.parquet")
    assert dict(table.select("method", "split_dropout_train").unique().rows()) == {"nasc": 0.5, "hwnas": 0.0,
                                                                                "hwnas-dropout": 0.5}
    for r in table.iter_rows(named=True):
        done = json.loads((one_job / r["folder"] / "retrain.json").read_text())
        assert done["split_dropout_train"] == r["split_dropout_train"] and done["epochs"] == 1
    assert meta["split_dropout"] == {"nasc": 0.5, "hwnas": 0.0, "hwnas-dropout": 0.5}


def test_hwnas_and_hwnas_dropout_are_one_search_retrained_two_ways(one_job):
    table, _ = read_table(one_job / "confirm.parquet")
    for s in SEEDS:
        a, b = (table.filter((pl.col("method") == m) & (pl.col("seed") == s)).row(0, named=True) for m in ("hwnas", "hwnas-dropout"))
        assert (a["arch"], a["split"], a["T_ms"]) == (b["arch"], b["split"], b["T_ms"])
        assert a["surrogate"] != b["surrogate"]


def test_the_proxy_setting_comes_from_the_surrogates_model_card(one_job, sweep):
    table, meta = read_table(one_job / "confirm.parquet")
    assert set(table["width"]) == {0.25} and set(table["resolution"]) == {8}
    assert meta["proxy"] == {"width": 0.25, "resolution": 8} and "model card" in meta["proxy_source"]
    done = json.loads((one_job / "nasc-seed0" / "retrain.json").read_text())
    assert done["proxy"] == {"width": 0.25, "resolution": 8}


def test_a_card_without_a_proxy_setting_means_the_full_model_unless_given(sweep, data, tmp_path):
    assert card_proxy(make_stand_in_surrogate("fbnet", 0)) is None
    settings = ConfirmSettings(str(sweep), str(data), str(tmp_path / "o"), width=0.5)
    p = plan(settings)
    assert p.proxy == {"width": 0.5, "resolution": 8}  # the card's resolution, the given width
    assert not (tmp_path / "o").exists()


def test_the_table_has_one_row_per_network_with_every_accuracy_column(one_job):
    table, meta = read_table(one_job / "confirm.parquet")
    ps = ["p0", "p1", "p2", "p3", "p4", "p5"]
    need = {"method", "seed", "arch", "split", "T_ms", "T_th", "p", "surrogate_acc", "supernet_acc", "retrain_acc",
            *(f"{c}_{p}" for c in ("surrogate_acc", "supernet_acc", "retrain_acc") for p in ps)}
    assert need <= set(table.columns)
    assert table["retrain_acc"].null_count() == 0 and table["supernet_acc"].null_count() == table.height
    assert table["retrain_acc"].to_list() == table["retrain_acc_p2"].to_list()
    # the sweep's accuracy is its surrogate's prediction at the cell's p: the same surrogate predicts the curve
    assert table["surrogate_acc_p2"].to_list() == pytest.approx(table["surrogate_acc"].to_list())
    assert all(0 <= a <= 1 for a in table["retrain_acc_p0"])
    assert meta["epochs"] == 1 and meta["command"][:2] == ["nascsim", "confirm"]


def test_the_gap_report_names_each_network_tau_and_medians(one_job):
    text = (one_job / "confirm.md").read_text()
    table, _ = read_table(one_job / "confirm.parquet")
    assert "surrogate vs re-trained" in text and f"| {table.height} |" in text
    assert "Among the networks one surrogate judged" in text  # the two roles are two surrogates
    for m in FIG2:
        assert f"| {m} | 0 |" in text and f"| {m} | {len(SEEDS)} |" in text
    assert (one_job / "confirm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_kendall_tau_b_of_orders():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert kendall_tau([1, 2, 3], [10, 30, 20]) == pytest.approx(1 / 3)
    assert kendall_tau([1, 1, 1], [1, 2, 3]) != kendall_tau([1, 1, 1], [1, 2, 3])  # nan: one column constant


def test_rank_agreement_is_also_given_among_the_networks_one_surrogate_judged():
    from nascsim.train.confirm_report import rank_agreement, rank_agreement_per_surrogate

    # surrogate B predicts 10 points above A: pooled, that offset orders B's networks above A's
    table = pl.DataFrame({
        "method": ["nasc"] * 3 + ["hwnas"] * 3,
        "surrogate": ["A"] * 3 + ["B"] * 3,
        "surrogate_acc": [0.50, 0.51, 0.52, 0.60, 0.61, 0.62],
        "supernet_acc": [None] * 6,
        "retrain_acc": [0.53, 0.52, 0.51, 0.56, 0.55, 0.54],
    }, schema_overrides={"supernet_acc": pl.Float64})
    pooled = {(a, b): tau for a, b, tau, _ in rank_agreement(table)}
    assert pooled[("surrogate_acc", "retrain_acc")] > 0
    per = {(sid, a): (methods, tau, n) for sid, methods, a, tau, n in rank_agreement_per_surrogate(table)}
    assert per[("A", "surrogate_acc")] == (("nasc",), -1.0, 3)
    assert per[("B", "surrogate_acc")] == (("hwnas",), -1.0, 3)
    assert per[("A", "supernet_acc")][2] == 0


def test_one_job_writes_the_same_rows_as_two(one_job, sweep, data, tmp_path):
    out = tmp_path / "confirm"
    r = confirm(sweep, "--data", data, "--out", out, "--jobs", "1", "--seeds", "0", *TINY)
    assert r.exit_code == 0, r.output
    two, _ = read_table(one_job / "confirm.parquet")
    one, meta = read_table(out / "confirm.parquet")
    assert meta["cell"]["seeds"] == [0] and one.height == len(FIG2)
    assert one.drop("train_s").equals(two.filter(pl.col("seed") == 0).drop("train_s"))


def test_a_rerun_skips_finished_networks_and_resumes_a_cut_one(one_job, sweep, data, tmp_path):
    out = tmp_path / "confirm"
    shutil.copytree(one_job, out)
    before, _ = read_table(out / "confirm.parquet")
    cut = out / "hwnas-seed1"
    (cut / "retrain.json").unlink()  # its checkpoint stays: the run was cut after its last epoch
    stamps = {d.name: os.stat(d / "retrain.json").st_mtime_ns for d in out.iterdir() if (d / "retrain.json").exists()}
    r = confirm(sweep, "--data", data, "--out", out, "--jobs", "1", *TINY)
    assert r.exit_code == 0, r.output
    assert "6 networks (5 done, 1 to resume)" in r.stderr
    assert {d: os.stat(out / d / "retrain.json").st_mtime_ns for d in stamps} == stamps
    after, _ = read_table(out / "confirm.parquet")
    assert after.drop("train_s").equals(before.drop("train_s"))


def test_a_rerun_with_other_settings_is_refused_before_training(one_job, sweep, data, tmp_path):
    out = tmp_path / "confirm"
    shutil.copytree(one_job, out)
    r = confirm(sweep, "--data", data, "--out", out, "--epochs", "2", "--batch-size", "8", "--lr", "0.02", "--no-progress")
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "other settings" in r.stderr and "epochs" in r.stderr


def test_a_method_dropout_override_and_the_cell_options(sweep, data, tmp_path):
    cell = Cell(threshold_ms=40.0, loss=0.0, methods=("hwnas",), seeds=(1,))
    p = plan(ConfirmSettings(str(sweep), str(data), str(tmp_path / "o"), cell=cell, dropout={"hwnas": 0.3}, epochs=1))
    assert [(n.method, n.seed) for n in p.networks] == [("hwnas", 1)]
    assert p.recipes[0]["split_dropout"] == 0.3 and 0.0 in p.ps


@pytest.mark.parametrize("args,needle", [
    (["--threshold", "31"], "--threshold 31"),
    (["--loss", "0.3"], "--loss 0.3"),
    (["--methods", "nasc,random"], "random"),
    (["--seeds", "0,7"], "seed 7"),
    (["--methods", "bogus"], "bogus"),
    (["--method-dropout", "nasc"], "METHOD=P"),
    (["--supernet", "teacher=x.pt"], "teacher"),
    (["--top", "2", "--jobs", "2"], "--jobs"),
])
def test_a_cell_not_in_the_sweep_is_one_line_exit_2_and_writes_nothing(args, needle, sweep, data, tmp_path):
    out = tmp_path / "o"
    r = confirm(sweep, "--data", data, "--out", out, *TINY, *args)
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]
    assert not out.exists()


def test_supernet_accuracy_of_each_network_on_its_held_out_split(sweep, data, tmp_path):
    from nascsim.train.pretrain import pretrain
    from nascsim.train.recipe import Recipe

    pretrain(data, tmp_path / "sn", recipe=Recipe(epochs=1, batch_size=4, lr=0.02, width=0.25, resolution=8),
             valid_images=4, progress=False, monitor_pairs=0)
    out = tmp_path / "o"
    r = confirm(sweep, "--data", data, "--out", out, "--methods", "nasc,hwnas", "--seeds", "0",
                "--supernet", f"dropout={tmp_path / 'sn'}", *TINY)
    assert r.exit_code == 0, r.output
    table, _ = read_table(out / "confirm.parquet")
    nasc, hwnas = table.row(0, named=True), table.row(1, named=True)
    assert 0 <= nasc["supernet_acc"] <= 1 and nasc["supernet_acc"] == nasc["supernet_acc_p2"]
    assert hwnas["supernet_acc"] is None  # its role (no_dropout) has no supernet given
    cache = (out / "supernet_acc.json").stat().st_mtime_ns
    assert confirm(sweep, "--data", data, "--out", out, "--methods", "nasc,hwnas", "--seeds", "0",
                   "--supernet", f"dropout={tmp_path / 'sn'}", *TINY).exit_code == 0
    assert (out / "supernet_acc.json").stat().st_mtime_ns == cache  # read back, not evaluated again
