"""The search engine: runs ASNG (or uniform random sampling) on one objective.

Like Optuna's samplers, the engine knows nothing of methods, CLI or storage: a method builds an
:class:`~nascsim.core.objective.Objective`, picks a surrogate and a latency model, and calls
:func:`run_asng_search` or :func:`run_random_search`. All random numbers come from one
``numpy.random.Generator`` (PCG64 seeded through ``SeedSequence(seed)``), so one seed fixes a run;
the kernels draw from its state directly (:mod:`nascsim.core._rng_kernels`) and hand it back advanced.

What the search observes (:mod:`nascsim.core._engine_kernels`): the loss term of eq. 4 as the
surrogate's expected value plus minibatch noise, ``noise`` = ``"shared"`` (a part b_t common to
the λ samples of a step, judged on the same minibatch, and a part e_i of each sample),
``"independent"`` (one draw per sample with the whole variance) or ``"none"``; the standard
deviations are those of the surrogate's noise model scaled from its evaluation batches
(``n_images``) to ``minibatch`` images (``minibatch=None``: no scaling).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np

from nascsim.core.asng import init_state
from nascsim.core.objective import LOSS_P0, Objective, _same_set

DEFAULT_NOISE = "shared"
DEFAULT_MINIBATCH = 64


@dataclass
class EngineResult:
    """Final distribution and bookkeeping of one engine run.

    ``choice``: argmax θ per variable (ASNG) or the best sample (random), shape (D,).
    ``early_exits``: steps whose order of f0, f1 was known before every tree was read (λ = 2).
    ``trace``: per-step arrays (``f`` (steps, λ), ``entropy``, ``Delta``, ``eps``, ``split_marginal``
    (steps, 23)) when asked for, else None.
    """

    choice: np.ndarray
    theta: np.ndarray | None
    C: np.ndarray
    Delta: float
    gamma: float
    n_updates: int
    wall_s: float  # the kernel's run, numba's compilation or cache load excluded
    trace: dict | None = None
    early_exits: int = 0


def kernels_ready(lam: int = 2) -> bool:
    """True when the numba cache already holds the ASNG kernel for this CPU (no compilation
    ahead); False when the first search will compile it. Unknown (an unreadable cache) -> True."""
    try:
        from nascsim.core import _engine_kernels as K

        kernel = K.run_asng2 if lam == 2 else K.run_asng_any
        index = kernel._cache._cache_file._load_index()
        magic = kernel.targetctx.codegen().magic_tuple()
        return any(key[1] == magic for key in index)
    except Exception:  # numba internals moved: say nothing rather than something wrong
        return True


def make_rng(seed: int, stream: int = 0) -> np.random.Generator:
    """The run's generator: PCG64 over ``SeedSequence(seed)``; ``stream`` k > 0 gives the run's
    k-th independent side stream, ``SeedSequence(seed, spawn_key=(k,))``."""
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    ss = np.random.SeedSequence(int(seed)) if stream == 0 else np.random.SeedSequence(int(seed), spawn_key=(int(stream),))
    return np.random.Generator(np.random.PCG64(ss))


def categories(n_ops: int, n_layers: int, search_split: bool) -> np.ndarray:
    """K_d of every variable: n_ops per layer, plus n_layers + 1 split points when searched."""
    C = [n_ops] * n_layers + ([n_layers + 1] if search_split else [])
    return np.array(C, dtype=np.int64)


def loss_terms(objective: Objective, surrogate) -> list[tuple[str, float]]:
    """The (target, p) predictions whose mean is the loss term of eq. 4: l_SC when the loss set
    is the surrogate's own, the loss at p = 0 for the HWNAS variant, else the loss at each p."""
    if objective.loss_mode == LOSS_P0:
        return [("loss", 0.0)]
    if _same_set(objective.loss_set, surrogate.loss_set):
        return [("lsc", 0.0)]
    return [("loss", float(p)) for p in objective.loss_set]


