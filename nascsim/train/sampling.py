"""(arch, split) sampling for supernet pre-training and evaluation.

Algorithm 1 (lines 2-4) trains λ_x pairs drawn uniformly per minibatch. Two samplers give every
pair that marginal law:

- ``uniform``: every layer's op and the split independent and uniform;
- ``balanced``: the ops of consecutive pairs are drawn without replacement, layer by layer, in
  blocks of K pairs (K = number of ops): within each block every op of every layer is trained
  exactly once (the strict fairness of FairNAS, Chu et al. 2021, spread over ceil(K/λ_x)
  minibatches). Each pair is still uniform over the space; pairs of one block are negatively
  correlated, which removes the op-count noise of short runs. Splits stay independent uniform.

A third sampler departs from that law on purpose:

- ``sandwich``: the first pair of every minibatch is the largest architecture (the op with the
  most FLOPs in every layer, :func:`largest_arch`), the other λ_x - 1 are ``balanced``; BigNAS's
  sandwich rule (Yu et al. 2020) without the smallest path. With ``Recipe.distill`` the other
  pairs learn from the largest one's predictions (in-place distillation,
  :func:`nascsim.train.loop.path_loss`).
"""

from __future__ import annotations

import numpy as np

from nascsim.space import Space

SAMPLERS = ("uniform", "balanced", "sandwich")


def largest_arch(space: Space) -> np.ndarray:
    """(22,) the op with the most FLOPs in every layer (full-width counts)."""
    from nascsim.hw.flops import block_count

    return np.array([max(range(space.n_ops), key=lambda o: block_count(layer, space.ops[o]).flops)
                     for layer in space.layers], dtype=np.int64)


def uniform_pairs(space: Space, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (arch, split) pairs drawn uniformly: archs (n, 22) int64, splits (n,) int64."""
    archs = rng.integers(0, space.n_ops, size=(n, space.n_layers), dtype=np.int64)
    splits = rng.integers(0, space.n_splits, size=n, dtype=np.int64)
    return archs, splits


def balanced_archs(space: Space, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 22) op indices: in every block of ``space.n_ops`` consecutive rows each layer's column
    is a permutation of all ops (the last block is cut at n)."""
    k = space.n_ops
    blocks = -(-n // k)
    perms = rng.permuted(np.tile(np.arange(k, dtype=np.int64), (blocks, space.n_layers, 1)), axis=2)
    return np.ascontiguousarray(perms.transpose(0, 2, 1).reshape(blocks * k, space.n_layers)[:n])


def epoch_paths(space: Space, steps: int, lambda_x: int, sampling: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of one epoch: archs (steps, λ_x, 22) and splits (steps, λ_x)."""
    n = steps * lambda_x
    if sampling == "uniform":
        archs, splits = uniform_pairs(space, n, rng)
    elif sampling == "balanced":
        archs = balanced_archs(space, n, rng)
        splits = rng.integers(0, space.n_splits, size=n, dtype=np.int64)
    elif sampling == "sandwich":
        archs = balanced_archs(space, n, rng).reshape(steps, lambda_x, space.n_layers)
        archs[:, 0] = largest_arch(space)
        splits = rng.integers(0, space.n_splits, size=n, dtype=np.int64)
    else:
        raise ValueError(f"unknown sampling {sampling!r}; expected one of {', '.join(SAMPLERS)}")
    return archs.reshape(steps, lambda_x, space.n_layers), splits.reshape(steps, lambda_x)
