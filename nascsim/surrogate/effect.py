"""The effect of packet loss p on a surrogate's accuracy, predicted and measured.

- :func:`p_effect`: the predicted accuracy drop acc(a, k, p0) - acc(a, k, p1) and loss rise
  (p0 = 0, p1 = 0.5 by default) over a seeded uniform sample of (a, k) of the space; a fit puts it
  in its card (:func:`nascsim.surrogate.fit.fit_surrogate`);
- :func:`measured_p_effect`: the drop measured in the data, on the same pair and batch at both
  rates, by bands of split points, beside the surrogate's prediction on the same pairs (the
  held-out report, :mod:`nascsim.surrogate.report`);
- :func:`p_effect_line`: :func:`p_effect`'s result as one line.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from nascsim.space import get_space
from nascsim.surrogate.model import Surrogate

P_EFFECT_SAMPLES = 2000
P_EFFECT_RATES = (0.0, 0.5)
SPLIT_BAND = 4  # splits per band in the by-split view of the measured drop
N_SPLIT_MAX = 22


def _stats(x: np.ndarray) -> dict:
    return {"median": float(np.median(x)), "mean": float(np.mean(x)), "min": float(np.min(x)), "max": float(np.max(x))}


def p_effect(s: Surrogate, n: int = P_EFFECT_SAMPLES, seed: int = 0, rates: tuple[float, float] = P_EFFECT_RATES) -> dict:
    """Predicted effect of packet loss over ``n`` seeded uniform random (arch, split) of the space.

    Returns {"p": [p0, p1], "samples", "seed", "acc_drop": acc(p0) - acc(p1), "loss_rise": loss(p1) -
    loss(p0), "acc_at_p0": acc(p0)}, each as {"median", "mean", "min", "max"} (acc_at_p0 also with
    its 5% and 95% quantiles "q05", "q95"), and "acc_flops_spearman": Spearman rho between acc(p0)
    and the architecture's FLOPs (full width, :func:`nascsim.hw.flops.flop_tables`) -- how much the
    surrogate rewards capacity. With the monotone fit (:mod:`nascsim.surrogate.fit`) acc_drop and
    loss_rise are >= 0 for every sample.
    """
    from scipy.stats import spearmanr

    from nascsim.hw.flops import flop_tables

    sp = get_space(s.space)
    rng = np.random.default_rng(seed)
    archs = rng.integers(0, sp.n_ops, size=(n, sp.n_layers))
    splits = rng.integers(0, sp.n_layers + 1, size=n)
    p0, p1 = rates
    a0, a1 = s.predict("acc", archs, splits, p0), s.predict("acc", archs, splits, p1)
    l0, l1 = s.predict("loss", archs, splits, p0), s.predict("loss", archs, splits, p1)
    flops = flop_tables(sp, s.classes).layer[np.arange(sp.n_layers), archs].sum(axis=1)
    rho = float(spearmanr(a0, flops)[0]) if np.ptp(a0) > 0 else 0.0
    at_p0 = {**_stats(a0), "q05": float(np.quantile(a0, 0.05)), "q95": float(np.quantile(a0, 0.95))}
    return {"p": [p0, p1], "samples": n, "seed": seed, "acc_drop": _stats(a0 - a1), "loss_rise": _stats(l1 - l0),
            "acc_at_p0": at_p0, "acc_flops_spearman": rho}


def measured_p_effect(frame: pl.DataFrame, rates: tuple[float, float] = P_EFFECT_RATES, s: Surrogate | None = None) -> dict | None:
    """Accuracy drop acc(p0) - acc(p1) measured on the same pair and batch at both rates.

    Returns {"n", "median", "mean", "min", "max"} over the (pair, batch, repeat) groups holding both
    rates, or None when there are none; with a surrogate ``s``, also "predicted_mean" and
    "predicted_median": its predicted drop on the same groups' (arch, split)."""
    from nascsim.surrogate.evals import OP_COLUMNS

    p0, p1 = rates
    keys = ["pair", "batch", "repeat"]
    a = frame.filter((pl.col("p") - p0).abs() <= 1e-9).group_by(keys).agg(pl.col("acc").first().alias("a0"), pl.col("split").first(), *[pl.col(c).first() for c in OP_COLUMNS])
    b = frame.filter((pl.col("p") - p1).abs() <= 1e-9).group_by(keys).agg(pl.col("acc").first().alias("a1"))
    j = a.join(b, on=keys)
    if j.height == 0:
        return None
    drop = (j["a0"] - j["a1"]).to_numpy()
    splits = j["split"].to_numpy().astype(np.int64)
    out = {"n": j.height, **_stats(drop)}
    bands = [(lo, min(lo + SPLIT_BAND - 1, N_SPLIT_MAX)) for lo in range(0, N_SPLIT_MAX + 1, SPLIT_BAND)]
    out["by_split"] = [{"splits": [lo, hi], "n": int(np.sum((splits >= lo) & (splits <= hi))),
                        "mean": float(np.mean(drop[(splits >= lo) & (splits <= hi)])) if np.any((splits >= lo) & (splits <= hi)) else None}
                       for lo, hi in bands]
    if s is not None:
        archs = j.select(OP_COLUMNS).to_numpy().astype(np.int64)
        d = s.predict("acc", archs, splits, p0) - s.predict("acc", archs, splits, p1)
        out["predicted_mean"], out["predicted_median"] = float(np.mean(d)), float(np.median(d))
        for b in out["by_split"]:
            m = (splits >= b["splits"][0]) & (splits <= b["splits"][1])
            b["predicted_mean"] = float(np.mean(d[m])) if m.any() else None
    return out


def p_effect_line(e: dict, label: str) -> str:
    """One line of :func:`p_effect`'s result, accuracy in points (%)."""
    d, a = e["acc_drop"], e["acc_at_p0"]
    return (f"accuracy drop p={e['p'][0]:g} -> {e['p'][1]:g} predicted ({label}, {e['samples']} random (arch, split)): median {100 * d['median']:.2f}, "
            f"range [{100 * d['min']:.2f}, {100 * d['max']:.2f}] points; loss rise median {e['loss_rise']['median']:.4f}; "
            f"accuracy at p={e['p'][0]:g} {100 * a['min']:.1f}..{100 * a['max']:.1f}%"
            + (f" (5-95%: {100 * a['q05']:.1f}..{100 * a['q95']:.1f}), Spearman with FLOPs {e['acc_flops_spearman']:+.2f}"
               if "acc_flops_spearman" in e else ""))
