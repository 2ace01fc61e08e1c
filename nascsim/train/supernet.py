"""Single-path one-shot supernet and stand-alone child networks, both split into head and tail.

Split point k: k = 0 sends the stem output, k >= 1 the output of layer k; when layer k holds a
bottleneck op the head computes its first two convs and sends the depthwise output (the payload
of eq. 10, ``nascsim.hw.flops.payload_elements``). The packet-loss model is dropout with rate p on the
payload, active in evaluation too (:func:`split_dropout`):

    y = tail(dropout_p(head(x; a, k)); a, k)

:class:`SuperNet` holds every candidate op of every layer with its own weights and runs one path
per call. :class:`ChildNet` holds one architecture (re-training, export of head and tail).
Both take a :class:`nascsim.train.proxy.Proxy` (channel multiplier and input resolution); the
default is the full model.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nascsim.space import Space, check_split, get_space, parse_arch
from nascsim.train.proxy import FULL, Proxy
from nascsim.train.blocks import (
    build_block,
    build_classifier,
    build_header,
    build_pool,
    build_stem,
    init_weights,
    zero_init_residual,
)


def split_dropout(z: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout with rate ``p`` on the payload, in training and in evaluation alike (inverted
    dropout: kept elements are scaled by 1/(1-p), as the receiver knows which elements arrived)."""
    if p <= 0.0:
        return z
    return F.dropout(z, p=float(p), training=True)


def _arch_list(arch: Sequence[int] | np.ndarray | torch.Tensor, space: Space) -> list[int]:
    """Op indices of ``arch`` (ints, an array or a tensor), validated by :func:`parse_arch`."""
    return [int(a) for a in parse_arch([int(a) for a in arch], space)]


def _assemble(net: nn.Module, classes: int, body_name: str, body: nn.Module, zero_residual: bool,
              init: str, proxy: Proxy, layers) -> None:
    """Stem, the searchable body, header, pooling and classifier, registered in network order
    (which fixes the order ``init_weights`` draws its random numbers in), then initialised."""
    net.classes = int(classes)
    net.proxy = proxy
    net.stem = build_stem(proxy.stem_channels)
    setattr(net, body_name, body)
    net.header = build_header(layers[-1].c_out, proxy.header_channels)
    net.pool = build_pool(proxy.final_resolution)
    net.classifier = build_classifier(net.classes, proxy.header_channels)
    init_weights(net, init)
    if zero_residual:
        zero_init_residual(net)


def run_head(stem: nn.Module, blocks: Sequence[nn.Module], x: torch.Tensor, split: int) -> torch.Tensor:
    """Stem, layers 1..k-1 whole, and the head part of layer k (the payload)."""
    z = stem(x)
    for i in range(split):
        blk = blocks[i]
        z = blk(z) if i < split - 1 else blk.parts()[0](z)
    return z


def run_tail(blocks: Sequence[nn.Module], header: nn.Module, pool: nn.Module, classifier: nn.Module,
             z: torch.Tensor, split: int) -> torch.Tensor:
    """Tail part of layer k (bottleneck ops only), layers k+1..22, header, pooling, FC."""
    if split >= 1:
        tail_part = blocks[split - 1].parts()[1]
        if tail_part is not None:
            z = tail_part(z)
    for blk in blocks[split:]:
        z = blk(z)
    return classifier(pool(header(z)))


