"""Figures of a sweep (matplotlib, Agg, no pyplot state), each written as PNG and PDF. Accuracy is
in % everywhere, latency in ms.

- ``scatter_T<th>_p<loss>``: expected accuracy vs end-to-end latency T (eq. 3) of every run, one
  colour per method, with the threshold T_th as a vertical line (the paper's Figs. 2 and 3). By
  default the paper's setting: T_th = 30 ms, p = 0.2 for ``fbnet`` and 15 ms for ``extended``
  (the nearest cell the sweep has);
- ``pareto_p<loss>``: one panel per method, every run's (T, accuracy) over all thresholds at one
  loss rate, coloured by T_th, with the method's accuracy-latency Pareto front;
- ``feasibility_heatmap``: share of feasible runs (%) over the two main swept axes (T_th and the
  loss rate, or the ablation's axes), one panel per method -- drawn only where feasibility varies
  along both axes; where it varies along one (T_th, when one search serves every loss rate of a
  cell) a line plot ``feasibility_vs_<axis>``, where it varies along none no figure;
- ``accuracy_vs_<axis>``: every run (dots: the spread over seeds), the median over all runs
  (solid, with the IQR band) and over feasible runs (dashed) vs the sweep's main axis (T_th, or
  the ablation's axis), one panel per loss rate (the lowest, the paper's 0.2 and the highest when
  more than three were swept), one y scale for all panels spanning at least
  ``MIN_ACC_SPAN`` points; not drawn when no axis has more than one value;
- ``split_histogram``: how often each split point was chosen, one panel per search.

Methods whose searches are identical (``hwnas`` and ``hwnas-dropout``: one search, one split,
judged by two surrogates) share one panel in the figures that show only the search (split
histogram, feasibility), titled with both names (:func:`shared_searches`).

:func:`plot_trace` draws the θ / objective history of one search (``nascsim search --trace-plot``).
Every figure names the surrogate(s), the data they came from and whether their model card calls
them provisional (:func:`nascsim.sweep.summary.provenance`).
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

import numpy as np

from nascsim.atomic import atomic_write_bytes
from nascsim.sweep.summary import provenance, reference_loss, summarize, variant_columns, with_variant

FORMATS = ("png", "pdf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
PAPER_CELLS = {"fbnet": (30.0, 0.2), "extended": (15.0, 0.2)}  # the paper's Figs. 2 and 3
# one colour per built-in method in every figure (hwnas and its shared-search panel alike)
METHOD_COLOURS = {"nasc": "tab:green", "hwnas": "tab:blue", "hwnas-dropout": "tab:orange", "random": "tab:gray"}
OTHER_COLOURS = ("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
MIN_ACC_SPAN = 2.0  # accuracy points: the least y range of accuracy_vs_<axis>, so that no spread is magnified
_NUMERIC = (int, float)


def _figure(n_panels: int, width: float = 4.4, height: float = 3.5, **share):
    from matplotlib.figure import Figure

    cols = min(n_panels, 3)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(max(width * cols, 6.4), height * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, **share).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _title(fig, text: str, source: str) -> None:
    """A suptitle wrapped to the figure's width (about 12 characters per inch at 9 pt), so that
    no title is cropped."""
    width = max(30, int(fig.get_figwidth() * 12))
    lines = textwrap.wrap(text, width) + textwrap.wrap(source, width, break_on_hyphens=False)
    fig.suptitle("\n".join(lines), fontsize=9)


_CAPTURE: ContextVar[dict | None] = ContextVar("nascsim_plots_capture", default=None)


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    """``fig`` as ``stem`` in every format of FORMATS; the layout is computed for the first and
    kept for the others (half the drawing time). Inside :func:`_captured` the figure is kept,
    not written (:func:`figure` returns it)."""
    kept = _CAPTURE.get()
    if kept is not None:
        kept[stem] = fig
        return [Path(stem)]
    paths = []
    for i, fmt in enumerate(FORMATS):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=120)
        if i == 0:
            fig.set_layout_engine("none")
        target = out_dir / f"{stem}.{fmt}"
        atomic_write_bytes(buf.getvalue(), target)
        paths.append(target)
    return paths


def _label_expr(columns, method: bool = True):
    """method + the given variant columns, as ``"nasc eps_lat=0.5"`` (without the method:
    ``"eps_lat=0.5"``)."""
    import polars as pl

    parts = [pl.col("method")] if method else [pl.lit("")]
    for name in columns:
        col = pl.col(name)
        text = (col.list.eval(pl.element().cast(pl.String)).list.join("/") if name == "loss_set"
                else col.cast(pl.String).fill_null("none"))
        parts.append(pl.lit(f"{name}=") + text)
    return pl.concat_str(parts, separator=" ")


def colours(labels: list[str]) -> dict[str, str]:
    """A colour per series label: the built-in methods keep theirs in every figure when the labels
    are plain method names (or ``"hwnas = hwnas-dropout"``); labels with variants, and other
    methods, take the colours of a fixed cycle in order."""
    plain = all(" " not in label.replace(" = ", "=") for label in labels)
    out, k = {}, 0
    for label in labels:
        method = label.split(" = ")[0]
        if plain and method in METHOD_COLOURS:
            out[label] = METHOD_COLOURS[method]
        else:
            out[label] = OTHER_COLOURS[k % len(OTHER_COLOURS)]
            k += 1
    return out


def main_axes(frame) -> list[str]:
    """The swept numeric axes, most values first: ``threshold_ms`` and ``loss`` when they vary,
    then the ablation's numeric axes (``eps_lat``, ``lam``, ...)."""
    cands = [c for c in ("threshold_ms", "loss") if frame[c].n_unique() > 1]
    for name in variant_columns(frame):
        values = [v for v in frame[name].unique().to_list() if v is not None]
        if values and all(isinstance(v, _NUMERIC) and not isinstance(v, bool) for v in values):
            cands.append(name)
    order = {"threshold_ms": 0, "loss": 1}
    return sorted(cands, key=lambda c: (order.get(c, 2), -frame[c].n_unique()))


