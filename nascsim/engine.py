"""The search engine: runs ASNG (or uniform random sampling) on one objective.

Like Optuna's samplers, the engine knows nothing of methods, CLI or storage: a method builds an
:class:`~nascsim.objective.Objective`, picks a surrogate and a latency model, and calls
:func:`run_asng_search` or :func:`run_random_search`. All random numbers come from one
``numpy.random.Generator`` (PCG64 seeded through ``SeedSequence(seed)``), so one seed fixes a run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from nascsim.asng import init_state
from nascsim.objective import Objective

DEFAULT_CACHE_SLOTS = 8192


@dataclass
class EngineResult:
    """Final distribution and bookkeeping of one engine run.

    ``choice``: argmax θ per variable (ASNG) or the best sample (random), shape (D,).
    ``trace``: per-step arrays (``f`` (steps, λ), ``entropy``, ``Delta``, ``eps``, ``split_marginal``
    (steps, 23)) when asked for, else None.
    """

    choice: np.ndarray
    theta: np.ndarray | None
    C: np.ndarray
    Delta: float
    gamma: float
    n_updates: int
    cache_hits: int
    cache_misses: int
    wall_s: float
    trace: dict | None = None


def make_rng(seed: int) -> np.random.Generator:
    """The run's generator: PCG64 over ``SeedSequence(seed)``."""
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed))))


def categories(n_ops: int, n_layers: int, search_split: bool) -> np.ndarray:
    """K_d of every variable: n_ops per layer, plus n_layers + 1 split points when searched."""
    C = [n_ops] * n_layers + ([n_layers + 1] if search_split else [])
    return np.array(C, dtype=np.int64)


