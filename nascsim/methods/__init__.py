"""Search methods: NASC and its baselines, each a short module that builds its objective and calls
the engine (:mod:`nascsim.engine`). :func:`run_search` is what the CLI and the sweep call."""

from __future__ import annotations

from nascsim.config import SearchConfig
from nascsim.methods.common import DEFAULT_STEPS, STEPS_PER_EPOCH, resolve_surrogates, validate


def run_search(config: SearchConfig, surrogates: dict | None = None, trace: bool = False) -> dict:
    """Run one search and return its result record (one flat dict; see ``make_record``).

    ``surrogates``: {"dropout": Surrogate, "no_dropout": Surrogate}; None loads the shipped
    defaults. With ``trace=True`` the record holds a ``_trace`` dict of per-step arrays.
    """
    from nascsim.methods import hwnas, nasc, random_search

    validate(config)
    surrogates = resolve_surrogates(config, surrogates)
    runner = {"nasc": nasc.run, "hwnas": hwnas.run, "hwnas-dropout": hwnas.run, "random": random_search.run}[config.method]
    if config.method == "random":
        return runner(config, surrogates)
    return runner(config, surrogates, trace=trace)


__all__ = ["DEFAULT_STEPS", "STEPS_PER_EPOCH", "run_search"]
