"""Supernet evaluations: the training data of the accuracy surrogate.

Pairs (a, k) are drawn by two schemes (``near_share`` sets the mix):

- uniform: every op and the split uniform, as in pre-training;
- near the latency threshold: searches end in architectures whose T(a, k) (eq. 3, from
  :mod:`nascsim.latency`) lies just under T_th, a region uniform sampling rarely visits (under
  raspi4 -> edgegpu most uniform FBNet pairs take 45-80 ms). Candidates are proposed from a
  per-candidate random op distribution (θ ~ Dirichlet(0.3) over the ops, the same for every
  layer -- skewed distributions like the ones ASNG converges to), splits uniform, and a candidate is
  kept when |T - T_th| <= band * T_th for a T_th drawn from ``thresholds``.

Each pair is evaluated at every p of P on one held-out minibatch (``batch_images`` images): the
head runs once per pair and its payload is reused for all p (only the tail runs per p). A share
``repeat_share`` of pairs is re-evaluated on another batch (``repeat`` = 1) to give the observation
noise. A separate low-noise test set of ``lowvar_pairs`` pairs is evaluated on the whole held-out
split at every p (``batch`` = -1, ``lowvar`` = True).

BatchNorm uses the statistics of the evaluated batch (train-mode BN, running statistics left
untouched). Running statistics of a single-path supernet average over all paths that shared a
layer during training and fit no single path; re-calibrating per pair (SPOS) costs extra forward
passes per pair, and with dropout at the split the tail's statistics would still depend on p.
Batch statistics of >= 500 held-out images are accurate, cost nothing extra and follow the
payload's change with p.

Rows follow the evaluation file schema (``nascsim/surrogate`` reads them); the parquet schema
metadata key ``nascsim_supernet`` holds the supernet's training record and this run's settings.
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
from nascsim.space import Space
from nascsim.train.data import holdout_split, load_dataset, normalise, to_device
from nascsim.train.loop import BatchStatistics
from nascsim.train.pretrain import load_supernet, supernet_id, uniform_pairs
from nascsim.train.supernet import SuperNet, split_dropout

METADATA_KEY = "nascsim_supernet"
N_OP_COLUMNS = 22


def near_threshold_pairs(
    space: Space, n: int, thresholds: Sequence[float], band: float, rng: np.random.Generator,
    head: str = "raspi4", tail: str = "edgegpu", bits: float = 32, bandwidth: float = 8e6, classes: int = 10,
    chunk: int = 4096, max_rounds: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs with T(a, k) within ``band`` (relative) of a threshold (module docstring)."""
    from nascsim.latency import build_latency_model, latency_batch

    if n <= 0:
        return np.zeros((0, space.n_layers), np.int64), np.zeros(0, np.int64)
    model = build_latency_model(space, head, tail, None, bits, bandwidth, classes)
    th = np.asarray(thresholds, dtype=float)
    keep_a, keep_k, found = [], [], 0
    for _ in range(max_rounds):
        theta = rng.dirichlet(np.full(space.n_ops, 0.3), size=chunk)
        cum = np.cumsum(theta, axis=1)
        u = rng.random((chunk, space.n_layers))
        archs = np.minimum((u[:, :, None] > cum[:, None, :]).sum(axis=2), space.n_ops - 1).astype(np.int64)
        splits = rng.integers(0, space.n_splits, size=chunk, dtype=np.int64)
        T = latency_batch(model, archs, splits).sum(axis=1)
        target = th[rng.integers(0, len(th), size=chunk)]
        ok = np.abs(T - target) <= band * target
        keep_a.append(archs[ok])
        keep_k.append(splits[ok])
        found += int(ok.sum())
        if found >= n:
            break
    if found < n:
        raise ValueError(
            f"found only {found} of {n} pairs within {band:.0%} of thresholds {list(th)} ms "
            f"({head} -> {tail}); choose thresholds inside the space's latency range"
        )
    return np.concatenate(keep_a)[:n], np.concatenate(keep_k)[:n]


