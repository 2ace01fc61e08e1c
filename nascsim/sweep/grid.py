"""Experiment grids: value syntax, axes over :class:`~nascsim.config.SearchConfig` fields, cells.

A grid gives every ``SearchConfig`` field a tuple of values; fields with more than one value are
the sweep's axes. Its cells are the Cartesian product, in a fixed order that does not depend on
how the command line was written::

    >>> g = Grid.build(threshold_ms="10:20:5", loss="0,0.5", method="nasc,hwnas", seed=range(2))
    >>> len(g), g.axes
    (24, ('seed', 'threshold_ms', 'loss', 'method'))
    >>> [c.threshold_ms for c in g.cells()][:6]
    [10.0, 10.0, 10.0, 10.0, 15.0, 15.0]

Value syntax (:func:`parse_values`): ``start:stop:step`` (inclusive of ``stop`` when it falls on
the grid, computed in decimal so ``0:0.5:0.1`` gives exactly 0.0, 0.1, ..., 0.5), comma lists
(whose items may themselves be ranges) and single values. ``none`` stands for ``None`` in optional
fields; ``loss_set`` values are sets of rates written ``0/0.1/0.2`` (or one range per set).

Pairing: the seed is a field like any other and the method is the innermost axis, so every
(threshold, loss, seed, other axes) cell holds one run per method with the same seed, hence the
same random stream: comparisons between methods are paired.
"""

from __future__ import annotations

import decimal
import itertools
import math
import numbers
import typing
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Iterator

from nascsim.config import SearchConfig
from nascsim.core.schedule import DEFAULT_STEPS
from nascsim.validate import check_field

MAX_RANGE_VALUES = 100_000  # values of one field (a range, a list, or --seeds)
MAX_RUNS = 100_000  # runs of a sweep without --force (the default sweep has 3,150)
MAX_RUNS_FORCED = 2_000_000  # runs one sweep can hold in memory at all, --force or not
MAX_EXPONENT = 300  # numbers in grid text lie within 1e-300 .. 1e300 in magnitude (or are 0)
MAX_DIGITS = 40  # significant digits of one number in grid text
# exact decimal arithmetic for ranges: wide enough for any two numbers admitted above
_EXACT = decimal.Context(prec=2 * MAX_EXPONENT + 2 * MAX_DIGITS + 10, Emax=10 * MAX_EXPONENT,
                         Emin=-10 * MAX_EXPONENT, traps=[decimal.Overflow, decimal.InvalidOperation,
                                                         decimal.DivisionByZero, decimal.Inexact])

# Cell order: seed outermost (a sweep stopped early covers the whole grid at fewer seeds), then
# the remaining fields in SearchConfig order, then threshold, loss, and method innermost (pairs).
_INNER = ("threshold_ms", "loss", "method")
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SearchConfig))
CELL_ORDER: tuple[str, ...] = ("seed",) + tuple(n for n in FIELD_NAMES if n not in _INNER + ("seed",)) + _INNER


def _kinds() -> dict[str, str]:
    """Field name -> one of ``str``, ``float``, ``int``, ``bool``, ``str?``, ``int?``, ``floats``."""
    hints = typing.get_type_hints(SearchConfig)
    table = {str: "str", float: "float", int: "int", bool: "bool", str | None: "str?", int | None: "int?",
             tuple[float, ...]: "floats"}
    out = {}
    for name in FIELD_NAMES:
        if hints[name] not in table:
            raise TypeError(f"SearchConfig.{name} has a type the sweep cannot parse: {hints[name]}")
        out[name] = table[hints[name]]
    return out


FIELD_KINDS: dict[str, str] = _kinds()


def _decimal(text: str, whole: str) -> Decimal:
    """A finite number of at most :data:`MAX_DIGITS` digits within 1e-300 .. 1e300 (or 0)."""
    t = text.strip()
    if len(t) > 2 * MAX_DIGITS:
        raise ValueError(f"number {t[:20]}... in {_clip(whole)!r} is longer than {2 * MAX_DIGITS} characters")
    try:
        d = Decimal(t)
    except InvalidOperation:
        raise ValueError(f"not a number: {t!r} in {_clip(whole)!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite number: {t!r} in {_clip(whole)!r}")
    if d != 0 and not -MAX_EXPONENT <= d.adjusted() <= MAX_EXPONENT:
        raise ValueError(f"number {t!r} in {_clip(whole)!r} is out of range (magnitude 1e-{MAX_EXPONENT} to 1e{MAX_EXPONENT})")
    if len(d.as_tuple().digits) > MAX_DIGITS:
        raise ValueError(f"number {t!r} in {_clip(whole)!r} has more than {MAX_DIGITS} significant digits")
    return d