def _cache(slots: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((slots, width), -1, dtype=np.int16), np.zeros((slots, 2))


def _observation_arrays(objective: Objective, surrogate, n_layers: int, cache_slots: int) -> tuple:
    """What every observation of eq. 4 needs: (objective vector, loss set, cache keys, cache
    values, hit/miss counters)."""
    keys, vals = _cache(cache_slots, n_layers + 1)
    return (objective.vector(surrogate.loss_set, n_layers), np.asarray(objective.loss_set, dtype=np.float64),
            keys, vals, np.zeros(2, dtype=np.int64))


def run_asng_search(
    objective: Objective,
    surrogate,
    latency_model,
    rng: np.random.Generator,
    *,
    steps: int,
    lam: int = 2,
    alpha: float = 1.5,
    delta0: float = 1.0,
    Delta_max: float = np.inf,
    search_split: bool = True,
    fixed_split: int = -1,
    n_ops: int,
    n_layers: int = 22,
    cache_slots: int = DEFAULT_CACHE_SLOTS,
    trace: bool = False,
) -> EngineResult:
    """ASNG over the ops of ``n_layers`` layers (and the split point when ``search_split``)."""
    from nascsim import _engine_kernels as K
    from nascsim._asng_kernels import argmax_theta, workspace

    if lam < 2:
        raise ValueError(f"lam must be at least 2, got {lam}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    C = categories(n_ops, n_layers, search_split)
    theta, s, scalars = init_state(C)
    params = np.array([alpha, delta0, Delta_max], dtype=np.float64)
    obj, loss_set, keys, vals, stats = _observation_arrays(objective, surrogate, n_layers, cache_slots)
    rows = steps if trace else 0
    trace_f = np.full((rows, lam), np.nan)
    trace_scalars = np.full((rows, 3), np.nan)
    trace_split = np.full((rows, n_layers + 1), np.nan)
    t0 = time.perf_counter()
    n_updates = K.run_asng(
        theta, C, s, scalars, params, rng, steps, lam, n_layers, fixed_split,
        obj, latency_model.arrays, surrogate.arrays, loss_set, keys, vals, stats,
        trace_f, trace_scalars, trace_split, workspace(C, lam),
    )
    wall = time.perf_counter() - t0
    choice = np.empty(len(C), dtype=np.int64)
    argmax_theta(theta, C, choice)
    tr = None
    if trace:
        tr = {
            "f": trace_f,
            "entropy": trace_scalars[:, 0],
            "Delta": trace_scalars[:, 1],
            "eps": trace_scalars[:, 2],
            "split_marginal": trace_split if search_split else None,
        }
    return EngineResult(choice, theta, C, float(scalars[0]), float(scalars[1]), int(n_updates),
                        int(stats[0]), int(stats[1]), wall, tr)


def run_random_search(
    objective: Objective,
    surrogate,
    latency_model,
    rng: np.random.Generator,
    *,
    budget: int,
    search_split: bool = True,
    fixed_split: int = -1,
    n_ops: int,
    n_layers: int = 22,
    cache_slots: int = DEFAULT_CACHE_SLOTS,
) -> EngineResult:
    """Best of ``budget`` uniformly drawn (arch, split) by observed objective."""
    from nascsim import _engine_kernels as K

    if budget < 1:
        raise ValueError(f"budget must be at least 1, got {budget}")
    C = categories(n_ops, n_layers, search_split)
    obj, loss_set, keys, vals, stats = _observation_arrays(objective, surrogate, n_layers, cache_slots)
    best = np.zeros(len(C), dtype=np.int64)
    t0 = time.perf_counter()
    K.run_random(C, rng, budget, n_layers, fixed_split, obj, latency_model.arrays, surrogate.arrays,
                 loss_set, keys, vals, stats, best)
    wall = time.perf_counter() - t0
    return EngineResult(best, None, C, float("nan"), float("nan"), 0, int(stats[0]), int(stats[1]), wall)


def reference_asng_search(
    objective: Objective,
    surrogate,
    latency_model,
    rng: np.random.Generator,
    *,
    steps: int,
    lam: int = 2,
    alpha: float = 1.5,
    delta0: float = 1.0,
    Delta_max: float = np.inf,
    search_split: bool = True,
    fixed_split: int = -1,
    n_ops: int,
    n_layers: int = 22,
):
    """Plain numpy/Python version of :func:`run_asng_search` (the reference kept for tests and the
    speed benchmark): :class:`~nascsim.asng.ASNG`, the surrogate's batch ``predict`` and
    :func:`~nascsim.latency.breakdown`, drawing random numbers in the engine's order.
    Returns the :class:`~nascsim.asng.ASNG` object after ``steps`` steps."""
    from nascsim.asng import ASNG
    from nascsim.latency import breakdown, device_only_latency
    from nascsim.objective import LAT_DEVICE, LOSS_P0, _same_set

    asng = ASNG(categories(n_ops, n_layers, search_split), alpha=alpha, delta0=delta0, Delta_max=Delta_max)
    use_lsc = _same_set(objective.loss_set, surrogate.loss_set)
    one = np.zeros(1)
    for _ in range(steps):
        c = asng.sample(rng, lam)
        f = np.empty(lam)
        for i in range(lam):
            arch = c[i, :n_layers][None, :]
            split = int(c[i, n_layers]) if search_split else fixed_split
            if objective.loss_mode == LOSS_P0:
                args = (arch, np.array([n_layers]), one)
                m, sd = surrogate.predict("loss", *args)[0], surrogate.noise_sd("loss", *args)[0]
            elif use_lsc:
                args = (arch, np.array([split]), one)
                m, sd = surrogate.predict("lsc", *args)[0], surrogate.noise_sd("lsc", *args)[0]
            else:
                ms = [surrogate.predict("loss", arch, np.array([split]), np.array([p]))[0] for p in objective.loss_set]
                sds = [surrogate.noise_sd("loss", arch, np.array([split]), np.array([p]))[0] for p in objective.loss_set]
                m, sd = sum(ms) / len(ms), sum(sds) / len(sds)
            loss = m + sd * rng.standard_normal()
            if objective.latency_mode == LAT_DEVICE:
                T = device_only_latency(latency_model, arch[0])
            else:
                T = breakdown(latency_model, arch[0], split)["T_ms"]
            f[i] = objective.eps_loss * loss + objective.eps_lat * max(0.0, T - objective.threshold_ms)
        asng.update(c, f)
    return asng
