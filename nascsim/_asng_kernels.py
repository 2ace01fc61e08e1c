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
def ranking_utility_into(losses, u_out):
    """Step 2: ranking-based utilities with ties sharing the mean of their weights."""
    lam = losses.shape[0]
    mu = int(math.ceil(lam * RHO))
    order = np.argsort(losses, kind="mergesort")
    w_rank = np.zeros(lam)
    for i in range(mu):
        w_rank[i] = 1.0 / mu
    for i in range(lam - mu, lam):
        w_rank[i] -= 1.0 / mu
    start = 0
    for i in range(1, lam + 1):
        if i == lam or losses[order[i]] != losses[order[start]]:
            m = 0.0
            for j in range(start, i):
                m += w_rank[j]
            m /= i - start
            for j in range(start, i):
                u_out[order[j]] = m
            start = i


@njit(cache=True, nogil=True)
def update(theta, C, s, scalars, params, c, losses):
    """Steps 2-9 for samples c (λ, D) and their losses (λ,). Returns False (and changes nothing)
    when all u are 0 or ‖G‖_F is 0."""
    lam, D = c.shape
    K_max = theta.shape[1]
    u = np.empty(lam)
    ranking_utility_into(losses, u)  # step 2
    any_u = False
    for i in range(lam):
        if u[i] != 0.0:
            any_u = True
    if not any_u:
        return False
    N = 0
    D_valid = 0
    for d in range(D):
        N += C[d] - 1
        if C[d] > 1:
            D_valid += 1
    G = np.zeros((D, K_max))  # step 3
    for i in range(lam):
        for d in range(D):
            for k in range(C[d]):
                one_hot = 1.0 if c[i, d] == k else 0.0
                G[d, k] += u[i] * (one_hot - theta[d, k])
    for d in range(D):
        for k in range(C[d]):
            G[d, k] /= lam
    delta = params[1] / scalars[0]  # step 4
    beta = delta / math.sqrt(N)
    s_G = np.empty(N)  # step 5
    pos = 0
    for d in range(D):
        K = C[d]
        if K < 2:
            continue
        th_K = theta[d, K - 1]
        g_sum = 0.0
        for k in range(K - 1):
            g_sum += G[d, k]
        for k in range(K - 1):
            th = theta[d, k]
            s_G[pos] = G[d, k] / math.sqrt(th) + math.sqrt(th) * g_sum / (th_K + math.sqrt(th_K))
            pos += 1
    G_norm = 0.0
    for j in range(N):
        G_norm += s_G[j] * s_G[j]
    G_norm = math.sqrt(G_norm)
    if G_norm == 0.0:  # identical samples: no direction, nothing to adapt
        return False
    eps = delta / (G_norm + EPS_NORM)  # step 6
    scalars[2] = eps
    for d in range(D):
        for k in range(C[d]):
            theta[d, k] += eps * G[d, k]
    coef = math.sqrt(beta * (2.0 - beta)) / G_norm  # step 7
    ss = 0.0
    for j in range(N):
        s[j] = (1.0 - beta) * s[j] + coef * s_G[j]
        ss += s[j] * s[j]
    gamma = (1.0 - beta) ** 2 * scalars[1] + beta * (2.0 - beta)
    scalars[1] = gamma
    Delta = scalars[0] * math.exp(beta * (gamma - ss / params[0]))  # step 8
    scalars[0] = min(Delta, params[2])
    for d in range(D):  # step 9
        K = C[d]
        if K < 2:
            continue
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
