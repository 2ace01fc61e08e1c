"""Fit the accuracy surrogate: gradient-boosted trees for E[loss](a,k,p), E[acc](a,k,p) and
l_SC(a,k) = mean over P of the loss (eq. 4), plus the minibatch noise model.

Packet loss is monotone: more loss cannot, in expectation, lower the loss or raise the accuracy of
a model. The loss trees are therefore fitted non-decreasing in p and the accuracy trees
non-increasing in p (scikit-learn's ``monotonic_cst`` on the p feature; p stays a feature, so the
data decide how strong the effect is). ``FitOptions(monotone_p=False)`` turns this off (ablation).

The effect of p is small against the spread between architectures and the noise of one batch
(in the shipped data: 0.2-0.3 accuracy points from p = 0 to 0.5, against about 1.2 points of batch
noise), so a tree ensemble fitted on the raw rows never splits on p. The ``paired`` p-model
(default) therefore fits loss and accuracy as two additive tree ensembles,

    y(a, k, p) = level(a, k) + effect(a, k, p),

``level`` on the means of each (pair, batch) group over its p values (no p feature) and ``effect``
on the deviations from those means (monotone in p). The deviations compare the same network on
the same images at different p, so the minibatch effect and the spread between pairs cancel out
of them. The two ensembles are exported as one list of trees (their baselines added).
``p_model="joint"`` fits one ensemble on the raw rows (the format-1 behaviour).

Hyperparameters (tree size, leaf size and number of boosting iterations) are chosen by grouped
k-fold cross-validation over the pairs of the data given (so evaluate on pairs held out *before*
calling :func:`fit_surrogate`, as :mod:`nascsim.surrogate.report` does). Trees are fitted on the
"main" rows only (the ``design`` column; see :mod:`nascsim.surrogate.evals`). scikit-learn is imported only inside these functions.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from nascsim import __version__
from nascsim.config import DEFAULT_LOSS_SET
from nascsim.surrogate.effect import p_effect
from nascsim.surrogate.evals import Evaluations, OP_COLUMNS, load_evaluations, lsc_table
from nascsim.surrogate.export import CATEGORICAL as CATEGORICAL_FLAG
from nascsim.surrogate.export import LEAF, export_trees
from nascsim.surrogate.features import (
    CATEGORICAL,
    F_P,
    FEATURE_NAMES,
    feature_columns,
    feature_matrix,
    feature_tables,
)
from nascsim.surrogate.model import FORMAT, FORMAT_VERSION, Surrogate, _flop_check

DEFAULT_GROUPS = ("split_op", "flops", "depth")
MIN_REPEATS_PER_P = 30
# direction of the constraint on p per target: loss non-decreasing, accuracy non-increasing
MONOTONE_IN_P = {"loss": 1, "acc": -1, "lsc": 0}
P_MODELS = ("paired", "joint")

Progress = Callable[[str], None] | None


def _say(progress: Progress, message: str) -> None:
    if progress is not None:
        progress(message)


@dataclass(frozen=True)
class FitOptions:
    """Boosting and cross-validation settings.

    ``grid``: candidate (max_leaf_nodes, min_samples_leaf); the number of iterations (1..max_iter)
    is chosen per candidate from staged predictions. ``folds``: grouped CV folds over pairs.
    ``monotone_p``: constrain loss non-decreasing and accuracy non-increasing in p. ``p_model``:
    "paired" (level + effect of p, see the module docstring) or "joint" (one ensemble).
    """

    groups: tuple[str, ...] = DEFAULT_GROUPS
    grid: tuple[tuple[int, int], ...] = ((4, 40), (8, 120), (16, 120))
    learning_rate: float = 0.1
    max_iter: int = 150
    l2_regularization: float = 1.0
    folds: int = 3
    seed: int = 0
    threads: int = 1
    loss_set: tuple[float, ...] = field(default=DEFAULT_LOSS_SET)
    monotone_p: bool = True
    p_model: str = "paired"

    def __post_init__(self):
        if self.p_model not in P_MODELS:
            raise ValueError(f"unknown p-model {self.p_model!r}; expected one of {', '.join(P_MODELS)}")

    def to_dict(self) -> dict:
        return {
            "groups": list(self.groups),
            "grid": [list(g) for g in self.grid],
            "learning_rate": self.learning_rate,
            "max_iter": self.max_iter,
            "l2_regularization": self.l2_regularization,
            "folds": self.folds,
            "seed": self.seed,
            "threads": self.threads,
            "loss_set": list(self.loss_set),
            "monotone_p": self.monotone_p,
            "p_model": self.p_model,
        }


def _threads(n: int):
    """Limit scikit-learn's OpenMP threads. One thread is the default: on these small problems the
    per-node synchronisation dominates (a test-sized fit took 0.7 s on 1 thread, 11 s on 2 busy cores)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="openmp")


