"""Fit the accuracy surrogate: gradient-boosted trees for E[loss](a,k,p), E[acc](a,k,p) and
l_SC(a,k) = mean over P of the loss (eq. 4), plus the minibatch noise model.

Hyperparameters (tree size, leaf size and number of boosting iterations) are chosen by grouped
k-fold cross-validation over the pairs of the data given (so evaluate on pairs held out *before*
calling :func:`fit_surrogate`, as :mod:`nascsim.surrogate.report` does). scikit-learn is imported
only inside these functions.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from nascsim import __version__
from nascsim.config import DEFAULT_LOSS_SET
from nascsim.surrogate.evals import Evaluations, OP_COLUMNS, load_evaluations, lsc_table
from nascsim.surrogate.export import export_trees
from nascsim.surrogate.features import (
    CATEGORICAL,
    FEATURE_NAMES,
    feature_columns,
    feature_matrix,
    feature_tables,
)
from nascsim.surrogate.model import FORMAT, FORMAT_VERSION, Surrogate, _flop_check

DEFAULT_GROUPS = ("split_op", "flops", "depth")
MIN_REPEATS_PER_P = 30


@dataclass(frozen=True)
class FitOptions:
    """Boosting and cross-validation settings.

    ``grid``: candidate (max_leaf_nodes, min_samples_leaf); the number of iterations (1..max_iter)
    is chosen per candidate from staged predictions. ``folds``: grouped CV folds over pairs.
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
        }


def _threads(n: int):
    """Limit scikit-learn's OpenMP threads. One thread is the default: on these small problems the
    per-node synchronisation dominates (a test-sized fit took 0.7 s on 1 thread, 11 s on 2 busy cores)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="openmp")


def _regressor(leaves: int, min_leaf: int, n_iter: int, opts: FitOptions, cat_mask: np.ndarray):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        loss="squared_error",
        learning_rate=opts.learning_rate,
        max_iter=n_iter,
        max_leaf_nodes=leaves,
        min_samples_leaf=min_leaf,
        l2_regularization=opts.l2_regularization,
        categorical_features=cat_mask,
        early_stopping=False,
        random_state=opts.seed,
    )


def fit_target(X: np.ndarray, y: np.ndarray, pairs: np.ndarray, columns: np.ndarray, opts: FitOptions):
    """Choose hyperparameters by grouped CV (groups = pairs), refit on all rows.

    Returns (estimator, info) with info = {"max_leaf_nodes", "min_samples_leaf", "n_iter",
    "cv_mse", "cv_mse_constant"}.
    """
    with _threads(opts.threads):
        return _fit_target(X, y, pairs, columns, opts)


def _fit_target(X, y, pairs, columns, opts: FitOptions):
    from sklearn.model_selection import GroupKFold

    Xc = np.ascontiguousarray(X[:, columns])
    cat_mask = np.isin(columns, CATEGORICAL)
    n_groups = len(np.unique(pairs))
    folds = min(opts.folds, n_groups)
    if folds < 2:
        raise ValueError(f"only {n_groups} distinct pair(s): cross-validation needs at least 2")
    splits = list(GroupKFold(n_splits=folds).split(Xc, y, pairs))
    best = None
    const_mse = float(np.mean([np.mean((y[te] - y[tr].mean()) ** 2) for tr, te in splits]))
    for leaves, min_leaf in opts.grid:
        curve = np.zeros(opts.max_iter)
        for tr, te in splits:
            est = _regressor(leaves, min_leaf, opts.max_iter, opts, cat_mask).fit(Xc[tr], y[tr])
            for i, pred in enumerate(est.staged_predict(Xc[te])):
                curve[i] += np.mean((y[te] - pred) ** 2) / len(splits)
        i_best = int(np.argmin(curve))
        if best is None or curve[i_best] < best[0]:
            best = (float(curve[i_best]), leaves, min_leaf, i_best + 1)
    mse, leaves, min_leaf, n_iter = best
    est = _regressor(leaves, min_leaf, n_iter, opts, cat_mask).fit(Xc, y)
    info = {"max_leaf_nodes": leaves, "min_samples_leaf": min_leaf, "n_iter": n_iter, "cv_mse": mse, "cv_mse_constant": const_mse}
    return est, info


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
) -> Surrogate:
    """Fit a :class:`Surrogate` from evaluations (parquet path or polars frame; see
    :func:`nascsim.surrogate.evals.load_evaluations` for the overrides).

    ``quality``: held-out figures (from :func:`nascsim.surrogate.report.evaluate`) to put in the card.
    """
    opts = options or FitOptions()
    ev = evals if isinstance(evals, Evaluations) else load_evaluations(
        evals, meta=meta, id=id, space=space, dataset=dataset, classes=classes, split_dropout_train=split_dropout_train
    )
    t0 = time.perf_counter()
    tables = feature_tables(ev.space, ev.classes)
    columns = feature_columns(opts.groups)
    data = target_data(ev, opts.loss_set, tables)
    lsc = lsc_table(ev.rows, opts.loss_set)
    noise, noise_info = noise_model(ev, lsc, opts.loss_set)
    trees, hyper = {}, {}
    for name, (X, y, pairs) in data.items():
        est, info = fit_target(X, y, pairs, columns, opts)
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
            "n_images": sorted(set(rows["n_images"].to_list())) if "n_images" in rows.columns else None,
        },
        "targets": {
            "loss": "mean cross-entropy of one evaluation, E over minibatches, as a function of (arch, split, p)",
            "acc": "top-1 accuracy, same",
            "lsc": f"l_SC (eq. 4): loss averaged over p in {list(opts.loss_set)}, as a function of (arch, split)",
        },
        "model": {"kind": "sklearn HistGradientBoostingRegressor, exported to flat arrays", "features": [FEATURE_NAMES[c] for c in columns], "options": opts.to_dict(), "chosen": hyper},
        "noise": {**noise, **noise_info, "meaning": "sd of one observation on n_images images; shared: share of its variance common to the pairs judged on the same batch"},
        "fit_seconds": round(seconds, 2),
        "nascsim_version": __version__,
    }
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
    return Surrogate(doc)


__all__ = ["FitOptions", "fit_surrogate", "fit_target", "noise_model", "target_data", "OP_COLUMNS"]
