"""Reduced-setting (proxy) networks: fewer channels and smaller images for the torch stage.

A proxy setting trains the supernet (and stand-alone networks) at a fraction of the full model's
cost, as in EcoNAS (Zhou et al. 2020): every channel count of the macro-architecture -- stem,
the 22 layers' widths and the header -- is multiplied by ``width`` (rounded to an even number, so
that the grouped ops still split their channels in two), and the input images are resized to
``resolution`` pixels. The ops, their kernels, expansion ratios and groups, the depth, the strides
and the split points stay those of the full model, so a proxy network is the same architecture
(arch, split) at a smaller scale.

Only the accuracy side sees a proxy. Latency, FLOPs and the payload n_h of eq. 10 always come
from the full-width architecture at 32 px (:mod:`nascsim.hw.flops`, :mod:`nascsim.hw.latency`),
whatever setting trained the supernet; the setting is recorded in every checkpoint and
evaluation file and shown on the surrogate's model card.

>>> p = Proxy(width=0.25, resolution=16)
>>> p.stem_channels, p.header_channels, p.final_resolution
(4, 376, 2)
>>> [layer.c_out for layer in p.layers(get_space("fbnet"))][::4]
[4, 6, 8, 16, 28, 46]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from nascsim.space import HEADER_CHANNELS, INPUT_RESOLUTION, STEM_CHANNELS, Layer, Space, get_space  # noqa: F401

RESOLUTIONS = (8, 16, 24, 32)  # multiples of 8: the three stride-2 stages must divide the image


def even_channels(c: int, width: float) -> int:
    """``c * width`` rounded to the nearest even number, at least 2."""
    return max(2, 2 * int(math.floor(c * width / 2 + 0.5)))


@dataclass(frozen=True)
class Proxy:
    """A reduced setting: channel multiplier ``width`` in (0, 1] and input ``resolution`` in px.

    ``Proxy()`` is the full model (width 1, 32 px)."""

    width: float = 1.0
    resolution: int = INPUT_RESOLUTION

    def __post_init__(self) -> None:
        if isinstance(self.width, bool) or not isinstance(self.width, (int, float)) or not 0 < self.width <= 1:
            raise ValueError(f"proxy width must lie in (0, 1], got {self.width!r}")
        if isinstance(self.resolution, bool) or not isinstance(self.resolution, int) or self.resolution not in RESOLUTIONS:
            raise ValueError(f"proxy resolution must be one of {', '.join(map(str, RESOLUTIONS))} px, got {self.resolution!r}")
        object.__setattr__(self, "width", float(self.width))

    @property
    def is_full(self) -> bool:
        return self.width == 1.0 and self.resolution == INPUT_RESOLUTION

    @property
    def stem_channels(self) -> int:
        return self.channels(STEM_CHANNELS)

    @property
    def header_channels(self) -> int:
        return self.channels(HEADER_CHANNELS)

    @property
    def final_resolution(self) -> int:
        """Side of the last feature map (the input over the three stride-2 stages)."""
        return self.resolution // 8

    def channels(self, c: int) -> int:
        """A full-model channel count at this setting (unchanged at width 1)."""
        return c if self.width == 1.0 else even_channels(c, self.width)

    def layers(self, space: Space) -> tuple[Layer, ...]:
        """The 22 layers of ``space`` at this setting (channels and input sides scaled)."""
        scale = self.resolution / INPUT_RESOLUTION
        return tuple(replace(layer, h_in=max(1, int(layer.h_in * scale)), c_in=self.channels(layer.c_in),
                             c_out=self.channels(layer.c_out)) for layer in space.layers)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Proxy":
        """The setting stored in a checkpoint or evaluation file; none stored means the full model."""
        if d is None:
            return cls()
        if not isinstance(d, dict) or set(d) - {"width", "resolution"}:
            raise ValueError(f"bad proxy setting {d!r}; expected {{'width': w, 'resolution': px}}")
        return cls(**d)

    def label(self) -> str:
        """e.g. ``w0.25-16px`` (``full`` for the full model)."""
        return "full" if self.is_full else f"w{self.width:g}-{self.resolution}px"


FULL = Proxy()


def resize_images(x, resolution: int):
    """uint8 images (N, H, W, 3) at ``resolution`` px, by area averaging (antialiased for
    downscaling), rounded back to uint8; unchanged when already that size."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    if x.shape[1] == resolution and x.shape[2] == resolution:
        return x
    out = np.empty((len(x), resolution, resolution, 3), np.uint8)
    for s in range(0, len(x), 4096):
        t = torch.from_numpy(np.ascontiguousarray(x[s:s + 4096])).permute(0, 3, 1, 2).float()
        r = F.interpolate(t, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
        out[s:s + 4096] = r.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def proxy_dataset(ds, proxy: Proxy):
    """``ds`` (a :class:`nascsim.train.data.Dataset`) with its images at ``proxy.resolution``."""
    from dataclasses import replace as _replace

    if ds.x_train.shape[1] == proxy.resolution:
        return ds
    return _replace(ds, x_train=resize_images(ds.x_train, proxy.resolution), x_test=resize_images(ds.x_test, proxy.resolution))
