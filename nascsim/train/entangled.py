"""Entangled candidate ops: the convolutional ops of one supernet layer share one set of weights.

With independent ops (the ASNG-NAS / SPOS supernet) each of a layer's K ops is trained only by
the paths that choose it, about λ_x / K of the steps, each with weight 1/λ_x in the loss: in the
9-op FBNet space an op's weights get about 1/9 of the gradient steps a stand-alone network gets,
and a supernet at a CPU proxy budget barely learns (docs/torch-stage.md, the ablation table).

Here, as in Single-Path NAS (Stamoulis et al. 2019, the "superkernel") and Once-for-All (Cai et
al. 2020), the ops of a layer are slices of the largest one's weights:

- the first 1x1 conv of an op with ``mid`` channels is rows ``[:mid]`` of one (max_mid, C_in)
  weight; the depthwise KxK kernel is the centre KxK of one 5x5 kernel per channel; the last 1x1
  conv is columns ``[:mid]`` of one (C_out, max_mid) weight. Expansion 1, 3, 6 (and the extended
  space's bottleneck ratios 1/2, 1/4, 1/8) are prefixes of each other; kernel 3 is the centre of
  kernel 5;
- a grouped op (``g2``) takes the two diagonal blocks of the same weights, and runs them as a
  true grouped convolution (so its FLOPs are those :mod:`nascsim.flops` counts);
- every op keeps its own BatchNorm layers (statistics and affine parameters differ between ops,
  as in slimmable networks' private BN), and ``skip`` keeps its own 1x1 projection.

Each op computes exactly the function of the stand-alone block it stands for (same shapes,
groups, strides, activations, residual), only its weights are tied to its neighbours'. Every
step updates the shared weights of every layer whose op is not ``skip``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nascsim.space import Layer, Op
from nascsim.train.blocks import BottleneckBlock, ChannelShuffle, ConvBlock, ResidualAdd, UnitBatchNorm2d, conv_bn

SHARINGS = ("none", "entangled")


class SharedWeights(nn.Module):
    """The weights one layer's convolutional ops slice: ``pw1`` (max_mid, C_in, 1, 1), ``dw``
    (max_mid, 1, K, K) with K the largest kernel, ``pw2`` (C_out, max_mid, 1, 1). Initialised
    Kaiming-normal by each output channel's own fan-out (as ``group_fan_out`` does for a block)."""

    conv_weights = True  # decayed like conv weights (nascsim.train.loop.param_groups)

    def __init__(self, layer: Layer, ops: tuple[Op, ...]) -> None:
        super().__init__()
        convs = [op for op in ops if op.kind in ("conv", "bottleneck")]
        self.max_mid = max(op.mid_channels(layer.c_in) for op in convs)
        self.kernel = max(op.kernel for op in convs)
        self.pw1 = nn.Parameter(torch.randn(self.max_mid, layer.c_in, 1, 1) * (2.0 / self.max_mid) ** 0.5)
        self.dw = nn.Parameter(torch.randn(self.max_mid, 1, self.kernel, self.kernel) * (2.0 / self.kernel ** 2) ** 0.5)
        self.pw2 = nn.Parameter(torch.randn(layer.c_out, self.max_mid, 1, 1) * (2.0 / layer.c_out) ** 0.5)


def _diagonal(w: torch.Tensor, groups: int) -> torch.Tensor:
    """The ``groups`` diagonal blocks of a (out, in, 1, 1) weight, stacked as a grouped conv's
    (out, in / groups, 1, 1) weight."""
    if groups == 1:
        return w
    o, i = w.shape[0] // groups, w.shape[1] // groups
    return torch.cat([w[g * o:(g + 1) * o, g * i:(g + 1) * i] for g in range(groups)])


