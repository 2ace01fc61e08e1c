"""The :class:`Surrogate` object, its versioned JSON file format, and the shipped defaults.

File format (``format: "nascsim-surrogate"``, ``format_version: 2``), one JSON object: id, dataset,
space, classes, split_dropout_train, loss_set, card (model card), feature_names, flop_check (sum of
the FLOP tables the features were computed from), targets ({"loss"|"acc"|"lsc": flat trees of
:func:`nascsim.surrogate.export.export_trees`}) and noise: {"p": grid, "loss": sds, "acc": sds,
"lsc": sd, "n_images": images per evaluation batch those sds describe, "shared": {"loss": shares,
"acc": shares, "lsc": share}, ...} (the minibatch noise model of :mod:`nascsim.surrogate.noise`;
further keys are the estimator's notes). Version 1 (no ``n_images``/``shared``) is refused: refit.
Loading needs numpy and numba only (no scikit-learn).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from nascsim.space import get_space
from nascsim.surrogate.export import assemble_arrays
from nascsim.surrogate.features import FEATURE_NAMES, feature_tables
from nascsim.surrogate.predict import TARGETS, noise_sd_batch, predict_batch

FORMAT = "nascsim-surrogate"
FORMAT_VERSION = 2
DEFAULT_NAMES = ("dropout", "no_dropout")


def _flop_check(tables: tuple[np.ndarray, ...]) -> float:
    return float(sum(float(np.sum(t)) for t in tables[:5]))


class Surrogate:
    """Expected loss / accuracy of (a, k, p) and l_SC(a, k) (eq. 4) fitted from supernet evaluations.

    Example::

        from nascsim.surrogate import default_surrogates
        s = default_surrogates()["dropout"]
        s.predict("lsc", archs, splits, ps)    # archs (n, 22) int64, splits (n,), ps (n,) (ignored)

    Attributes: ``id`` (the supernet it came from), ``dataset``, ``space``, ``classes``,
    ``split_dropout_train``, ``loss_set`` (the P averaged by the l_SC model), ``card`` (model card)
    and ``arrays`` (flat arrays for :mod:`nascsim.surrogate.predict`). ``doc`` is the JSON document
    the arrays were assembled from (what :func:`save_surrogate` writes).
    """

    def __init__(self, doc: dict):
        self.doc = doc
        self.id: str = doc["id"]
        self.dataset: str = doc["dataset"]
        self.space: str = doc["space"]
        self.classes: int = int(doc["classes"])
        self.split_dropout_train: float = float(doc["split_dropout_train"])
        self.loss_set: tuple[float, ...] = tuple(float(p) for p in doc["loss_set"])
        self.card: dict = doc["card"]
        tables = feature_tables(get_space(self.space), self.classes)
        if "flop_check" in doc and not np.isclose(_flop_check(tables), float(doc["flop_check"]), rtol=1e-12, atol=0):
            raise ValueError(f"surrogate {self.id!r} was fitted on different FLOP tables than nascsim.flops computes now; refit it")
        self.arrays: tuple = assemble_arrays(tables, doc["targets"], doc["noise"])

    def __repr__(self) -> str:
        return f"Surrogate(id={self.id!r}, dataset={self.dataset!r}, space={self.space!r}, split_dropout_train={self.split_dropout_train})"

    def __getstate__(self) -> dict:
        return {"doc": self.doc}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["doc"])

    def _inputs(self, archs, splits, ps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        archs = np.ascontiguousarray(np.atleast_2d(archs), dtype=np.int64)
        n = archs.shape[0]
        splits = np.ascontiguousarray(np.broadcast_to(np.asarray(splits, dtype=np.int64), (n,)))
        ps = np.ascontiguousarray(np.broadcast_to(np.asarray(ps, dtype=np.float64), (n,)))
        sp = get_space(self.space)
        if archs.shape[1] != sp.n_layers:
            raise ValueError(f"archs have {archs.shape[1]} layers; the {sp.name} space needs {sp.n_layers}")
        if n and (archs.min() < 0 or archs.max() >= sp.n_ops):
            bad = int(archs.min()) if archs.min() < 0 else int(archs.max())
            raise ValueError(f"op index {bad} is out of range 0..{sp.n_ops - 1} for the {sp.name} space")
        if n and (splits.min() < 0 or splits.max() > sp.n_layers):
            bad = int(splits.min()) if splits.min() < 0 else int(splits.max())
            raise ValueError(f"split {bad} is out of range 0..{sp.n_layers}")
        return archs, splits, ps

    def predict(self, target: str, archs, splits, ps) -> np.ndarray:
        """Expected ``target`` ("loss", "acc" or "lsc"; ps ignored for "lsc") of n triples."""
        t = _target(target)
        archs, splits, ps = self._inputs(archs, splits, ps)
        out = np.empty(archs.shape[0], dtype=np.float64)
        predict_batch(self.arrays, t, archs, splits, ps, out)
        return out

    def noise_sd(self, target: str, archs, splits, ps) -> np.ndarray:
        """Standard deviation of one minibatch observation of ``target`` (for "lsc": of one
        minibatch's average over ``loss_set``)."""
        t = _target(target)
        archs, splits, ps = self._inputs(archs, splits, ps)
        out = np.empty(archs.shape[0], dtype=np.float64)
        noise_sd_batch(self.arrays, t, archs, splits, ps, out)
        return out


def _target(target: str) -> int:
    try:
        return TARGETS[target]
    except KeyError:
        raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}") from None


