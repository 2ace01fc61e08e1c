from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nascsim.hw.devices import compute_power, fit_compute_power
from nascsim.hw.tables import LATENCY_DEVICES


@pytest.mark.parametrize("device, table3", [("edgegpu", 8.0213), ("raspi4", 2.3562)])
def test_compute_power_reproduces_table_iii_within_half_a_percent(device, table3):
    assert compute_power()[device].gflops == pytest.approx(table3, rel=0.005)


def test_every_latency_device_gets_a_positive_compute_power():
    power = compute_power()
    assert set(power) == set(LATENCY_DEVICES)
    assert all(p.gflops > 0 for p in power.values())


def test_fit_recovers_a_known_compute_power_exactly():
    flops = np.array([1e6, 3e6, 7e6, 2e7])
    latency_ms = flops / (5.0 * 1e6)  # 5 GFLOPS
    fit = fit_compute_power(latency_ms, flops)
    assert fit.gflops == pytest.approx(5.0, rel=1e-12)
    assert fit.r2 == pytest.approx(1.0)


finite_flops = st.floats(min_value=1e3, max_value=1e9, allow_nan=False, allow_infinity=False)
finite_latency = st.floats(min_value=1e-4, max_value=1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(finite_flops, finite_latency), min_size=2, max_size=80), st.randoms(use_true_random=False))
def test_the_fitted_compute_power_is_one_float_whatever_the_order_of_the_entries(pairs, rnd):
    """Eq. 9 with exact sums: no summation order, so no dependence on a BLAS kernel or a CPU."""
    shuffled = pairs[:]
    rnd.shuffle(shuffled)
    a = fit_compute_power(np.array([p[1] for p in pairs]), np.array([p[0] for p in pairs]))
    b = fit_compute_power(np.array([p[1] for p in shuffled]), np.array([p[0] for p in shuffled]))
    assert a.gflops == b.gflops
    assert a.r2 == b.r2 or (np.isnan(a.r2) and np.isnan(b.r2))


def test_the_fitted_compute_power_is_the_exact_least_squares_solution_rounded_once():
    """Π (FLOPs per ms) = Σ F² / Σ F·L in exact arithmetic, then one rounding (then / 1e6 for GFLOPS).
    These entries make a float dot product lose the small terms next to the large one."""
    flops = np.array([1e9, 1.0, 3.0, 7.0, 1e9 + 1.0])
    latency_ms = np.array([0.1, 3e-4, 7e-4, 1.3e-3, 0.1000000000000001])
    exact = sum(Fraction(f) ** 2 for f in flops) / sum(Fraction(f) * Fraction(l) for f, l in zip(flops, latency_ms))
    assert fit_compute_power(latency_ms, flops).gflops == float(exact) / 1e6
