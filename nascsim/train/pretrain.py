"""Supernet weight pre-training, the paper's Algorithm 1 lines 2-4.

    for each minibatch:
        draw λ_x pairs (a_i, k_i) uniformly (every layer's op and the split point uniform;
        λ_x = 2 in the paper, 1 in the CPU recipe: docs/torch-stage.md)
        W <- W - η ∇_W (1/λ_x) Σ_i CE(tail(dropout_p(head(x; a_i, k_i))), y)

with p = 0.5 (NASC's supernet) or p = 0 (the supernet of the HWNAS w/o dropout baseline). The
training images are the training set minus a held-out split (:func:`nascsim.train.data.holdout_split`)
kept for the supernet evaluations. After each epoch the mean and spread of held-out accuracy over
a few uniformly sampled subnets (p = 0, BatchNorm on batch statistics) are logged, so a run shows
whether the supernet separates architectures.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from nascsim.space import get_space
from nascsim.train.checkpoint import load_checkpoint, require
from nascsim.train.data import channel_stats, holdout_split, load_dataset, normalise, to_device
from nascsim.train.proxy import Proxy, proxy_dataset
from nascsim.train.loop import BatchStatistics, Precision, Recipe, epoch_seed, pick_device, train_epochs
from nascsim.train.sampling import epoch_paths, uniform_pairs
from nascsim.train.supernet import SuperNet

__all__ = ["CHECKPOINT", "git_commit", "load_supernet", "pretrain", "subnet_spread", "supernet_id", "uniform_pairs"]

CHECKPOINT = "checkpoint.pt"


def machine() -> str:
    """The machine a run trained on, in one line: CPU model (Linux ``/proc/cpuinfo``, else
    :func:`platform.processor`), logical cores and architecture, e.g. ``"Intel(R) Xeon(R)
    Processor, 2 cores, x86_64"`` (a GPU, where one is used, is the run's ``train_device``)."""
    import os
    import platform

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    model = " ".join((model or platform.processor() or "unknown CPU").split())[:120]
    return f"{model}, {os.cpu_count()} cores, {platform.machine() or 'unknown architecture'}"


def git_commit() -> str:
    """Commit of the nascsim checkout (suffix ``-dirty`` when it has changes); where the code runs
    from a copy without ``.git`` (a GPU machine), the commit named by ``NASCSIM_GIT_COMMIT`` (set by
    ``scripts/gpu-campaign.sh`` from the carried data folder), else ``unknown``."""
    import os

    root = Path(__file__).resolve().parents[2]
    given = os.environ.get("NASCSIM_GIT_COMMIT", "").strip()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return given if re.fullmatch(r"[0-9a-f]{7,40}(-dirty)?", given) else "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def supernet_id(space: str, dataset: str, split_dropout: float, epochs: int) -> str:
    """e.g. ``fbnet-cifar10-drop50-30ep``."""
    name = dataset.split(":")[-1]
    return f"{space}-{name}-drop{int(round(split_dropout * 100)):02d}-{epochs}ep"


def subnet_spread(model: SuperNet, x_valid: torch.Tensor, y_valid: torch.Tensor, pairs: int, seed: int,
                  precision: Precision = Precision()) -> dict:
    """Held-out accuracy at p = 0 of ``pairs`` uniform subnets on one batch: mean, sd, min, max
    (BatchNorm on the batch's statistics; the subnets run together, one host synchronisation)."""
    from nascsim.train.paths import loss_and_accuracy

    rng = np.random.default_rng(seed)
    archs, splits = uniform_pairs(model.space, pairs, rng)
    with BatchStatistics(model), precision.autocast(x_valid.device):
        _, acc_t = loss_and_accuracy(model, precision.batch(x_valid), y_valid, archs, splits, [0.0])
    acc = acc_t[:, 0].double().cpu().numpy()
    return {"subnet_acc_mean": float(acc.mean()), "subnet_acc_sd": float(acc.std(ddof=1)) if pairs > 1 else 0.0,
            "subnet_acc_min": float(acc.min()), "subnet_acc_max": float(acc.max()), "subnet_pairs": pairs,
            "subnet_images": int(len(y_valid))}


