"""The SGD training loop shared by supernet pre-training, the campaign and stand-alone re-training.

One step: a minibatch (augmented on the device), the paths to train on it (the supernet draws
λ_x (arch, split) pairs per step, Algorithm 1 lines 2-4: 2 in the paper, 1 in the CPU recipe;
a child network has one), the loss
with dropout ``p`` at each path's split, averaged over the paths, gradient-norm clipping, an SGD
step at the scheduled learning rate (linear warm-up, then cosine decay to zero). The supernet's
λ_x paths run as one call of :func:`nascsim.train.paths.forward_paths` (ops they share run once on
the stacked rows; each path keeps its own BatchNorm statistics), so

    loss = (1/λ_x) Σ_i CE(tail(dropout_p(head(x; a_i, k_i))), y)

is one cross-entropy over the stacked logits. No step waits for the device: the epoch's loss is
summed on the device and read once per epoch (a diverged run is reported at the end of its epoch).

Parameter groups (:func:`param_groups`): ``wd_scope = "weights"`` decays only conv and linear
weights (no BatchNorm scale/shift, no bias), and ``header_lr_scale`` scales the learning rate of
the shared 1504-channel header and the classifier, which every path trains at every step.

Precision (:class:`Precision`): bf16 autocast and channels_last memory format, for CUDA; neither
changes what is computed beyond rounding.

Determinism and exact resumption: every epoch reseeds its own generators (shuffling and
augmentation, path sampling, the global torch RNG used by dropout) from (seed, epoch), and the
checkpoint written atomically after every epoch holds the model, the optimiser (momentum buffers)
and the log, so a run resumed from epoch e's checkpoint equals an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nascsim.train.data import augment, normalise
from nascsim.train.recipe import LEGACY_RECIPE, Recipe  # noqa: F401 -- re-exported: the loop's knobs

# per epoch: (rng, steps) -> archs (steps, λ, L), splits (steps, λ)
PathSampler = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]

@dataclass(frozen=True)
class Precision:
    """``amp``: bf16 autocast on CUDA (forward and loss; weights, gradients and the optimiser stay
    float32). ``channels_last``: NHWC memory format for weights and activations."""

    amp: bool = False
    channels_last: bool = False

    @classmethod
    def for_device(cls, device: torch.device) -> "Precision":
        """bf16 + channels_last on CUDA; channels_last alone on a CPU (faster there, where bf16 was
        slower: docs/gpu-campaign.md)."""
        return cls(amp=device.type == "cuda", channels_last=True)

    def autocast(self, device: torch.device):
        if self.amp:
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, model: nn.Module) -> nn.Module:
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


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


def param_groups(model: nn.Module, recipe: Recipe) -> list[dict]:
    """SGD parameter groups by learning-rate scale x (decayed or not), empty groups dropped; each
    carries ``lr_scale``: ``header_lr_scale`` for the shared header and classifier (every path
    trains them at every step), ``op_lr_scale`` for the candidate ops of a supernet's searchable
    layers (each is trained by the paths that choose it: about λ_x / K of the steps, with weight
    1/λ_x in the loss), 1 for the rest (stem). With ``wd_scope = "all"`` and both scales 1 this is
    one group of every parameter (the plain recipe)."""
    top = {id(p) for name in ("header", "classifier") if hasattr(model, name) for p in getattr(model, name).parameters()}
    ops = {id(p) for p in model.layers.parameters()} if isinstance(getattr(model, "layers", None), nn.ModuleList) else set()
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for m in model.modules():
        for pname, p in m.named_parameters(recurse=False):
            decay = recipe.wd_scope == "all" or getattr(m, "conv_weights", False) or (
                pname == "weight" and isinstance(m, (nn.Conv2d, nn.Linear)))
            scale = recipe.header_lr_scale if id(p) in top else recipe.op_lr_scale if id(p) in ops else 1.0
            groups.setdefault((float(scale), decay), []).append(p)
    out = []
    for (scale, decay), params in sorted(groups.items()):
        out.append({"params": params, "weight_decay": recipe.weight_decay if decay else 0.0, "lr_scale": scale})
    return out


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD (Nesterov) over :func:`param_groups`."""
    return torch.optim.SGD(param_groups(model, recipe), lr=recipe.lr, momentum=recipe.momentum,
                           nesterov=recipe.nesterov and recipe.momentum > 0)


