"""Summaries and plots of a sweep, on run records these tests construct with known properties
(test data for the summary code, not an accuracy model)."""

import itertools
import math

import numpy as np
import polars as pl
import pytest

from nascsim.config import SearchConfig
from nascsim.sweep.grid import Grid
from nascsim.sweep.plots import write_plots
from nascsim.sweep.store import make_row, rows_frame
from nascsim.sweep.summary import compare, summarize, wilcoxon_signed_rank, write_summaries

SEEDS = 8


def record(config: SearchConfig) -> dict:
    """A made-up run result: the baselines' T is 25 ms + seed; NASC's T is 0.8 of that; NASC's
    accuracy is the baseline's + 1 point; hwnas-dropout's split is 12, the others' 8."""
    base_T = 25.0 + config.seed
    T = 0.8 * base_T if config.method == "nasc" else base_T
    acc = 0.80 + 0.001 * config.seed - 0.1 * config.loss + (0.01 if config.method == "nasc" else 0.0)
    return {
        **config.to_dict(),
        "arch": ["k3_e1"] * 22, "split": 12 if config.method == "hwnas-dropout" else 8,
        "T_head_ms": 0.5 * T, "T_comm_ms": 0.3 * T, "T_tail_ms": 0.2 * T, "T_ms": T,
        "feasible": T <= config.threshold_ms, "accuracy": acc,
        "surrogate": "made-up-dropout" if config.method != "hwnas" else "made-up-plain",
        "dataset": "cifar10", "steps": 123,
    }


@pytest.fixture(scope="module")
def runs():
    grid = Grid.build(threshold_ms="20,30", loss="0,0.4", method="nasc,hwnas,hwnas-dropout", seed=range(SEEDS))
    return rows_frame([make_row(c, record(c), 0.01) for c in grid.cells()])


def test_feasibility_rate_is_the_share_of_runs_within_the_threshold(runs):
    s = summarize(runs)
    nasc30 = s.filter((pl.col("method") == "nasc") & (pl.col("threshold_ms") == 30.0) & (pl.col("loss") == 0.0)).row(0, named=True)
    # NASC T = 0.8 (25 + seed) <= 30  <=>  seed <= 12.5: all 8 seeds
    assert nasc30["feasible_rate"] == 1.0 and nasc30["n_runs"] == SEEDS
    hw30 = s.filter((pl.col("method") == "hwnas") & (pl.col("threshold_ms") == 30.0) & (pl.col("loss") == 0.0)).row(0, named=True)
    assert hw30["feasible_rate"] == pytest.approx(6 / 8)  # 25 + seed <= 30 for seeds 0..5
    nasc20 = s.filter((pl.col("method") == "nasc") & (pl.col("threshold_ms") == 20.0) & (pl.col("loss") == 0.0)).row(0, named=True)
    assert nasc20["feasible_rate"] == pytest.approx(1 / 8)  # only seed 0: T = 20


def test_accuracy_quantiles_cover_feasible_runs_only(runs):
    s = summarize(runs)
    hw30 = s.filter((pl.col("method") == "hwnas") & (pl.col("threshold_ms") == 30.0) & (pl.col("loss") == 0.4)).row(0, named=True)
    feasible_acc = np.array([0.80 + 0.001 * k - 0.04 for k in range(6)])
    assert hw30["acc_median"] == pytest.approx(np.median(feasible_acc))
    assert hw30["acc_q25"] == pytest.approx(np.quantile(feasible_acc, 0.25))
    assert hw30["acc_q75"] == pytest.approx(np.quantile(feasible_acc, 0.75))
    hw20 = s.filter((pl.col("method") == "hwnas") & (pl.col("threshold_ms") == 20.0)).row(0, named=True)
    assert hw20["feasible_rate"] == 0.0 and hw20["acc_median"] is None


def test_latency_medians_break_down_into_head_comm_and_tail(runs):
    s = summarize(runs).filter(pl.col("method") == "hwnas").row(0, named=True)
    T = np.median(25.0 + np.arange(SEEDS))
    assert s["T_median"] == pytest.approx(T)
    assert (s["T_head_median"], s["T_comm_median"], s["T_tail_median"]) == pytest.approx((0.5 * T, 0.3 * T, 0.2 * T))


def test_nasc_is_compared_with_each_baseline_paired_per_seed(runs):
    c = compare(runs)
    assert set(c["baseline"]) == {"hwnas", "hwnas-dropout"}
    assert len(c) == 2 * 2 * 2  # thresholds x losses x baselines
    row = c.filter((pl.col("baseline") == "hwnas") & (pl.col("threshold_ms") == 30.0) & (pl.col("loss") == 0.0)).row(0, named=True)
    assert row["n_pairs"] == SEEDS
    assert row["T_reduction_median_pct"] == pytest.approx(20.0)
    assert row["n_both_feasible"] == 6
    assert row["acc_diff_median"] == pytest.approx(0.01)
    assert (row["wins"], row["losses"]) == (6, 0)
    assert row["p_wilcoxon"] == pytest.approx(2 / 2**6)  # all 6 differences positive


