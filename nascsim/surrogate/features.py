"""Features of one (architecture a, split k, dropout rate p) for the accuracy surrogate.

The feature vector (length ``N_FEATURES``) is computed by one numba kernel, :func:`features_into`,
used both to build the training matrix and inside the search, so scikit-learn and the exported
trees see the very same numbers.

Layout (index: name):

- 0..21 ``op01``..``op22``: the op index of every layer (categorical);
- 22 ``split``: k, 0 = after the stem, k = after layer k;
- 23 ``p``: dropout rate at the split (the packet-loss stand-in of l_SC, eq. 4); 0 for the l_SC model;
- 24 ``split_op``: the op of layer k, the tensor the dropout acts on (categorical; n_ops when k = 0);
- 25 ``head_flops``, 26 ``tail_flops``, 27 ``total_flops``: FLOPs on each side of the split
  (:func:`nascsim.hw.flops.flop_tables`, bottleneck blocks cut inside as in :func:`nascsim.hw.flops.block_parts`);
- 28 ``payload``: n_h, elements of the tensor sent at the split;
- 29 ``head_depth``, 30 ``tail_depth``, 31 ``total_depth``: non-skip layers before / after the split.

Feature groups (for the ablation in :mod:`nascsim.surrogate.fit`): ``base`` (ops, split, p) is
always used; ``split_op``, ``flops`` and ``depth`` can be added.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from nascsim.hw.flops import flop_tables
from nascsim.space import N_LAYERS, Space

FEATURE_NAMES: tuple[str, ...] = tuple(f"op{i + 1:02d}" for i in range(N_LAYERS)) + (
    "split",
    "p",
    "split_op",
    "head_flops",
    "tail_flops",
    "total_flops",
    "payload",
    "head_depth",
    "tail_depth",
    "total_depth",
)
N_FEATURES = len(FEATURE_NAMES)
F_SPLIT = N_LAYERS
F_P = N_LAYERS + 1
F_SPLIT_OP = N_LAYERS + 2
CATEGORICAL = tuple(range(N_LAYERS)) + (F_SPLIT_OP,)

FEATURE_GROUPS: dict[str, tuple[int, ...]] = {
    "base": tuple(range(N_LAYERS)) + (F_SPLIT, F_P),
    "split_op": (F_SPLIT_OP,),
    "flops": (N_LAYERS + 3, N_LAYERS + 4, N_LAYERS + 5, N_LAYERS + 6),
    "depth": (N_LAYERS + 7, N_LAYERS + 8, N_LAYERS + 9),
}


def feature_columns(groups: tuple[str, ...] | list[str]) -> np.ndarray:
    """Sorted feature indices of ``base`` plus the named groups."""
    cols: set[int] = set(FEATURE_GROUPS["base"])
    for g in groups:
        if g not in FEATURE_GROUPS:
            raise ValueError(f"unknown feature group {g!r}; expected some of {', '.join(FEATURE_GROUPS)}")
        cols.update(FEATURE_GROUPS[g])
    return np.array(sorted(cols), dtype=np.int64)


def feature_tables(space: Space, classes: int) -> tuple[np.ndarray, ...]:
    """The arrays :func:`features_into` reads: (layer, split_head, split_tail, payload, consts, depth).

    layer/split_head/split_tail: FLOPs, shape (22, n_ops); payload: shape (23, n_ops);
    consts: [stem FLOPs, header + pool + fc FLOPs]; depth: 1 for every op but skip, shape (n_ops,).
    """
    ft = flop_tables(space, classes)
    consts = np.array([ft.stem, ft.header + ft.pool + ft.fc], dtype=np.float64)
    depth = np.array([0 if op.kind == "skip" else 1 for op in space.ops], dtype=np.int64)
    return (
        np.ascontiguousarray(ft.layer, dtype=np.float64),
        np.ascontiguousarray(ft.split_head, dtype=np.float64),
        np.ascontiguousarray(ft.split_tail, dtype=np.float64),
        np.ascontiguousarray(ft.payload, dtype=np.float64),
        consts,
        depth,
    )


@njit(cache=True, nogil=True)
def features_into(layer, split_head, split_tail, payload, consts, depth, arch, split, p, out):
    """Write the feature vector of (arch, split, p) into ``out`` (float64, length N_FEATURES)."""
    n_layers = arch.shape[0]
    n_ops = layer.shape[1]
    head = consts[0]
    tail = consts[1]
    head_depth = 0
    tail_depth = 0
    for l in range(n_layers):
        o = arch[l]
        out[l] = o
        if l < split - 1:
            head += layer[l, o]
            head_depth += depth[o]
        elif l == split - 1:
            head += split_head[l, o]
            tail += split_tail[l, o]
            head_depth += depth[o]
        else:
            tail += layer[l, o]
            tail_depth += depth[o]
    out[n_layers] = split
    out[n_layers + 1] = p
    if split >= 1:
        out[n_layers + 2] = arch[split - 1]
        out[n_layers + 6] = payload[split, arch[split - 1]]
    else:
        out[n_layers + 2] = n_ops
        out[n_layers + 6] = payload[0, 0]
    out[n_layers + 3] = head
    out[n_layers + 4] = tail
    out[n_layers + 5] = head + tail
    out[n_layers + 7] = head_depth
    out[n_layers + 8] = tail_depth
    out[n_layers + 9] = head_depth + tail_depth


@njit(cache=True, nogil=True)
def feature_matrix_kernel(layer, split_head, split_tail, payload, consts, depth, archs, splits, ps, out):
    """out[i] = features of (archs[i], splits[i], ps[i]); out shape (n, N_FEATURES)."""
    for i in range(archs.shape[0]):
        features_into(layer, split_head, split_tail, payload, consts, depth, archs[i], splits[i], ps[i], out[i])


def feature_matrix(tables: tuple[np.ndarray, ...], archs: np.ndarray, splits: np.ndarray, ps: np.ndarray) -> np.ndarray:
    """Feature matrix, shape (n, N_FEATURES), of n (arch, split, p) triples."""
    archs = np.ascontiguousarray(archs, dtype=np.int64)
    splits = np.ascontiguousarray(splits, dtype=np.int64)
    ps = np.ascontiguousarray(ps, dtype=np.float64)
    out = np.empty((archs.shape[0], N_FEATURES), dtype=np.float64)
    feature_matrix_kernel(*tables, archs, splits, ps, out)
    return out