def pretrain(
    data: str | Path,
    out_dir: str | Path,
    space: str = "fbnet",
    recipe: Recipe | None = None,
    valid_images: int = 5000,
    cache_dir: str | Path | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    max_epochs: int | None = None,
    monitor_pairs: int = 8,
    monitor_images: int = 1000,
    train_images: int | None = None,
) -> dict:
    """Pre-train a supernet; checkpoint ``out_dir/checkpoint.pt`` after every epoch.

    With ``resume`` the run continues from that checkpoint with the recipe and data settings stored
    in it. ``train_images`` caps the training split (smoke tests); ``None`` uses all of it.
    """
    from nascsim.limits import MAX_EPOCHS, MAX_MONITOR_PAIRS, check_count

    check_count("monitor_pairs", monitor_pairs, 0, MAX_MONITOR_PAIRS)
    if max_epochs is not None:
        check_count("max_epochs", max_epochs, 1, MAX_EPOCHS)
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT
    state = None
    if resume:
        if not ckpt_path.exists():
            raise FileNotFoundError(f"cannot resume: no checkpoint at {ckpt_path}")
        state = load_checkpoint(ckpt_path, "supernet")
        require(state, ckpt_path, "recipe", "space", "valid_images", "model", "optimizer", "log", "epoch")
        require(state, ckpt_path, *(["train_images_cap"] if "train_images_cap" in state else []))
        recipe = Recipe.from_dict(state["recipe"])
        space, valid_images = state["space"], state["valid_images"]
        train_images = state.get("train_images_cap")
    elif ckpt_path.exists():
        raise ValueError(f"{ckpt_path} exists; pass --resume to continue it or choose another output folder")
    recipe = recipe or Recipe()
    sp = get_space(space)
    dev = pick_device(device)
    check_images(valid_images, train_images, monitor_images)
    ds = load_dataset(data, cache_dir, check=lambda d: holdout_split(len(d.y_train), valid_images, recipe.seed))
    ds = proxy_dataset(ds, recipe.proxy)
    train_idx, valid_idx = holdout_split(len(ds.y_train), valid_images, recipe.seed)
    if train_images is not None:
        train_idx = train_idx[: int(train_images)]
    stats = channel_stats(ds.x_train[train_idx])
    images = to_device(ds.x_train, dev)
    labels = torch.as_tensor(ds.y_train, device=dev)
    mon_idx = torch.as_tensor(valid_idx[:monitor_images], device=dev)
    x_mon = normalise(images[mon_idx], *stats)
    y_mon = labels[mon_idx]

    torch.manual_seed(recipe.seed)
    precision = Precision.for_device(dev)
    model = SuperNet(sp, ds.n_classes, zero_residual=recipe.zero_residual, init=recipe.init, proxy=recipe.proxy,
                         sharing=recipe.sharing).to(dev)
    extra = {
        "kind": "supernet",
        "id": supernet_id(sp.name, ds.name, recipe.split_dropout, recipe.epochs),
        "space": sp.name,
        "classes": ds.n_classes,
        "dataset": ds.name,
        "dataset_source": ds.source,
        "proxy": recipe.proxy.to_dict(),
        "train_images": int(len(train_idx)),
        "train_images_cap": train_images,
        "valid_images": int(valid_images),
        "stats": stats,
        "git_commit": git_commit(),
        "torch": str(torch.__version__),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "precision": {"amp_bf16": precision.amp, "channels_last": precision.channels_last},
    }

    def sample(rng: np.random.Generator, steps: int):
        return epoch_paths(sp, steps, recipe.lambda_x, recipe.sampling, rng)

    def on_epoch(m, epoch):
        if monitor_pairs < 1:
            return {}
        # the same subnets after every epoch: the curve follows fixed architectures
        return subnet_spread(m, x_mon, y_mon, monitor_pairs, epoch_seed(recipe.seed, 0, 3), precision)

    t0 = time.perf_counter()
    last = train_epochs(model, images, labels, train_idx, recipe, sample, ckpt_path, stats, extra,
                        state=state, on_epoch=on_epoch, progress=progress, max_epochs=max_epochs, precision=precision)
    last["wall_s"] = time.perf_counter() - t0
    return last


def check_images(valid_images: int, train_images: int | None, monitor_images: int = 1) -> None:
    """Image counts must be positive (held-out: at least 1; training cap: at least 1)."""
    from nascsim.limits import MAX_IMAGES

    if not isinstance(valid_images, (int, np.integer)) or not 1 <= valid_images <= MAX_IMAGES:
        raise ValueError(f"--valid-images must be at least 1 and at most {MAX_IMAGES:,}, got {valid_images}")
    if train_images is not None and not 1 <= train_images <= MAX_IMAGES:
        raise ValueError(f"--train-images must be at least 1 and at most {MAX_IMAGES:,}, got {train_images}")
    if not 1 <= monitor_images <= MAX_IMAGES:
        raise ValueError(f"monitor images must be at least 1 and at most {MAX_IMAGES:,}, got {monitor_images}")


def stored_recipe(state: dict) -> Recipe:
    """The recipe a checkpoint was trained with; fields it lacks (or a checkpoint without one)
    take the values of the code that wrote it (:meth:`Recipe.from_dict`): the full model,
    independent ops."""
    recipe = state.get("recipe")
    return Recipe.from_dict(recipe if isinstance(recipe, dict) else {})


def checkpoint_proxy(state: dict) -> Proxy:
    """The proxy setting a checkpoint was trained at (its recipe's width and resolution; checkpoints
    written before proxies existed hold the full model)."""
    return stored_recipe(state).proxy


def load_supernet(checkpoint: str | Path, device: str = "auto") -> tuple[SuperNet, dict]:
    """(model on ``device``, checkpoint dict) from a supernet checkpoint."""
    path = Path(checkpoint)
    if path.is_dir():
        path = path / CHECKPOINT
    state = load_checkpoint(path, "supernet")
    require(state, path, "space", "classes", "model", *(["recipe"] if "recipe" in state else []))
    stored = stored_recipe(state)
    model = SuperNet(state["space"], state["classes"], zero_residual=False, proxy=stored.proxy, sharing=stored.sharing)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: the stored weights do not fit a {state['space']} supernet ({str(exc).splitlines()[0]})") from None
    return model.to(pick_device(device)), state
