"""Search methods by name: NASC, its baselines, and a user's own methods.

A *method* is a function ::

    run(config: SearchConfig, surrogates: dict, space: Space, trace: bool = False) -> Choice

that gets an already validated config, the surrogates of both roles (``{"dropout": s,
"no_dropout": s}``) and the search space, and returns a :class:`~nascsim.methods.common.Choice`
(the final (arch, split), the surrogates that searched and that judge the final model, the latency
model, the number of steps and any extra record fields). Everything after that -- the latency
breakdown, the expected accuracy at each evaluation loss rate, the result record -- is the same
for every method, so a registered method is run by ``nascsim search``, ``nascsim sweep``,
:func:`nascsim.search` and :func:`nascsim.sweep` exactly like the built-in ones.

Two ways to add one:

- in Python, :func:`register_method` (``nascsim.register_method`` is the same function)::

      >>> from nascsim.methods import nasc
      >>> def nasc_margin(config, surrogates, space, trace=False):
      ...     # NASC searching against a threshold 10% tighter than the one it is judged at
      ...     return nasc.run(config.with_(threshold_ms=0.9 * config.threshold_ms), surrogates, space, trace)
      >>> spec = register_method("nasc-margin", nasc_margin, roles=("dropout",), description="NASC, 10% margin")
      >>> "nasc-margin" in method_names()
      True
      >>> unregister_method("nasc-margin")

- in an installed package, an entry point in the group ``nascsim.methods`` (``pyproject.toml``:
  ``[project.entry-points."nascsim.methods"] nasc-margin = "mypkg.methods:nasc_margin"``); it is
  found by name, in every process (sweep workers included), without importing it before use.

A method registered with :func:`register_method` lives in the registering process; the sweep
functions of :mod:`nascsim.api` hand such methods to their worker processes themselves
(:func:`portable_runs`), by reference, so the function must be importable (defined at module
level, not in ``__main__`` of an interactive session, when ``jobs > 1``).
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from typing import Callable

ENTRY_POINT_GROUP = "nascsim.methods"
ROLES = ("dropout", "no_dropout")


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its name, ``run`` (a callable, or ``"module:attr"`` imported on first
    use), the surrogate roles its result depends on, a one-line description, and where it came
    from (``builtin``, ``registered`` or ``entry point``)."""

    name: str
    target: Callable | str
    roles: tuple[str, ...] = ROLES
    description: str = ""
    origin: str = "registered"

    @property
    def run(self) -> Callable:
        if callable(self.target):
            return self.target
        module, _, attr = self.target.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise ValueError(f"method {self.name!r}: {self.target} is not callable")
        return obj


_BUILTIN = (
    MethodSpec("nasc", "nascsim.methods.nasc:run", ("dropout",),
               "ASNG over (architecture, split) with eq. 4 (the paper's method)", "builtin"),
    MethodSpec("hwnas", "nascsim.methods.hwnas:run", ("no_dropout",),
               "ASNG over the architecture, device-only latency, p = 0; split by eq. 4a; re-trained without dropout",
               "builtin"),
    MethodSpec("hwnas-dropout", "nascsim.methods.hwnas:run", ("dropout", "no_dropout"),
               "as hwnas, the final model re-trained with dropout at the split", "builtin"),
    MethodSpec("random", "nascsim.methods.random_search:run", ("dropout",),
               "best of steps x λ uniform (architecture, split) samples by observed eq. 4a", "builtin"),
    MethodSpec("optuna-tpe", "nascsim.optimizers.optuna_sampler:run_tpe", ("dropout",),
               "Optuna's TPE sampler on NASC's problem, steps x λ trials (needs optuna)", "builtin"),
    MethodSpec("optuna-random", "nascsim.optimizers.optuna_sampler:run_random", ("dropout",),
               "Optuna's random sampler on NASC's problem, steps x λ trials (needs optuna)", "builtin"),
)
BUILTIN_METHODS: tuple[str, ...] = tuple(m.name for m in _BUILTIN)

