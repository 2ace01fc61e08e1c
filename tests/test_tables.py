"""The HW-NAS-Bench importer and the shipped tables."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from nascsim.tables import (
    METRICS,
    TABLE_FILE,
    TableError,
    build_tables,
    load_tables,
    network_metric,
    required_keys,
)

SHARED_JSON = Path(__file__).resolve().parents[2] / "shared" / "data" / "hw-nas-bench" / "fbnet_lookup_tables.json"

# Printed by HW-NAS-Bench's official example notebook (see ../shared/data/hw-nas-bench/README.md).
REFERENCE = [
    ([0] * 22, "edgegpu_latency", 15.804523468017578),
    ([0] * 22, "raspi4_latency", 17.618579145142576),
    ([0] * 21 + [1], "edgegpu_latency", 16.861193418502808),
    ([0] * 21 + [1], "raspi4_latency", 17.505280663142912),
    ([0] * 20 + [1, 1], "edgegpu_latency", 18.126894235610962),
    ([0] * 20 + [1, 1], "raspi4_latency", 17.43969264414045),
    ([0] * 22, "edgegpu_energy", 86.98095934380125),
    ([0] * 22, "pixel3_latency", 7.788973100000002),
    ([0] * 22, "eyeriss_latency", 3.9408960000000004),
    ([0] * 22, "eyeriss_energy", 3.2420080000000002),
    ([0] * 22, "fpga_latency", 10.739520000000002),
    ([0] * 22, "fpga_energy", 75.17664),
]


@pytest.mark.parametrize("arch, metric, expected", REFERENCE)
def test_shipped_tables_reproduce_the_official_api_sums(arch, metric, expected):
    got = network_metric(load_tables(), metric, arch, classes=100)
    assert got == pytest.approx(expected, rel=1e-9)


def lut_from_shipped() -> dict:
    """Rebuild the {metric: {key: value}} object from the shipped parquet (a fixture, no ../shared)."""
    import polars as pl

    from nascsim._data import shipped_path

    frame = pl.read_parquet(shipped_path("tables") / TABLE_FILE)
    return {m: dict(zip(frame["key"].to_list(), frame[m].to_list())) for m in METRICS}


def test_importer_reads_the_official_pickle_layout_and_json_alike(tmp_path):
    lut = lut_from_shipped()
    pkl = tmp_path / "HW-NAS-Bench-v1_0.pickle"
    pkl.write_bytes(pickle.dumps({"nasbench201": {}, "fbnet": lut}))
    js = tmp_path / "fbnet.json"
    js.write_text(json.dumps(lut))
    a = build_tables(pkl, tmp_path / "from_pickle")
    b = build_tables(js, tmp_path / "from_json")
    ta, tb = load_tables(a), load_tables(b)
    for m in METRICS:
        np.testing.assert_array_equal(ta.layer[m], tb.layer[m])
        np.testing.assert_array_equal(ta.layer[m], load_tables().layer[m])


@pytest.mark.skipif(not SHARED_JSON.is_file(), reason="../shared HW-NAS-Bench export not present")
def test_importer_on_the_shared_export_matches_the_shipped_table(tmp_path):
    built = load_tables(build_tables(SHARED_JSON, tmp_path))
    for m in METRICS:
        np.testing.assert_array_equal(built.layer[m], load_tables().layer[m])
        assert built.fixed[m] == load_tables().fixed[m]


def test_missing_key_is_named_and_nothing_is_written(tmp_path):
    lut = lut_from_shipped()
    victim = required_keys()[40]
    del lut["raspi4_latency"][victim]
    src = tmp_path / "broken.json"
    src.write_text(json.dumps(lut))
    out = tmp_path / "out"
    with pytest.raises(TableError, match=f"'raspi4_latency' lacks key '{victim}'"):
        build_tables(src, out)
    assert not out.exists() or not any(out.iterdir())


def test_missing_metric_and_unreadable_files_are_clear_errors(tmp_path):
    lut = lut_from_shipped()
    del lut["fpga_energy"]
    src = tmp_path / "no_fpga.json"
    src.write_text(json.dumps(lut))
    with pytest.raises(TableError, match="metric 'fpga_energy' is missing"):
        build_tables(src, tmp_path / "o1")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 not a table")
    with pytest.raises(TableError, match="neither JSON nor a pickle"):
        build_tables(junk, tmp_path / "o2")
    with pytest.raises(TableError, match="does not exist"):
        build_tables(tmp_path / "nope.json", tmp_path / "o3")
