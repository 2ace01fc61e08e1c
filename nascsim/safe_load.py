"""Validated loading of structured data: JSON, TOML and the plain data of checkpoints.

Every file nascsim reads as structured data (sweep and bench-suite TOML, surrogate and baseline
JSON, confirm records, parquet schema metadata, checkpoint dicts) goes through this module:

1. **Nesting depth before parsing.** :func:`loads_json` and :func:`loads_toml` count the
   brackets outside strings (and, for TOML, outside comments) and refuse text nested deeper than
   :data:`MAX_DEPTH` levels before the parser sees it: a file of 50,000 ``[`` would otherwise end
   in ``RecursionError``. The parsed result is checked once more (:func:`check_nesting`, without
   recursion), which also covers TOML's dotted keys (``a.a.a.a = 1``).
2. **Types before use.** :func:`need_dict`, :func:`need_list`, :func:`need_int`,
   :func:`need_float` and :func:`need_str` check one value each and raise :class:`StructureError`
   naming where the value sits and what it is ("classes must be an integer in 1..1000, got -1").

:class:`StructureError` is a ``ValueError``: the command line prints it as one line and exits 2.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from typing import Any

import numpy as np

MAX_DEPTH = 64
MAX_CLASSES = 1000

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_TOML_SKIP = re.compile(r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*', re.DOTALL)


class StructureError(ValueError):
    """Structured data that is unreadable, nested too deeply or of the wrong shape (one line)."""


def short(value: Any, width: int = 60) -> str:
    """``repr(value)`` on one line, cut to ``width`` characters (safe for any value)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 -- repr of a deep or hostile value may fail in many ways
        text = f"<{type(value).__name__}>"
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def bracket_depth(text: str, skip: re.Pattern = _JSON_STRING) -> int:
    """Deepest nesting of ``[``/``{`` in ``text`` once the spans ``skip`` matches (strings,
    comments) are removed. Vectorised: fast on files of many megabytes."""
    brackets = re.sub(r"[^\[\]{}]", "", skip.sub("", text)).encode()
    if not brackets:
        return 0
    b = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((b == ord("[")) | (b == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def _text(data: bytes | str, source: str, fmt: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StructureError(f"{source} is not valid {fmt} (not UTF-8 text at byte {exc.start})") from None


def loads_json(data: bytes | str, source: str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON ``data``; :class:`StructureError` naming ``source`` when it is not UTF-8, nested
    deeper than ``max_depth`` or not valid JSON (integers past 4,300 digits included)."""
    text = _text(data, source, "JSON")
    depth = bracket_depth(text)
    if depth > max_depth:
        raise StructureError(f"{source} is not valid JSON here (nested {depth} levels deep; at most {max_depth} are read)")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StructureError(f"{source} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (ValueError, RecursionError) as exc:  # over-long integers; the depth check makes the second moot
        raise StructureError(f"{source} is not valid JSON ({exc.__class__.__name__}: {short(str(exc), 80)})") from None
    check_nesting(doc, source, max_depth)
    return doc


def loads_toml(data: bytes | str, source: str, max_depth: int = MAX_DEPTH) -> dict:
    """Parse TOML ``data``; :class:`StructureError` naming ``source`` when it is not UTF-8, nested
    deeper than ``max_depth`` (brackets, or dotted keys and table headers) or not valid TOML."""
    text = _text(data, source, "TOML")
    depth = bracket_depth(text, _TOML_SKIP)
    if depth > max_depth:
        raise StructureError(f"{source} is not valid TOML here (nested {depth} levels deep; at most {max_depth} are read)")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StructureError(f"{source} is not valid TOML ({exc})") from None
    except (ValueError, RecursionError) as exc:
        raise StructureError(f"{source} is not valid TOML ({exc.__class__.__name__})") from None
    check_nesting(doc, source, max_depth)
    return doc


def check_nesting(obj: Any, source: str, max_depth: int = MAX_DEPTH) -> None:
    """:class:`StructureError` when lists, tuples and dicts in ``obj`` nest deeper than
    ``max_depth`` levels. Walks level by level without recursion; a container met twice (one
    that holds itself) is walked once."""
    level, seen = [obj], set()
    for _ in range(max_depth + 1):
        inner = []
        for o in level:
            if isinstance(o, (list, tuple, dict)) and id(o) not in seen:
                seen.add(id(o))
                inner.extend([*o.keys(), *o.values()] if isinstance(o, dict) else o)
        if not inner:
            return
        level = inner
    raise StructureError(f"{source} is nested deeper than {max_depth} levels (at most {max_depth} are read)")


# -- types ----------------------------------------------------------------------------------------

def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", tuple: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def need_dict(value: Any, where: str) -> dict:
    """``value`` when it is a dict (a JSON object / TOML table), else :class:`StructureError`."""
    if not isinstance(value, dict):
        raise StructureError(f"{where} must be an object (a mapping), got {_kind(value)} {short(value)}")
    return value


def need_list(value: Any, where: str, max_len: int | None = None) -> list:
    """``value`` as a list when it is a list or tuple (of at most ``max_len`` items)."""
    if not isinstance(value, (list, tuple)):
        raise StructureError(f"{where} must be a list, got {_kind(value)} {short(value)}")
    if max_len is not None and len(value) > max_len:
        raise StructureError(f"{where} has {len(value)} items; at most {max_len} are read")
    return list(value)


def need_str(value: Any, where: str, max_len: int = 4096) -> str:
    """``value`` when it is a string of at most ``max_len`` characters."""
    if not isinstance(value, str):
        raise StructureError(f"{where} must be a string, got {_kind(value)} {short(value)}")
    if len(value) > max_len:
        raise StructureError(f"{where} is a string of {len(value)} characters; at most {max_len} are read")
    return value


def need_int(value: Any, where: str, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int when it is an integer (not a boolean; numpy integers and integral
    floats admitted) within ``low..high``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise StructureError(f"{where} must be an integer, got {_kind(value)} {short(value)}")
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or value != int(value):
            raise StructureError(f"{where} must be an integer, got {short(value)}")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        span = f"{'' if low is None else low}..{'' if high is None else high}"
        raise StructureError(f"{where} must be an integer in {span}, got {short(value)}")
    return v


def need_float(value: Any, where: str, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a finite float (ints admitted, booleans not) within ``[low, high]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise StructureError(f"{where} must be a number, got {_kind(value)} {short(value)}")
    try:
        v = float(value)
    except OverflowError:
        raise StructureError(f"{where} = {short(value)} is too large") from None
    if not math.isfinite(v) or not low <= v <= high:
        raise StructureError(f"{where} must be a finite number in [{low:g}, {high:g}], got {short(value)}")
    return v


def need_classes(value: Any, where: str) -> int:
    """A number of classes: an integer in 1..:data:`MAX_CLASSES`."""
    return need_int(value, where, 1, MAX_CLASSES)
