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


def frame_of(**grid):
    return rows_frame([make_row(c, record(c), 0.01) for c in Grid.build(**grid).cells()])


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
    for stem in ("scatter_T30_p0.2", "pareto_p0.2", "feasibility_heatmap", "accuracy_vs_threshold", "split_histogram"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names


def test_scatter_shows_accuracy_in_percent(paper_grid, figures, tmp_path):
    write_plots(paper_grid, tmp_path, cells=[(30.0, 0.2)])
    ax = figures["scatter_T30_p0.2"].axes[0]
    ys = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections])
    cell = paper_grid.filter((pl.col("threshold_ms") == 30.0) & (pl.col("loss") == 0.2))
    assert sorted(ys) == pytest.approx(sorted(100 * cell["accuracy"].to_numpy()))
    assert "(%)" in ax.get_ylabel()


def test_heatmap_cells_and_colour_bar_are_in_percent(paper_grid, figures, tmp_path):
    write_plots(paper_grid, tmp_path)
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
    heat = figures["feasibility_heatmap"]
    assert heat.axes[0].images[0].get_array().shape == (3, 2)  # ε_lat x λ, not 1 x 1
    assert heat.axes[0].get_ylabel() == "ε_lat" and heat.axes[0].get_xlabel() == "λ"


def test_one_swept_axis_gives_a_feasibility_line_not_a_one_column_heatmap(figures, tmp_path):
    f = frame_of(threshold_ms="20:40:5", loss="0.2", method="nasc", seed=range(2))
    write_plots(f, tmp_path)
    ax = figures["feasibility_heatmap"].axes[0]
    assert not ax.images and len(ax.get_lines()[0].get_xdata()) == 5


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
