"""Fitted ``HistGradientBoostingRegressor`` trees -> flat, JSON-able arrays, and those -> numba arrays.

One target's export is a dict of plain lists (no scikit-learn object survives): every tree's nodes
concatenated, child indices made relative to the target's first node, feature indices mapped to
the full feature vector of :mod:`nascsim.surrogate.features`, plus the categorical bitsets. The
layout of the assembled numba tuple is documented in :mod:`nascsim.surrogate.predict`.
"""

from __future__ import annotations

import numpy as np

from nascsim.surrogate.features import N_FEATURES
from nascsim.surrogate.predict import TARGETS

LEAF, CATEGORICAL, MISSING_LEFT = 1, 2, 4


def _bitset(values) -> list[int]:
    words = [0] * 8
    for v in values:
        v = int(v)
        words[v // 32] |= 1 << (v % 32)
    return words


def _bits(words) -> list[int]:
    return [32 * w + b for w, word in enumerate(words) for b in range(32) if (int(word) >> b) & 1]


def export_trees(est, columns: np.ndarray) -> dict:
    """Flat lists of a fitted single-output ``HistGradientBoostingRegressor``.

    ``columns[j]`` is the full-feature index of the estimator's input column j. scikit-learn
    (>= 1.4) ordinal-encodes categorical columns and moves them first before growing trees; the
    export undoes both, so nodes refer to full-feature indices and bitsets to raw category values
    (an unseen category is missing, as there).
    """
    columns = np.asarray(columns, dtype=np.int64)
    if getattr(est, "n_trees_per_iteration_", 1) != 1:
        raise ValueError("only single-output regressors can be exported")
    is_cat = np.zeros(len(columns), bool) if est.is_categorical_ is None else np.asarray(est.is_categorical_, bool)
    if getattr(est, "_preprocessor", None) is not None:
        order = np.r_[np.flatnonzero(is_cat), np.flatnonzero(~is_cat)]
        cats = est._preprocessor.named_transformers_["encoder"].categories_
    elif is_cat.any():
        raise ValueError("this scikit-learn does not ordinal-encode categorical features; nascsim needs scikit-learn >= 1.4")
    else:
        order, cats = np.arange(len(columns)), []
    # internal column i -> full feature index; internal categorical column i -> raw categories
    internal_to_full = columns[order]
    raw_cats = {}
    for i, c in enumerate(cats):
        c = np.asarray(c, dtype=np.float64)
        if np.any((c < 0) | (c > 255) | (c != np.round(c))):
            raise ValueError(f"categorical feature {int(internal_to_full[i])} has categories outside the integers 0..255")
        raw_cats[i] = c.astype(np.int64)
    feature, threshold, left, right, value, flags, bitset = [], [], [], [], [], [], []
    tree_start: list[int] = []
    cat_bitsets: list[list[int]] = []
    offset = 0
    for (pred,) in est._predictors:
        nodes = pred.nodes
        tree_start.append(offset)
        base_bitset = len(cat_bitsets)
        for words in np.asarray(pred.raw_left_cat_bitsets, dtype=np.uint32).reshape(-1, 8):
            cat_bitsets.append(words.tolist())
        for node in nodes:
            is_leaf = bool(node["is_leaf"])
            is_c = bool(node["is_categorical"]) and not is_leaf
            fi = int(node["feature_idx"])
            feature.append(0 if is_leaf else int(internal_to_full[fi]))
            threshold.append(float(node["num_threshold"]) if (not is_leaf and not is_c) else 0.0)
            left.append(0 if is_leaf else offset + int(node["left"]))
            right.append(0 if is_leaf else offset + int(node["right"]))
            value.append(float(node["value"]))
            flags.append((LEAF if is_leaf else 0) | (CATEGORICAL if is_c else 0) | (MISSING_LEFT if node["missing_go_to_left"] else 0))
            if is_c:
                b = base_bitset + int(node["bitset_idx"])
                codes = [k for k in _bits(cat_bitsets[b]) if k < len(raw_cats[fi])]
                cat_bitsets[b] = _bitset(raw_cats[fi][codes])
                bitset.append(b)
            else:
                bitset.append(0)
        offset += len(nodes)
    known = [_bitset(raw_cats[i]) for i in range(len(raw_cats))]
    fmap = {int(internal_to_full[i]): i for i in range(len(raw_cats))}
    return {
        "baseline": float(np.asarray(est._baseline_prediction).ravel()[0]),
        "tree_start": tree_start,
        "feature": feature,
        "threshold": threshold,
        "left": left,
        "right": right,
        "value": value,
        "flags": flags,
        "bitset": bitset,
        "cat_bitsets": cat_bitsets,
        "known_bitsets": known,
        "f_idx_map": {str(k): v for k, v in fmap.items()},
    }


def assemble_arrays(feature_tables: tuple[np.ndarray, ...], trees: dict[str, dict], noise: dict) -> tuple:
    """The numba tuple of :mod:`nascsim.surrogate.predict` from per-target exports and the noise model.

    ``trees``: {"loss"|"acc"|"lsc": export_trees(...)}; ``noise``: {"p": grid, "loss": sds,
    "acc": sds, "lsc": sd}.
    """
    feat, thr, left, right, val, flags, bits = [], [], [], [], [], [], []
    cat: list[list[int]] = []
    known: list[list[int]] = []
    f_idx_map = np.full((3, N_FEATURES), -1, dtype=np.int64)
    roots: list[int] = []
    target_trees = np.zeros((3, 2), dtype=np.int64)
    baseline = np.zeros(3, dtype=np.float64)
    for name, t in TARGETS.items():
        e = trees[name]
        node_off, cat_off, known_off = len(feat), len(cat), len(known)
        target_trees[t, 0] = len(roots)
        roots.extend(node_off + int(s) for s in e["tree_start"])
        target_trees[t, 1] = len(roots)
        fl = [int(x) for x in e["flags"]]
        feat.extend(int(x) for x in e["feature"])
        thr.extend(float(x) for x in e["threshold"])
        left.extend(node_off + int(x) for x in e["left"])
        right.extend(node_off + int(x) for x in e["right"])
        val.extend(float(x) for x in e["value"])
        flags.extend(fl)
        bits.extend(cat_off + int(b) if f & CATEGORICAL else 0 for b, f in zip(e["bitset"], fl))
        cat.extend(e["cat_bitsets"])
        known.extend(e["known_bitsets"])
        for k, v in e["f_idx_map"].items():
            f_idx_map[t, int(k)] = known_off + int(v)
        baseline[t] = float(e["baseline"])
    cat_arr = np.asarray(cat, dtype=np.uint32).reshape(-1, 8)
    known_arr = np.asarray(known, dtype=np.uint32).reshape(-1, 8)
    left_mask = categorical_left_masks(feat, flags, bits, cat_arr, known_arr, f_idx_map, target_trees, roots)
    grid = np.asarray(noise["p"], dtype=np.float64)
    sd = np.empty((3, grid.shape[0]), dtype=np.float64)
    sd[TARGETS["loss"]] = noise["loss"]
    sd[TARGETS["acc"]] = noise["acc"]
    sd[TARGETS["lsc"]] = float(noise["lsc"])
    return tuple(feature_tables) + (
        np.asarray(feat, dtype=np.int64),
        np.asarray(thr, dtype=np.float64),
        np.asarray(left, dtype=np.int64),
        np.asarray(right, dtype=np.int64),
        np.asarray(val, dtype=np.float64),
        np.asarray(flags, dtype=np.int64),
        np.asarray(bits, dtype=np.int64),
        cat_arr,
        known_arr,
        f_idx_map,
        np.asarray(roots, dtype=np.int64),
        target_trees,
        baseline,
        grid,
        sd,
        left_mask,
    )


def _bit(bitsets: np.ndarray, row: int, value: int) -> bool:
    return bool((int(bitsets[row, value // 32]) >> (value % 32)) & 1)


def categorical_left_masks(feat, flags, bits, cat, known, f_idx_map, target_trees, roots) -> np.ndarray:
    """Per node, a 64-bit mask of the categories 0..63 that go left at a categorical split.

    It folds scikit-learn's three-way rule (in the split's bitset: left; a known category: right;
    unseen: the missing-value side) into one bit per category, so the tree walk needs one shift;
    categories >= 64 (none in these spaces) take the exact bitset path.
    """
    n = len(feat)
    mask = np.zeros(n, dtype=np.uint64)
    node_target = np.zeros(n, dtype=np.int64)
    for t in range(target_trees.shape[0]):
        first, end = target_trees[t]
        if end > first:
            lo = roots[first]
            hi = roots[end] if end < len(roots) else n
            node_target[lo:hi] = t
    for i in range(n):
        if not flags[i] & CATEGORICAL:
            continue
        known_row = f_idx_map[node_target[i], feat[i]]
        m = 0
        for v in range(64):
            if _bit(cat, bits[i], v):
                go_left = True
            elif known_row >= 0 and _bit(known, known_row, v):
                go_left = False
            else:
                go_left = bool(flags[i] & MISSING_LEFT)
            if go_left:
                m |= 1 << v
        mask[i] = np.uint64(m)
    return mask
