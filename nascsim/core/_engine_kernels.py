"""Numba search loops: the noisy observation of eq. 4, the ASNG loops (λ = 2 and any λ) and the
random-search loop. Knows nothing of methods, CLI or storage.

Arguments are flat arrays, allocated once by :mod:`nascsim.core.engine`:

- ``obj``: :meth:`Objective.vector` (layout ``O_*`` of :mod:`nascsim.core.objective`);
- ``lat``: ``LatencyModel.arrays``; ``ft``: the surrogate's feature tables (its ``arrays[:6]``);
- ``st``: :attr:`SearchTrees.arrays` of the loss terms (one term: l_SC or the loss at p = 0;
  several: the loss at each p of the objective's loss set, averaged as eq. 4b does);
- ``nz``: the noise model (``NZ_*`` layout below), standard deviations already scaled to the
  search's minibatch;
- ``rng``: the 4-word PCG64 state of :mod:`nascsim.core._rng_kernels` (written back by the caller);
- θ in the column form of :mod:`nascsim.core._asng_kernels` (``thetaT``, ``cumT``, ``work_T``).

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

from nascsim._jit import FAST, inline

from nascsim.core._asng_kernels import (
    adapt_Delta, entropy_T, norm2, refresh_T, sample_T, sample_cols, update_lam2_cols, update_ws,
)
from nascsim.hw._latency_kernels import device_only_one, device_only_parts, latency_one, latency_parts
from nascsim.core._rng_kernels import next_double, standard_normal
from nascsim.surrogate.features import N_FEATURES, features_into
from nascsim.surrogate.predict import (
    SLOTS, S_BASELINE, S_BINMAP, S_BIN_OFF, S_BIN_THR, S_LEAF, S_LO, S_NODE_CHILD, S_NODE_FEAT, S_NODE_MASK,
    S_NODE_THR, S_NODE_VALUE, S_REST_ABS, S_REST_HI, S_REST_LO, S_TAB_BASE, S_TAB_FEAT, S_TAB_MAP, S_TAB_POS,
    S_TERM_START, S_USED_CAT, S_USED_NUM, S_WALK_DEPTH, S_WALK_POS, S_WALK_ROOT, bins_into, bins_of,
    leaves_into, sample_features, small_ints_into, term_sum, terms_sum2, walk8_pair_of, walk_leaf_of,
)

NOISE_NONE, NOISE_INDEPENDENT, NOISE_SHARED = 0, 1, 2
NZ_MODE, NZ_SD_TOTAL, NZ_SD_SHARED, NZ_SD_OWN = 0, 1, 2, 3
INLINE = inline(FAST)  # helpers of the kernels (nascsim._jit)
BLOCK = 16  # tabulated trees between two checks of the early exit
SAFETY = 1e-9  # relative widening of the early exit's bounds (rounding of the sums is ~1e-14)


@njit(**INLINE)
def features_of(arch, split, obj, ft, st, x, gbin):
    """Feature vector and bins of a sample (the HWNAS variant, ``obj[O_LOSS_MODE] == 1``, reads
    the loss of the whole network: split after the last layer)."""
    k = np.int64(obj[6]) if obj[3] == 1.0 else split
    features_into(ft[0], ft[1], ft[2], ft[3], ft[4], ft[5], arch, k, 0.0, x)
    bins_into(st, x, gbin)


@njit(**INLINE)
def mean_of_terms(st, vals):
    """The loss term of eq. 4 from the trees' leaves: the mean of the terms' predictions."""
    n = st[S_BASELINE].shape[0]
    m = 0.0
    for j in range(n):
        m += term_sum(st, j, vals)
    return m / n


@njit(**INLINE)
def latency_of(arch, split, obj, lat, lat_buf):
    """T of eq. 3 (or the whole network on the head device for ``obj[O_LAT_MODE] == 1``)."""
    if obj[4] == 1.0:
        return device_only_one(arch, lat)
    latency_one(arch, split, lat, lat_buf)
    return lat_buf[0] + lat_buf[1] + lat_buf[2]


@njit(**INLINE)
def penalty(T, obj):
    """The latency term of eq. 4a: ε_lat · max(0, T - T_th)."""
    over = T - obj[0]
    if over < 0.0:
        over = 0.0
    return obj[2] * over


@njit(**INLINE)
def own_noise(nz, rng):
    """e_i: the sample's own part of the noise (0 without noise)."""
    if nz[0] == 0.0:
        return 0.0
    if nz[0] == 1.0:
        return nz[1] * standard_normal(rng)
    return nz[3] * standard_normal(rng)