def _is_log(values) -> bool:
    """Whether a positive axis spans 20x or more (e.g. ε_lat = 0.05 ... 5): drawn on a log scale."""
    v = [float(x) for x in values if x is not None]
    return bool(v) and min(v) > 0 and max(v) / min(v) >= 20


def _scale(ax, values) -> None:
    """Log x scale for a positive axis spanning 20x or more (:func:`_is_log`)."""
    v = [float(x) for x in values if x is not None]
    if _is_log(v):
        ax.set_xscale("log")
        ax.set_xticks(sorted(set(v)), [f"{x:g}" for x in sorted(set(v))])


def _axis_label(name: str) -> str:
    return {"threshold_ms": "T_th (ms)", "loss": "loss rate p", "eps_lat": "ε_lat", "eps_loss": "ε_loss",
            "lam": "λ", "Delta_max": "Δ_max", "delta0": "δ0", "alpha": "α", "bandwidth": "bandwidth r (bit/s)",
            "bits": "bits q", "steps": "steps", "fixed_split": "split"}.get(name, name)


# -- scatter ----------------------------------------------------------------------------------------

def default_cells(frame) -> list[tuple[float, float]]:
    """The scatter plots drawn when none are asked for: the paper's setting of each space in the
    sweep (T_th 30 ms for fbnet, 15 ms for extended, p = 0.2), moved to the nearest threshold and
    loss rate the sweep has."""
    ths = sorted(set(frame["threshold_ms"].to_list()))
    losses = sorted(set(frame["loss"].to_list()))
    spaces = sorted(set(frame["space"].to_list())) if "space" in frame.columns else ["fbnet"]
    cells = []
    for sp in spaces:
        th, p = PAPER_CELLS.get(sp, PAPER_CELLS["fbnet"])
        cells.append((min(ths, key=lambda t: (abs(t - th), t)), reference_loss(losses, p)))
    return list(dict.fromkeys(cells))


