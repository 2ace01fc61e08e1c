"""Summaries of a sweep's runs: per (method, threshold, loss) and NASC vs each baseline, paired.

``summarize`` (one row per method, variant, T_th and loss rate p):

- ``n_runs``, ``n_feasible``, ``feasible_rate``: runs, and share of runs with T <= T_th (the
  constraint of eq. 4's penalty term);
- ``acc_median_all``, ``acc_q25_all``, ``acc_q75_all``: expected accuracy at p over **all** runs,
  feasible or not (what the paper reports: the median of all five models of a method);
- ``acc_median_feasible``, ``acc_q25_feasible``, ``acc_q75_feasible``: the same over the
  **feasible** runs only (null when none is feasible);
- ``T_median`` and ``T_head_median``, ``T_comm_median``, ``T_tail_median`` over all runs (eq. 3's
  terms, each the median of its own column, so they need not add up to ``T_median``);
- ``split_median``;
- ``theta_op_confidence_median``, ``theta_decided_share_median``: how concentrated θ ended (the
  record fields of the same names; null for methods without θ, e.g. random search).

``compare`` (one row per variant, T_th, p and baseline): runs of ``nasc`` and the baseline with the
same seed form a pair (the grid gives them the same seed stream). ``T_reduction_median_pct`` is the
median over pairs of 100 (1 - T_nasc / T_baseline); the accuracy difference nasc - baseline is
given over all pairs (``*_all``) and over the pairs where both runs are feasible (``*_feasible``),
each tested with the exact Wilcoxon signed-rank test (:func:`wilcoxon_signed_rank`, implemented
here in numpy: scipy is not a dependency).

A *variant* is the combination of the sweep's other axes (e.g. ``eps_lat=0.5 lam=2``), empty when
the sweep varies only method, threshold, loss and seed.

``format_compact`` is what ``nascsim sweep`` prints: per threshold and method the feasibility,
latency, split, θ concentration (when the records have it) and accuracy at the lowest and the
highest loss rate (all runs | feasible runs),
and the paired NASC-vs-baseline comparison at one loss rate; the full tables go to the files.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from nascsim.sweep.grid import FIELD_NAMES

REFERENCE = "nasc"
_CORE = ("method", "threshold_ms", "loss", "seed")


def wilcoxon_signed_rank(d) -> tuple[float, float, int]:
    """Exact two-sided Wilcoxon signed-rank test of paired differences ``d`` (shape (n,)).

    Zero differences are dropped (Wilcoxon's convention); tied |d| get mid-ranks. The null
    distribution of W+ (sum of the ranks of positive differences) under independent random signs
    is computed exactly by convolution over the (doubled, hence integer) ranks, so ties are
    handled exactly too. Returns (W+, p-value, number of non-zero differences); p = 1 when no
    difference is non-zero.
    """
    d = np.asarray(d, dtype=np.float64)
    d = d[np.isfinite(d) & (d != 0.0)]
    n = d.size
    if n == 0:
        return 0.0, 1.0, 0
    a = np.abs(d)
    order = np.argsort(a, kind="stable")
    ranks = np.empty(n)
    sorted_a = a[order]
    i = 0
    while i < n:  # mid-ranks over runs of equal |d|
        j = i
        while j + 1 < n and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    doubled = np.rint(2 * ranks).astype(np.int64)
    dist = np.zeros(int(doubled.sum()) + 1)
    dist[0] = 1.0
    for r in doubled:  # P(sum of a random subset of doubled ranks = w)
        shifted = np.zeros_like(dist)
        shifted[r:] = dist[:-r]
        dist = 0.5 * (dist + shifted)
    w2 = int(doubled[d > 0].sum())
    cdf_low = dist[: w2 + 1].sum()
    cdf_high = dist[w2:].sum()
    p = min(1.0, 2.0 * min(cdf_low, cdf_high))
    return w2 / 2.0, float(p), n


def variant_columns(frame) -> list[str]:
    """Config columns other than method, threshold, loss and seed that vary across ``frame``."""
    out = []
    for name in FIELD_NAMES:
        if name in _CORE or name not in frame.columns:
            continue
        if frame[name].n_unique() > 1:
            out.append(name)
    return out


def with_variant(frame):
    """``frame`` with a ``variant`` column (``"eps_lat=0.5 lam=2"``, or ``""``)."""
    import polars as pl

    parts = []
    for name in variant_columns(frame):
        col = pl.col(name)
        if name == "loss_set":
            text = col.list.eval(pl.element().cast(pl.String)).list.join("/")
        else:
            text = col.cast(pl.String).fill_null("none")
        parts.append(pl.lit(f"{name}=") + text)
    expr = pl.concat_str(parts, separator=" ") if parts else pl.lit("")
    return frame.with_columns(expr.alias("variant"))


THETA_FIELDS = ("theta_op_confidence", "theta_decided_share")


def summarize(frame):
    """One row per (method, variant, threshold_ms, loss); see the module docstring."""
    import polars as pl

    f = with_variant(frame).with_columns((pl.col("T_ms") <= pl.col("threshold_ms")).alias("_ok"))
    for name in THETA_FIELDS:
        if name not in f.columns:
            f = f.with_columns(pl.lit(None, dtype=pl.Float64).alias(name))
    acc_all = pl.col("accuracy")
    acc_ok = pl.col("accuracy").filter(pl.col("_ok"))
    out = f.group_by(["method", "variant", "threshold_ms", "loss"]).agg(
        pl.len().alias("n_runs"),
        pl.col("_ok").sum().alias("n_feasible"),
        pl.col("_ok").mean().alias("feasible_rate"),
        acc_all.median().alias("acc_median_all"),
        acc_all.quantile(0.25, interpolation="linear").alias("acc_q25_all"),
        acc_all.quantile(0.75, interpolation="linear").alias("acc_q75_all"),
        acc_ok.median().alias("acc_median_feasible"),
        acc_ok.quantile(0.25, interpolation="linear").alias("acc_q25_feasible"),
        acc_ok.quantile(0.75, interpolation="linear").alias("acc_q75_feasible"),
        pl.col("T_ms").median().alias("T_median"),
        pl.col("T_head_ms").median().alias("T_head_median"),
        pl.col("T_comm_ms").median().alias("T_comm_median"),
        pl.col("T_tail_ms").median().alias("T_tail_median"),
        pl.col("split").median().alias("split_median"),
        *(pl.col(n).cast(pl.Float64).median().alias(f"{n}_median") for n in THETA_FIELDS),
    )
    return out.with_columns(pl.col("method").cast(pl.String)).sort(
        ["variant", "threshold_ms", "loss", "method"])


def compare(frame, reference: str = REFERENCE):
    """NASC vs each baseline, paired per seed; one row per (variant, threshold_ms, loss, baseline).
    Empty when ``reference`` did not run."""
    import polars as pl

    f = with_variant(frame).select(["method", "variant", "threshold_ms", "loss", "seed", "T_ms", "accuracy"])
    keys = ["variant", "threshold_ms", "loss", "seed"]
    ref = f.filter(pl.col("method") == reference).drop("method")
    rows = []
    for baseline in sorted(set(f["method"].to_list()) - {reference}):
        base = f.filter(pl.col("method") == baseline).drop("method")
        pairs = ref.join(base, on=keys, suffix="_b")
        for (variant, t_th, loss), g in pairs.group_by(["variant", "threshold_ms", "loss"]):
            T, Tb = g["T_ms"].to_numpy(), g["T_ms_b"].to_numpy()
            ok = (T <= t_th) & (Tb <= t_th)
            diff_all = g["accuracy"].to_numpy() - g["accuracy_b"].to_numpy()
            row = {"variant": variant, "threshold_ms": t_th, "loss": loss, "baseline": baseline, "n_pairs": len(g),
                   "T_reduction_median_pct": float(np.median(100.0 * (1.0 - T / Tb))),
                   "n_both_feasible": int(ok.sum())}
            for suffix, diff in (("all", diff_all), ("feasible", diff_all[ok])):
                _, p, _ = wilcoxon_signed_rank(diff)
                row.update({f"acc_diff_median_{suffix}": float(np.median(diff)) if diff.size else math.nan,
                            f"wins_{suffix}": int((diff > 0).sum()), f"losses_{suffix}": int((diff < 0).sum()),
                            f"p_wilcoxon_{suffix}": p if diff.size else math.nan})
            rows.append(row)
    schema = {"variant": pl.String, "threshold_ms": pl.Float64, "loss": pl.Float64, "baseline": pl.String,
              "n_pairs": pl.Int64, "T_reduction_median_pct": pl.Float64, "n_both_feasible": pl.Int64}
    for suffix in ("all", "feasible"):
        schema.update({f"acc_diff_median_{suffix}": pl.Float64, f"wins_{suffix}": pl.Int64,
                       f"losses_{suffix}": pl.Int64, f"p_wilcoxon_{suffix}": pl.Float64})
    return pl.DataFrame(rows, schema=schema).sort(["variant", "threshold_ms", "loss", "baseline"])


def _fmt(v, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def _pct(x) -> str:
    return _fmt(None if x is None else 100 * x, ".2f")


def _iqr(lo, hi) -> str:
    return "-" if lo is None else f"[{_pct(lo)}, {_pct(hi)}]"


def _decided(r: dict) -> str:
    v = r["theta_decided_share_median"]
    return _fmt(None if v is None else 100 * v, ".0f")


def format_summary(summary) -> str:
    """The summary as a fixed-width text table (accuracy in %, latency in ms)."""
    has_variant = summary["variant"].str.len_chars().max() or 0
    head = f"{'method':14s} " + (f"{'variant':24s} " if has_variant else "") + \
        f"{'T_th':>6s} {'loss':>5s} {'runs':>5s} {'feas%':>6s} {'acc all':>8s} {'acc feas':>8s} " \
        f"{'feas IQR':>15s} {'T med':>7s} {'head':>7s} {'comm':>7s} {'tail':>7s} {'split':>5s} " \
        f"{'θ conf':>6s} {'decid%':>6s}"
    lines = [head, "-" * len(head)]
    for r in summary.iter_rows(named=True):
        lines.append(
            f"{r['method']:14s} " + (f"{r['variant']:24s} " if has_variant else "")
            + f"{r['threshold_ms']:6g} {r['loss']:5g} {r['n_runs']:5d} {100 * r['feasible_rate']:6.1f} "
            f"{_pct(r['acc_median_all']):>8s} {_pct(r['acc_median_feasible']):>8s} "
            f"{_iqr(r['acc_q25_feasible'], r['acc_q75_feasible']):>15s} {r['T_median']:7.2f} "
            f"{r['T_head_median']:7.2f} {r['T_comm_median']:7.2f} {r['T_tail_median']:7.2f} "
            f"{_fmt(r['split_median'], 'g'):>5s} {_fmt(r['theta_op_confidence_median'], '.2f'):>6s} "
            f"{_decided(r):>6s}")
    return "\n".join(lines)


def format_comparison(comparison) -> str:
    """The NASC-vs-baseline table as fixed-width text."""
    has_variant = (comparison["variant"].str.len_chars().max() or 0) if len(comparison) else 0
    head = (f"{'variant':24s} " if has_variant else "") + \
        f"{'T_th':>6s} {'loss':>5s} {'baseline':14s} {'pairs':>5s} {'T red%':>7s} " \
        f"{'dacc all':>8s} {'W/L':>7s} {'p':>8s} {'both ok':>7s} {'dacc ok':>8s} {'W/L':>7s} {'p':>8s}"
    lines = [head, "-" * len(head)]
    for r in comparison.iter_rows(named=True):
        parts = []
        for suffix in ("all", "feasible"):
            d = r[f"acc_diff_median_{suffix}"]
            parts.append(f"{_fmt(None if d is None or math.isnan(d) else 100 * d, '+.2f'):>8s} "
                         f"{str(r[f'wins_{suffix}']) + '/' + str(r[f'losses_{suffix}']):>7s} "
                         f"{_fmt(r[f'p_wilcoxon_{suffix}'], '.3g'):>8s}")
        lines.append(
            (f"{r['variant']:24s} " if has_variant else "")
            + f"{r['threshold_ms']:6g} {r['loss']:5g} {r['baseline']:14s} {r['n_pairs']:5d} "
            f"{_fmt(r['T_reduction_median_pct'], '7.1f'):>7s} {parts[0]} {r['n_both_feasible']:7d} {parts[1]}")
    return "\n".join(lines)


SUMMARY_TITLE = ("Per method, threshold and loss rate: accuracy (%) median over ALL runs (acc all) and over "
                 "FEASIBLE runs (acc feas, with IQR); feas% = share of runs with T <= T_th; latency (ms) medians "
                 "over all runs; θ conf = median mean max-probability of θ over the op variables, decid% = "
                 "median share of variables with max θ >= 0.9")
COMPARISON_TITLE = ("NASC vs baselines, paired per seed (T red%: median of 100(1 - T_nasc/T_base); "
                    "dacc: nasc - baseline in %, over all pairs and over pairs both feasible (both ok); "
                    "W/L: wins/losses; p: exact Wilcoxon signed-rank)")


def _loss_independent(summary) -> bool:
    """Whether T, feasibility and split are the same at every loss rate of each (method, variant,
    threshold) (true when one search serves all loss rates of a cell)."""
    import polars as pl

    cols = ["feasible_rate", "T_median", "split_median"]
    g = summary.group_by(["method", "variant", "threshold_ms"]).agg(*(pl.col(c).n_unique().alias(c) for c in cols))
    return bool(len(g) == 0 or all((g[c] <= 1).all() for c in cols))


def reference_loss(losses, preferred: float = 0.2) -> float:
    """The loss rate nearest to the paper's p = 0.2 among ``losses``."""
    return min(sorted(set(losses)), key=lambda p: (abs(p - preferred), p))


def format_compact(summary, comparison, n_runs: int) -> str:
    """A short report for the terminal: one row per (variant, threshold, method) and the paired
    comparison at one loss rate (see the module docstring)."""
    import polars as pl

    losses = sorted(set(summary["loss"].to_list()))
    lo, hi = losses[0], losses[-1]
    has_variant = summary["variant"].str.len_chars().max() or 0
    same = _loss_independent(summary)
    lines = [f"{n_runs} runs; loss rates {', '.join(f'{p:g}' for p in losses)}."]
    if len(losses) > 1:
        lines.append("T, feasibility and split are the same at every loss rate (one search serves all loss rates of a "
                     "cell); only the accuracy changes with p." if same else
                     "T, feasibility or split differ across loss rates: see summary.txt for every loss rate.")
    acc_cols = f"acc% p={lo:g} all|feas" + (f"  acc% p={hi:g} all|feas" if hi != lo else "")
    theta = not (summary["theta_op_confidence_median"].is_null().all()
                 and summary["theta_decided_share_median"].is_null().all())
    head = (f"{'variant':24s} " if has_variant else "") + f"{'T_th':>6s} {'method':14s} {'runs':>5s} {'feas%':>6s} " + \
        f"{'T med':>7s} {'split':>5s} " + (f"{'θ conf':>6s} {'decid%':>6s} " if theta else "") + f" {acc_cols}"
    lines += ["", head, "-" * len(head)]
    at = {p: summary.filter(pl.col("loss") == p) for p in (lo, hi)}
    key = ["variant", "threshold_ms", "method"]
    for r in at[lo].sort(key).iter_rows(named=True):
        acc = f"{_pct(r['acc_median_all']):>7s}|{_pct(r['acc_median_feasible']):<8s}"
        if hi != lo:
            h = at[hi].filter((pl.col("variant") == r["variant"]) & (pl.col("threshold_ms") == r["threshold_ms"])
                              & (pl.col("method") == r["method"]))
            h = h.row(0, named=True) if len(h) else {"acc_median_all": None, "acc_median_feasible": None}
            acc += f"          {_pct(h['acc_median_all']):>7s}|{_pct(h['acc_median_feasible']):<8s}"
        lines.append((f"{r['variant']:24s} " if has_variant else "")
                     + f"{r['threshold_ms']:6g} {r['method']:14s} {r['n_runs']:5d} {100 * r['feasible_rate']:6.1f} "
                     f"{r['T_median']:7.2f} {_fmt(r['split_median'], 'g'):>5s} "
                     + (f"{_fmt(r['theta_op_confidence_median'], '.2f'):>6s} {_decided(r):>6s} " if theta else "")
                     + f" {acc}")
    if len(comparison):
        p_ref = reference_loss(comparison["loss"].to_list())
        c = comparison.filter(pl.col("loss") == p_ref)
        lines += ["", f"NASC vs baselines at loss rate {p_ref:g}, paired per seed "
                      "(T red%: median 100(1 - T_nasc/T_base); dacc: nasc - baseline, % points; p: Wilcoxon)",
                  format_comparison(c)]
    return "\n".join(lines)


def provenance(frame, surrogates=()) -> str:
    """One line naming every surrogate that searched or judged the runs, with its data and status
    (:func:`nascsim.surrogate.provenance.provenance_line`), read from the model cards of
    ``surrogates`` (surrogate objects; the sweep's own). A surrogate of the runs that is not among
    them is named with the dataset its rows record."""
    from nascsim.surrogate.provenance import provenance_line

    known = {str(getattr(s, "id", "")): s for s in surrogates}
    cols = [c for c in ("surrogate", "search_surrogate") if c in frame.columns]
    ids = {v for c in cols for v in frame[c].drop_nulls().unique().to_list()}
    datasets = dict(frame.select(["surrogate", "dataset"]).unique(subset="surrogate").iter_rows())
    used = [known.get(i) or _Unknown(i, datasets.get(i, "")) for i in sorted(ids)]
    return provenance_line(used)


class _Unknown:
    """A surrogate known only by the id and dataset its rows record (no model card at hand)."""

    def __init__(self, id: str, dataset: str):
        self.id, self.dataset, self.card = id, dataset, {}


def write_summaries(frame, out_dir: str | os.PathLike, surrogates=()) -> tuple[str, list[Path]]:
    """Write ``summary.csv``, ``comparison.csv`` and ``summary.txt`` (atomically) into ``out_dir``;
    returns the compact text (:func:`format_compact`) and the paths. ``summary.txt`` holds the
    full tables. Both texts start with the :func:`provenance` line (``surrogates``: the sweep's
    surrogate objects, whose model cards it reads)."""
    from nascsim.atomic import atomic_write_bytes

    out = Path(out_dir)
    s, c = summarize(frame), compare(frame)
    source = provenance(frame, surrogates)
    text = source + "\n\n" + SUMMARY_TITLE + "\n" + format_summary(s)
    if len(c):
        text += "\n\n" + COMPARISON_TITLE + "\n" + format_comparison(c)
    paths = []
    for name, data in (("summary.csv", _csv(s)), ("comparison.csv", _csv(c)), ("summary.txt", (text + "\n").encode())):
        atomic_write_bytes(data, out / name)
        paths.append(out / name)
    compact = source + "\n" + format_compact(s, c, len(frame))
    return compact, paths


def _csv(frame) -> bytes:
    import io

    buf = io.BytesIO()
    frame.write_csv(buf)
    return buf.getvalue()