def test_pairing_uses_the_seed_not_the_row_order(runs):
    shuffled = runs.sample(fraction=1.0, shuffle=True, seed=3)
    assert compare(shuffled).equals(compare(runs))


def test_summary_files_are_written(runs, tmp_path):
    text, paths = write_summaries(runs, tmp_path)
    assert sorted(p.name for p in paths) == ["comparison.csv", "summary.csv", "summary.txt"]
    assert len(pl.read_csv(tmp_path / "summary.csv")) == 3 * 2 * 2
    assert "hwnas-dropout" in text and "Wilcoxon" in text


def test_summary_text_names_the_surrogate_and_its_dataset(runs, tmp_path):
    text, _ = write_summaries(runs, tmp_path)
    first = text.splitlines()[0]
    assert first.startswith("accuracy surrogate:") and "(cifar10)" in first
    assert (tmp_path / "summary.txt").read_text().splitlines()[0] == first


def test_other_axes_become_variants_of_each_method(runs):
    extra = runs.with_columns(pl.lit(2.0).alias("eps_lat"))
    both = pl.concat([runs, extra])
    s = summarize(both)
    assert set(s["variant"]) == {"eps_lat=1.0", "eps_lat=2.0"}
    assert len(s) == 2 * len(summarize(runs))


# -- the paired test ------------------------------------------------------------------------------

def brute_force_p(d):
    d = np.asarray(d, float)
    d = d[d != 0]
    a = np.abs(d)
    ranks = np.array([np.sum(a < x) + (np.sum(a == x) + 1) / 2 for x in a])
    w = ranks[d > 0].sum()
    ws = [ranks[np.array(s, bool)].sum() for s in itertools.product([0, 1], repeat=len(d))]
    ws = np.array(ws)
    return min(1.0, 2 * min(np.mean(ws <= w + 1e-9), np.mean(ws >= w - 1e-9)))


@pytest.mark.parametrize("d", [
    [0.3, -0.1, 0.5, 0.2, 0.7],
    [1, 1, -1, 2, 2, -3, 0, 4],  # ties and a zero
    [-0.2, -0.4, -0.1, -0.3, 0.05, -0.6, -0.25, -0.7, -0.15, 0.01],
    [0.5, 0.5, 0.5],
])
def test_wilcoxon_matches_full_enumeration_of_signs(d):
    _, p, n = wilcoxon_signed_rank(d)
    assert n == sum(x != 0 for x in d)
    assert p == pytest.approx(brute_force_p(d), abs=1e-12)


def test_wilcoxon_matches_scipy_without_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in (5, 12, 40):
        d = rng.normal(0.2, 1.0, n)
        assert wilcoxon_signed_rank(d)[1] == pytest.approx(stats.wilcoxon(d, method="exact").pvalue, rel=1e-9)


def test_wilcoxon_without_differences_gives_p_one():
    assert wilcoxon_signed_rank([0.0, 0.0]) == (0.0, 1.0, 0)
    assert wilcoxon_signed_rank([]) == (0.0, 1.0, 0)


# -- plots ----------------------------------------------------------------------------------------

def test_plots_are_written_as_png_and_pdf(runs, tmp_path):
    paths = write_plots(runs, tmp_path / "plots", cells=[(30.0, 0.4)])
    names = sorted(p.name for p in paths)
    for stem in ("scatter_T30_p0.4", "feasibility_heatmap", "accuracy_vs_threshold", "split_histogram"):
        assert f"{stem}.png" in names and f"{stem}.pdf" in names
    for p in paths:
        head = p.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else head.startswith(b"%PDF")
    assert not list((tmp_path / "plots").glob(".*"))  # no temporary files left


def test_plots_name_the_surrogates_and_their_dataset(runs):
    from nascsim.sweep.plots import provenance

    text = provenance(runs)
    assert "made-up-dropout (cifar10)" in text and "made-up-plain (cifar10)" in text


def test_default_scatter_cells_are_the_middle_threshold_at_both_loss_extremes(runs, tmp_path):
    paths = write_plots(runs, tmp_path)
    assert {p.name for p in paths} >= {"scatter_T30_p0.png", "scatter_T30_p0.4.png"}


def test_a_scatter_cell_without_runs_is_refused_before_writing(runs, tmp_path):
    with pytest.raises(ValueError, match="threshold 99"):
        write_plots(runs, tmp_path / "plots", cells=[(99.0, 0.0)])
    assert not (tmp_path / "plots").exists()


def test_make_row_keeps_the_config_and_records_resolved_values():
    config = SearchConfig(seed=3)
    row = make_row(config, record(config), 0.5)
    assert row["steps"] is None and row["steps_used"] == 123
    assert row["config_hash"] == config.content_hash()
    assert row["wall_s"] == 0.5 and not math.isnan(row["T_ms"])