class SuperNet(nn.Module):
    """Every layer holds all ops of ``space``; ``forward(x, arch, split, p)`` runs one path.

    ``sharing``: ``"none"``, every op has its own weights (the one-shot supernet of ASNG-NAS and
    SPOS); ``"entangled"``, a layer's convolutional ops are slices of one set of weights, each op
    with its own BatchNorm (:mod:`nascsim.train.entangled`; ``self.shared`` holds them);
    ``"entangled-bn"``, the BatchNorm scales and shifts are sliced from one set too."""

    def __init__(self, space: str | Space, classes: int, zero_residual: bool = True, init: str = "fan_out",
                 proxy: Proxy = FULL, sharing: str = "none") -> None:
        super().__init__()
        from nascsim.train.entangled import SHARINGS, build_entangled_layer

        if sharing not in SHARINGS:
            raise ValueError(f"unknown sharing {sharing!r}; expected one of {', '.join(SHARINGS)}")
        self.space = space if isinstance(space, Space) else get_space(space)
        self.sharing = sharing
        shapes = proxy.layers(self.space)
        if sharing != "none":
            bn = "shared" if sharing == "entangled-bn" else "private"
            built = [build_entangled_layer(layer, self.space.ops, bn) for layer in shapes]
            self.shared = nn.ModuleList(s for s, _ in built)
            layers = nn.ModuleList(blocks for _, blocks in built)
        else:
            layers = nn.ModuleList(nn.ModuleList(build_block(layer, op) for op in self.space.ops) for layer in shapes)
        _assemble(self, classes, "layers", layers, zero_residual, init, proxy, shapes)

    def path(self, arch: Sequence[int]) -> list[nn.Module]:
        """The 22 blocks of architecture ``arch`` (op indices)."""
        return [self.layers[i][o] for i, o in enumerate(_arch_list(arch, self.space))]

    def forward_head(self, x: torch.Tensor, arch: Sequence[int], split: int) -> torch.Tensor:
        return run_head(self.stem, self.path(arch), x, check_split(split, self.space))

    def forward_tail(self, z: torch.Tensor, arch: Sequence[int], split: int) -> torch.Tensor:
        return run_tail(self.path(arch), self.header, self.pool, self.classifier, z, check_split(split, self.space))

    def forward(self, x: torch.Tensor, arch: Sequence[int], split: int, p: float = 0.0) -> torch.Tensor:
        blocks = self.path(arch)
        split = check_split(split, self.space)
        z = split_dropout(run_head(self.stem, blocks, x, split), p)
        return run_tail(blocks, self.header, self.pool, self.classifier, z, split)


class ChildNet(nn.Module):
    """One architecture of ``space`` (stand-alone re-training); same head/tail interface."""

    def __init__(self, space: str | Space, arch: Sequence[int], classes: int, zero_residual: bool = True,
                 init: str = "fan_out", proxy: Proxy = FULL) -> None:
        super().__init__()
        self.space = space if isinstance(space, Space) else get_space(space)
        self.arch = _arch_list(arch, self.space)
        shapes = proxy.layers(self.space)
        blocks = nn.ModuleList(build_block(layer, self.space.ops[o]) for layer, o in zip(shapes, self.arch))
        _assemble(self, classes, "blocks", blocks, zero_residual, init, proxy, shapes)

    def forward(self, x: torch.Tensor, arch: Sequence[int] | None = None, split: int = 0, p: float = 0.0) -> torch.Tensor:
        """``arch`` is accepted for interface parity with :class:`SuperNet` and must match."""
        if arch is not None and _arch_list(arch, self.space) != self.arch:
            raise ValueError("ChildNet called with an architecture other than its own")
        split = check_split(split, self.space)
        z = split_dropout(run_head(self.stem, self.blocks, x, split), p)
        return run_tail(self.blocks, self.header, self.pool, self.classifier, z, split)

    def split_modules(self, split: int) -> tuple[nn.Sequential, nn.Sequential]:
        """(head, tail) as two stand-alone ``nn.Sequential`` modules sharing this net's weights:
        ``tail(head(x)) == self(x, split=split, p=0)``."""
        split = check_split(split, self.space)
        head: list[nn.Module] = [self.stem]
        tail: list[nn.Module] = []
        for i, blk in enumerate(self.blocks):
            if i < split - 1:
                head.append(blk)
            elif i == split - 1:
                h, t = blk.parts()
                head.append(h)
                if t is not None:
                    tail.append(t)
            else:
                tail.append(blk)
        tail += [self.header, self.pool, self.classifier]
        return nn.Sequential(*head), nn.Sequential(*tail)
