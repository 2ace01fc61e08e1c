"""FLOPs, parameter counts and payload sizes of every block, for both spaces.

Counting convention (the one of the `thop` profiler, 0.0.x series, which reproduces the paper's
Table III when Π is fitted by eq. 9 -- see :mod:`nascsim.hw.devices`):

- convolution: multiply-accumulates, ``(Cin/groups) * Cout * k * k * Hout * Wout`` (no bias: the
  HW-NAS-Bench blocks have none);
- batch normalisation: 4 operations per output element (subtract mean, divide by std, scale, shift);
- ReLU: 1 operation per output element;
- residual add: 1 operation per output element;
- channel shuffle and identity skip: 0;
- average pooling: ``(Hin*Win + 1)`` operations per output element (adds, then one divide);
- fully connected: ``Cin * Cout`` multiply-accumulates (bias add not counted).

Parameters: convolution weights, BatchNorm affine weight and bias (2 per channel; running
statistics are buffers, not parameters), FC weight and bias.

Blocks follow HW-NAS-Bench's ``fbnet_models/model_infer.py``: ConvBlock = 1x1 group conv + BN +
ReLU, [shuffle], KxK depthwise (stride) + BN + ReLU, 1x1 group conv + BN, residual add when
stride 1 and Cin == Cout; Skip = identity, or 1x1 conv (stride) + BN + ReLU when the shape
changes; stem and header = conv + BN + ReLU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nascsim.space import (
    FINAL_RESOLUTION,
    HEADER_CHANNELS,
    INPUT_RESOLUTION,
    STEM_CHANNELS,
    WIDTHS,
    Layer,
    Op,
    Space,
)

BN_OPS_PER_ELEMENT = 4
RELU_OPS_PER_ELEMENT = 1
ADD_OPS_PER_ELEMENT = 1


@dataclass(frozen=True)
class Count:
    """FLOPs and parameters of a piece of network."""

    flops: int
    params: int

    def __add__(self, other: "Count") -> "Count":
        return Count(self.flops + other.flops, self.params + other.params)


ZERO = Count(0, 0)


def conv_bn(c_in: int, c_out: int, kernel: int, h_out: int, groups: int = 1, relu: bool = True) -> Count:
    """Conv (no bias) + BatchNorm [+ ReLU] at output resolution ``h_out``."""
    elements = c_out * h_out * h_out
    macs = (c_in // groups) * c_out * kernel * kernel * h_out * h_out
    flops = macs + BN_OPS_PER_ELEMENT * elements + (RELU_OPS_PER_ELEMENT * elements if relu else 0)
    params = (c_in // groups) * c_out * kernel * kernel + 2 * c_out
    return Count(flops, params)


def has_residual(layer: Layer, op: Op) -> bool:
    """ConvBlocks add their input back when stride is 1 and channels match; bottlenecks never do."""
    return op.kind == "conv" and layer.stride == 1 and layer.c_in == layer.c_out


def block_parts(layer: Layer, op: Op) -> tuple[Count, Count]:
    """(head part, tail part) of a block when the split lies inside it.

    For bottleneck ops the head part is the first 1x1 conv and the depthwise conv (with their BN
    and ReLU), the tail part the last 1x1 conv and its BN. For every other op the head part is the
    whole block and the tail part is empty.
    """
    h_in, h_out = layer.h_in, layer.h_out
    if op.kind == "skip":
        if layer.stride == 1 and layer.c_in == layer.c_out:
            return ZERO, ZERO
        return conv_bn(layer.c_in, layer.c_out, 1, h_out), ZERO
    mid = op.mid_channels(layer.c_in)
    groups = op.groups
    pw1 = conv_bn(layer.c_in, mid, 1, h_in, groups=groups)
    dw = conv_bn(mid, mid, op.kernel, h_out, groups=mid)
    pw2 = conv_bn(mid, layer.c_out, 1, h_out, groups=groups, relu=False)
    if op.kind == "bottleneck":
        return pw1 + dw, pw2
    add = Count(ADD_OPS_PER_ELEMENT * layer.c_out * h_out * h_out, 0) if has_residual(layer, op) else ZERO
    return pw1 + dw + pw2 + add, ZERO


def block_count(layer: Layer, op: Op) -> Count:
    """FLOPs and parameters of a whole block."""
    head, tail = block_parts(layer, op)
    return head + tail


def stem_count() -> Count:
    return conv_bn(3, STEM_CHANNELS, 3, INPUT_RESOLUTION)


def header_count() -> Count:
    return conv_bn(WIDTHS[-1], HEADER_CHANNELS, 1, FINAL_RESOLUTION)


def pool_count() -> Count:
    return Count((FINAL_RESOLUTION * FINAL_RESOLUTION + 1) * HEADER_CHANNELS, 0)


def fc_count(classes: int) -> Count:
    return Count(HEADER_CHANNELS * classes, HEADER_CHANNELS * classes + classes)



def payload_elements(layer: Layer | None, op: Op | None) -> int:
    """n_h: elements of the tensor sent when splitting after ``layer`` holding ``op``.

    ``layer=None`` is the split after the stem. For a bottleneck op the payload is its depthwise
    output (mid channels at the output resolution); otherwise the block's output.
    """
    if layer is None:
        return STEM_CHANNELS * INPUT_RESOLUTION * INPUT_RESOLUTION
    if op is not None and op.kind == "bottleneck":
        return op.mid_channels(layer.c_in) * layer.h_out * layer.h_out
    return layer.c_out * layer.h_out * layer.h_out


@dataclass(frozen=True)
class FlopTables:
    """Per (layer, op) counts as arrays, shape (22, n_ops), plus fixed blocks.

    ``split_head[l, o]``/``split_tail[l, o]``: FLOPs of layer l's block on the head / tail side when
    the split lies after layer l (differs from ``layer`` only for bottleneck ops).
    ``payload[k, o]``: n_h for split k (k = 0: after the stem, any o) with op o at layer k.
    """

    layer: np.ndarray
    params: np.ndarray
    split_head: np.ndarray
    split_tail: np.ndarray
    payload: np.ndarray
    stem: float
    header: float
    pool: float
    fc: float
    fixed_params: int


def flop_tables(space: Space, classes: int) -> FlopTables:
    """FLOPs, parameters and payloads of every block of ``space`` for ``classes`` outputs."""
    n_l, n_o = space.n_layers, space.n_ops
    layer = np.zeros((n_l, n_o))
    params = np.zeros((n_l, n_o))
    split_head = np.zeros((n_l, n_o))
    split_tail = np.zeros((n_l, n_o))
    payload = np.zeros((n_l + 1, n_o))
    payload[0, :] = payload_elements(None, None)
    for li, lay in enumerate(space.layers):
        for oi, op in enumerate(space.ops):
            head, tail = block_parts(lay, op)
            layer[li, oi] = head.flops + tail.flops
            params[li, oi] = head.params + tail.params
            split_head[li, oi] = head.flops
            split_tail[li, oi] = tail.flops
            payload[li + 1, oi] = payload_elements(lay, op)
    fixed_params = stem_count().params + header_count().params + fc_count(classes).params
    return FlopTables(
        layer=layer,
        params=params,
        split_head=split_head,
        split_tail=split_tail,
        payload=payload,
        stem=float(stem_count().flops),
        header=float(header_count().flops),
        pool=float(pool_count().flops),
        fc=float(fc_count(classes).flops),
        fixed_params=fixed_params,
    )
