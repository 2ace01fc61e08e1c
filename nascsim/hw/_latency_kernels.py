"""Numba kernels of eqs. 3 and 8 over the arrays of :class:`nascsim.hw.latency.LatencyModel`.

``lat`` is ``LatencyModel.arrays``: (layer_head, layer_tail, split_head, split_tail, payload,
consts). One evaluation costs O(layers).
"""

from __future__ import annotations

from numba import njit

from nascsim._jit import CACHED, inline

INLINE = inline(CACHED)


@njit(cache=True, nogil=True)
def latency_one(arch, split, lat, out):
    """Write T_head, T_comm, T_tail (ms) of (arch, split) into out[0:3]."""
    layer_head, layer_tail, split_head, split_tail, payload, consts = lat
    out[0], out[1], out[2] = latency_parts(arch, split, layer_head, layer_tail, split_head, split_tail, payload, consts)


@njit(**INLINE)
def latency_parts(arch, split, layer_head, layer_tail, split_head, split_tail, payload, consts):
    """(T_head, T_comm, T_tail) in ms of (arch, split) (eq. 3; T_comm = n_h q / r, eq. 10), from
    the arrays of ``LatencyModel.arrays``: the layers before the split on the head, the split
    layer cut in two, the payload n_h of its output, the layers after it on the tail."""
    n_layers = arch.shape[0]
    t_head = consts[0]
    t_tail = consts[2]
    for l in range(split - 1):
        t_head += layer_head[l, arch[l]]
    for l in range(max(split, 0), n_layers):
        t_tail += layer_tail[l, arch[l]]
    if split >= 1:
        o = arch[split - 1]
        t_head += split_head[split - 1, o]
        t_tail += split_tail[split - 1, o]
        n_h = payload[split, o]
    else:
        n_h = payload[0, 0]
    return t_head, n_h * consts[3], t_tail


@njit(**INLINE)
def device_only_parts(arch, layer_head, consts):
    """T of the whole network on the head device (HWNAS baselines), from the arrays."""
    t = consts[0] + consts[1]
    for l in range(arch.shape[0]):
        t += layer_head[l, arch[l]]
    return t


@njit(cache=True, nogil=True)
def device_only_one(arch, lat):
    """Whole network on the head device (HWNAS baselines)."""
    return device_only_parts(arch, lat[0], lat[5])


@njit(cache=True, nogil=True)
def latency_batch(archs, splits, lat, out):
    """out[i] = (T_head, T_comm, T_tail) of (archs[i], splits[i])."""
    for i in range(archs.shape[0]):
        latency_one(archs[i], splits[i], lat, out[i])
