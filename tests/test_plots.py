"""The sweep's figures, on run records these tests construct with known properties (test data for
the plotting code, not an accuracy model): which cells and axes they show, units, legends, titles
that fit, and the search trace plot."""

import numpy as np
import polars as pl
import pytest

from nascsim.config import SearchConfig
from nascsim.sweep import plots
from nascsim.sweep.grid import Grid
from nascsim.sweep.plots import default_cells, main_axes, pareto_front, plot_trace, write_plots
from nascsim.sweep.store import make_row, rows_frame


def record(config: SearchConfig) -> dict:
    """Made-up result: T grows with the seed and shrinks with ε_lat; NASC is 0.8 x as slow."""
    T = (25.0 + config.seed) / config.eps_lat ** 0.1 * (0.8 if config.method == "nasc" else 1.0)
    return {**config.to_dict(), "arch": ["k3_e1"] * 22, "split": 8 + config.seed % 3, "T_head_ms": 0.5 * T,
            "T_comm_ms": 0.3 * T, "T_tail_ms": 0.2 * T, "T_ms": T, "feasible": T <= config.threshold_ms,
            "accuracy": 0.25 + 0.001 * config.seed - 0.01 * config.loss, "surrogate": "made-up",
            "dataset": "cifar10", "steps": 10}


def frame_of(T=None, **grid):
    """Rows of the made-up ``record``; ``T(config)`` replaces its latency (and feasibility)."""
    rows = []
    for c in Grid.build(**grid).cells():
        r = record(c)
        if T is not None:
            r.update(T_ms=T(c), feasible=T(c) <= c.threshold_ms)
        rows.append(make_row(c, r, 0.01))
    return rows_frame(rows)


class Card:
    """A surrogate as the provenance line sees it: id, dataset and model card."""

    def __init__(self, id, note=None):
        self.id, self.dataset = id, "cifar10"
        self.card = {"supernet": {"device": "NVIDIA H200"}, **({"note": note} if note else {})}


@pytest.fixture(scope="module")
def paper_grid():
    return frame_of(threshold_ms="10:40:5", loss="0:0.5:0.1", method="nasc,hwnas", seed=range(3))


@pytest.fixture(scope="module")
def ablation():
    return frame_of(threshold_ms="30", loss="0.2", method="nasc,hwnas", seed=range(3), eps_lat="0.5,1,2", lam="2,4")


@pytest.fixture
def figures(monkeypatch):
    """Capture each figure instead of writing it: {stem: Figure}."""
    captured = {}

    def keep(fig, out_dir, stem):
        captured[stem] = fig
        return []

    monkeypatch.setattr(plots, "_save", keep)
    return captured


def test_the_default_scatter_is_the_papers_setting(paper_grid):
    assert default_cells(paper_grid) == [(30.0, 0.2)]
    extended = paper_grid.with_columns(pl.lit("extended").alias("space"))
    assert default_cells(extended) == [(15.0, 0.2)]
    coarse = frame_of(threshold_ms="20,35", loss="0,0.5", method="nasc", seed=range(2))
    assert default_cells(coarse) == [(35.0, 0.0)]  # the nearest cell swept (ties: the lower rate)


def test_the_written_files_include_the_pareto_plot_and_the_papers_scatter(paper_grid, tmp_path):
    names = {p.name for p in write_plots(paper_grid, tmp_path)}
    for stem in ("scatter_T30_p0.2", "pareto_p0.2", "feasibility_vs_threshold", "accuracy_vs_threshold",
                 "split_histogram"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
    assert "feasibility_heatmap.png" not in names  # T does not depend on the loss rate here


def test_scatter_shows_accuracy_in_percent(paper_grid, figures, tmp_path):
    write_plots(paper_grid, tmp_path, cells=[(30.0, 0.2)])
    ax = figures["scatter_T30_p0.2"].axes[0]
    ys = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections])
    cell = paper_grid.filter((pl.col("threshold_ms") == 30.0) & (pl.col("loss") == 0.2))
    assert sorted(ys) == pytest.approx(sorted(100 * cell["accuracy"].to_numpy()))
    assert "(%)" in ax.get_ylabel()


def loss_dependent_T(c):
    """Made-up latency that grows with the loss rate: feasibility varies along T_th and p."""
    return 20.0 + c.seed + 20.0 * c.loss


