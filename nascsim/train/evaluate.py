"""Supernet evaluations: the training data of the accuracy surrogate and its test and noise sets.

Pairs (a, k) are drawn by two schemes (``near_share`` sets the mix):

- uniform: every op and the split uniform, as in pre-training;
- near the latency threshold: searches end in architectures whose T(a, k) (eq. 3, from
  :mod:`nascsim.hw.latency`) lies just under T_th, a region uniform sampling rarely visits (under
  raspi4 -> edgegpu most uniform FBNet pairs take 45-80 ms). Candidates are proposed from a
  per-candidate random op distribution (θ ~ Dirichlet(0.3) over the ops, the same for every
  layer -- skewed distributions like the ones ASNG converges to), splits uniform, and a candidate is
  kept when |T - T_th| <= band * T_th for a T_th drawn from ``thresholds``.

Three designs (the ``design`` column of the evaluation file):

- ``main``: each pair at every p of P on one held-out batch of ``batch_images`` images (``batch``
  = its index; rows with equal ``batch`` saw the same images); a share ``repeat_share`` of pairs
  again on a second batch (``repeat`` = 1), which gives the observation noise;
- ``lowvar``: a low-noise test set, each pair at every p on the whole held-out split
  (``batch`` = -1, ``lowvar`` = True), in chunks of ``batch_images`` with the chunk's statistics;
- ``noise``: a crossed minibatch-noise set, every pair at every p on every one of B shared
  minibatches of ``noise_images`` (64, what ASNG judges a sample on) images (``batch`` = 0..B-1).

Pairs run many at a time (:func:`nascsim.train.paths.loss_and_accuracy`): the head once per pair
for all p, ops shared between pairs and p once per call, one host synchronisation per call.

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
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from nascsim.config import DEFAULT_LOSS_SET
from nascsim.space import Space
from nascsim.train.data import holdout_split, load_dataset, normalise, to_device
from nascsim.train.checkpoint import require
from nascsim.train.loop import BatchStatistics
from nascsim.train.pretrain import CHECKPOINT, load_supernet, supernet_id
from nascsim.train.sampling import uniform_pairs
from nascsim.train.supernet import SuperNet

METADATA_KEY = "nascsim_supernet"
N_OP_COLUMNS = 22


def near_threshold_pairs(
    space: Space, n: int, thresholds: Sequence[float], band: float, rng: np.random.Generator,
    head: str = "raspi4", tail: str = "edgegpu", bits: float = 32, bandwidth: float = 8e6, classes: int = 10,
    chunk: int = 4096, max_rounds: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs with T(a, k) within ``band`` (relative) of a threshold (module docstring)."""
    from nascsim.hw.latency import build_latency_model, latency_batch

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


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def pairs_per_call(n_images: int, n_ps: int, max_rows: int) -> int:
    """How many pairs one call evaluates: their tails stack ``pairs * n_images * n_ps`` rows,
    kept within ``max_rows`` (at least one pair)."""
    return max(1, int(max_rows) // max(1, n_images * n_ps))


def eval_shared(model: SuperNet, x: torch.Tensor, y: torch.Tensor, archs: np.ndarray, splits: np.ndarray,
                ps: Sequence[float], max_rows: int, precision=None) -> tuple[np.ndarray, np.ndarray]:
    """(loss, acc), each (U, len(ps)) float64, of U pairs on the same images ``x`` (normalised,
    on the model's device), in calls of :func:`pairs_per_call` pairs. Call inside
    :class:`BatchStatistics`."""
    from nascsim.train.loop import Precision
    from nascsim.train.paths import loss_and_accuracy

    precision = precision or Precision()
    m = pairs_per_call(len(y), len(ps), max_rows)
    xb = precision.batch(x)
    losses, accs = [], []
    for a, b in _chunks(len(splits), m):
        with precision.autocast(x.device):
            lo, ac = loss_and_accuracy(model, xb, y, archs[a:b], splits[a:b], ps, shared=True)
        losses.append(lo)
        accs.append(ac)
    loss = torch.cat(losses).double().cpu().numpy()
    acc = torch.cat(accs).double().cpu().numpy()
    return loss, acc


class EvalTable:
    """Rows of one evaluation file, accumulated set by set (:data:`COLUMNS` order)."""

    def __init__(self, supernet: str, dataset: str, seed: int, ps: Sequence[float]) -> None:
        self.supernet, self.dataset, self.seed = supernet, dataset, int(seed)
        self.ps = [float(p) for p in ps]
        self.cols: dict[str, list] = {k: [] for k in ("pair", "split", "p", "batch", "repeat", "n_images", "loss", "acc", "lowvar", "design")}
        self.ops: list[np.ndarray] = []

    def add(self, pairs: np.ndarray, archs: np.ndarray, splits: np.ndarray, batch: np.ndarray | int,
            repeat: np.ndarray | int, n_images: int, loss: np.ndarray, acc: np.ndarray, design: str) -> None:
        """One row per (pair, p): ``loss``/``acc`` (U, len(ps))."""
        u, n_p = loss.shape
        rep = lambda v: np.repeat(np.broadcast_to(np.asarray(v), (u,)), n_p).tolist()  # noqa: E731
        self.cols["pair"] += rep(pairs)
        self.cols["split"] += rep(splits)
        self.cols["p"] += self.ps * u
        self.cols["batch"] += rep(batch)
        self.cols["repeat"] += rep(repeat)
        self.cols["n_images"] += [int(n_images)] * (u * n_p)
        self.cols["loss"] += loss.reshape(-1).tolist()
        self.cols["acc"] += acc.reshape(-1).tolist()
        self.cols["lowvar"] += [design == "lowvar"] * (u * n_p)
        self.cols["design"] += [design] * (u * n_p)
        self.ops.append(np.repeat(np.asarray(archs, dtype=np.int64).reshape(u, -1), n_p, axis=0))

    def __len__(self) -> int:
        return len(self.cols["pair"])

    def extend(self, frame) -> None:
        """Append the rows of ``frame`` (a pyarrow table of this schema, as :meth:`write` wrote it:
        a resumed evaluation continues after them). ``ValueError`` naming the column when one is
        missing, of another type, holds nulls, or belongs to another supernet or loss-rate set."""
        import pyarrow as pa

        kinds = {"pair": pa.int64(), "split": pa.int64(), "p": pa.float64(), "batch": pa.int64(), "repeat": pa.int64(),
                 "n_images": pa.int64(), "loss": pa.float64(), "acc": pa.float64(), "lowvar": pa.bool_(),
                 "design": pa.string(), "supernet": pa.string(),
                 **{f"op{li:02d}": pa.int64() for li in range(N_OP_COLUMNS)}}
        for name, kind in kinds.items():
            if name not in frame.column_names:
                raise ValueError(f"the evaluation rows lack the column {name!r}")
            col = frame.column(name)
            if col.type != kind or col.null_count:
                raise ValueError(f"the evaluation rows' column {name!r} is not {kind} without nulls (got {col.type})")
        if set(frame.column("supernet").to_pylist()) - {self.supernet}:
            raise ValueError(f"the evaluation rows belong to another supernet than {self.supernet}")
        if set(frame.column("p").to_pylist()) - set(self.ps):
            raise ValueError(f"the evaluation rows hold loss rates outside {self.ps}")
        if set(frame.column("design").to_pylist()) - {"main", "lowvar", "noise"}:
            raise ValueError("the evaluation rows hold a design other than main, lowvar and noise")
        for k in self.cols:
            self.cols[k] += frame.column(k).to_pylist()
        ops = [frame.column(f"op{li:02d}").to_numpy() for li in range(N_OP_COLUMNS)]
        self.ops.append(np.stack(ops, axis=1).astype(np.int64) if len(frame) else np.zeros((0, N_OP_COLUMNS), np.int64))

    def count(self, design: str) -> int:
        """Pairs (distinct) of one design."""
        return len({p for p, d in zip(self.cols["pair"], self.cols["design"]) if d == design})

    def table(self, metadata: dict):
        import pyarrow as pa

        n = len(self)
        ops = np.concatenate(self.ops) if self.ops else np.zeros((0, N_OP_COLUMNS), np.int64)
        cols = {"supernet": pa.array([self.supernet] * n, pa.string()),
                "pair": pa.array(self.cols["pair"], pa.int64()),
                "arch": pa.array([",".join(map(str, r)) for r in ops.tolist()], pa.string())}
        for li in range(N_OP_COLUMNS):
            cols[f"op{li:02d}"] = pa.array(ops[:, li], pa.int64())
        for k in ("split", "p", "batch", "repeat", "n_images", "loss", "acc"):
            cols[k] = pa.array(self.cols[k], pa.float64() if k in ("p", "loss", "acc") else pa.int64())
        cols["dataset"] = pa.array([self.dataset] * n, pa.string())
        cols["seed"] = pa.array([self.seed] * n, pa.int64())
        cols["lowvar"] = pa.array(self.cols["lowvar"], pa.bool_())
        cols["design"] = pa.array(self.cols["design"], pa.string())
        return pa.table(cols).replace_schema_metadata({METADATA_KEY: json.dumps(metadata)})

    def write(self, target: str | Path, metadata: dict) -> None:
        """The whole table, written atomically (a reader never sees a half-written file)."""
        import pyarrow.parquet as pq

        from nascsim.atomic import atomic_path

        table = self.table(metadata)
        with atomic_path(target) as tmp:
            pq.write_table(table, tmp)


def main_jobs(n_pairs: int, n_batches: int, repeat_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pair index, batch, repeat) of the main evaluations of ``n_pairs`` pairs: each pair on a
    uniform batch, and ``ceil(repeat_share * n_pairs)`` of them (a seeded choice) again on another
    batch. Sorted by batch, so that pairs sharing a batch share calls."""
    first = rng.integers(0, n_batches, size=n_pairs)
    n_rep = min(n_pairs, int(np.ceil(repeat_share * n_pairs - 1e-9))) if n_batches > 1 else 0
    chosen = np.sort(rng.choice(n_pairs, size=n_rep, replace=False)) if n_rep else np.zeros(0, np.int64)
    second = (first[chosen] + 1 + rng.integers(0, max(n_batches - 1, 1), size=n_rep)) % n_batches
    pair = np.concatenate([np.arange(n_pairs), chosen]).astype(np.int64)
    batch = np.concatenate([first, second]).astype(np.int64)
    repeat = np.concatenate([np.zeros(n_pairs, np.int64), np.ones(n_rep, np.int64)])
    order = np.lexsort((repeat, pair, batch))
    return pair[order], batch[order], repeat[order]


@dataclass
class HeldOut:
    """The held-out split on the device: normalised images (N, 3, H, W) and labels (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


class Evaluator:
    """The three evaluation designs of one supernet on its held-out split (module docstring).

    Each method evaluates some pairs and adds their rows to ``table``; ``deadline`` (a
    ``time.perf_counter`` value) stops a method before a unit of work it could not finish in
    time (a block of main pairs, one noise minibatch, a group of low-noise pairs); what was added
    is always a valid evaluation set. ``after_unit()`` runs after each unit (incremental writes);
    ``before_unit(design, unit)`` before each (a resumable run seeds the dropout masks per unit
    there: noise minibatch b, low-noise pairs from offset a, main block b).
    """

    def __init__(self, model: SuperNet, held: HeldOut, table: EvalTable, ps: Sequence[float], batch_images: int,
                 max_rows: int, precision=None, after_unit=None, before_unit=None) -> None:
        if batch_images < 1 or len(held) < batch_images:
            raise ValueError(f"batch_images must lie in 1..{len(held)} (the held-out images), got {batch_images}")
        self.model, self.held, self.table, self.ps = model, held, table, [float(p) for p in ps]
        self.batch_images, self.max_rows, self.precision = int(batch_images), int(max_rows), precision
        self.after_unit = after_unit or (lambda: None)
        self.before_unit = before_unit or (lambda design, unit: None)
        self.next_pair = 0

    @property
    def n_batches(self) -> int:
        return len(self.held) // self.batch_images

    def _ids(self, n: int) -> np.ndarray:
        ids = np.arange(self.next_pair, self.next_pair + n, dtype=np.int64)
        self.next_pair += n
        return ids

    def _on(self, start: int, stop: int, archs, splits):
        """One unit of evaluation calls; a CUDA out-of-memory error halves ``max_rows`` (down to one
        pair per call) and retries, so a tight GPU slows the run instead of ending it."""
        while True:
            try:
                return eval_shared(self.model, self.held.x[start:stop], self.held.y[start:stop], archs, splits, self.ps,
                                   self.max_rows, self.precision)
            except torch.cuda.OutOfMemoryError:
                floor = (stop - start) * len(self.ps)
                if self.max_rows <= floor:
                    raise
                self.max_rows = max(floor, self.max_rows // 2)
                torch.cuda.empty_cache()

    def noise(self, archs: np.ndarray, splits: np.ndarray, n_batches: int, n_images: int = 64,
              deadline: float | None = None, first_batch: int = 0) -> int:
        """Every pair on each of ``n_batches`` disjoint minibatches of ``n_images`` (from minibatch
        ``first_batch``: the ones before are done); returns the minibatches done by this call."""
        if n_batches < 1 or n_images < 1 or n_batches * n_images > len(self.held):
            raise ValueError(f"{n_batches} noise minibatches of {n_images} images need more than the {len(self.held)} held-out images")
        ids = self._ids(len(splits))
        done, t_unit = 0, 0.0
        with BatchStatistics(self.model):
            for b in range(first_batch, n_batches):
                if deadline is not None and time.perf_counter() + t_unit > deadline:
                    break
                t0 = time.perf_counter()
                self.before_unit("noise", b)
                loss, acc = self._on(b * n_images, (b + 1) * n_images, archs, splits)
                self.table.add(ids, archs, splits, b, 0, n_images, loss, acc, "noise")
                done += 1
                self.after_unit()
                t_unit = time.perf_counter() - t0
        return done

    def lowvar(self, archs: np.ndarray, splits: np.ndarray, deadline: float | None = None, first_pair: int = 0) -> int:
        """Pairs on the whole held-out split (chunks of ``batch_images``, weighted by size), from
        pair ``first_pair`` on (the ones before are done); returns the pairs done by this call."""
        n = len(self.held)
        chunks = _chunks(n, self.batch_images)
        m = pairs_per_call(self.batch_images, len(self.ps), self.max_rows)
        done, t_unit = 0, 0.0
        with BatchStatistics(self.model):
            for a in range(first_pair, len(splits), m):
                b = min(a + m, len(splits))
                if deadline is not None and time.perf_counter() + t_unit > deadline:
                    break
                t0 = time.perf_counter()
                self.before_unit("lowvar", a)
                loss = np.zeros((b - a, len(self.ps)))
                acc = np.zeros_like(loss)
                for s, e in chunks:
                    lo, ac = self._on(s, e, archs[a:b], splits[a:b])
                    loss += lo * (e - s) / n
                    acc += ac * (e - s) / n
                self.table.add(self._ids(b - a), archs[a:b], splits[a:b], -1, 0, n, loss, acc, "lowvar")
                done += b - a
                self.after_unit()
                t_unit = time.perf_counter() - t0
        return done

    def main_block(self, archs: np.ndarray, splits: np.ndarray, repeat_share: float, rng: np.random.Generator,
                   unit: int = 0) -> None:
        """One block of main pairs (block ``unit``): each on a batch, ``repeat_share`` of them on a
        second one."""
        self.before_unit("main", unit)
        ids = self._ids(len(splits))
        pair, batch, repeat = main_jobs(len(splits), self.n_batches, repeat_share, rng)
        bsz = self.batch_images
        results = []
        with BatchStatistics(self.model):
            for b in np.unique(batch):
                sel = np.flatnonzero(batch == b)
                loss, acc = self._on(b * bsz, (b + 1) * bsz, archs[pair[sel]], splits[pair[sel]])
                results.append((sel, loss, acc))
        loss = np.zeros((len(pair), len(self.ps)))
        acc = np.zeros_like(loss)
        for sel, lo, ac in results:
            loss[sel], acc[sel] = lo, ac
        order = np.lexsort((repeat, pair))
        self.table.add(ids[pair[order]], archs[pair[order]], splits[pair[order]], batch[order], repeat[order], bsz,
                       loss[order], acc[order], "main")
        self.after_unit()


def default_max_rows(device: torch.device) -> int:
    """Rows (images x loss rates x pairs) one evaluation call may stack: about 1 MB of activations
    per row at the widest layer in bf16, so 24,576 rows stay well inside a GPU's memory; 3,072 on
    a CPU."""
    return 24576 if device.type == "cuda" else 3072


def supernet_record(state: dict) -> dict:
    """The training part of an evaluation file's metadata, from a supernet checkpoint."""
    recipe = state["recipe"]
    log = state["log"]
    return {
        "supernet": supernet_id(state["space"], state["dataset"], recipe["split_dropout"], state["epoch"]),
        "dataset": state["dataset"],
        "dataset_source": state["dataset_source"],
        "space": state["space"],
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
    }


def check_eval_settings(pairs: int, lowvar_pairs: int, noise_pairs: int, ps: Sequence[float], batch_images: int,
                        repeat_share: float, near_share: float, band: float, noise_batches: int = 1) -> list[float]:
    """The evaluation settings' ranges (one ``ValueError`` naming the bad value); returns ``ps``."""
    for name, v, lo, hi in (("repeat_share", repeat_share, 0, 1), ("near_share", near_share, 0, 1), ("band", band, 0, 1)):
        if not lo <= v <= hi:
            raise ValueError(f"{name} must lie in [{lo}, {hi}], got {v}")
    from nascsim.limits import MAX_EVAL_PAIRS, MAX_EVAL_ROWS, MAX_IMAGES, MAX_NOISE_BATCHES, check_count

    for name, v in (("pairs", pairs), ("lowvar_pairs", lowvar_pairs), ("noise_pairs", noise_pairs)):
        check_count(name, v, 0, MAX_EVAL_PAIRS)
    if pairs + lowvar_pairs == 0:
        raise ValueError(f"need pairs >= 0, lowvar_pairs >= 0 and noise_pairs >= 0, pairs and lowvar_pairs not both 0 "
                         f"(got {pairs}, {lowvar_pairs}, {noise_pairs})")
    check_count("batch_images", batch_images, 1, MAX_IMAGES)
    check_count("noise_batches", noise_batches, 1, MAX_NOISE_BATCHES)
    from nascsim.train.channel import check_loss_rates

    ps = check_loss_rates(ps)
    rows = (pairs + math.ceil(repeat_share * pairs) + lowvar_pairs + noise_pairs * noise_batches) * len(ps)
    if rows > MAX_EVAL_ROWS:
        raise ValueError(f"the evaluation would hold {rows:,} rows ((pairs x (1 + repeat_share) + lowvar_pairs + "
                         f"noise_pairs x noise_batches) x {len(ps)} loss rates), more than {MAX_EVAL_ROWS:,}")
    return ps


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
    noise_pairs: int = 0,
    noise_batches: int = 20,
    noise_images: int = 64,
    max_rows: int | None = None,
) -> dict:
    """Evaluate sampled pairs of the supernet at ``checkpoint`` (main, lowvar and, with
    ``noise_pairs``, noise designs); write the parquet ``out``. Returns the metadata written."""
    from tqdm import tqdm

    from nascsim.atomic import check_output_target

    check_output_target(out, "--out")
    ps = check_eval_settings(pairs, lowvar_pairs, noise_pairs, ps, batch_images, repeat_share, near_share, band,
                             noise_batches)
    from nascsim.limits import MAX_IMAGES, MAX_ROWS_PER_CALL, check_count

    check_count("noise_images", noise_images, 1, MAX_IMAGES)
    if max_rows is not None:
        check_count("max_rows", max_rows, 1, MAX_ROWS_PER_CALL)
    model, state = load_supernet(checkpoint, device)
    require(state, Path(checkpoint) / CHECKPOINT if Path(checkpoint).is_dir() else checkpoint, "recipe", "log", "epoch", "dataset", "dataset_source", "train_images", "valid_images",
            "stats", "git_commit", "device", "torch")
    dev = next(model.parameters()).device
    from nascsim.train.loop import Precision

    precision = Precision.for_device(dev)
    model = precision.prepare(model)
    sp = model.space
    recipe = state["recipe"]
    from nascsim.train.pretrain import checkpoint_proxy
    from nascsim.train.proxy import proxy_dataset

    ds = proxy_dataset(load_dataset(data, cache_dir), checkpoint_proxy(state))
    if ds.n_classes != state["classes"]:
        raise ValueError(f"{data} has {ds.n_classes} classes; the supernet was trained with {state['classes']}")
    _, valid_idx = holdout_split(len(ds.y_train), state["valid_images"], recipe["seed"])
    held = HeldOut(normalise(to_device(ds.x_train[valid_idx], dev), *state["stats"]),
                   torch.as_tensor(ds.y_train[valid_idx], device=dev))
    bsz = min(batch_images, len(held))
    record = supernet_record(state)
    table = EvalTable(record["supernet"], state["dataset"], seed, ps)
    ev = Evaluator(model, held, table, ps, bsz, max_rows or default_max_rows(dev), precision)

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xE7A1]))
    near_kw = dict(thresholds=thresholds, band=band, head=head, tail=tail, classes=state["classes"])
    archs, splits, near = sample_eval_pairs(sp, pairs, near_share, rng, **near_kw)
    lv_archs, lv_splits, lv_near = sample_eval_pairs(sp, lowvar_pairs, near_share, rng, **near_kw)
    nz_archs, nz_splits, nz_near = sample_eval_pairs(sp, noise_pairs, near_share, rng, **near_kw)

    torch.manual_seed(seed)
    t0 = time.perf_counter()
    block = 250
    for a in tqdm(range(0, pairs, block), desc="pairs", disable=not progress):
        ev.main_block(archs[a:a + block], splits[a:a + block], repeat_share, rng)
    t_main = time.perf_counter() - t0
    n_main = len(table)
    t1 = time.perf_counter()
    if lowvar_pairs:
        ev.lowvar(lv_archs, lv_splits)
    t_lowvar = time.perf_counter() - t1
    t2 = time.perf_counter()
    if noise_pairs:
        ev.noise(nz_archs, nz_splits, noise_batches, noise_images)
    t_noise = time.perf_counter() - t2

    meta = {
        **record,
        "eval": {
            "seed": int(seed),
            "git_commit": _commit(),
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
            "loss_set": ps,
            "pairs": pairs,
            "near_pairs": int(near.sum()),
            "lowvar_pairs": lowvar_pairs,
            "lowvar_near_pairs": int(lv_near.sum()),
            "noise_pairs": noise_pairs,
            "noise_batches": noise_batches if noise_pairs else 0,
            "noise_images": noise_images,
            "batch_images": bsz,
            "n_batches": ev.n_batches,
            "repeat_share": repeat_share,
            "sampling": f"uniform + {near_share:.0%} near T_th in {list(map(float, thresholds))} ms (band {band:.0%}, {head}->{tail}, θ~Dirichlet(0.3))",
            "bn_at_eval": f"batch statistics of the evaluated batch ({bsz} images; noise set: {noise_images})",
            "head_reused_across_p": True,
            "precision": {"amp_bf16": precision.amp, "channels_last": precision.channels_last},
            "pairs_per_call": pairs_per_call(bsz, len(ps), ev.max_rows),
            "main_s": t_main,
            "lowvar_s": t_lowvar,
            "noise_s": t_noise,
            "evals_per_s": n_main / t_main if t_main > 0 and pairs else None,
            "pairs_per_s": pairs / t_main if t_main > 0 and pairs else None,
            "lowvar_evals_per_s": lowvar_pairs * len(ps) / t_lowvar if t_lowvar > 0 and lowvar_pairs else None,
        },
    }
    table.write(out, meta)
    return meta


def _commit() -> str:
    from nascsim.train.pretrain import git_commit

    return git_commit()


def read_metadata(path: str | Path) -> dict:
    """The ``nascsim_supernet`` metadata of an evaluation parquet."""
    import pyarrow.parquet as pq

    from nascsim.safe_load import loads_json, need_dict

    md = pq.read_schema(path).metadata or {}
    if METADATA_KEY.encode() not in md:
        raise ValueError(f"{path} has no {METADATA_KEY!r} metadata")
    where = f"{path}: schema metadata {METADATA_KEY!r}"
    return need_dict(loads_json(md[METADATA_KEY.encode()], where), where)
