"""ASNG on a product of categorical distributions (Akimoto et al., ICML 2019; NASC Algorithm 1).

D categorical variables, variable d with K_d categories; θ[d, :K_d] are their probabilities
(θ is stored as a (D, K_max) array, zero beyond K_d). One step:

1. draw λ samples c_1..c_λ ~ P_θ                                             (sampling)
2. rank their losses: with ρ = 1/4 and μ = ceil(λρ), the μ best get u = +1/μ and the μ worst
   u = -1/μ; tied losses share the mean of their utilities. For λ = 2: the better +1, the worse
   -1, equal losses 0 -- and when every u is 0 nothing is updated.              (ranking)
   Likewise when ‖G‖_F = 0 (λ identical samples): no direction, no update.
3. G = (1/λ) Σ_i u_i (c_i - θ)          natural gradient estimate (one-hot c_i)
4. δ = δ0 / Δ,  β = δ / sqrt(N),  N = Σ_d (K_d - 1)
5. ‖G‖_F: Fisher norm, via the vector s_G with entries, for k < K_d,
       G[d,k] / sqrt(θ[d,k]) + sqrt(θ[d,k]) Σ_{k'<K_d} G[d,k'] / (θ[d,K_d] + sqrt(θ[d,K_d]))
6. ε_θ = δ / (‖G‖_F + 1e-9);  θ ← θ + ε_θ G
7. s ← (1-β) s + sqrt(β(2-β)) s_G / ‖G‖_F;  γ ← (1-β)² γ + β(2-β)
8. Δ ← min(Δ · exp(β (γ - ‖s‖² / α)), Δ_max)
9. projection onto [θ_min, 1] with θ_min = 1 / (D_valid (K_d - 1)), D_valid = #{d: K_d > 1}:
       θ ← max(θ, θ_min);  θ ← θ - (Σθ - 1)(θ - θ_min) / (Σθ - K_d θ_min);  θ ← θ / Σθ

Two implementations: :class:`ASNG`, plain numpy written from the equations above (the reference,
kept for tests), and the numba kernels :func:`sample_into` / :func:`update` used by the engine.
Both consume a ``numpy.random.Generator`` in the same order, so given the same generator they
produce the same samples; given the same samples and losses, the same θ, s, γ, Δ.
"""

from __future__ import annotations

import math

import numpy as np

RHO = 0.25
EPS_NORM = 1e-9

# layout of the scalar state vector used by the numba kernels
S_DELTA, S_GAMMA, S_EPS = 0, 1, 2  # Delta, gamma, last eps_theta
P_ALPHA, P_DELTA0, P_DELTA_MAX = 0, 1, 2  # alpha, delta0, Delta_max


def ranking_utility(losses: np.ndarray) -> np.ndarray:
    """Utilities u_i of step 2 (reference): top μ get +1/μ, bottom μ get -1/μ, ties share."""
    losses = np.asarray(losses, dtype=np.float64)
    lam = losses.shape[0]
    mu = int(math.ceil(lam * RHO))
    order = np.argsort(losses, kind="mergesort")
    w_rank = np.zeros(lam)
    w_rank[:mu] = 1.0 / mu
    w_rank[lam - mu :] -= 1.0 / mu
    sorted_losses = losses[order]
    u = np.empty(lam)
    start = 0
    for i in range(1, lam + 1):
        if i == lam or sorted_losses[i] != sorted_losses[start]:
            u[order[start:i]] = w_rank[start:i].mean()
            start = i
    return u