def _regressor(leaves: int, min_leaf: int, n_iter: int, opts: FitOptions, cat_mask: np.ndarray, monotonic: np.ndarray | None = None):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        loss="squared_error",
        learning_rate=opts.learning_rate,
        max_iter=n_iter,
        max_leaf_nodes=leaves,
        min_samples_leaf=min_leaf,
        l2_regularization=opts.l2_regularization,
        categorical_features=cat_mask,
        monotonic_cst=monotonic,
        early_stopping=False,
        random_state=opts.seed,
    )


def monotonic_cst(columns: np.ndarray, direction: int) -> np.ndarray | None:
    """scikit-learn's ``monotonic_cst`` for input columns ``columns``: ``direction`` (+1
    non-decreasing, -1 non-increasing) on the p feature, 0 elsewhere; None when unconstrained."""
    if direction == 0 or F_P not in columns:
        return None
    cst = np.zeros(len(columns), dtype=np.int64)
    cst[int(np.flatnonzero(columns == F_P)[0])] = direction
    return cst


def fit_target(X: np.ndarray, y: np.ndarray, pairs: np.ndarray, columns: np.ndarray, opts: FitOptions,
               monotone: int = 0, progress: Progress = None, label: str = ""):
    """Choose hyperparameters by grouped CV (groups = pairs), refit on all rows.

    ``monotone``: +1 / -1 constrains the prediction non-decreasing / non-increasing in p (0: free).
    ``progress`` (if given) receives one line per grid point and fold, prefixed by ``label``.
    Returns (estimator, info) with info = {"max_leaf_nodes", "min_samples_leaf", "n_iter",
    "cv_mse", "cv_mse_constant", "monotone_p"}.
    """
    with _threads(opts.threads):
        return _fit_target(X, y, pairs, columns, opts, monotone, progress, label)


def _fit_target(X, y, pairs, columns, opts: FitOptions, monotone: int, progress: Progress, label: str):
    from sklearn.model_selection import GroupKFold

    Xc = np.ascontiguousarray(X[:, columns])
    cat_mask = np.isin(columns, CATEGORICAL)
    cst = monotonic_cst(columns, monotone)
    n_groups = len(np.unique(pairs))
    folds = min(opts.folds, n_groups)
    if folds < 2:
        raise ValueError(f"only {n_groups} distinct pair(s): cross-validation needs at least 2")
    splits = list(GroupKFold(n_splits=folds).split(Xc, y, pairs))
    best = None
    const_mse = float(np.mean([np.mean((y[te] - y[tr].mean()) ** 2) for tr, te in splits]))
    for g, (leaves, min_leaf) in enumerate(opts.grid):
        curve = np.zeros(opts.max_iter)
        for f, (tr, te) in enumerate(splits):
            _say(progress, f"{label}grid point {g + 1}/{len(opts.grid)} (max_leaf_nodes {leaves}, min_samples_leaf {min_leaf}), CV fold {f + 1}/{len(splits)}: {len(tr)} rows")
            est = _regressor(leaves, min_leaf, opts.max_iter, opts, cat_mask, cst).fit(Xc[tr], y[tr])
            for i, pred in enumerate(est.staged_predict(Xc[te])):
                curve[i] += np.mean((y[te] - pred) ** 2) / len(splits)
        i_best = int(np.argmin(curve))
        if best is None or curve[i_best] < best[0]:
            best = (float(curve[i_best]), leaves, min_leaf, i_best + 1)
    mse, leaves, min_leaf, n_iter = best
    _say(progress, f"{label}refit on all {len(y)} rows: max_leaf_nodes {leaves}, min_samples_leaf {min_leaf}, {n_iter} trees (CV MSE {mse:.3g} vs {const_mse:.3g} for a constant)")
    est = _regressor(leaves, min_leaf, n_iter, opts, cat_mask, cst).fit(Xc, y)
    info = {"max_leaf_nodes": leaves, "min_samples_leaf": min_leaf, "n_iter": n_iter, "cv_mse": mse, "cv_mse_constant": const_mse,
            "monotone_p": {1: "non-decreasing", -1: "non-increasing"}.get(int(cst[columns == F_P][0]) if cst is not None else 0, "free")}
    return est, info


