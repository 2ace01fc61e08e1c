"""Search methods: NASC and its baselines, each a short module that builds its objective and calls
the engine (:mod:`nascsim.engine`). :func:`run_search` is what the CLI calls; the sweep calls
:func:`run_search_losses`, which runs one search for several evaluation loss rates. Methods are
found by name in :mod:`nascsim.methods.registry`, where a user's own methods are registered too."""

from __future__ import annotations

import time

from nascsim.config import SearchConfig
from nascsim.methods.common import DEFAULT_STEPS, STEPS_PER_EPOCH, make_records, resolve_surrogates, validate
from nascsim.methods.registry import get_method, method_names, register_method, unregister_method


def _runner(method: str):
    """The ``run`` function of a built-in or registered method (:mod:`nascsim.methods.registry`)."""
    return get_method(method).run


def run_search_losses(config: SearchConfig, losses, surrogates: dict | None = None, trace: bool = False) -> list[dict]:
    """One search, judged at each loss rate of ``losses``: one record per rate (``config.loss`` is
    ignored). The search itself never depends on the evaluation loss rate."""
    t0 = time.perf_counter()
    losses = [float(x) for x in losses]
    if not losses:
        raise ValueError("no evaluation loss rate given")
    space = [validate(config.with_(loss=loss)) for loss in losses][0]
    surrogates = resolve_surrogates(config, surrogates)
    choice = _runner(config.method)(config, surrogates, space, trace=trace)
    records = make_records(config, space, choice, losses, t0)
    if trace:
        records[0]["_trace"] = choice.trace
    return records


def run_search(config: SearchConfig, surrogates: dict | None = None, trace: bool = False) -> dict:
    """Run one search and return its result record (one flat dict; see ``make_record``).

    ``surrogates``: {"dropout": Surrogate, "no_dropout": Surrogate}; None loads the shipped
    defaults. With ``trace=True`` the record holds a ``_trace`` dict of per-step arrays.
    """
    return run_search_losses(config, [config.loss], surrogates, trace=trace)[0]


__all__ = ["DEFAULT_STEPS", "STEPS_PER_EPOCH", "get_method", "method_names", "register_method", "run_search",
           "run_search_losses", "unregister_method"]
