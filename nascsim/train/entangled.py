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
  true grouped convolution (so its FLOPs are those :mod:`nascsim.hw.flops` counts);
- a grouped op's channel shuffle is undone in the slices it takes after it (:func:`shuffle_order`),
  so channel i of the shared weights is the same feature for every op;
- every op keeps its own BatchNorm statistics; the BatchNorm scale and shift are its own
  (``entangled``) or sliced from the layer's too (``entangled-bn``; a bottleneck op's last one
  stays its own: it has no residual);
- ``skip`` is the identity, or where the layer changes shape a 1x1 convolution whose weight is
  the product of the expansion-1 op's two pointwise weights (:class:`TiedProjection`).

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

SHARINGS = ("none", "entangled", "entangled-bn")


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


class SharedNorms(nn.Module):
    """BatchNorm scale and shift that one layer's convolutional ops slice (``bn="shared"``): one
    (gamma, beta) pair per conv of the largest op; statistics stay private to each op."""

    def __init__(self, layer: Layer, shared: SharedWeights) -> None:
        super().__init__()
        for part, c in (("pw1", shared.max_mid), ("dw", shared.max_mid), ("pw2", layer.c_out)):
            self.register_parameter(f"{part}_weight", nn.Parameter(torch.ones(c)))
            self.register_parameter(f"{part}_bias", nn.Parameter(torch.zeros(c)))


class SlicedBatchNorm2d(UnitBatchNorm2d):
    """:class:`nascsim.train.blocks.UnitBatchNorm2d` (own running statistics, per-unit batch
    statistics) whose scale and shift are the first ``c`` entries of a :class:`SharedNorms` pair."""

    def __init__(self, norms: SharedNorms, part: str, c: int, order: torch.Tensor | None = None) -> None:
        super().__init__(c, affine=False)
        object.__setattr__(self, "norms", norms)
        self.part = part
        self.register_buffer("order", order, persistent=False)

    def scale_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.num_features
        w, b = getattr(self.norms, f"{self.part}_weight")[:c], getattr(self.norms, f"{self.part}_bias")[:c]
        return (w, b) if self.order is None else (w[self.order], b[self.order])


