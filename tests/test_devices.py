import numpy as np
import pytest

from nascsim.devices import compute_power, fit_compute_power
from nascsim.tables import LATENCY_DEVICES


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
