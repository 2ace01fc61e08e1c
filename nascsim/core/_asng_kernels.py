"""Numba kernels of the ASNG update (steps 1-9 of :mod:`nascsim.core.asng`), over flat arrays.

State: ``theta`` (D, K_max), ``C`` (D,) categories, ``s`` (N,), ``scalars`` = [Δ, γ, ε_θ],
``params`` = [α, δ0, Δ_max]. Numbered comments refer to the steps in :mod:`nascsim.core.asng`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from nascsim._jit import FAST, inline

from nascsim.core._rng_kernels import next_double

RHO = 0.25
EPS_NORM = 1e-9


@njit(cache=True, nogil=True)
def sample_into(theta, C, rng, c_out):
    """Step 1: fill c_out (λ, D) with samples from P_θ, one uniform draw per variable."""
    lam, D = c_out.shape
    for i in range(lam):
        for d in range(D):
            K = C[d]
            u = rng.random()
            acc = 0.0
            k = K - 1
            for j in range(K):
                acc += theta[d, j]
                if u < acc:
                    k = j
                    break
            c_out[i, d] = k


@njit(cache=True, nogil=True)
def ranking_utility_into(losses, u_out, order):
    """Step 2: ranking-based utilities with ties sharing the mean of their weights.

    ``order`` (λ,) int64 is a work buffer (stable insertion sort: λ is small).
    """
    lam = losses.shape[0]
    mu = int(math.ceil(lam * RHO))
    for i in range(lam):
        order[i] = i
    for i in range(1, lam):
        j = i
        while j > 0 and losses[order[j - 1]] > losses[order[j]]:
            tmp = order[j - 1]
            order[j - 1] = order[j]
            order[j] = tmp
            j -= 1
    start = 0
    for i in range(1, lam + 1):
        if i == lam or losses[order[i]] != losses[order[start]]:
            m = 0.0
            for j in range(start, i):
                w = 0.0
                if j < mu:
                    w += 1.0 / mu
                if j >= lam - mu:
                    w -= 1.0 / mu
                m += w
            m /= i - start
            for j in range(start, i):
                u_out[order[j]] = m
            start = i


def workspace(C: np.ndarray, lam: int) -> tuple:
    """Buffers of :func:`update_ws`: (u (λ,), order (λ,), G (D, K_max), s_G (N,))."""
    C = np.asarray(C, dtype=np.int64)
    return (np.empty(lam), np.empty(lam, dtype=np.int64), np.zeros((len(C), int(C.max()))), np.empty(int(np.sum(C - 1))))


@njit(cache=True, nogil=True)
def update(theta, C, s, scalars, params, c, losses):
    """Steps 2-9 for samples c (λ, D) and their losses (λ,). Returns False (and changes nothing)
    when all u are 0 or ‖G‖_F is 0. Allocates its buffers; the engine calls :func:`update_ws`."""
    lam, D = c.shape
    N = 0
    for d in range(D):
        N += C[d] - 1
    work = (np.empty(lam), np.empty(lam, dtype=np.int64), np.zeros((D, theta.shape[1])), np.empty(N))
    return update_ws(theta, C, s, scalars, params, c, losses, work)


@njit(cache=True, nogil=True)
def _active(c, d):
    """True when the λ samples do not all agree on variable d."""
    for i in range(1, c.shape[0]):
        if c[i, d] != c[0, d]:
            return True
    return False


@njit(cache=True, nogil=True)
def update_ws(theta, C, s, scalars, params, c, losses, work):
    """:func:`update` with preallocated buffers ``work`` (see :func:`workspace`).

    Sparse form of steps 3, 5, 6 and 9, equal to the dense equations: the utilities sum to zero,
    so G = (1/λ) Σ_i u_i onehot(c_i) is non-zero only where the samples disagree; on a variable
    where all samples agree G, s_G and the θ step are zero and its row is left as it is.
    """
    u, order, G, s_G = work
    lam, D = c.shape
    ranking_utility_into(losses, u, order)  # step 2
    any_u = False
    for i in range(lam):
        if u[i] != 0.0:
            any_u = True
    if not any_u:
        return False
    N = s_G.shape[0]
    D_valid = 0
    for d in range(D):
        if C[d] > 1:
            D_valid += 1
    delta = params[1] / scalars[0]  # step 4
    beta = delta / math.sqrt(N)
    G_norm = 0.0
    pos = 0
    for d in range(D):  # steps 3 and 5 on the variables where samples disagree
        K = C[d]
        if K < 2:
            continue
        if not _active(c, d):
            for k in range(K - 1):
                s_G[pos + k] = 0.0
            pos += K - 1
            continue
        for k in range(K):
            G[d, k] = 0.0
        for i in range(lam):
            G[d, c[i, d]] += u[i] / lam
        th_K = theta[d, K - 1]
        g_sum = 0.0
        for k in range(K - 1):
            g_sum += G[d, k]
        coef_K = g_sum / (th_K + math.sqrt(th_K))
        for k in range(K - 1):
            sq = math.sqrt(theta[d, k])
            v = G[d, k] / sq + sq * coef_K
            s_G[pos + k] = v
            G_norm += v * v
        pos += K - 1
    G_norm = math.sqrt(G_norm)
    if G_norm == 0.0:  # identical samples: no direction, nothing to adapt
        return False
    eps = delta / (G_norm + EPS_NORM)  # step 6
    scalars[2] = eps
    coef = math.sqrt(beta * (2.0 - beta)) / G_norm  # step 7
    ss = 0.0
    for j in range(N):
        s[j] = (1.0 - beta) * s[j] + coef * s_G[j]
        ss += s[j] * s[j]
    gamma = (1.0 - beta) ** 2 * scalars[1] + beta * (2.0 - beta)
    scalars[1] = gamma
    Delta = scalars[0] * math.exp(beta * (gamma - ss / params[0]))  # step 8
    scalars[0] = min(Delta, params[2])
    for d in range(D):  # step 6 (θ step) and step 9, on the variables that moved
        K = C[d]
        if K < 2 or not _active(c, d):
            continue
        for k in range(K):
            theta[d, k] += eps * G[d, k]
        theta_min = 1.0 / (D_valid * (K - 1))
        total = 0.0
        for k in range(K):
            if theta[d, k] < theta_min:
                theta[d, k] = theta_min
            total += theta[d, k]
        denom = total - theta_min * K
        total2 = 0.0
        for k in range(K):
            theta[d, k] -= (total - 1.0) * (theta[d, k] - theta_min) / denom
            total2 += theta[d, k]
        for k in range(K):
            theta[d, k] /= total2
    return True


@njit(cache=True, nogil=True)
def argmax_theta(theta, C, out):
    """Mode of P_θ: out[d] = argmax_k θ[d, k]."""
    for d in range(theta.shape[0]):
        best = 0
        for k in range(1, C[d]):
            if theta[d, k] > theta[d, best]:
                best = k
        out[d] = best


@njit(cache=True, nogil=True)
def entropy_theta(theta, C):
    """Σ_d H(θ_d) in nats."""
    h = 0.0
    for d in range(theta.shape[0]):
        for k in range(C[d]):
            t = theta[d, k]
            if t > 0.0:
                h -= t * math.log(t)
    return h


# ---------------------------------------------------------------------------------------------
# The engine's form: θ by columns, the inline generator, and λ = 2 in sparse form
# ---------------------------------------------------------------------------------------------
#
# The engine keeps θ transposed, ``thetaT[k, d]`` of shape (K_max, W) with W >= D a multiple of
# LANES (columns D..W-1 are padding), and the cumulative rows ``cumT``. The first ``n_block``
# variables share one K (the ops of the layers): step 1 compares their draws with whole vectors
# of variables, each variable's sums still taken in k order. ``work_T`` = :func:`workspace_T`.

INLINE = inline(FAST)
LANES = 8


def padded_width(D: int) -> int:
    return -(-D // LANES) * LANES


def theta_min_of(C: np.ndarray) -> np.ndarray:
    """θ_min of every variable (step 9): 1 / (D_valid (K_d - 1)), 0 where K_d = 1."""
    C = np.asarray(C, dtype=np.int64)
    D_valid = int(np.sum(C > 1))
    return np.array([1.0 / (D_valid * (K - 1)) if K > 1 else 0.0 for K in C])


def to_columns(theta: np.ndarray) -> np.ndarray:
    """θ (D, K_max) -> thetaT (K_max, W), zero padding."""
    D, K_max = theta.shape
    out = np.zeros((K_max, padded_width(D)))
    out[:, :D] = theta.T
    return out


def workspace_T(C: np.ndarray) -> tuple:
    """Buffers of :func:`update_lam2_T` and :func:`sample_T`: (s_G (N,), unused (W,), u (W,)
    float64, count (W,) int64, offsets (D,) int64: each variable's first entry in s and s_G, moved (D,)
    int64)."""
    C = np.asarray(C, dtype=np.int64)
    D, N = len(C), int(np.sum(C - 1))
    W = padded_width(D)
    offsets = np.concatenate([[0], np.cumsum(C - 1)[:-1]]).astype(np.int64)
    return (np.zeros(N), np.zeros(W), np.zeros(W), np.zeros(W, dtype=np.int64), offsets, np.zeros(D, dtype=np.int64))


@njit(**FAST)
def refresh_T(thetaT, C, cumT):
    """cumT of every variable from thetaT (summed in k order)."""
    for d in range(C.shape[0]):
        acc = 0.0
        for k in range(C[d]):
            acc += thetaT[k, d]
            cumT[k, d] = acc


@njit(**FAST)
def sample_T(cumT, C, n_block, rng_state, c_out, work_T):
    """Step 1 as :func:`sample_into` (same uniforms, same samples), from the cumulative columns
    (:func:`sample_cols` with the buffers of ``work_T``; its side result, a squared norm of the
    buffer s_G, is not needed here)."""
    sample_cols(cumT, C, n_block, rng_state, c_out, work_T[2], work_T[3], work_T[0], work_T[4])


@njit(**INLINE)
def sample_cols(cumT, C, n_block, rng_state, c_out, u, cnt, s, offsets):
    """Step 1 as :func:`sample_into` (same uniforms, same samples), from the cumulative columns;
    ``u`` (W,) float64 and ``cnt`` (W,) int64 are work buffers. Returns ‖s‖² of the evolution path
    s (N,), summed in index order as step 8 of :func:`update_ws` sums it (``offsets[d]``: variable
    d's first entry in s).

    The first k with u < cum[k] is the number of entries <= u (the rows increase strictly: every
    θ is at least θ_min), capped at K - 1 as the sequential scan's fall-through is: counted for the
    whole block of variables at once, then one variable at a time for the rest.

    Why ‖s‖² here: it is a chain of N dependent additions that must keep their order (bit for
    bit), and only the next update needs it (through Δ and δ = δ0/Δ, step 4). Summed on its own at
    the end of the update, each addition waits for the one before; interleaved, variable d's
    K_d - 1 entries beside the first sample's draw for variable d, the chain runs while the core
    computes the draws and counts (same additions, same order, same result; a search ~3.5% faster,
    ``benchmarks/ab_search.py``). :func:`update_lam2_cols` leaves step 8 to its caller for this.
    """
    lam, D = c_out.shape
    W = u.shape[0]
    Kb = C[0]
    ss = 0.0
    for d in range(D):  # the first sample's uniforms, and ‖s‖² one variable at a time
        u[d] = next_double(rng_state)
        for j in range(offsets[d], offsets[d] + C[d] - 1):
            ss += s[j] * s[j]
    for i in range(lam):
        if i > 0:
            for d in range(D):
                u[d] = next_double(rng_state)
        for d in range(W):
            cnt[d] = 0
        for k in range(Kb):
            for d in range(W):
                cnt[d] += cumT[k, d] <= u[d]
        for d in range(n_block):
            c_out[i, d] = min(cnt[d], Kb - 1)
        for d in range(n_block, D):
            K = C[d]
            n = 0
            for k in range(K):
                n += cumT[k, d] <= u[d]
            c_out[i, d] = min(n, K - 1)
    return ss


@njit(**INLINE)
def _project_column(thetaT, cumT, d, K, tmin):
    """Step 9 on one variable (column d), in the operation order of :func:`update_ws`, and its
    cumulative sums.

    Where the clamped row already sums to exactly 1 (most steps: the θ step moves two entries by
    ±ε/2), (total - 1) = 0 makes the correction and the division by the new sum (then also 1)
    exact identities, so they are skipped; likewise the division when the corrected row sums to
    exactly 1. The result is the same bit for bit.
    """
    total = 0.0
    for k in range(K):
        v = thetaT[k, d]
        if v < tmin:
            v = tmin
            thetaT[k, d] = v
        total += v
        cumT[k, d] = total
    if total == 1.0:
        return
    denom = total - tmin * K
    a = total - 1.0
    total2 = 0.0
    for k in range(K):
        v = thetaT[k, d] - a * (thetaT[k, d] - tmin) / denom
        thetaT[k, d] = v
        total2 += v
    acc = 0.0
    for k in range(K):
        v = thetaT[k, d] if total2 == 1.0 else thetaT[k, d] / total2
        thetaT[k, d] = v
        acc += v
        cumT[k, d] = acc


@njit(**FAST)
def update_lam2_T(thetaT, cumT, C, n_block, s, scalars, params, theta_min, c, f0, f1, work_T):
    """Steps 2-9: :func:`update_lam2_cols` with the buffers of ``work_T`` (:func:`workspace_T`),
    then step 8 (:func:`adapt_Delta`)."""
    updated, beta = update_lam2_cols(thetaT, cumT, C, s, scalars, params, theta_min, c, f0, f1,
                                     work_T[0], work_T[4], work_T[5])
    if updated:
        adapt_Delta(scalars, params, beta, norm2(s))
    return updated


@njit(**INLINE)
def norm2(s):
    """‖s‖², summed in index order (as step 8 of :func:`update_ws`)."""
    ss = 0.0
    for j in range(s.shape[0]):
        ss += s[j] * s[j]
    return ss


@njit(**INLINE)
def adapt_Delta(scalars, params, beta, ss):
    """Step 8: Δ <- min(Δ exp(β (γ - ‖s‖²/α)), Δ_max), with γ (scalars[1]) and β of the update
    that produced s, and ss = ‖s‖² (:func:`norm2`)."""
    Delta = scalars[0] * math.exp(beta * (scalars[1] - ss / params[0]))
    scalars[0] = min(Delta, params[2])


@njit(**INLINE)
def update_lam2_cols(thetaT, cumT, C, s, scalars, params, theta_min, c, f0, f1, s_G, offsets, moved):
    """Steps 2-7 and 9 for λ = 2 on the column form; with step 8 (:func:`adapt_Delta` on the
    returned β and ‖s‖² of the new s, at any time before the next update) equal to
    :func:`update_ws` bit for bit. Step 8 is left to the caller so that the ordered sum ‖s‖² can
    run beside other work (see :func:`sample_cols`); θ, s, γ and ε_θ do not depend on it.

    With two samples the better gets u = +1 and the worse -1 (equal losses: no update), so on a
    variable where they differ G has two entries, +1/2 at the winner's category w and -1/2 at the
    loser's l. Unless w or l is the last category K - 1, Σ_{k<K-1} G = 0, the coefficient of
    sqrt(θ) in s_G is 0 and the entries of s_G other than w and l are exact zeros: they are skipped
    in ‖G‖_F (adding +0.0 changes nothing) and in the θ step (θ + ε·0 = θ). Where w or l is K - 1,
    the other entries are sqrt(θ) · coef (0 / sqrt(θ) + x = x). ‖G‖_F is summed in the order of
    the dense equations; step 9 runs on the variables that moved (:func:`_project_column`).
    The moved variables are listed first, in order (``moved``, without a branch per variable), and
    steps 3, 5, 6 and 9 visit only them; ``offsets[d]`` is variable d's first entry in s_G.
    Returns (True, β) after an update, (False, 0.0) (changing nothing) on tied losses or identical
    samples.
    """
    if f0 == f1:  # step 2: tied losses, u = 0 for both
        return False, 0.0
    win = 1 if f0 > f1 else 0  # NaN compares as the sequential ranking does: sample 0 first
    lose = 1 - win
    D = c.shape[1]
    n_moved = 0
    for d in range(D):
        moved[n_moved] = d
        n_moved += (c[win, d] != c[lose, d]) & (C[d] > 1)
    if n_moved == 0:  # identical samples: ‖G‖_F = 0
        return False, 0.0
    N = s_G.shape[0]
    delta = params[1] / scalars[0]  # step 4
    beta = delta / math.sqrt(N)
    for j in range(N):
        s_G[j] = 0.0
    G_norm = 0.0  # steps 3 and 5, in the dense order
    for i in range(n_moved):
        d = moved[i]
        K = C[d]
        w = c[win, d]
        l = c[lose, d]
        pos = offsets[d]
        if w != K - 1 and l != K - 1:  # Σ_{k<K-1} G = 0: two entries
            lo = min(w, l)
            hi = max(w, l)
            vlo = (0.5 if lo == w else -0.5) / math.sqrt(thetaT[lo, d])
            vhi = (0.5 if hi == w else -0.5) / math.sqrt(thetaT[hi, d])
            s_G[pos + lo] = vlo
            s_G[pos + hi] = vhi
            G_norm += vlo * vlo
            G_norm += vhi * vhi
        else:
            th_K = thetaT[K - 1, d]
            coef_K = (0.5 if l == K - 1 else -0.5) / (th_K + math.sqrt(th_K))
            for k in range(K - 1):
                sq = math.sqrt(thetaT[k, d])
                v = sq * coef_K
                if k == w:
                    v = 0.5 / sq + v
                elif k == l:
                    v = -0.5 / sq + v
                s_G[pos + k] = v
                G_norm += v * v
    G_norm = math.sqrt(G_norm)
    eps = delta / (G_norm + EPS_NORM)  # step 6
    scalars[2] = eps
    coef = math.sqrt(beta * (2.0 - beta)) / G_norm  # step 7
    one_minus_beta = 1.0 - beta
    for j in range(N):
        s[j] = one_minus_beta * s[j] + coef * s_G[j]
    scalars[1] = one_minus_beta ** 2 * scalars[1] + beta * (2.0 - beta)  # γ of step 8
    step_w = eps * 0.5
    step_l = eps * -0.5
    for i in range(n_moved):  # step 6: the θ step moves θ[w] and θ[l] only
        d = moved[i]
        thetaT[c[win, d], d] += step_w
        thetaT[c[lose, d], d] += step_l
    for i in range(n_moved):  # step 9 on the variables that moved
        d = moved[i]
        _project_column(thetaT, cumT, d, C[d], theta_min[d])
    return True, beta


@njit(**FAST)
def entropy_T(thetaT, C):
    """Σ_d H(θ_d) in nats (as :func:`entropy_theta`), from the column form."""
    h = 0.0
    for d in range(C.shape[0]):
        for k in range(C[d]):
            t = thetaT[k, d]
            if t > 0.0:
                h -= t * math.log(t)
    return h
