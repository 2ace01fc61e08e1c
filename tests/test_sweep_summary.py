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


def test_accuracy_quantiles_over_feasible_runs_cover_feasible_runs_only(runs):
    s = summarize(runs)
    hw30 = s.filter((pl.col("method") == "hwnas") & (pl.col("threshold_ms") == 30.0) & (pl.col("loss") == 0.4)).row(0, named=True)
    feasible_acc = np.array([0.80 + 0.001 * k - 0.04 for k in range(6)])
    assert hw30["acc_median_feasible"] == pytest.approx(np.median(feasible_acc))
    assert hw30["acc_q25_feasible"] == pytest.approx(np.quantile(feasible_acc, 0.25))
    assert hw30["acc_q75_feasible"] == pytest.approx(np.quantile(feasible_acc, 0.75))
    hw20 = s.filter((pl.col("method") == "hwnas") & (pl.col("threshold_ms") == 20.0)).row(0, named=True)
    assert hw20["feasible_rate"] == 0.0 and hw20["acc_median_feasible"] is None


def test_accuracy_quantiles_over_all_runs_count_infeasible_runs_too(runs):
    """Issue 11 point 4: the paper's medians are over all models of a method, feasible or not."""
    s = summarize(runs)
    hw30 = s.filter((pl.col("method") == "hwnas") & (pl.col("threshold_ms") == 30.0) & (pl.col("loss") == 0.4)).row(0, named=True)
    all_acc = np.array([0.80 + 0.001 * k - 0.04 for k in range(SEEDS)])
    assert hw30["acc_median_all"] == pytest.approx(np.median(all_acc))
    assert hw30["acc_q25_all"] == pytest.approx(np.quantile(all_acc, 0.25))
    assert hw30["acc_q75_all"] == pytest.approx(np.quantile(all_acc, 0.75))
    assert hw30["acc_median_all"] != pytest.approx(hw30["acc_median_feasible"])
    hw20 = s.filter((pl.col("method") == "hwnas") & (pl.col("threshold_ms") == 20.0)).row(0, named=True)
    assert hw20["acc_median_all"] is not None and hw20["n_feasible"] == 0


def test_summary_text_labels_all_runs_and_feasible_runs_and_the_feasibility_rate(runs, tmp_path):
    text, _ = write_summaries(runs, tmp_path)
    full = (tmp_path / "summary.txt").read_text()
    for needle in ("acc all", "acc feas", "feas%", "ALL runs", "FEASIBLE runs"):
        assert needle in full
    assert "all|feas" in text and "feas%" in text


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
    assert row["acc_diff_median_feasible"] == pytest.approx(0.01)
    assert (row["wins_feasible"], row["losses_feasible"]) == (6, 0)
    assert row["p_wilcoxon_feasible"] == pytest.approx(2 / 2**6)  # all 6 differences positive
    assert row["acc_diff_median_all"] == pytest.approx(0.01)
    assert (row["wins_all"], row["losses_all"]) == (SEEDS, 0)
    assert row["p_wilcoxon_all"] == pytest.approx(2 / 2**SEEDS)


def test_pairing_uses_the_seed_not_the_row_order(runs):
    shuffled = runs.sample(fraction=1.0, shuffle=True, seed=3)
    assert compare(shuffled).equals(compare(runs))


def test_summary_files_are_written(runs, tmp_path):
    text, paths = write_summaries(runs, tmp_path)
    assert sorted(p.name for p in paths) == ["comparison.csv", "summary.csv", "summary.txt"]
    assert len(pl.read_csv(tmp_path / "summary.csv")) == 3 * 2 * 2
    assert "hwnas-dropout" in text and "Wilcoxon" in text