def noise_vector(objective: Objective, surrogate, noise: str, minibatch: int | None) -> np.ndarray:
    """The kernels' noise model ``[mode, sd_total, sd_shared, sd_own]`` for one search.

    sd_total is the mean of the terms' sds (for several p: an upper bound that takes the
    evaluations of one minibatch at the different p as fully correlated, as eq. 4b averages them
    on one minibatch); sd_shared and sd_own split each term's variance by its shared share and
    are averaged the same way. All are scaled to ``minibatch`` images.
    """
    from nascsim.core._engine_kernels import NOISE_INDEPENDENT, NOISE_NONE, NOISE_SHARED
    from nascsim.surrogate.noise import MODES, minibatch_scale, observation_sd, shared_share

    if noise not in MODES:
        raise ValueError(f"unknown noise mode {noise!r}; expected one of {', '.join(MODES)}")
    if minibatch is not None and (int(minibatch) != minibatch or minibatch < 1):
        raise ValueError(f"minibatch must be a positive number of images, got {minibatch}")
    terms = loss_terms(objective, surrogate)
    total = own = shared = 0.0
    for target, p in terms:
        sd = observation_sd(surrogate.doc["noise"], target, p)
        share = shared_share(surrogate.doc["noise"], target, p)
        total += sd
        shared += sd * np.sqrt(share)
        own += sd * np.sqrt(1.0 - share)
    n = len(terms)
    scale = minibatch_scale(surrogate.doc["noise"], minibatch)
    mode = {"none": NOISE_NONE, "independent": NOISE_INDEPENDENT, "shared": NOISE_SHARED}[noise]
    return np.array([float(mode), total / n * scale, shared / n * scale, own / n * scale])


@functools.lru_cache(maxsize=64)
def _search_trees(surrogate, terms: tuple, fixed: tuple, n_categories: int):
    from nascsim.surrogate.export import search_trees
    from nascsim.surrogate.predict import TARGETS

    return search_trees(surrogate.arrays, [(TARGETS[t], p) for t, p in terms], dict(fixed), n_categories).arrays


def search_trees_for(objective: Objective, surrogate, n_layers: int, n_ops: int, fixed_split: int) -> tuple:
    """The :class:`~nascsim.surrogate.export.SearchTrees` arrays of the objective's loss terms,
    specialised to the split when it is fixed (HWNAS: the last layer; ``--no-split-search``).
    Cached per surrogate, terms and fixed split."""
    from nascsim.surrogate.features import F_SPLIT

    fixed = ()
    if objective.loss_mode == LOSS_P0:
        fixed = ((F_SPLIT, float(n_layers)),)
    elif fixed_split >= 0:
        fixed = ((F_SPLIT, float(fixed_split)),)
    return _search_trees(surrogate, tuple(loss_terms(objective, surrogate)), fixed, n_ops + 1)


