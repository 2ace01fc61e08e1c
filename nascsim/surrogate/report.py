"""Held-out quality of the surrogate: rank and error metrics, noise ceiling, noise calibration.

Two held-out designs, each fitting a fresh surrogate (hyperparameters by CV on the training part
only) and scoring it on pairs it never saw:

- ``random``: a seeded random 20% of the pairs (or, when the file has ``lowvar`` rows, the pairs
  evaluated on the whole held-out split, scored against those low-noise values);
- ``region_out``: every pair whose split point lies in a band (default 8..14) -- extrapolation
  to split points the fit has not seen.

Test targets come from the "main" rows of the held-out pairs, or, for the ``random`` design when
the file has "lowvar" rows (the ``design`` column), from those low-noise rows. "noise" rows are never test
targets. Scores per target (loss and acc over (pair, p) rows, l_SC over pairs): Kendall tau,
Spearman rho, R^2, MAE, tau within the best 10% by measurement. Beside them the noise ceiling: tau between two
independent single-batch evaluations of the same rows (the repeats), and the tau a perfect
predictor of the mean would reach against single-batch targets, 2/pi * arcsin(sqrt(r)) with r the
repeat correlation (Gaussian noise assumed). Calibration: measured residual spread against the
noise model's sd.

The effect of packet loss, predicted and measured, comes with them (:mod:`nascsim.surrogate.effect`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import polars as pl

from nascsim.surrogate.effect import measured_p_effect, p_effect_line
from nascsim.surrogate.evals import Evaluations, lsc_table
from nascsim.surrogate.fit import FitOptions, Progress, _say, check_fit_data, fit_surrogate
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


def score_against(s: Surrogate, ev: Evaluations) -> dict:
    """A fitted surrogate, as it is (no refit), scored against another evaluation file: its
    low-noise rows when it has them, else each pair's first main batch. Returns {target: metrics
    of :func:`rank_metrics` + "calibration", "against"} and "_meta" ({"id", "against_id", "pairs"}).
    Rank figures compare across supernets; R^2 and MAE only where both measure the same network."""
    use_lowvar = ev.lowvar.height > 0
    pairs = np.unique((ev.lowvar if use_lowvar else ev.rows)["pair"].to_numpy())
    test = _observations(ev, pairs, s.loss_set, use_lowvar)
    scores, _ = _score(s, ev, test, False)
    for name in TARGET_NAMES:
        scores[name]["against"] = "lowvar (whole held-out split)" if use_lowvar else "single batch"
    scores["_meta"] = {"id": s.id, "against_id": ev.id, "pairs": int(len(pairs))}
    return scores


def against_table(result: dict) -> str:
    """Plain-text table of :func:`score_against`."""
    meta = result["_meta"]
    lines = [f"surrogate {meta['id']} as fitted, against {meta['against_id']} "
             f"({meta['pairs']} pairs, {result['lsc']['against']})",
             f"{'target':6s} {'tau':>7s} {'rho':>7s} {'R2':>7s} {'MAE':>8s} {'n':>6s}"]
    for name in TARGET_NAMES:
        m = result[name]
        lines.append(f"{name:6s} {_f(m['kendall_tau'])} {_f(m['spearman'])} {_f(m['r2'])} {_f(m['mae'], '{:8.4f}')} {m['n']:6d}")
    return "\n".join(lines)


def _train_rows(ev: Evaluations, test_pairs: np.ndarray) -> pl.DataFrame:
    train_rows = ev.rows.filter(~pl.col("pair").is_in(test_pairs.tolist()))
    if train_rows.height == 0:
        raise ValueError(f"{ev.source}: nothing left to train on after holding out {len(test_pairs)} pairs")
    return train_rows


def _design(ev: Evaluations, test_pairs: np.ndarray, opts: FitOptions, use_lowvar: bool, keep: bool, progress: Progress = None):
    train_rows = _train_rows(ev, test_pairs)
    train = dataclasses.replace(ev, rows=train_rows, lowvar=ev.lowvar.clear())
    s = fit_surrogate(train, options=opts, progress=progress)
    test = _observations(ev, test_pairs, opts.loss_set, use_lowvar)
    scores, preds = _score(s, ev, test, keep)
    n_train = {"loss": train_rows.height, "acc": train_rows.height, "lsc": int(s.card["sizes"]["lsc_rows"])}
    for name in TARGET_NAMES:
        scores[name]["n_train"] = n_train[name]
        scores[name]["against"] = "lowvar (whole held-out split)" if use_lowvar else "single batch"
    return scores, preds, s


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


def lowvar_ceiling(ev: Evaluations, s: Surrogate, loss_set) -> dict:
    """Per target: how far the low-noise set itself allows a rank agreement. Its values still carry
    the sampling noise of the held-out images: the noise model's sd of one observation (on the
    main rows' ``n_images``), scaled to the low-noise rows' images (variance ~ 1/n), of which only
    the part not shared by pairs on the same images (``1 - shared``) reorders pairs -- every
    low-noise pair sees the same images. With R = 1 - that variance / the variance of the
    low-noise values, a perfect predictor of the mean reaches tau = 2/pi * arcsin(sqrt(R))
    against them (Gaussian noise assumed). Empty without low-noise rows."""
    if ev.lowvar.height == 0:
        return {}
    noise = s.doc["noise"]
    n_main, n_low = float(noise["n_images"]), float(ev.lowvar["n_images"].median())
    scale = n_main / n_low
    lsc = lsc_table(ev.lowvar, loss_set)
    out = {}
    for name in TARGET_NAMES:
        if name == "lsc":
            values, var_noise = lsc["lsc"].to_numpy(), noise["lsc"] ** 2 * (1 - noise["shared"]["lsc"]) * scale
        else:
            values = ev.lowvar[name].to_numpy()
            per_p = [sd ** 2 * (1 - sh) for sd, sh in zip(noise[name], noise["shared"][name])]
            var_noise = float(np.mean(per_p)) * scale
        var_obs = float(np.var(values, ddof=1)) if len(values) > 1 else 0.0
        reliability = max(0.0, 1 - var_noise / var_obs) if var_obs > 0 else 0.0
        out[name] = {"lowvar_noise_sd": float(np.sqrt(var_noise)), "lowvar_sd": float(np.sqrt(var_obs)),
                     "lowvar_reliability": reliability,
                     "lowvar_ceiling_tau": float(2 / np.pi * np.arcsin(np.sqrt(reliability)))}
    return out


def evaluate(ev: Evaluations, options: FitOptions | None = None, *, region: tuple[int, int] = DEFAULT_REGION, test_frac: float = 0.2,
             seed: int = 0, keep_predictions: bool = False, progress: Progress = None) -> dict:
    """Quality figures of surrogates fitted on ``ev`` (see the module docstring).

    Returns {target: {"random": {...}, "region_out": {...}, "noise_ceiling_tau", "n_train",
    "n_test", ...}} plus "_meta" (designs, sizes) and "_p_effect" ({"fit": :func:`p_effect` of the
    random design's surrogate, "measured": :func:`measured_p_effect` of the main rows and, when
    present, "measured_lowvar"}); with ``keep_predictions``, "_predictions": {design: {target:
    (pred, obs)}} for the plot. ``progress`` (if given) receives one line per step.
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
    for test in (test_random, test_region):  # every check before the first (long) fit
        check_fit_data(dataclasses.replace(ev, rows=_train_rows(ev, test), lowvar=ev.lowvar.clear()), opts)
    against = "its lowvar rows" if use_lowvar else "single batches"
    _say(progress, f"report {ev.id}: design random, {len(test_random)} held-out pairs (scored against {against})")
    rnd, p_rnd, s_rnd = _design(ev, test_random, opts, use_lowvar, keep_predictions, progress)
    _say(progress, f"report {ev.id}: design region_out, {len(test_region)} held-out pairs with split {lo}..{hi}")
    reg, p_reg, _ = _design(ev, test_region, opts, False, keep_predictions, progress)
    _say(progress, f"report {ev.id}: noise ceiling from repeats, effect of p")
    ceiling = noise_ceiling(ev, opts.loss_set)
    low_ceiling = lowvar_ceiling(ev, s_rnd, opts.loss_set)
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
            **low_ceiling.get(name, {}),
        }
    out["_meta"] = {
        "id": ev.id,
        "dataset": ev.dataset,
        "random": {"test_pairs": int(len(test_random)), "against": rnd["loss"]["against"], "seed": seed, "test_frac": test_frac},
        "region_out": {"test_pairs": int(len(test_region)), "band": f"split {lo}..{hi}"},
    }
    out["_p_effect"] = {"fit": s_rnd.card["p_effect"], "measured": measured_p_effect(ev.rows, s=s_rnd)}
    if ev.lowvar.height:
        out["_p_effect"]["measured_lowvar"] = measured_p_effect(ev.lowvar, s=s_rnd)
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
    for name in TARGET_NAMES:
        r = result[name]
        if r.get("lowvar_ceiling_tau") is not None:
            lines.append(f"{name}: the low-noise values spread sd {r['lowvar_sd']:.4f} against a sampling sd of {r['lowvar_noise_sd']:.4f} "
                         f"that reorders pairs (reliability {r['lowvar_reliability']:.2f}): a perfect mean predictor reaches tau "
                         f"{r['lowvar_ceiling_tau']:+.3f} against them")
    eff = result.get("_p_effect")
    if eff:
        for label, e in (("random-design fit", eff.get("fit")), ("file", eff.get("file"))):
            if e:
                lines.append(p_effect_line(e, label))
        for label, m in (("main rows", eff.get("measured")), ("lowvar rows", eff.get("measured_lowvar"))):
            if m:
                pred = f"; the random-design fit predicts mean {100 * m['predicted_mean']:.2f} on the same pairs" if "predicted_mean" in m else ""
                lines.append(f"accuracy drop p=0 -> 0.5 measured ({label}, {m['n']} pair-batches at both rates): median {100 * m['median']:.2f}, mean {100 * m['mean']:.2f} points{pred}")
                cells = [f"{b['splits'][0]}-{b['splits'][1]}: {_pts(b['mean'])}" + (f" ({_pts(b['predicted_mean'])})" if "predicted_mean" in b else "") for b in m.get("by_split", [])]
                if cells:
                    lines.append("  by split, measured (predicted) mean drop in points: " + ", ".join(cells))
    return "\n".join(lines)