def scatter(frame, threshold_ms: float, loss: float, out_dir: Path, source: str) -> list[Path]:
    import polars as pl

    f = frame.filter((pl.col("threshold_ms") == threshold_ms) & (pl.col("loss") == loss))
    if len(f) == 0:
        raise ValueError(f"no runs at threshold {threshold_ms:g} ms and loss {loss:g}")
    f = f.with_columns(_label_expr(variant_columns(f)).alias("label"))
    fig, (ax,) = _figure(1, 6.4, 4.6)
    labels = sorted(set(f["label"].to_list()))
    colour = colours(labels)
    for i, label in enumerate(labels):
        g = f.filter(pl.col("label") == label)
        ok = int((g["T_ms"] <= threshold_ms).sum())
        ax.scatter(g["T_ms"].to_numpy(), 100 * g["accuracy"].to_numpy(), s=20, alpha=0.7, color=colour[label],
                   marker=MARKERS[i % len(MARKERS)], label=f"{label} ({ok}/{len(g)} feasible)")
    ax.axvline(threshold_ms, color="k", linestyle="--", linewidth=1, label=f"T_th = {threshold_ms:g} ms")
    ax.set_xlabel("end-to-end latency T (ms)")
    ax.set_ylabel(f"expected accuracy at p = {loss:g} (%)")
    ax.legend(fontsize=8)
    _title(fig, f"accuracy vs latency of every run, T_th = {threshold_ms:g} ms, loss rate p = {loss:g}", source)
    return _save(fig, out_dir, f"scatter_T{threshold_ms:g}_p{loss:g}")