def _observation(objective, surrogate, latency_model, n_layers, n_ops, fixed_split, noise, minibatch):
    return (objective.vector(surrogate.loss_set, n_layers), latency_model.arrays, surrogate.arrays[:6],
            search_trees_for(objective, surrogate, n_layers, n_ops, fixed_split),
            noise_vector(objective, surrogate, noise, minibatch))


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
    noise: str = DEFAULT_NOISE,
    minibatch: int | None = DEFAULT_MINIBATCH,
    trace: bool = False,
) -> EngineResult:
    """ASNG over the ops of ``n_layers`` layers (and the split point when ``search_split``)."""
    from nascsim.core import _engine_kernels as K
    from nascsim.core._asng_kernels import argmax_theta, theta_min_of, to_columns, workspace, workspace_T
    from nascsim.core._rng_kernels import state_from_generator, state_to_generator
    from nascsim.surrogate.predict import S_LO

    if lam < 2:
        raise ValueError(f"lam must be at least 2, got {lam}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    C = categories(n_ops, n_layers, search_split)
    theta, s, scalars = init_state(C)
    thetaT = to_columns(theta)
    cumT = np.zeros_like(thetaT)
    params = np.array([alpha, delta0, Delta_max], dtype=np.float64)
    obj, lat, ft, st, nz = _observation(objective, surrogate, latency_model, n_layers, n_ops,
                                        -1 if search_split else fixed_split, noise, minibatch)
    rows = steps if trace else 0
    trace_f = np.full((rows, lam), np.nan)
    trace_scalars = np.full((rows, 3), np.nan)
    trace_split = np.full((rows, n_layers + 1), np.nan)
    state = state_from_generator(rng)
    work = (workspace_T(C), K.pair_workspace(len(C), n_layers, st[S_LO].shape[0])) if lam == 2 else (workspace(C, lam), workspace_T(C))
    kernel = K.run_asng2 if lam == 2 else K.run_asng_any
    lam_arg = () if lam == 2 else (lam,)
    tail = (*lam_arg, n_layers, fixed_split, obj, lat, ft, st, nz, trace_f, trace_scalars, trace_split, *work)
    tm = theta_min_of(C)
    kernel(thetaT, cumT, C, n_layers, s, scalars, params, tm, state, 0, *tail)  # compile or load: not the search's time
    t0 = time.perf_counter()
    n_updates, n_early = kernel(thetaT, cumT, C, n_layers, s, scalars, params, tm, state, steps, *tail)
    wall = time.perf_counter() - t0
    state_to_generator(state, rng)
    theta = np.ascontiguousarray(thetaT[:, : len(C)].T)
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
    return EngineResult(choice, theta, C, float(scalars[0]), float(scalars[1]), int(n_updates), wall, tr, int(n_early))


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
    noise: str = DEFAULT_NOISE,
    minibatch: int | None = DEFAULT_MINIBATCH,
) -> EngineResult:
    """Best of ``budget`` uniformly drawn (arch, split) by observed objective."""
    from nascsim.core import _engine_kernels as K
    from nascsim.core._rng_kernels import state_from_generator, state_to_generator

    if budget < 1:
        raise ValueError(f"budget must be at least 1, got {budget}")
    C = categories(n_ops, n_layers, search_split)
    obj, lat, ft, st, nz = _observation(objective, surrogate, latency_model, n_layers, n_ops,
                                        -1 if search_split else fixed_split, noise, minibatch)
    best = np.zeros(len(C), dtype=np.int64)
    state = state_from_generator(rng)
    K.run_random(C, state, 0, n_layers, fixed_split, obj, lat, ft, st, nz, best)  # compile or load
    t0 = time.perf_counter()
    K.run_random(C, state, budget, n_layers, fixed_split, obj, lat, ft, st, nz, best)
    wall = time.perf_counter() - t0
    state_to_generator(state, rng)
    return EngineResult(best, None, C, float("nan"), float("nan"), 0, wall)


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
    noise: str = DEFAULT_NOISE,
    minibatch: int | None = DEFAULT_MINIBATCH,
):
    """Plain numpy/Python version of :func:`run_asng_search` (the reference kept for tests and the
    speed benchmark): :class:`~nascsim.core.asng.ASNG`, the surrogate's batch ``predict`` and
    :func:`~nascsim.hw.latency.breakdown`, drawing random numbers in the engine's order.
    Returns the :class:`~nascsim.core.asng.ASNG` object after ``steps`` steps."""
    from nascsim.core.asng import ASNG
    from nascsim.hw.latency import breakdown, device_only_latency
    from nascsim.core.objective import LAT_DEVICE

    asng = ASNG(categories(n_ops, n_layers, search_split), alpha=alpha, delta0=delta0, Delta_max=Delta_max)
    terms = loss_terms(objective, surrogate)
    mode, sd_total, sd_shared, sd_own = noise_vector(objective, surrogate, noise, minibatch)
    for _ in range(steps):
        c = asng.sample(rng, lam)
        shared = sd_shared * rng.standard_normal() if noise == "shared" else 0.0
        f = np.empty(lam)
        for i in range(lam):
            arch = c[i, :n_layers][None, :]
            split = int(c[i, n_layers]) if search_split else fixed_split
            k = n_layers if objective.loss_mode == LOSS_P0 else split
            m = sum(surrogate.predict(t, arch, np.array([k]), np.array([p]))[0] for t, p in terms) / len(terms)
            if noise == "independent":
                loss = m + sd_total * rng.standard_normal()
            elif noise == "shared":
                loss = m + shared + sd_own * rng.standard_normal()
            else:
                loss = m
            if objective.latency_mode == LAT_DEVICE:
                T = device_only_latency(latency_model, arch[0])
            else:
                T = breakdown(latency_model, arch[0], split)["T_ms"]
            f[i] = objective.eps_loss * loss + objective.eps_lat * max(0.0, T - objective.threshold_ms)
        asng.update(c, f)
    return asng
