"""Latency model: eqs. 3, 8 and 10, numpy reference vs numba batch path."""

import numpy as np
import pytest

from nascsim.hw.devices import compute_power
from nascsim.hw.flops import payload_elements
from nascsim.hw.latency import breakdown, build_latency_model, device_only_latency, latency_batch
from nascsim.space import LAYERS, get_space
from nascsim.hw.tables import load_tables, network_metric

EXPECTED_PAYLOAD = [16 * 32 * 32, 16 * 32 * 32] + [24 * 32 * 32] * 4 + [32 * 16 * 16] * 4 + [64 * 8 * 8] * 4 + [
    112 * 8 * 8
] * 4 + [184 * 4 * 4] * 4 + [352 * 4 * 4]


def test_payload_per_split_point_is_the_tensor_after_the_stem_or_layer():
    model = build_latency_model("fbnet")
    assert model.payload.shape == (23, 9)
    np.testing.assert_array_equal(model.payload[:, 0], EXPECTED_PAYLOAD)
    np.testing.assert_array_equal(model.payload[:, 8], EXPECTED_PAYLOAD)


def test_bottleneck_split_sends_the_depthwise_output():
    ext = get_space("extended")
    model = build_latency_model(ext)
    # layer 7 (16x16, Cin 32 -> Cout 32): k3_e1/4 sends 8 channels at 16x16
    assert model.payload[7, ext.op_names.index("k3_e1/4")] == 8 * 16 * 16
    # layer 6 has stride 2 (32x32 -> 16x16) with Cin 24: k5_e1/8 sends 3 channels at 16x16
    assert model.payload[6, ext.op_names.index("k5_e1/8")] == 3 * 16 * 16
    assert payload_elements(LAYERS[5], ext.ops[9]) == 12 * 16 * 16


def test_t_comm_is_bits_times_payload_over_bandwidth():
    model = build_latency_model("fbnet", bits=8, bandwidth=2e6)
    out = breakdown(model, np.zeros(22, dtype=int), 22)
    assert out["T_comm_ms"] == pytest.approx(1e3 * 8 * 352 * 16 / 2e6)
    assert out["payload_bits"] == 8 * 352 * 16


def test_head_plus_tail_on_one_device_equals_the_official_whole_network_sum():
    tables = load_tables()
    rng = np.random.default_rng(3)
    for _ in range(20):
        arch = rng.integers(0, 9, 22)
        split = int(rng.integers(0, 23))
        model = build_latency_model("fbnet", head="raspi4", tail="raspi4", classes=100)
        out = breakdown(model, arch, split)
        whole = network_metric(tables, "raspi4_latency", arch, classes=100)
        assert out["T_head_ms"] + out["T_tail_ms"] == pytest.approx(whole, rel=1e-9)
        assert device_only_latency(model, arch) == pytest.approx(whole, rel=1e-9)


def test_flops_source_is_flops_over_compute_power_for_head_and_tail():
    model = build_latency_model("fbnet", source="flops")
    power = compute_power()
    out = breakdown(model, np.full(22, 3), 9)
    assert out["T_head_ms"] == pytest.approx(out["head_flops"] / (power["raspi4"].gflops * 1e6))
    assert out["T_tail_ms"] == pytest.approx(out["tail_flops"] / (power["edgegpu"].gflops * 1e6))


def test_flops_are_split_between_head_and_tail_without_loss():
    ext = get_space("extended")
    model = build_latency_model(ext)
    rng = np.random.default_rng(0)
    arch = rng.integers(0, ext.n_ops, 22)
    totals = {breakdown(model, arch, k)["head_flops"] + breakdown(model, arch, k)["tail_flops"] for k in range(23)}
    assert max(totals) - min(totals) < 1e-6


@pytest.mark.parametrize("space, source", [("fbnet", "measured"), ("fbnet", "flops"), ("extended", "flops")])
def test_numba_batch_path_equals_the_numpy_reference(space, source):
    sp = get_space(space)
    model = build_latency_model(space, head="pixel3", tail="edgegpu", source=source, bits=16, bandwidth=3e6)
    rng = np.random.default_rng(42)
    archs = rng.integers(0, sp.n_ops, (300, 22))
    splits = rng.integers(0, 23, 300)
    got = latency_batch(model, archs, splits)
    for i in range(300):
        ref = breakdown(model, archs[i], splits[i])
        assert (got[i, 0], got[i, 1], got[i, 2]) == (ref["T_head_ms"], ref["T_comm_ms"], ref["T_tail_ms"])


def test_head_energy_comes_from_the_head_devices_table():
    model = build_latency_model("fbnet", head="edgegpu", tail="raspi4")
    out = breakdown(model, np.zeros(22, dtype=int), 22)
    whole = network_metric(load_tables(), "edgegpu_energy", [0] * 22, classes=10)
    fixed = load_tables().fixed_for("edgegpu_energy", 10)
    assert out["E_head_mJ"] == pytest.approx(whole - fixed["header"] - fixed["pool"] - fixed["fc"])
    assert breakdown(build_latency_model("fbnet"), np.zeros(22, dtype=int), 3)["E_head_mJ"] is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"head": "tpu"}, "unknown device 'tpu'"),
        ({"tail": "gpu"}, "unknown device 'gpu'"),
        ({"bandwidth": -1.0}, "bandwidth must be positive"),
        ({"bits": 0}, "bits must be positive"),
        ({"source": "guess"}, "unknown latency source 'guess'"),
        ({"classes": 1000}, "no FC entry for 1000 classes"),
    ],
)
def test_bad_latency_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_latency_model("fbnet", **kwargs)


def test_measured_latency_of_a_bottleneck_op_is_refused():
    ext = get_space("extended")
    model = build_latency_model(ext, source="measured")
    arch = np.zeros(22, dtype=int)
    arch[4] = ext.op_names.index("k5_e1/2")
    with pytest.raises(ValueError, match="k5_e1/2 at layer 5 has no measured latency"):
        breakdown(model, arch, 3)
    breakdown(model, np.zeros(22, dtype=int), 3)  # fbnet ops in the extended space stay measurable


def test_docs_cite_the_papers_equation_numbers():
    """The paper numbers T = C / Π as eq. 8 and T_comm = D / r as eq. 10 (issue 11, point 5)."""
    import re
    from pathlib import Path

    import nascsim.hw.latency

    doc = nascsim.hw.latency.__doc__
    assert re.search(r"T_comm\s*=\s*q \* n_h\(a, k\) / r\s+\(eq\. 10", doc)
    assert re.search(r"FLOPs_block / Π_device\s+\(eq\. 8", doc)
    method = (Path(__file__).resolve().parents[1] / "docs" / "method.md").read_text()
    assert "T = C/Π from FLOPs (eq. 8), T_comm = D/r = q·n_h/r (eq. 10)" in method
    assert "(eq. 9)" not in method
