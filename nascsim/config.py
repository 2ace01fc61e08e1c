"""The configuration of one search run: every field a sweep can vary, with the paper's defaults.

A :class:`SearchConfig` is plain data (hashable, picklable); ``content_hash`` identifies a run in a
result store.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace

METHODS = ("nasc", "hwnas", "hwnas-dropout", "random")  # the built-in methods; see check_method


def check_method(name: str) -> str:
    """``name`` when it names a built-in or registered method (:mod:`nascsim.methods.registry`),
    else ``ValueError`` naming it and the known methods."""
    if name in METHODS:
        return name
    from nascsim.methods.registry import get_method

    return get_method(name).name
DEFAULT_LOSS_SET = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def _normalised(type_name: str, value):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and value == 0 and math.copysign(1.0, value) < 0:
        return 0.0  # -0.0 equals 0.0 but would hash apart (repr "-0.0"): one key per value
    if type_name == "float" and hasattr(value, "__index__"):
        try:
            return float(value)
        except OverflowError:  # too large for a float: left for the validation to name
            return value
    if type_name == "float" and isinstance(value, float) and type(value) is not float:
        return float(value)  # numpy float64 -> float
    if type_name in ("int", "int | None") and hasattr(value, "__index__") and type(value) is not int:
        return int(value)
    if type_name == "tuple[float, ...]" and isinstance(value, (list, tuple)):
        try:
            return tuple(float(v) + 0.0 if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in value)
        except OverflowError:
            return tuple(value)
    return value


@dataclass(frozen=True)
class SearchConfig:
    """One search: method, latency threshold T_th, evaluation loss rate, seed and the options.

    ``loss`` is the packet-loss (split dropout) rate at which the final model's expected accuracy
    is reported. ``steps=None`` means the paper's schedule (see :mod:`nascsim.methods`).
    ``tables`` is the path of a latency-table file (``tables/README.md`` schema) whose devices
    ``head`` and ``tail`` name; None means the shipped HW-NAS-Bench table.
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
    tables: str | None = None

    def __post_init__(self) -> None:
        """Normalise number types only (no range checks: see :mod:`nascsim.validate`), so that a
        config built from Python or numpy numbers hashes as the same config read from text:
        an integral number in a float field becomes a float, a numpy integer in an int field an
        int, a loss set given as a list a tuple of floats."""
        for f in fields(self):
            value = getattr(self, f.name)
            new = _normalised(f.type, value)
            if new is not value:
                object.__setattr__(self, f.name, new)
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
