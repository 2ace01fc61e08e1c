"""Torch modules of the blocks exactly as :mod:`nascsim.hw.flops` counts them.

- :class:`ConvBlock` (HW-NAS-Bench ``fbnet_models`` ConvBlock): 1x1 group conv + BN + ReLU,
  channel shuffle when grouped, KxK depthwise (stride) + BN + ReLU, 1x1 group conv + BN, residual
  add when stride 1 and Cin == Cout.
- :class:`SkipBlock`: identity, or 1x1 conv (stride) + BN + ReLU when the shape changes.
- :class:`BottleneckBlock` (extended space): 1x1 conv to round(Cin*e) + BN + ReLU, KxK depthwise
  (stride) + BN + ReLU, then 1x1 conv to Cout + BN, no residual. Its ``head_part`` (the first two
  convs) and ``tail_part`` (the last conv) are separate modules: a split at this layer lies
  between them, and the payload is the depthwise output (``nascsim.hw.flops.payload_elements``).
- Fixed blocks: stem (3x3 conv to 16 + BN + ReLU), header (1x1 conv to 1504 + BN + ReLU), global
  average pooling, fully connected classifier.

Every BatchNorm is a :class:`UnitBatchNorm2d`: a plain ``BatchNorm2d`` (same parameters, same
state-dict keys) that, inside :func:`unit_rows`, normalises each block of ``n`` consecutive rows
with that block's own batch statistics. :mod:`nascsim.train.paths` stacks the rows of several
paths into one call this way, and each path still sees exactly the statistics it would see alone.

Every ReLU and every residual add is its own module, so forward hooks see each operation that the
FLOP convention counts (tests compare hook counts with :func:`nascsim.hw.flops.block_parts`).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from nascsim.space import FINAL_RESOLUTION, HEADER_CHANNELS, STEM_CHANNELS, WIDTHS, Layer, Op


class ChannelShuffle(nn.Module):
    """Interleave the channels of ``groups`` groups (0 FLOPs)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ResidualAdd(nn.Module):
    """``x + identity`` (1 operation per output element)."""

    def forward(self, x: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        return x + identity


_UNIT_ROWS: ContextVar[int | None] = ContextVar("nascsim_unit_rows", default=None)


@contextmanager
def unit_rows(n: int) -> Iterator[None]:
    """Inside this context every :class:`UnitBatchNorm2d` in training mode treats its input as
    consecutive units of ``n`` rows and normalises each unit with its own batch statistics."""
    token = _UNIT_ROWS.set(int(n))
    try:
        yield
    finally:
        _UNIT_ROWS.reset(token)


class UnitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose batch statistics are per unit of rows (see :func:`unit_rows`).

    For an input of U units of n rows, unit u is normalised as ``(x - mean_u) / sqrt(var_u + eps)
    * weight + bias`` with mean_u and the biased var_u over its n rows and all pixels, exactly what
    a separate BatchNorm call on those n rows computes. The running statistics move by the mean
    over units of what each unit's call would add. Outside the context, with one unit, or in eval
    mode it is ``nn.BatchNorm2d``."""

    def scale_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) of the affine step (subclasses may take them from elsewhere)."""
        return self.weight, self.bias

    def _plain(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``nn.BatchNorm2d.forward`` with the affine step's (weight, bias) given: one fused call,
        where normalising and then scaling would cost two more passes forward and backward."""
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if track else None, self.running_var if track else None,
                            weight, bias, use_batch, momentum, self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = _UNIT_ROWS.get()
        if n is None or not self.training or x.shape[0] <= n:
            if self.affine:
                return super().forward(x)
            return self._plain(x, *self.scale_shift())
        units = x.shape[0] // n
        if units * n != x.shape[0]:
            raise ValueError(f"{x.shape[0]} rows are not whole units of {n}")
        weight, bias = self.scale_shift()
        if not (self.momentum and self.track_running_stats and self.running_mean is not None):
            # no running statistics to move (evaluation with batch statistics): one fused
            # batch_norm per unit, 5x faster on a CPU than var_mean + addcmul over the stacked rows
            return torch.cat([F.batch_norm(x.narrow(0, u * n, n), None, None, weight, bias, True, 0.0, self.eps)
                              for u in range(units)])
        xs = x.unflatten(0, (units, n))
        var, mean = torch.var_mean(xs, dim=(1, 3, 4), correction=0)
        if var.dtype != torch.float32:
            var, mean = var.float(), mean.float()
        scale = weight * (var + self.eps).rsqrt_()
        shift = torch.addcmul(bias, mean, scale, value=-1.0)
        if self.momentum and self.track_running_stats and self.running_mean is not None:
            count = n * x.shape[2] * x.shape[3]
            with torch.no_grad():
                self.running_mean.lerp_(mean.mean(0), self.momentum)
                self.running_var.lerp_(var.mean(0) * count / max(count - 1, 1), self.momentum)
        if x.dtype != torch.float32:
            scale, shift = scale.to(x.dtype), shift.to(x.dtype)
        y = torch.addcmul(shift[:, None, :, None, None], xs, scale[:, None, :, None, None])
        return y.flatten(0, 1)


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    """Conv (no bias, 'same' padding) + BatchNorm [+ ReLU]."""
    mods: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        UnitBatchNorm2d(c_out),
    ]
    if relu:
        mods.append(nn.ReLU())
    return nn.Sequential(*mods)


class ConvBlock(nn.Module):
    """HW-NAS-Bench ConvBlock for a ``conv`` op (see module docstring)."""

    def __init__(self, layer: Layer, op: Op) -> None:
        super().__init__()
        mid = op.mid_channels(layer.c_in)
        g = op.groups
        pw1 = [*conv_bn(layer.c_in, mid, 1, groups=g)]
        if g > 1:
            pw1.append(ChannelShuffle(g))
        self.pw1 = nn.Sequential(*pw1)
        self.dw = conv_bn(mid, mid, op.kernel, stride=layer.stride, groups=mid)
        self.pw2 = conv_bn(mid, layer.c_out, 1, groups=g, relu=False)
        self.residual = layer.stride == 1 and layer.c_in == layer.c_out
        self.add = ResidualAdd() if self.residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw2(self.dw(self.pw1(x)))
        return self.add(y, x) if self.add is not None else y

    def parts(self) -> tuple[nn.Module, nn.Module | None]:
        """(head part, tail part) when the split lies after this block: all of it on the head."""
        return self, None

    def last_bn(self) -> nn.BatchNorm2d:
        return self.pw2[1]


class SkipBlock(nn.Module):
    """Identity, or 1x1 conv (stride) + BN + ReLU when the shape changes."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        same = layer.stride == 1 and layer.c_in == layer.c_out
        self.proj = nn.Identity() if same else conv_bn(layer.c_in, layer.c_out, 1, stride=layer.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)

    def parts(self) -> tuple[nn.Module, nn.Module | None]:
        return self, None


class BottleneckBlock(nn.Module):
    """Bottleneck op of the extended space: ``head_part`` = 1x1 conv + depthwise, ``tail_part`` =
    last 1x1 conv + BN; no residual."""

    def __init__(self, layer: Layer, op: Op) -> None:
        super().__init__()
        mid = op.mid_channels(layer.c_in)
        self.head_part = nn.Sequential(
            *conv_bn(layer.c_in, mid, 1), *conv_bn(mid, mid, op.kernel, stride=layer.stride, groups=mid)
        )
        self.tail_part = conv_bn(mid, layer.c_out, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail_part(self.head_part(x))

    def parts(self) -> tuple[nn.Module, nn.Module | None]:
        """The split lies after the depthwise conv: its output is the payload."""
        return self.head_part, self.tail_part


def build_block(layer: Layer, op: Op) -> nn.Module:
    """The torch module of ``op`` at ``layer``."""
    if op.kind == "conv":
        return ConvBlock(layer, op)
    if op.kind == "skip":
        return SkipBlock(layer)
    if op.kind == "bottleneck":
        return BottleneckBlock(layer, op)
    raise ValueError(f"unknown op kind {op.kind!r} of op {op.name}")


def build_stem(c_out: int = STEM_CHANNELS) -> nn.Sequential:
    return conv_bn(3, c_out, 3)


def build_header(c_in: int = WIDTHS[-1], c_out: int = HEADER_CHANNELS) -> nn.Sequential:
    return conv_bn(c_in, c_out, 1)


def build_pool(side: int = FINAL_RESOLUTION) -> nn.Module:
    """Global average pooling over the final side x side map (4x4 at 32 px; (H*W + 1) operations
    per output element)."""
    return nn.AvgPool2d(side)


def build_classifier(classes: int, c_in: int = HEADER_CHANNELS) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(c_in, classes))


def zero_init_residual(module: nn.Module) -> None:
    """Set the last BN scale of every residual ConvBlock to zero, so each block starts as the
    identity (Goyal et al. 2017); eases training of deep single-path supernets."""
    for m in module.modules():
        if isinstance(m, ConvBlock) and m.residual:
            bn = m.last_bn()
            nn.init.zeros_(bn.weight if bn.weight is not None else getattr(bn.norms, f"{bn.part}_weight"))


INITS = ("fan_out", "group_fan_out")


def init_weights(module: nn.Module, init: str = "fan_out") -> None:
    """Kaiming-normal convs, BN scale 1 / shift 0, small normal FC.

    ``fan_out``: torch's fan-out, out_channels * k * k, also for grouped convs (a depthwise conv
    of C channels then gets std sqrt(2 / (9 C)): per-channel weight norms of about 0.04 in the
    widest layer). ``group_fan_out``: the fan-out one output channel really has,
    out_channels / groups * k * k (k * k for a depthwise conv), as in timm and EfficientNet."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            if init == "fan_out":
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            else:
                fan = m.out_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                with torch.no_grad():
                    m.weight.normal_(0.0, (2.0 / fan) ** 0.5)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