_REGISTRY: dict[str, MethodSpec] = {m.name: m for m in _BUILTIN}
_ENTRY_POINTS_LOADED = False


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or any(c in name for c in ", \t\n=/"):
        raise ValueError(f"method name must be a non-empty word without commas, spaces, '=' or '/', got {name!r}")


def register_method(name: str, run: Callable | str, *, roles: tuple[str, ...] = ROLES, description: str = "",
                    replace: bool = False) -> MethodSpec:
    """Register ``run`` (a callable, or ``"module:function"``) as search method ``name``.

    ``roles``: the surrogate roles ("dropout", "no_dropout") the method's result depends on
    (used to warn when both roles hold the same surrogate). A built-in name cannot be replaced;
    another registered name only with ``replace=True``. Returns the :class:`MethodSpec`.
    """
    _check_name(name)
    if not (callable(run) or (isinstance(run, str) and ":" in run)):
        raise ValueError(f"method {name!r}: run must be a callable or 'module:function', got {run!r}")
    roles = tuple(roles)
    if not roles or any(r not in ROLES for r in roles):
        raise ValueError(f"method {name!r}: roles must be drawn from {', '.join(ROLES)}, got {roles!r}")
    _load_entry_points()
    old = _REGISTRY.get(name)
    if old is not None and (old.origin == "builtin" or not replace):
        what = "a built-in method" if old.origin == "builtin" else "already registered (pass replace=True)"
        raise ValueError(f"method {name!r} is {what}")
    spec = MethodSpec(name, run, roles, description, "registered")
    _REGISTRY[name] = spec
    return spec


def unregister_method(name: str) -> None:
    """Remove a method registered with :func:`register_method` (built-ins stay)."""
    spec = _REGISTRY.get(name)
    if spec is None:
        raise ValueError(f"unknown method {name!r}")
    if spec.origin == "builtin":
        raise ValueError(f"method {name!r} is a built-in method")
    del _REGISTRY[name]


def _load_entry_points() -> None:
    """Add the methods of the ``nascsim.methods`` entry-point group (once per process; nothing is
    imported until a method is run)."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            warnings.warn(f"entry point {ep.value!r} of {ENTRY_POINT_GROUP!r} reuses the method name "
                          f"{ep.name!r}; ignored", stacklevel=3)
            continue
        try:
            _check_name(ep.name)
        except ValueError as exc:
            warnings.warn(f"entry point of {ENTRY_POINT_GROUP!r} ignored: {exc}", stacklevel=3)
            continue
        _REGISTRY[ep.name] = MethodSpec(ep.name, ep.value, ROLES, f"entry point {ep.value}", "entry point")


def method_names() -> tuple[str, ...]:
    """Every method name: the built-ins first, then registered and entry-point methods."""
    _load_entry_points()
    return tuple(_REGISTRY)


def get_method(name: str) -> MethodSpec:
    """The :class:`MethodSpec` called ``name`` (``ValueError`` naming it and the known ones)."""
    if name not in _REGISTRY:
        _load_entry_points()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(method_names())}") from None


def portable_runs(names) -> dict[str, MethodSpec]:
    """The specs of the methods in ``names`` that another process would not find by itself
    (registered in this process with :func:`register_method`), to hand to sweep workers."""
    out = {}
    for name in dict.fromkeys(names):
        spec = get_method(name)
        if spec.origin == "registered":
            out[name] = spec
    return out


def ensure_registered(specs: dict[str, MethodSpec]) -> None:
    """In a worker: register the specs that :func:`portable_runs` handed over (idempotent)."""
    for name, spec in specs.items():
        if _REGISTRY.get(name) != spec:
            _REGISTRY[name] = spec


def roles_used(names) -> set[str]:
    """The surrogate roles the methods in ``names`` depend on."""
    return {r for n in names for r in get_method(n).roles}