@njit(**INLINE)
def observed(m, shared, own, pen, obj):
    """f of eq. 4a from the expected loss m, the noise parts b_t and e_i, and the penalty.
    Nondecreasing in m (ε_loss >= 0), which the early exit relies on."""
    return obj[1] * (m + shared + own) + pen


@njit(**INLINE)
def order_by_bounds(lo0, hi0, lo1, hi1, shared, own0, own1, pen0, pen1, obj):
    """-1 when f0 < f1 for every m0 in [lo0, hi0] and m1 in [lo1, hi1], +1 when f0 > f1, else 0.
    ``observed`` is monotone in m and computed with the same operations as the final f, so the
    bounds of f are exact."""
    if observed(hi0, shared, own0, pen0, obj) < observed(lo1, shared, own1, pen1, obj):
        return -1
    if observed(hi1, shared, own1, pen1, obj) < observed(lo0, shared, own0, pen0, obj):
        return 1
    return 0


@njit(**INLINE)
def order_after(p0, p1, r, rest_lo, rest_hi, rest_abs, shared, own0, own1, pen0, pen1, obj):
    """:func:`order_by_bounds` once the trees before tree ``r`` (in reading order) have summed to
    p0 and p1: the rest still adds between ``rest_lo[r]`` and ``rest_hi[r]``, and the bounds are
    widened by SAFETY for the rounding of the sums."""
    w0 = SAFETY * (1.0 + abs(p0) + rest_abs[r])
    w1 = SAFETY * (1.0 + abs(p1) + rest_abs[r])
    return order_by_bounds(p0 + rest_lo[r] - w0, p0 + rest_hi[r] + w0, p1 + rest_lo[r] - w1, p1 + rest_hi[r] + w1,
                           shared, own0, own1, pen0, pen1, obj)


@njit(**INLINE)
def trace_state(t, thetaT, C, scalars, n_layers, split_searched, trace_scalars, trace_split):
    """Row t of the trace after step t: (entropy of θ, Δ, ε_θ) and, when the split is searched,
    its marginal θ."""
    trace_scalars[t, 0] = entropy_T(thetaT, C)
    trace_scalars[t, 1] = scalars[0]
    trace_scalars[t, 2] = scalars[2]
    if split_searched:
        for k in range(C[n_layers]):
            trace_split[t, k] = thetaT[k, n_layers]


def pair_workspace(D: int, n_layers: int, n_values: int) -> tuple:
    """Buffers of :func:`run_asng2`, one row per sample of a step: (c (2, D) int64 samples,
    arch (2, n_layers) uint64 ops, x (2, N_FEATURES) float64 features, gbin (2, N_FEATURES + 1)
    uint32 bins (zeros), xi (2, N_FEATURES) uint64 (zeros), q (2, 8) float64 leaves of eight walked
    trees, vals (2, n_values) float64 leaves of every tree; ``n_values`` = ``st[S_LO].shape[0]``).
    Allocated by the caller so that the kernel compiles no allocation of its own."""
    return (np.empty((2, D), dtype=np.int64), np.empty((2, n_layers), dtype=np.uint64), np.empty((2, N_FEATURES)),
            np.zeros((2, N_FEATURES + 1), dtype=np.uint32), np.zeros((2, N_FEATURES), dtype=np.uint64),
            np.empty((2, 8)), np.empty((2, n_values)))