def distilled_loss(logits: torch.Tensor, pairs: list[int], yb: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """In-place distillation (BigNAS): pair 0 (the largest architecture, ``sandwich`` sampling)
    learns from the labels; every other pair from (1 - d) x the labels + d x pair 0's predicted
    distribution (no gradient through it), d = ``recipe.distill``. Averaged over the λ_x pairs.
    ``logits``: (λ_x, n, classes) in the order of ``pairs``."""
    t = pairs.index(0)
    teacher = logits[t]
    soft = F.softmax(teacher.detach(), dim=-1)
    total = F.cross_entropy(teacher, yb, label_smoothing=recipe.label_smoothing)
    for i in range(len(pairs)):
        if i == t:
            continue
        hard = F.cross_entropy(logits[i], yb, label_smoothing=recipe.label_smoothing)
        kd = -(soft * F.log_softmax(logits[i], dim=-1)).sum(-1).mean()
        total = total + (1 - recipe.distill) * hard + recipe.distill * kd
    return total / len(pairs)


def path_loss(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, archs: np.ndarray, splits: np.ndarray,
              recipe: Recipe) -> torch.Tensor:
    """(1/λ_x) Σ_i CE of the λ_x paths (archs (λ, L), splits (λ,)) on one minibatch, as one
    tensor; the supernet runs them together (:func:`nascsim.train.paths.forward_paths`)."""
    if hasattr(model, "layers"):
        from nascsim.train.paths import forward_paths

        logits, leaves = forward_paths(model, xb, archs, splits, [recipe.split_dropout], shared=True)
        if recipe.distill > 0:
            return distilled_loss(logits.float(), [u for u, _ in leaves], yb, recipe)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), yb.repeat(logits.shape[0]),
                               label_smoothing=recipe.label_smoothing)
    total = 0.0
    for arch, split in zip(archs, splits):
        out = model(xb, arch, int(split), recipe.split_dropout)
        total = total + F.cross_entropy(out.float(), yb, label_smoothing=recipe.label_smoothing)
    return total / len(splits)


@dataclass
class EpochData:
    """What an epoch reads: uint8 images (N, 3, H, W) and labels (N,) on the training device, the
    training indices (a device tensor) and the normalisation statistics."""

    images: torch.Tensor
    labels: torch.Tensor
    train_idx: torch.Tensor
    stats: tuple[list[float], list[float]]

    @classmethod
    def of(cls, images: torch.Tensor, labels: torch.Tensor, train_idx: np.ndarray, stats) -> "EpochData":
        if len(train_idx) < 1:
            raise ValueError("no training images")
        return cls(images, labels, torch.as_tensor(np.asarray(train_idx), dtype=torch.long, device=images.device), stats)

    def steps(self, batch_size: int) -> tuple[int, int]:
        """(batch size, steps per epoch): full batches only, the batch capped at the set's size."""
        n = len(self.train_idx)
        bs = min(batch_size, n)
        return bs, n // bs