def merge_exports(a: dict, b: dict) -> dict:
    """One export whose prediction is the sum of two exports' predictions (trees of ``a``, then of
    ``b``; baselines added). Both must have seen the same categories of every categorical feature
    they share (true when fitted on rows of the same pairs)."""
    n, n_cat = len(a["value"]), len(a["cat_bitsets"])
    known = [list(w) for w in a["known_bitsets"]]
    f_idx_map = dict(a["f_idx_map"])
    for k, row in b["f_idx_map"].items():
        if k in f_idx_map:
            if known[f_idx_map[k]] != list(b["known_bitsets"][row]):
                raise ValueError(f"the two ensembles saw different categories of feature {k}")
        else:
            f_idx_map[k] = len(known)
            known.append(list(b["known_bitsets"][row]))
    leaf = [bool(f & LEAF) for f in b["flags"]]
    return {
        "baseline": a["baseline"] + b["baseline"],
        "tree_start": a["tree_start"] + [n + t for t in b["tree_start"]],
        "feature": a["feature"] + b["feature"],
        "threshold": a["threshold"] + b["threshold"],
        "left": a["left"] + [0 if lf else n + c for c, lf in zip(b["left"], leaf)],
        "right": a["right"] + [0 if lf else n + c for c, lf in zip(b["right"], leaf)],
        "value": a["value"] + b["value"],
        "flags": a["flags"] + b["flags"],
        "bitset": a["bitset"] + [n_cat + x if f & CATEGORICAL_FLAG else 0 for x, f in zip(b["bitset"], b["flags"])],
        "cat_bitsets": a["cat_bitsets"] + b["cat_bitsets"],
        "known_bitsets": known,
        "f_idx_map": f_idx_map,
    }


