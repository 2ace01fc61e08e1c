"""End-to-end latency of a split network (eqs. 3, 8 and 10 of the paper).

    T(a, k) = T_head(a, k; device i) + T_comm(a, k) + T_tail(a, k; device j)        (eq. 3)
    T_comm  = q * n_h(a, k) / r                                                     (eq. 10, T_comm = D / r)
    T_block = FLOPs_block / Π_device          (eq. 8, latency source ``flops``)

T_head covers the stem and layers 1..k on the head device, T_tail layers k+1..22, header, pooling
and FC on the tail device. When the split layer k holds a bottleneck op (extended space), its first
two convs run on the head and its last 1x1 conv on the tail, and n_h is the depthwise output.
Latency source ``measured`` sums HW-NAS-Bench table entries; ``flops`` divides FLOPs by the fitted
Π of :mod:`nascsim.hw.devices`.

Two implementations share one :class:`LatencyModel`: :func:`breakdown` (numpy, readable, the
reference) and the numba kernels :func:`latency_one` / :func:`latency_batch`, callable from other
numba code (the ASNG loop calls :func:`latency_one`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from nascsim.hw.devices import check_device, compute_power
from nascsim.hw.flops import flop_tables
from nascsim.space import Space, check_split, get_space
from nascsim.hw.tables import MeasuredTables, load_tables

SOURCES = ("measured", "flops")

# consts vector layout shared by the numba kernels
C_STEM_HEAD, C_FIXED_HEAD, C_FIXED_TAIL, C_MS_PER_ELEMENT = 0, 1, 2, 3


@dataclass(frozen=True)
class LatencyModel:
    """Per-block latencies of one (space, head, tail, source, bits, bandwidth, classes) setting.

    Arrays (ms unless stated), L = 22 layers, K = ops of the space:

    - ``layer_head``/``layer_tail`` (L, K): whole block on the head / tail device;
    - ``split_head`` (L, K): head-side part of layer k's block when the split is after layer k,
      on the head device; ``split_tail`` (L, K): its tail-side part on the tail device;
    - ``payload`` (L+1, K): n_h in elements for split k with op o at layer k (row 0: after stem);
    - ``consts``: [stem on head, header+pool+FC on head, header+pool+FC on tail, ms per element
      sent (= 1e3 * q / r)];
    - ``flops_*``: the same decomposition in FLOPs; ``energy_head`` (L, K) and ``energy_stem``: head
      energy in mJ where the head device's table has energy, else NaN;
    - ``tables``: the latency-table file the model was built from (None: the shipped one).
    """

    space: str
    head: str
    tail: str
    source: str
    bits: float
    bandwidth: float
    classes: int
    layer_head: np.ndarray
    layer_tail: np.ndarray
    split_head: np.ndarray
    split_tail: np.ndarray
    payload: np.ndarray
    consts: np.ndarray
    flops_layer: np.ndarray
    flops_split_head: np.ndarray
    flops_split_tail: np.ndarray
    flops_stem: float
    flops_fixed_tail: float
    energy_head: np.ndarray
    energy_stem: float
    tables: str | None = None

    @property
    def arrays(self) -> tuple:
        """The tuple the numba kernels take."""
        return (self.layer_head, self.layer_tail, self.split_head, self.split_tail, self.payload, self.consts)

    @property
    def measured_ops(self) -> np.ndarray:
        """Boolean (K,): ops that have latency values (all of them for ``flops``)."""
        return np.all(np.isfinite(self.layer_head), axis=0) & np.all(np.isfinite(self.layer_tail), axis=0)


def build_latency_model(
    space: str | Space = "fbnet",
    head: str = "raspi4",
    tail: str = "edgegpu",
    source: str | None = None,
    bits: float = 32,
    bandwidth: float = 8e6,
    classes: int = 10,
    tables: str | os.PathLike | MeasuredTables | None = None,
) -> LatencyModel:
    """Latency arrays for one setting. ``source`` defaults to ``measured`` for ``fbnet`` and to
    ``flops`` for ``extended`` (no table measures the bottleneck ops).

    ``tables``: a latency-table file in the schema of ``tables/README.md`` (devices are the
    ``<device>_latency`` columns it has), or loaded :class:`~nascsim.hw.tables.MeasuredTables`;
    None reads the shipped HW-NAS-Bench table.
    """
    sp = space if isinstance(space, Space) else get_space(space)
    table_path = None if tables is None or isinstance(tables, MeasuredTables) else str(tables)
    tables = tables if isinstance(tables, MeasuredTables) else load_tables(tables)
    check_device(head, tables)
    check_device(tail, tables)
    if source is None:
        source = "measured" if sp.name == "fbnet" else "flops"
    if source not in SOURCES:
        raise ValueError(f"unknown latency source {source!r}; expected one of {', '.join(SOURCES)}")
    if not np.isfinite(bits) or bits <= 0:
        raise ValueError(f"bits must be positive, got {bits}")
    if not np.isfinite(bandwidth) or bandwidth <= 0:
        raise ValueError(f"bandwidth must be positive (bit/s), got {bandwidth}")
    if int(classes) != classes or classes < 1:
        raise ValueError(f"classes must be a positive integer, got {classes}")
    classes = int(classes)

    ft = flop_tables(sp, classes)
    n_l, n_o = sp.n_layers, sp.n_ops
    if source == "flops":
        power = compute_power(tables)
        per_ms_head = power[head].gflops * 1e6
        per_ms_tail = power[tail].gflops * 1e6
        layer_head = ft.layer / per_ms_head
        layer_tail = ft.layer / per_ms_tail
        split_head = ft.split_head / per_ms_head
        split_tail = ft.split_tail / per_ms_tail
        fixed = ft.header + ft.pool + ft.fc
        consts = np.array([ft.stem / per_ms_head, fixed / per_ms_head, fixed / per_ms_tail, 0.0])
    else:
        layer_head = np.full((n_l, n_o), np.nan)
        layer_tail = np.full((n_l, n_o), np.nan)
        n_fb = tables.layer[f"{head}_latency"].shape[1]
        layer_head[:, :n_fb] = tables.layer[f"{head}_latency"]
        layer_tail[:, :n_fb] = tables.layer[f"{tail}_latency"]
        split_head = layer_head.copy()
        split_tail = np.where(np.isfinite(layer_tail), 0.0, np.nan)
        fh = tables.fixed_for(f"{head}_latency", classes)
        ftl = tables.fixed_for(f"{tail}_latency", classes)
        consts = np.array(
            [fh["stem"], fh["header"] + fh["pool"] + fh["fc"], ftl["header"] + ftl["pool"] + ftl["fc"], 0.0]
        )
    consts[C_MS_PER_ELEMENT] = 1e3 * float(bits) / float(bandwidth)

    energy_head = np.full((n_l, n_o), np.nan)
    energy_stem = float("nan")
    if source == "measured" and f"{head}_energy" in tables.layer:
        n_fb = tables.layer[f"{head}_energy"].shape[1]
        energy_head[:, :n_fb] = tables.layer[f"{head}_energy"]
        energy_stem = tables.fixed_for(f"{head}_energy", classes)["stem"]

    return LatencyModel(
        space=sp.name,
        head=head,
        tail=tail,
        source=source,
        bits=float(bits),
        bandwidth=float(bandwidth),
        classes=classes,
        layer_head=np.ascontiguousarray(layer_head),
        layer_tail=np.ascontiguousarray(layer_tail),
        split_head=np.ascontiguousarray(split_head),
        split_tail=np.ascontiguousarray(split_tail),
        payload=np.ascontiguousarray(ft.payload),
        consts=consts,
        flops_layer=ft.layer,
        flops_split_head=ft.split_head,
        flops_split_tail=ft.split_tail,
        flops_stem=ft.stem,
        flops_fixed_tail=ft.header + ft.pool + ft.fc,
        energy_head=energy_head,
        energy_stem=energy_stem,
        tables=table_path,
    )


def check_devices(head: str, tail: str, tables: str | os.PathLike | None = None) -> None:
    """``ValueError`` naming ``head`` or ``tail`` when the tables (the shipped ones when None) have
    no latency column for it, or naming the file when it cannot be read."""
    t = load_tables(tables)
    check_device(head, t)
    check_device(tail, t)


def check_measurable(model: LatencyModel, arch: np.ndarray) -> None:
    """Raise if ``arch`` uses an op the latency tables do not measure (bottleneck ops)."""
    ok = model.measured_ops
    space = get_space(model.space)
    for li, op in enumerate(arch):
        if not ok[int(op)]:
            raise ValueError(
                f"op {space.ops[int(op)].name} at layer {li + 1} has no measured latency "
                "(HW-NAS-Bench does not measure bottleneck ops); use --source flops"
            )


def breakdown(model: LatencyModel, arch: np.ndarray, split: int) -> dict:
    """Numpy reference of eqs. 3 and 8 for one (architecture, split).

    Returns T_head_ms, T_comm_ms, T_tail_ms, T_ms, payload_elements, payload_bits, head_flops,
    tail_flops and E_head_mJ (None where the head device has no energy table).
    """
    space = get_space(model.space)
    arch = np.asarray(arch, dtype=np.int64)
    split = check_split(split, space)
    check_measurable(model, arch)
    layers = np.arange(space.n_layers)
    before = layers < split - 1  # layers fully on the head (0-based: layers 1..k-1)
    after = layers >= split  # layers fully on the tail (k+1..22)
    lh = model.layer_head[layers, arch]
    lt = model.layer_tail[layers, arch]
    fl = model.flops_layer[layers, arch]
    # accumulate in network order (stem first, header/pool/FC first on the tail side), the same
    # order as the numba kernel, so both give bit-identical sums
    T_head = float(model.consts[C_STEM_HEAD])
    for v in lh[before]:
        T_head += v
    T_tail = float(model.consts[C_FIXED_TAIL])
    for v in lt[after]:
        T_tail += v
    head_flops = model.flops_stem + fl[before].sum()
    tail_flops = fl[after].sum() + model.flops_fixed_tail
    e = model.energy_stem + model.energy_head[layers, arch][before].sum()
    if split >= 1:
        k, o = split - 1, arch[split - 1]
        T_head += model.split_head[k, o]
        T_tail += model.split_tail[k, o]
        head_flops += model.flops_split_head[k, o]
        tail_flops += model.flops_split_tail[k, o]
        e += model.energy_head[k, o]
        n_h = model.payload[split, o]
    else:
        n_h = model.payload[0, 0]
    T_comm = n_h * model.consts[C_MS_PER_ELEMENT]
    return {
        "T_head_ms": float(T_head),
        "T_comm_ms": float(T_comm),
        "T_tail_ms": float(T_tail),
        "T_ms": float(T_head + T_comm + T_tail),
        "payload_elements": int(n_h),
        "payload_bits": float(n_h * model.bits),
        "head_flops": float(head_flops),
        "tail_flops": float(tail_flops),
        "E_head_mJ": None if not np.isfinite(e) else float(e),
    }


def device_only_latency(model: LatencyModel, arch: np.ndarray) -> float:
    """Whole network on the head device (the HWNAS baselines' latency), numpy reference."""
    arch = np.asarray(arch, dtype=np.int64)
    layers = np.arange(len(arch))
    return float(model.consts[C_STEM_HEAD] + model.layer_head[layers, arch].sum() + model.consts[C_FIXED_HEAD])


# ---------------------------------------------------------------------------------------------
# numba kernels (imported lazily by callers; numba is not needed to build a LatencyModel)
# ---------------------------------------------------------------------------------------------

def _kernels():
    from nascsim.hw import _latency_kernels

    return _latency_kernels


def latency_batch(model: LatencyModel, archs: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """Numba batch path: (n, 3) array of T_head, T_comm, T_tail in ms for n (arch, split) pairs."""
    archs = np.ascontiguousarray(archs, dtype=np.int64)
    splits = np.ascontiguousarray(splits, dtype=np.int64)
    out = np.empty((archs.shape[0], 3))
    _kernels().latency_batch(archs, splits, model.arrays, out)
    return out


def breakdown_batch(model: LatencyModel, archs: np.ndarray, splits: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`breakdown` for n (arch, split) pairs at once: archs (n, 22) op indices, splits (n,).

    The latency terms come from the numba batch kernel (the same sums in the same order as
    :func:`breakdown`, so bit-identical); payload, FLOPs and head energy from numpy. Returns
    arrays of shape (n,) under the keys of :func:`breakdown` (``E_head_mJ`` NaN where the head
    device has no energy table).
    """
    space = get_space(model.space)
    archs = np.ascontiguousarray(np.atleast_2d(archs), dtype=np.int64)
    splits = np.ascontiguousarray(np.broadcast_to(np.asarray(splits, dtype=np.int64), (archs.shape[0],)))
    if archs.shape[1] != space.n_layers:
        raise ValueError(f"archs have {archs.shape[1]} layers; the {space.name} space needs {space.n_layers}")
    for k in splits:
        check_split(k, space)
    bad = ~model.measured_ops[archs]
    if bad.any():
        i, li = map(int, np.argwhere(bad)[0])
        check_measurable(model, archs[i])  # raises, naming the op and the layer
    T = latency_batch(model, archs, splits)
    layers = np.arange(space.n_layers)
    before = layers[None, :] < (splits[:, None] - 1)
    after = layers[None, :] >= splits[:, None]
    fl = model.flops_layer[layers[None, :], archs]
    k = np.maximum(splits - 1, 0)
    o = archs[np.arange(len(splits)), k]
    at_split = splits >= 1
    head_flops = model.flops_stem + (fl * before).sum(axis=1) + np.where(at_split, model.flops_split_head[k, o], 0.0)
    tail_flops = (fl * after).sum(axis=1) + model.flops_fixed_tail + np.where(at_split, model.flops_split_tail[k, o], 0.0)
    e_layer = model.energy_head[layers[None, :], archs]
    energy = model.energy_stem + np.where(before, e_layer, 0.0).sum(axis=1) + np.where(at_split, model.energy_head[k, o], 0.0)
    n_h = np.where(at_split, model.payload[splits, o], model.payload[0, 0])
    return {
        "T_head_ms": T[:, 0],
        "T_comm_ms": T[:, 1],
        "T_tail_ms": T[:, 2],
        "T_ms": T[:, 0] + T[:, 1] + T[:, 2],
        "payload_elements": n_h.astype(np.int64),
        "payload_bits": n_h * model.bits,
        "head_flops": head_flops,
        "tail_flops": tail_flops,
        "E_head_mJ": energy,
    }
