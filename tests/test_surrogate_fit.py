"""Fitting from evaluation files: validation of bad input, the l_SC table, the noise model, the
file format (save/load round trip, version and space checks) and the model card."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest

from nascsim.surrogate import fit_surrogate, load_surrogate, save_surrogate
from nascsim.surrogate.evals import load_evaluations, lsc_table
from nascsim.surrogate.fit import noise_model
from surrogate_fixtures import make_stand_in_surrogate, quick_options, synthetic_evaluations, write_evaluations


@pytest.fixture(scope="module")
def evals():
    return synthetic_evaluations("fbnet", n_pairs=60, seed=11)


def test_evaluation_file_metadata_supplies_space_dataset_and_id(tmp_path, evals):
    frame, meta = evals
    path = write_evaluations(frame, meta, tmp_path / "fbnet-synth-3ep.parquet")
    ev = load_evaluations(path)
    assert (ev.id, ev.space.name, ev.dataset, ev.classes, ev.split_dropout_train) == ("fbnet-synth-3ep", "fbnet", "synthetic", 10, 0.5)
    assert ev.lowvar.height == 0 and ev.rows.height == frame.height


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.drop("op07"), "missing column.*op07"),
        (lambda f: f.drop("loss", "acc"), "missing column.*loss, acc"),
        (lambda f: f.with_columns(pl.when((pl.col("pair") == 3) & (pl.col("repeat") == 0)).then(None).otherwise(pl.col("loss")).alias("loss")), "column 'loss' has 6 missing"),
        (lambda f: f.with_columns(pl.when((pl.col("pair") == 3) & (pl.col("repeat") == 0)).then(float("nan")).otherwise(pl.col("acc")).alias("acc")), "column 'acc' has 6 missing/NaN"),
        (lambda f: f.with_columns(pl.lit(9).alias("op05")), "column 'op05' holds op index 9, out of range 0..8"),
        (lambda f: f.with_columns(pl.lit(-1).alias("op00")), "op index -1"),
        (lambda f: f.with_columns(pl.lit(23).alias("split")), "split 23 is out of range"),
        (lambda f: f.with_columns(pl.lit(1.0).alias("p")), "dropout rate p 1.0"),
        (lambda f: f.with_columns(pl.lit(1.5).alias("acc")), "accuracy 1.5"),
        (lambda f: f.with_columns(pl.when(pl.col("pair") == 0).then(pl.lit("other")).otherwise(pl.col("supernet")).alias("supernet")), "several supernets"),
    ],
)
def test_bad_evaluation_frames_raise_one_clear_error(evals, change, message):
    frame, meta = evals
    with pytest.raises(ValueError, match=message):
        fit_surrogate(change(frame), meta=meta, id="x", options=quick_options())


def test_unknown_space_and_missing_metadata_are_named(evals):
    frame, meta = evals
    with pytest.raises(ValueError, match="unknown space 'mobilenet'"):
        load_evaluations(frame, meta={**meta, "space": "mobilenet"}, id="x")
    with pytest.raises(ValueError, match="search space unknown"):
        load_evaluations(frame, meta={k: v for k, v in meta.items() if k != "space"}, id="x")
    with pytest.raises(ValueError, match="split_dropout_train"):
        load_evaluations(frame, meta={k: v for k, v in meta.items() if k != "split_dropout_train"}, id="x")
    with pytest.raises(ValueError, match="id unknown"):
        load_evaluations(frame, meta=meta)


def test_extended_space_accepts_bottleneck_ops_that_fbnet_rejects():
    frame, meta = synthetic_evaluations("extended", n_pairs=40, seed=2)
    assert frame.select(pl.col("^op..$").max()).to_numpy().max() >= 9
    load_evaluations(frame, meta=meta, id="x")
    with pytest.raises(ValueError, match="out of range 0..8 for the fbnet space"):
        load_evaluations(frame, meta={**meta, "space": "fbnet"}, id="x")


def test_lsc_table_averages_the_loss_over_the_loss_set_per_pair_and_batch(evals):
    frame, _ = evals
    lsc = lsc_table(frame, (0.0, 0.1, 0.2, 0.3, 0.4, 0.5))
    pair0 = frame.filter((pl.col("pair") == 0) & (pl.col("repeat") == 0))
    assert lsc.filter((pl.col("pair") == 0) & (pl.col("repeat") == 0))["lsc"][0] == pytest.approx(pair0["loss"].mean())
    assert lsc.height == frame.select("pair", "batch", "repeat").unique().height
    # a pair lacking one p of the loss set has no l_SC observation
    partial = frame.filter(~((pl.col("pair") == 0) & (pl.col("p") == 0.3)))
    assert 0 not in lsc_table(partial, (0.0, 0.1, 0.2, 0.3, 0.4, 0.5))["pair"].to_list()


def test_noise_model_recovers_the_synthetic_minibatch_noise():
    frame, meta = synthetic_evaluations("fbnet", n_pairs=400, seed=5, noise_sd=0.02, repeat_frac=0.5)
    ev = load_evaluations(frame, meta=meta, id="x")
    noise, info = noise_model(ev, lsc_table(ev.rows, (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)), (0.0, 0.1, 0.2, 0.3, 0.4, 0.5))
    # one observation: N(0, 0.02) row noise + N(0, 0.01) batch shift (different batches) -> sd 0.0224
    assert np.allclose(noise["loss"], 0.0224, rtol=0.2)
    # l_SC averages six independent row noises on one batch: sqrt(0.02^2 / 6 + 0.01^2) = 0.0129
    assert noise["lsc"] == pytest.approx(0.0129, rel=0.2)
    assert min(info["repeat_pairs_per_p"]) >= 30


def test_noise_model_needs_repeated_evaluations(evals):
    frame, meta = evals
    with pytest.raises(ValueError, match="two batches"):
        fit_surrogate(frame.filter(pl.col("repeat") == 0), meta=meta, id="x", options=quick_options())


def test_a_fit_needs_two_pairs_and_for_the_paired_model_a_batch_with_every_p(evals):
    frame, meta = evals
    with pytest.raises(ValueError, match="only 1 distinct pair"):
        fit_surrogate(frame.filter(pl.col("pair") == 3), meta=meta, id="x", options=quick_options())
    # one extra evaluation at p = 0.7 on a batch of its own: no (pair, batch) group holds every p
    # of the file any more, while l_SC (over the loss set) and the noise model still have data
    extra = frame.filter((pl.col("pair") == 0) & (pl.col("repeat") == 0) & (pl.col("p") == 0.5)).with_columns(
        pl.lit(0.7).alias("p"), pl.lit(99).cast(frame["batch"].dtype).alias("batch"), pl.lit(2).cast(frame["repeat"].dtype).alias("repeat"))
    with pytest.raises(ValueError, match="the paired p-model needs some"):
        fit_surrogate(pl.concat([frame, extra]), meta=meta, id="x", options=quick_options())
    fit_surrogate(pl.concat([frame, extra]), meta=meta, id="x", options=quick_options(p_model="joint"))


def test_save_load_round_trip_gives_identical_predictions_and_card(tmp_path):
    s = make_stand_in_surrogate("extended")
    path = save_surrogate(s, tmp_path / "s.json")
    t = load_surrogate(path, space="extended")
    rng = np.random.default_rng(0)
    a, k, p = rng.integers(0, 15, (300, 22)), rng.integers(0, 23, 300), rng.uniform(0, 0.5, 300)
    for target in ("loss", "acc", "lsc"):
        np.testing.assert_array_equal(s.predict(target, a, k, p), t.predict(target, a, k, p))
        np.testing.assert_array_equal(s.noise_sd(target, a, k, p), t.noise_sd(target, a, k, p))
    assert t.card == s.card and t.id == s.id and t.loss_set == s.loss_set
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_loading_without_sklearn_works(tmp_path):
    import subprocess
    import sys

    path = save_surrogate(make_stand_in_surrogate("fbnet"), tmp_path / "s.json")
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import numpy as np\n"
        "from nascsim.surrogate import load_surrogate\n"
        f"s = load_surrogate({str(path)!r})\n"
        "print(s.predict('lsc', np.zeros((1, 22), dtype=np.int64), [3], [0.0])[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) > 0


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(format_version=99), "format version 99"),
        (lambda d: d.update(format="something-else"), "not a nascsim surrogate"),
        (lambda d: d.update(space="mobilenet"), "unknown space 'mobilenet'"),
        (lambda d: d["targets"].pop("lsc"), "targets.lsc is missing"),
        (lambda d: d.update(format_version=1), "refit it with `nascsim surrogate fit"),
    ],
)
def test_bad_surrogate_files_are_rejected(tmp_path, edit, message):
    doc = json.loads(json.dumps(make_stand_in_surrogate("fbnet").doc))
    edit(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=message):
        load_surrogate(path)


def test_surrogate_of_another_space_is_rejected(tmp_path):
    path = save_surrogate(make_stand_in_surrogate("extended"), tmp_path / "ext.json")
    with pytest.raises(ValueError, match="surrogate of the 'extended' space, not 'fbnet'"):
        load_surrogate(path, space="fbnet")


def test_model_card_names_source_training_dataset_and_sizes(evals):
    frame, meta = evals
    s = fit_surrogate(frame, meta={**meta, "epochs_run": 7}, id="fbnet-synth-7ep", options=quick_options(), quality={"loss": {"random": {"kendall_tau": 0.5}}})
    card = s.card
    assert card["id"] == "fbnet-synth-7ep" and card["dataset"] == "synthetic"
    assert card["supernet"]["epochs_run"] == 7 and card["split_dropout_train"] == 0.5
    assert card["sizes"]["pairs"] == 60 and card["sizes"]["rows"] == frame.height
    assert card["quality"]["loss"]["random"]["kendall_tau"] == 0.5
    assert set(card["model"]["chosen"]) == {"loss", "acc", "lsc"}


def test_the_card_says_what_the_surrogate_is_with_the_supernet_accuracy_the_data_measured():
    from nascsim.surrogate.report import model_card

    frame, meta = synthetic_evaluations("fbnet", n_pairs=60, seed=5, lowvar_pairs=20)
    meta = {**meta, "recipe": {"width": 0.25, "resolution": 16}, "train_device": "cpu"}
    s = fit_surrogate(frame, meta=meta, id="fbnet-synth-proxy", options=quick_options(), quality={"lsc": {"random": {"kendall_tau": 0.61, "against": "lowvar"}}})
    low = frame.filter(pl.col("lowvar") & (pl.col("p") == 0.0))
    m = s.card["measured"]
    assert m["on"].startswith("lowvar") and m["pairs"] == 20
    assert m["acc_p0_mean"] == pytest.approx(low["acc"].mean()) and m["acc_p0_sd"] == pytest.approx(low["acc"].std())
    assert m["acc_pmax_mean"] < m["acc_p0_mean"]  # the synthetic truth loses accuracy with p
    line = next(x for x in model_card(s).splitlines() if x.startswith("  is "))
    assert "synthetic, proxy width 0.25 at 16 px, CPU supernet" in line
    assert f"supernet accuracy {100 * low['acc'].mean():.1f}%" in line and "l_SC Kendall tau +0.61" in line and "against lowvar" in line
    without = fit_surrogate(frame.filter(~pl.col("lowvar")), meta=meta, id="fbnet-synth-main", options=quick_options())
    assert without.card["measured"]["on"].startswith("main") and without.card["measured"]["pairs"] == 60


def test_default_surrogates_load_with_dropout_and_no_dropout_supernets():
    from nascsim.surrogate import default_surrogates

    d = default_surrogates()
    assert set(d) == {"dropout", "no_dropout"}
    assert d["dropout"].split_dropout_train > 0 and d["no_dropout"].split_dropout_train == 0
    for s in d.values():
        assert s.space == "fbnet" and s.classes == 10 and s.loss_set == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
        assert s.card["quality"]["lsc"]["random"]["kendall_tau"] is not None
        x = s.predict("lsc", np.zeros((2, 22), dtype=np.int64), [0, 22], [0.0, 0.0])
        assert np.all(np.isfinite(x))
    with pytest.raises(ValueError, match="unknown space"):
        default_surrogates("nope")


def test_every_shipped_surrogate_loads_by_its_name_and_replaced_defaults_stay_in_the_archive():
    from nascsim.surrogate import load_surrogate
    from nascsim.surrogate.model import shipped_names

    names = shipped_names()
    assert {"fbnet-dropout", "fbnet-no_dropout", "fbnet-cifar10-drop50-12ep", "fbnet-cifar10-drop00-11ep"} <= set(names)
    for name in names:
        s = load_surrogate(name)
        assert s.space in ("fbnet", "extended") and (name.startswith(s.space) or name == s.id)
    assert load_surrogate("fbnet-cifar10-drop50-12ep").split_dropout_train == 0.5
    for bad in ("fbnet-dropout.report", "../surrogate/fbnet-dropout", "archive/fbnet-cifar10-drop50-12ep", "nope"):
        with pytest.raises(FileNotFoundError, match="nor a shipped surrogate"):
            load_surrogate(bad)


def _with_designs(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with a ``design`` column: pairs 0..9 become a "noise" set with wild values."""
    design = pl.when(pl.col("lowvar")).then(pl.lit("lowvar")).when(pl.col("pair") < 10).then(pl.lit("noise")).otherwise(pl.lit("main"))
    return frame.with_columns(design.alias("design")).with_columns(
        pl.when(pl.col("design") == "noise").then(pl.lit(9.0)).otherwise(pl.col("loss")).alias("loss")
    )


