"""HW-NAS-Bench FBNet lookup tables: importer, shipped parquet, and array views.

Source: HW-NAS-Bench (Li et al., "HW-NAS-Bench: Hardware-Aware Neural Architecture Search
Benchmark", ICLR 2021), MIT license. The importer reads the official pickle
(``HW-NAS-Bench-v1_0.pickle``, whose ``HW_metrics["fbnet"]`` holds the tables) or a JSON export of
that same object, checks that every key the CIFAR macro-architecture needs is there, and writes one
long parquet table under ``tables/``. A network's metric is the sum of its blocks' entries.
"""

from __future__ import annotations

import json
import os
import pickle
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


class TableError(ValueError):
    """An unreadable or incomplete lookup-table file."""


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
    path = Path(path)
    if not path.is_file():
        raise TableError(f"lookup-table file {str(path)!r} does not exist")
    raw = path.read_bytes()
    obj = None
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        try:
            obj = pickle.loads(raw)
        except Exception as exc:  # any unpickling failure means the file is unreadable
            raise TableError(f"{str(path)!r} is neither JSON nor a pickle: {exc.__class__.__name__}") from None
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
            if not isinstance(v, (int, float)) or not np.isfinite(v):
                raise TableError(f"{source}: metric {metric!r} key {k!r} has non-numeric value {v!r}")


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


def build_tables(lut_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Import a pickle/JSON lookup table into ``out_dir/hwnasbench_fbnet_cifar.parquet``.

    Validates everything before writing; the file is written atomically (temp file + rename).
    """
    import polars as pl

    lut = read_lut(lut_path)
    check_lut(lut, source=str(lut_path))
    frame = pl.DataFrame(lut_rows(lut), schema_overrides={"classes": pl.Int64})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / TABLE_FILE
    atomic_write_parquet(frame, target)
    return target


def atomic_write_parquet(frame, target: Path) -> None:
    """Write a polars frame to ``target`` atomically (:mod:`nascsim.atomic`)."""
    from nascsim.atomic import atomic_path

    with atomic_path(target) as tmp:
        frame.write_parquet(tmp)


@dataclass(frozen=True)
class MeasuredTables:
    """HW-NAS-Bench entries as arrays for one metric each.

    ``layer[metric]``: shape (22, 9) in FBNet op order; ``fixed[metric]``: stem, header, pool and
    ``fc{classes}`` entries.
    """

    layer: dict[str, np.ndarray]
    fixed: dict[str, dict[str, float]]

    @property
    def devices(self) -> tuple[str, ...]:
        """Devices with a latency column (``<device>_latency``), in the file's column order."""
        return tuple(m[: -len("_latency")] for m in self.layer if m.endswith("_latency"))

    def fixed_for(self, metric: str, classes: int) -> dict[str, float]:
        f = self.fixed[metric]
        key = f"fc{classes}"
        if key not in f:
            raise ValueError(
                f"HW-NAS-Bench has no FC entry for {classes} classes (it has {', '.join(str(c) for c in TABLE_CLASSES)}); "
                "use --source flops"
            )
        return {"stem": f["stem"], "header": f["header"], "pool": f["pool"], "fc": f[key]}


def tables_from_columns(cols: dict[str, np.ndarray]) -> MeasuredTables:
    """:class:`MeasuredTables` from the long table's columns (``block``, ``layer``, ``op``,
    ``classes`` and one column per metric, as numpy arrays)."""
    block = np.asarray(cols["block"]).astype(str)
    layer_rows = np.flatnonzero(block == "layer")
    order = layer_rows[np.lexsort((np.asarray(cols["op"])[layer_rows], np.asarray(cols["layer"])[layer_rows]))]
    classes = np.asarray(cols["classes"], dtype=np.float64)  # null (NaN) outside the fc rows
    layer: dict[str, np.ndarray] = {}
    fixed: dict[str, dict[str, float]] = {}
    metrics = [m for m in cols if m.endswith("_latency") or m.endswith("_energy")]  # devices named by the table
    for m in metrics:
        values = np.asarray(cols[m], dtype=np.float64)
        layer[m] = values[order].reshape(len(LAYERS), len(FBNET_OPS))
        f: dict[str, float] = {}
        for name in ("stem", "header", "pool"):
            f[name] = float(values[np.flatnonzero(block == name)[0]])
        for c in TABLE_CLASSES:
            f[f"fc{c}"] = float(values[np.flatnonzero((block == "fc") & (classes == c))[0]])
        fixed[m] = f
    return MeasuredTables(layer, fixed)


def read_table_columns(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The columns of a table parquet as numpy arrays, read with pyarrow (no polars: the torch
    stage runs where polars is not installed)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


_CACHE: dict[str, MeasuredTables] = {}


def load_tables(path: str | os.PathLike | None = None) -> MeasuredTables:
    """The shipped tables (``tables/hwnasbench_fbnet_cifar.parquet``), or those at ``path``."""
    from nascsim._data import shipped_path

    p = Path(path) if path is not None else shipped_path("tables") / TABLE_FILE
    key = str(p.resolve())
    if key not in _CACHE:
        try:
            cols = read_table_columns(p)
        except Exception as exc:
            raise TableError(f"cannot read table file {str(p)!r}: {exc.__class__.__name__}") from None
        _CACHE[key] = tables_from_columns(cols)
    return _CACHE[key]


def network_metric(tables: MeasuredTables, metric: str, arch, classes: int = 100) -> float:
    """Whole-network sum of a metric, as the official ``fbnet_get_metrics`` computes it."""
    f = tables.fixed_for(metric, classes)
    total = f["stem"]
    for li, op in enumerate(arch):
        total += tables.layer[metric][li, int(op)]
    return total + f["header"] + f["pool"] + f["fc"]