def _clip(text: str) -> str:
    text = str(text)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_range(text: str) -> list[Decimal]:
    """``start:stop:step`` -> ``[start, start+step, ...]`` up to and including ``stop`` when it lies
    on the grid, computed exactly in decimal (no float drift). ``ValueError`` naming the text when
    it is malformed, the step is not positive or ``stop < start``."""
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError(f"malformed range {_clip(text)!r}: expected start:stop:step")
    start, stop, step = (_decimal(p, text) for p in parts)
    if step <= 0:
        raise ValueError(f"range {_clip(text)!r} needs a positive step, got {parts[2].strip()}")
    if stop < start:
        raise ValueError(f"range {_clip(text)!r} is empty: stop {parts[1].strip()} is below start {parts[0].strip()}")
    # exact: the context holds every digit of start, stop, step and their sums (Inexact traps)
    with decimal.localcontext(_EXACT):
        n = int((stop - start) // step) + 1
        if n > MAX_RANGE_VALUES:
            raise ValueError(f"range {_clip(text)!r} has {count_text(n)} values, more than {MAX_RANGE_VALUES:,}")
        return [start + i * step for i in range(n)]


def count_text(n: int) -> str:
    """``12,600`` or, past 1e15, ``about 10^30``."""
    return f"{n:,}" if n < 10**15 else f"about 10^{len(str(n)) - 1}"


def parse_numbers(text: str) -> list[Decimal]:
    """Comma list of numbers and ranges, in the order written, duplicates dropped."""
    out: list[Decimal] = []
    items = [t.strip() for t in str(text).split(",")]
    if not any(items):
        raise ValueError(f"no values in {text!r}")
    for item in items:
        if item == "":
            raise ValueError(f"empty item in list {text!r}")
        out.extend(parse_range(item) if ":" in item else [_decimal(item, text)])
    return _unique(out)


def _unique(values: Iterable) -> list:
    seen, out = set(), []
    for v in values:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def _to_int(d: Decimal, name: str) -> int:
    if d != d.to_integral_value():
        raise ValueError(f"{name} must be an integer, got {d}")
    return int(d)


_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def _scalar(kind: str, item: Any, name: str) -> Any:
    """One value of a field from text (or from an already typed value, e.g. read from TOML)."""
    if kind.endswith("?") and (item is None or (isinstance(item, str) and item.strip().lower() == "none")):
        return None
    base = kind.rstrip("?")
    if base == "str":
        if not isinstance(item, str) or item.strip() == "":
            raise ValueError(f"{name}: expected a name, got {_clip(repr(item))}")
        return item.strip()
    if base == "bool":
        if isinstance(item, bool):
            return item
        t = str(item).strip().lower()
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
        raise ValueError(f"{name}: expected true or false, got {_clip(repr(item))}")
    if isinstance(item, numbers.Integral) and not isinstance(item, bool):
        item = int(item)  # numpy integers too
    elif isinstance(item, numbers.Real) and not isinstance(item, (float, bool)):
        item = float(item)  # numpy float32 and the like
    if isinstance(item, bool) or not isinstance(item, (int, float, str, Decimal)):
        raise ValueError(f"{name} must be {'an integer' if base == 'int' else 'a number'}, got {_clip(repr(item))}")
    if base == "int":
        if isinstance(item, int):
            return item
        if isinstance(item, float):  # a float is not an integer, however round (2.0 included)
            raise ValueError(f"{name} must be an integer, got {item!r}")
        return _to_int(_decimal(str(item), name), name)
    # float: exact decimal -> nearest float, so "0.3" and 0.1 * 3 (in decimal) agree
    if isinstance(item, float):
        return item + 0.0  # -0.0 -> 0.0: one key per value (SearchConfig does the same)
    if isinstance(item, int):
        try:
            return float(item)
        except OverflowError:
            raise ValueError(f"{name}: {count_text(item)} is out of the floating-point range") from None
    text = str(item).strip()
    if text.lower() in ("inf", "+inf", "infinity"):
        return float("inf")
    return float(_decimal(text, name)) + 0.0


class _Capped(list):
    """A list that refuses to grow past :data:`MAX_RANGE_VALUES` (one field's values)."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def _check(self, more: int) -> None:
        if len(self) + more > MAX_RANGE_VALUES:
            raise ValueError(f"{self.name}: more than {MAX_RANGE_VALUES:,} values")

    def append(self, v) -> None:
        self._check(1)
        super().append(v)

    def extend(self, vs) -> None:
        vs = list(vs) if not isinstance(vs, (list, tuple, range)) else vs
        self._check(len(vs))
        super().extend(vs)


def parse_values(name: str, text: Any) -> tuple:
    """The values of field ``name`` given as text (single value, comma list, ranges), or as a list
    of already typed values. Returns a non-empty tuple of typed values in the order given, without
    duplicates; ``ValueError`` naming the field and the bad value otherwise (also when the field
    would get more than :data:`MAX_RANGE_VALUES` values)."""
    values = _parse_values(name, text)
    if not values:
        raise ValueError(f"{name}: no values")
    return values


def _parse_values(name: str, text: Any) -> tuple:
    if name not in FIELD_KINDS:
        raise ValueError(f"unknown search option {name!r}; options: {', '.join(FIELD_NAMES)}")
    kind = FIELD_KINDS[name]
    if kind == "floats":
        return tuple(_unique(_loss_sets(text, name)))
    values = _Capped(name)
    if text is None or isinstance(text, (bool, int, float, Decimal)):
        text = [text]  # one typed value
    if isinstance(text, (list, tuple, range)):
        if len(text) > MAX_RANGE_VALUES:
            raise ValueError(f"{name}: {len(text):,} values, more than {MAX_RANGE_VALUES:,}")
        values.extend(_scalar(kind, v, name) for v in text)
        return tuple(_unique(values))
    if not isinstance(text, str):
        raise ValueError(f"{name}: expected text or a list of values, got {_clip(repr(text))}")
    if kind.rstrip("?") in ("int", "float"):
        for item in (t.strip() for t in text.split(",")):
            if kind.endswith("?") and item.lower() == "none":
                values.append(None)
            elif item == "":
                raise ValueError(f"{name}: empty item in list {_clip(text)!r}")
            elif ":" in item:
                values.extend(_scalar(kind, d, name) for d in parse_range(item))
            elif item.lower() in ("inf", "+inf", "infinity"):
                values.append(_scalar(kind, item, name))
            else:
                values.append(_scalar(kind, _decimal(item, f"{name}={text}"), name))
        return tuple(_unique(values))
    values.extend(_scalar(kind, t, name) for t in text.split(","))
    return tuple(_unique(values))


def _loss_sets(text: Any, name: str) -> list[tuple[float, ...]]:
    """``0/0.1/0.2,0/0.5`` -> two sets; an item ``0:0.5:0.1`` is one set (a range)."""
    if isinstance(text, (list, tuple)):
        if len(text) > MAX_RANGE_VALUES:
            raise ValueError(f"{name}: {len(text):,} values, more than {MAX_RANGE_VALUES:,}")
        if text and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in text):
            return [tuple(_scalar("float", v, name) for v in text)]  # one set given as numbers
        out = _Capped(name)
        for item in text:
            out.extend(_loss_sets(item, name))
        return list(out)
    if not isinstance(text, str):
        raise ValueError(f"{name}: expected rates such as 0/0.1/0.2, got {_clip(repr(text))}")
    out = _Capped(name)
    for item in (t.strip() for t in text.split(",")):
        if item == "":
            raise ValueError(f"{name}: empty item in {_clip(text)!r}")
        if ":" in item:
            rates = parse_range(item)
        else:
            rates = [_decimal(r, f"{name}={text}") for r in item.split("/")]
        out.append(tuple(float(r) for r in _unique(rates)))
    return list(out)


def check_value(name: str, value: Any) -> None:
    """``ValueError`` naming ``value`` when it is outside the domain of field ``name`` (the
    rule of :mod:`nascsim.validate`, shared with the search and the API)."""
    check_field(name, value)


def check_size(n_runs: int, sizes: str = "", force: bool = False) -> None:
    """Refuse a sweep of more than :data:`MAX_RUNS` runs unless ``force``, and of more than
    :data:`MAX_RUNS_FORCED` in any case, saying how big it is (``sizes``: its axes, e.g.
    ``7 threshold_ms x 6 loss x 3 method x 25 seed``)."""
    how = f" ({sizes})" if sizes else ""
    if n_runs > MAX_RUNS_FORCED:
        raise ValueError(f"the sweep has {count_text(n_runs)} runs{how}, more than the {MAX_RUNS_FORCED:,} one sweep "
                         "can hold; split it into several sweeps into the same --out")
    if n_runs > MAX_RUNS and not force:
        raise ValueError(f"the sweep has {count_text(n_runs)} runs{how}, more than {MAX_RUNS:,}; "
                         "pass --force to run it anyway")


def _check_devices(values: dict[str, tuple]) -> None:
    """Head and tail devices against every latency table of the grid (devices are named by the
    table: the shipped HW-NAS-Bench one, or a ``tables`` file)."""
    from nascsim.hw.devices import check_device
    from nascsim.hw.tables import load_tables

    for path in values["tables"]:
        tables = load_tables(path)
        for name in ("head", "tail"):
            for device in values[name]:
                try:
                    check_device(device, tables)
                except ValueError as exc:
                    raise ValueError(f"unknown {name} device {device!r}; expected one of {', '.join(tables.devices)}"
                                     + (f" (devices of {path})" if path else "")) from exc


@dataclass(frozen=True)
class Grid:
    """Values of every SearchConfig field (a tuple each, in the order given); cells in
    :data:`CELL_ORDER`."""

    values: tuple[tuple[str, tuple], ...]

    @classmethod
    def build(cls, **given: Any) -> "Grid":
        """Fields not given take SearchConfig's defaults; each given value goes through
        :func:`parse_values` and :func:`check_value` (``ValueError`` on the first bad one), and
        the grid must hold at most :data:`MAX_RUNS_FORCED` runs."""
        default = SearchConfig()
        values = {}
        for name in FIELD_NAMES:
            vals = parse_values(name, given.pop(name)) if name in given else (getattr(default, name),)
            if len(vals) == 0:
                raise ValueError(f"{name}: no values")
            for v in vals:
                check_value(name, v)
            values[name] = vals
        if given:
            raise ValueError(f"unknown search option(s): {', '.join(sorted(given))}")
        grid = cls(tuple((n, values[n]) for n in FIELD_NAMES))
        check_size(grid.n_runs, grid.sizes(), force=True)  # what no sweep can hold, whoever asks
        _check_devices(values)
        return grid

    @property
    def as_dict(self) -> dict[str, tuple]:
        return dict(self.values)

    @property
    def axes(self) -> tuple[str, ...]:
        """Fields with more than one value, in cell order."""
        d = self.as_dict
        return tuple(n for n in CELL_ORDER if len(d[n]) > 1)

    @property
    def n_runs(self) -> int:
        """Number of cells (any size: ``len()`` stops at 2**63)."""
        return math.prod(len(v) for _, v in self.values)

    def __len__(self) -> int:
        return self.n_runs

    def samples(self) -> int:
        """ASNG samples the grid's searches judge (steps x λ summed over searches): runs at every
        loss rate share one search, and so do ``hwnas`` and ``hwnas-dropout``
        (:func:`nascsim.methods.shared_search`); an estimate of the work, for
        :func:`nascsim.limits.check_work`."""
        d = self.as_dict
        per_search = sum((s if s is not None else DEFAULT_STEPS) * lam for s in d["steps"] for lam in d["lam"])
        methods = {"hwnas" if m == "hwnas-dropout" else m for m in d["method"]}
        rest = math.prod(len(v) for n, v in self.values if n not in ("loss", "method", "steps", "lam"))
        return per_search * len(methods) * rest

    def sizes(self) -> str:
        """The axes and their sizes, e.g. ``7 threshold_ms x 6 loss x 3 method x 25 seed``."""
        d = self.as_dict
        return " x ".join(f"{len(d[n])} {n}" for n in CELL_ORDER if len(d[n]) > 1) or "1 run"

    def cells(self) -> Iterator[SearchConfig]:
        """Every run's config, seed outermost and method innermost (deterministic)."""
        d = self.as_dict
        for combo in itertools.product(*(d[n] for n in CELL_ORDER)):
            yield SearchConfig(**dict(zip(CELL_ORDER, combo)))

    def to_toml_dict(self) -> dict[str, list]:
        """Field -> list of values, ``None`` written as ``"none"`` and loss sets as lists (TOML)."""
        out = {}
        for name, vals in self.values:
            out[name] = [("none" if v is None else list(v) if isinstance(v, tuple) else v) for v in vals]
        return out

    @classmethod
    def from_toml_dict(cls, d: dict[str, list]) -> "Grid":
        """Inverse of :meth:`to_toml_dict`."""
        given = {}
        for name, vals in d.items():
            if not isinstance(vals, list):
                raise ValueError(f"grid field {name!r} must be a list of values, got {_clip(repr(vals))}")
            if name in FIELD_KINDS and FIELD_KINDS[name] == "floats":
                if not all(isinstance(v, list) for v in vals):
                    raise ValueError(f"grid field {name!r} must be a list of lists of rates, got {_clip(repr(vals))}")
                given[name] = [tuple(v) for v in vals]
            else:
                given[name] = vals
        return cls.build(**given)
