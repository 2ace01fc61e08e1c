"""NumPy's PCG64 generator inside numba kernels, as a 4-word state array (no call per draw).

A search draws about fifty numbers per ASNG step; through ``numpy.random.Generator`` each draw is
an indirect call into NumPy (about 6 ns). Here the generator is inlined: ``state`` is a uint64
array ``[state_hi, state_lo, inc_hi, inc_lo]`` taken from a ``numpy.random.PCG64`` and written
back after the kernel, and the draws are the very numbers NumPy gives:

- :func:`next_uint64`: PCG64 (XSL-RR output of a 128-bit LCG; step, then output, as NumPy does);
- :func:`next_double`: ``(next_uint64 >> 11) * 2**-53`` (``Generator.random``);
- :func:`standard_normal`: NumPy's ziggurat (``Generator.standard_normal``), with its tables.

``tests/test_rng_kernels.py`` pins equality with NumPy draw for draw.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core.extending import intrinsic

# NumPy's ziggurat tables (numba ships the same tables for its own Generator support)
from numba.np.random._constants import fi_double, ki_double, wi_double, ziggurat_nor_inv_r, ziggurat_nor_r

from nascsim._jit import CACHED, inline

MULT_HI = np.uint64(0x2360ED051FC65DA4)
MULT_LO = np.uint64(0x4385DF649FCCF645)
_KI = np.ascontiguousarray(ki_double, dtype=np.uint64)
_WI = np.ascontiguousarray(wi_double, dtype=np.float64)
_FI = np.ascontiguousarray(fi_double, dtype=np.float64)
_NOR_R = float(ziggurat_nor_r)
_NOR_INV_R = float(ziggurat_nor_inv_r)
INLINE = inline(CACHED)


@intrinsic
def _mulhi(typingctx, a, b):
    """High 64 bits of the 128-bit product of two uint64 (one machine multiply)."""
    sig = types.uint64(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        x = builder.zext(args[0], i128)
        y = builder.zext(args[1], i128)
        return builder.trunc(builder.lshr(builder.mul(x, y), ir.Constant(i128, 64)), ir.IntType(64))

    return sig, codegen


def state_from_generator(rng: np.random.Generator) -> np.ndarray:
    """The 4-word state of a PCG64-backed generator (a copy: the generator is not advanced)."""
    bg = rng.bit_generator
    st = bg.state
    if st.get("bit_generator") != "PCG64":
        raise ValueError(f"the search needs a PCG64 generator, got {st.get('bit_generator')!r}")
    s, inc = int(st["state"]["state"]), int(st["state"]["inc"])
    m = (1 << 64) - 1
    return np.array([s >> 64, s & m, inc >> 64, inc & m], dtype=np.uint64)


def state_to_generator(state: np.ndarray, rng: np.random.Generator) -> None:
    """Write a 4-word state back into ``rng`` (its buffered 32-bit half, if any, is kept)."""
    st = rng.bit_generator.state
    st["state"] = {"state": (int(state[0]) << 64) | int(state[1]), "inc": (int(state[2]) << 64) | int(state[3])}
    rng.bit_generator.state = st


@njit(**INLINE)
def next_uint64(state):
    """One PCG64 draw: state <- state * MULT + inc (mod 2^128), then the XSL-RR output of it."""
    hi = state[0]
    lo = state[1]
    new_lo = lo * MULT_LO
    new_hi = _mulhi(lo, MULT_LO) + lo * MULT_HI + hi * MULT_LO
    inc_lo = state[3]
    lo2 = new_lo + inc_lo
    carry = np.uint64(1) if lo2 < new_lo else np.uint64(0)
    hi2 = new_hi + state[2] + carry
    state[0] = hi2
    state[1] = lo2
    x = hi2 ^ lo2
    rot = hi2 >> np.uint64(58)
    return (x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))


@njit(**INLINE)
def next_double(state):
    """Uniform on [0, 1) exactly as ``Generator.random``."""
    return np.float64(np.int64(next_uint64(state) >> np.uint64(11))) * (1.0 / 9007199254740992.0)


@njit(cache=True, nogil=True, forceinline=False)  # explicit: not inherited from an inlined caller
def standard_normal(state):
    """N(0, 1) exactly as ``Generator.standard_normal`` (NumPy's ziggurat)."""
    while True:
        r = next_uint64(state)
        idx = r & np.uint64(0xFF)
        r = r >> np.uint64(8)
        sign = r & np.uint64(1)
        rabs = (r >> np.uint64(1)) & np.uint64(0x000FFFFFFFFFFFFF)
        x = np.float64(np.int64(rabs)) * _WI[idx]
        if sign & np.uint64(1):
            x = -x
        if rabs < _KI[idx]:
            return x
        if idx == np.uint64(0):
            while True:
                xx = -_NOR_INV_R * np.log1p(-next_double(state))
                yy = -np.log1p(-next_double(state))
                if yy + yy > xx * xx:
                    if (rabs >> np.uint64(8)) & np.uint64(1):
                        return -(_NOR_R + xx)
                    return _NOR_R + xx
        else:
            if (_FI[idx - np.uint64(1)] - _FI[idx]) * next_double(state) + _FI[idx] < np.exp(-0.5 * x * x):
                return x


@njit(cache=True, nogil=True)
def fill_uniform(state, out):
    """out[i] = next_double(state), in order (for tests)."""
    for i in range(out.shape[0]):
        out[i] = next_double(state)


@njit(cache=True, nogil=True)
def fill_normal(state, out):
    """out[i] = standard_normal(state), in order (for tests)."""
    for i in range(out.shape[0]):
        out[i] = standard_normal(state)
