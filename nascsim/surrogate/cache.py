"""A small per-search cache of surrogate predictions, keyed by (arch, split, p).

Late in a search θ concentrates, so the same (a, k) is sampled again and again; a cache hit costs
one hash and a 24-int compare instead of walking every tree. The cache is flat arrays, direct
mapped (one slot per hash value, a new key overwrites the slot), so it lives inside numba code and
always admits the keys of the current θ; predictions are pure, so a search's results do not depend
on what was cached.

Example::

    cache = new_cache(4096)
    v = predict_cached(s.arrays, TARGET_LSC, arch, split, 0.0, *cache)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from nascsim.surrogate.predict import TARGET_LSC, predict_one


def new_cache(capacity: int = 4096, n_layers: int = 22) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Empty cache: (keys int64 (capacity, n_layers + 2), ps float64 (capacity,), values float64
    (capacity,), state int64 [n_used, hits, misses, capacity]). ``keys[:, 0]`` is the target + 1
    (0 = empty slot), then split and the ops."""
    if capacity < 1:
        raise ValueError(f"cache capacity {capacity} must be positive")
    keys = np.zeros((capacity, n_layers + 2), dtype=np.int64)
    ps = np.zeros(capacity, dtype=np.float64)
    values = np.zeros(capacity, dtype=np.float64)
    state = np.array([0, 0, 0, capacity], dtype=np.int64)
    return keys, ps, values, state


@njit(cache=True, nogil=True)
def _slot(target, arch, split, p, capacity):
    h = np.uint64(1469598103934665603)
    prime = np.uint64(1099511628211)
    h = (h ^ np.uint64(target + 1)) * prime
    h = (h ^ np.uint64(split)) * prime
    for l in range(arch.shape[0]):
        h = (h ^ np.uint64(arch[l])) * prime
    h = (h ^ np.uint64(int(p * 1e6))) * prime
    return np.int64(h % np.uint64(capacity))


@njit(cache=True, nogil=True)
def _matches(keys, ps, i, target, arch, split, p):
    if keys[i, 0] != target + 1 or keys[i, 1] != split or ps[i] != p:
        return False
    for l in range(arch.shape[0]):
        if keys[i, l + 2] != arch[l]:
            return False
    return True


@njit(cache=True, nogil=True)
def predict_cached(arrays, target, arch, split, p, keys, ps, values, state):
    """predict_one(arrays, target, arch, split, p) through the cache (p is ignored for l_SC).

    state: [slots in use, hits, misses, capacity].
    """
    if target == TARGET_LSC:
        p = 0.0
    i = _slot(target, arch, split, p, state[3])
    if _matches(keys, ps, i, target, arch, split, p):
        state[1] += 1
        return values[i]
    state[2] += 1
    v = predict_one(arrays, target, arch, split, p)
    if keys[i, 0] == 0:
        state[0] += 1
    keys[i, 0] = target + 1
    keys[i, 1] = split
    for l in range(arch.shape[0]):
        keys[i, l + 2] = arch[l]
    ps[i] = p
    values[i] = v
    return v


@njit(cache=True, nogil=True)
def predict_cached_batch(arrays, target, archs, splits, ps_in, keys, ps, values, state, out):
    """out[i] = predict_cached(...) of row i."""
    for i in range(archs.shape[0]):
        out[i] = predict_cached(arrays, target, archs[i], splits[i], ps_in[i], keys, ps, values, state)
