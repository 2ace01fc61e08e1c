"""One rule per :class:`~nascsim.config.SearchConfig` field: its type and a finite range.

Every entry point checks a search option here and nowhere else: ``nascsim search`` (through
:func:`nascsim.methods.common.validate`), the sweep's grid (:func:`nascsim.sweep.grid.check_value`),
``sweep.toml`` replays, result chunks read back, and the Python API. A value outside its rule
raises ``ValueError`` naming the field, the domain and the value, in one line::

    >>> check_field("steps", 10**30)
    Traceback (most recent call last):
    ...
    ValueError: steps must be an integer in [1, 10000000] or none (ASNG updates per search), got 1000000000000000000000000000000

Ranges are finite on purpose. Each bound says what lies beyond it: a value NaN or infinity turns
into a NaN objective or a silent no-op search, an integer past 2**63 wraps in numba, and a huge
λ or step count asks for more memory or time than any machine has. The ASNG bounds (α, δ0,
Δ_max) keep its step β = δ0 / (Δ sqrt(N)) below 2, where the update of s turns NaN (docs/input-contract.md: on the shipped surrogates, α = 0.5, δ0 = 100 and Δ_max = 1e-9 each end a search
of the paper's length with Δ = NaN).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from nascsim.core.schedule import DEFAULT_STEPS, THETA_IMAGES  # a minibatch cannot exceed the images kept for θ

MAX_STEPS = 10_000_000  # 284 x the paper's 35,190
MAX_LAM = 1024
MAX_SAMPLES = 100_000_000  # steps x λ judged per search: 1,400 x the paper's 70,380
MAX_SEED = 2**63 - 1  # stored as int64
MAX_LOSS_SET = 64
NOISE_MODES = ("shared", "independent", "none")


MAX_PATH = 4096
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")


def _method(name: str) -> None:
    """A built-in or registered method (:func:`nascsim.config.check_method`)."""
    from nascsim.config import check_method

    check_method(name)


def _device(name: str) -> None:
    """A device name (1-64 letters, digits, ``_.+-``); whether the latency table in use has it is
    checked with the table (:func:`nascsim.hw.latency.check_devices`)."""
    if not _NAME.match(name):
        raise ValueError(f"device name {_show(name)} is not 1-64 letters, digits or _.+- characters")


def _path(text: str) -> None:
    if not text.strip() or len(text) > MAX_PATH or "\x00" in text:
        raise ValueError(f"tables path {_show(text)} is not a file path")


def _spaces() -> tuple[str, ...]:
    from nascsim.space import SPACES

    return tuple(SPACES)


def _sources() -> tuple[str, ...]:
    return ("measured", "flops")


@dataclass(frozen=True)
class Rule:
    """The domain of one field. ``kind``: ``str``, ``int``, ``float``, ``bool``, ``floats`` (a tuple
    of rates), with a trailing ``?`` when ``None`` is allowed. Numbers lie in [low, high] (an end
    is excluded when ``*_open``); ``high = inf`` admits infinity itself. ``choices`` lists the
    names a ``str`` field takes; ``check`` (for a ``str`` field without choices) raises
    ``ValueError`` for a bad name, e.g. a method no registry knows."""

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: Callable[[], tuple[str, ...]] | None = None
    unit: str = ""
    check: Callable[[str], None] | None = None

    def domain(self) -> str:
        base = self.kind.rstrip("?")
        if self.choices is not None:
            text = "one of " + ", ".join(self.choices())
        elif self.check is not None:
            text = "a file path" if self.check is _path else "a name"
        elif base == "bool":
            text = "true or false"
        else:
            noun = {"int": "an integer", "float": "a number", "floats": "a list of rates"}[base]
            lo = "(" if self.low_open else "["
            hi = ")" if self.high_open or self.high == math.inf else "]"
            text = f"{noun} in {lo}{_num(self.low)}, {_num(self.high)}{hi}"
            if base == "float" and self.high == math.inf:
                text += " or inf"
        if self.kind.endswith("?"):
            text += " or none"
        return text + (f" ({self.unit})" if self.unit else "")


def _num(x: float | None) -> str:
    if x is None:
        return "?"
    if x == math.inf:
        return "inf"
    if isinstance(x, int):
        return str(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e16 else f"{x:g}"


RULES: dict[str, Rule] = {
    "method": Rule("str", check=_method),
    "threshold_ms": Rule("float", 0.0, 1e6, low_open=True, unit="latency threshold T_th, ms"),
    "loss": Rule("float", 0.0, 1.0, high_open=True, unit="packet-loss rate p"),
    "seed": Rule("int", 0, MAX_SEED),
    "space": Rule("str", choices=_spaces),
    "head": Rule("str", check=_device),
    "tail": Rule("str", check=_device),
    "bits": Rule("float", 1.0, 64.0, unit="bits q per payload element"),
    "bandwidth": Rule("float", 1.0, 1e12, unit="link bandwidth r, bit/s"),
    "source": Rule("str?", choices=_sources),
    "steps": Rule("int?", 1, MAX_STEPS, unit="ASNG updates per search"),
    "lam": Rule("int", 2, MAX_LAM, unit="samples per ASNG step"),
    "alpha": Rule("float", 1.0, 100.0, unit="ASNG alpha"),
    "delta0": Rule("float", 0.0, 10.0, low_open=True, unit="ASNG initial delta"),
    "Delta_max": Rule("float", 1.0, math.inf, unit="ASNG Delta_max"),
    "eps_loss": Rule("float", 0.0, 1e6, unit="weight of l_SC in eq. 4"),
    "eps_lat": Rule("float", 0.0, 1e6, unit="weight of the latency penalty in eq. 4"),
    "loss_set": Rule("floats", 0.0, 1.0, high_open=True, unit=f"1 to {MAX_LOSS_SET} dropout rates P"),
    "split_search": Rule("bool"),
    "fixed_split": Rule("int?", 0, 22, unit="split point"),
    "tables": Rule("str?", check=_path, unit="latency-table file; none: the shipped table"),
    # the observation noise model of the search (nascsim.surrogate.noise)
    "noise": Rule("str", choices=lambda: NOISE_MODES),
    "minibatch": Rule("int", 1, THETA_IMAGES, unit="images per ASNG minibatch"),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _in_range(rule: Rule, x: int | float) -> bool:
    """Whether ``x`` lies in the rule's range (exact for ints of any size: no float conversion)."""
    if isinstance(x, float) and math.isnan(x):
        return False
    if x == math.inf:
        return rule.high == math.inf
    if x < rule.low or x > rule.high:
        return False
    if rule.low_open and x == rule.low:
        return False
    return not ((rule.high_open or rule.high == math.inf) and x == rule.high)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def check_field(name: str, value: Any) -> None:
    """``ValueError`` naming ``name``, its domain and ``value`` when ``value`` is outside the rule
    of field ``name`` (see :data:`RULES`)."""
    if name not in RULES:
        raise ValueError(f"unknown search option {name!r}; options: {', '.join(RULES)}")
    rule = RULES[name]
    if value is None and rule.kind.endswith("?"):
        return
    base = rule.kind.rstrip("?")
    ok: bool
    if base == "str" and rule.check is not None:
        ok = isinstance(value, str)
        if ok:
            rule.check(value)
    elif base == "str":
        ok = isinstance(value, str) and value in rule.choices()
        if not ok and isinstance(value, str):
            raise ValueError(f"unknown {name} {_show(value)}; expected {rule.domain()}")
    elif base == "bool":
        ok = isinstance(value, bool)
    elif base == "int":
        ok = _is_int(value) and _in_range(rule, value)
    elif base == "float":
        ok = _is_number(value) and _in_range(rule, value)
    else:  # floats: a non-empty tuple of rates
        ok = (isinstance(value, (tuple, list)) and 1 <= len(value) <= MAX_LOSS_SET
              and all(_is_number(p) and _in_range(rule, p) for p in value))
    if not ok:
        raise ValueError(f"{name} must be {rule.domain()}, got {_show(value)}")


def check_config(config) -> None:
    """Every field of ``config`` through its rule, then the rules that tie fields together.
    ``ValueError`` naming the first bad value."""
    from dataclasses import fields

    for f in fields(config):
        check_field(f.name, getattr(config, f.name))
    steps = config.steps if config.steps is not None else DEFAULT_STEPS
    if steps * config.lam > MAX_SAMPLES:
        raise ValueError(f"steps x lam = {steps} x {config.lam} samples per search is more than {MAX_SAMPLES:,}")
    if config.eps_loss == 0 and config.eps_lat == 0:
        raise ValueError("eps_loss and eps_lat are both 0: the objective (eq. 4) would be constant")
    if not config.split_search and config.fixed_split is None:
        raise ValueError("split_search false (--no-split-search) needs a fixed split (fixed_split, --fixed-split K)")