@njit(**FAST)
def run_asng2(
    thetaT, cumT, C, n_block, s, scalars, params, theta_min, rng, steps, n_layers, fixed_split,
    obj, lat, ft, st, nz, trace_f, trace_scalars, trace_split, work_T, pair_work,
):
    """``steps`` ASNG steps with λ = 2 (the paper's setting). θ's first ``n_layers`` variables are
    ops; when θ has one more, it is the split point, else the split is ``fixed_split``. Returns
    (steps with an update, steps decided before every tree was read).

    Only the order of f0 and f1 enters the update, so the loss term need not always be complete
    (unless tracing, or the loss term averages several p):

    - identical samples are not observed at all (their noise is still drawn): every variable
      agreeing, G = 0 and nothing moves whatever they score;
    - the latency penalties and the noise are known before any tree is read, and each tree adds
      between its smallest and largest leaf: the trees are read in blocks, and as soon as the
      bounds of f0 and f1 no longer overlap the order is known and the rest is skipped.

    Either way the update receives the order the complete f would give, so θ is the same bit for
    bit. Step 8 of an update (Δ from ‖s‖²) is done at the start of the next step, with ‖s‖² summed
    inside that step's sampling (:func:`sample_cols`), where its chain of additions overlaps the
    draws; Δ is first read by the next update, so the result is the same (when tracing, and after
    the last step, step 8 is done at once). Trace buffers (skipped when they have 0 rows): trace_f
    (steps, 2) objective of each sample, trace_scalars (steps, 3) = (entropy of θ, Δ, ε_θ), trace_split (steps, 23) split marginal.
    ``pair_work``: :func:`pair_workspace`.
    """
    D = C.shape[0]
    s_G, _, u_buf, cnt_buf, offsets, moved = work_T
    c, a, x, g, xi, q, v = pair_work
    a0, a1, x0, x1, g0, g1 = a[0], a[1], x[0], x[1], g[0], g[1]
    xi0, xi1, q0, q1, v0, v1 = xi[0], xi[1], q[0], q[1], v[0], v[1]
    layer_head, layer_tail, lat_split_head, lat_split_tail, lat_payload, lat_consts = lat
    f_layer, f_split_head, f_split_tail, f_payload, f_consts, f_depth = ft
    tab_pos, tab_base, tab_feat, tab_map = st[S_TAB_POS], st[S_TAB_BASE], st[S_TAB_FEAT], st[S_TAB_MAP]
    binmap, leaf = st[S_BINMAP], st[S_LEAF]
    rest_lo, rest_hi, rest_abs = st[S_REST_LO], st[S_REST_HI], st[S_REST_ABS]
    bin_off, bin_thr, used_cat, used_num = st[S_BIN_OFF], st[S_BIN_THR], st[S_USED_CAT], st[S_USED_NUM]
    walk_pos, walk_root, walk_depth = st[S_WALK_POS], st[S_WALK_ROOT], st[S_WALK_DEPTH]
    node_feat, node_thr, node_mask, node_child, node_value = (st[S_NODE_FEAT], st[S_NODE_THR], st[S_NODE_MASK],
                                                              st[S_NODE_CHILD], st[S_NODE_VALUE])
    term_start, baselines = st[S_TERM_START], st[S_BASELINE]
    tracing = trace_f.shape[0] > 0
    n_terms = baselines.shape[0]
    early = not tracing and n_terms == 1
    n_tab = tab_pos.shape[0]
    n_walk = walk_pos.shape[0]
    baseline = baselines[0]
    split_searched = D > n_layers
    hwnas_loss = obj[3] == 1.0
    device_latency = obj[4] == 1.0
    p0_split = np.int64(obj[6])
    mode = nz[0]
    n_updates = 0
    n_early = 0
    pending = False  # step 8 of the last update still to do, with this β
    beta = 0.0
    refresh_T(thetaT, C, cumT)
    for t in range(steps):
        ss = sample_cols(cumT, C, n_block, rng, c, u_buf, cnt_buf, s, offsets)
        if pending:
            adapt_Delta(scalars, params, beta, ss)
            pending = False
        shared = nz[2] * standard_normal(rng) if mode == 2.0 else 0.0
        if not tracing:
            same = True
            for d in range(D):
                if c[0, d] != c[1, d]:
                    same = False
                    break
            if same:
                own_noise(nz, rng)
                own_noise(nz, rng)
                continue
        for l in range(n_layers):
            a0[l] = c[0, l]
            a1[l] = c[1, l]
        k0 = c[0, n_layers] if split_searched else fixed_split
        k1 = c[1, n_layers] if split_searched else fixed_split
        own0 = own_noise(nz, rng)
        own1 = own_noise(nz, rng)
        if device_latency:
            T0 = device_only_parts(a0, layer_head, lat_consts)
            T1 = device_only_parts(a1, layer_head, lat_consts)
        else:
            h0, m0_, t0_ = latency_parts(a0, k0, layer_head, layer_tail, lat_split_head, lat_split_tail, lat_payload, lat_consts)
            h1, m1_, t1_ = latency_parts(a1, k1, layer_head, layer_tail, lat_split_head, lat_split_tail, lat_payload, lat_consts)
            T0 = h0 + m0_ + t0_
            T1 = h1 + m1_ + t1_
        pen0 = penalty(T0, obj)
        pen1 = penalty(T1, obj)
        order = 0
        if early:  # bounds before any tree, then after each block of tabulated trees
            order = order_after(baseline, baseline, 0, rest_lo, rest_hi, rest_abs, shared, own0, own1, pen0, pen1, obj)
        if order == 0:
            sample_features(f_layer, f_split_head, f_split_tail, f_payload, f_consts, f_depth, a0,
                            p0_split if hwnas_loss else k0, x0)
            sample_features(f_layer, f_split_head, f_split_tail, f_payload, f_consts, f_depth, a1,
                            p0_split if hwnas_loss else k1, x1)
            bins_of(bin_off, bin_thr, used_cat, used_num, x0, g0)
            bins_of(bin_off, bin_thr, used_cat, used_num, x1, g1)
            p0 = baseline
            p1 = baseline
            for j in range(0, n_tab, BLOCK):
                end = min(j + BLOCK, n_tab)
                for jj in range(j, end):
                    i0 = tab_base[jj]
                    i1 = tab_base[jj]
                    for k in range(SLOTS):
                        mp = tab_map[k, jj]
                        f = tab_feat[k, jj]
                        i0 += binmap[mp + g0[f]]
                        i1 += binmap[mp + g1[f]]
                    l0 = leaf[i0]
                    l1 = leaf[i1]
                    v0[tab_pos[jj]] = l0
                    v1[tab_pos[jj]] = l1
                    p0 += l0
                    p1 += l1
                if early:
                    order = order_after(p0, p1, end, rest_lo, rest_hi, rest_abs, shared, own0, own1, pen0, pen1, obj)
                    if order != 0:
                        break
            if order == 0 and n_walk > 0:  # then the walked trees, in blocks as well
                small_ints_into(x0, xi0)
                small_ints_into(x1, xi1)
                for j in range(0, n_walk, BLOCK):
                    end = min(j + BLOCK, n_walk)
                    jj = j
                    while jj + 8 <= end:
                        walk8_pair_of(node_feat, node_thr, node_mask, node_child, walk_root, walk_depth, node_value,
                                      jj, x0, xi0, x1, xi1, q0, q1)
                        for i in range(8):
                            v0[walk_pos[jj + i]] = q0[i]
                            v1[walk_pos[jj + i]] = q1[i]
                            p0 += q0[i]
                            p1 += q1[i]
                        jj += 8
                    for jj in range(jj, end):
                        l0 = walk_leaf_of(node_feat, node_thr, node_mask, node_child, walk_root, walk_depth, node_value, jj, x0, xi0)
                        l1 = walk_leaf_of(node_feat, node_thr, node_mask, node_child, walk_root, walk_depth, node_value, jj, x1, xi1)
                        v0[walk_pos[jj]] = l0
                        v1[walk_pos[jj]] = l1
                        p0 += l0
                        p1 += l1
                    if early:
                        order = order_after(p0, p1, n_tab + end, rest_lo, rest_hi, rest_abs, shared, own0, own1,
                                            pen0, pen1, obj)
                        if order != 0:
                            break
        if order != 0:
            n_early += 1
            f0, f1 = (0.0, 1.0) if order < 0 else (1.0, 0.0)
        else:
            if n_terms == 1:
                # np.int64(0), not the literal 0: one compiled terms_sum2 serves both branches
                m0, m1 = terms_sum2(term_start, baselines, np.int64(0), v0, v1)
            else:
                m0 = 0.0
                m1 = 0.0
                for term in range(n_terms):
                    s0_, s1_ = terms_sum2(term_start, baselines, term, v0, v1)
                    m0 += s0_
                    m1 += s1_
                m0 /= n_terms
                m1 /= n_terms
            f0 = observed(m0, shared, own0, pen0, obj)
            f1 = observed(m1, shared, own1, pen1, obj)
        updated, beta = update_lam2_cols(thetaT, cumT, C, s, scalars, params, theta_min, c, f0, f1, s_G, offsets, moved)
        if updated:
            n_updates += 1
            pending = True
        if tracing and pending:
            adapt_Delta(scalars, params, beta, norm2(s))
            pending = False
        if tracing:
            trace_f[t, 0] = f0
            trace_f[t, 1] = f1
            trace_state(t, thetaT, C, scalars, n_layers, split_searched, trace_scalars, trace_split)
    if pending:
        adapt_Delta(scalars, params, beta, norm2(s))
    return n_updates, n_early