def shuffle_order(c: int, groups: int) -> torch.Tensor:
    """perm (c,): after :class:`nascsim.train.blocks.ChannelShuffle`, channel j holds channel
    perm[j] of its input. A grouped op's depthwise filters and last-conv columns are taken in this
    order, so a channel of the shared weights means the same feature in a grouped op as in an
    ungrouped one."""
    j = torch.arange(c)
    return (j % groups) * (c // groups) + j // groups


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

    def __init__(self, shared: SharedWeights, part: str, mid: int, kernel: int, stride: int, groups: int,
                 shuffled: int = 1) -> None:
        super().__init__()
        object.__setattr__(self, "shared", shared)
        self.part, self.mid, self.kernel, self.stride, self.groups = part, mid, kernel, stride, groups
        # a grouped op shuffles its mid channels after the first conv (shuffled = its groups)
        order = shuffle_order(mid, shuffled) if shuffled > 1 and part != "pw1" else None
        self.register_buffer("order", order, persistent=False)

    def weight(self) -> torch.Tensor:
        s = self.shared
        if self.part == "pw1":
            return _diagonal(s.pw1[: self.mid], self.groups)
        if self.part == "dw":
            o = (s.kernel - self.kernel) // 2
            w = s.dw[: self.mid, :, o:o + self.kernel, o:o + self.kernel]
            return w if self.order is None else w[self.order]
        w = s.pw2[:, : self.mid]
        return _diagonal(w if self.order is None else w[:, self.order], self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = self.mid if self.part == "dw" else self.groups
        return F.conv2d(x, self.weight(), None, self.stride, self.kernel // 2, 1, groups)


def _sliced_bn(shared: SharedWeights, part: str, c_out: int, mid: int, kernel: int, stride: int, groups: int,
               relu: bool, shuffled: int = 1, own_norm: bool = False) -> list[nn.Module]:
    norms = None if own_norm else getattr(shared, "norms", None)
    order = shuffle_order(c_out, shuffled) if shuffled > 1 and part == "dw" else None
    bn = UnitBatchNorm2d(c_out) if norms is None else SlicedBatchNorm2d(norms, part, c_out, order)
    mods: list[nn.Module] = [SlicedConv(shared, part, mid, kernel, stride, groups, shuffled), bn]
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
        self.dw = nn.Sequential(*_sliced_bn(shared, "dw", mid, mid, op.kernel, layer.stride, 1, relu=True, shuffled=g))
        self.pw2 = nn.Sequential(*_sliced_bn(shared, "pw2", layer.c_out, mid, 1, 1, g, relu=False, shuffled=g))
        self.residual = layer.stride == 1 and layer.c_in == layer.c_out
        self.add = ResidualAdd() if self.residual else None


class EntangledBottleneckBlock(BottleneckBlock):
    """:class:`nascsim.train.blocks.BottleneckBlock` with its three convs sliced from ``shared``.

    Its last BatchNorm keeps its own scale and shift also where the layer's are shared: the block
    has no residual, so its output scale is not the conv ops' residual-branch scale, which starts
    at zero (``zero_residual``) and would make every path through a bottleneck op output zero."""

    def __init__(self, layer: Layer, op: Op, shared: SharedWeights) -> None:
        nn.Module.__init__(self)
        mid = op.mid_channels(layer.c_in)
        self.head_part = nn.Sequential(*_sliced_bn(shared, "pw1", mid, mid, 1, 1, 1, relu=True),
                                       *_sliced_bn(shared, "dw", mid, mid, op.kernel, layer.stride, 1, relu=True))
        self.tail_part = nn.Sequential(*_sliced_bn(shared, "pw2", layer.c_out, mid, 1, 1, 1, relu=False, own_norm=True))


class TiedProjection(nn.Module):
    """The 1x1 convolution of ``skip`` where a layer changes shape, tied to the layer's shared
    weights: its (C_out, C_in) weight is pw2[:, :C_in] @ pw1[:C_in], the two pointwise convs of the
    expansion-1 op without the depthwise conv between them, so its output channels mean what the
    conv ops' output channels mean. One convolution at run time (the FLOPs of the skip op)."""

    def __init__(self, shared: SharedWeights, layer: Layer) -> None:
        super().__init__()
        object.__setattr__(self, "shared", shared)
        self.c_in, self.stride = layer.c_in, layer.stride

    def weight(self) -> torch.Tensor:
        s, c = self.shared, self.c_in
        return (s.pw2[:, :c, 0, 0] @ s.pw1[:c, :, 0, 0])[:, :, None, None].contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), None, self.stride)


def entangled_skip(layer: Layer, shared: SharedWeights) -> nn.Module:
    """``skip`` of an entangled layer: the identity, or a :class:`TiedProjection` + BN + ReLU."""
    from nascsim.train.blocks import SkipBlock

    block = SkipBlock(layer)
    if not isinstance(block.proj, nn.Identity):
        norms = getattr(shared, "norms", None)
        bn = UnitBatchNorm2d(layer.c_out) if norms is None else SlicedBatchNorm2d(norms, "pw2", layer.c_out)
        block.proj = nn.Sequential(TiedProjection(shared, layer), bn, nn.ReLU())
    return block


def build_entangled_layer(layer: Layer, ops: tuple[Op, ...], bn: str = "private") -> tuple[SharedWeights, nn.ModuleList]:
    """(shared weights, one module per op) of one supernet layer; ``skip`` stays independent.
    ``bn``: each op's BatchNorm scale and shift are its own (``private``) or slices of the layer's
    (``shared``, held in ``shared.norms``)."""
    shared = SharedWeights(layer, ops)
    if bn == "shared":
        shared.norms = SharedNorms(layer, shared)
    blocks = []
    for op in ops:
        if op.kind == "conv":
            blocks.append(EntangledConvBlock(layer, op, shared))
        elif op.kind == "bottleneck":
            blocks.append(EntangledBottleneckBlock(layer, op, shared))
        elif op.kind == "skip":
            blocks.append(entangled_skip(layer, shared))
        else:
            raise ValueError(f"unknown op kind {op.kind!r} of op {op.name}")
    return shared, nn.ModuleList(blocks)


__all__ = ["SHARINGS", "SharedWeights", "SlicedConv", "EntangledConvBlock", "EntangledBottleneckBlock",
           "build_entangled_layer", "conv_bn"]
