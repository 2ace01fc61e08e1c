"""Re-training of one (architecture, split) from scratch, its test accuracy at each loss rate, and
the export of head and tail as two separate torch modules.

The network trains on the whole training set with dropout ``p_train`` (paper: 0.5; 0 for the HWNAS
baseline) at its split, then the test set is evaluated at every p of P (BatchNorm in eval mode
with the running statistics, which fit this single network; dropout at the split active). The
head (stem .. payload) and tail (rest .. classifier) are saved as ``head.pt`` and ``tail.pt``
(state_dict + architecture spec each) so they can run on different machines; see
:mod:`nascsim.train.parts` for the two files and :mod:`nascsim.train.channel` for the end-to-end
check over a lossy channel.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from nascsim.config import DEFAULT_LOSS_SET
from nascsim.space import arch_names, check_split, get_space
from nascsim.train.channel import check_bits, check_loss_rates, confirm_split
from nascsim.train.data import channel_stats, load_dataset, normalise, to_device
from nascsim.train.loop import Precision, Recipe, pick_device, train_epochs
from nascsim.train.parts import HEAD_FILE, TAIL_FILE, export_split
from nascsim.train.pretrain import git_commit
from nascsim.train.supernet import ChildNet

CHECKPOINT = "checkpoint.pt"


def accuracy_at_p(model: ChildNet, x: torch.Tensor, y: torch.Tensor, split: int, ps: Sequence[float],
                  seed: int, batch: int = 1000) -> list[dict]:
    """Test loss and accuracy at each p (eval-mode BN, dropout at the split active)."""
    model.eval()
    torch.manual_seed(seed)
    rows = []
    with torch.no_grad():
        for p in ps:
            loss = correct = 0.0
            for s in range(0, len(y), batch):
                out = model(x[s:s + batch], split=split, p=p)
                loss += float(F.cross_entropy(out, y[s:s + batch], reduction="sum"))
                correct += float((out.argmax(1) == y[s:s + batch]).sum())
            rows.append({"p": float(p), "test_loss": loss / len(y), "test_acc": correct / len(y)})
    return rows


def retrain(
    data: str | Path,
    out_dir: str | Path,
    arch: str | Sequence,
    split: int,
    space: str = "fbnet",
    recipe: Recipe | None = None,
    ps: Sequence[float] = DEFAULT_LOSS_SET,
    cache_dir: str | Path | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    train_images: int | None = None,
    bits: float = 32,
    latency_repeats: int = 30,
) -> dict:
    """Train ``arch`` with dropout ``recipe.split_dropout`` at ``split`` from scratch; test at each
    p; export head/tail. Returns and writes ``out_dir/retrain.json``."""
    from nascsim.space import parse_arch

    from nascsim.train.pretrain import check_images

    sp = get_space(space)
    a = parse_arch(arch, sp)
    split = check_split(split, sp)
    ps = check_loss_rates(ps)
    bits = check_bits(bits)
    check_images(1, train_images)
    recipe = recipe or Recipe(lambda_x=1)
    out = Path(out_dir)
    ckpt = out / CHECKPOINT
    state = None
    if resume:
        if not ckpt.exists():
            raise FileNotFoundError(f"cannot resume: no checkpoint at {ckpt}")
        from nascsim.train.checkpoint import load_checkpoint, require

        state = load_checkpoint(ckpt, "child")
        require(state, ckpt, "arch", "split", "recipe", "model", "optimizer", "log", "epoch")
        if list(state["arch"]) != a.tolist() or state["split"] != split:
            raise ValueError(f"{ckpt} is not a re-training checkpoint of this architecture and split")
        recipe = Recipe.from_dict(state["recipe"])
    elif ckpt.exists():
        raise ValueError(f"{ckpt} exists; pass --resume to continue it or choose another output folder")
    dev = pick_device(device)
    from nascsim.train.proxy import proxy_dataset

    ds = proxy_dataset(load_dataset(data, cache_dir), recipe.proxy)
    train_idx = np.random.default_rng(np.random.SeedSequence([recipe.seed, 0x5EED])).permutation(len(ds.y_train))
    if train_images is not None:
        train_idx = train_idx[: int(train_images)]  # a random subset: files are stored class by class
    stats = channel_stats(ds.x_train[train_idx])
    images = to_device(ds.x_train, dev)
    labels = torch.as_tensor(ds.y_train, device=dev)
    torch.manual_seed(recipe.seed)
    model = ChildNet(sp, a, ds.n_classes, zero_residual=recipe.zero_residual, init=recipe.init, proxy=recipe.proxy).to(dev)
    extra = {"kind": "child", "space": sp.name, "arch": a.tolist(), "split": split, "classes": ds.n_classes,
             "proxy": recipe.proxy.to_dict(),
             "dataset": ds.name, "stats": stats, "git_commit": git_commit()}
    t0 = time.perf_counter()
    def one_path(rng: np.random.Generator, steps: int) -> tuple[np.ndarray, np.ndarray]:
        return np.tile(a, (steps, 1, 1)), np.full((steps, 1), split, dtype=np.int64)

    train_epochs(model, images, labels, train_idx, recipe, one_path, ckpt, stats, extra, state=state, progress=progress,
                 precision=Precision.for_device(dev))
    train_s = time.perf_counter() - t0
    x_test = normalise(to_device(ds.x_test, dev), *stats)
    y_test = torch.as_tensor(ds.y_test, device=dev)
    rows = accuracy_at_p(model, x_test, y_test, split, ps, recipe.seed)
    model_cpu = model.to("cpu")
    export_split(model_cpu, split, out, stats)

    confirmed = confirm_split(out / HEAD_FILE, out / TAIL_FILE, ds.x_test, ds.y_test, ps, bits=bits,
                              seed=recipe.seed, latency_repeats=latency_repeats)
    for r, c in zip(rows, confirmed["rows"]):
        r.update({k: c[k] for k in ("channel_acc", "bits")})
    result = {
        "space": sp.name, "arch": a.tolist(), "arch_names": arch_names(a, sp), "split": split,
        "dataset": ds.name, "proxy": recipe.proxy.to_dict(), "train_images": int(len(train_idx)), "test_images": int(len(ds.y_test)),
        "split_dropout_train": recipe.split_dropout, "epochs": recipe.epochs, "recipe": recipe.to_dict(),
        "train_s": train_s, "rows": rows, "head_ms": confirmed["head_ms"], "tail_ms": confirmed["tail_ms"],
        "payload_elements": confirmed["payload_elements"], "latency_device": confirmed["latency_device"],
        "head_file": str(out / HEAD_FILE), "tail_file": str(out / TAIL_FILE), "git_commit": git_commit(),
    }
    write_json_atomic(result, out / "retrain.json")
    return result


def write_json_atomic(obj: dict, target: Path) -> None:
    from nascsim.atomic import atomic_write_bytes

    atomic_write_bytes(json.dumps(obj, indent=1).encode(), target)
