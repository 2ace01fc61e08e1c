"""The :class:`Surrogate` object, its versioned JSON file format, and the shipped defaults.

File format (``format: "nascsim-surrogate"``, ``format_version: 2``), one JSON object: id (a safe
name), dataset, space, classes, split_dropout_train, loss_set, card (model card), feature_names,
flop_check (sum of the FLOP tables the features were computed from), targets ({"loss"|"acc"|"lsc":
flat trees of :func:`nascsim.surrogate.export.export_trees`}) and noise (docs/surrogate.md: {"p": grid,
"loss": sds, "acc": sds, "lsc": sd, "n_images": int, "shared": {"loss", "acc", "lsc": shares}}).
Every document is validated completely (:mod:`nascsim.surrogate.validate`) before its arrays are
assembled; version-1 files are refused with a message to refit. Loading needs numpy and numba
only (no scikit-learn).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from nascsim.space import get_space
from nascsim.surrogate.export import assemble_arrays
from nascsim.surrogate.features import feature_tables
from nascsim.surrogate.predict import TARGETS, noise_sd_batch, predict_batch
from nascsim.surrogate.validate import FORMAT, FORMAT_VERSION, SurrogateFileError, validate_document  # noqa: F401 (FORMAT*: re-exported)

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

    def __init__(self, doc: dict, source: str = "surrogate document"):
        validate_document(doc, source)
        self.doc = doc
        self.id: str = doc["id"]
        self.dataset: str = doc["dataset"]
        self.space: str = doc["space"]
        self.classes: int = int(doc["classes"])
        self.split_dropout_train: float = float(doc["split_dropout_train"])
        self.loss_set: tuple[float, ...] = tuple(float(p) for p in doc["loss_set"])
        self.card: dict = doc["card"]
        tables = feature_tables(get_space(self.space), self.classes)
        if not np.isclose(_flop_check(tables), float(doc["flop_check"]), rtol=1e-12, atol=0):
            raise SurrogateFileError(f"{source}: surrogate {self.id!r} was fitted on different FLOP tables than nascsim.hw.flops computes now; refit it with `nascsim surrogate fit`")
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
    """Validate a surrogate document completely (:func:`~nascsim.surrogate.validate.validate_document`),
    check its space against ``space`` (if given) and build the object."""
    s = Surrogate(doc, source)
    if space is not None and s.space != space:
        raise ValueError(f"{source} is a surrogate of the {s.space!r} space, not {space!r}")
    return s


ARCHIVE = "archive"  # sub-folder of the shipped surrogates that replaced defaults move to


def shipped_names() -> list[str]:
    """Names of every shipped surrogate file (the defaults ``<space>-<role>`` and the archived ones,
    by their id), each loadable by that name: ``load_surrogate("fbnet-cifar10-drop50-12ep")``."""
    from nascsim._data import shipped_path

    folder = shipped_path("surrogate")
    return sorted(f.stem for d in (folder, folder / ARCHIVE) if d.is_dir() for f in d.glob("*.json")
                  if not f.name.endswith(".report.json") and not f.is_symlink())


def shipped_file(name: str) -> Path | None:
    """The shipped file of surrogate ``name`` (:func:`shipped_names`), or None."""
    from nascsim._data import shipped_path

    if not name or name.startswith(".") or any(c in name for c in "/\\:") or name.endswith(".report"):
        return None
    folder = shipped_path("surrogate")
    for f in (folder / f"{name}.json", folder / ARCHIVE / f"{name}.json"):
        if f.is_file() and not f.is_symlink():
            return f
    return None


def load_surrogate(path: str | os.PathLike, space: str | None = None) -> Surrogate:
    """Read a surrogate JSON file; ``space`` (if given) must match the surrogate's space. A name
    that is no file but a shipped surrogate's (:func:`shipped_names`) loads that one."""
    from nascsim.atomic import read_regular_bytes
    from nascsim.safe_load import StructureError, loads_json

    path = Path(path)
    if not path.exists():
        path = shipped_file(str(path)) or path
    if not path.exists():
        raise FileNotFoundError(f"surrogate file {str(path)!r} not found (nor a shipped surrogate of that name: "
                                f"{', '.join(shipped_names())})")
    raw = read_regular_bytes(path, "surrogate file")  # a FIFO or device: refused, never waited on
    try:
        doc = loads_json(raw, f"surrogate file {str(path)!r}")
    except StructureError as exc:  # undecodable bytes, over-long integers, deep nesting
        raise SurrogateFileError(str(exc)) from None
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


def how_to_make(space: str, name: str = "dropout") -> str:
    """The commands that make the ``name`` ("dropout" | "no_dropout") surrogate of ``space`` (one line)."""
    dropout = "0.5" if name == "dropout" else "0"
    stem = f"{space}-{name}"
    return (
        f"`nascsim supernet train --space {space} --dropout {dropout} --data DATA --out sn-{stem}`, then "
        f"`nascsim supernet evaluate --checkpoint sn-{stem} --data DATA --out evals-{stem}.parquet`, then "
        f"`nascsim surrogate fit evals-{stem}.parquet --out surrogates --name {stem}`"
    )


def default_surrogates(space: str = "fbnet") -> dict[str, Surrogate]:
    """The shipped surrogates of ``space``: {"dropout": ..., "no_dropout": ...} from ``surrogate/``.

    "dropout" comes from a supernet trained with dropout at the split (used by nasc and
    hwnas-dropout), "no_dropout" from one trained without (used by hwnas). A space without shipped
    surrogates (today: ``extended``) raises ``FileNotFoundError`` whose one line says what to run.
    """
    from nascsim._data import shipped_path

    get_space(space)
    folder = shipped_path("surrogate")
    out = {}
    for name in DEFAULT_NAMES:
        path = folder / f"{space}-{name}.json"
        if not path.is_file():
            flag = "--surrogate" if name == "dropout" else "--surrogate-no-dropout"
            raise FileNotFoundError(
                f"no {name!r} surrogate ships for the {space!r} space; make one: {how_to_make(space, name)}; "
                f"then pass {flag} surrogates/{space}-{name}.json"
            )
        out[name] = load_surrogate(path, space=space)
    return out
