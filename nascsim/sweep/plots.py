"""Figures of a sweep (matplotlib, Agg, no pyplot state), each written as PNG and PDF:

- ``scatter_T<th>_p<loss>``: expected accuracy vs end-to-end latency T (eq. 3) of every run, one
  colour per method, with the threshold T_th as a vertical line (the paper's Figs. 2 and 3);
- ``feasibility_heatmap``: share of runs with T <= T_th over (T_th, loss rate), one panel per method;
- ``accuracy_vs_threshold``: median expected accuracy of feasible runs vs T_th, IQR band, one panel
  per loss rate;
- ``split_histogram``: how often each split point was chosen, one panel per method.

Every figure's title names the surrogate(s) and the dataset the accuracies come from.
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from pathlib import Path

import numpy as np

from nascsim.atomic import atomic_write_bytes
from nascsim.sweep.summary import provenance, summarize, with_variant

FORMATS = ("png", "pdf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _labelled(frame):
    import polars as pl

    f = with_variant(frame)
    return f.with_columns(
        pl.when(pl.col("variant") == "").then(pl.col("method"))
        .otherwise(pl.col("method") + " " + pl.col("variant")).alias("label"))


def _figure(n_panels: int, width: float = 4.2, height: float = 3.4):
    from matplotlib.figure import Figure

    cols = min(n_panels, 3)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(width * cols, height * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    paths = []
    for fmt in FORMATS:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=120)
        target = out_dir / f"{stem}.{fmt}"
        atomic_write_bytes(buf.getvalue(), target)
        paths.append(target)
    return paths


def default_cells(frame) -> list[tuple[float, float]]:
    """The scatter plots drawn when none are asked for: the middle threshold at the lowest and
    the highest loss rate."""
    ths = sorted(set(frame["threshold_ms"].to_list()))
    losses = sorted(set(frame["loss"].to_list()))
    mid = ths[len(ths) // 2]
    return list(dict.fromkeys([(mid, losses[0]), (mid, losses[-1])]))


def scatter(frame, threshold_ms: float, loss: float, out_dir: Path, source: str) -> list[Path]:
    import polars as pl

    f = _labelled(frame).filter((pl.col("threshold_ms") == threshold_ms) & (pl.col("loss") == loss))
    if len(f) == 0:
        raise ValueError(f"no runs at threshold {threshold_ms:g} ms and loss {loss:g}")
    fig, (ax,) = _figure(1, 6.0, 4.5)
    for i, label in enumerate(sorted(set(f["label"].to_list()))):
        g = f.filter(pl.col("label") == label)
        ax.scatter(g["T_ms"].to_numpy(), 100 * g["accuracy"].to_numpy(), s=18, alpha=0.7,
                   marker=MARKERS[i % len(MARKERS)], label=label)
    ax.axvline(threshold_ms, color="k", linestyle="--", linewidth=1, label=f"T_th = {threshold_ms:g} ms")
    ax.set_xlabel("end-to-end latency T (ms)")
    ax.set_ylabel(f"expected accuracy at p = {loss:g} (%)")
    ax.legend(fontsize=8)
    fig.suptitle(f"T_th = {threshold_ms:g} ms, loss rate {loss:g}\n{source}", fontsize=9)
    return _save(fig, out_dir, f"scatter_T{threshold_ms:g}_p{loss:g}")


def feasibility_heatmap(summary, out_dir: Path, source: str) -> list[Path]:
    import polars as pl

    s = _labelled_summary(summary)
    labels = sorted(set(s["label"].to_list()))
    ths = sorted(set(s["threshold_ms"].to_list()))
    losses = sorted(set(s["loss"].to_list()))
    fig, axes = _figure(len(labels))
    image = None
    for ax, label in zip(axes, labels):
        grid = np.full((len(ths), len(losses)), np.nan)
        for r in s.filter(pl.col("label") == label).iter_rows(named=True):
            grid[ths.index(r["threshold_ms"]), losses.index(r["loss"])] = r["feasible_rate"]
        image = ax.imshow(grid, origin="lower", aspect="auto", vmin=0, vmax=1, cmap="viridis")
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=7,
                        color="w" if v < 0.6 else "k")
        ax.set_xticks(range(len(losses)), [f"{p:g}" for p in losses])
        ax.set_yticks(range(len(ths)), [f"{t:g}" for t in ths])
        ax.set_xlabel("loss rate p")
        ax.set_ylabel("T_th (ms)")
        ax.set_title(label)
    fig.colorbar(image, ax=list(axes), label="feasible runs (T <= T_th)")
    fig.suptitle(f"feasibility rate (%)\n{source}", fontsize=9)
    return _save(fig, out_dir, "feasibility_heatmap")


def accuracy_vs_threshold(summary, out_dir: Path, source: str) -> list[Path]:
    import polars as pl

    s = _labelled_summary(summary)
    losses = sorted(set(s["loss"].to_list()))
    labels = sorted(set(s["label"].to_list()))
    fig, axes = _figure(len(losses))
    for ax, loss in zip(axes, losses):
        for i, label in enumerate(labels):
            g = s.filter((pl.col("label") == label) & (pl.col("loss") == loss)).sort("threshold_ms")
            x = g["threshold_ms"].to_numpy()
            med, lo, hi = (100 * g[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in ("acc_median", "acc_q25", "acc_q75"))
            line, = ax.plot(x, med, marker=MARKERS[i % len(MARKERS)], markersize=4, label=label)
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_title(f"loss rate p = {loss:g}")
        ax.set_xlabel("T_th (ms)")
        ax.set_ylabel("expected accuracy, feasible runs (%)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"median and IQR of expected accuracy vs latency threshold\n{source}", fontsize=9)
    return _save(fig, out_dir, "accuracy_vs_threshold")


def split_histogram(frame, out_dir: Path, source: str) -> list[Path]:
    import polars as pl

    f = _labelled(frame)
    labels = sorted(set(f["label"].to_list()))
    fig, axes = _figure(len(labels))
    top = int(max(f["split"].max(), 22))
    for ax, label in zip(axes, labels):
        splits = f.filter(pl.col("label") == label)["split"].to_numpy()
        ax.hist(splits, bins=np.arange(-0.5, top + 1.5), rwidth=0.85)
        ax.set_title(f"{label} ({len(splits)} runs)")
        ax.set_xlabel("split point k (0 = after the stem)")
        ax.set_ylabel("runs")
    fig.suptitle(f"chosen split points, all thresholds and loss rates\n{source}", fontsize=9)
    return _save(fig, out_dir, "split_histogram")


def _labelled_summary(summary):
    import polars as pl

    return summary.with_columns(
        pl.when(pl.col("variant") == "").then(pl.col("method"))
        .otherwise(pl.col("method") + " " + pl.col("variant")).alias("label"))


def write_plots(frame, out_dir: str | os.PathLike, cells: list[tuple[float, float]] | None = None) -> list[Path]:
    """All figures of a sweep's runs into ``out_dir`` (created); returns the files written."""
    out = Path(out_dir)
    cells = list(cells) if cells else default_cells(frame)
    present = set(frame.select(["threshold_ms", "loss"]).unique().iter_rows())
    for th, loss in cells:
        if (th, loss) not in present:
            raise ValueError(f"no runs at threshold {th:g} ms and loss {loss:g} to plot")
    source = "\n".join(textwrap.wrap(provenance(frame), 80, break_on_hyphens=False))  # fits the narrowest figure
    summary = summarize(frame)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for th, loss in cells:
        paths += scatter(frame, th, loss, out, source)
    paths += feasibility_heatmap(summary, out, source)
    paths += accuracy_vs_threshold(summary, out, source)
    paths += split_histogram(frame, out, source)
    return paths