def test_design_column_splits_main_lowvar_and_noise_rows():
    frame, meta = synthetic_evaluations("fbnet", n_pairs=60, seed=11, lowvar_pairs=20)
    ev = load_evaluations(_with_designs(frame), meta=meta, id="x")
    assert set(ev.rows["design"]) == {"main"} and set(ev.lowvar["design"]) == {"lowvar"} and set(ev.noise["design"]) == {"noise"}
    assert ev.noise["pair"].max() == 9 and ev.rows["pair"].min() == 10
    assert ev.rows.height + ev.lowvar.height + ev.noise.height == frame.height
    # without a design column: lowvar where lowvar is true, main elsewhere
    ev0 = load_evaluations(frame, meta=meta, id="x")
    assert ev0.noise.height == 0 and ev0.lowvar.height == frame["lowvar"].sum() and set(ev0.rows["design"]) == {"main"}


def test_trees_are_fitted_on_main_rows_only():
    """The "noise" rows carry a loss of 9 nats: were they fitted, predictions would move towards it."""
    frame, meta = synthetic_evaluations("fbnet", n_pairs=60, seed=11)
    s = fit_surrogate(_with_designs(frame), meta=meta, id="x", options=quick_options())
    assert s.card["sizes"]["noise_rows"] == frame.filter(pl.col("pair") < 10).height
    assert s.card["sizes"]["rows"] == frame.filter(pl.col("pair") >= 10).height
    rng = np.random.default_rng(0)
    pred = s.predict("loss", rng.integers(0, 9, (200, 22)), rng.integers(0, 23, 200), np.zeros(200))
    assert pred.max() < 2.5


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.with_columns(pl.lit("extra").alias("design")), "column 'design' holds 'extra'"),
        (lambda f: f.with_columns(pl.lit(None, dtype=pl.String).alias("design")), "column 'design' must hold strings"),
        (lambda f: f.with_columns(pl.lit(1).alias("design")), "column 'design' must hold strings"),
        (lambda f: f.with_columns(pl.lit("lowvar").alias("design")), "has design 'lowvar' but lowvar false"),
        (lambda f: f.with_columns(pl.lit("noise").alias("design"), pl.lit(False).alias("lowvar")), 'no "main" (single-batch) rows'),
        (lambda f: f.with_columns(pl.col("split").cast(pl.Float64) + 0.5), "column 'split' holds"),
        (lambda f: f.with_columns(pl.lit(0).alias("n_images")), "'n_images' must hold positive integers"),
        (lambda f: f.with_columns(pl.lit(float("inf")).alias("p")), "column 'p' has infinite"),
    ],
)
def test_bad_design_and_integer_columns_are_named(evals, change, message):
    frame, meta = evals
    with pytest.raises(ValueError, match=re.escape(message)):
        load_evaluations(change(frame), meta=meta, id="x")


def test_an_unsafe_surrogate_id_is_refused_wherever_it_comes_from(evals):
    frame, meta = evals
    with pytest.raises(ValueError, match="surrogate id '../x' is not a safe name"):
        load_evaluations(frame, meta={**meta, "id": "../x"})
    with pytest.raises(ValueError, match="not a safe name"):
        load_evaluations(frame, meta=meta, id="a/b")
