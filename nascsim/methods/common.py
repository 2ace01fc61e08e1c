"""What every method shares: the search's length (the paper's schedule,
:mod:`nascsim.core.schedule`), surrogate resolution, the result record."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np

from nascsim import __version__
from nascsim.config import SearchConfig
from nascsim.hw.latency import LatencyModel, breakdown, build_latency_model, check_devices
from nascsim.core.objective import LAT_SPLIT, LOSS_SC, Objective
from nascsim.core.schedule import DEFAULT_STEPS
from nascsim.space import Space, arch_names, check_split, get_space
from nascsim.validate import check_config


def steps_of(config: SearchConfig) -> int:
    return DEFAULT_STEPS if config.steps is None else int(config.steps)


def objective_of(config: SearchConfig, loss_mode: int = LOSS_SC, latency_mode: int = LAT_SPLIT) -> Objective:
    """Eq. 4 with the config's threshold, weights and loss set (NASC's variant by default)."""
    return Objective(config.threshold_ms, config.eps_loss, config.eps_lat, tuple(config.loss_set), loss_mode, latency_mode)


def asng_options(config: SearchConfig) -> dict:
    """Engine arguments of the ASNG run and its observations: λ, α, δ0, Δ_max, noise, minibatch."""
    return {"lam": config.lam, "alpha": config.alpha, "delta0": config.delta0, "Delta_max": config.Delta_max,
            "noise": config.noise, "minibatch": config.minibatch}


def split_variables(config: SearchConfig) -> dict:
    """Engine arguments for the split: searched, or fixed by ``--no-split-search``."""
    return {"search_split": config.split_search, "fixed_split": -1 if config.split_search else int(config.fixed_split)}


def decode(choice: np.ndarray, config: SearchConfig, space: Space) -> tuple[np.ndarray, int]:
    """(arch, split) from the engine's choice vector (ops, then the split when it was searched)."""
    arch = choice[: space.n_layers]
    split = int(choice[space.n_layers]) if config.split_search else int(config.fixed_split)
    return arch, split


def validate(config: SearchConfig) -> Space:
    """Check a config's values (every field's rule in :mod:`nascsim.validate`, the devices against
    the latency table in use, the split against its space); raise ValueError naming the first bad
    one. Returns the space."""
    check_config(config)
    space = get_space(config.space)
    check_devices(config.head, config.tail, config.tables)
    if not config.split_search:
        check_split(config.fixed_split, space)
    return space


def resolve_surrogates(config: SearchConfig, surrogates: dict | None) -> dict:
    """{"dropout": ..., "no_dropout": ...}; the shipped defaults when None. Checks the space."""
    if surrogates is None:
        surrogates = _shipped(config.space)
    for role in ("dropout", "no_dropout"):
        if role not in surrogates:
            raise ValueError(f"surrogate set lacks the {role!r} surrogate")
        s = surrogates[role]
        if s.space != config.space:
            raise ValueError(
                f"surrogate {s.id!r} was fitted on the {s.space} space, not {config.space!r}; "
                "pass --surrogate PATH fitted on that space"
            )
    return surrogates


@functools.lru_cache(maxsize=4)
def _shipped(space: str) -> dict:
    from nascsim.surrogate import default_surrogates

    return default_surrogates(space)


def latency_model_for(config: SearchConfig, surrogate) -> LatencyModel:
    return _latency_model(config.space, config.head, config.tail, config.source, config.bits, config.bandwidth,
                          surrogate.classes, config.tables)


@functools.lru_cache(maxsize=64)
def _latency_model(space, head, tail, source, bits, bandwidth, classes, tables=None) -> LatencyModel:
    return build_latency_model(space, head, tail, source, bits, bandwidth, classes, tables)


SEARCH_ROLE = {"nasc": "dropout", "random": "dropout", "hwnas": "no_dropout", "hwnas-dropout": "no_dropout"}
EVAL_ROLE = {"nasc": "dropout", "random": "dropout", "hwnas": "no_dropout", "hwnas-dropout": "dropout"}


def latency_floor(config: SearchConfig, surrogates: dict) -> float:
    """The lowest T that any (architecture, split) reaches under the latencies the method's
    objectives read (eq. 3 for NASC; for HWNAS also the whole network on the head device, which
    its search reads), less 1e-9 relative: below it every penalty of eq. 4a is T - T_th. Each
    layer's op is taken at its minimum independently (the layer at the split with its payload)."""
    sur = surrogates[SEARCH_ROLE[config.method]]
    args = (config.space, config.head, config.tail, config.source, config.bits, config.bandwidth, sur.classes,
            config.tables)
    t = _split_floor(*args)
    if config.method.startswith("hwnas"):
        t = min(t, _device_floor(*args))
    return t - 1e-9 * (1.0 + abs(t))


@functools.lru_cache(maxsize=64)
def _device_floor(*args) -> float:
    from nascsim.hw.latency import C_FIXED_HEAD, C_STEM_HEAD

    lat = _latency_model(*args)
    return float(lat.consts[C_STEM_HEAD] + np.nanmin(lat.layer_head, axis=1).sum() + lat.consts[C_FIXED_HEAD])