@njit(**FAST)
def run_asng_any(
    thetaT, cumT, C, n_block, s, scalars, params, theta_min, rng, steps, lam, n_layers, fixed_split,
    obj, lat, ft, st, nz, trace_f, trace_scalars, trace_split, work, work_T,
):
    """:func:`run_asng2` for any λ: every sample observed in full, the dense update
    (:func:`update_ws`) on a row-major copy of θ. Returns (steps with an update, 0)."""
    D = C.shape[0]
    c = np.empty((lam, D), dtype=np.int64)
    f = np.empty(lam)
    arch = np.empty(n_layers, dtype=np.uint64)
    x = np.empty(N_FEATURES)
    gbin = np.zeros(N_FEATURES + 1, dtype=np.uint32)
    xi = np.zeros(N_FEATURES, dtype=np.uint64)
    vals = np.empty(st[S_LO].shape[0])
    lat_buf = np.empty(3)
    theta_rm = np.zeros((D, thetaT.shape[0]))
    split_searched = D > n_layers
    n_updates = 0
    refresh_T(thetaT, C, cumT)
    for t in range(steps):
        sample_T(cumT, C, n_block, rng, c, work_T)
        shared = nz[2] * standard_normal(rng) if nz[0] == 2.0 else 0.0
        for i in range(lam):
            for l in range(n_layers):
                arch[l] = c[i, l]
            split = c[i, n_layers] if split_searched else fixed_split
            features_of(arch, split, obj, ft, st, x, gbin)
            leaves_into(st, x, gbin, xi, vals)
            own = own_noise(nz, rng)
            f[i] = observed(mean_of_terms(st, vals), shared, own, penalty(latency_of(arch, split, obj, lat, lat_buf), obj), obj)
        for d in range(D):
            for k in range(C[d]):
                theta_rm[d, k] = thetaT[k, d]
        if update_ws(theta_rm, C, s, scalars, params, c, f, work):
            n_updates += 1
            for d in range(D):
                for k in range(C[d]):
                    thetaT[k, d] = theta_rm[d, k]
            refresh_T(thetaT, C, cumT)
        if trace_f.shape[0] > 0:
            for i in range(lam):
                trace_f[t, i] = f[i]
            trace_state(t, thetaT, C, scalars, n_layers, split_searched, trace_scalars, trace_split)
    return n_updates, 0


@njit(**FAST)
def run_random(C, rng, budget, n_layers, fixed_split, obj, lat, ft, st, nz, best_c):
    """Best of ``budget`` uniform samples by observed objective; writes it to best_c, returns f.

    Each sample is judged on its own minibatch: in ``shared`` mode it draws b then e."""
    D = C.shape[0]
    c = np.empty(D, dtype=np.int64)
    arch = np.empty(n_layers, dtype=np.uint64)
    x = np.empty(N_FEATURES)
    gbin = np.zeros(N_FEATURES + 1, dtype=np.uint32)
    xi = np.zeros(N_FEATURES, dtype=np.uint64)
    vals = np.empty(st[S_LO].shape[0])
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
        leaves_into(st, x, gbin, xi, vals)
        m = mean_of_terms(st, vals)
        shared = nz[2] * standard_normal(rng) if nz[0] == 2.0 else 0.0
        own = own_noise(nz, rng)
        fi = observed(m, shared, own, penalty(latency_of(arch, split, obj, lat, lat_buf), obj), obj)
        if fi < best:
            best = fi
            for d in range(D):
                best_c[d] = c[d]
    return best
