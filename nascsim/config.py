"""The configuration of one search run: every field a sweep can vary, with the paper's defaults.

A :class:`SearchConfig` is plain data (hashable, picklable); ``content_hash`` identifies a run in a
result store.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace

METHODS = ("nasc", "hwnas", "hwnas-dropout", "random")
DEFAULT_LOSS_SET = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


@dataclass(frozen=True)
class SearchConfig:
    """One search: method, latency threshold T_th, evaluation loss rate, seed and the options.

    ``loss`` is the packet-loss (split dropout) rate at which the final model's expected accuracy
    is reported. ``steps=None`` means the paper's schedule (see :mod:`nascsim.methods`).
    ``noise``: how the search observes the loss term (``shared``: the λ samples of a step are
    judged on one minibatch, so part of their noise is common; ``independent``: each sample's
    noise on its own; ``none``: expected values); ``minibatch``: images per minibatch, to which
    the surrogate's noise is scaled (see :mod:`nascsim.surrogate.noise`).
    """

    method: str = "nasc"
    threshold_ms: float = 30.0
    loss: float = 0.0
    seed: int = 0
    space: str = "fbnet"
    head: str = "raspi4"
    tail: str = "edgegpu"
    bits: float = 32.0
    bandwidth: float = 8e6
    source: str | None = None
    steps: int | None = None
    lam: int = 2
    alpha: float = 1.5
    delta0: float = 1.0
    Delta_max: float = float("inf")
    eps_loss: float = 1.0
    eps_lat: float = 1.0
    loss_set: tuple[float, ...] = field(default=DEFAULT_LOSS_SET)
    split_search: bool = True
    fixed_split: int | None = None
    noise: str = "shared"
    minibatch: int = 64

    def to_dict(self) -> dict:
        d = asdict(self)
        d["loss_set"] = list(self.loss_set)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SearchConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown search option(s): {', '.join(sorted(unknown))}")
        d = dict(d)
        if "loss_set" in d:
            d["loss_set"] = tuple(float(x) for x in d["loss_set"])
        return cls(**d)

    def content_hash(self) -> str:
        """Stable hash of all fields (JSON with sorted keys, floats via repr)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=repr)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_(self, **changes) -> "SearchConfig":
        return replace(self, **changes)
