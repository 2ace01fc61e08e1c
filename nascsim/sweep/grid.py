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

import itertools
import math
import typing
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Iterator

from nascsim.config import SearchConfig, check_method

MAX_RANGE_VALUES = 100_000
SPACES = ("fbnet", "extended")
SOURCES = ("measured", "flops")
N_SPLITS = 23  # split points 0..22

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
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {text.strip()!r} in {whole!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite number: {text.strip()!r} in {whole!r}")
    return d


def parse_range(text: str) -> list[Decimal]:
    """``start:stop:step`` -> ``[start, start+step, ...]`` up to and including ``stop`` when it lies
    on the grid, computed exactly in decimal (no float drift). ``ValueError`` naming the text when
    it is malformed, the step is not positive or ``stop < start``."""
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError(f"malformed range {text!r}: expected start:stop:step")
    start, stop, step = (_decimal(p, text) for p in parts)
    if step <= 0:
        raise ValueError(f"range {text!r} needs a positive step, got {parts[2].strip()}")
    if stop < start:
        raise ValueError(f"range {text!r} is empty: stop {parts[1].strip()} is below start {parts[0].strip()}")
    try:
        n = int((stop - start) // step) + 1
    except InvalidOperation:
        raise ValueError(f"range {text!r} has too many values") from None
    if n > MAX_RANGE_VALUES:
        raise ValueError(f"range {text!r} has {n} values, more than {MAX_RANGE_VALUES}")
    return [start + i * step for i in range(n)]


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
            raise ValueError(f"{name}: expected a name, got {item!r}")
        return item.strip()
    if base == "bool":
        if isinstance(item, bool):
            return item
        t = str(item).strip().lower()
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
        raise ValueError(f"{name}: expected true or false, got {item!r}")
    if isinstance(item, bool):
        raise ValueError(f"{name}: expected a number, got {item!r}")
    if base == "int":
        if isinstance(item, int):
            return item
        return _to_int(_decimal(str(item), name), name)
    # float: exact decimal -> nearest float, so "0.3" and 0.1 * 3 (in decimal) agree
    if isinstance(item, float):
        return item
    if isinstance(item, int):
        return float(item)
    text = str(item).strip()
    if text.lower() in ("inf", "+inf", "infinity"):
        return float("inf")
    value = float(_decimal(text, name))
    if not math.isfinite(value):
        raise ValueError(f"{name}: {text} is out of the floating-point range")
    return value


def parse_values(name: str, text: Any) -> tuple:
    """The values of field ``name`` given as text (single value, comma list, ranges), or as a list
    of already typed values. Returns a tuple of typed values in the order given, without
    duplicates; ``ValueError`` naming the field and the bad value otherwise."""
    if name not in FIELD_KINDS:
        raise ValueError(f"unknown search option {name!r}; options: {', '.join(FIELD_NAMES)}")
    kind = FIELD_KINDS[name]
    if kind == "floats":
        return tuple(_unique(_loss_sets(text, name)))
    if isinstance(text, (list, tuple, range)):
        return tuple(_unique(_scalar(kind, v, name) for v in text))
    text = str(text)
    if kind.rstrip("?") in ("int", "float"):
        values = []
        for item in (t.strip() for t in text.split(",")):
            if kind.endswith("?") and item.lower() == "none":
                values.append(None)
            elif item == "":
                raise ValueError(f"{name}: empty item in list {text!r}")
            elif ":" in item:
                values.extend(_scalar(kind, d, name) for d in parse_range(item))
            elif item.lower() in ("inf", "+inf", "infinity"):
                values.append(_scalar(kind, item, name))
            else:
                values.append(_scalar(kind, _decimal(item, f"{name}={text}"), name))
        return tuple(_unique(values))
    return tuple(_unique(_scalar(kind, t, name) for t in text.split(",")))


def _loss_sets(text: Any, name: str) -> list[tuple[float, ...]]:
    """``0/0.1/0.2,0/0.5`` -> two sets; an item ``0:0.5:0.1`` is one set (a range)."""
    if isinstance(text, (list, tuple)):
        if text and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in text):
            return [tuple(float(v) for v in text)]  # one set given as numbers
        return [s for item in text for s in _loss_sets(item, name)]
    out = []
    for item in (t.strip() for t in str(text).split(",")):
        if item == "":
            raise ValueError(f"{name}: empty item in {text!r}")
        if ":" in item:
            rates = parse_range(item)
        else:
            rates = [_decimal(r, f"{name}={text}") for r in item.split("/")]
        out.append(tuple(float(r) for r in _unique(rates)))
    return out


def check_value(name: str, value: Any) -> None:
    """``ValueError`` naming ``value`` when it is outside the domain of field ``name``."""
    if name == "method":
        check_method(value)
    if name == "space" and value not in SPACES:
        raise ValueError(f"unknown space {value!r}; expected one of {', '.join(SPACES)}")
    if name == "source" and value is not None and value not in SOURCES:
        raise ValueError(f"unknown latency source {value!r}; expected one of {', '.join(SOURCES)}")
    if name == "threshold_ms" and not (math.isfinite(value) and value > 0):
        raise ValueError(f"latency threshold must be a positive number of ms, got {value:g}")
    if name == "loss" and not 0 <= value < 1:
        raise ValueError(f"loss rate must lie in [0, 1), got {value:g}")
    if name == "loss_set":
        if len(value) == 0:
            raise ValueError("loss_set is empty")
        for p in value:
            if not 0 <= p < 1:
                raise ValueError(f"loss_set rate must lie in [0, 1), got {p:g}")
    if name == "seed" and value < 0:
        raise ValueError(f"seed must be >= 0, got {value}")
    if name in ("bits", "bandwidth", "alpha", "delta0", "Delta_max") and not value > 0:
        raise ValueError(f"{name} must be positive, got {value:g}")
    if name in ("eps_loss", "eps_lat") and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value:g}")
    if name == "steps" and value is not None and value < 1:
        raise ValueError(f"steps must be >= 1, got {value}")
    if name == "lam" and value < 2:
        raise ValueError(f"lam must be at least 2, got {value}")
    if name == "fixed_split" and value is not None and not 0 <= value < N_SPLITS:
        raise ValueError(f"fixed split {value} is out of range 0..{N_SPLITS - 1}")


def _check_devices(values: dict[str, tuple]) -> None:
    """Head and tail devices against every latency table of the grid (devices are named by the
    table: the shipped HW-NAS-Bench one, or a ``tables`` file)."""
    from nascsim.devices import check_device
    from nascsim.tables import load_tables

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
        :func:`parse_values` and :func:`check_value` (``ValueError`` on the first bad one)."""
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
        _check_devices(values)
        return cls(tuple((n, values[n]) for n in FIELD_NAMES))

    @property
    def as_dict(self) -> dict[str, tuple]:
        return dict(self.values)

    @property
    def axes(self) -> tuple[str, ...]:
        """Fields with more than one value, in cell order."""
        d = self.as_dict
        return tuple(n for n in CELL_ORDER if len(d[n]) > 1)

    def __len__(self) -> int:
        return math.prod(len(v) for _, v in self.values)

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
                raise ValueError(f"grid field {name!r} must be a list of values, got {vals!r}")
            if name in FIELD_KINDS and FIELD_KINDS[name] == "floats":
                given[name] = [tuple(v) for v in vals]
            else:
                given[name] = vals
        return cls.build(**given)
