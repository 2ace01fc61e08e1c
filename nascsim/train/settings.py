"""The settings of a supernet campaign (:mod:`nascsim.train.campaign`) and their checks: what the
campaign and each of its lanes (:mod:`nascsim.train.lane`) read.

:class:`CampaignSettings` is plain data (it travels to the worker processes); :func:`check_settings`
checks every setting's range before anything is read or written; :func:`lane_name` names a lane
(one supernet) by its split dropout; :data:`RUN_LOG` is the run log's file name in ``--out``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nascsim.config import DEFAULT_LOSS_SET
from nascsim.train.plan import Targets

RUN_LOG = "campaign.json"


def lane_name(dropout: float) -> str:
    """``drop50`` for split dropout 0.5."""
    return f"drop{int(round(dropout * 100)):02d}"


@dataclass(frozen=True)
class CampaignSettings:
    """Everything a campaign run needs (plain data: it travels to the worker processes)."""

    data: str
    out: str
    budget_s: float = 540.0
    space: str = "fbnet"
    device: str = "auto"
    workers: str = "auto"  # "auto" (a process per lane on CUDA, or on a CPU with a core per lane; else 1), "1" or "2"
    dropouts: tuple[float, ...] = (0.5, 0.0)
    recipe: dict = field(default_factory=dict)  # Recipe fields (epochs and split_dropout are set per lane)
    valid_images: int = 5000
    train_images: int | None = None
    monitor_pairs: int = 16
    monitor_images: int = 1000
    ps: tuple[float, ...] = DEFAULT_LOSS_SET
    batch_images: int = 500
    noise_images: int = 64
    main_pairs: int = Targets.main_pairs  # the planner's targets (nascsim.train.plan.Targets)
    repeat_share: float = Targets.repeat_share
    lowvar_pairs: int = Targets.lowvar_pairs
    noise_pairs: int = Targets.noise_pairs
    noise_batches: int = Targets.noise_batches
    max_epochs: int = Targets.max_epochs
    epochs: int | None = None  # fixed: exactly this many epochs and the target pair counts (reproduces a plan)
    near_share: float = 0.3
    thresholds: tuple[float, ...] = (30.0, 35.0, 40.0, 50.0)
    band: float = 0.1
    head: str = "raspi4"
    tail: str = "edgegpu"
    cache_dir: str | None = None
    checkpoint_dir: str | None = None
    threads: int | None = None
    max_rows: int | None = None
    flush_s: float = 15.0
    calibrate_s: float = 4.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CampaignSettings":
        d = dict(d)
        for k in ("dropouts", "ps", "thresholds"):
            d[k] = tuple(d[k])
        return cls(**d)

    def recipe_for(self, dropout: float, epochs: int):
        from nascsim.train.recipe import Recipe

        return Recipe(**{**self.recipe, "epochs": int(epochs), "split_dropout": float(dropout)})

    def targets(self, train_images: int, main_block: int) -> Targets:
        return Targets(train_images=train_images, main_pairs=self.main_pairs, repeat_share=self.repeat_share,
                       lowvar_pairs=self.lowvar_pairs, noise_pairs=self.noise_pairs,
                       noise_batches=self.noise_batches, max_epochs=self.epochs or self.max_epochs,
                       main_block=main_block, fill=self.epochs is None)


def check_settings(s: CampaignSettings, resume: bool = False) -> None:
    """Every setting's range, before anything is read or written (one ``ValueError`` naming the
    bad value). Without ``resume`` the output folder must not hold a campaign; with it, it must."""
    from nascsim import limits as lim
    from nascsim.space import get_space
    from nascsim.train.channel import check_loss_rates

    get_space(s.space)
    if not (math.isfinite(s.budget_s) and s.budget_s > 0):
        raise ValueError(f"--budget-s must be a positive number of seconds, got {s.budget_s}")
    if s.workers not in ("auto", "1", "2"):
        raise ValueError(f"--workers must be auto, 1 or 2, got {s.workers!r}")
    if not s.dropouts or len(s.dropouts) > 2 or any(not (math.isfinite(p) and 0 <= p < 1) for p in s.dropouts):
        raise ValueError(f"--dropouts must be one or two rates in [0, 1), got {list(s.dropouts)}")
    if len({lane_name(p) for p in s.dropouts}) != len(s.dropouts):
        raise ValueError(f"--dropouts names the same supernet twice: {list(s.dropouts)}")
    check_loss_rates(s.ps)
    positive = {"valid_images": s.valid_images, "monitor_pairs": s.monitor_pairs, "monitor_images": s.monitor_images,
                "batch_images": s.batch_images, "noise_images": s.noise_images, "lowvar_pairs": s.lowvar_pairs,
                "max_epochs": s.max_epochs}
    if s.epochs is not None:
        positive["epochs"] = s.epochs
    if s.train_images is not None:
        positive["train_images"] = s.train_images
    highest = {"monitor_pairs": lim.MAX_MONITOR_PAIRS, "lowvar_pairs": lim.MAX_EVAL_PAIRS, "max_epochs": lim.MAX_EPOCHS,
               "epochs": lim.MAX_EPOCHS, "main_pairs": lim.MAX_EVAL_PAIRS, "noise_pairs": lim.MAX_EVAL_PAIRS,
               "noise_batches": lim.MAX_NOISE_BATCHES}
    for k, v in positive.items():
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"--{k.replace('_', '-')} must be at least 1, got {v}")
        lim.check_count(f"--{k.replace('_', '-')}", v, 1, highest.get(k, lim.MAX_IMAGES))
    for k, v in (("main_pairs", s.main_pairs), ("noise_pairs", s.noise_pairs), ("noise_batches", s.noise_batches)):
        if not isinstance(v, int) or v < 2:
            raise ValueError(f"--{k.replace('_', '-')} must be at least 2, got {v}")
        lim.check_count(f"--{k.replace('_', '-')}", v, 2, highest[k])
    for k, v in (("budget_s", s.budget_s), ("calibrate_s", s.calibrate_s), ("flush_s", s.flush_s)):
        lim.check_number(f"--{k.replace('_', '-')}", v, 0, lim.MAX_SECONDS, low_open=True)
    if s.batch_images * 2 > s.valid_images:
        raise ValueError(f"--batch-images {s.batch_images} leaves fewer than 2 batches of the {s.valid_images} held-out images "
                         "(main pairs are repeated on a second batch)")
    if s.noise_images * s.noise_batches > s.valid_images:
        raise ValueError(f"{s.noise_batches} noise minibatches of {s.noise_images} images need more than the "
                         f"{s.valid_images} held-out images")
    if s.monitor_images > s.valid_images:
        raise ValueError(f"--monitor-images {s.monitor_images} exceeds --valid-images {s.valid_images}")
    for k, v, lo, hi in (("repeat_share", s.repeat_share, 0.0, 1.0), ("near_share", s.near_share, 0.0, 1.0),
                         ("band", s.band, 0.0, 1.0)):
        if not (math.isfinite(v) and lo < v <= hi if k == "repeat_share" else lo <= v <= hi):
            raise ValueError(f"--{k.replace('_', '-')} must lie in {'(' if k == 'repeat_share' else '['}{lo}, {hi}], got {v}")
    if not s.thresholds or any(not (math.isfinite(t) and t > 0) for t in s.thresholds):
        raise ValueError(f"--thresholds must be positive milliseconds, got {list(s.thresholds)}")
    if s.threads is not None:
        lim.check_count("--threads", s.threads, 1, lim.MAX_THREADS)
    for k, v in (("calibrate_s", s.calibrate_s), ("flush_s", s.flush_s)):
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"--{k.replace('_', '-')} must be a positive number of seconds, got {v}")
    if s.max_rows is not None:
        lim.check_count("--max-rows", s.max_rows, 1, lim.MAX_ROWS_PER_CALL)
    s.recipe_for(s.dropouts[0], 1)  # the recipe's own checks
    out = Path(s.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    if resume:
        if not (out / RUN_LOG).exists():
            raise ValueError(f"cannot resume: {out} holds no campaign ({RUN_LOG})")
    elif (out / RUN_LOG).exists():
        raise ValueError(f"{out} already holds a campaign ({RUN_LOG}); pass --resume to continue it or choose another --out")