class SlicedConv(nn.Module):
    """A convolution whose weight is a slice of a :class:`SharedWeights` tensor (``part``: pw1, dw
    or pw2). The shared module is held by reference, not as a submodule: the supernet owns it."""

    def __init__(self, shared: SharedWeights, part: str, mid: int, kernel: int, stride: int, groups: int) -> None:
        super().__init__()
        object.__setattr__(self, "shared", shared)
        self.part, self.mid, self.kernel, self.stride, self.groups = part, mid, kernel, stride, groups

    def weight(self) -> torch.Tensor:
        s = self.shared
        if self.part == "pw1":
            return _diagonal(s.pw1[: self.mid], self.groups)
        if self.part == "dw":
            o = (s.kernel - self.kernel) // 2
            return s.dw[: self.mid, :, o:o + self.kernel, o:o + self.kernel]
        return _diagonal(s.pw2[:, : self.mid], self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = self.mid if self.part == "dw" else self.groups
        return F.conv2d(x, self.weight(), None, self.stride, self.kernel // 2, 1, groups)


def _sliced_bn(shared: SharedWeights, part: str, c_out: int, mid: int, kernel: int, stride: int, groups: int,
               relu: bool) -> list[nn.Module]:
    mods: list[nn.Module] = [SlicedConv(shared, part, mid, kernel, stride, groups), UnitBatchNorm2d(c_out)]
    return mods + [nn.ReLU()] if relu else mods


class EntangledConvBlock(ConvBlock):
    """:class:`nascsim.train.blocks.ConvBlock` with its three convs sliced from ``shared``."""

    def __init__(self, layer: Layer, op: Op, shared: SharedWeights) -> None:
        nn.Module.__init__(self)
        mid, g = op.mid_channels(layer.c_in), op.groups
        pw1 = _sliced_bn(shared, "pw1", mid, mid, 1, 1, g, relu=True)
        if g > 1:
            pw1.append(ChannelShuffle(g))
        self.pw1 = nn.Sequential(*pw1)
        self.dw = nn.Sequential(*_sliced_bn(shared, "dw", mid, mid, op.kernel, layer.stride, 1, relu=True))
        self.pw2 = nn.Sequential(*_sliced_bn(shared, "pw2", layer.c_out, mid, 1, 1, g, relu=False))
        self.residual = layer.stride == 1 and layer.c_in == layer.c_out
        self.add = ResidualAdd() if self.residual else None


class EntangledBottleneckBlock(BottleneckBlock):
    """:class:`nascsim.train.blocks.BottleneckBlock` with its three convs sliced from ``shared``."""

    def __init__(self, layer: Layer, op: Op, shared: SharedWeights) -> None:
        nn.Module.__init__(self)
        mid = op.mid_channels(layer.c_in)
        self.head_part = nn.Sequential(*_sliced_bn(shared, "pw1", mid, mid, 1, 1, 1, relu=True),
                                       *_sliced_bn(shared, "dw", mid, mid, op.kernel, layer.stride, 1, relu=True))
        self.tail_part = nn.Sequential(*_sliced_bn(shared, "pw2", layer.c_out, mid, 1, 1, 1, relu=False))


def build_entangled_layer(layer: Layer, ops: tuple[Op, ...]) -> tuple[SharedWeights, nn.ModuleList]:
    """(shared weights, one module per op) of one supernet layer; ``skip`` stays independent."""
    from nascsim.train.blocks import SkipBlock

    shared = SharedWeights(layer, ops)
    blocks = []
    for op in ops:
        if op.kind == "conv":
            blocks.append(EntangledConvBlock(layer, op, shared))
        elif op.kind == "bottleneck":
            blocks.append(EntangledBottleneckBlock(layer, op, shared))
        elif op.kind == "skip":
            blocks.append(SkipBlock(layer))
        else:
            raise ValueError(f"unknown op kind {op.kind!r} of op {op.name}")
    return shared, nn.ModuleList(blocks)


__all__ = ["SHARINGS", "SharedWeights", "SlicedConv", "EntangledConvBlock", "EntangledBottleneckBlock",
           "build_entangled_layer", "conv_bn"]