def pareto_front(T: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated runs (no other run has lower-or-equal T and higher-or-equal
    accuracy, one of them strictly), by increasing T."""
    order = np.lexsort((-acc, T))
    front, best = [], -np.inf
    for i in order:
        if acc[i] > best:
            front.append(i)
            best = acc[i]
    return np.array(front, dtype=np.int64)


def pareto(frame, loss: float, out_dir: Path, source: str) -> list[Path]:
    """Accuracy-latency Pareto plot per method (label) at loss rate ``loss``."""
    import polars as pl
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    f = frame.filter(pl.col("loss") == loss)
    f = f.with_columns(_label_expr(variant_columns(f)).alias("label"))
    labels = sorted(set(f["label"].to_list()))
    ths = sorted(set(f["threshold_ms"].to_list()))
    norm = Normalize(min(ths), max(ths) if max(ths) > min(ths) else min(ths) + 1)
    cmap = colormaps["viridis"]
    fig, axes = _figure(len(labels), sharex=True, sharey=True)
    for ax, label in zip(axes, labels):
        g = f.filter(pl.col("label") == label)
        T, acc, th = g["T_ms"].to_numpy(), 100 * g["accuracy"].to_numpy(), g["threshold_ms"].to_numpy()
        sc = ax.scatter(T, acc, c=th, cmap=cmap, norm=norm, s=14, alpha=0.75, label="runs (colour: T_th)")
        idx = pareto_front(T, acc)
        ax.step(T[idx], acc[idx], where="post", color="crimson", linewidth=1.4, label="Pareto front")
        ax.set_title(f"{label} ({len(g)} runs)", fontsize=9)
        ax.set_xlabel("end-to-end latency T (ms)")
        ax.set_ylabel(f"expected accuracy at p = {loss:g} (%)")
        ax.legend(fontsize=7, loc="best")
    fig.colorbar(sc, ax=list(axes), label="latency threshold T_th (ms)")
    _title(fig, f"accuracy-latency trade-off per method, all thresholds, loss rate p = {loss:g}", source)
    return _save(fig, out_dir, f"pareto_p{loss:g}")


# -- methods that share one search ------------------------------------------------------------------

_RESULT = ("split", "T_ms")


def shared_searches(frame) -> dict[str, str]:
    """``{method: panel name}`` with methods whose runs have the same split and latency in every
    cell and seed (one search judged by two surrogates: ``hwnas`` and ``hwnas-dropout``) mapped
    to one name, ``"hwnas = hwnas-dropout"``; every other method to itself."""
    import polars as pl

    from nascsim.sweep.grid import FIELD_NAMES

    keys = [c for c in FIELD_NAMES if c in frame.columns and c != "method"]
    f = frame.with_columns(pl.col("method").cast(pl.String), _label_expr(keys, method=False).alias("_key"))
    methods = sorted(set(f["method"].to_list()))
    runs = {m: f.filter(pl.col("method") == m).select(["_key", *_RESULT]).sort("_key") for m in methods}
    names: dict[str, str] = {}
    for m in methods:
        if m in names:
            continue
        same = [m] + [o for o in methods if o not in names and o != m and runs[o].equals(runs[m])]
        for o in same:
            names[o] = " = ".join(same)
    return names


def _merge_shared(frame):
    """``frame`` with methods that share a search renamed to their panel name and one copy of
    their rows kept."""
    import polars as pl

    from nascsim.sweep.grid import FIELD_NAMES

    names = shared_searches(frame)
    f = frame.with_columns(pl.col("method").cast(pl.String).replace_strict(names, return_dtype=pl.String))
    return f.unique(subset=[c for c in FIELD_NAMES if c in f.columns], keep="first", maintain_order=True)


def _one_per_search(frame):
    """:func:`_merge_shared`, then one row per search (a search serves every loss rate of its
    cell)."""
    from nascsim.sweep.grid import FIELD_NAMES

    f = _merge_shared(frame)
    return f.unique(subset=[c for c in FIELD_NAMES if c != "loss" and c in f.columns], keep="first",
                    maintain_order=True)


def _shared_note(frame) -> str:
    merged = sorted({n for n in shared_searches(frame).values() if " = " in n})
    if not merged:
        return ""
    return "; " + ", ".join(merged) + ": one search (same split and latency), shown once"


# -- over the swept axes ----------------------------------------------------------------------------

def _varies(s, axis: str, others: list[str]) -> bool:
    """Whether the ``rate`` column of ``s`` changes along ``axis`` with ``others`` held fixed."""
    import polars as pl

    if s[axis].n_unique() < 2:
        return False
    g = s.group_by(others).agg(pl.col("rate").n_unique().alias("n")) if others else s.select(
        pl.col("rate").n_unique().alias("n"))
    return bool((g["n"] > 1).any())


def feasibility(frame, out_dir: Path, source: str) -> list[Path]:
    """Feasible share (%) over the main swept axes along which it varies: a heatmap over two
    (``feasibility_heatmap``, one panel per method and remaining variant), a line plot over one
    (``feasibility_vs_<axis>``, every method in one panel), nothing over none."""
    import polars as pl

    axes_ = main_axes(frame)[:2]
    f = _merge_shared(with_variant(frame)).with_columns((pl.col("T_ms") <= pl.col("threshold_ms")).alias("_ok"))
    rest = [c for c in variant_columns(frame) if c not in axes_]
    f = f.with_columns(_label_expr(rest).alias("label"))
    s = f.group_by([*axes_, "label"]).agg(pl.col("_ok").mean().alias("rate"))
    axes_ = [a for a in axes_ if _varies(s, a, [b for b in axes_ if b != a] + ["label"])]
    if not axes_:
        return []
    s = f.group_by([*axes_, "label"]).agg(pl.col("_ok").mean().alias("rate"))
    labels = sorted(set(s["label"].to_list()))
    note = _shared_note(frame)
    if len(axes_) == 1:
        (x,) = axes_
        fig, (ax,) = _figure(1, 6.4, 4.2)
        for i, label in enumerate(labels):
            g = s.filter(pl.col("label") == label).sort(x)
            ax.plot(g[x].to_numpy(), 100 * g["rate"].to_numpy(), marker=MARKERS[i % len(MARKERS)], label=label,
                    color=colours(labels)[label])
        ax.set_ylim(-3, 103)
        _scale(ax, s[x].to_list())
        ax.set_xlabel(_axis_label(x))
        ax.set_ylabel("feasible runs, T <= T_th (%)")
        ax.legend(fontsize=8)
        _title(fig, f"feasibility rate (%) vs {_axis_label(x)}{note}", source)
        return _save(fig, out_dir, f"feasibility_vs_{_stem(x)}")
    x, y = axes_
    xs, ys = sorted(set(s[x].to_list())), sorted(set(s[y].to_list()))
    fig, panels = _figure(len(labels))
    image = None
    for ax, label in zip(panels, labels):
        grid = np.full((len(xs), len(ys)), np.nan)
        for r in s.filter(pl.col("label") == label).iter_rows(named=True):
            grid[xs.index(r[x]), ys.index(r[y])] = 100 * r["rate"]
        image = ax.imshow(grid, origin="lower", aspect="auto", vmin=0, vmax=100, cmap="viridis")
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="w" if v < 60 else "k")
        ax.set_xticks(range(len(ys)), [f"{v:g}" for v in ys])
        ax.set_yticks(range(len(xs)), [f"{v:g}" for v in xs])
        ax.set_xlabel(_axis_label(y))
        ax.set_ylabel(_axis_label(x))
        ax.set_title(label, fontsize=9)
    fig.colorbar(image, ax=list(panels), label="feasible runs, T <= T_th (%)")
    _title(fig, f"feasibility rate (%), cell = share of runs with T <= T_th{note}", source)
    return _save(fig, out_dir, "feasibility_heatmap")


def _stem(axis: str) -> str:
    return "threshold" if axis == "threshold_ms" else axis


def _panel_values(values: list[float], preferred: float = 0.2) -> list[float]:
    """The loss rates that get a panel: all of up to three, else the lowest, the one nearest the
    paper's 0.2 and the highest."""
    values = sorted(set(values))
    if len(values) <= 3:
        return values
    return sorted({values[0], reference_loss(values, preferred), values[-1]})


def accuracy_vs_axis(frame, out_dir: Path, source: str) -> list[Path]:
    """Every run (dots), the median over all runs (solid, IQR band) and over feasible runs
    (dashed) vs the main swept axis, one panel per loss rate (unless the loss rate is that axis;
    see :func:`_panel_values`), one y scale for every panel. Nothing when no axis is swept."""
    import polars as pl

    axes_ = main_axes(frame)
    if not axes_:
        return []
    x = axes_[0]
    panel_by = "loss" if x != "loss" else None
    rest = [c for c in variant_columns(frame) if c != x]
    f = frame.with_columns((pl.col("T_ms") <= pl.col("threshold_ms")).alias("_ok"),
                           _label_expr(rest).alias("label"))
    if x != "threshold_ms" and "threshold_ms" not in rest and f["threshold_ms"].n_unique() > 1:
        f = f.with_columns((pl.col("label") + " T_th=" + pl.col("threshold_ms").cast(pl.String)).alias("label"))
    panel_values = _panel_values(f[panel_by].to_list()) if panel_by else [None]
    if panel_by:
        f = f.filter(pl.col(panel_by).is_in(panel_values))
    keys = [x, "label"] + ([panel_by] if panel_by else [])
    acc_ok = pl.col("accuracy").filter(pl.col("_ok"))
    s = f.group_by(keys).agg(
        pl.col("accuracy").median().alias("all"), acc_ok.median().alias("feas"),
        pl.col("accuracy").quantile(0.25, interpolation="linear").alias("lo"),
        pl.col("accuracy").quantile(0.75, interpolation="linear").alias("hi"))
    labels = sorted(set(s["label"].to_list()))
    xs_all = sorted(set(f[x].to_list()))
    log_x = _is_log(xs_all)
    fig, panels = _figure(len(panel_values), sharey=True)
    for ax, pv in zip(panels, panel_values):
        for i, label in enumerate(labels):
            g = s.filter(pl.col("label") == label)
            runs = f.filter(pl.col("label") == label)
            if panel_by:
                g = g.filter(pl.col(panel_by) == pv)
                runs = runs.filter(pl.col(panel_by) == pv)
            g = g.sort(x)
            xs = g[x].to_numpy().astype(float)
            med_all, med, lo, hi = (100 * g[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
                                    for c in ("all", "feas", "lo", "hi"))
            colour = colours(labels)[label]
            ax.plot(xs, med_all, marker=MARKERS[i % len(MARKERS)], markersize=4, label=f"{label} median",
                    color=colour)
            ax.plot(xs, med, linestyle="--", color=colour, linewidth=1)
            ax.fill_between(xs, lo, hi, color=colour, alpha=0.15, linewidth=0)
            rx = _jitter(runs[x].to_numpy().astype(float), xs_all, i, len(labels), log_x)
            ax.scatter(rx, 100 * runs["accuracy"].to_numpy(), s=5, alpha=0.25, color=colour, linewidths=0)
        ax.set_title(f"loss rate p = {pv:g}" if panel_by else "", fontsize=9)
        _scale(ax, xs_all)
        ax.set_xlabel(_axis_label(x))
        ax.set_ylabel("expected accuracy (%)")
        ax.legend(fontsize=7)
    _min_span(panels[0], MIN_ACC_SPAN)
    _title(fig, f"expected accuracy vs {_axis_label(x)}: every run (dots), median over all runs (solid, IQR band), "
                f"median over feasible runs (dashed)", source)
    return _save(fig, out_dir, f"accuracy_vs_{_stem(x)}")


def _jitter(x: np.ndarray, grid: list, i: int, n: int, log_x: bool) -> np.ndarray:
    """``x`` moved by a small offset per series (``i`` of ``n``), so that the dots of the methods
    at one axis value sit side by side: a fraction of the smallest gap between axis values."""
    if n < 2 or len(grid) < 2:
        return x
    g = np.log(np.asarray(grid, dtype=float)) if log_x else np.asarray(grid, dtype=float)
    step = 0.25 * float(np.min(np.diff(g))) * (i - (n - 1) / 2) / n
    return np.exp(np.log(x) + step) if log_x else x + step


def _min_span(ax, span: float) -> None:
    """Widen the y range of ``ax`` (and of the axes sharing it) to at least ``span``, centred."""
    lo, hi = ax.get_ylim()
    if hi - lo < span:
        mid = (lo + hi) / 2
        ax.set_ylim(mid - span / 2, mid + span / 2)


def split_histogram(frame, out_dir: Path, source: str) -> list[Path]:
    import polars as pl

    # one search serves every loss rate of a cell, and methods sharing a search share a panel
    f = _one_per_search(frame)
    f = f.with_columns(_label_expr(variant_columns(frame)).alias("label"))
    labels = sorted(set(f["label"].to_list()))
    fig, axes = _figure(len(labels), sharex=True, sharey=True)
    top = int(max(f["split"].max(), 22))
    for ax, label in zip(axes, labels):
        splits = f.filter(pl.col("label") == label)["split"].to_numpy()
        ax.hist(splits, bins=np.arange(-0.5, top + 1.5), rwidth=0.85)
        ax.set_title(f"{label} ({len(splits)} searches)", fontsize=9)
        ax.set_xlabel("split point k (0 = after the stem)")
        ax.set_ylabel("searches")
    _title(fig, "chosen split points, all thresholds (one search serves every loss rate)" + _shared_note(frame),
           source)
    return _save(fig, out_dir, "split_histogram")


def write_plots(frame, out_dir: str | os.PathLike, cells: list[tuple[float, float]] | None = None,
                surrogates=()) -> list[Path]:
    """All figures of a sweep's runs into ``out_dir`` (created); returns the files written.
    ``surrogates``: the sweep's surrogate objects, whose model cards the figures' provenance line
    reads (:func:`nascsim.sweep.summary.provenance`)."""
    out = Path(out_dir)
    cells = list(cells) if cells else default_cells(frame)
    present = set(frame.select(["threshold_ms", "loss"]).unique().iter_rows())
    for th, loss in cells:
        if (th, loss) not in present:
            raise ValueError(f"no runs at threshold {th:g} ms and loss {loss:g} to plot")
    out.mkdir(parents=True, exist_ok=True)
    return _draw_all(frame, out, cells, provenance(frame, surrogates))


def _draw_all(frame, out: Path, cells: list[tuple[float, float]], source: str) -> list[Path]:
    paths = []
    for th, loss in cells:
        paths += scatter(frame, th, loss, out, source)
    paths += pareto(frame, reference_loss(frame["loss"].to_list()), out, source)
    paths += feasibility(frame, out, source)
    paths += accuracy_vs_axis(frame, out, source)
    paths += split_histogram(frame, out, source)
    return paths


@contextmanager
def _captured() -> Iterator[dict]:
    kept: dict = {}
    token = _CAPTURE.set(kept)
    try:
        yield kept
    finally:
        _CAPTURE.reset(token)


FIGURES = ("scatter", "pareto", "feasibility", "accuracy_vs_axis", "split_histogram")


def figures(frame, cells: list[tuple[float, float]] | None = None, surrogates=()) -> dict:
    """``{file stem: matplotlib Figure}`` of every figure :func:`write_plots` writes, not saved."""
    cells = list(cells) if cells else default_cells(frame)
    with _captured() as kept:
        _draw_all(frame, Path("."), cells, provenance(frame, surrogates))
    return kept


def figure_names(frame, cells: list[tuple[float, float]] | None = None) -> list[str]:
    """The file stems :func:`write_plots` writes (each a name :func:`figure` takes)."""
    import matplotlib.pyplot as plt

    drawn = figures(frame, cells)
    for fig in drawn.values():
        plt.close(fig)
    return list(drawn)


def figure(frame, name: str, *, threshold_ms: float | None = None, loss: float | None = None, surrogates=()):
    """One figure of ``frame``'s runs as a matplotlib Figure (what :func:`write_plots` saves).

    ``name``: one of :data:`FIGURES` or a file stem of :func:`figure_names` (``scatter_T30_p0.2``,
    ``pareto_p0.2``, ``accuracy_vs_threshold``). ``scatter`` takes ``threshold_ms`` and ``loss``
    (default: the first of the paper's cells the runs have), ``pareto`` takes ``loss`` (default:
    the reference loss rate)."""
    source = provenance(frame, surrogates)
    here = Path(".")
    with _captured() as kept:
        if name == "scatter":
            th, lo = default_cells(frame)[0]
            scatter(frame, th if threshold_ms is None else threshold_ms, lo if loss is None else loss, here, source)
        elif name == "pareto":
            pareto(frame, reference_loss(frame["loss"].to_list()) if loss is None else loss, here, source)
        elif name in ("feasibility", "accuracy_vs_axis", "split_histogram"):
            {"feasibility": feasibility, "accuracy_vs_axis": accuracy_vs_axis,
             "split_histogram": split_histogram}[name](frame, here, source)
        else:
            kept.update(figures(frame, surrogates=surrogates))
            if name not in kept:
                raise ValueError(f"unknown figure {name!r}; expected one of {', '.join(FIGURES)} or a file stem "
                                 f"of the report ({', '.join(kept)})")
            return kept[name]
    if not kept:
        raise ValueError(f"figure {name!r} has nothing to show for these runs (e.g. no swept axis)")
    return next(iter(kept.values()))

# -- one search's history ---------------------------------------------------------------------------

def plot_trace(trace, path: str | os.PathLike, record: dict | None = None) -> Path:
    """θ / objective history of one search (a :func:`nascsim.api.trace_frame`): each sample's
    observed objective f (eq. 4a) with its running median, the entropy of θ, the split marginal
    θ_split over the steps, and Δ and ε_θ. Written to ``path`` (.png, .pdf or .svg)."""
    import polars as pl
    from matplotlib.figure import Figure

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "pdf", "svg"):
        raise ValueError(f"trace plot {str(path)!r}: expected a .png, .pdf or .svg file")
    step = trace["step"].to_numpy()
    fcols = [c for c in trace.columns if c.startswith("f_sample")]
    scols = [c for c in trace.columns if c.startswith("theta_split_")]
    fig = Figure(figsize=(11, 7.4), layout="constrained")
    (a_f, a_h), (a_s, a_d) = fig.subplots(2, 2)
    f = trace.select(fcols).to_numpy()
    stride = max(1, len(step) // 4000)
    for i in range(f.shape[1]):
        a_f.plot(step[::stride], f[::stride, i], ",", alpha=0.3, color="tab:blue",
                 label="observed f of each sample" if i == 0 else None)
    window = max(1, len(step) // 100)
    med = pl.Series(f.mean(axis=1)).rolling_median(window, min_samples=1).to_numpy()
    a_f.plot(step, med, color="crimson", linewidth=1.2, label=f"running median ({window} steps)")
    lo, hi = np.nanmin(f), np.nanquantile(f, 0.95)
    if hi > lo:
        a_f.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    a_f.set_xlabel("step")
    a_f.set_ylabel("objective f (eq. 4a)")
    a_f.set_title("objective of the λ samples per step (y up to their 95th percentile)", fontsize=9)
    a_f.legend(fontsize=7)
    a_h.plot(step, trace["theta_entropy"].to_numpy(), color="tab:green", label="Σ_d H(θ_d)")
    a_h.set_xlabel("step")
    a_h.set_ylabel("entropy of θ (nats)")
    a_h.set_title("concentration of θ (lower = more decided)", fontsize=9)
    a_h.legend(fontsize=7)
    if scols:
        img = a_s.imshow(trace.select(scols).to_numpy().T, origin="lower", aspect="auto", cmap="magma",
                         extent=(step[0] - 0.5, step[-1] + 0.5, -0.5, len(scols) - 0.5), vmin=0, vmax=1)
        fig.colorbar(img, ax=a_s, label="θ of split k")
        a_s.set_ylabel("split point k")
        a_s.set_title("split marginal θ_split over the search", fontsize=9)
    else:
        a_s.text(0.5, 0.5, "split not searched", ha="center", va="center", transform=a_s.transAxes)
        a_s.set_title("split marginal", fontsize=9)
    a_s.set_xlabel("step")
    a_d.plot(step, trace["Delta"].to_numpy(), label="Δ (trust region)")
    a_d.plot(step, trace["eps_theta"].to_numpy(), label="ε_θ (step size)")
    a_d.set_yscale("log")
    a_d.set_xlabel("step")
    a_d.set_title("ASNG step-size adaptation", fontsize=9)
    a_d.legend(fontsize=7)
    title = "θ / objective history of one search"
    if record is not None:
        title += (f": {record['method']}, T_th {record['threshold_ms']:g} ms, seed {record['seed']}, "
                  f"final split {record['split']}, T {record['T_ms']:.2f} ms"
                  f"\n" + "\n".join(textwrap.wrap(record.get("provenance") or
                                                 f"surrogate {record['search_surrogate']} ({record['dataset']})",
                                                 int(fig.get_figwidth() * 12), break_on_hyphens=False)))
    fig.suptitle(title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=120)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(buf.getvalue(), path)
    return path
