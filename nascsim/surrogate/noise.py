"""Minibatch noise of one supernet evaluation: its two variance components, estimated from the
evaluation files, and what a search on minibatches of m images observes.

Model of one observation y (loss or accuracy at one p, or l_SC) of pair j on batch b:

    y_jb = μ + u_j + b_b + e_jb,     u_j ~ (0, σ_pair²),  b_b ~ (0, σ_batch²),  e_jb ~ (0, σ_own²)

u_j is what the surrogate predicts (the pair's mean), b_b the part of the noise that every pair
evaluated on batch b shares (an easy or hard batch), e_jb the pair's own noise on it. One
observation's noise has variance σ_batch² + σ_own² (the ``sd`` of the surrogate document) of which
the share σ_batch² / (σ_batch² + σ_own²) is common to all pairs judged on the same batch (the
``shared`` share). Both scale as 1/n with the n images of a batch (a mean over n images), so on
a minibatch of m images the sd is sd · sqrt(n_images / m).

Estimators (:func:`estimate_components`): symmetric sums of squared differences (Koch 1967) over
every two rows of the same p,

    same pair, other batch:      E[(y - y')²] / 2 = σ_batch² + σ_own²
    other pair, same batch:      E[(y - y')²] / 2 = σ_pair² + σ_own²
    other pair, other batch:     E[(y - y')²] / 2 = σ_pair² + σ_batch² + σ_own²

so σ_batch² = (3) - (2), σ_own² = (1) - σ_batch², σ_pair² = (3) - (1). On the crossed "noise"
design (every pair on every one of B shared minibatches) this is the two-way random-effects
ANOVA estimate (mean squares of batches, pairs and residual, equal for balanced data); on the
"main" design (each pair on one batch, some on a second) it uses the pairs that shared a batch
and the repeated pairs. Negative component estimates are set to 0 (the share then to 0 or 1).
"""

from __future__ import annotations

import math

import numpy as np

MODES = ("shared", "independent", "none")
DEFAULT_MINIBATCH = 64


def _interp(grid: list[float], values: list[float], p: float) -> float:
    """Piecewise linear in p over ``grid``, constant outside (the rule of ``noise_sd_one``)."""
    m = len(grid)
    if m == 1 or p <= grid[0]:
        return float(values[0])
    if p >= grid[m - 1]:
        return float(values[m - 1])
    j = 1
    while grid[j] < p:
        j += 1
    w = (p - grid[j - 1]) / (grid[j] - grid[j - 1])
    return (1.0 - w) * values[j - 1] + w * values[j]


def observation_sd(noise: dict, target: str, p: float) -> float:
    """SD of one observation of ``target`` at p on ``n_images`` images (equal to
    :func:`nascsim.surrogate.predict.noise_sd_one`: piecewise linear in p, l_SC constant)."""
    if target == "lsc":
        return float(noise["lsc"])
    return _interp(list(noise["p"]), list(noise[target]), float(p))


def shared_share(noise: dict, target: str, p: float) -> float:
    """Share of one observation's variance common to the pairs judged on the same batch."""
    sh = noise["shared"][target]
    if target == "lsc":
        return float(sh)
    return _interp(list(noise["p"]), list(sh), float(p))


def minibatch_scale(noise: dict, minibatch: int | None) -> float:
    """sqrt(n_images / m): the factor from the evaluation files' batch to a minibatch of m images
    (1 when ``minibatch`` is None: the files' own batch size)."""
    if minibatch is None:
        return 1.0
    return math.sqrt(int(noise["n_images"]) / int(minibatch))


# ---------------------------------------------------------------------------------------------
# estimation from evaluation rows
# ---------------------------------------------------------------------------------------------


def _sum_of_squares(c: np.ndarray) -> float:
    """Σ c², correctly rounded (``math.fsum``): the same float on every CPU, unlike a BLAS dot
    product, whose summation order depends on the kernel it picks (docs/reproducibility.md)."""
    return math.fsum((c * c).tolist())


def _pairwise_sums(y: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """(Σ over unordered row pairs within the same group of (y - y')², number of such pairs)."""
    total, count = 0.0, 0.0
    order = np.argsort(groups, kind="stable")
    g, v = groups[order], y[order]
    cuts = np.flatnonzero(np.diff(g)) + 1
    for part in np.split(v, cuts):
        n = len(part)
        if n < 2:
            continue
        # Σ_{i<j} (y_i - y_j)² = n Σ y² - (Σ y)²
        c = part - math.fsum(part.tolist()) / n
        total += n * _sum_of_squares(c)
        count += n * (n - 1) / 2
    return total, count


def estimate_components(y, pair, batch) -> dict:
    """Variance components of observations ``y`` of pairs ``pair`` on batches ``batch`` (one p,
    one target), by symmetric sums (see the module docstring).

    Returns {"pair": σ_pair², "batch": σ_batch², "own": σ_own², "total": σ_batch² + σ_own²,
    "share": σ_batch² / total, "n_same_pair": row pairs of the same pair on other batches,
    "n_same_batch": row pairs of other pairs on the same batch, "n_rows"}. Raises ValueError when
    no pair was seen on two batches or no batch held two pairs.
    """
    y = np.asarray(y, dtype=np.float64)
    pair = np.asarray(pair, dtype=np.int64)
    batch = np.asarray(batch, dtype=np.int64)
    n = len(y)
    # all row pairs, and those sharing the pair, the batch, or both (cells: one row per cell
    # in both designs; a repeated cell would count as both)
    _, cell = np.unique(np.stack([pair, batch], axis=1), axis=0, return_inverse=True)
    c = y - math.fsum(y.tolist()) / n
    s_all, n_all = n * _sum_of_squares(c), n * (n - 1) / 2
    s_p, n_p = _pairwise_sums(y, pair)
    s_b, n_b = _pairwise_sums(y, batch)
    s_c, n_c = _pairwise_sums(y, cell.ravel())
    s_pair_only, n_pair_only = s_p - s_c, n_p - n_c  # same pair, other batch
    s_batch_only, n_batch_only = s_b - s_c, n_b - n_c  # other pair, same batch
    s_none, n_none = s_all - s_p - s_b + s_c, n_all - n_p - n_b + n_c  # other pair, other batch
    if n_pair_only <= 0:
        raise ValueError("no pair was evaluated on two batches: the noise model needs repeated pairs")
    if n_batch_only <= 0 or n_none <= 0:
        raise ValueError("no batch holds two pairs (or only one batch): the shared part of the noise cannot be estimated")
    d1 = s_pair_only / n_pair_only / 2  # σ_batch² + σ_own²
    d2 = s_batch_only / n_batch_only / 2  # σ_pair² + σ_own²
    d3 = s_none / n_none / 2  # σ_pair² + σ_batch² + σ_own²
    total = max(d1, 0.0)
    batch_var = min(max(d3 - d2, 0.0), total)
    own = total - batch_var
    return {
        "pair": max(d3 - d1, 0.0),
        "batch": batch_var,
        "own": own,
        "total": total,
        "share": batch_var / total if total > 0 else 0.0,
        "n_same_pair": int(n_pair_only),
        "n_same_batch": int(n_batch_only),
        "n_rows": int(n),
    }
