"""Unpickling plain data: no code runs and no object is built from the file's raw bytes.

The data pickles nascsim reads (HW-NAS-Bench's lookup tables, the CIFAR python batches) hold dicts,
lists, tuples, numbers, strings, bytes and numpy arrays / scalars of numbers. :class:`PlainUnpickler`
rebuilds exactly those. Every global the file names is answered by a checking stand-in, never by
the numpy function itself:

- ``numpy.dtype(spec, align, copy)`` gives a :class:`PickledDtype`, which takes the dtype's pickled
  state (byte order, fields, flags) only to check it. Only plain numbers and booleans
  (``dtype.kind`` in ``b``, ``i``, ``u``, ``f``) are admitted, without fields or sub-arrays; the
  real dtype is made afresh from its type code. (numpy itself applies the pickled flags: a file
  that clears an object dtype's flags makes numpy copy its bytes into the array as object
  pointers, which crashes the process.)
- ``_reconstruct(ndarray, shape, code)`` gives an empty :class:`PlainArray`; its ``__setstate__``
  checks the pickled state -- a :class:`PickledDtype`, a shape of non-negative integers, raw bytes
  of exactly ``prod(shape) * itemsize`` -- before numpy copies the bytes into a fresh array.
- ``scalar(dtype, bytes)``, ``_frombuffer(bytes, dtype, shape, order)`` (protocol 5) and
  ``_codecs.encode(text, "latin1")`` (protocol-2 byte strings) are re-implemented over
  :func:`numpy.frombuffer` with the checked dtype.
- ``numpy.ndarray`` itself is a marker that only ``_reconstruct`` accepts (calling it refuses).

Anything else -- another global, a persistent id, a malformed state, nesting deeper than
:data:`MAX_DEPTH` -- raises :class:`RefusedPickle` (one line) before the object is built.
"""

from __future__ import annotations

import io
import math
import pickle
from collections import OrderedDict
from typing import Any

import numpy as np

from nascsim.safe_load import StructureError, check_nesting
from nascsim.safe_load import short as _short

PLAIN_KINDS = "biuf"
MAX_DEPTH = 64


class RefusedPickle(pickle.UnpicklingError):
    """The pickle asks for something a plain-data pickle never holds (one line naming it)."""


class PickledDtype:
    """Stands for ``numpy.dtype(spec)`` while unpickling: the pickled state is checked, never applied."""

    __slots__ = ("dtype",)

    def __init__(self, spec: Any = None, align: Any = False, copy: Any = False) -> None:
        self.dtype = plain_dtype(spec)

    def __setstate__(self, state: Any) -> None:
        # numpy's dtype state: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise RefusedPickle(f"the pickle gives dtype {self.dtype.str} the state {_short(state)}")
        if any(s is not None for s in state[2:5]) or (len(state) == 9 and state[8] is not None):
            raise RefusedPickle(f"the pickle gives dtype {self.dtype.str} fields or a sub-array; only plain numbers are read")
        order = state[1]
        if order not in ("<", ">", "|", "="):
            raise RefusedPickle(f"the pickle gives dtype {self.dtype.str} the byte order {_short(order)}")
        if order in "<>" and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(order)

    def __reduce__(self):
        raise TypeError("a PickledDtype is not pickled")


def plain_dtype(spec: Any) -> np.dtype:
    """A fresh numpy dtype of plain numbers or booleans made from a type code such as ``'<f8'``
    (:class:`RefusedPickle` for object, string, structured or any other dtype)."""
    if not isinstance(spec, str) or len(spec) > 8:
        raise RefusedPickle(f"the pickle asks for dtype {_short(spec)}; only plain number dtypes are read")
    try:
        dt = np.dtype(spec)
    except (TypeError, ValueError):
        raise RefusedPickle(f"the pickle asks for dtype {_short(spec)}; only plain number dtypes are read") from None
    if dt.kind not in PLAIN_KINDS or dt.fields is not None or dt.subdtype is not None or dt.hasobject:
        raise RefusedPickle(f"the pickle asks for dtype {spec!r} (kind {dt.kind!r}); only plain numbers and booleans are read")
    return np.dtype(dt.byteorder + dt.char) if dt.itemsize > 1 else np.dtype(dt.char)


def _dtype_of(value: Any, where: str) -> np.dtype:
    if not isinstance(value, PickledDtype):
        raise RefusedPickle(f"the pickle gives {where} the dtype {_short(value)}")
    return value.dtype


