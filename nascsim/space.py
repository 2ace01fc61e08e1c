"""Search spaces: FBNet's CIFAR macro-architecture as HW-NAS-Bench defines it, and its extension.

``fbnet``: a 3x3 stem to 16 channels, 22 searchable layers in stages of depth [1,4,4,4,4,4,1],
width [16,24,32,64,112,184,352] and stride [1,1,2,2,1,2,1] (stride on a stage's first layer), a
1x1 header to 1504 channels, global average pooling and a fully connected classifier. Every layer
takes one of 9 ops. Split point k (0..22) means "after the stem" (k = 0) or "after layer k".

``extended``: the same plus 6 bottleneck ops (1x1 conv to round(Cin*e) channels, KxK depthwise,
1x1 conv to Cout, no residual). When the split layer holds such an op, the split lies right after
its depthwise conv: the head computes the block's first two convs and sends their output.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np

DEPTHS = (1, 4, 4, 4, 4, 4, 1)
WIDTHS = (16, 24, 32, 64, 112, 184, 352)
STRIDES = (1, 1, 2, 2, 1, 2, 1)
STEM_CHANNELS = 16
HEADER_CHANNELS = 1504
INPUT_RESOLUTION = 32
N_LAYERS = sum(DEPTHS)  # 22
N_SPLITS = N_LAYERS + 1  # 23


@dataclass(frozen=True)
class Op:
    """One candidate op of a layer.

    kind: ``"conv"`` (HW-NAS-Bench ConvBlock: 1x1 group conv, KxK depthwise, 1x1 group conv, residual
    when stride 1 and Cin == Cout), ``"skip"`` (identity, or 1x1 conv when shape changes) or
    ``"bottleneck"`` (1x1 conv to round(Cin*e), KxK depthwise, 1x1 conv, no residual).
    """

    name: str
    kind: str
    kernel: int = 0
    expansion: Fraction = Fraction(0)
    groups: int = 1

    def mid_channels(self, c_in: int) -> int:
        """Channels after the first 1x1 conv."""
        if self.kind == "conv":
            return c_in * int(self.expansion)
        if self.kind == "bottleneck":  # at least one channel (narrow proxy networks)
            return max(1, int(round(c_in * self.expansion)))
        raise ValueError(f"op {self.name} has no expansion")


FBNET_OPS: tuple[Op, ...] = (
    Op("k3_e1", "conv", 3, Fraction(1), 1),
    Op("k3_e1_g2", "conv", 3, Fraction(1), 2),
    Op("k3_e3", "conv", 3, Fraction(3), 1),
    Op("k3_e6", "conv", 3, Fraction(6), 1),
    Op("k5_e1", "conv", 5, Fraction(1), 1),
    Op("k5_e1_g2", "conv", 5, Fraction(1), 2),
    Op("k5_e3", "conv", 5, Fraction(3), 1),
    Op("k5_e6", "conv", 5, Fraction(6), 1),
    Op("skip", "skip"),
)

BOTTLENECK_OPS: tuple[Op, ...] = (
    Op("k3_e1/2", "bottleneck", 3, Fraction(1, 2)),
    Op("k3_e1/4", "bottleneck", 3, Fraction(1, 4)),
    Op("k3_e1/8", "bottleneck", 3, Fraction(1, 8)),
    Op("k5_e1/2", "bottleneck", 5, Fraction(1, 2)),
    Op("k5_e1/4", "bottleneck", 5, Fraction(1, 4)),
    Op("k5_e1/8", "bottleneck", 5, Fraction(1, 8)),
)


@dataclass(frozen=True)
class Layer:
    """Shape of one searchable layer: input resolution, channels in/out, stride."""

    index: int  # 1..22
    h_in: int
    c_in: int
    c_out: int
    stride: int

    @property
    def h_out(self) -> int:
        return self.h_in // self.stride


@dataclass(frozen=True)
class Space:
    """A search space: the macro-architecture's layers and the ops every layer can take."""

    name: str
    ops: tuple[Op, ...]
    layers: tuple[Layer, ...]

    @property
    def n_ops(self) -> int:
        return len(self.ops)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def n_splits(self) -> int:
        return len(self.layers) + 1

    @property
    def op_names(self) -> list[str]:
        return [op.name for op in self.ops]

    @property
    def bottleneck_mask(self) -> np.ndarray:
        """Boolean array (n_ops,): True where the op is a bottleneck op."""
        return np.array([op.kind == "bottleneck" for op in self.ops])

    def sample(self, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
        """Uniformly random architectures: op indices, shape (n_layers,) or (n, n_layers).

        Each op is ``floor(u · n_ops)`` of one ``rng.random()`` draw, layer by layer (the rule of
        the search engine's uniform sampling, :func:`nascsim.core._engine_kernels.run_random`).

        >>> a = get_space("fbnet").sample(np.random.default_rng(0))
        >>> a.shape, bool(a.min() >= 0 and a.max() < 9)
        ((22,), True)
        """
        size = (self.n_layers,) if n is None else (int(n), self.n_layers)
        return np.minimum(np.floor(rng.random(size) * self.n_ops).astype(np.int64), self.n_ops - 1)


def _layers() -> tuple[Layer, ...]:
    layers = []
    h, c_in, index = INPUT_RESOLUTION, STEM_CHANNELS, 1
    for depth, width, stride in zip(DEPTHS, WIDTHS, STRIDES):
        for i in range(depth):
            s = stride if i == 0 else 1
            layers.append(Layer(index, h, c_in, width, s))
            h //= s
            c_in = width
            index += 1
    return tuple(layers)


LAYERS = _layers()
FINAL_RESOLUTION = LAYERS[-1].h_out  # 4

SPACES: dict[str, Space] = {
    "fbnet": Space("fbnet", FBNET_OPS, LAYERS),
    "extended": Space("extended", FBNET_OPS + BOTTLENECK_OPS, LAYERS),
}


def get_space(name: str) -> Space:
    """The search space called ``name`` (``fbnet`` or ``extended``)."""
    try:
        return SPACES[name]
    except KeyError:
        raise ValueError(f"unknown space {name!r}; expected one of {', '.join(SPACES)}") from None


def parse_arch(arch: str | Sequence[int | str] | np.ndarray, space: Space | str = "fbnet") -> np.ndarray:
    """Op indices (int64 array of length 22) from op names or indices.

    Accepts ``"k3_e1,skip,..."``, ``"0,8,..."``, or a sequence of names or ints; ``space`` is a
    :class:`Space` or its name. A wrong length or an unknown op raises ``ValueError`` naming the
    bad value.

    >>> parse_arch(["skip"] * 21 + ["k3_e1"], "fbnet")[-2:]
    array([8, 0])
    """
    space = space if isinstance(space, Space) else get_space(space)
    if isinstance(arch, str):
        tokens: list[int | str] = [t.strip() for t in arch.split(",") if t.strip() != ""]
    else:
        tokens = list(arch)
    if len(tokens) != space.n_layers:
        raise ValueError(
            f"architecture has {len(tokens)} ops; the {space.name} space needs {space.n_layers}"
        )
    names = space.op_names
    out = np.empty(space.n_layers, dtype=np.int64)
    for i, tok in enumerate(tokens):
        if isinstance(tok, (int, np.integer)):
            idx = int(tok)
        elif isinstance(tok, str) and tok.lstrip("-").isdigit():
            idx = int(tok)
        elif isinstance(tok, str) and tok in names:
            idx = names.index(tok)
        else:
            raise ValueError(f"unknown op {tok!r} at layer {i + 1}; ops of the {space.name} space: {', '.join(names)}")
        if not 0 <= idx < space.n_ops:
            raise ValueError(f"op index {idx} at layer {i + 1} is out of range 0..{space.n_ops - 1} for the {space.name} space")
        out[i] = idx
    return out


def check_split(split: int, space: Space) -> int:
    """Validate a split point (0 = after the stem, k = after layer k)."""
    if not 0 <= int(split) <= space.n_layers:
        raise ValueError(f"split {split} is out of range 0..{space.n_layers}")
    return int(split)


def arch_names(arch: Sequence[int] | np.ndarray, space: Space) -> list[str]:
    """Op names of an architecture given as op indices."""
    return [space.ops[int(i)].name for i in arch]
