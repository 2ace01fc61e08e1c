"""Held-out quality of the surrogate: rank and error metrics, noise ceiling, noise calibration.

Two held-out designs, each fitting a fresh surrogate (hyperparameters by CV on the training part
only) and scoring it on pairs it never saw:

- ``random``: a seeded random 20% of the pairs (or, when the file has ``lowvar`` rows, the pairs
  evaluated on the whole held-out split, scored against those low-noise values);
- ``region_out``: every pair whose split point lies in a band (default 8..14) -- extrapolation
  to split points the fit has not seen.

Scores per target (loss and acc over (pair, p) rows, l_SC over pairs): Kendall tau, Spearman rho,
R^2, MAE, tau within the best 10% by measurement. Beside them the noise ceiling: tau between two
independent single-batch evaluations of the same rows (the repeats), and the tau a perfect
predictor of the mean would reach against single-batch targets, 2/pi * arcsin(sqrt(r)) with r the
repeat correlation (Gaussian noise assumed). Calibration: measured residual spread against the
noise model's sd.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import polars as pl

from nascsim.surrogate.evals import Evaluations, lsc_table
from nascsim.surrogate.fit import FitOptions, fit_surrogate
from nascsim.surrogate.model import Surrogate, write_atomic

TARGET_NAMES = ("loss", "acc", "lsc")
LOWER_IS_BETTER = {"loss": True, "acc": False, "lsc": True}
DEFAULT_REGION = (8, 14)


def rank_metrics(pred: np.ndarray, obs: np.ndarray, lower_is_better: bool) -> dict:
    """Kendall tau, Spearman rho, R^2, MAE and tau within the best 10% (by ``obs``)."""
    from scipy.stats import kendalltau, spearmanr

    pred, obs = np.asarray(pred, float), np.asarray(obs, float)
    out = {"kendall_tau": None, "spearman": None, "r2": None, "mae": None, "top10_tau": None, "n": int(len(obs))}
    if len(obs) < 3:
        return out
    out["kendall_tau"] = float(kendalltau(pred, obs)[0])
    out["spearman"] = float(spearmanr(pred, obs)[0])
    ss = float(np.sum((obs - obs.mean()) ** 2))
    out["r2"] = float(1 - np.sum((obs - pred) ** 2) / ss) if ss > 0 else None
    out["mae"] = float(np.mean(np.abs(obs - pred)))
    k = max(3, int(round(0.1 * len(obs))))
    order = np.argsort(obs if lower_is_better else -obs, kind="stable")[:k]
    out["top10_tau"] = float(kendalltau(pred[order], obs[order])[0]) if len(order) >= 3 else None
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}


def _observations(ev: Evaluations, pairs: np.ndarray, loss_set, use_lowvar: bool) -> dict[str, pl.DataFrame]:
    """Test targets of ``pairs``: one row per (pair, p) for loss/acc and per pair for l_SC."""
    if use_lowvar:
        src = ev.lowvar.filter(pl.col("pair").is_in(pairs.tolist()))
    else:
        src = ev.rows.filter(pl.col("pair").is_in(pairs.tolist()))
        first = src.group_by("pair").agg(pl.col("repeat").min().alias("r0"), pl.col("batch").filter(pl.col("repeat") == pl.col("repeat").min()).first().alias("b0"))
        src = src.join(first, on="pair").filter((pl.col("repeat") == pl.col("r0")) & (pl.col("batch") == pl.col("b0"))).drop("r0", "b0")
    rows = src.unique(subset=["pair", "p"], keep="first", maintain_order=True).sort("pair", "p")
    lsc = lsc_table(src, loss_set).unique(subset=["pair"], keep="first", maintain_order=True).sort("pair")
    return {"loss": rows, "acc": rows, "lsc": lsc.rename({"lsc": "value"})}


def _score(s: Surrogate, ev: Evaluations, test: dict[str, pl.DataFrame], keep: bool) -> tuple[dict, dict]:
    scores, preds = {}, {}
    for name in TARGET_NAMES:
        f = test[name]
        archs = ev.archs(f)
        splits = f["split"].to_numpy()
        ps = f["p"].to_numpy() if name != "lsc" else np.zeros(f.height)
        obs = f[name].to_numpy() if name != "lsc" else f["value"].to_numpy()
        pred = s.predict(name, archs, splits, ps)
        sd = s.noise_sd(name, archs, splits, ps)
        m = rank_metrics(pred, obs, LOWER_IS_BETTER[name])
        z = (obs - pred) / sd
        m["calibration"] = {
            "noise_sd_predicted": float(np.sqrt(np.mean(sd**2))) if len(sd) else None,
            "residual_sd": float(np.std(obs - pred)) if len(obs) else None,
            "z_sd": float(np.std(z)) if len(z) else None,
            "within_1sd": float(np.mean(np.abs(z) < 1)) if len(z) else None,
        }
        scores[name] = m
        if keep:
            preds[name] = (pred, obs)
    return scores, preds


def _design(ev: Evaluations, test_pairs: np.ndarray, opts: FitOptions, use_lowvar: bool, keep: bool):
    train_rows = ev.rows.filter(~pl.col("pair").is_in(test_pairs.tolist()))
    if train_rows.height == 0:
        raise ValueError(f"{ev.source}: nothing left to train on after holding out {len(test_pairs)} pairs")
    train = dataclasses.replace(ev, rows=train_rows, lowvar=ev.lowvar.clear())
    s = fit_surrogate(train, options=opts)
    test = _observations(ev, test_pairs, opts.loss_set, use_lowvar)
    scores, preds = _score(s, ev, test, keep)
    n_train = {"loss": train_rows.height, "acc": train_rows.height, "lsc": int(s.card["sizes"]["lsc_rows"])}
    for name in TARGET_NAMES:
        scores[name]["n_train"] = n_train[name]
        scores[name]["against"] = "lowvar (whole held-out split)" if use_lowvar else "single batch"
    return scores, preds


def noise_ceiling(ev: Evaluations, loss_set) -> dict:
    """Per target: tau between two single-batch evaluations of the same rows (the repeats), the
    repeat correlation r and the implied tau of a perfect mean predictor, 2/pi * arcsin(sqrt(r))."""
    from scipy.stats import kendalltau

    out = {}
    rows = ev.rows
    multi = rows.group_by("pair").agg(pl.col("batch").n_unique().alias("nb")).filter(pl.col("nb") >= 2)["pair"]
    rep = rows.filter(pl.col("pair").is_in(multi.implode())).sort("pair", "p", "repeat", "batch")
    lsc = lsc_table(rep, loss_set).sort("pair", "repeat", "batch")
    for name in TARGET_NAMES:
        if name == "lsc":
            g = lsc.group_by("pair", maintain_order=True).agg(pl.col("lsc").head(2).alias("v"))
        else:
            g = rep.group_by(["pair", "p"], maintain_order=True).agg(pl.col(name).head(2).alias("v"))
        v = [x for x in g["v"].to_list() if len(x) == 2]
        if len(v) < 3:
            out[name] = {"noise_ceiling_tau": None, "repeat_r": None, "perfect_predictor_tau": None, "n_repeats": len(v)}
            continue
        a, b = np.array(v).T
        r = float(np.corrcoef(a, b)[0, 1])
        out[name] = {
            "noise_ceiling_tau": float(kendalltau(a, b)[0]),
            "repeat_r": r,
            "perfect_predictor_tau": float(2 / np.pi * np.arcsin(np.sqrt(r))) if r > 0 else 0.0,
            "n_repeats": len(v),
        }
    return out


def evaluate(ev: Evaluations, options: FitOptions | None = None, *, region: tuple[int, int] = DEFAULT_REGION, test_frac: float = 0.2, seed: int = 0, keep_predictions: bool = False) -> dict:
    """Quality figures of surrogates fitted on ``ev`` (see the module docstring).

    Returns {target: {"random": {...}, "region_out": {...}, "noise_ceiling_tau", "n_train",
    "n_test", ...}} plus "_meta" (designs, sizes); with ``keep_predictions``, "_predictions":
    {design: {target: (pred, obs)}} for the plot.
    """
    opts = options or FitOptions()
    pairs = np.unique(ev.rows["pair"].to_numpy())
    use_lowvar = ev.lowvar.height > 0
    if use_lowvar:
        test_random = np.unique(ev.lowvar["pair"].to_numpy())
    else:
        rng = np.random.default_rng(seed)
        n_test = max(1, int(round(test_frac * len(pairs))))
        test_random = np.sort(rng.choice(pairs, size=n_test, replace=False))
    lo, hi = region
    split_of = ev.rows.group_by("pair").agg(pl.col("split").first())
    test_region = np.sort(split_of.filter((pl.col("split") >= lo) & (pl.col("split") <= hi))["pair"].to_numpy())
    if len(test_region) == 0:
        raise ValueError(f"{ev.source}: no pair has a split in the held-out band {lo}..{hi}")
    rnd, p_rnd = _design(ev, test_random, opts, use_lowvar, keep_predictions)
    reg, p_reg = _design(ev, test_region, opts, False, keep_predictions)
    ceiling = noise_ceiling(ev, opts.loss_set)
    out: dict = {}
    for name in TARGET_NAMES:
        out[name] = {
            "random": rnd[name],
            "region_out": reg[name],
            "noise_ceiling_tau": ceiling[name]["noise_ceiling_tau"],
            "perfect_predictor_tau": ceiling[name]["perfect_predictor_tau"],
            "repeat_r": ceiling[name]["repeat_r"],
            "n_train": rnd[name]["n_train"],
            "n_test": rnd[name]["n"],
        }
    out["_meta"] = {
        "id": ev.id,
        "dataset": ev.dataset,
        "random": {"test_pairs": int(len(test_random)), "against": rnd["loss"]["against"], "seed": seed, "test_frac": test_frac},
        "region_out": {"test_pairs": int(len(test_region)), "band": f"split {lo}..{hi}"},
    }
    if keep_predictions:
        out["_predictions"] = {"random": p_rnd, "region_out": p_reg}
    return out


def public_json(result: dict) -> dict:
    """The ``--json`` form: per target {"random": {...}, "region_out": {...}, "noise_ceiling_tau",
    "n_train", "n_test"} (plus extra keys), without predictions."""
    return {k: v for k, v in result.items() if k != "_predictions"}


def _f(x, fmt="{:+.3f}") -> str:
    return "   -  " if x is None else fmt.format(x)


def table(result: dict) -> str:
    """Plain-text table of :func:`evaluate`'s result."""
    meta = result["_meta"]
    lines = [
        f"surrogate quality: {meta['id']} ({meta['dataset']})",
        f"random: {meta['random']['test_pairs']} held-out pairs, against {meta['random']['against']}; "
        f"region_out: {meta['region_out']['test_pairs']} pairs with {meta['region_out']['band']} held out",
        f"{'target':6s} {'design':10s} {'tau':>7s} {'rho':>7s} {'R2':>7s} {'MAE':>8s} {'tau@10%':>7s} {'ceil':>7s} {'perfect':>7s} {'z_sd':>6s} {'n_train':>7s} {'n_test':>6s}",
    ]
    for name in TARGET_NAMES:
        r = result[name]
        for design in ("random", "region_out"):
            m = r[design]
            lines.append(
                f"{name:6s} {design:10s} {_f(m['kendall_tau'])} {_f(m['spearman'])} {_f(m['r2'])} {_f(m['mae'], '{:8.4f}')} "
                f"{_f(m['top10_tau'])} {_f(r['noise_ceiling_tau'])} {_f(r['perfect_predictor_tau'])} "
                f"{_f(m['calibration']['z_sd'], '{:6.2f}')} {m['n_train']:7d} {m['n']:6d}"
            )
    lines.append("ceil: tau between two single-batch evaluations of the same rows; perfect: tau a perfect mean predictor would reach against one batch; z_sd: sd of (measured - predicted) / noise_sd (1 = noise explains all the residual)")
    return "\n".join(lines)


