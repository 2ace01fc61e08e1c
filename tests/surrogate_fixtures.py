"""Synthetic supernet evaluations with a known structure, and a small surrogate fitted on them.

For tests only (nascsim ships no made-up accuracy model). Other test modules import it as
``from surrogate_fixtures import make_stand_in_surrogate`` (``tests/conftest.py`` puts tests/ on
``sys.path``).

The synthetic expected loss of (a, k, p) (see :func:`true_loss`):

    loss = 2.0 - 0.02 * sum_l quality[a_l] + p * sensitivity * (1 - k / 22)

with ``quality`` rising with kernel size and expansion (skip lowest, bottlenecks below their
conv counterparts), ``sensitivity`` 0.6 for a supernet trained without split dropout and 0.2 with
it: dropout hurts more at early splits, and less after dropout training. Accuracy is a decreasing
linear function of the loss. One observation adds a per-batch shift and per-row noise.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from nascsim.config import DEFAULT_LOSS_SET
from nascsim.space import get_space
from nascsim.surrogate.fit import FitOptions as _FitOptions

OP_COLUMNS = [f"op{i:02d}" for i in range(22)]


def op_quality(space: str) -> np.ndarray:
    """Quality score per op of ``space`` (higher = lower loss)."""
    sp = get_space(space)
    q = []
    for op in sp.ops:
        if op.kind == "skip":
            q.append(0.0)
        elif op.kind == "bottleneck":
            q.append(0.2 + 0.1 * (op.kernel == 5) + float(op.expansion))
        else:
            q.append(0.5 + 0.2 * (op.kernel == 5) + 0.15 * float(op.expansion) - 0.1 * (op.groups == 2))
    return np.array(q)


def true_loss(space: str, archs: np.ndarray, splits: np.ndarray, ps: np.ndarray, split_dropout_train: float = 0.5) -> np.ndarray:
    """The synthetic expected loss of each (arch, split, p)."""
    q = op_quality(space)[np.asarray(archs)].sum(axis=1)
    sens = 0.2 if split_dropout_train > 0 else 0.6
    return 2.0 - 0.02 * q + np.asarray(ps) * sens * (1.0 - np.asarray(splits) / 22.0)


def true_acc(loss: np.ndarray) -> np.ndarray:
    """The synthetic expected accuracy of an expected loss."""
    return np.clip(0.9 - 0.5 * (loss - 1.5), 0.0, 1.0)


def synthetic_evaluations(
    space: str = "fbnet",
    n_pairs: int = 120,
    seed: int = 0,
    *,
    split_dropout_train: float = 0.5,
    repeat_frac: float = 0.3,
    lowvar_pairs: int = 0,
    noise_sd: float = 0.01,
    loss_set: tuple[float, ...] = DEFAULT_LOSS_SET,
) -> tuple[pl.DataFrame, dict]:
    """(frame, supernet record) of synthetic evaluations following the evaluation-file schema.

    Every pair gets all p of ``loss_set`` on one batch; a ``repeat_frac`` share of pairs again on
    another batch (``repeat`` = 1); the first ``lowvar_pairs`` pairs also get noise-free ``lowvar``
    rows.
    """
    rng = np.random.default_rng(seed)
    n_ops = get_space(space).n_ops
    archs = rng.integers(0, n_ops, size=(n_pairs, 22))
    splits = rng.integers(0, 23, size=n_pairs)
    batch_shift = rng.normal(0, noise_sd / 2, size=5)
    recs = []
    for pair in range(n_pairs):
        batches = [int(rng.integers(0, 5))]
        if rng.random() < repeat_frac:
            batches.append((batches[0] + 1 + int(rng.integers(0, 4))) % 5)
        for rep, b in enumerate(batches):
            for p in loss_set:
                mu = true_loss(space, archs[pair : pair + 1], splits[pair : pair + 1], np.array([p]), split_dropout_train)[0]
                loss = mu + batch_shift[b] + rng.normal(0, noise_sd)
                acc = true_acc(np.array([mu]))[0] - 0.5 * batch_shift[b] + rng.normal(0, noise_sd / 2)
                recs.append((pair, archs[pair], int(splits[pair]), float(p), b, rep, float(loss), float(np.clip(acc, 0, 1)), False))
        if pair < lowvar_pairs:
            for p in loss_set:
                mu = true_loss(space, archs[pair : pair + 1], splits[pair : pair + 1], np.array([p]), split_dropout_train)[0]
                recs.append((pair, archs[pair], int(splits[pair]), float(p), -1, 0, float(mu), float(true_acc(np.array([mu]))[0]), True))
    ops = np.array([r[1] for r in recs], dtype=np.int64)
    frame = pl.DataFrame(
        {
            "supernet": ["synthetic"] * len(recs),
            "pair": [r[0] for r in recs],
            "arch": [",".join(map(str, r[1])) for r in recs],
            **{c: ops[:, i] for i, c in enumerate(OP_COLUMNS)},
            "split": [r[2] for r in recs],
            "p": [r[3] for r in recs],
            "batch": [r[4] for r in recs],
            "repeat": [r[5] for r in recs],
            "n_images": [5000 if r[8] else 1000 for r in recs],
            "loss": [r[6] for r in recs],
            "acc": [r[7] for r in recs],
            "lowvar": [r[8] for r in recs],
        }
    )
    meta = {
        "supernet": "synthetic",
        "dataset": "synthetic",
        "space": space,
        "classes": 10,
        "split_dropout_train": split_dropout_train,
        "epochs_run": 0,
        "seed": seed,
    }
    return frame, meta


def write_evaluations(frame: pl.DataFrame, meta: dict | None, path: str | Path) -> Path:
    """Write ``frame`` as parquet with ``meta`` under the ``nascsim_supernet`` schema key."""
    import pyarrow.parquet as pq

    table = frame.to_arrow()
    if meta is not None:
        table = table.replace_schema_metadata({"nascsim_supernet": json.dumps(meta)})
    pq.write_table(table, path)
    return Path(path)


def quick_options(**changes):
    """Fit options small enough for tests (one grid point, few iterations, 2 folds). The class is
    the one imported with this module, so tests may patch ``nascsim.surrogate.fit.FitOptions``
    with this function."""
    base = dict(grid=((8, 10),), max_iter=40, learning_rate=0.2, folds=2)
    base.update(changes)
    return _FitOptions(**base)


@dataclass
class TargetFit:
    """One target fitted on synthetic evaluations (:func:`fit_one_target`)."""

    tables: object     # feature tables of the space
    columns: list      # feature columns the trees read
    est: object        # the scikit-learn estimator
    info: dict         # fit_target's info
    export: dict       # its trees, exported
    arrays: tuple      # numba arrays with these trees for every target


def fit_one_target(space: str, target: str, *, n_pairs: int, seed: int, grid=((16, 5),), max_iter: int = 30,
                   monotone: int = 0, frame_filter=None) -> TargetFit:
    """Fit ``target`` ("loss", "acc" or "lsc") of :func:`synthetic_evaluations` with one grid
    point and 2 folds, export its trees and assemble them (for all three targets) into the arrays
    the numba predictors read. ``frame_filter`` edits the evaluation frame first."""
    from nascsim.surrogate.evals import load_evaluations
    from nascsim.surrogate.export import assemble_arrays, export_trees
    from nascsim.surrogate.features import feature_columns, feature_tables
    from nascsim.surrogate.fit import fit_target, target_data

    frame, meta = synthetic_evaluations(space, n_pairs=n_pairs, seed=seed)
    if frame_filter is not None:
        frame = frame_filter(frame)
    ev = load_evaluations(frame, meta=meta, id=f"{space}-{target}")
    tables = feature_tables(ev.space, ev.classes)
    columns = feature_columns(("split_op", "flops", "depth"))
    X, y, pairs = target_data(ev, (0.0, 0.1, 0.2, 0.3, 0.4, 0.5), tables)[target]
    est, info = fit_target(X, y, pairs, columns, _FitOptions(grid=grid, max_iter=max_iter, folds=2), monotone=monotone)
    export = export_trees(est, columns)
    noise = {"p": [0.0], "loss": [0.01], "acc": [0.01], "lsc": 0.01, "n_images": 1000,
             "shared": {"loss": [0.0], "acc": [0.0], "lsc": 0.0}}
    arrays = assemble_arrays(tables, {"loss": export, "acc": export, "lsc": export}, noise)
    return TargetFit(tables, columns, est, info, export, arrays)


@functools.lru_cache(maxsize=None)
def make_stand_in_surrogate(space: str = "fbnet", seed: int = 0, split_dropout_train: float = 0.5):
    """A small :class:`nascsim.surrogate.Surrogate` fitted on :func:`synthetic_evaluations`.

    Its loss falls with op quality and rises with p, more at early splits and more without split
    dropout in training (``split_dropout_train=0``). Cached per arguments (treat it as read-only).
    """
    from nascsim.surrogate import fit_surrogate

    frame, meta = synthetic_evaluations(space, n_pairs=300, seed=seed, split_dropout_train=split_dropout_train)
    name = "dropout" if split_dropout_train > 0 else "no-dropout"
    return fit_surrogate(frame, meta=meta, id=f"synthetic-{space}-{name}-seed{seed}", options=quick_options(seed=seed))


def ship_only(monkeypatch, tmp_path: Path, spaces: tuple[str, ...] = ("fbnet",)) -> Path:
    """Make the shipped-surrogate folder hold only the surrogates of ``spaces`` (copies of the
    real ones), so a test can state what happens to a space that ships none."""
    import shutil

    import nascsim._data as data

    real = data.shipped_path("surrogate")
    folder = tmp_path / "shipped-surrogate"
    folder.mkdir(parents=True)
    for space in spaces:
        for path in real.glob(f"{space}-*.json"):
            shutil.copy(path, folder / path.name)
    original = data.shipped_path
    monkeypatch.setattr(data, "shipped_path", lambda name: folder if name == "surrogate" else original(name))
    return folder
