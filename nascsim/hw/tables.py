"""HW-NAS-Bench FBNet lookup tables: importer, table files, and array views.

Source: HW-NAS-Bench (Li et al., "HW-NAS-Bench: Hardware-Aware Neural Architecture Search
Benchmark", ICLR 2021), MIT license. The importer reads the official pickle
(``HW-NAS-Bench-v1_0.pickle``, whose ``HW_metrics["fbnet"]`` holds the tables) or a JSON export of
that same object, checks that every key the CIFAR macro-architecture needs is there, and writes one
long parquet table to the path the user names. A network's metric is the sum of its blocks' entries.

The pickle is read with a restricted unpickler (:func:`restricted_loads`, :mod:`nascsim.safe_pickle`)
that rebuilds only the types that file holds -- dicts, lists, tuples, numbers, strings and numpy
arrays / scalars of plain numbers -- and refuses anything else (a pickle that would call a
function, build another object or an object array from raw bytes), so no code from the file runs.

Table files (the shipped ``tables/hwnasbench_fbnet_cifar.parquet``, or a user's own with
``--tables FILE``) are validated completely by :func:`tables_from_columns` before use; the schema
is in ``tables/README.md``. Devices are named by the table: a column ``<device>_latency`` (ms) makes
a device, ``<device>_energy`` (mJ) adds its energy. Reading needs pyarrow only (no polars).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nascsim.space import (
    FBNET_OPS,
    FINAL_RESOLUTION,
    HEADER_CHANNELS,
    INPUT_RESOLUTION,
    LAYERS,
    STEM_CHANNELS,
    WIDTHS,
    Layer,
    Op,
)

LATENCY_DEVICES = ("edgegpu", "raspi4", "pixel3", "eyeriss", "fpga")
ENERGY_DEVICES = ("edgegpu", "eyeriss", "fpga")
METRICS = (
    "edgegpu_latency",
    "edgegpu_energy",
    "raspi4_latency",
    "pixel3_latency",
    "eyeriss_latency",
    "eyeriss_energy",
    "fpga_latency",
    "fpga_energy",
)
TABLE_CLASSES = (10, 100)
TABLE_FILE = "hwnasbench_fbnet_cifar.parquet"
BLOCKS = ("stem", "layer", "header", "pool", "fc")
TABLE_REQUIRED = ("block", "layer", "op", "classes")
DEVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
MAX_TABLE_ROWS = 100_000
MAX_TABLE_BYTES = 64 * 2**20  # uncompressed column data of a table file
MAX_ENTRY = 1e6  # a block's latency (ms) or energy (mJ): 1,000 s per layer is no device's


class TableError(ValueError):
    """An unreadable, incomplete or malformed lookup-table file (one line naming the bad value)."""


def restricted_loads(data: bytes, source: str = "pickle"):
    """Unpickle ``data`` admitting only dicts, lists, tuples, numbers, strings and numpy arrays /
    scalars of plain numbers (:mod:`nascsim.safe_pickle`); anything else raises :class:`TableError`
    (one line) before it is built."""
    from nascsim.safe_pickle import RefusedPickle, plain_loads

    try:
        return plain_loads(data)
    except RefusedPickle as exc:
        raise TableError(
            f"{source}: refused to unpickle ({exc}); a lookup-table pickle may hold only dicts, lists, "
            "tuples, numbers, strings and numpy arrays of numbers"
        ) from None
    except (RecursionError, MemoryError) as exc:
        raise TableError(f"{source}: refused to unpickle ({exc.__class__.__name__})") from None
    except Exception as exc:  # truncated or garbage bytes raise many types
        raise TableError(f"{source} is neither JSON nor a readable pickle: {exc.__class__.__name__}") from None


def block_key(layer: Layer, op: Op) -> str:
    """HW-NAS-Bench key of a searchable block (as ``fbnet_get_metrics`` builds it)."""
    h = layer.h_in
    if op.kind == "skip":
        return f"Skip_H{h}_W{h}_Cin{layer.c_in}_Cout{layer.c_out}_stride{layer.stride}"
    if op.kind != "conv":
        raise ValueError(f"HW-NAS-Bench has no entry for op {op.name}")
    return (
        f"ConvBlock_H{h}_W{h}_Cin{layer.c_in}_Cout{layer.c_out}_exp{int(op.expansion)}"
        f"_kernel{op.kernel}_stride{layer.stride}_group{op.groups}"
    )


def fixed_keys(classes: int) -> dict[str, str]:
    """Keys of the fixed blocks of the CIFAR macro-architecture."""
    r, h = INPUT_RESOLUTION, FINAL_RESOLUTION
    return {
        "stem": f"ConvNorm_H{r}_W{r}_Cin3_Cout{STEM_CHANNELS}_kernel3_stride1_group1",
        "header": f"ConvNorm_H{h}_W{h}_Cin{WIDTHS[-1]}_Cout{HEADER_CHANNELS}_kernel1_stride1_group1",
        "pool": f"AvgP_H{h}_W{h}_Cin{HEADER_CHANNELS}_Cout{HEADER_CHANNELS}_kernel{h}_stride1",
        "fc": f"FC_Cin{HEADER_CHANNELS}_Cout{classes}",
    }


def read_lut(path: str | os.PathLike) -> dict:
    """Read the FBNet lookup tables from the official pickle or its JSON export.

    Returns the ``{metric: {key: value}}`` mapping. Accepts a pickle of the whole ``HW_metrics``
    object (with an ``"fbnet"`` entry) or of the FBNet tables alone.
    """
    from nascsim.atomic import read_regular_bytes
    from nascsim.safe_load import StructureError, loads_json

    path = Path(path)
    if not path.exists():
        raise TableError(f"lookup-table file {str(path)!r} does not exist")
    raw = read_regular_bytes(path, "lookup-table file")
    if raw.lstrip()[:1] in (b"{", b"["):  # JSON; a pickle starts with an opcode (b"\x80", b"(", ...)
        try:
            obj = loads_json(raw, repr(str(path)))
        except StructureError as exc:
            raise TableError(str(exc)) from None
    else:
        obj = restricted_loads(raw, repr(str(path)))
    if isinstance(obj, dict) and "fbnet" in obj and isinstance(obj["fbnet"], dict):
        obj = obj["fbnet"]
    if not isinstance(obj, dict):
        raise TableError(f"{str(path)!r} does not hold a mapping of metric name to lookup table")
    return obj


def required_keys(classes: tuple[int, ...] = TABLE_CLASSES) -> list[str]:
    keys = [block_key(layer, op) for layer in LAYERS for op in FBNET_OPS]
    for c in classes:
        keys += list(fixed_keys(c).values())
    return list(dict.fromkeys(keys))


def check_lut(lut: dict, source: str = "lookup table") -> None:
    """Raise :class:`TableError` naming the first missing metric or key."""
    for metric in METRICS:
        if metric not in lut or not isinstance(lut[metric], dict):
            raise TableError(f"{source}: metric {metric!r} is missing")
        table = lut[metric]
        missing = [k for k in required_keys() if k not in table]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise TableError(f"{source}: metric {metric!r} lacks key {missing[0]!r}{more}")
        for k in required_keys():
            v = table[k]
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
                raise TableError(f"{source}: metric {metric!r} key {k!r} has non-numeric value {_short(v)}")
            if v < 0:
                raise TableError(f"{source}: metric {metric!r} key {k!r} has negative value {float(v)!r}")


def _short(v) -> str:
    text = repr(v).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def lut_rows(lut: dict) -> dict[str, list]:
    """The long table: one row per block entry, one column per metric."""
    cols: dict[str, list] = {"block": [], "layer": [], "op": [], "op_name": [], "classes": [], "key": []}
    for m in METRICS:
        cols[m] = []

    def add(block: str, layer: int, op: int, op_name: str, classes: int | None, key: str) -> None:
        cols["block"].append(block)
        cols["layer"].append(layer)
        cols["op"].append(op)
        cols["op_name"].append(op_name)
        cols["classes"].append(classes)
        cols["key"].append(key)
        for m in METRICS:
            cols[m].append(float(lut[m][key]))

    fixed10 = fixed_keys(TABLE_CLASSES[0])
    add("stem", 0, -1, "", None, fixed10["stem"])
    for layer in LAYERS:
        for oi, op in enumerate(FBNET_OPS):
            add("layer", layer.index, oi, op.name, None, block_key(layer, op))
    add("header", len(LAYERS) + 1, -1, "", None, fixed10["header"])
    add("pool", len(LAYERS) + 2, -1, "", None, fixed10["pool"])
    for c in TABLE_CLASSES:
        add("fc", len(LAYERS) + 3, -1, "", c, fixed_keys(c)["fc"])
    return cols


def build_tables(lut_path: str | os.PathLike, out_path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Import a pickle/JSON lookup table into the parquet file ``out_path``.

    Validates everything (the lookup table, then the table it makes, as :func:`load_tables` would)
    before writing; the file is written atomically. An existing file (the shipped table included)
    is replaced only with ``overwrite=True``.
    """
    import polars as pl

    from nascsim.atomic import check_output_target

    out_path = Path(out_path)
    check_output_target(out_path, "--out")
    if out_path.suffix != ".parquet":
        raise TableError(f"--out {str(out_path)!r} must name a .parquet file")
    if out_path.is_dir():
        raise TableError(f"--out {str(out_path)!r} is a folder; name the .parquet file to write")
    if out_path.exists() and not overwrite:
        raise TableError(f"{str(out_path)!r} exists; pass --force to replace it")
    lut = read_lut(lut_path)
    check_lut(lut, source=str(lut_path))
    frame = pl.DataFrame(lut_rows(lut), schema_overrides={"classes": pl.Int64})
    tables_from_columns({c: frame[c].to_numpy() for c in frame.columns}, source=f"table built from {str(lut_path)!r}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(frame, out_path)
    return out_path


def atomic_write_parquet(frame, target: Path) -> None:
    """Write a polars frame to ``target`` atomically (:mod:`nascsim.atomic`)."""
    from nascsim.atomic import atomic_path

    with atomic_path(target) as tmp:
        frame.write_parquet(tmp)


@dataclass(frozen=True)
class MeasuredTables:
    """Lookup-table entries as arrays for one metric each.

    ``layer[metric]``: shape (22, 9) in FBNet op order; ``fixed[metric]``: stem, header, pool and
    ``fc{classes}`` entries. ``latency_devices`` / ``energy_devices``: the devices the table names
    (columns ``<device>_latency`` / ``<device>_energy``), in column order.
    """

    layer: dict[str, np.ndarray]
    fixed: dict[str, dict[str, float]]
    latency_devices: tuple[str, ...] = LATENCY_DEVICES
    energy_devices: tuple[str, ...] = ENERGY_DEVICES
    classes: tuple[int, ...] = TABLE_CLASSES

    @property
    def devices(self) -> tuple[str, ...]:
        """Devices with a latency column (``<device>_latency``), in the file's column order."""
        return self.latency_devices

    def fixed_for(self, metric: str, classes: int) -> dict[str, float]:
        if metric not in self.fixed:
            raise ValueError(f"the latency table has no {metric!r} column (devices: {', '.join(self.latency_devices)})")
        f = self.fixed[metric]
        key = f"fc{classes}"
        if key not in f:
            raise ValueError(
                f"the latency table has no FC entry for {classes} classes (it has {', '.join(str(c) for c in self.classes)}); "
                "use --source flops"
            )
        return {"stem": f["stem"], "header": f["header"], "pool": f["pool"], "fc": f[key]}


def _device_metrics(names, source: str) -> tuple[list[str], list[str]]:
    """Latency and energy devices of a table's column names; checks their names."""
    lat, energy = [], []
    for name in names:
        for suffix, found in (("_latency", lat), ("_energy", energy)):
            if name.endswith(suffix):
                device = name.removesuffix(suffix)
                if not DEVICE_NAME.fullmatch(device):
                    raise TableError(f"{source}: column {name!r} names device {device!r}; device names are letters, digits and '-'")
                found.append(device)
    if not lat:
        raise TableError(f"{source}: no <device>_latency column (e.g. raspi4_latency, in ms)")
    orphan = [d for d in energy if d not in lat]
    if orphan:
        raise TableError(f"{source}: column {orphan[0]}_energy has no {orphan[0]}_latency column")
    return lat, energy


def _integers(values: np.ndarray, name: str, source: str, rows: np.ndarray | None = None) -> np.ndarray:
    """Integer values of column ``name`` (on ``rows``), or TableError naming the first bad one."""
    v = np.asarray(values)
    if v.dtype.kind not in "iuf":
        raise TableError(f"{source}: column {name!r} has type {v.dtype}, expected integers")
    sub = v if rows is None else v[rows]
    bad = ~np.isfinite(sub.astype(np.float64)) | (sub.astype(np.float64) != np.round(sub.astype(np.float64)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0]) if rows is None else int(rows[np.flatnonzero(bad)[0]])
        raise TableError(f"{source}: column {name!r} row {i} holds {v[i].item()!r}, not an integer")
    return v.astype(np.float64)


def tables_from_columns(cols: dict[str, np.ndarray], source: str = "table") -> MeasuredTables:
    """:class:`MeasuredTables` from a table's columns (numpy arrays), validated completely.

    Required: ``block`` (stem, layer, header, pool, fc), ``layer`` (0 stem, 1..22, 23 header, 24
    pool, 25 FC), ``op`` (0..8 for layer rows), ``classes`` (for fc rows), and one or more
    ``<device>_latency`` columns (ms; optional ``<device>_energy``, mJ): finite, >= 0. Rows: one
    stem, header and pool, every (layer 1..22, op 0..8) exactly once, one fc row per number of
    classes. Any problem raises :class:`TableError` naming the column, row and value.
    """
    n_layers, n_ops = len(LAYERS), len(FBNET_OPS)
    missing = [c for c in TABLE_REQUIRED if c not in cols]
    if missing:
        raise TableError(f"{source}: missing column(s) {', '.join(missing)}")
    lat_devices, energy_devices = _device_metrics(list(cols), source)
    metrics = [f"{d}_latency" for d in lat_devices] + [f"{d}_energy" for d in energy_devices]
    arrays = {c: np.asarray(cols[c]) for c in TABLE_REQUIRED + tuple(metrics)}
    n = len(arrays["block"])
    for c, a in arrays.items():
        if a.ndim != 1 or len(a) != n:
            raise TableError(f"{source}: column {c!r} has shape {a.shape}; every column needs {n} values")
    if not 0 < n <= MAX_TABLE_ROWS:
        raise TableError(f"{source}: {n} rows; a table has between 1 and {MAX_TABLE_ROWS}")
    block = arrays["block"]
    if block.dtype.kind not in "UO" or not all(isinstance(b, str) for b in block.tolist()):
        raise TableError(f"{source}: column 'block' must hold strings ({', '.join(BLOCKS)})")
    block = block.astype(str)
    unknown = ~np.isin(block, BLOCKS)
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise TableError(f"{source}: row {i} has block {str(block[i])!r}; expected one of {', '.join(BLOCKS)}")
    for name in ("stem", "header", "pool"):
        count = int(np.sum(block == name))
        if count != 1:
            raise TableError(f"{source}: {count} {name!r} rows; a table has exactly one")
    layer_rows = np.flatnonzero(block == "layer")
    fc_rows = np.flatnonzero(block == "fc")
    layer_idx = _integers(arrays["layer"], "layer", source, layer_rows)
    op_idx = _integers(arrays["op"], "op", source, layer_rows)
    li, oi = layer_idx[layer_rows].astype(np.int64), op_idx[layer_rows].astype(np.int64)
    out = (li < 1) | (li > n_layers) | (oi < 0) | (oi >= n_ops)
    if out.any():
        i = int(layer_rows[np.flatnonzero(out)[0]])
        raise TableError(f"{source}: layer row {i} has layer {int(layer_idx[i])}, op {int(op_idx[i])}; expected layer 1..{n_layers}, op 0..{n_ops - 1}")
    cell = (li - 1) * n_ops + oi
    counts = np.bincount(cell, minlength=n_layers * n_ops)
    if (counts != 1).any():
        c = int(np.flatnonzero(counts != 1)[0])
        raise TableError(f"{source}: layer {c // n_ops + 1}, op {c % n_ops} has {int(counts[c])} rows; every (layer 1..{n_layers}, op 0..{n_ops - 1}) needs exactly one")
    if len(fc_rows) == 0:
        raise TableError(f"{source}: no 'fc' row (one per number of classes, e.g. 10 and 100)")
    classes = _integers(arrays["classes"], "classes", source, fc_rows)[fc_rows].astype(np.int64)
    if (classes < 1).any() or len(set(classes.tolist())) != len(classes):
        raise TableError(f"{source}: fc rows have classes {classes.tolist()}; each must be a distinct positive integer")
    order = layer_rows[np.argsort(cell, kind="stable")]
    layer: dict[str, np.ndarray] = {}
    fixed: dict[str, dict[str, float]] = {}
    for m in metrics:
        values = arrays[m]
        if values.dtype.kind not in "iuf":
            raise TableError(f"{source}: column {m!r} has type {values.dtype}, expected numbers")
        values = values.astype(np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise TableError(f"{source}: column {m!r} row {i} ({block[i]}) is {float(values[i])!r}; entries must be finite")
        if (values < 0).any():
            i = int(np.flatnonzero(values < 0)[0])
            raise TableError(f"{source}: column {m!r} row {i} ({block[i]}) is negative ({float(values[i])!r})")
        if (values >= MAX_ENTRY).any():  # 22 layers of such entries could overflow to inf
            i = int(np.flatnonzero(values >= MAX_ENTRY)[0])
            raise TableError(f"{source}: column {m!r} row {i} ({block[i]}) is {float(values[i])!r}; entries "
                             f"(ms or mJ per block) must lie below {MAX_ENTRY:g}")
        layer[m] = values[order].reshape(n_layers, n_ops)
        f = {name: float(values[np.flatnonzero(block == name)[0]]) for name in ("stem", "header", "pool")}
        for row, c in zip(fc_rows.tolist(), classes.tolist()):
            f[f"fc{c}"] = float(values[row])
        fixed[m] = f
    return MeasuredTables(layer, fixed, tuple(lat_devices), tuple(energy_devices), tuple(sorted(classes.tolist())))


def read_table_columns(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The columns of a table parquet as numpy arrays, read with pyarrow (no polars: the torch
    stage runs where polars is not installed). Unreadable files and nested column types raise
    :class:`TableError`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = f"table file {str(path)!r}"
    from nascsim.limits import UnreadableParquet, check_parquet

    try:
        check_parquet(path, "table file", MAX_TABLE_ROWS, MAX_TABLE_BYTES)  # the footer, before any column
    except UnreadableParquet as exc:
        raise TableError(f"cannot read {source}: {exc.kind}") from None
    except ValueError as exc:
        raise TableError(str(exc)) from None
    except OSError as exc:
        raise TableError(f"cannot read {source}: {exc.__class__.__name__}") from None
    try:
        with pq.ParquetFile(path) as f:  # one file: not pq.read_table, whose dataset layer imports pandas
            table = f.read()
    except Exception as exc:  # pyarrow raises several types for missing, truncated or garbage files
        raise TableError(f"cannot read {source}: {exc.__class__.__name__}") from None
    cols = {}
    for field in table.schema:
        t = field.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)):
            raise TableError(f"{source}: column {field.name!r} has type {field.type}, expected numbers or strings")
        col = table.column(field.name)
        if pa.types.is_dictionary(field.type):
            col = col.cast(t)
        cols[field.name] = _column_to_numpy(col.combine_chunks())
    return cols


def _column_to_numpy(col) -> np.ndarray:
    """A pyarrow Array as numpy, as pyarrow's ``to_numpy(zero_copy_only=False)`` gives it (NaN
    where a number is null) but read from the buffers: pyarrow's own conversion imports pandas, a
    quarter of a search's start-up."""
    import pyarrow as pa

    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return np.array(col.to_pylist(), dtype=object)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        return col.to_numpy(zero_copy_only=False)
    if col.null_count and pa.types.is_integer(col.type):
        col = col.cast(pa.float64())
    dtype = np.dtype(_NUMPY_NAMES.get(str(col.type), str(col.type)))
    values = np.frombuffer(col.buffers()[1], dtype=dtype)[col.offset:col.offset + len(col)].copy()
    if col.null_count:
        bits = np.unpackbits(np.frombuffer(col.buffers()[0], dtype=np.uint8), bitorder="little")
        values[bits[col.offset:col.offset + len(col)] == 0] = np.nan
    return values


_NUMPY_NAMES = {"halffloat": "float16", "float": "float32", "double": "float64"}

_CACHE: dict[tuple, MeasuredTables] = {}


def load_tables(path: str | os.PathLike | None = None) -> MeasuredTables:
    """The shipped tables (``tables/hwnasbench_fbnet_cifar.parquet``), or those at ``path`` (a
    table in the schema of ``tables/README.md``), validated completely; cached per file version."""
    from nascsim._data import shipped_path

    p = Path(path) if path is not None else shipped_path("tables") / TABLE_FILE
    if not p.is_file():
        raise TableError(f"table file {str(p)!r} not found")
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _CACHE:
        _CACHE[key] = tables_from_columns(read_table_columns(p), f"table file {str(p)!r}")
    return _CACHE[key]


def network_metric(tables: MeasuredTables, metric: str, arch, classes: int = 100) -> float:
    """Whole-network sum of a metric, as the official ``fbnet_get_metrics`` computes it."""
    f = tables.fixed_for(metric, classes)
    total = f["stem"]
    for li, op in enumerate(arch):
        total += tables.layer[metric][li, int(op)]
    return total + f["header"] + f["pool"] + f["fc"]