def _shape_of(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or len(value) > 32 or not all(type(n) is int and n >= 0 for n in value):
        raise RefusedPickle(f"the pickle gives {where} the shape {_short(value)}")
    return value


def _raw_bytes(value: Any, where: str) -> bytes:
    if isinstance(value, str):  # numpy pickles of Python 2 hold the data as a latin-1 string
        value = value.encode("latin1")
    if not isinstance(value, (bytes, bytearray)):
        raise RefusedPickle(f"the pickle gives {where} data of type {type(value).__name__}, not bytes")
    return bytes(value)


def _array(raw: Any, dtype: Any, shape: Any, fortran: bool, where: str) -> np.ndarray:
    dt, shape, data = _dtype_of(dtype, where), _shape_of(shape, where), _raw_bytes(raw, where)
    if math.prod(shape) * dt.itemsize != len(data):
        raise RefusedPickle(f"the pickle gives {where} {len(data)} bytes for shape {shape} of {dt.str}")
    return np.frombuffer(data, dtype=dt).reshape(shape, order="F" if fortran else "C")


class PlainArray(np.ndarray):
    """A numpy array read from a pickle (``numpy.asarray`` gives the plain ``ndarray``); its
    ``__setstate__`` checks dtype, shape and byte count before numpy copies the bytes."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 5:
            state = state[1:]
        if not isinstance(state, tuple) or len(state) != 4:
            raise RefusedPickle(f"the pickle gives an array the state {_short(state)}")
        shape, dtype, fortran, raw = state
        arr = _array(raw, dtype, shape, bool(fortran), "an array")
        super().__setstate__((1, arr.shape, arr.dtype, bool(fortran), _raw_bytes(raw, "an array")))


class _NdarrayMarker:
    """What ``numpy.ndarray`` means in a plain-data pickle: the sub-type argument of ``_reconstruct``."""

    def __call__(self, *args, **kwargs):
        raise RefusedPickle("the pickle calls numpy.ndarray directly")


NDARRAY = _NdarrayMarker()


def _reconstruct(subtype: Any, shape: Any = (0,), code: Any = b"b") -> PlainArray:
    if subtype is not NDARRAY:
        raise RefusedPickle(f"the pickle asks _reconstruct for {_short(subtype)}")
    return np.ndarray.__new__(PlainArray, (0,), np.uint8)


def _scalar(dtype: Any, raw: Any = None) -> np.generic:
    dt, data = _dtype_of(dtype, "a scalar"), _raw_bytes(raw, "a scalar")
    if len(data) != dt.itemsize:
        raise RefusedPickle(f"the pickle gives a {dt.str} scalar {len(data)} bytes")
    return np.frombuffer(data, dtype=dt)[0]


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any = "C") -> np.ndarray:
    if order not in ("C", "F"):
        raise RefusedPickle(f"the pickle gives an array the order {_short(order)}")
    return _array(buf, dtype, shape, order == "F", "an array").copy()


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise RefusedPickle(f"the pickle asks _codecs.encode for encoding {_short(encoding)}")
    return text.encode("latin1")


# (module, name) -> the stand-in; numpy 1 and numpy 2 module paths
_GLOBALS: dict[tuple[str, str], Any] = {("collections", "OrderedDict"): OrderedDict, ("_codecs", "encode"): _encode,
                                       ("numpy", "ndarray"): NDARRAY, ("numpy", "dtype"): PickledDtype}
for _core in ("numpy.core", "numpy._core"):
    _GLOBALS.update({(f"{_core}.multiarray", "_reconstruct"): _reconstruct, (f"{_core}.multiarray", "scalar"): _scalar,
                     (f"{_core}.numeric", "_frombuffer"): _frombuffer})


class PlainUnpickler(pickle.Unpickler):
    """Rebuilds dicts, lists, tuples, numbers, strings, bytes and numpy arrays / scalars of plain
    numbers; any other global raises :class:`RefusedPickle` ("refused global MODULE.NAME")."""

    def find_class(self, module: str, name: str):
        found = _GLOBALS.get((module, name))
        if found is None:
            raise RefusedPickle(f"refused global {module}.{name}")
        return found

    def persistent_load(self, pid):
        raise RefusedPickle("refused a persistent id")


def check_depth(obj: Any, limit: int = MAX_DEPTH) -> None:
    """:class:`RefusedPickle` when containers nest deeper than ``limit``
    (:func:`nascsim.safe_load.check_nesting`: no recursion)."""
    try:
        check_nesting(obj, "the pickle", limit)
    except StructureError as exc:
        raise RefusedPickle(str(exc)) from None


def plain_loads(data: bytes, encoding: str = "ASCII") -> Any:
    """Unpickle ``data`` through :class:`PlainUnpickler`, then check its nesting depth."""
    obj = PlainUnpickler(io.BytesIO(data), encoding=encoding).load()
    check_depth(obj)
    return obj