def surrogate_from_doc(doc: dict, source: str = "surrogate document", space: str | None = None) -> Surrogate:
    """Validate a surrogate document (format, version, space, features) and build the object."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{source} is not a nascsim surrogate (format {doc.get('format') if isinstance(doc, dict) else None!r})")
    version = doc.get("format_version")
    if version == 1:
        raise ValueError(f"{source} has surrogate format version 1 (no minibatch-noise components); "
                         "refit it with `nascsim surrogate fit EVALS.parquet --out DIR`")
    if version != FORMAT_VERSION:
        raise ValueError(f"{source} has surrogate format version {version!r}; this nascsim reads version {FORMAT_VERSION}")
    get_space(str(doc.get("space")))
    if space is not None and doc["space"] != space:
        raise ValueError(f"{source} is a surrogate of the {doc['space']!r} space, not {space!r}")
    if tuple(doc.get("feature_names", ())) != FEATURE_NAMES:
        raise ValueError(f"{source} uses features {doc.get('feature_names')!r}, not the ones this nascsim computes")
    for name in TARGETS:
        if name not in doc.get("targets", {}):
            raise ValueError(f"{source} lacks the {name!r} model")
    check_noise(doc.get("noise"), source)
    return Surrogate(doc)


def check_noise(noise, source: str) -> None:
    """Validate the "noise" section of a version-2 document (ValueError naming the bad value)."""
    import math

    def finite(v, what: str, lo: float, hi: float = math.inf) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
            raise ValueError(f"{source}: noise {what} {v!r} is not a finite number in [{lo:g}, {hi:g}]")

    if not isinstance(noise, dict):
        raise ValueError(f"{source}: the noise section is missing or not an object")
    grid = noise.get("p")
    if not isinstance(grid, list) or not grid:
        raise ValueError(f"{source}: noise p grid {grid!r} is not a non-empty list")
    for p in grid:
        finite(p, "p", 0.0, 1.0)
    if any(b <= a for a, b in zip(grid, grid[1:])) or grid[-1] >= 1.0:
        raise ValueError(f"{source}: noise p grid {grid!r} is not ascending in [0, 1)")
    n = noise.get("n_images")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{source}: noise n_images {n!r} is not a positive integer")
    shared = noise.get("shared")
    if not isinstance(shared, dict):
        raise ValueError(f"{source}: noise section lacks the 'shared' shares")
    for part, lo, hi in ((noise, 0.0, math.inf), (shared, 0.0, 1.0)):
        what = "sd" if part is noise else "shared share"
        for target in ("loss", "acc"):
            vals = part.get(target)
            if not isinstance(vals, list) or len(vals) != len(grid):
                raise ValueError(f"{source}: noise {what} of {target!r} is not a list of {len(grid)} numbers")
            for v in vals:
                finite(v, f"{what} of {target!r}", lo, hi)
        finite(part.get("lsc"), f"{what} of 'lsc'", lo, hi)


def load_surrogate(path: str | os.PathLike, space: str | None = None) -> Surrogate:
    """Read a surrogate JSON file; ``space`` (if given) must match the surrogate's space."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"surrogate file {str(path)!r} not found")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"surrogate file {str(path)!r} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return surrogate_from_doc(doc, f"surrogate file {str(path)!r}", space)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:mod:`nascsim.atomic`)."""
    from nascsim.atomic import atomic_write_bytes

    atomic_write_bytes(data, path)


def save_surrogate(s: Surrogate, path: str | os.PathLike) -> Path:
    """Write ``s`` as JSON (atomically); returns the path."""
    text = json.dumps(s.doc, separators=(",", ":"), sort_keys=False)
    write_atomic(path, text.encode())
    return Path(path)


def default_surrogates(space: str = "fbnet") -> dict[str, Surrogate]:
    """The shipped surrogates of ``space``: {"dropout": ..., "no_dropout": ...} from ``surrogate/``.

    "dropout" comes from a supernet trained with dropout at the split (used by nasc and
    hwnas-dropout), "no_dropout" from one trained without (used by hwnas).
    """
    from nascsim._data import shipped_path

    get_space(space)
    folder = shipped_path("surrogate")
    out = {}
    for name in DEFAULT_NAMES:
        path = folder / f"{space}-{name}.json"
        if not path.is_file():
            raise FileNotFoundError(f"no shipped {name!r} surrogate for the {space!r} space ({path} missing)")
        out[name] = load_surrogate(path, space=space)
    return out
