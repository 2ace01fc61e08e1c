"""``nascsim surrogate fit/report/show`` and the quality report's metrics."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import polars as pl
import pytest

from nascsim.cli import main
from nascsim.surrogate import fit_surrogate
from nascsim.surrogate.evals import load_evaluations
from nascsim.surrogate.report import evaluate, noise_ceiling, rank_metrics, table
from surrogate_fixtures import quick_options, synthetic_evaluations, write_evaluations


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    frame, meta = synthetic_evaluations("fbnet", n_pairs=70, seed=4)
    return write_evaluations(frame, meta, tmp_path_factory.mktemp("ev") / "fbnet-synth-1ep.parquet")


@pytest.fixture(autouse=True)
def quick_fit(monkeypatch):
    """The CLI builds FitOptions inside its commands; make those test-sized."""
    import nascsim.surrogate.fit as fit

    monkeypatch.setattr(fit, "FitOptions", lambda **kw: quick_options(**kw))


def test_fit_writes_surrogate_plot_and_report_and_prints_the_table(tmp_path, small_file, capsys):
    code, out, err = run(["surrogate", "fit", str(small_file), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == ["fbnet-synth-1ep.json", "fbnet-synth-1ep.report.json", "fbnet-synth-1ep.report.png"]
    assert "kendall" not in out and "random" in out and "region_out" in out
    assert "accuracy drop p=0 -> 0.5 predicted (the fitted surrogate" in out
    card = json.loads((tmp_path / "o" / "fbnet-synth-1ep.json").read_text())["card"]
    assert card["source"] == "fbnet-synth-1ep.parquet" and "quality" in card and "p_effect" in card


def test_fit_and_report_tell_on_stderr_what_they_are_doing_per_target_and_fold(tmp_path, small_file, capsys):
    code, out, err = run(["surrogate", "fit", str(small_file), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    assert "report fbnet-synth-1ep: design random" in err and "design region_out" in err
    for target in ("loss", "acc", "lsc"):
        assert f"fit fbnet-synth-1ep: target {target}" in err
    for target in ("loss", "acc"):  # the paired p-model: a level ensemble and an effect-of-p ensemble
        assert f"  {target}: level (means of " in err
        assert f"  {target}: effect of p (deviations): grid point 1/1 (max_leaf_nodes 8, min_samples_leaf 10), CV fold 2/2" in err
        assert f"  {target}: effect of p (deviations): refit on all" in err
    assert "  lsc: grid point 1/1 (max_leaf_nodes 8, min_samples_leaf 10), CV fold 2/2" in err and "  lsc: refit on all" in err
    code, out, err = run(["surrogate", "report", str(small_file), "--json", "--out", str(tmp_path / "r")], capsys)
    assert code == 0 and "CV fold 1/2" in err
    json.loads(out)  # progress stays off stdout
    code, out, err = run(["surrogate", "fit", str(small_file), "--out", str(tmp_path / "q"), "--quiet"], capsys)
    assert code == 0 and err == ""


def test_show_prints_a_model_card_and_json_prints_the_raw_file(tmp_path, small_file, capsys):
    code, _, err = run(["surrogate", "fit", str(small_file), "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 0, err
    path = tmp_path / "fbnet-synth-1ep.json"
    code, out, err = run(["surrogate", "show", str(path)], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("surrogate fbnet-synth-1ep (format 2")
    for label in ("data", "supernet", "model", "quality", "p effect", "noise"):
        assert any(line.startswith(f"  {label} ") for line in lines), label
    assert "fbnet-synth-1ep.parquet" in out and "split dropout 0.5" in out and "non-increasing" in out
    assert "random held-out pairs" in out and "1000 images" in out
    assert len(lines) < 15
    code, out, err = run(["surrogate", "show", str(path), "--json"], capsys)
    assert code == 0 and json.loads(out) == json.loads(path.read_text())


def test_report_prints_the_predicted_and_measured_accuracy_drop_from_p0_to_p05(tmp_path, small_file, capsys):
    code, out, err = run(["surrogate", "report", str(small_file), "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "accuracy drop p=0 -> 0.5 predicted (random-design fit, 2000 random (arch, split)): median" in out
    assert "accuracy drop p=0 -> 0.5 measured (main rows" in out
    code, out, err = run(["surrogate", "report", str(small_file), "--json", "--out", str(tmp_path)], capsys)
    eff = json.loads(out)["_p_effect"]
    assert eff["fit"]["acc_drop"]["min"] >= 0 and eff["measured"]["n"] > 0


def test_report_json_has_the_documented_keys_per_target(tmp_path, small_file, capsys):
    code, out, err = run(["surrogate", "report", str(small_file), "--json", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    r = json.loads(out)
    for target in ("loss", "acc", "lsc"):
        assert {"random", "region_out", "noise_ceiling_tau", "n_train", "n_test"} <= set(r[target])
        for design in ("random", "region_out"):
            assert {"kendall_tau", "spearman", "r2", "mae"} <= set(r[target][design])
    assert (tmp_path / "fbnet-synth-1ep.report.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.drop("split"), "missing column(s) split"),
        (lambda f: f.with_columns(pl.lit(12).alias("op02")), "op index 12"),
        (lambda f: f.with_columns(pl.lit(float("nan")).alias("loss")), "'loss' has"),
        (lambda f: f.filter(pl.col("repeat") == 0), "no pair was evaluated on two batches"),
        (lambda f: f.filter(pl.col("split") < 8), "no pair has a split in the held-out band 8..14"),
    ],
)
def test_fit_on_a_bad_file_exits_2_with_one_line_and_writes_nothing(tmp_path, change, message, capsys):
    frame, meta = synthetic_evaluations("fbnet", n_pairs=20, seed=1)
    path = write_evaluations(change(frame), meta, tmp_path / "bad.parquet")
    out_dir = tmp_path / "out"
    code, out, err = run(["surrogate", "fit", str(path), "--out", str(out_dir)], capsys)
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert not out_dir.exists()


def test_fit_with_an_unknown_space_in_the_metadata_exits_2(tmp_path, capsys):
    frame, meta = synthetic_evaluations("fbnet", n_pairs=20, seed=1)
    path = write_evaluations(frame, {**meta, "space": "resnet"}, tmp_path / "e.parquet")
    code, _, err = run(["surrogate", "fit", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "unknown space 'resnet'" in err and not (tmp_path / "o").exists()


def test_show_of_a_surrogate_with_another_format_version_exits_2(tmp_path, capsys):
    (tmp_path / "s.json").write_text(json.dumps({"format": "nascsim-surrogate", "format_version": 0}))
    code, _, err = run(["surrogate", "show", str(tmp_path / "s.json")], capsys)
    assert code == 2 and "format version 0" in err


def test_rank_metrics_of_a_perfect_and_a_reversed_prediction():
    obs = np.arange(50.0)
    perfect = rank_metrics(obs, obs, lower_is_better=True)
    assert perfect["kendall_tau"] == pytest.approx(1) and perfect["r2"] == pytest.approx(1) and perfect["mae"] == 0
    assert perfect["top10_tau"] == pytest.approx(1)
    assert rank_metrics(-obs, obs, lower_is_better=True)["kendall_tau"] == pytest.approx(-1)


def test_noise_ceiling_falls_as_minibatch_noise_grows():
    taus = []
    for sd in (0.002, 0.05):
        frame, meta = synthetic_evaluations("fbnet", n_pairs=150, seed=3, noise_sd=sd, repeat_frac=0.5)
        taus.append(noise_ceiling(load_evaluations(frame, meta=meta, id="x"), (0.0, 0.1, 0.2, 0.3, 0.4, 0.5))["lsc"]["noise_ceiling_tau"])
    assert taus[0] > 0.8 > 0.5 > taus[1]


def test_report_scores_against_lowvar_rows_when_present():
    frame, meta = synthetic_evaluations("fbnet", n_pairs=120, seed=6, lowvar_pairs=25)
    ev = load_evaluations(frame, meta=meta, id="x")
    r = evaluate(ev, quick_options())
    assert r["_meta"]["random"]["test_pairs"] == 25 and r["lsc"]["n_test"] == 25
    assert r["loss"]["random"]["against"].startswith("lowvar")
    # low-noise targets: the known structure is recovered much better than single-batch noise allows
    assert r["lsc"]["random"]["kendall_tau"] > 0.5
    assert "lsc" in table(r)
    # what the low-noise set itself allows: its values spread far more than the sampling noise of
    # 5,000 images, so a perfect predictor of the mean would nearly reach tau 1 against them ...
    assert 0.9 < r["lsc"]["lowvar_ceiling_tau"] <= 1 and 0 < r["lsc"]["lowvar_reliability"] <= 1
    assert "a perfect mean predictor reaches tau" in table(r)
    # ... and less when the same values stood for fewer images (more sampling noise per value)
    few = load_evaluations(frame.with_columns(pl.when(pl.col("lowvar")).then(pl.lit(20)).otherwise(pl.col("n_images")).alias("n_images")),
                           meta=meta, id="x")
    from nascsim.surrogate.report import lowvar_ceiling

    s = fit_surrogate(dataclasses.replace(ev, lowvar=ev.lowvar.clear()), options=quick_options())
    lo = lowvar_ceiling(few, s, (0.0, 0.1, 0.2, 0.3, 0.4, 0.5))["lsc"]
    assert lo["lowvar_noise_sd"] > r["lsc"]["lowvar_noise_sd"] and lo["lowvar_ceiling_tau"] < r["lsc"]["lowvar_ceiling_tau"]


def test_report_against_scores_a_fitted_surrogate_on_another_files_low_noise_rows_without_refitting(tmp_path, small_file, capsys):
    code, _, err = run(["surrogate", "fit", str(small_file), "--out", str(tmp_path / "o"), "--no-quality", "--quiet"], capsys)
    assert code == 0, err
    frame, meta = synthetic_evaluations("fbnet", n_pairs=80, seed=9, lowvar_pairs=30)  # the same truth, new pairs
    other = write_evaluations(frame, meta, tmp_path / "newer.parquet")
    fitted = tmp_path / "o" / "fbnet-synth-1ep.json"
    before = fitted.read_bytes()
    code, out, err = run(["surrogate", "report", str(fitted), "--against", str(other), "--json"], capsys)
    assert code == 0, err
    r = json.loads(out)
    assert r["_meta"]["pairs"] == 30 and r["lsc"]["n"] == 30 and r["loss"]["n"] == 30 * 6
    assert r["lsc"]["against"].startswith("lowvar") and r["lsc"]["kendall_tau"] > 0.5
    assert fitted.read_bytes() == before and not (tmp_path / "surrogate-report").exists()
    # by name: an archived shipped surrogate against the same file; as a table
    code, out, err = run(["surrogate", "report", "fbnet-cifar10-drop50-12ep", "--against", str(other)], capsys)
    assert code == 0, err
    assert out.startswith("surrogate fbnet-cifar10-drop50-12ep as fitted, against") and "lsc" in out
    # a parquet is no fitted surrogate: one line, exit 2
    code, out, err = run(["surrogate", "report", str(small_file), "--against", str(other)], capsys)
    assert code == 2 and "must be a surrogate JSON" in err and len(err.strip().splitlines()) == 1
