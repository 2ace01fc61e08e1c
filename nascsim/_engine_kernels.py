"""Numba search loops: observation of eq. 4 with surrogate noise, a per-search prediction cache,
the ASNG loop and the random-search loop. Knows nothing of methods, CLI or storage.

Arrays: ``lat`` = LatencyModel.arrays, ``sur`` = Surrogate.arrays, ``obj`` = Objective.vector(...)
(layout ``O_*`` of :mod:`nascsim.objective`), ``loss_set`` (|P|,).
Cache: ``cache_keys`` (cap, 23) int16 (-1 = empty slot), ``cache_vals`` (cap, 2) = (mean, sd);
``stats`` = [hits, misses].
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from nascsim._asng_kernels import entropy_theta, sample_into, update_ws
from nascsim._latency_kernels import device_only_one, latency_one
from nascsim.surrogate.predict import TARGET_LOSS, TARGET_LSC, noise_sd_one, predict_one

PROBES = 4


@njit(cache=True, nogil=True)
def loss_mean_sd(arch, split, obj, sur, loss_set):
    """Expected loss term and the sd of one minibatch observation of it (eq. 4b or p = 0)."""
    if obj[3] == 1.0:  # LOSS_P0: split after the last layer, no dropout
        k = np.int64(obj[6])
        return predict_one(sur, TARGET_LOSS, arch, k, 0.0), noise_sd_one(sur, TARGET_LOSS, arch, k, 0.0)
    if obj[5] == 1.0:  # the surrogate's own loss set: one l_SC prediction
        return predict_one(sur, TARGET_LSC, arch, split, 0.0), noise_sd_one(sur, TARGET_LSC, arch, split, 0.0)
    m = 0.0
    sd = 0.0
    for j in range(loss_set.shape[0]):
        m += predict_one(sur, TARGET_LOSS, arch, split, loss_set[j])
        sd += noise_sd_one(sur, TARGET_LOSS, arch, split, loss_set[j])
    n = loss_set.shape[0]
    return m / n, sd / n


@njit(cache=True, nogil=True)
def _slot(arch, split, cap):
    h = np.uint64(1469598103934665603)
    for l in range(arch.shape[0]):
        h = (h ^ np.uint64(arch[l] + 1)) * np.uint64(1099511628211)
    h = (h ^ np.uint64(split + 101)) * np.uint64(1099511628211)
    return np.int64(h % np.uint64(cap))


@njit(cache=True, nogil=True)
def cached_loss(arch, split, obj, sur, loss_set, cache_keys, cache_vals, stats):
    """loss_mean_sd through a small cache keyed by (arch, split).

    Each key has ``PROBES`` candidate slots from its hash; a miss fills an empty candidate or, when
    all are taken, overwrites the first one, so the cache keeps serving the (arch, split) pairs a
    concentrating θ samples again late in a search.
    """
    cap = cache_keys.shape[0]
    if cap == 0:
        stats[1] += 1
        return loss_mean_sd(arch, split, obj, sur, loss_set)
    n = arch.shape[0]
    home = _slot(arch, split, cap)
    target = home
    found_empty = False
    for probe in range(PROBES):
        i = (home + probe) % cap
        if cache_keys[i, 0] == -1:
            if not found_empty:
                target = i
                found_empty = True
            continue
        same = cache_keys[i, n] == split
        if same:
            for l in range(n):
                if cache_keys[i, l] != arch[l]:
                    same = False
                    break
        if same:
            stats[0] += 1
            return cache_vals[i, 0], cache_vals[i, 1]
    m, sd = loss_mean_sd(arch, split, obj, sur, loss_set)
    for l in range(n):
        cache_keys[target, l] = arch[l]
    cache_keys[target, n] = split
    cache_vals[target, 0] = m
    cache_vals[target, 1] = sd
    stats[1] += 1
    return m, sd


@njit(cache=True, nogil=True)
def observe(arch, split, obj, lat, sur, loss_set, rng, cache_keys, cache_vals, stats, lat_buf):
    """One noisy observation of eq. 4a: (f, observed loss term, T)."""
    m, sd = cached_loss(arch, split, obj, sur, loss_set, cache_keys, cache_vals, stats)
    loss = m + sd * rng.standard_normal()
    if obj[4] == 1.0:  # LAT_DEVICE
        T = device_only_one(arch, lat)
    else:
        latency_one(arch, split, lat, lat_buf)
        T = lat_buf[0] + lat_buf[1] + lat_buf[2]
    over = T - obj[0]
    if over < 0.0:
        over = 0.0
    return obj[1] * loss + obj[2] * over, loss, T


@njit(cache=True, nogil=True)
def run_asng(
    theta, C, s, scalars, params, rng, steps, lam, n_layers, fixed_split,
    obj, lat, sur, loss_set, cache_keys, cache_vals, stats,
    trace_f, trace_scalars, trace_split, work,
):
    """``steps`` ASNG steps. θ's first ``n_layers`` variables are ops; when θ has one more, it is
    the split point, else the split is ``fixed_split``. Returns the number of steps with an update.

    Trace buffers (skipped when they have 0 rows): trace_f (steps, λ) objective of each sample,
    trace_scalars (steps, 3) = (entropy of θ, Δ, ε_θ), trace_split (steps, 23) split marginal.
    """
    D = theta.shape[0]
    c = np.empty((lam, D), dtype=np.int64)
    f = np.empty(lam)
    arch = np.empty(n_layers, dtype=np.int64)
    lat_buf = np.empty(3)
    n_updates = 0
    split_searched = D > n_layers
    for t in range(steps):
        sample_into(theta, C, rng, c)
        for i in range(lam):
            for l in range(n_layers):
                arch[l] = c[i, l]
            split = c[i, n_layers] if split_searched else fixed_split
            fi, _loss, _T = observe(arch, split, obj, lat, sur, loss_set, rng, cache_keys, cache_vals, stats, lat_buf)
            f[i] = fi
        if update_ws(theta, C, s, scalars, params, c, f, work):
            n_updates += 1
        if trace_f.shape[0] > 0:
            for i in range(lam):
                trace_f[t, i] = f[i]
            trace_scalars[t, 0] = entropy_theta(theta, C)
            trace_scalars[t, 1] = scalars[0]
            trace_scalars[t, 2] = scalars[2]
            if split_searched:
                for k in range(C[n_layers]):
                    trace_split[t, k] = theta[n_layers, k]
    return n_updates


@njit(cache=True, nogil=True)
def run_random(C, rng, budget, n_layers, fixed_split, obj, lat, sur, loss_set, cache_keys, cache_vals, stats, best_c):
    """Best of ``budget`` uniform samples by observed objective; writes it to best_c, returns f."""
    D = C.shape[0]
    c = np.empty(D, dtype=np.int64)
    arch = np.empty(n_layers, dtype=np.int64)
    lat_buf = np.empty(3)
    best = math.inf
    for _ in range(budget):
        for d in range(D):
            k = np.int64(math.floor(rng.random() * C[d]))
            if k >= C[d]:
                k = C[d] - 1
            c[d] = k
        for l in range(n_layers):
            arch[l] = c[l]
        split = c[n_layers] if D > n_layers else fixed_split
        fi, _loss, _T = observe(arch, split, obj, lat, sur, loss_set, rng, cache_keys, cache_vals, stats, lat_buf)
        if fi < best:
            best = fi
            for d in range(D):
                best_c[d] = c[d]
    return best
