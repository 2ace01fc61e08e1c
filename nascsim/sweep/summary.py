"""Summaries of a sweep's runs: per (method, threshold, loss) and NASC vs each baseline, paired.

``summarize`` (one row per method, variant, T_th and loss rate p):

- ``feasible_rate``: share of runs with T <= T_th (the constraint of eq. 4's penalty term);
- ``acc_median``, ``acc_q25``, ``acc_q75``: expected accuracy at p over the feasible runs only;
- ``T_median`` and ``T_head_median``, ``T_comm_median``, ``T_tail_median`` (eq. 3's terms, each
  the median over all runs of its own column, so they need not add up to ``T_median``);
- ``split_median``.

``compare`` (one row per variant, T_th, p and baseline): runs of ``nasc`` and the baseline with the
same seed form a pair (the grid gives them the same seed stream). ``T_reduction_median_pct`` is the
median over pairs of 100 (1 - T_nasc / T_baseline); the accuracy difference nasc - baseline is
taken over pairs where both runs are feasible and tested with the exact Wilcoxon signed-rank test
(:func:`wilcoxon_signed_rank`, implemented here in numpy: scipy is not a dependency).

A *variant* is the combination of the sweep's other axes (e.g. ``eps_lat=0.5 lam=2``), empty when
the sweep varies only method, threshold, loss and seed.
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


def summarize(frame):
    """One row per (method, variant, threshold_ms, loss); see the module docstring."""
    import polars as pl

    f = with_variant(frame).with_columns((pl.col("T_ms") <= pl.col("threshold_ms")).alias("_ok"))
    acc = pl.col("accuracy").filter(pl.col("_ok"))
    out = f.group_by(["method", "variant", "threshold_ms", "loss"]).agg(
        pl.len().alias("n_runs"),
        pl.col("_ok").mean().alias("feasible_rate"),
        pl.col("_ok").sum().alias("n_feasible"),
        acc.median().alias("acc_median"),
        acc.quantile(0.25, interpolation="linear").alias("acc_q25"),
        acc.quantile(0.75, interpolation="linear").alias("acc_q75"),
        pl.col("T_ms").median().alias("T_median"),
        pl.col("T_head_ms").median().alias("T_head_median"),
        pl.col("T_comm_ms").median().alias("T_comm_median"),
        pl.col("T_tail_ms").median().alias("T_tail_median"),
        pl.col("split").median().alias("split_median"),
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
            diff = g["accuracy"].to_numpy()[ok] - g["accuracy_b"].to_numpy()[ok]
            _, p, _ = wilcoxon_signed_rank(diff)
            rows.append({
                "variant": variant, "threshold_ms": t_th, "loss": loss, "baseline": baseline,
                "n_pairs": len(g),
                "T_reduction_median_pct": float(np.median(100.0 * (1.0 - T / Tb))),
                "n_both_feasible": int(ok.sum()),
                "acc_diff_median": float(np.median(diff)) if diff.size else math.nan,
                "wins": int((diff > 0).sum()), "losses": int((diff < 0).sum()),
                "p_wilcoxon": p if diff.size else math.nan,
            })
    schema = {"variant": pl.String, "threshold_ms": pl.Float64, "loss": pl.Float64, "baseline": pl.String,
              "n_pairs": pl.Int64, "T_reduction_median_pct": pl.Float64, "n_both_feasible": pl.Int64,
              "acc_diff_median": pl.Float64, "wins": pl.Int64, "losses": pl.Int64, "p_wilcoxon": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort(["variant", "threshold_ms", "loss", "baseline"])


def _fmt(v, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def format_summary(summary) -> str:
    """The summary as a fixed-width text table (accuracy in %, latency in ms)."""
    has_variant = summary["variant"].str.len_chars().max() or 0
    head = f"{'method':14s} " + (f"{'variant':24s} " if has_variant else "") + \
        f"{'T_th':>6s} {'loss':>5s} {'runs':>5s} {'feas%':>6s} {'acc med':>8s} {'acc IQR':>15s} " \
        f"{'T med':>7s} {'head':>7s} {'comm':>7s} {'tail':>7s} {'split':>5s}"
    lines = [head, "-" * len(head)]
    for r in summary.iter_rows(named=True):
        acc = lambda x: _fmt(None if x is None else 100 * x, ".2f")  # noqa: E731
        iqr = "-" if r["acc_q25"] is None else f"[{acc(r['acc_q25'])}, {acc(r['acc_q75'])}]"
        lines.append(
            f"{r['method']:14s} " + (f"{r['variant']:24s} " if has_variant else "")
            + f"{r['threshold_ms']:6g} {r['loss']:5g} {r['n_runs']:5d} {100 * r['feasible_rate']:6.1f} "
            f"{acc(r['acc_median']):>8s} {iqr:>15s} {r['T_median']:7.2f} {r['T_head_median']:7.2f} "
            f"{r['T_comm_median']:7.2f} {r['T_tail_median']:7.2f} {_fmt(r['split_median'], 'g'):>5s}")
    return "\n".join(lines)


def format_comparison(comparison) -> str:
    """The NASC-vs-baseline table as fixed-width text."""
    has_variant = (comparison["variant"].str.len_chars().max() or 0) if len(comparison) else 0
    head = (f"{'variant':24s} " if has_variant else "") + \
        f"{'T_th':>6s} {'loss':>5s} {'baseline':14s} {'pairs':>5s} {'T red%':>7s} {'both ok':>7s} " \
        f"{'dacc med':>8s} {'W/L':>7s} {'p':>8s}"
    lines = [head, "-" * len(head)]
    for r in comparison.iter_rows(named=True):
        lines.append(
            (f"{r['variant']:24s} " if has_variant else "")
            + f"{r['threshold_ms']:6g} {r['loss']:5g} {r['baseline']:14s} {r['n_pairs']:5d} "
            f"{_fmt(r['T_reduction_median_pct'], '7.1f'):>7s} {r['n_both_feasible']:7d} "
            f"{_fmt(None if math.isnan(r['acc_diff_median']) else 100 * r['acc_diff_median'], '+.2f'):>8s} "
            f"{str(r['wins']) + '/' + str(r['losses']):>7s} {_fmt(r['p_wilcoxon'], '.3g'):>8s}")
    return "\n".join(lines)


def provenance(frame) -> str:
    """"surrogate <id> (<dataset>)" for every surrogate the runs' accuracies came from."""
    pairs = frame.select(["surrogate", "dataset"]).unique().sort("surrogate").iter_rows()
    return "accuracy surrogate: " + ", ".join(f"{s} ({d})" for s, d in pairs)


def write_summaries(frame, out_dir: str | os.PathLike) -> tuple[str, list[Path]]:
    """Write ``summary.csv``, ``comparison.csv`` and ``summary.txt`` (atomically) into ``out_dir``;
    returns the text (both tables) and the paths."""
    from nascsim.atomic import atomic_write_bytes

    out = Path(out_dir)
    s, c = summarize(frame), compare(frame)
    text = provenance(frame) + "\n\n" + \
        "Per method, threshold and loss rate (accuracy over feasible runs, %; latency ms)\n" + format_summary(s)
    if len(c):
        text += "\n\nNASC vs baselines, paired per seed (T red%: median of 100(1 - T_nasc/T_base); " \
                "dacc: nasc - baseline over pairs both feasible, %; p: exact Wilcoxon signed-rank)\n" + \
                format_comparison(c)
    paths = []
    for name, data in (("summary.csv", _csv(s)), ("comparison.csv", _csv(c)), ("summary.txt", (text + "\n").encode())):
        atomic_write_bytes(data, out / name)
        paths.append(out / name)
    return text, paths


def _csv(frame) -> bytes:
    import io

    buf = io.BytesIO()
    frame.write_csv(buf)
    return buf.getvalue()