def _pts(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


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


def feature_ablation(ev: Evaluations, options: FitOptions, variants: dict[str, tuple[str, ...]] | None = None, seed: int = 0,
                     progress: Progress = None) -> dict:
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
        _say(progress, f"ablation {ev.id}: variant {label}")
        r = evaluate(ev, dataclasses.replace(options, groups=tuple(groups)), seed=seed, progress=progress)
        out[label] = {n: {"kendall_tau": r[n]["random"]["kendall_tau"], "r2": r[n]["random"]["r2"], "region_out_tau": r[n]["region_out"]["kendall_tau"]} for n in TARGET_NAMES}
    return out


def write_json(obj: dict, path: str | os.PathLike) -> Path:
    write_atomic(path, (json.dumps(obj, indent=1) + "\n").encode())
    return Path(path)


def _fmt_value(v) -> str:
    text = f"{v:g}" if isinstance(v, float) else str(v)
    text = text.replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def _get(d, *keys):
    """d[k1][k2]... or None when any level is missing or not a dict (cards are free-form)."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def what_it_is(s: Surrogate) -> str:
    """One plain line: dataset, proxy setting and device (:mod:`nascsim.surrogate.provenance`), the
    supernet's measured accuracy and the l_SC rank agreement on held-out pairs, as the card records
    them ("-" where it does not)."""
    from nascsim.surrogate.provenance import describe

    card = s.card
    m = card.get("measured") if isinstance(card.get("measured"), dict) else {}
    acc, sd = m.get("acc_p0_mean"), m.get("acc_p0_sd")
    accuracy = (f"supernet accuracy {100 * acc:.1f}%" + (f" (sd {100 * sd:.1f} over {_fmt_value(m.get('pairs'))} pairs)" if isinstance(sd, (int, float)) else "")
                + f" at p = 0 on {_fmt_value(m.get('on'))}") if isinstance(acc, (int, float)) else "supernet accuracy not recorded"
    tau = _get(card, "quality", "lsc", "random", "kendall_tau")
    against = _get(card, "quality", "lsc", "random", "against")
    rank = (f"l_SC Kendall tau {tau:+.2f} on held-out pairs" + (f" against {against}" if isinstance(against, str) else "")
            if isinstance(tau, (int, float)) else "l_SC tau not measured")
    return f"{describe(s)}; latency and payload from the full-width tables; {accuracy}; {rank}"


def model_card(s: Surrogate) -> str:
    """The model card of ``s`` as plain text: data, supernet, model, quality, effect of p, noise.

    Reads the validated document (``s.doc``) and the free-form ``card``; a card field that is
    missing or of an unexpected type is shown as "-"."""
    card = s.card
    doc = s.doc
    lines = [f"surrogate {s.id} (format {doc['format_version']}, fitted by nascsim {_fmt_value(card.get('nascsim_version', '-'))})"]
    sizes = card.get("sizes") if isinstance(card.get("sizes"), dict) else {}
    n_img = sizes.get("n_images")
    lines.append(
        f"  data      {s.dataset}, {s.space} space, {s.classes} classes; source {_fmt_value(card.get('source', '-'))}: "
        f"{_fmt_value(sizes.get('rows', '-'))} main rows of {_fmt_value(sizes.get('pairs', '-'))} pairs, "
        f"{_fmt_value(sizes.get('lowvar_rows', 0))} lowvar rows, {_fmt_value(sizes.get('noise_rows', 0))} noise rows"
        + (f", {', '.join(map(_fmt_value, n_img))} images per batch" if isinstance(n_img, list) else "")
    )
    lines.append("  is        " + what_it_is(s))
    rec = card.get("supernet") if isinstance(card.get("supernet"), dict) else {}
    scalars = [f"{k}={_fmt_value(v)}" for k, v in rec.items() if isinstance(v, (str, int, float, bool)) and k not in ("dataset", "space", "classes", "dataset_source", "id")]
    log = rec.get("epochs_log")
    if isinstance(log, list) and log and isinstance(log[-1], dict) and "loss" in log[-1]:
        scalars.append(f"final train loss={_fmt_value(log[-1]['loss'])}")
    lines.append(f"  supernet  split dropout {s.split_dropout_train:g} in training; " + (", ".join(scalars[:16]) if scalars else "no record"))
    chosen = _get(card, "model", "chosen") or {}
    parts = []
    for name in TARGET_NAMES:
        c = chosen.get(name) if isinstance(chosen, dict) else None
        n_trees = len(doc["targets"][name]["tree_start"])
        n_nodes = len(doc["targets"][name]["value"])
        detail = ""
        if isinstance(c, dict) and isinstance(c.get("level"), dict) and isinstance(c.get("p_effect"), dict):
            detail = (f" (level {_fmt_value(c['level'].get('n_iter', '-'))} + effect of p {_fmt_value(c['p_effect'].get('n_iter', '-'))}), "
                      f"p {_fmt_value(c.get('monotone_p', '-'))}")
        elif isinstance(c, dict):
            detail = f", max_leaf_nodes {_fmt_value(c.get('max_leaf_nodes', '-'))}, min_samples_leaf {_fmt_value(c.get('min_samples_leaf', '-'))}, p {_fmt_value(c.get('monotone_p', '-'))}"
        parts.append(f"{name}: {n_trees} trees{detail}, {n_nodes} nodes")
    lines.append("  model     " + "; ".join(parts))
    q = card.get("quality")
    if isinstance(q, dict):
        for design in ("random", "region_out"):
            cells = []
            for name in TARGET_NAMES:
                m = _get(q, name, design)
                if isinstance(m, dict):
                    tau, r2 = m.get("kendall_tau"), m.get("r2")
                    cells.append(f"{name} tau {_f(tau) if isinstance(tau, (int, float)) else '-'} R2 {_f(r2) if isinstance(r2, (int, float)) else '-'}")
            against = _get(q, "loss", design, "against")
            if cells:
                lines.append(f"  quality   {design} held-out pairs{f' (against {against})' if isinstance(against, str) else ''}: " + "; ".join(cells))
    else:
        lines.append("  quality   not measured (fit with --quality, or run `nascsim surrogate report`)")
    e = card.get("p_effect")
    if isinstance(e, dict):
        try:
            lines.append("  p effect  " + p_effect_line(e, "this fit").removeprefix("accuracy drop "))
        except (KeyError, TypeError, ValueError):
            lines.append("  p effect  -")
    noise = doc["noise"]
    lines.append(
        f"  noise     sd of one observation on {noise['n_images']} images at p {', '.join(f'{p:g}' for p in noise['p'])}: "
        f"loss {min(noise['loss']):.4f}..{max(noise['loss']):.4f}, acc {min(noise['acc']):.4f}..{max(noise['acc']):.4f}, l_SC {noise['lsc']:.4f}; "
        f"share common to one batch: loss {min(noise['shared']['loss']):.2f}..{max(noise['shared']['loss']):.2f}, "
        f"acc {min(noise['shared']['acc']):.2f}..{max(noise['shared']['acc']):.2f}, l_SC {noise['shared']['lsc']:.2f}"
    )
    if card.get("note"):
        lines.append(f"  note      {str(card['note']).replace(chr(10), ' ')}")
    return "\n".join(lines)