@functools.lru_cache(maxsize=64)
def _split_floor(*args) -> float:
    from nascsim.hw.latency import C_FIXED_TAIL, C_MS_PER_ELEMENT, C_STEM_HEAD

    lat = _latency_model(*args)
    c = lat.consts
    head_min = np.nanmin(lat.layer_head, axis=1)
    tail_min = np.nanmin(lat.layer_tail, axis=1)
    best = []
    for k in range(lat.layer_head.shape[0] + 1):
        if k == 0:
            at_split = lat.payload[0, 0] * c[C_MS_PER_ELEMENT]
        else:
            at_split = np.nanmin(lat.split_head[k - 1] + lat.split_tail[k - 1] + lat.payload[k] * c[C_MS_PER_ELEMENT])
        best.append(c[C_STEM_HEAD] + head_min[: max(k - 1, 0)].sum() + at_split + tail_min[k:].sum() + c[C_FIXED_TAIL])
    return float(np.nanmin(best))


def with_eval_surrogate(choice: "Choice", config: SearchConfig, surrogates: dict) -> "Choice":
    """The choice of a shared search as the run ``config`` reports it: judged by the surrogate of
    its own final model (``hwnas-dropout``: the dropout supernet's). A registered method's choice
    keeps the surrogate its own ``run`` chose."""
    from dataclasses import replace

    if config.method not in EVAL_ROLE:
        return choice
    return replace(choice, eval_surrogate=surrogates[EVAL_ROLE[config.method]])


NO_THETA = {"theta_op_confidence": None, "theta_split_prob": None, "theta_min_confidence": None,
            "theta_decided_share": None, "Delta": None, "n_updates": None}
DECIDED = 0.9  # a variable is decided when its most likely category has at least this probability


def theta_summary(res, n_layers: int, split: int) -> dict:
    """How concentrated the final θ is, and the run's bookkeeping.

    ``theta_op_confidence``: mean over the op variables of max_k θ; ``theta_split_prob``: θ of the
    chosen split (None when the split is not a variable of θ: HWNAS, ``--no-split-search``);
    ``theta_min_confidence``: min over all variables of max_k θ; ``theta_decided_share``: share of
    variables with max_k θ >= 0.9. Plus Δ, the number of updates and the engine's wall time.
    """
    theta, C = res.theta, res.C
    conf = np.array([theta[d, : C[d]].max() for d in range(len(C))])
    return {
        "theta_op_confidence": float(conf[:n_layers].mean()),
        "theta_split_prob": float(theta[n_layers, split]) if len(C) > n_layers else None,
        "theta_min_confidence": float(conf.min()),
        "theta_decided_share": float(np.mean(conf >= DECIDED)),
        "Delta": res.Delta,
        "n_updates": res.n_updates,
        "search_s": res.wall_s,
    }


@dataclass
class Choice:
    """What a method hands back: the final (arch, split), the surrogates that searched and that
    judge the final model, the latency model, and method-specific summary fields."""

    arch: np.ndarray
    split: int
    eval_surrogate: object
    search_surrogate: object
    latency_model: LatencyModel
    steps: int
    extra: dict = field(default_factory=dict)
    trace: dict | None = None


def make_records(config: SearchConfig, space: Space, choice: Choice, losses, t_start: float) -> list[dict]:
    """One record per evaluation loss rate: the search does not depend on the loss rate at which
    the final model is judged, so one search serves them all (each record's ``wall_s`` is the
    search's wall time shared equally among them)."""
    wall = time.perf_counter() - t_start
    recs = []
    for loss in losses:
        cfg = config.with_(loss=float(loss))
        rec = make_record(cfg, space, choice.arch, choice.split, choice.eval_surrogate, choice.search_surrogate,
                          choice.latency_model, choice.steps, t_start, choice.extra)
        rec["wall_s"] = wall / len(losses)
        recs.append(rec)
    return recs


def make_record(
    config: SearchConfig,
    space: Space,
    arch: np.ndarray,
    split: int,
    eval_surrogate,
    search_surrogate,
    latency_model: LatencyModel,
    steps: int,
    t_start: float,
    extra: dict,
) -> dict:
    """One flat row: the config, the final (arch, split), its latency breakdown and expected
    accuracy at the run's loss rate under the final model's surrogate."""
    arch = np.asarray(arch, dtype=np.int64)
    lat = breakdown(latency_model, arch, split)
    a2, k1, p1 = arch[None, :], np.array([split]), np.array([config.loss])
    accuracy = float(eval_surrogate.predict("acc", a2, k1, p1)[0])
    lsc = float(eval_surrogate.predict("lsc", a2, k1, np.zeros(1))[0])
    rec = config.to_dict()
    rec.update(
        {
            "steps": steps,
            "arch": arch_names(arch, space),
            "arch_idx": [int(x) for x in arch],
            "split": int(split),
            "T_head_ms": lat["T_head_ms"],
            "T_comm_ms": lat["T_comm_ms"],
            "T_tail_ms": lat["T_tail_ms"],
            "T_ms": lat["T_ms"],
            "payload_bits": lat["payload_bits"],
            "feasible": bool(lat["T_ms"] <= config.threshold_ms),
            "accuracy": accuracy,
            "l_sc": lsc,
            "surrogate": eval_surrogate.id,
            "search_surrogate": search_surrogate.id,
            "dataset": eval_surrogate.dataset,
            "source": latency_model.source,
            "version": __version__,
        }
    )
    rec.update(extra)
    rec["wall_s"] = time.perf_counter() - t_start
    return rec