def test_the_printed_summary_is_compact_and_the_file_keeps_every_loss_rate(runs, tmp_path):
    text, _ = write_summaries(runs, tmp_path)
    full = (tmp_path / "summary.txt").read_text()
    # one row per (threshold, method) on screen, one per (threshold, loss, method) in the file
    assert sum(line.startswith(("nasc ", "hwnas ", "hwnas-dropout ")) for line in full.splitlines()) == 3 * 2 * 2
    rows = [line for line in text.splitlines() if line.split()[1:2] and line.split()[1] in ("nasc", "hwnas", "hwnas-dropout")]
    assert len(rows) == 3 * 2
    assert "acc% p=0 all|feas" in text and "acc% p=0.4 all|feas" in text
    assert "only the accuracy changes with p" in text  # T does not depend on p in these records
    assert "NASC vs baselines at loss rate 0" in text  # the rate nearest the paper's 0.2 among 0, 0.4


def test_theta_concentration_medians_appear_when_the_records_have_them(runs, tmp_path):
    s = summarize(runs)
    assert s["theta_op_confidence_median"].is_null().all()  # records without θ fields: null, no error
    with_theta = runs.with_columns((0.5 + 0.01 * pl.col("seed")).alias("theta_op_confidence"),
                                   pl.lit(0.25).alias("theta_decided_share"))
    s = summarize(with_theta).filter((pl.col("method") == "nasc") & (pl.col("threshold_ms") == 30.0)
                                     & (pl.col("loss") == 0.0)).row(0, named=True)
    assert s["theta_op_confidence_median"] == pytest.approx(np.median(0.5 + 0.01 * np.arange(SEEDS)))
    assert s["theta_decided_share_median"] == pytest.approx(0.25)
    text, _ = write_summaries(with_theta, tmp_path)
    assert "θ conf" in text and "decid%" in text
    nasc30 = next(line for line in text.splitlines() if line.split()[:2] == ["30", "nasc"])
    assert f" {np.median(0.5 + 0.01 * np.arange(SEEDS)):.2f} " in nasc30 and "    25 " in nasc30
    assert "decid%" in (tmp_path / "summary.txt").read_text()
    assert "θ conf" not in write_summaries(runs, tmp_path)[0]  # hidden when the records have no θ fields


class Card:
    """A surrogate as the provenance line sees it: id, dataset and model card."""

    def __init__(self, id, note=None, recipe=None):
        self.id, self.dataset = id, "cifar10"
        self.card = {"supernet": {"train_device": "cpu", **({"recipe": recipe} if recipe else {})},
                     **({"note": note} if note else {})}


def test_summary_text_names_the_surrogates_their_data_and_provisional_status(runs, tmp_path):
    cards = [Card("made-up-dropout", "Provisional: a short run"),
             Card("made-up-plain", recipe={"width": 0.25, "resolution": 16})]
    text, _ = write_summaries(runs, tmp_path, cards)
    first = text.splitlines()[0]
    assert first == ("accuracy surrogates: made-up-dropout (cifar10, full width, CPU supernet, PROVISIONAL); "
                     "made-up-plain (cifar10, proxy width 0.25 at 16 px, CPU supernet); "
                     "see `nascsim surrogate show`")
    assert (tmp_path / "summary.txt").read_text().splitlines()[0] == first
    text, _ = write_summaries(runs, tmp_path)  # no model cards at hand: ids and datasets from the rows
    assert text.splitlines()[0] == ("accuracy surrogates: made-up-dropout (cifar10, no model card); "
                                    "made-up-plain (cifar10, no model card)")


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
    for stem in ("scatter_T30_p0.4", "feasibility_vs_threshold", "accuracy_vs_threshold", "split_histogram"):
        assert f"{stem}.png" in names and f"{stem}.pdf" in names
    for p in paths:
        head = p.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else head.startswith(b"%PDF")
    assert not list((tmp_path / "plots").glob(".*"))  # no temporary files left


def test_plots_name_the_surrogates_and_their_dataset(runs):
    from nascsim.sweep.plots import provenance

    text = provenance(runs)
    assert "made-up-dropout (cifar10" in text and "made-up-plain (cifar10" in text


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
