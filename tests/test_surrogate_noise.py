"""The minibatch noise model: its estimator recovers known variance components (crossed "noise"
design and "main" rows), fits write them in format 2, and version-1 or broken noise sections are
refused."""

import json

import numpy as np
import polars as pl
import pytest
from surrogate_fixtures import make_stand_in_surrogate, quick_options, synthetic_evaluations

from nascsim.surrogate.noise import estimate_components, minibatch_scale, shared_share

SD_PAIR, SD_BATCH, SD_OWN = 0.05, 0.02, 0.015


def crossed(n_pairs: int, n_batches: int, seed: int):
    """Every pair on every batch: y = u_pair + b_batch + e."""
    rng = np.random.default_rng(seed)
    u = rng.normal(0, SD_PAIR, n_pairs)
    b = rng.normal(0, SD_BATCH, n_batches)
    pair, batch = np.meshgrid(np.arange(n_pairs), np.arange(n_batches), indexing="ij")
    y = 2.0 + u[pair] + b[batch] + rng.normal(0, SD_OWN, pair.shape)
    return y.ravel(), pair.ravel(), batch.ravel()


def single_batch(n_pairs: int, n_batches: int, repeat_frac: float, seed: int):
    """Each pair on one random batch, a share of them again on another one."""
    rng = np.random.default_rng(seed)
    u = rng.normal(0, SD_PAIR, n_pairs)
    b = rng.normal(0, SD_BATCH, n_batches)
    ys, ps, bs = [], [], []
    for j in range(n_pairs):
        first = int(rng.integers(n_batches))
        batches = [first] + ([(first + 1 + int(rng.integers(n_batches - 1))) % n_batches] if rng.random() < repeat_frac else [])
        for bb in batches:
            ys.append(2.0 + u[j] + b[bb] + rng.normal(0, SD_OWN))
            ps.append(j)
            bs.append(bb)
    return np.array(ys), np.array(ps), np.array(bs)


def test_crossed_design_recovers_the_known_components():
    comp = estimate_components(*crossed(60, 300, seed=0))
    assert comp["batch"] == pytest.approx(SD_BATCH**2, rel=0.25)
    assert comp["own"] == pytest.approx(SD_OWN**2, rel=0.1)
    assert comp["pair"] == pytest.approx(SD_PAIR**2, rel=0.4)
    assert comp["share"] == pytest.approx(SD_BATCH**2 / (SD_BATCH**2 + SD_OWN**2), abs=0.08)


def test_on_a_balanced_crossed_design_the_estimate_is_the_two_way_anova():
    y, pair, batch = crossed(12, 9, seed=1)
    Y = y.reshape(12, 9)
    J, B = Y.shape
    grand = Y.mean()
    ms_pair = B * np.sum((Y.mean(axis=1) - grand) ** 2) / (J - 1)
    ms_batch = J * np.sum((Y.mean(axis=0) - grand) ** 2) / (B - 1)
    resid = Y - Y.mean(axis=1, keepdims=True) - Y.mean(axis=0, keepdims=True) + grand
    ms_err = np.sum(resid**2) / ((J - 1) * (B - 1))
    comp = estimate_components(y, pair, batch)
    assert comp["own"] == pytest.approx(ms_err, rel=1e-9)
    assert comp["batch"] == pytest.approx(max((ms_batch - ms_err) / J, 0.0), rel=1e-9)
    assert comp["pair"] == pytest.approx(max((ms_pair - ms_err) / B, 0.0), rel=1e-9)


def test_single_batch_pairs_with_repeats_recover_the_known_components():
    comp = estimate_components(*single_batch(8000, 500, 0.3, seed=2))
    assert comp["total"] == pytest.approx(SD_BATCH**2 + SD_OWN**2, rel=0.15)
    assert comp["batch"] == pytest.approx(SD_BATCH**2, rel=0.25)
    assert comp["share"] == pytest.approx(SD_BATCH**2 / (SD_BATCH**2 + SD_OWN**2), abs=0.1)


def test_without_repeats_or_shared_batches_the_components_cannot_be_estimated():
    y, pair, batch = single_batch(300, 20, 0.0, seed=3)
    with pytest.raises(ValueError, match="two batches"):
        estimate_components(y, pair, batch)
    with pytest.raises(ValueError, match="two pairs"):
        estimate_components([1.0, 1.1, 2.0, 2.2], [0, 0, 1, 1], [0, 1, 2, 3])


def _with_noise_design(frame: pl.DataFrame, n_pairs: int, n_batches: int, seed: int) -> pl.DataFrame:
    """Append a crossed "noise" design (known components) to synthetic evaluations."""
    rng = np.random.default_rng(seed)
    base = frame.filter(pl.col("repeat") == 0).unique(subset=["pair"], keep="first", maintain_order=True).head(n_pairs)
    b = rng.normal(0, SD_BATCH, n_batches)
    rows = []
    for r in base.iter_rows(named=True):
        for bb in range(n_batches):
            for p in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5):
                e = rng.normal(0, SD_OWN)
                rows.append({**r, "p": p, "batch": bb, "repeat": 0, "n_images": 64, "loss": r["loss"] + b[bb] + e,
                             "acc": min(max(r["acc"] - 0.5 * (b[bb] + e), 0.0), 1.0), "design": "noise"})
    main = frame.with_columns(pl.lit("main").alias("design"))
    return pl.concat([main, pl.DataFrame(rows, schema=main.schema)])