def test_heatmap_cells_and_colour_bar_are_in_percent(figures, tmp_path):
    f = frame_of(T=loss_dependent_T, threshold_ms="10:40:5", loss="0:0.5:0.1", method="nasc,hwnas", seed=range(3))
    write_plots(f, tmp_path)
    fig = figures["feasibility_heatmap"]
    image = fig.axes[0].images[0]
    assert image.get_clim() == (0, 100) and np.nanmax(image.get_array()) == 100.0
    colour_bar = [ax for ax in fig.axes if "%" in ax.get_ylabel() and not ax.images]
    assert colour_bar, "the colour bar is labelled in %"


def test_an_ablation_is_plotted_along_its_swept_axes(ablation, figures, tmp_path):
    assert main_axes(ablation) == ["eps_lat", "lam"]
    write_plots(ablation, tmp_path)
    assert "accuracy_vs_eps_lat" in figures and "accuracy_vs_threshold" not in figures
    for line in figures["accuracy_vs_eps_lat"].axes[0].get_lines():
        assert len(line.get_xdata()) == 3  # one point per ε_lat, not a one-point line
    # every run is feasible at 30 ms here: no feasibility figure at all
    assert not [stem for stem in figures if stem.startswith("feasibility")]
    f = frame_of(T=lambda c: (26.0 + c.seed + c.lam) / c.eps_lat ** 0.2, threshold_ms="30", loss="0.2",
                 method="nasc,hwnas", seed=range(3), eps_lat="0.5,1,2", lam="2,4")
    figures.clear()
    write_plots(f, tmp_path)
    heat = figures["feasibility_heatmap"]
    assert heat.axes[0].images[0].get_array().shape == (3, 2)  # ε_lat x λ, not 1 x 1
    assert heat.axes[0].get_ylabel() == "ε_lat" and heat.axes[0].get_xlabel() == "λ"


def test_one_swept_axis_gives_a_feasibility_line_not_a_one_column_heatmap(figures, tmp_path):
    f = frame_of(threshold_ms="20:40:5", loss="0.2", method="nasc", seed=range(2))
    write_plots(f, tmp_path)
    assert "feasibility_heatmap" not in figures
    ax = figures["feasibility_vs_threshold"].axes[0]
    assert not ax.images and len(ax.get_lines()[0].get_xdata()) == 5


def test_feasibility_constant_along_the_loss_rate_is_a_line_over_the_threshold(paper_grid, figures, tmp_path):
    """One search serves every loss rate of a cell, so feasibility cannot vary along p: a T_th x p
    heatmap would repeat each row six times."""
    write_plots(paper_grid, tmp_path)
    assert "feasibility_heatmap" not in figures
    ax = figures["feasibility_vs_threshold"].axes[0]
    assert ax.get_xlabel() == "T_th (ms)" and {len(line.get_xdata()) for line in ax.get_lines()} == {7}
    assert ax.get_legend() is not None and len(ax.get_lines()) == 2  # nasc and hwnas in one panel


def test_no_one_point_accuracy_plot_for_a_single_threshold_and_rate(figures, tmp_path):
    write_plots(frame_of(threshold_ms="30", loss="0.2", method="nasc,hwnas", seed=range(3)), tmp_path)
    assert not [stem for stem in figures if stem.startswith(("accuracy_vs", "feasibility"))]
    figures.clear()
    write_plots(frame_of(threshold_ms="30", loss="0:0.5:0.1", method="nasc", seed=range(3)), tmp_path)
    lines = figures["accuracy_vs_loss"].axes[0].get_lines()
    assert lines and all(len(line.get_xdata()) == 6 for line in lines)


def test_accuracy_panels_share_a_y_range_that_holds_every_run(paper_grid, figures, tmp_path):
    """The y range shows the seed spread (every run is a dot inside it), spans at least
    MIN_ACC_SPAN points, and is the same in every panel."""
    write_plots(paper_grid, tmp_path)
    fig = figures["accuracy_vs_threshold"]
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["loss rate p = 0", "loss rate p = 0.2", "loss rate p = 0.5"]
    limits = {ax.get_ylim() for ax in panels}
    assert len(limits) == 1
    (lo, hi), = limits
    acc = 100 * paper_grid["accuracy"].to_numpy()
    assert lo <= acc.min() and acc.max() <= hi and hi - lo >= plots.MIN_ACC_SPAN
    from matplotlib.collections import PathCollection

    dots = [c.get_offsets() for ax in panels for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(d) for d in dots) == len(paper_grid.filter(pl.col("loss").is_in([0.0, 0.2, 0.5])))


