"""Numba search loops: the noisy observation of eq. 4, the ASNG loop and the random-search loop.
Knows nothing of methods, CLI or storage.

Arguments are flat arrays, allocated once by :mod:`nascsim.engine`:

- ``obj``: :meth:`Objective.vector` (layout ``O_*`` of :mod:`nascsim.objective`);
- ``lat``: ``LatencyModel.arrays``; ``ft``: the surrogate's feature tables (its ``arrays[:6]``);
- ``st``: :attr:`SearchTrees.arrays` of the loss terms (one term: l_SC or the loss at p = 0;
  several: the loss at each p of the objective's loss set, averaged as eq. 4b does);
- ``nz``: the noise model (``NZ_*`` layout below), standard deviations already scaled to the
  search's minibatch;
- ``rng``: the 4-word PCG64 state of :mod:`nascsim._rng_kernels` (written back by the caller).

One observation of sample i at step t (eq. 4a with the loss term observed on a minibatch):

    loss_i = m(a_i, k_i) + b_t + e_i,   f_i = ε_loss · loss_i + ε_lat · max(0, T(a_i, k_i) - T_th)

with b_t ~ N(0, sd_shared²) common to the λ samples of the step (they are judged on the same
minibatch) and e_i ~ N(0, sd_own²) per sample (noise ``shared``); e_i ~ N(0, sd_total²) and no b_t
(``independent``); or neither (``none``). Draw order per step: the λ·D uniforms of the samples,
then b_t (shared only), then e_1..e_λ.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from nascsim._asng_kernels import refresh_T, entropy_T, sample_T, update_lam2_T, update_ws
from nascsim._latency_kernels import device_only_one, latency_one
from nascsim._rng_kernels import next_double, standard_normal
from nascsim.surrogate.features import N_FEATURES, features_into
from nascsim.surrogate.predict import bins_into, leaves2_into, leaves_into, term_sum, term_sum2

NOISE_NONE, NOISE_INDEPENDENT, NOISE_SHARED = 0, 1, 2
NZ_MODE, NZ_SD_TOTAL, NZ_SD_SHARED, NZ_SD_OWN = 0, 1, 2, 3
FAST = dict(cache=True, nogil=True, error_model="numpy")


@njit(inline="always", **FAST)
def features_of(arch, split, obj, ft, st, x, gbin):
    """Feature vector and bins of a sample (the HWNAS variant, ``obj[O_LOSS_MODE] == 1``, reads
    the loss of the whole network: split after the last layer)."""
    k = np.int64(obj[6]) if obj[3] == 1.0 else split
    features_into(ft[0], ft[1], ft[2], ft[3], ft[4], ft[5], arch, k, 0.0, x)
    bins_into(st, x, gbin)


@njit(inline="always", **FAST)
def mean_of_terms(st, vals):
    """The loss term of eq. 4 from the trees' leaves: the mean of the terms' predictions."""
    n = st[1].shape[0]
    m = 0.0
    for j in range(n):
        m += term_sum(st, j, vals)
    return m / n


@njit(inline="always", **FAST)
def latency_of(arch, split, obj, lat, lat_buf):
    """T of eq. 3 (or the whole network on the head device for ``obj[O_LAT_MODE] == 1``)."""
    if obj[4] == 1.0:
        return device_only_one(arch, lat)
    latency_one(arch, split, lat, lat_buf)
    return lat_buf[0] + lat_buf[1] + lat_buf[2]


@njit(inline="always", **FAST)
def objective_value(loss, T, obj):
    """Eq. 4a from an observed loss term and T."""
    over = T - obj[0]
    if over < 0.0:
        over = 0.0
    return obj[1] * loss + obj[2] * over


@njit(inline="always", **FAST)
def noisy(m, shared, nz, rng):
    """m + b_t + e_i: ``shared`` is b_t (0 unless noise is shared); draws e_i."""
    mode = nz[0]
    if mode == 0.0:
        return m
    if mode == 1.0:
        return m + nz[1] * standard_normal(rng)
    return m + shared + nz[3] * standard_normal(rng)


@njit(**FAST)
def run_asng(
    thetaT, cumT, C, n_block, s, scalars, params, theta_min, rng, steps, lam, n_layers, fixed_split,
    obj, lat, ft, st, nz, trace_f, trace_scalars, trace_split, work, work_T,
):
    """``steps`` ASNG steps on θ in column form (see :mod:`nascsim._asng_kernels`). θ's first
    ``n_layers`` variables are ops; when θ has one more, it is the split point, else the split
    is ``fixed_split``. Returns the number of steps with an update.

    For λ = 2 two identical samples are not observed (their noise is still drawn): every variable
    agreeing, G = 0 and nothing is updated whatever they score (unless tracing). Other λ take the
    dense update (:func:`update_ws`) on a row-major copy of θ.
    Trace buffers (skipped when they have 0 rows): trace_f (steps, λ) objective of each sample,
    trace_scalars (steps, 3) = (entropy of θ, Δ, ε_θ), trace_split (steps, 23) split marginal.
    """
    D = C.shape[0]
    c = np.empty((lam, D), dtype=np.int64)
    f = np.empty(lam)
    archs = np.empty((lam, n_layers), dtype=np.uint64)
    splits = np.empty(lam, dtype=np.int64)
    X = np.empty((lam, N_FEATURES))
    GB = np.zeros((lam, N_FEATURES + 1), dtype=np.uint32)
    V = np.empty((lam, st[2].shape[0]))
    lat_buf = np.empty(3)
    theta_rm = np.zeros((D, thetaT.shape[0]))
    tracing = trace_f.shape[0] > 0
    split_searched = D > n_layers
    n_updates = 0
    refresh_T(thetaT, C, cumT, work_T[11])
    for t in range(steps):
        sample_T(cumT, C, n_block, rng, c, work_T)
        shared = 0.0
        if nz[0] == 2.0:
            shared = nz[2] * standard_normal(rng)
        if lam == 2 and not tracing:
            same = True
            for d in range(D):
                if c[0, d] != c[1, d]:
                    same = False
                    break
            if same:
                if nz[0] != 0.0:
                    standard_normal(rng)
                    standard_normal(rng)
                continue
        for i in range(lam):
            for l in range(n_layers):
                archs[i, l] = c[i, l]
            splits[i] = np.int64(c[i, n_layers]) if split_searched else fixed_split
            features_of(archs[i], splits[i], obj, ft, st, X[i], GB[i])
        if lam == 2:
            leaves2_into(st, X[0], GB[0], X[1], GB[1], V[0], V[1])
            if st[1].shape[0] == 1:
                m0, m1 = term_sum2(st, 0, V[0], V[1])
            else:
                m0 = mean_of_terms(st, V[0])
                m1 = mean_of_terms(st, V[1])
            f[0] = objective_value(noisy(m0, shared, nz, rng), latency_of(archs[0], splits[0], obj, lat, lat_buf), obj)
            f[1] = objective_value(noisy(m1, shared, nz, rng), latency_of(archs[1], splits[1], obj, lat, lat_buf), obj)
            moved = update_lam2_T(thetaT, cumT, C, n_block, s, scalars, params, theta_min, c, f[0], f[1], work_T)
        else:
            for i in range(lam):
                leaves_into(st, X[i], GB[i], V[i])
                m = mean_of_terms(st, V[i])
                f[i] = objective_value(noisy(m, shared, nz, rng), latency_of(archs[i], splits[i], obj, lat, lat_buf), obj)
            for d in range(D):
                for k in range(C[d]):
                    theta_rm[d, k] = thetaT[k, d]
            moved = update_ws(theta_rm, C, s, scalars, params, c, f, work)
            if moved:
                for d in range(D):
                    for k in range(C[d]):
                        thetaT[k, d] = theta_rm[d, k]
                refresh_T(thetaT, C, cumT, work_T[11])
        if moved:
            n_updates += 1
        if tracing:
            for i in range(lam):
                trace_f[t, i] = f[i]
            trace_scalars[t, 0] = entropy_T(thetaT, C)
            trace_scalars[t, 1] = scalars[0]
            trace_scalars[t, 2] = scalars[2]
            if split_searched:
                for k in range(C[n_layers]):
                    trace_split[t, k] = thetaT[k, n_layers]
    return n_updates


@njit(**FAST)
def run_random(C, rng, budget, n_layers, fixed_split, obj, lat, ft, st, nz, best_c):
    """Best of ``budget`` uniform samples by observed objective; writes it to best_c, returns f.

    Each sample is judged on its own minibatch: in ``shared`` mode it draws b then e."""
    D = C.shape[0]
    c = np.empty(D, dtype=np.int64)
    arch = np.empty(n_layers, dtype=np.uint64)
    x = np.empty(N_FEATURES)
    gbin = np.zeros(N_FEATURES + 1, dtype=np.uint32)
    vals = np.empty(st[2].shape[0])
    lat_buf = np.empty(3)
    best = math.inf
    for _ in range(budget):
        for d in range(D):
            k = np.int64(math.floor(next_double(rng) * C[d]))
            if k >= C[d]:
                k = C[d] - 1
            c[d] = k
        for l in range(n_layers):
            arch[l] = c[l]
        split = c[n_layers] if D > n_layers else fixed_split
        features_of(arch, split, obj, ft, st, x, gbin)
        leaves_into(st, x, gbin, vals)
        m = mean_of_terms(st, vals)
        shared = nz[2] * standard_normal(rng) if nz[0] == 2.0 else 0.0
        fi = objective_value(noisy(m, shared, nz, rng), latency_of(arch, split, obj, lat, lat_buf), obj)
        if fi < best:
            best = fi
            for d in range(D):
                best_c[d] = c[d]
    return best