def test_fit_uses_the_noise_design_when_present_and_writes_format_two():
    from nascsim.surrogate.evals import load_evaluations
    from nascsim.surrogate.fit import noise_model
    from nascsim.surrogate.evals import lsc_table

    frame, meta = synthetic_evaluations("fbnet", n_pairs=120, seed=5)
    ev = load_evaluations(frame, meta=meta, id="x")
    noise_frame = _with_noise_design(frame, 40, 60, seed=6)
    noise_rows = noise_frame.filter(pl.col("design") == "noise").drop("design")
    ev_noise = type("EvWithNoise", (), {"rows": ev.rows, "noise": noise_rows, "source": "synthetic"})()
    loss_set = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    noise, info = noise_model(ev_noise, lsc_table(ev.rows, loss_set), loss_set)
    assert info["design"] == "noise" and noise["n_images"] == 64
    want_share = SD_BATCH**2 / (SD_BATCH**2 + SD_OWN**2)
    assert np.all(np.abs(np.array(noise["shared"]["loss"]) - want_share) < 0.15)
    assert np.all(np.abs(np.array(noise["loss"]) - np.hypot(SD_BATCH, SD_OWN)) < 0.006)


def test_fitted_surrogate_has_format_two_noise_and_its_card_shows_the_components():
    s = make_stand_in_surrogate("fbnet")
    noise = s.doc["noise"]
    assert s.doc["format_version"] == 2 and noise["n_images"] == 1000
    # synthetic rows: per-batch shift N(0, (sd/2)^2) shared by the pairs of a batch, own noise N(0, sd^2)
    assert 0.0 < noise["shared"]["loss"][0] < 0.6
    card = s.card["noise"]
    assert card["design"] == "main" and {"pair", "batch", "own", "share"} <= set(card["components"]["lsc"])


def test_search_noise_scales_as_one_over_the_minibatch_size():
    noise = {"p": [0.0, 0.5], "loss": [0.02, 0.04], "acc": [0.01, 0.01], "lsc": 0.02, "n_images": 1000,
             "shared": {"loss": [0.2, 0.6], "acc": [0.0, 0.0], "lsc": 0.5}}
    assert minibatch_scale(noise, 1000) == 1.0
    assert minibatch_scale(noise, 250) == pytest.approx(2.0)
    assert minibatch_scale(noise, None) == 1.0
    assert shared_share(noise, "loss", 0.25) == pytest.approx(0.4)
    assert shared_share(noise, "lsc", 0.3) == 0.5


def _doc_with(noise_changes: dict, version: int = 2) -> dict:
    doc = json.loads(json.dumps(make_stand_in_surrogate("fbnet").doc))
    doc["format_version"] = version
    doc["noise"].update(noise_changes)
    return doc


@pytest.mark.parametrize("changes, message", [
    ({"n_images": 0}, r"noise\.n_images = 0 is out of range"),
    ({"shared": {"loss": [0.1] * 6, "acc": [1.5] * 6, "lsc": 0.2}}, r"noise\.shared\.acc\[0\] = 1\.5 is out of range \[0, 1\]"),
    ({"shared": {"loss": [0.1] * 5, "acc": [0.1] * 6, "lsc": 0.2}}, r"noise\.shared\.loss has 5 entries, but noise\.p has 6"),
    ({"lsc": float("nan")}, r"noise\.lsc must be a finite number, got nan"),
    ({"loss": [-0.1] * 6}, r"noise\.loss\[0\] is a negative standard deviation"),
])
def test_broken_noise_sections_are_refused_naming_the_value(changes, message):
    from nascsim.surrogate.model import surrogate_from_doc

    with pytest.raises(ValueError, match=message):
        surrogate_from_doc(_doc_with(changes), "test doc")


def test_version_one_files_are_refused_with_the_refit_command(tmp_path):
    from nascsim.surrogate import load_surrogate

    doc = _doc_with({}, version=1)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="format-version-1 surrogate.*nascsim surrogate fit"):
        load_surrogate(path)


def test_observation_sd_equals_the_kernel_noise_sd_at_any_p():
    from nascsim.surrogate.noise import observation_sd
    from nascsim.surrogate.predict import TARGETS, noise_sd_one

    s = make_stand_in_surrogate("fbnet")
    arch = np.zeros(22, dtype=np.int64)
    for target in ("loss", "acc", "lsc"):
        for p in (0.0, 0.05, 0.1, 0.27, 0.5, 0.7):
            assert observation_sd(s.doc["noise"], target, p) == noise_sd_one(s.arrays, TARGETS[target], arch, 3, p)
