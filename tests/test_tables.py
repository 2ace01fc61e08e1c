"""The HW-NAS-Bench importer, the shipped tables, and user tables in the documented schema."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from nascsim.cli import main
from nascsim.hw.tables import (
    METRICS,
    TABLE_FILE,
    TableError,
    build_tables,
    load_tables,
    network_metric,
    read_table_columns,
    required_keys,
    tables_from_columns,
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
    a = build_tables(pkl, tmp_path / "from_pickle.parquet")
    b = build_tables(js, tmp_path / "from_json.parquet")
    ta, tb = load_tables(a), load_tables(b)
    for m in METRICS:
        np.testing.assert_array_equal(ta.layer[m], tb.layer[m])
        np.testing.assert_array_equal(ta.layer[m], load_tables().layer[m])


@pytest.mark.skipif(not SHARED_JSON.is_file(), reason="../shared HW-NAS-Bench export not present")
def test_importer_on_the_shared_export_matches_the_shipped_table(tmp_path):
    built = load_tables(build_tables(SHARED_JSON, tmp_path / "t.parquet"))
    for m in METRICS:
        np.testing.assert_array_equal(built.layer[m], load_tables().layer[m])
        assert built.fixed[m] == load_tables().fixed[m]


def test_missing_key_is_named_and_nothing_is_written(tmp_path):
    lut = lut_from_shipped()
    victim = required_keys()[40]
    del lut["raspi4_latency"][victim]
    src = tmp_path / "broken.json"
    src.write_text(json.dumps(lut))
    out = tmp_path / "out" / "t.parquet"
    with pytest.raises(TableError, match=f"'raspi4_latency' lacks key '{victim}'"):
        build_tables(src, out)
    assert not out.parent.exists()


def test_missing_metric_and_unreadable_files_are_clear_errors(tmp_path):
    lut = lut_from_shipped()
    del lut["fpga_energy"]
    src = tmp_path / "no_fpga.json"
    src.write_text(json.dumps(lut))
    with pytest.raises(TableError, match="metric 'fpga_energy' is missing"):
        build_tables(src, tmp_path / "o1.parquet")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 not a table")
    with pytest.raises(TableError, match="neither JSON nor a readable pickle"):
        build_tables(junk, tmp_path / "o2.parquet")
    with pytest.raises(TableError, match="does not exist"):
        build_tables(tmp_path / "nope.json", tmp_path / "o3.parquet")
    assert not list(tmp_path.glob("o*.parquet"))


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_tables_build_needs_an_out_file_and_never_replaces_a_file_unasked(tmp_path, capsys):
    src = tmp_path / "lut.json"
    src.write_text(json.dumps(lut_from_shipped()))
    code, _, err = run(["tables", "build", "--lut", str(src)], capsys)
    assert code == 2 and "--out" in err
    out = tmp_path / "mine.parquet"
    code, stdout, err = run(["tables", "build", "--lut", str(src), "--out", str(out)], capsys)
    assert code == 0 and out.is_file() and "wrote" in stdout
    before = out.stat().st_mtime_ns
    code, _, err = run(["tables", "build", "--lut", str(src), "--out", str(out)], capsys)
    assert code == 2 and "exists; pass --force" in err and err.count("\n") == 1
    assert out.stat().st_mtime_ns == before
    code, _, err = run(["tables", "build", "--lut", str(src), "--out", str(out), "--force"], capsys)
    assert code == 0, err


def test_tables_build_refuses_to_write_over_the_shipped_table_without_force(tmp_path, capsys):
    from nascsim._data import shipped_path

    shipped = shipped_path("tables") / TABLE_FILE
    before = shipped.read_bytes()
    src = tmp_path / "lut.json"
    lut = lut_from_shipped()
    lut["raspi4_latency"] = {k: v * 2 for k, v in lut["raspi4_latency"].items()}
    src.write_text(json.dumps(lut))
    code, _, err = run(["tables", "build", "--lut", str(src), "--out", str(shipped)], capsys)
    assert code == 2 and "pass --force" in err
    assert shipped.read_bytes() == before


def test_the_importer_reads_a_pickle_holding_numpy_arrays_and_scalars(tmp_path):
    """The restricted unpickler admits what HW-NAS-Bench's pickle may hold: dicts, lists, tuples,
    numbers, strings and numpy arrays / scalars (here under protocols 2 and 5)."""
    lut = lut_from_shipped()
    lut["raspi4_latency"] = {k: np.float64(v) for k, v in lut["raspi4_latency"].items()}
    lut["pixel3_latency"] = {k: np.float32(v) for k, v in lut["pixel3_latency"].items()}
    obj = {"nasbench201": {"cifar10": {"edgegpu_latency": np.arange(5.0), "names": ("a", "b"), "n": [1, 2]}}, "fbnet": lut}
    for protocol in (2, 5):
        pkl = tmp_path / f"p{protocol}.pickle"
        pkl.write_bytes(pickle.dumps(obj, protocol=protocol))
        t = load_tables(build_tables(pkl, tmp_path / f"p{protocol}.parquet"))
        np.testing.assert_array_equal(t.layer["raspi4_latency"], load_tables().layer["raspi4_latency"])
        np.testing.assert_allclose(t.layer["pixel3_latency"], load_tables().layer["pixel3_latency"], rtol=1e-6)


def shipped_columns() -> dict:
    from nascsim._data import shipped_path

    return read_table_columns(shipped_path("tables") / TABLE_FILE)


def write_columns(cols: dict, path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({k: pa.array(v) for k, v in cols.items()}), path)
    return path


def test_a_user_table_names_its_own_devices(tmp_path):
    """Bring your own latency table: devices are the table's <device>_latency columns; energy is optional."""
    cols = shipped_columns()
    mine = {c: cols[c] for c in ("block", "layer", "op", "classes")}
    mine["myboard_latency"] = cols["raspi4_latency"] * 3
    mine["jetson-nano_latency"] = cols["edgegpu_latency"]
    mine["myboard_energy"] = cols["raspi4_latency"] * 0.5
    t = load_tables(write_columns(mine, tmp_path / "mine.parquet"))
    assert t.latency_devices == ("myboard", "jetson-nano") and t.energy_devices == ("myboard",)
    np.testing.assert_allclose(t.layer["myboard_latency"], 3 * load_tables().layer["raspi4_latency"])
    assert network_metric(t, "myboard_latency", [0] * 22, classes=100) == pytest.approx(3 * 17.618579145142576)
    with pytest.raises(ValueError, match="no FC entry for 7 classes"):
        t.fixed_for("myboard_latency", 7)


