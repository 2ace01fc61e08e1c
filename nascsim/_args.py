"""Checks of the public functions' arguments (:mod:`nascsim.api`): names and integer values.

A misspelt keyword is refused, never ignored, with the name it was probably meant to be::

    >>> raise unexpected("sweep", "los", ["loss", "seeds"])
    Traceback (most recent call last):
    ...
    TypeError: sweep() got an unexpected keyword argument 'los'; did you mean 'loss'?

An integer argument takes Python or numpy integers only: not a bool (``True`` is not seed 1),
not a float (``1.7`` is not seed 1, and ``2.0`` is refused too, so that a computed float never
passes for an index), not text::

    >>> integers("split", [8, 14]).tolist(), integers("split", 8).tolist()
    ([8, 14], 8)
    >>> integers("split", 8.7)
    Traceback (most recent call last):
    ...
    ValueError: split must be an integer or a sequence of integers, got 8.7
"""

from __future__ import annotations

import difflib
import functools
import inspect
import numbers
from typing import Any, Callable, Iterable

import numpy as np

INT64_MAX = np.iinfo(np.int64).max

# names people reach for, by the name they mean; a hint is given only when the meant name exists
NEAR_MISSES: dict[str, tuple[str, ...]] = {
    "p": ("loss",),
    "loss": ("p",),
    "ps": ("p", "loss"),
    "loss_rate": ("loss", "p"),
    "loss_rates": ("loss", "p"),
    "losses": ("loss", "p"),
    "packet_loss": ("loss", "p"),
    "threshold": ("threshold_ms",),
    "thresholds": ("threshold_ms",),
    "latency": ("threshold_ms",),
    "methods": ("method",),
    "seeds": ("seed",),
    "splits": ("split", "fixed_split"),
    "split": ("fixed_split",),
    "archs": ("arch",),
    "workers": ("jobs",),
    "n_jobs": ("jobs",),
    "processes": ("jobs",),
    "lambda": ("lam",),
    "lambda_": ("lam",),
    "iterations": ("steps",),
    "n_steps": ("steps",),
    "device": ("head", "tail"),
    "table": ("tables",),
}


def _show(value: Any) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 80 else text[:77] + "..."


def suggestion(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` was most likely meant to be: a listed near miss
    (:data:`NEAR_MISSES`) or the closest spelling; None when nothing is close."""
    known = list(known)
    for meant in NEAR_MISSES.get(name, ()):
        if meant in known:
            return meant
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return close[0] if close else None


def unexpected(function: str, name: str, known: Iterable[str]) -> TypeError:
    """The ``TypeError`` for keyword ``name`` that ``function`` does not take, with a hint."""
    meant = suggestion(name, known)
    hint = f"; did you mean {meant!r}?" if meant else ""
    return TypeError(f"{function}() got an unexpected keyword argument {name!r}{hint}")


def check_names(function: str, given: Iterable[str], known: Iterable[str], hints: Iterable[str] = ()) -> None:
    """``TypeError`` (:func:`unexpected`) for the first name of ``given`` not in ``known``; the
    hint is sought among ``known`` and ``hints`` (the function's other arguments)."""
    known = set(known)
    for name in given:
        if name not in known:
            raise unexpected(function, name, sorted(known | set(hints)))


def is_integer(value: Any) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    """A Python or numpy real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def integer(name: str, value: Any) -> int:
    """``value`` as an ``int``; ``ValueError`` naming ``name`` and the value unless it is an
    integer (:func:`is_integer`)."""
    if not is_integer(value):
        raise ValueError(f"{name} must be an integer, got {_show(value)}")
    return int(value)


def number(name: str, value: Any) -> float | int:
    """``value`` as a Python number; ``ValueError`` naming ``name`` unless it is a real number
    (:func:`is_number`). Range checks are the caller's."""
    if not is_number(value):
        raise ValueError(f"{name} must be a number, got {_show(value)}")
    return int(value) if is_integer(value) else float(value)


def _items(name: str, value: Any) -> tuple[list, bool]:
    """(the values, whether one value was given) of a value or a flat sequence of values."""
    if isinstance(value, np.ndarray) and value.ndim > 1:
        raise ValueError(f"{name} must be one value or a flat sequence, got an array of shape {value.shape}")
    if isinstance(value, np.ndarray):
        return value.reshape(-1).tolist() if value.dtype.kind == "O" else list(value.reshape(-1)), value.ndim == 0
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return [value], True
    return list(value), False


def integers(name: str, value: Any) -> np.ndarray:
    """An int64 array (0-d for one value) of an integer or a flat sequence of integers;
    ``ValueError`` naming ``name`` and the first value that is not an integer (a bool, a float,
    text) or does not fit in int64."""
    items, one = _items(name, value)
    for v in items:
        if not is_integer(v):
            raise ValueError(f"{name} must be an integer or a sequence of integers, got {_show(v)}")
        if not -INT64_MAX - 1 <= int(v) <= INT64_MAX:
            raise ValueError(f"{name} {int(v)} is out of range")
    a = np.array([int(v) for v in items], dtype=np.int64)
    return a.reshape(()) if one else a


def numbers_array(name: str, value: Any) -> np.ndarray:
    """A float64 array (0-d for one value) of a number or a flat sequence of numbers;
    ``ValueError`` naming ``name`` and the first value that is not a real number (a bool, text,
    None). Range checks are the caller's."""
    items, one = _items(name, value)
    for v in items:
        if not is_number(v):
            raise ValueError(f"{name} must be a number or a sequence of numbers, got {_show(v)}")
    a = np.array([float(v) for v in items], dtype=np.float64)
    return a.reshape(()) if one else a


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (``np.int64(3)`` -> 3, ``np.True_`` -> True);
    anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def refuse_unknown_keywords(function: Callable) -> Callable:
    """Decorate a function without ``**kwargs`` so that a keyword it does not take is refused
    with a hint (:func:`unexpected`; Python's own message has none)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = [p.name for p in inspect.signature(function).parameters.values() if p.kind in kinds]

    @functools.wraps(function)
    def checked(*args, **kwargs):
        check_names(function.__name__, kwargs, names)
        return function(*args, **kwargs)

    return checked
