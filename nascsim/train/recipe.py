"""The training recipe: the knobs of :mod:`nascsim.train.loop` as one frozen dataclass of plain
values (it is stored in checkpoints and evaluation files as plain data). No torch import here, so
the command line can show the defaults without loading torch."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from nascsim.limits import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_LAMBDA_X, MAX_SEED

# values that reproduce checkpoints written before these fields existed
LEGACY_RECIPE = {"distill": 0.0, "sharing": "none", "width": 1.0, "resolution": 32, "op_lr_scale": 1.0, "header_lr_scale": 1.0, "wd_scope": "all", "sampling": "uniform", "init": "fan_out"}


# The CPU recipe: a proxy supernet that learns on a 2-core machine (docs/torch-stage.md gives the
# ablation behind it and its ranking against stand-alone training). Width 0.25 of every channel
# count, 16 px images, a layer's conv ops sliced from one set of weights and BatchNorm affine, one
# (arch, split) pair per minibatch (at equal compute it learns faster than two).
CPU_PROXY = {"width": 0.25, "resolution": 16, "sharing": "entangled-bn", "batch_size": 128, "lr": 0.1,
             "warmup_epochs": 1.0, "lambda_x": 1}


@dataclass(frozen=True)
class Recipe:
    """Training knobs. The paper fixes only SGD, uniform sampling, λ_x = 2 and split dropout 0.5.
    The defaults are the campaign's recipe: lr 0.1 (at batch 128) with the header and classifier
    at 0.3x, weight decay 5e-4 on conv and linear weights only, balanced op sampling, depthwise
    convs initialised by their own fan-out. docs/gpu-campaign.md gives the CPU trials behind it
    (the header's rate decides whether the loss rises early) and what they do not show.
    """

    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    schedule: str = "cosine"
    label_smoothing: float = 0.1
    grad_clip: float = 5.0
    zero_residual: bool = True
    split_dropout: float = 0.5
    lambda_x: int = 2
    augment: bool = True
    seed: int = 0
    header_lr_scale: float = 0.3
    wd_scope: str = "weights"
    sampling: str = "balanced"
    init: str = "group_fan_out"
    op_lr_scale: float = 1.0
    sharing: str = "none"
    distill: float = 0.0
    width: float = 1.0
    resolution: int = 32

    def __post_init__(self) -> None:
        def finite(v) -> bool:
            return isinstance(v, (int, float)) and math.isfinite(v)

        checks = {
            "epochs": isinstance(self.epochs, int) and 1 <= self.epochs <= MAX_EPOCHS,
            "batch_size": isinstance(self.batch_size, int) and 1 <= self.batch_size <= MAX_BATCH_SIZE,
            "lr": finite(self.lr) and 0 < self.lr <= 1e30,  # any finite rate (a diverging run is reported)
            "momentum": finite(self.momentum) and 0 <= self.momentum < 1,
            "weight_decay": finite(self.weight_decay) and 0 <= self.weight_decay <= 1,
            "warmup_epochs": finite(self.warmup_epochs) and 0 <= self.warmup_epochs <= MAX_EPOCHS,
            "schedule": self.schedule in ("cosine", "constant"),
            "label_smoothing": finite(self.label_smoothing) and 0 <= self.label_smoothing < 1,
            "grad_clip": finite(self.grad_clip) and 0 <= self.grad_clip <= 1e6,
            "split_dropout": finite(self.split_dropout) and 0 <= self.split_dropout < 1,
            # each of the λ_x paths runs the whole minibatch: λ_x x batch_size rows of activations
            "lambda_x": (isinstance(self.lambda_x, int) and 1 <= self.lambda_x <= MAX_LAMBDA_X
                         and self.lambda_x * self.batch_size <= MAX_BATCH_SIZE),
            "header_lr_scale": finite(self.header_lr_scale) and 0 < self.header_lr_scale <= 1000,
            "seed": isinstance(self.seed, int) and 0 <= self.seed <= MAX_SEED,
            "op_lr_scale": finite(self.op_lr_scale) and 0 < self.op_lr_scale <= 1000,
            "wd_scope": self.wd_scope in ("all", "weights"),
            "sampling": self.sampling in ("uniform", "balanced", "sandwich"),
            "distill": finite(self.distill) and 0 <= self.distill <= 1 and (self.distill == 0 or self.sampling == "sandwich"),
            "init": self.init in ("fan_out", "group_fan_out"),
            "sharing": self.sharing in ("none", "entangled", "entangled-bn"),
        }
        from nascsim.train.proxy import Proxy

        Proxy(self.width, self.resolution)  # raises ValueError naming a bad width or resolution
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"bad training option {name}={getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def proxy(self):
        """The reduced setting (:class:`nascsim.train.proxy.Proxy`) the network is trained at."""
        from nascsim.train.proxy import Proxy

        return Proxy(self.width, self.resolution)

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        """The recipe of a stored dict; fields it lacks take the values of the code that wrote it
        (:data:`LEGACY_RECIPE`), so an old checkpoint resumes as it started."""
        known = {f.name for f in fields(cls)}
        return cls(**{**LEGACY_RECIPE, **{k: v for k, v in d.items() if k in known}})