def sample_eval_pairs(space: Space, n: int, near_share: float, rng: np.random.Generator, **near_kw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(archs, splits, near) for ``n`` pairs, ``round(near_share * n)`` of them near the threshold,
    shuffled together; ``near`` flags those."""
    n_near = int(round(near_share * n))
    a_u, k_u = uniform_pairs(space, n - n_near, rng)
    a_n, k_n = near_threshold_pairs(space, n_near, rng=rng, **near_kw)
    archs = np.concatenate([a_u, a_n])
    splits = np.concatenate([k_u, k_n])
    near = np.concatenate([np.zeros(len(k_u), bool), np.ones(len(k_n), bool)])
    order = rng.permutation(n)
    return archs[order], splits[order], near[order]


def eval_pair_all_p(model: SuperNet, xb: torch.Tensor, yb: torch.Tensor, arch: np.ndarray, split: int,
                    ps: Sequence[float]) -> list[tuple[float, float]]:
    """(loss, acc) at every p of ``ps`` for one pair on one batch; the head runs once.
    Call inside :class:`BatchStatistics`."""
    z = model.forward_head(xb, arch, split)
    out = []
    for p in ps:
        logits = model.forward_tail(split_dropout(z, p), arch, split)
        out.append((float(F.cross_entropy(logits, yb)), float((logits.argmax(1) == yb).float().mean())))
    return out


def _write_parquet(columns: dict, metadata: dict, target: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(columns).replace_schema_metadata({METADATA_KEY: json.dumps(metadata)})
    from nascsim.atomic import atomic_path

    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)


def evaluate_supernet(
    checkpoint: str | Path,
    data: str | Path,
    out: str | Path,
    pairs: int = 20000,
    lowvar_pairs: int = 500,
    ps: Sequence[float] = DEFAULT_LOSS_SET,
    batch_images: int = 1000,
    repeat_share: float = 0.15,
    near_share: float = 0.3,
    thresholds: Sequence[float] = (30.0, 35.0, 40.0, 50.0),
    band: float = 0.1,
    head: str = "raspi4",
    tail: str = "edgegpu",
    seed: int = 0,
    cache_dir: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """Evaluate sampled pairs of the supernet at ``checkpoint``; write the parquet ``out``.
    Returns the metadata written (incl. evaluations per second)."""
    from tqdm import tqdm

    for name, v, lo, hi in (("repeat_share", repeat_share, 0, 1), ("near_share", near_share, 0, 1), ("band", band, 0, 1)):
        if not lo <= v <= hi:
            raise ValueError(f"{name} must lie in [{lo}, {hi}], got {v}")
    if pairs < 0 or lowvar_pairs < 0 or pairs + lowvar_pairs == 0:
        raise ValueError(f"need pairs >= 0 and lowvar_pairs >= 0, not both 0 (got {pairs}, {lowvar_pairs})")
    ps = [float(p) for p in ps]
    if not ps or any(not 0 <= p < 1 for p in ps):
        raise ValueError(f"loss rates must lie in [0, 1), got {ps}")
    model, state = load_supernet(checkpoint, device)
    dev = next(model.parameters()).device
    sp = model.space
    ds = load_dataset(data, cache_dir)
    if ds.n_classes != state["classes"]:
        raise ValueError(f"{data} has {ds.n_classes} classes; the supernet was trained with {state['classes']}")
    recipe = state["recipe"]
    _, valid_idx = holdout_split(len(ds.y_train), state["valid_images"], recipe["seed"])
    x_valid = normalise(to_device(ds.x_train[valid_idx], dev), *state["stats"])
    y_valid = torch.as_tensor(ds.y_train[valid_idx], device=dev)
    n_valid = len(valid_idx)
    bsz = min(batch_images, n_valid)
    n_batches = n_valid // bsz

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xE7A1]))
    near_kw = dict(thresholds=thresholds, band=band, head=head, tail=tail, classes=state["classes"])
    archs, splits, near = sample_eval_pairs(sp, pairs, near_share, rng, **near_kw)
    lv_archs, lv_splits, lv_near = sample_eval_pairs(sp, lowvar_pairs, near_share, rng, **near_kw)

    sid = supernet_id(sp.name, state["dataset"], recipe["split_dropout"], state["epoch"])
    cols: dict[str, list] = {k: [] for k in ("pair", "arch", "split", "p", "batch", "repeat", "n_images", "loss", "acc", "lowvar")}
    op_cols: list[list[int]] = []

    def add(pair: int, arch: np.ndarray, split: int, batch: int, repeat: int, n_img: int, res, lowvar: bool) -> None:
        for p, (loss, acc) in zip(ps, res):
            cols["pair"].append(pair)
            cols["arch"].append(",".join(str(int(o)) for o in arch))
            cols["split"].append(int(split))
            cols["p"].append(p)
            cols["batch"].append(batch)
            cols["repeat"].append(repeat)
            cols["n_images"].append(n_img)
            cols["loss"].append(loss)
            cols["acc"].append(acc)
            cols["lowvar"].append(lowvar)
            op_cols.append([int(o) for o in arch])

    torch.manual_seed(seed)
    t0 = time.perf_counter()
    n_main = 0
    with BatchStatistics(model):
        for i in tqdm(range(pairs), desc="pairs", disable=not progress):
            a, k = archs[i], int(splits[i])
            b = int(rng.integers(n_batches))
            sl = slice(b * bsz, (b + 1) * bsz)
            add(i, a, k, b, 0, bsz, eval_pair_all_p(model, x_valid[sl], y_valid[sl], a, k, ps), False)
            n_main += len(ps)
            if n_batches > 1 and rng.random() < repeat_share:
                b2 = int((b + 1 + rng.integers(n_batches - 1)) % n_batches)
                sl = slice(b2 * bsz, (b2 + 1) * bsz)
                add(i, a, k, b2, 1, bsz, eval_pair_all_p(model, x_valid[sl], y_valid[sl], a, k, ps), False)
                n_main += len(ps)
        t_main = time.perf_counter() - t0
        t1 = time.perf_counter()
        chunks = [slice(s, min(s + bsz, n_valid)) for s in range(0, n_valid, bsz)]
        for j in tqdm(range(lowvar_pairs), desc="low-noise pairs", disable=not progress):
            a, k = lv_archs[j], int(lv_splits[j])
            tot = np.zeros((len(ps), 2))
            for sl in chunks:
                n_c = sl.stop - sl.start
                tot += n_c * np.array(eval_pair_all_p(model, x_valid[sl], y_valid[sl], a, k, ps))
            add(pairs + j, a, k, -1, 0, n_valid, [tuple(r) for r in tot / n_valid], True)
        t_lowvar = time.perf_counter() - t1

    n = len(cols["pair"])
    columns = {"supernet": [sid] * n, "pair": cols["pair"], "arch": cols["arch"]}
    ops = np.array(op_cols, dtype=np.int64).reshape(n, N_OP_COLUMNS)
    for li in range(N_OP_COLUMNS):
        columns[f"op{li:02d}"] = ops[:, li]
    for key in ("split", "p", "batch", "repeat", "n_images", "loss", "acc"):
        columns[key] = cols[key]
    columns["dataset"] = [state["dataset"]] * n
    columns["seed"] = [int(seed)] * n
    columns["lowvar"] = cols["lowvar"]
    import pyarrow as pa

    typed = {k: pa.array(v, type=pa.int64()) for k, v in columns.items()
             if k in ("pair", "split", "batch", "repeat", "n_images", "seed") or k.startswith("op")}
    typed.update({k: pa.array(v, type=pa.float64()) for k, v in columns.items() if k in ("p", "loss", "acc")})
    typed.update({k: pa.array(v, type=pa.string()) for k, v in columns.items() if k in ("supernet", "arch", "dataset")})
    typed["lowvar"] = pa.array(columns["lowvar"], type=pa.bool_())
    ordered = {k: typed[k] for k in columns}

    log = state["log"]
    meta = {
        "supernet": sid,
        "dataset": state["dataset"],
        "dataset_source": state["dataset_source"],
        "space": sp.name,
        "classes": state["classes"],
        "split_dropout_train": recipe["split_dropout"],
        "lambda_x": recipe["lambda_x"],
        "epochs": state["epoch"],
        "epochs_planned": recipe["epochs"],
        "images": state["train_images"],
        "train_images": state["train_images"],
        "valid_images": state["valid_images"],
        "seed": recipe["seed"],
        "recipe": recipe,
        "git_commit": state["git_commit"],
        "final_train_loss": log[-1]["loss"] if log else None,
        "epochs_log": log,
        "train_device": state["device"],
        "torch": state["torch"],
        "eval": {
            "seed": int(seed),
            "git_commit": _commit(),
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
            "loss_set": ps,
            "pairs": pairs,
            "near_pairs": int(near.sum()),
            "lowvar_pairs": lowvar_pairs,
            "lowvar_near_pairs": int(lv_near.sum()),
            "batch_images": bsz,
            "n_batches": n_batches,
            "repeat_share": repeat_share,
            "sampling": f"uniform + {near_share:.0%} near T_th in {list(map(float, thresholds))} ms (band {band:.0%}, {head}->{tail}, θ~Dirichlet(0.3))",
            "bn_at_eval": f"batch statistics of the evaluated batch ({bsz} images)",
            "head_reused_across_p": True,
            "main_s": t_main,
            "lowvar_s": t_lowvar,
            "evals_per_s": n_main / t_main if t_main > 0 else None,
            "pairs_per_s": pairs / t_main if t_main > 0 and pairs else None,
            "lowvar_evals_per_s": lowvar_pairs * len(ps) / t_lowvar if t_lowvar > 0 and lowvar_pairs else None,
        },
    }
    _write_parquet(ordered, meta, Path(out))
    return meta


def _commit() -> str:
    from nascsim.train.pretrain import git_commit

    return git_commit()


def read_metadata(path: str | Path) -> dict:
    """The ``nascsim_supernet`` metadata of an evaluation parquet."""
    import pyarrow.parquet as pq

    md = pq.read_schema(path).metadata or {}
    if METADATA_KEY.encode() not in md:
        raise ValueError(f"{path} has no {METADATA_KEY!r} metadata")
    return json.loads(md[METADATA_KEY.encode()])
