"""Search methods: NASC and its baselines, each a short module that builds its objective and calls
the engine (:mod:`nascsim.core.engine`). :func:`run_search` is what the CLI calls; the sweep calls
:func:`run_search_group`, which runs one search for every run it serves. Methods are found by name
in :mod:`nascsim.methods.registry`, where a user's own methods are registered too.

Runs that differ only in what does not change the search share it (:func:`shared_search`): the
evaluation loss rate (the search never reads it), ``hwnas`` vs ``hwnas-dropout`` (one search and
one split, judged by different surrogates), and a latency threshold below the lowest latency any
(architecture, split) reaches (the penalty of eq. 4a is then T - T_th for every sample, the same
shift for all: those thresholds are searched at that lowest latency).
"""

from __future__ import annotations

import time

from nascsim.config import SearchConfig
from nascsim.methods.registry import get_method, method_names, register_method, unregister_method
from nascsim.methods.common import latency_floor, make_records, resolve_surrogates, validate, with_eval_surrogate
from nascsim.core.schedule import DEFAULT_STEPS, STEPS_PER_EPOCH


def _runner(method: str):
    """The ``run`` function of a built-in or registered method (:mod:`nascsim.methods.registry`)."""
    return get_method(method).run


def shared_search(config: SearchConfig, surrogates: dict | None = None) -> SearchConfig:
    """The config of the search that serves ``config`` (see the module docstring): loss 0,
    ``hwnas-dropout`` as ``hwnas``, a threshold below the lowest reachable latency raised to it."""
    key = config.with_(loss=0.0)
    if key.method == "hwnas-dropout":
        key = key.with_(method="hwnas")
    if key.method in ("nasc", "hwnas"):
        floor = latency_floor(key, resolve_surrogates(key, surrogates))
        if key.threshold_ms < floor:
            key = key.with_(threshold_ms=floor)
    return key


def run_search_group(configs: list[SearchConfig], surrogates: dict | None = None, trace: bool = False) -> list[dict]:
    """One search serving every config of ``configs`` (all with the same :func:`shared_search`):
    one record per config, in order; each record's ``wall_s`` is the search's wall time shared
    equally among them."""
    t0 = time.perf_counter()
    if not configs:
        raise ValueError("no run given")
    space = [validate(c) for c in configs][0]
    surrogates = resolve_surrogates(configs[0], surrogates)
    key = shared_search(configs[0], surrogates)
    for c in configs[1:]:
        if shared_search(c, surrogates) != key:
            raise ValueError(f"runs {configs[0]} and {c} do not share one search")
    choice = _runner(key.method)(key, surrogates, space, trace=trace)
    records = [make_records(c, space, with_eval_surrogate(choice, c, surrogates), [c.loss], t0)[0] for c in configs]
    wall = time.perf_counter() - t0
    for rec in records:
        rec["wall_s"] = wall / len(records)
    if trace:
        records[0]["_trace"] = choice.trace
    return records


def run_search_losses(config: SearchConfig, losses, surrogates: dict | None = None, trace: bool = False) -> list[dict]:
    """One search, judged at each loss rate of ``losses``: one record per rate (``config.loss`` is
    ignored)."""
    losses = [float(x) for x in losses]
    if not losses:
        raise ValueError("no evaluation loss rate given")
    return run_search_group([config.with_(loss=loss) for loss in losses], surrogates, trace=trace)


def run_search(config: SearchConfig, surrogates: dict | None = None, trace: bool = False) -> dict:
    """Run one search and return its result record (one flat dict; see ``make_record``).

    ``surrogates``: {"dropout": Surrogate, "no_dropout": Surrogate}; None loads the shipped
    defaults. With ``trace=True`` the record holds a ``_trace`` dict of per-step arrays.
    """
    return run_search_group([config], surrogates, trace=trace)[0]


__all__ = ["DEFAULT_STEPS", "STEPS_PER_EPOCH", "get_method", "method_names", "register_method", "run_search",
           "run_search_group", "run_search_losses", "shared_search", "unregister_method"]
