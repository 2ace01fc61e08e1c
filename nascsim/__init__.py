"""nascsim: a benchmark-table simulator for NASC (neural architecture search for split computing).

The search (ASNG over architecture and split point) runs over HW-NAS-Bench latency tables, FLOP
counts and an accuracy surrogate fitted from real supernet evaluations. See README.md and docs/.

The public API (imported on first use, so ``import nascsim`` stays light):

- :func:`query` -- latency breakdown, payload, FLOPs, expected loss / accuracy / l_SC and noise
  of one or many (arch, split, p);
- :func:`search` -- one search, its result record;
- :func:`sweep` -- a grid of searches as a polars DataFrame, resumable in a result folder (the
  ``nascsim.sweep`` subpackage, callable: ``nascsim.sweep(...)`` runs :func:`nascsim.api.sweep`);
- :func:`register_method` -- add a search method usable by all of the above and the CLI;
- :class:`Problem` -- NASC's problem as a black box for other optimizers (sample, evaluate with
  the engine's noise, a budget, the record of a final choice; :mod:`nascsim.problem`);
- :func:`load` -- a results handle (runs, summary, comparison, Pareto front, figures) of a sweep or
  bench folder or a frame of runs (:mod:`nascsim.results`);
- :func:`query_devices` -- :func:`query` for every (head, tail) device pair of the table at once;
- :class:`SearchConfig`, :func:`get_space`, :func:`parse_arch`, :func:`load_surrogate`,
  :func:`default_surrogates`, :func:`load_tables`.
"""

__version__ = "0.1.0"

_LAZY = {
    "query": ("nascsim.api", "query"),
    "search": ("nascsim.api", "search"),
    "query_devices": ("nascsim.api", "query_devices"),
    "Problem": ("nascsim.problem", "Problem"),
    "load": ("nascsim.results", "load"),
    "sweep": ("nascsim.sweep", None),  # the subpackage, callable as nascsim.api.sweep
    "register_method": ("nascsim.methods.registry", "register_method"),
    "unregister_method": ("nascsim.methods.registry", "unregister_method"),
    "method_names": ("nascsim.methods.registry", "method_names"),
    "SearchConfig": ("nascsim.config", "SearchConfig"),
    "get_space": ("nascsim.space", "get_space"),
    "parse_arch": ("nascsim.space", "parse_arch"),
    "load_surrogate": ("nascsim.surrogate.model", "load_surrogate"),
    "default_surrogates": ("nascsim.surrogate.model", "default_surrogates"),
    "load_tables": ("nascsim.hw.tables", "load_tables"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = importlib.import_module(module) if attr is None else getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nascsim' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