def test_methods_sharing_one_search_share_one_panel(figures, tmp_path):
    """hwnas and hwnas-dropout: one search, judged by two surrogates. Figures of the search alone
    show it once and say so; figures of accuracy keep both."""
    f = frame_of(threshold_ms="20:40:5", loss="0,0.2", method="nasc,hwnas,hwnas-dropout", seed=range(3))
    f = f.with_columns(pl.when(pl.col("method") == "hwnas-dropout").then(pl.col("accuracy") + 0.05)
                       .otherwise(pl.col("accuracy")).alias("accuracy"))
    assert plots.shared_searches(f) == {"hwnas": "hwnas = hwnas-dropout", "hwnas-dropout": "hwnas = hwnas-dropout",
                                        "nasc": "nasc"}
    write_plots(f, tmp_path)
    hist = figures["split_histogram"]
    titles = [ax.get_title() for ax in hist.axes if ax.get_visible()]
    assert titles == ["hwnas = hwnas-dropout (15 searches)", "nasc (15 searches)"]
    assert "hwnas = hwnas-dropout: one search (same split and latency), shown once" in \
        " ".join(hist._suptitle.get_text().split())
    assert len({ax.get_ylim() for ax in hist.axes if ax.get_visible()}) == 1  # one y scale
    labels = [t.get_text() for t in figures["feasibility_vs_threshold"].axes[0].get_legend().get_texts()]
    assert labels == ["hwnas = hwnas-dropout", "nasc"]
    assert len([ax for ax in figures["pareto_p0.2"].axes if ax.get_visible() and ax.get_title()]) == 3
    apart = f.with_columns(pl.when(pl.col("method") == "hwnas-dropout").then(pl.col("split") + 1)
                           .otherwise(pl.col("split")).alias("split"))
    assert plots.shared_searches(apart)["hwnas-dropout"] == "hwnas-dropout"


def test_every_figure_names_the_surrogates_their_data_and_provisional_status(paper_grid, figures, tmp_path):
    write_plots(paper_grid, tmp_path, surrogates=[Card("made-up", "PROVISIONAL: short runs")])
    for stem, fig in figures.items():
        title = fig._suptitle.get_text().replace("\n", " ")
        assert "made-up (cifar10, full width, GPU supernet, PROVISIONAL)" in title, stem
    figures.clear()
    write_plots(paper_grid, tmp_path, surrogates=[Card("made-up")])
    assert all("PROVISIONAL" not in fig._suptitle.get_text() for fig in figures.values())


def test_every_panel_that_shows_several_series_has_a_legend(paper_grid, figures, tmp_path):
    write_plots(paper_grid, tmp_path)
    for stem in ("accuracy_vs_threshold", "pareto_p0.2", "scatter_T30_p0.2"):
        panels = [ax for ax in figures[stem].axes if ax.get_visible() and (ax.get_lines() or ax.collections)
                  and ax.get_label() != "<colorbar>"]
        assert panels and all(ax.get_legend() is not None for ax in panels), stem


def test_titles_fit_inside_their_figures(paper_grid, ablation, figures, tmp_path):
    """Two surrogate ids as long as the shipped pair's make the provenance line longer than a
    single-panel figure is wide: it must wrap, not run off the page."""
    def long_ids(f):
        return f.with_columns((pl.col("method") + "-fbnet-cifar10-drop50-12ep-refit-2024").alias("surrogate"))

    write_plots(long_ids(paper_grid), tmp_path)
    write_plots(long_ids(ablation), tmp_path / "ablation")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    for stem, fig in figures.items():
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        box = fig._suptitle.get_window_extent(canvas.get_renderer())
        assert box.x0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, stem


def test_pareto_front_keeps_the_non_dominated_runs_by_latency():
    T = np.array([10.0, 12.0, 11.0, 15.0, 14.0, 9.0])
    acc = np.array([0.5, 0.7, 0.4, 0.9, 0.7, 0.3])
    assert pareto_front(T, acc).tolist() == [5, 0, 1, 3]


def test_trace_plot_is_written_and_refuses_other_formats(tmp_path):
    steps = 50
    trace = pl.DataFrame({"step": np.arange(1, steps + 1), "theta_entropy": np.linspace(40, 20, steps),
                          "Delta": np.linspace(1, 5, steps), "eps_theta": np.full(steps, 0.01),
                          "f_sample0": np.linspace(3, 2, steps), "f_sample1": np.linspace(3.1, 2.1, steps),
                          **{f"theta_split_{k:02d}": np.full(steps, 1 / 23) for k in range(23)}})
    path = plot_trace(trace, tmp_path / "trace.png")
    assert path.read_bytes()[:8].startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="trace.txt"):
        plot_trace(trace, tmp_path / "trace.txt")
