"""Device compute power Π (Table III of the paper): least squares of measured latency on FLOPs.

Latency is modelled as ``T = FLOPs / Π`` (eq. 8, T = C / Π). Π is fitted per device over the 22 layers x 9
ops of HW-NAS-Bench's CIFAR FBNet table by minimising ``sum (L - F / Π)^2``, whose solution is
``Π = sum F^2 / sum F L``. With the FLOP convention of :mod:`nascsim.hw.flops` this reproduces the
paper's Table III (Edge GPU 8.0213, Raspi 4 2.3562 GFLOPS) to within 0.05%.

Π is the float nearest to that ratio of exact sums (:func:`exact_dot`), not a BLAS dot product:
a BLAS kernel's summation order depends on the CPU it picks (OpenBLAS's Haswell and SkylakeX
kernels give Pixel 3 values one unit in the last place apart), and every latency of the ``flops``
source, hence the search's feasibility tests, is divided by Π. See docs/reproducibility.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from nascsim.hw.flops import flop_tables
from nascsim.space import get_space
from nascsim.hw.tables import LATENCY_DEVICES, MeasuredTables, load_tables


@dataclass(frozen=True)
class ComputePower:
    """Fitted Π of one device: GFLOPS and the fit's R² (latency explained by FLOPs / Π)."""

    device: str
    gflops: float
    r2: float


def exact_dot(a: np.ndarray, b: np.ndarray) -> Fraction:
    """``sum a_i b_i`` of two float vectors, exactly (no rounding, so no summation order)."""
    return sum((Fraction(x) * Fraction(y) for x, y in zip(a.tolist(), b.tolist())), Fraction(0))


def fit_compute_power(latency_ms: np.ndarray, flops: np.ndarray, device: str = "") -> ComputePower:
    """Eq. 9: Π minimising ``sum (L - F/Π)^2`` over paired entries (latency in ms, FLOPs).

    Π (in FLOPs per ms) is ``sum F^2 / sum F L`` computed exactly and rounded once, so it is the
    same float on every machine and for every order of the entries. R² uses correctly rounded
    sums (``math.fsum``) for the same reason; it is NaN when every latency is the same.
    """
    L = np.asarray(latency_ms, dtype=np.float64).ravel()
    F = np.asarray(flops, dtype=np.float64).ravel()
    flops_per_ms = float(exact_dot(F, F) / exact_dot(F, L))
    residual = L - F / flops_per_ms
    mean = math.fsum(L.tolist()) / len(L)
    ss_tot = math.fsum(((L - mean) ** 2).tolist())
    r2 = 1.0 - math.fsum((residual * residual).tolist()) / ss_tot if ss_tot > 0 else math.nan  # constant L: undefined
    return ComputePower(device, flops_per_ms / 1e6, r2)


def check_device(device: str, tables: MeasuredTables | None = None) -> str:
    """``device`` when the tables (the shipped ones by default) have its latency column."""
    known = LATENCY_DEVICES if tables is None else tables.devices
    if device not in known:
        raise ValueError(f"unknown device {device!r}; expected one of {', '.join(known)}")
    return device


_CACHE: dict[int, dict[str, ComputePower]] = {}


def compute_power(tables: MeasuredTables | None = None) -> dict[str, ComputePower]:
    """Π for every latency device of the tables (HW-NAS-Bench's five by default), fitted on the
    22x9 FBNet entries."""
    tables = tables if tables is not None else load_tables()
    key = id(tables)
    if key not in _CACHE:
        flops = flop_tables(get_space("fbnet"), classes=10).layer
        _CACHE[key] = {
            d: fit_compute_power(tables.layer[f"{d}_latency"], flops, d) for d in tables.devices
        }
    return _CACHE[key]