def batch_groups(rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the id of its (pair, batch, repeat) group, and whether that group holds every p
    value of ``rows``."""
    keys = ["pair", "batch", "repeat"]
    n_p = rows["p"].n_unique()
    g = rows.select(pl.struct(keys).rank("dense").alias("g"), (pl.col("p").n_unique().over(keys) == n_p).alias("complete"))
    return g["g"].to_numpy().astype(np.int64), g["complete"].to_numpy()


def fit_paired(X: np.ndarray, y: np.ndarray, pairs: np.ndarray, groups: np.ndarray, columns: np.ndarray, opts: FitOptions,
               monotone: int = 0, progress: Progress = None, label: str = "") -> tuple[dict, dict]:
    """y = level(a, k) + effect(a, k, p) (module docstring): ``level`` by :func:`fit_target` on the
    group means (features without p), ``effect`` on the deviations from them, monotone in p as
    ``monotone`` says. Rows of one group must hold the same set of p values.

    Returns (merged export, info) with info = {"p_model": "paired", "level": ..., "p_effect": ...,
    "monotone_p"}.
    """
    _, inv = np.unique(groups, return_inverse=True)
    mean = np.bincount(inv, weights=y) / np.bincount(inv)
    first = np.unique(inv, return_index=True)[1]
    level_cols = columns[columns != F_P]
    est_level, info_level = fit_target(X[first], mean, pairs[first], level_cols, opts, 0, progress,
                                       f"{label}level (means of {len(first)} pair-batches): ")
    est_effect, info_effect = fit_target(X, y - mean[inv], pairs, columns, opts, monotone, progress, f"{label}effect of p (deviations): ")
    export = merge_exports(export_trees(est_level, level_cols), export_trees(est_effect, columns))
    return export, {"p_model": "paired", "level": info_level, "p_effect": info_effect, "monotone_p": info_effect["monotone_p"]}


def noise_model(ev: Evaluations, lsc: pl.DataFrame, loss_set: tuple[float, ...]) -> tuple[dict, dict]:
    """The minibatch noise of one evaluation (the "noise" section of the surrogate document,
    format 2): its sd per p of ``loss_set`` (loss, acc) and for l_SC, the images per batch those sds
    describe, and the share of the variance common to every pair judged on the same batch.

    Rows: the crossed "noise" design when the file has one (every pair of the set on every shared
    minibatch), else the "main" rows. Estimates (:mod:`nascsim.surrogate.noise`): on the noise
    design, both components by the two-way random-effects estimate; on the main rows, the sd from
    the pairs evaluated on two batches (E[(y1 - y2)^2] = 2 sd^2; a p with fewer than 30 repeated
    pairs gets the value pooled over all p; l_SC from its own repeats, since the six p of one pair
    share a batch) and the shared share from the pairs that shared a batch. Returns (noise, info);
    info holds the estimated components per target and p (the model card shows them).
    """
    from nascsim.surrogate.noise import estimate_components

    noise_rows = getattr(ev, "noise", None)
    design = "noise" if noise_rows is not None and noise_rows.height > 0 else "main"
    rows = noise_rows if design == "noise" else ev.rows
    if design == "noise":
        lsc = lsc_table(rows, loss_set)
    if "n_images" not in rows.columns:
        raise ValueError(f"{ev.source}: column 'n_images' (images per evaluation batch) is needed by the noise model")
    n_images = int(rows["n_images"].mode().sort()[0])
    grid = np.asarray(loss_set, dtype=np.float64)
    ps_all = rows["p"].to_numpy()
    components: dict = {"loss": [], "acc": []}
    shares: dict = {"loss": [], "acc": []}

    def share_of(y, pair, batch) -> tuple[float, dict]:
        try:
            comp = estimate_components(y, pair, batch)
        except ValueError as exc:  # one batch only, or no batch shared by two pairs
            return 0.0, {"estimated": False, "reason": str(exc)}
        return comp["share"], {"estimated": True, **comp}

    for g in grid:
        at = np.abs(ps_all - g) <= 1e-9
        for name in ("loss", "acc"):
            share, comp = share_of(rows[name].to_numpy()[at], rows["pair"].to_numpy()[at], rows["batch"].to_numpy()[at])
            shares[name].append(float(share))
            components[name].append(comp)
    lsc_share, lsc_comp = share_of(lsc["lsc"].to_numpy(), lsc["pair"].to_numpy(), lsc["batch"].to_numpy())
    info = {"design": design, "components": {**components, "lsc": lsc_comp}}
    if design == "noise":
        sd = {name: [] for name in ("loss", "acc")}
        for name in ("loss", "acc"):
            for j, comp in enumerate(components[name]):
                if not comp.get("estimated"):
                    raise ValueError(f"{ev.source}: the noise design at p = {grid[j]:g} cannot be estimated: {comp.get('reason')}")
                sd[name].append(float(np.sqrt(comp["total"])))
        if not lsc_comp.get("estimated"):
            raise ValueError(f"{ev.source}: l_SC of the noise design cannot be estimated: {lsc_comp.get('reason')}")
        lsc_sd = float(np.sqrt(lsc_comp["total"]))
        info["noise_pairs"] = int(rows["pair"].n_unique())
        info["noise_batches"] = int(rows["batch"].n_unique())
    else:
        sd, lsc_sd, repeat_info = _repeat_sds(ev.source, rows, lsc, grid)
        info.update(repeat_info)
    noise = {"p": grid.tolist(), "loss": sd["loss"], "acc": sd["acc"], "lsc": lsc_sd, "n_images": n_images,
             "shared": {"loss": shares["loss"], "acc": shares["acc"], "lsc": float(lsc_share)}}
    return noise, info


def _repeat_sds(source: str, rows: pl.DataFrame, lsc: pl.DataFrame, grid: np.ndarray) -> tuple[dict, float, dict]:
    """SD of one observation from the pairs evaluated on two batches (see :func:`noise_model`)."""
    keys = ["pair", "p"]
    multi = rows.group_by(keys).agg(pl.col("batch").n_unique().alias("nb")).filter(pl.col("nb") >= 2)
    if multi.height == 0:
        raise ValueError(f"{source}: no pair was evaluated on two batches (repeat rows); the noise model needs some")
    rep = rows.join(multi.select(keys), on=keys).sort(keys + ["repeat", "batch"])
    pairs_of = rep.group_by(keys, maintain_order=True).agg(pl.col("loss").head(2), pl.col("acc").head(2))
    ps = pairs_of["p"].to_numpy()
    dl = np.array([v[0] - v[1] for v in pairs_of["loss"].to_list()])
    da = np.array([v[0] - v[1] for v in pairs_of["acc"].to_list()])
    pooled = {"loss": float(np.sqrt(np.mean(dl**2) / 2)), "acc": float(np.sqrt(np.mean(da**2) / 2))}
    sd = {"loss": [], "acc": []}
    counts = []
    for g in grid:
        m = np.abs(ps - g) <= 1e-9
        counts.append(int(m.sum()))
        for name, d in (("loss", dl), ("acc", da)):
            sd[name].append(float(np.sqrt(np.mean(d[m] ** 2) / 2)) if m.sum() >= MIN_REPEATS_PER_P else pooled[name])
    lrep = lsc.group_by("pair", maintain_order=True).agg(pl.col("lsc").head(2), pl.len().alias("n")).filter(pl.col("n") >= 2)
    if lrep.height == 0:
        raise ValueError(f"{source}: no pair has two complete l_SC observations (all of {list(grid)} on two batches)")
    dlsc = np.array([v[0] - v[1] for v in lrep["lsc"].to_list()])
    lsc_sd = float(np.sqrt(np.mean(dlsc**2) / 2))
    info = {"repeat_pairs_per_p": counts, "repeat_pairs_lsc": int(lrep.height), "pooled": pooled, "min_repeats_per_p": MIN_REPEATS_PER_P}
    return sd, lsc_sd, info


def target_data(ev: Evaluations, loss_set: tuple[float, ...], tables) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """{"loss"|"acc"|"lsc": (X full features, y, pair ids)} from validated evaluations."""
    rows = ev.rows
    X = feature_matrix(tables, ev.archs(rows), rows["split"].to_numpy(), rows["p"].to_numpy())
    lsc = lsc_table(rows, loss_set)
    if lsc.height == 0:
        raise ValueError(f"{ev.source}: no (pair, batch) holds every p of the loss set {list(loss_set)}")
    Xl = feature_matrix(tables, ev.archs(lsc), lsc["split"].to_numpy(), np.zeros(lsc.height))
    pairs = rows["pair"].to_numpy()
    return {
        "loss": (X, rows["loss"].to_numpy(), pairs),
        "acc": (X, rows["acc"].to_numpy(), pairs),
        "lsc": (Xl, lsc["lsc"].to_numpy(), lsc["pair"].to_numpy()),
    }


def check_fit_data(ev: Evaluations, opts: FitOptions) -> None:
    """Raise ``ValueError`` (one line) if :func:`fit_surrogate` cannot fit ``ev`` with ``opts``:
    fewer than 2 pairs, no l_SC observation, no repeats for the noise model, or (paired p-model)
    no group holding every p. Cheap; called before any long work starts."""
    n_pairs = ev.rows["pair"].n_unique()
    if n_pairs < 2:
        raise ValueError(f"{ev.source}: only {n_pairs} distinct pair(s) in the main rows: cross-validation needs at least 2")
    lsc = lsc_table(ev.rows, opts.loss_set)
    if lsc.height == 0:
        raise ValueError(f"{ev.source}: no (pair, batch) holds every p of the loss set {list(opts.loss_set)}")
    noise_model(ev, lsc, opts.loss_set)
    if opts.p_model == "paired" and not batch_groups(ev.rows)[1].any():
        raise ValueError(f"{ev.source}: no (pair, batch) group holds every p value of the file; the paired p-model needs some (or fit with --p-model joint)")


def measured_accuracy(ev) -> dict:
    """The supernet's accuracy as the data measured it: mean and sd over pairs of the top-1
    accuracy at p = 0, and the mean at the largest p, from the low-noise rows (whole held-out
    split) when the file has them, else from each pair's first main batch."""
    use_lowvar = ev.lowvar.height > 0
    src = ev.lowvar if use_lowvar else ev.rows.filter(pl.col("repeat") == 0)
    p_hi = float(src["p"].max()) if src.height else 0.0
    at = lambda p: src.filter((pl.col("p") - p).abs() <= 1e-9).group_by("pair").agg(pl.col("acc").mean())["acc"]  # noqa: E731
    a0, a1 = at(0.0), at(p_hi)
    return {"on": "lowvar (whole held-out split)" if use_lowvar else "main rows (one batch each)",
            "pairs": int(a0.len()), "acc_p0_mean": float(a0.mean()) if a0.len() else None,
            "acc_p0_sd": float(a0.std()) if a0.len() > 1 else None, "p_max": float(p_hi),
            "acc_pmax_mean": float(a1.mean()) if a1.len() else None}


def fit_surrogate(
    evals,
    *,
    options: FitOptions | None = None,
    meta: dict | None = None,
    id: str | None = None,
    space: str | None = None,
    dataset: str | None = None,
    classes: int | None = None,
    split_dropout_train: float | None = None,
    quality: dict | None = None,
    progress: Progress = None,
) -> Surrogate:
    """Fit a :class:`Surrogate` from evaluations (parquet path or polars frame; see
    :func:`nascsim.surrogate.evals.load_evaluations` for the overrides).

    Trees are fitted on the "main" rows (``Evaluations.rows``); loss non-decreasing and accuracy
    non-increasing in p unless ``options.monotone_p`` is False. ``quality``: held-out figures (from
    :func:`nascsim.surrogate.report.evaluate`) to put in the card. ``progress`` (if given)
    receives one line per step (target, grid point, CV fold).
    """
    opts = options or FitOptions()
    ev = evals if isinstance(evals, Evaluations) else load_evaluations(
        evals, meta=meta, id=id, space=space, dataset=dataset, classes=classes, split_dropout_train=split_dropout_train
    )
    t0 = time.perf_counter()
    tables = feature_tables(ev.space, ev.classes)
    columns = feature_columns(opts.groups)
    check_fit_data(ev, opts)
    data = target_data(ev, opts.loss_set, tables)
    lsc = lsc_table(ev.rows, opts.loss_set)
    noise, noise_info = noise_model(ev, lsc, opts.loss_set)
    groups, complete = batch_groups(ev.rows)
    trees, hyper = {}, {}
    for t, (name, (X, y, pairs)) in enumerate(data.items()):
        direction = MONOTONE_IN_P[name] if opts.monotone_p else 0
        _say(progress, f"fit {ev.id}: target {name} ({t + 1}/{len(data)}), {len(y)} rows of {len(np.unique(pairs))} pairs")
        if name != "lsc" and opts.p_model == "paired":
            trees[name], info = fit_paired(X[complete], y[complete], pairs[complete], groups[complete], columns, opts, direction, progress, f"  {name}: ")
            info["rows_without_every_p"] = int((~complete).sum())
        else:
            est, info = fit_target(X, y, pairs, columns, opts, direction, progress, f"  {name}: ")
            trees[name] = export_trees(est, columns)
        info["n_rows"] = int(len(y))
        info["n_nodes"] = len(trees[name]["value"])
        hyper[name] = info
    seconds = time.perf_counter() - t0
    rows = ev.rows
    card = {
        "id": ev.id,
        "source": os.path.basename(ev.source),
        "dataset": ev.dataset,
        "space": ev.space.name,
        "classes": ev.classes,
        "split_dropout_train": ev.split_dropout_train,
        "supernet": ev.meta,
        "sizes": {
            "rows": rows.height,
            "pairs": int(rows["pair"].n_unique()),
            "lsc_rows": lsc.height,
            "lowvar_rows": ev.lowvar.height,
            "noise_rows": ev.noise.height,
            "n_images": sorted(set(rows["n_images"].to_list())) if "n_images" in rows.columns else None,
        },
        "targets": {
            "loss": "mean cross-entropy of one evaluation, E over minibatches, as a function of (arch, split, p); non-decreasing in p" if opts.monotone_p else "mean cross-entropy of one evaluation, E over minibatches, as a function of (arch, split, p)",
            "acc": "top-1 accuracy, same; non-increasing in p" if opts.monotone_p else "top-1 accuracy, same",
            "lsc": f"l_SC (eq. 4): loss averaged over p in {list(opts.loss_set)}, as a function of (arch, split)",
        },
        "model": {"kind": "sklearn HistGradientBoostingRegressor, exported to flat arrays", "fitted_on": "design 'main' rows",
                  "p_model": opts.p_model + (" (loss, acc = level of the pair-batch means + effect of p on the deviations)" if opts.p_model == "paired" else ""),
                  "features": [FEATURE_NAMES[c] for c in columns], "options": opts.to_dict(), "chosen": hyper},
        "noise": {**noise, **noise_info, "meaning": "sd of one observation on n_images images; shared: share of its variance common to the pairs judged on the same batch"},
        "fit_seconds": round(seconds, 2),
        "nascsim_version": __version__,
    }
    card["measured"] = measured_accuracy(ev)
    if quality is not None:
        card["quality"] = quality
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "id": ev.id,
        "dataset": ev.dataset,
        "space": ev.space.name,
        "classes": ev.classes,
        "split_dropout_train": ev.split_dropout_train,
        "loss_set": list(opts.loss_set),
        "card": card,
        "feature_names": list(FEATURE_NAMES),
        "flop_check": _flop_check(tables),
        "targets": trees,
        "noise": noise,
    }
    s = Surrogate(doc, f"surrogate fitted on {ev.source}")
    card["p_effect"] = p_effect(s, seed=opts.seed)
    return s


__all__ = ["FitOptions", "check_fit_data", "fit_paired", "fit_surrogate", "fit_target", "merge_exports", "noise_model", "target_data", "OP_COLUMNS"]