def test_the_shipped_table_passes_its_own_validation_and_rows_may_come_in_any_order(tmp_path):
    cols = shipped_columns()
    perm = np.random.default_rng(0).permutation(len(cols["block"]))
    shuffled = tables_from_columns({k: v[perm] for k, v in cols.items()}, "shuffled")
    for m in METRICS:
        np.testing.assert_array_equal(shuffled.layer[m], load_tables().layer[m])
        assert shuffled.fixed[m] == load_tables().fixed[m]


def test_tables_check_lists_the_devices_of_a_table(capsys):
    code, out, err = run(["tables", "check"], capsys)
    assert code == 0 and "latency devices edgegpu, raspi4, pixel3, eyeriss, fpga" in out


def test_table_columns_read_as_pyarrow_converts_them(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nascsim.hw.tables import read_table_columns

    table = pa.table({
        "n": pa.array([1, None, 3, 4, 5], type=pa.int64()),     # nulls: float64 with NaN
        "i": pa.array([1, 2, 3, 4, 5], type=pa.int32()),
        "x": pa.array([0.5, 1.5, None, 3.5, 4.5], type=pa.float32()),
        "s": pa.array(["a", "b", "c", "d", "e"], type=pa.large_string()),
    })
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=2)  # three row groups: chunks, read at offsets
    got = read_table_columns(path)
    for name in table.column_names:
        want = table.column(name).to_numpy(zero_copy_only=False)
        assert got[name].dtype == want.dtype, name
        assert np.array_equal(got[name], want, equal_nan=want.dtype.kind == "f"), name


def test_a_search_starts_without_pandas_scikit_learn_or_matplotlib():
    import subprocess
    import sys

    code = ("import sys; from nascsim.api import search; search('nasc', 30.0, 0.2, steps=50); "
            "print(','.join(m for m in ('pandas', 'sklearn', 'matplotlib', 'torch') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""
