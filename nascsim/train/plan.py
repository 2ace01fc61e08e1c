"""The campaign's plan by the clock: epochs and pair counts that fit a time budget.

A *lane* trains one supernet and evaluates it (noise set, low-noise set, main pairs). Given the
seconds a lane has and its measured speeds (:class:`Speeds`, seconds per unit of work under the
concurrency the run will use), :func:`plan_lane` returns the largest plan of that shape whose
predicted time stays within ``safety`` of the lane's seconds:

1. evaluation first: the targets (main pairs with their repeats, low-noise pairs, noise pairs x
   minibatches) when they fit in ``1 - min_train_share`` of the time (or in what ``max_epochs``
   of training leave, if that is more), else all of them scaled by
   one factor (the noise set by its square root in each of its two dimensions), never below a
   minimal set (2 main pairs, one repeated; 1 low-noise pair; 2 noise pairs x 2 minibatches);
2. then training: as many whole epochs as the rest allows (at most ``max_epochs``; at least one,
   taking time back from the evaluation sets if needed);
3. time left (less than an epoch, or everything past ``max_epochs``) buys more main pairs
   (``fill``; off, the plan is exactly the targets and ``max_epochs`` when they fit).

Pure functions of numbers: no clock, no torch. The predicted total of a returned plan never
exceeds ``safety * seconds`` (tests check this on random speeds).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Speeds:
    """Measured seconds per unit of work of one lane (all > 0)."""

    train_image_s: float  # per training image (one step's time / its batch)
    monitor_s: float  # per epoch: the sampled-subnet accuracy monitor
    main_pair_s: float  # one pair on one batch, every p
    lowvar_pair_s: float  # one pair on the whole held-out split, every p
    noise_eval_s: float  # one pair on one noise minibatch, every p

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"speed {k} must be finite and >= 0, got {v}")


@dataclass(frozen=True)
class Targets:
    """What a lane aims for, and how the time is shared."""

    train_images: int  # images per epoch
    main_pairs: int = 5000
    repeat_share: float = 0.15
    lowvar_pairs: int = 300
    noise_pairs: int = 50
    noise_batches: int = 20
    max_epochs: int = 200
    min_train_share: float = 0.45
    safety: float = 0.9
    main_block: int = 100  # main pairs per evaluation unit (the runtime's write granularity)
    fill: bool = True  # time left buys more main pairs (off: exactly the targets, when they fit)

    def __post_init__(self) -> None:
        ints = ("train_images", "main_pairs", "lowvar_pairs", "noise_pairs", "noise_batches", "max_epochs", "main_block")
        for k in ints:
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be at least 1, got {getattr(self, k)}")
        if self.noise_pairs < 2 or self.noise_batches < 2 or self.main_pairs < 2:
            raise ValueError("the noise set needs at least 2 pairs x 2 minibatches and the main set 2 pairs")
        for k in ("repeat_share", "min_train_share", "safety"):
            v = getattr(self, k)
            if not (math.isfinite(v) and 0 < v <= 1):
                raise ValueError(f"{k} must lie in (0, 1], got {v}")


@dataclass(frozen=True)
class LanePlan:
    """Counts and predicted seconds of one lane."""

    seconds: float  # what the lane was given
    epochs: int
    train_s: float
    noise_pairs: int
    noise_batches: int
    noise_s: float
    lowvar_pairs: int
    lowvar_s: float
    main_pairs: int
    main_block: int
    main_s: float
    total_s: float
    targets_met: bool

    def to_dict(self) -> dict:
        return asdict(self)


class BudgetTooSmall(ValueError):
    """Not even one epoch and the minimal evaluation sets fit."""


def main_cost(pairs: int, block: int, repeat_share: float, pair_s: float) -> float:
    """Seconds for ``pairs`` main pairs in blocks of ``block``, each block re-evaluating
    ``ceil(repeat_share * block)`` of its pairs (the last, partial block likewise)."""
    full, rest = divmod(pairs, block)
    evals = full * (block + math.ceil(repeat_share * block - 1e-9))
    if rest:
        evals += rest + math.ceil(repeat_share * rest - 1e-9)
    return evals * pair_s


def _eval_sets(scale: float, t: Targets) -> tuple[int, int, int, int]:
    """(main, lowvar, noise pairs, noise minibatches) at ``scale`` of the targets, with minimums."""
    root = math.sqrt(min(scale, 1.0))
    return (max(2, int(t.main_pairs * scale)), max(1, int(t.lowvar_pairs * scale)),
            max(2, int(t.noise_pairs * root)), max(2, int(t.noise_batches * root)))


def _eval_s(sets: tuple[int, int, int, int], s: Speeds, t: Targets, block: int) -> float:
    main, lowvar, npairs, nbatches = sets
    return main_cost(main, block, t.repeat_share, s.main_pair_s) + lowvar * s.lowvar_pair_s + npairs * nbatches * s.noise_eval_s


def _scale_for(budget: float, s: Speeds, t: Targets, block: int) -> float:
    """The largest scale in [0, 1] whose evaluation sets fit ``budget`` (bisection on a monotone
    cost); 0 when only the minimal sets (or not even those) fit."""
    if _eval_s(_eval_sets(1.0, t), s, t, block) <= budget:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _eval_s(_eval_sets(mid, t), s, t, block) <= budget:
            lo = mid
        else:
            hi = mid
    return lo


def _most_that_fit(most: int, fits) -> int:
    """The largest n in [0, most] with ``fits(n)`` (0 when none does), by bisection: the cost of
    main pairs never falls as pairs are added, and the estimate ``most`` may overshoot by billions
    (blocks repeat whole pairs, and a fast device makes a pair cost microseconds)."""
    lo, hi = 0, most
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def plan_lane(seconds: float, speeds: Speeds, targets: Targets) -> LanePlan:
    """The plan of one lane (module docstring). Raises :class:`BudgetTooSmall` naming the time
    needed when one epoch and the minimal evaluation sets do not fit."""
    s, t = speeds, targets
    avail = t.safety * seconds
    epoch_s = t.train_images * s.train_image_s + s.monitor_s
    block = max(1, min(t.main_block, t.main_pairs))
    minimal = _eval_s(_eval_sets(0.0, t), s, t, block)
    if not math.isfinite(seconds) or minimal + epoch_s > avail:
        need = (minimal + epoch_s) / t.safety
        raise BudgetTooSmall(f"a lane needs at least {need:.0f} s for one epoch and the minimal evaluation sets at the "
                             f"measured speed; it has {seconds:.0f} s (raise --budget-s or lower --train-images)")
    train_cap_s = t.max_epochs * epoch_s  # what training can use at most
    eval_budget = max(minimal, min(avail - epoch_s, max(avail * (1 - t.min_train_share), avail - train_cap_s)))
    scale = _scale_for(eval_budget, s, t, block)
    sets = _eval_sets(scale, t)
    eval_s = _eval_s(sets, s, t, block)
    epochs = max(1, min(t.max_epochs, int((avail - eval_s) // epoch_s))) if epoch_s > 0 else t.max_epochs
    train_s = epochs * epoch_s
    main = sets[0]
    if t.fill and scale >= 1.0 and s.main_pair_s > 0:
        # time left after whole epochs buys more main pairs
        left = avail - train_s - eval_s
        extra_unit = s.main_pair_s * (1 + t.repeat_share)
        estimate = int(max(0.0, left) / extra_unit) if extra_unit > 0 else 0
        main += _most_that_fit(estimate, lambda n: _eval_s((main + n, *sets[1:]), s, t, block) + train_s <= avail)
    sets = (main, *sets[1:])
    main_s = main_cost(main, block, t.repeat_share, s.main_pair_s)
    lowvar_s = sets[1] * s.lowvar_pair_s
    noise_s = sets[2] * sets[3] * s.noise_eval_s
    total = train_s + main_s + lowvar_s + noise_s
    met = scale >= 1.0
    return LanePlan(seconds=seconds, epochs=epochs, train_s=train_s, noise_pairs=sets[2], noise_batches=sets[3],
                    noise_s=noise_s, lowvar_pairs=sets[1], lowvar_s=lowvar_s, main_pairs=main, main_block=block,
                    main_s=main_s, total_s=total, targets_met=met)


def describe(plan: LanePlan, name: str) -> str:
    """One line per lane for the printed plan."""
    return (f"{name}: {plan.epochs} epochs ({plan.train_s:.0f} s), noise {plan.noise_pairs} pairs x "
            f"{plan.noise_batches} minibatches ({plan.noise_s:.0f} s), low-noise {plan.lowvar_pairs} pairs "
            f"({plan.lowvar_s:.0f} s), main {plan.main_pairs} pairs + repeats ({plan.main_s:.0f} s); "
            f"{plan.total_s:.0f} of {plan.seconds:.0f} s{'' if plan.targets_met else ' (targets scaled down)'}")