class ASNG:
    """Numpy reference of Algorithm 1's distribution update.

    >>> asng = ASNG(np.array([3, 3]))
    >>> c = asng.sample(np.random.default_rng(0), lam=2)
    >>> asng.update(c, np.array([0.0, 1.0]))
    """

    def __init__(
        self,
        categories: np.ndarray,
        alpha: float = 1.5,
        delta0: float = 1.0,
        Delta_max: float = np.inf,
    ) -> None:
        self.C = np.asarray(categories, dtype=np.int64)
        self.D = len(self.C)
        self.K_max = int(self.C.max())
        self.N = int(np.sum(self.C - 1))
        self.D_valid = int(np.sum(self.C > 1))
        self.alpha = float(alpha)
        self.delta0 = float(delta0)
        self.Delta_max = float(Delta_max)
        self.theta = np.zeros((self.D, self.K_max))
        for d, K in enumerate(self.C):
            self.theta[d, :K] = 1.0 / K
        self.s = np.zeros(self.N)
        self.gamma = 0.0
        self.Delta = 1.0
        self.eps = 0.0

    @property
    def delta(self) -> float:
        """δ = δ0 / Δ (step 4)."""
        return self.delta0 / self.Delta

    def sample(self, rng: np.random.Generator, lam: int) -> np.ndarray:
        """λ samples as category indices, shape (λ, D) (step 1): one uniform draw per variable."""
        c = np.empty((lam, self.D), dtype=np.int64)
        for i in range(lam):
            for d in range(self.D):
                K = self.C[d]
                u = rng.random()
                k = int(np.searchsorted(np.cumsum(self.theta[d, :K]), u, side="right"))
                c[i, d] = min(k, K - 1)
        return c

    def one_hot(self, c: np.ndarray) -> np.ndarray:
        oh = np.zeros((c.shape[0], self.D, self.K_max))
        for i in range(c.shape[0]):
            oh[i, np.arange(self.D), c[i]] = 1.0
        return oh

    def fisher_vector(self, G: np.ndarray) -> np.ndarray:
        """s_G of step 5; its Euclidean norm is ‖G‖_F."""
        parts = []
        for d, K in enumerate(self.C):
            if K < 2:
                continue
            th, th_K = self.theta[d, : K - 1], self.theta[d, K - 1]
            g = G[d, : K - 1]
            parts.append(g / np.sqrt(th) + np.sqrt(th) * g.sum() / (th_K + np.sqrt(th_K)))
        return np.concatenate(parts) if parts else np.zeros(0)

    def update(self, c: np.ndarray, losses: np.ndarray) -> None:
        """Steps 2-9 for samples ``c`` (λ, D) with losses (λ,)."""
        u = ranking_utility(losses)  # step 2
        if np.all(u == 0.0):
            return
        G = np.mean(u[:, None, None] * (self.one_hot(c) - self.theta[None]), axis=0)  # step 3
        for d, K in enumerate(self.C):
            G[d, K:] = 0.0
        delta = self.delta  # step 4
        beta = delta / np.sqrt(self.N)
        s_G = self.fisher_vector(G)  # step 5
        G_norm = float(np.sqrt(s_G @ s_G))
        if G_norm == 0.0:  # identical samples: no direction, nothing to adapt
            return
        self.eps = delta / (G_norm + EPS_NORM)  # step 6
        self.theta = self.theta + self.eps * G
        self.s = (1.0 - beta) * self.s + np.sqrt(beta * (2.0 - beta)) * s_G / G_norm  # step 7
        self.gamma = (1.0 - beta) ** 2 * self.gamma + beta * (2.0 - beta)
        self.Delta = min(self.Delta * np.exp(beta * (self.gamma - (self.s @ self.s) / self.alpha)), self.Delta_max)  # step 8
        self.project()  # step 9

    def project(self) -> None:
        """Step 9: keep every θ[d, k] in [θ_min, 1] and each row summing to one."""
        for d, K in enumerate(self.C):
            if K < 2:
                continue
            theta_min = 1.0 / (self.D_valid * (K - 1))
            row = np.maximum(self.theta[d, :K], theta_min)
            total = row.sum()
            row = row - (total - 1.0) * (row - theta_min) / (total - theta_min * K)
            self.theta[d, :K] = row / row.sum()

    def argmax(self) -> np.ndarray:
        """The mode of P_θ: argmax θ per variable."""
        return np.array([int(np.argmax(self.theta[d, :K])) for d, K in enumerate(self.C)], dtype=np.int64)

    def entropy(self) -> float:
        th = self.theta[self.theta > 0]
        return float(-(th * np.log(th)).sum())


# ---------------------------------------------------------------------------------------------
# numba engine (module-level kernels over arrays; compiled on first use and cached on disk)
# ---------------------------------------------------------------------------------------------


def init_state(categories: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(theta, s, scalars) at the start: θ uniform, s = 0, Δ = 1, γ = 0, ε = 0."""
    C = np.asarray(categories, dtype=np.int64)
    theta = np.zeros((len(C), int(C.max())))
    for d, K in enumerate(C):
        theta[d, :K] = 1.0 / K
    s = np.zeros(int(np.sum(C - 1)))
    scalars = np.array([1.0, 0.0, 0.0])
    return theta, s, scalars


from nascsim.core._asng_kernels import (  # noqa: E402  (kernels live in their own module)
    argmax_theta,
    entropy_theta,
    ranking_utility_into,
    sample_into,
    update,
    update_ws,
    workspace,
)

__all__ = [
    "ASNG",
    "argmax_theta",
    "entropy_theta",
    "init_state",
    "ranking_utility",
    "ranking_utility_into",
    "sample_into",
    "update",
    "update_ws",
    "workspace",
]