def plot(result: dict, path: str | os.PathLike) -> Path:
    """Predicted vs measured (random and region-out designs, three targets) as a PNG, atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    preds = result["_predictions"]
    meta = result["_meta"]
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.5))
    for i, design in enumerate(("random", "region_out")):
        for j, name in enumerate(TARGET_NAMES):
            ax = axes[i, j]
            pred, obs = preds[design][name]
            ax.scatter(obs, pred, s=6, alpha=0.5)
            lo, hi = float(min(obs.min(), pred.min())), float(max(obs.max(), pred.max()))
            ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
            m = result[name][design]
            ax.set_title(f"{name}, {design}: tau={_f(m['kendall_tau']).strip()}, R2={_f(m['r2']).strip()}", fontsize=9)
            ax.set_xlabel(f"measured ({m['against']})", fontsize=8)
            ax.set_ylabel("predicted", fontsize=8)
    fig.suptitle(f"surrogate {meta['id']} on {meta['dataset']}: predicted vs measured on held-out pairs", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    write_atomic(path, buf.getvalue())
    return Path(path)


def feature_ablation(ev: Evaluations, options: FitOptions, variants: dict[str, tuple[str, ...]] | None = None, seed: int = 0) -> dict:
    """Random-split quality of surrogates fitted with different feature groups.

    Returns {variant: {target: {"kendall_tau", "r2"}}}.
    """
    variants = variants or {
        "base (ops, split, p)": (),
        "+split_op": ("split_op",),
        "+flops": ("flops",),
        "+depth": ("depth",),
        "all": ("split_op", "flops", "depth"),
    }
    out = {}
    for label, groups in variants.items():
        r = evaluate(ev, dataclasses.replace(options, groups=tuple(groups)), seed=seed)
        out[label] = {n: {"kendall_tau": r[n]["random"]["kendall_tau"], "r2": r[n]["random"]["r2"], "region_out_tau": r[n]["region_out"]["kendall_tau"]} for n in TARGET_NAMES}
    return out


def write_json(obj: dict, path: str | os.PathLike) -> Path:
    write_atomic(path, (json.dumps(obj, indent=1) + "\n").encode())
    return Path(path)
