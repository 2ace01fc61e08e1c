"""Numba kernels of the ASNG update (steps 1-9 of :mod:`nascsim.asng`), over flat arrays.

State: ``theta`` (D, K_max), ``C`` (D,) categories, ``s`` (N,), ``scalars`` = [Δ, γ, ε_θ],
``params`` = [α, δ0, Δ_max]. Numbered comments refer to the steps in :mod:`nascsim.asng`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

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
