"""The SGD training loop shared by supernet pre-training and stand-alone re-training.

One step: a minibatch (augmented on the device), the paths to train on it (the supernet draws
λ_x = 2 uniform (arch, split) pairs per step, Algorithm 1 lines 2-4; a child network has one),
the loss with dropout ``p`` at each path's split, averaged over the paths, gradient-norm clipping,
an SGD step at the scheduled learning rate (linear warm-up, then cosine decay to zero).

Determinism and exact resumption: every epoch reseeds its own generators (shuffling and
augmentation, path sampling, the global torch RNG used by dropout) from (seed, epoch), and the
checkpoint written atomically after every epoch holds the model, the optimiser (momentum buffers)
and the log, so a run resumed from epoch e's checkpoint equals an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nascsim.train.data import augment, normalise

Path_ = tuple[Sequence[int], int]  # (arch, split)


@dataclass(frozen=True)
class Recipe:
    """Training knobs. Defaults follow the lead of the earlier CPU trials (lr 0.05 fell smoothly
    where 0.1 diverged) with the usual CIFAR choices; the paper fixes only SGD, uniform sampling,
    λ_x = 2 and split dropout 0.5."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-5
    warmup_epochs: float = 1.0
    schedule: str = "cosine"
    label_smoothing: float = 0.1
    grad_clip: float = 5.0
    zero_residual: bool = True
    split_dropout: float = 0.5
    lambda_x: int = 2
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0 and math.isfinite(self.lr),
            "momentum": 0 <= self.momentum < 1,
            "weight_decay": self.weight_decay >= 0,
            "warmup_epochs": self.warmup_epochs >= 0,
            "schedule": self.schedule in ("cosine", "constant"),
            "label_smoothing": 0 <= self.label_smoothing < 1,
            "grad_clip": self.grad_clip >= 0,
            "split_dropout": 0 <= self.split_dropout < 1,
            "lambda_x": self.lambda_x >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"bad training option {name}={getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def lr_at(step: int, steps_per_epoch: int, recipe: Recipe) -> float:
    """Linear warm-up over ``warmup_epochs``, then cosine decay to 0 at the last step (or constant)."""
    total = recipe.epochs * steps_per_epoch
    warm = int(round(recipe.warmup_epochs * steps_per_epoch))
    if step < warm:
        return recipe.lr * (step + 1) / warm
    if recipe.schedule == "constant":
        return recipe.lr
    t = (step - warm) / max(1, total - warm)
    return 0.5 * recipe.lr * (1.0 + math.cos(math.pi * min(1.0, t)))


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A 63-bit seed for one (run seed, epoch, stream)."""
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1, dtype=np.uint64)[0] >> 1)


def save_atomic(obj: dict, target: str | Path) -> None:
    """torch.save, atomically (:mod:`nascsim.atomic`)."""
    from nascsim.atomic import atomic_path

    with atomic_path(target) as tmp:
        torch.save(obj, tmp)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown torch device {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return dev


class BatchStatistics:
    """Context: BatchNorm normalises with the current batch's statistics and leaves the running
    statistics untouched (train mode, momentum 0); gradients off."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.saved: list[tuple[nn.Module, float | None]] = []

    def __enter__(self) -> nn.Module:
        self.was_training = self.model.training
        self.model.train()
        for m in self.model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                self.saved.append((m, m.momentum))
                m.momentum = 0.0
        self.no_grad = torch.no_grad()
        self.no_grad.__enter__()
        return self.model

    def __exit__(self, *exc) -> None:
        self.no_grad.__exit__(*exc)
        for m, mom in self.saved:
            m.momentum = mom
        self.model.train(self.was_training)


def train_epochs(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    train_idx: np.ndarray,
    recipe: Recipe,
    sample_paths: Callable[[np.random.Generator], list[Path_]],
    checkpoint: str | Path,
    stats: tuple[list[float], list[float]],
    extra: dict,
    state: dict | None = None,
    on_epoch: Callable[[nn.Module, int], dict] | None = None,
    progress: bool = True,
    max_epochs: int | None = None,
) -> dict:
    """Train ``model`` from ``state`` (a loaded checkpoint, or None) to ``recipe.epochs``.

    ``images`` uint8 (N, 3, H, W) and ``labels`` (N,) live on the training device; ``train_idx``
    selects the training images. After each epoch a checkpoint {model, optimizer, epoch, log,
    recipe, **extra} is written atomically to ``checkpoint``; ``on_epoch(model, epoch)`` adds
    monitoring numbers to the epoch's log entry. ``max_epochs`` stops early (tests, time limits).
    Returns the last checkpoint dict.
    """
    from tqdm import tqdm

    device = images.device
    mean, std = stats
    opt = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
        nesterov=recipe.nesterov and recipe.momentum > 0, weight_decay=recipe.weight_decay,
    )
    log: list[dict] = []
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        log = list(state["log"])
        start = int(state["epoch"])
    n = len(train_idx)
    bs = min(recipe.batch_size, n)
    steps = n // bs
    idx_all = torch.as_tensor(train_idx, dtype=torch.long, device=device)
    last = state
    stop = recipe.epochs if max_epochs is None else min(recipe.epochs, start + max_epochs)
    for epoch in range(start, stop):
        model.train()
        torch.manual_seed(epoch_seed(recipe.seed, epoch, 0))
        gen = torch.Generator(device=device).manual_seed(epoch_seed(recipe.seed, epoch, 1))
        rng = np.random.default_rng(epoch_seed(recipe.seed, epoch, 2))
        order = idx_all[torch.randperm(n, generator=gen, device=device)]
        t0 = time.perf_counter()
        loss_sum, seen = 0.0, 0
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{recipe.epochs}", disable=not progress, leave=False)
        for s in bar:
            bidx = order[s * bs:(s + 1) * bs]
            xb = normalise(images[bidx], mean, std)
            if recipe.augment:
                xb = augment(xb, gen)
            yb = labels[bidx]
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch * steps + s, steps, recipe)
            opt.zero_grad(set_to_none=True)
            paths = sample_paths(rng)
            step_loss = 0.0
            for arch, split in paths:
                out = model(xb, arch, split, recipe.split_dropout)
                loss = F.cross_entropy(out, yb, label_smoothing=recipe.label_smoothing) / len(paths)
                loss.backward()
                step_loss += float(loss.detach())
            if not math.isfinite(step_loss):
                raise FloatingPointError(f"training diverged at epoch {epoch + 1}, step {s + 1} (loss {step_loss}); lower --lr")
            if recipe.grad_clip > 0:
                nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], recipe.grad_clip)
            opt.step()
            loss_sum += step_loss * len(yb)
            seen += len(yb)
            dt = time.perf_counter() - t0
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", img_s=f"{seen / max(dt, 1e-9):.0f}")
        bar.close()
        dt = time.perf_counter() - t0
        entry = {"epoch": epoch + 1, "s": round(dt, 3), "loss": loss_sum / max(seen, 1),
                 "images_per_s": seen / max(dt, 1e-9), "lr_end": opt.param_groups[0]["lr"]}
        if on_epoch is not None:
            entry.update(on_epoch(model, epoch))
        log.append(entry)
        last = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                "log": log, "recipe": recipe.to_dict(), **extra}
        save_atomic(last, checkpoint)
    return last