def run_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    data: EpochData,
    recipe: Recipe,
    epoch: int,
    sample_paths: PathSampler,
    precision: Precision = Precision(),
    progress: bool = False,
    max_steps: int | None = None,
) -> dict:
    """One epoch (0-based ``epoch``) of the step described in the module docstring; returns its
    log entry {epoch, s, loss, images_per_s, lr_end}. ``max_steps`` stops early (speed trials)."""
    from tqdm import tqdm

    device = data.images.device
    mean, std = data.stats
    bs, steps = data.steps(recipe.batch_size)
    n = len(data.train_idx)
    model.train()
    torch.manual_seed(epoch_seed(recipe.seed, epoch, 0))
    gen = torch.Generator(device=device).manual_seed(epoch_seed(recipe.seed, epoch, 1))
    rng = np.random.default_rng(epoch_seed(recipe.seed, epoch, 2))
    archs, splits = sample_paths(rng, steps)
    order = data.train_idx[torch.randperm(n, generator=gen, device=device)]
    run_steps = steps if max_steps is None else min(steps, max_steps)
    params = [p for g in opt.param_groups for p in g["params"]]
    loss_sum = torch.zeros((), device=device)
    t0 = time.perf_counter()
    bar = tqdm(range(run_steps), desc=f"epoch {epoch + 1}/{recipe.epochs}", disable=not progress, leave=False)
    for s in bar:
        bidx = order[s * bs:(s + 1) * bs]
        xb = normalise(data.images[bidx], mean, std)
        if recipe.augment:
            xb = augment(xb, gen, pad=max(1, xb.shape[-1] // 8))
        xb = precision.batch(xb)
        yb = data.labels[bidx]
        lr = lr_at(epoch * steps + s, steps, recipe)
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        opt.zero_grad(set_to_none=True)
        with precision.autocast(device):
            loss = path_loss(model, xb, yb, archs[s], splits[s], recipe)
        loss.backward()
        if recipe.grad_clip > 0:
            nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], recipe.grad_clip)
        opt.step()
        loss_sum += loss.detach()
        if progress and (s + 1) % 20 == 0:
            bar.set_postfix(img_s=f"{(s + 1) * bs / max(time.perf_counter() - t0, 1e-9):.0f}")
    bar.close()
    mean_loss = float(loss_sum) / max(run_steps, 1)  # the epoch's one host synchronisation
    dt = time.perf_counter() - t0
    if not math.isfinite(mean_loss):
        raise FloatingPointError(f"training diverged in epoch {epoch + 1} (mean loss {mean_loss}); lower --lr")
    return {"epoch": epoch + 1, "s": round(dt, 3), "loss": mean_loss, "images_per_s": run_steps * bs / max(dt, 1e-9),
            "lr_end": lr_at(epoch * steps + run_steps - 1, steps, recipe) if run_steps else 0.0}


def train_epochs(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    train_idx: np.ndarray,
    recipe: Recipe,
    sample_paths: PathSampler,
    checkpoint: str | Path,
    stats: tuple[list[float], list[float]],
    extra: dict,
    state: dict | None = None,
    on_epoch: Callable[[nn.Module, int], dict] | None = None,
    progress: bool = True,
    max_epochs: int | None = None,
    precision: Precision = Precision(),
) -> dict:
    """Train ``model`` from ``state`` (a loaded checkpoint, or None) to ``recipe.epochs``.

    ``images`` uint8 (N, 3, H, W) and ``labels`` (N,) live on the training device; ``train_idx``
    selects the training images. After each epoch a checkpoint {model, optimizer, epoch, log,
    recipe, **extra} is written atomically to ``checkpoint``; ``on_epoch(model, epoch)`` adds
    monitoring numbers to the epoch's log entry. ``max_epochs`` stops early (tests, time limits).
    Returns the last checkpoint dict.
    """
    data = EpochData.of(images, labels, train_idx, stats)
    model = precision.prepare(model)
    opt = make_optimizer(model, recipe)
    log: list[dict] = []
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        log = list(state["log"])
        start = int(state["epoch"])
    last = state
    stop = recipe.epochs if max_epochs is None else min(recipe.epochs, start + max_epochs)
    for epoch in range(start, stop):
        entry = run_epoch(model, opt, data, recipe, epoch, sample_paths, precision, progress)
        if on_epoch is not None:
            entry.update(on_epoch(model, epoch))
        log.append(entry)
        last = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                "log": log, "recipe": recipe.to_dict(), **extra}
        save_atomic(last, checkpoint)
    return last
