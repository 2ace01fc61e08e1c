"""Image data for the torch stage: CIFAR-10/100 and image folders, decoded once and cached.

Layouts read (``load_dataset(path)``; ``path`` is the folder holding them, or the layout folder
itself, or a single ``.tar.gz``):

- CIFAR-10 python pickles: ``cifar-10-batches-py/`` with ``data_batch_1..5``, ``test_batch`` and
  ``batches.meta``;
- CIFAR-100 python pickles: ``cifar-100-python/`` with ``train``, ``test`` and ``meta`` (fine labels);
- image folders: ``train/<class>/*.jpg|png`` and ``test/<class>/*.jpg|png``, as directories or
  inside ``.tar.gz`` archives read directly (e.g. ``cifar10-train.tar.gz`` + ``cifar10-test.tar.gz``).
  Classes are the sorted folder names; all images must be 32x32 (decoded to RGB).

CIFAR pickles are read with a restricted unpickler (:class:`SafeUnpickler`) that admits only what
those files hold -- dicts, lists, numbers, strings and bytes, and numpy arrays of plain numbers -- and
refuses any other class or function and any object dtype (:mod:`nascsim.safe_pickle`), so a crafted
file can neither run code nor make numpy read object pointers from its bytes. Archive members are read as bytes
and decoded by PIL; no path is ever built from a member name.

The decoded images are cached once as uint8 arrays (``.npz``, written atomically) next to the data,
or in ``cache_dir``; the cache stores a fingerprint of the source files (names, sizes, mtimes) and
is rebuilt when they change. A missing or malformed dataset raises ``FileNotFoundError`` /
``ValueError`` naming the path and what was expected. Nothing is ever downloaded.

On the training device the whole set is held as one uint8 tensor; normalisation and augmentation
(random crop with zero padding 4, horizontal flip) run batched on the device
(:func:`augment`), without a per-sample Python loader.
"""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from nascsim.atomic import NotARegularFile, check_tree, kind_of, open_regular, read_regular_bytes
from nascsim.safe_pickle import PlainUnpickler, check_depth
from nascsim.space import INPUT_RESOLUTION

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CACHE_VERSION = 1
EXPECTED = (
    "cifar-10-batches-py/, cifar-100-python/, train/<class>/*.jpg|png plus test/<class>/*.jpg|png, "
    "or .tar.gz archives holding train/ and test/ image folders"
)


@dataclass
class Dataset:
    """Decoded images: ``x_*`` uint8 (N, 32, 32, 3), ``y_*`` int64 (N,), class names in label order."""

    name: str
    source: str
    classes: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        return len(self.classes)


# ------------------------------------------------------------------------------------------------
# layout detection
# ------------------------------------------------------------------------------------------------

def _is_archive(p: Path) -> bool:
    return p.is_file() and (p.name.endswith(".tar.gz") or p.name.endswith(".tgz"))


def detect_layout(path: str | Path) -> tuple[str, Path, list[Path]]:
    """(layout, root, files): layout in {"cifar10", "cifar100", "folder", "tar"}; ``files`` are the
    source files that the cache fingerprint covers."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"dataset path {p} does not exist; expected {EXPECTED}")
    if _is_archive(p):
        return "tar", p, [p]
    if not p.is_dir():
        raise ValueError(f"dataset path {p} is neither a folder nor a .tar.gz; expected {EXPECTED}")
    for name, layout, files in (
        ("cifar-10-batches-py", "cifar10", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]),
        ("cifar-100-python", "cifar100", ["train", "test", "meta"]),
    ):
        root = p if p.name == name else p / name
        if root.is_dir():
            check_tree(root, "dataset folder")
            missing = [f for f in files if not (root / f).is_file()]
            if missing:
                raise FileNotFoundError(f"{root} lacks {', '.join(missing)}; expected the python-pickle layout of {name}")
            return layout, root, [root / f for f in files]
    if (p / "train").is_dir() or (p / "test").is_dir():
        for split in ("train", "test"):
            if not (p / split).is_dir():
                raise FileNotFoundError(f"{p / split} is missing; an image folder needs train/<class>/ and test/<class>/")
            if (p / split).is_symlink():
                raise NotARegularFile(f"image folder {str(p)!r}: {split}/ is a symbolic link; nascsim follows no links inside it")
            check_tree(p / split, "image folder")
        files = sorted(
            f for f in p.rglob("*")
            if f.suffix.lower() in IMAGE_SUFFIXES and f.parent.parent.parent == p and f.parent.parent.name in ("train", "test")
        )
        return "folder", p, files
    archives = sorted(f for f in p.iterdir() if _is_archive(f) or (f.is_symlink() and f.name.endswith((".tar.gz", ".tgz"))))
    for f in archives:
        mode = f.lstat().st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(f"dataset folder {str(p)!r}: archive {f.name!r} is a {kind_of(mode)}; nascsim follows no links inside it")
    if archives:
        return "tar", p, archives
    raise FileNotFoundError(f"no dataset found in {p}; expected {EXPECTED}")


# ------------------------------------------------------------------------------------------------
# readers
# ------------------------------------------------------------------------------------------------

class SafeUnpickler(PlainUnpickler):
    """Unpickler for data files (:class:`nascsim.safe_pickle.PlainUnpickler`): builtin containers
    and scalars, plus numpy arrays and scalars of plain numbers. Any other global (a class or
    function a crafted pickle would call) or an object dtype raises ``pickle.UnpicklingError``
    naming it."""


def safe_unpickle(fh, encoding: str = "bytes"):
    """``pickle.load`` through :class:`SafeUnpickler`; containers nested deeper than
    :data:`nascsim.safe_pickle.MAX_DEPTH` are refused too."""
    obj = SafeUnpickler(fh, encoding=encoding).load()
    check_depth(obj)
    return obj


def _unpickle(path: Path) -> dict:
    fh = open_regular(path, "CIFAR pickle", follow=False)  # a link, FIFO or device: refused
    try:
        with fh:
            d = safe_unpickle(fh)
    except Exception as exc:  # noqa: BLE001 -- any unpickling failure means a malformed file
        raise ValueError(f"{path} is not a readable CIFAR pickle ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path} holds a {type(d).__name__}; expected a dict with b'data' and labels")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}


def _pickle_arrays(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(path)
    if "data" not in d or label_key not in d:
        raise ValueError(f"{path} lacks 'data' or {label_key!r}; expected a CIFAR python pickle")
    data = np.asarray(d["data"])
    try:
        labels = np.asarray(d[label_key], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{path}: {label_key!r} holds {type(d[label_key]).__name__} values that are not integer labels") from None
    if labels.ndim != 1:
        raise ValueError(f"{path}: {label_key!r} has shape {labels.shape}; expected one label per image")
    side = INPUT_RESOLUTION
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * side * side or data.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{path}: 'data' has shape {data.shape} ({data.dtype}) for {labels.shape[0]} labels; "
            f"expected uint8 (N, {3 * side * side})"
        )
    x = data.reshape(-1, 3, side, side).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), labels


def _names(meta: dict, key: str, path: Path) -> list[str]:
    if key not in meta or not isinstance(meta[key], (list, tuple)) or not all(isinstance(n, (bytes, str)) for n in meta[key]):
        raise ValueError(f"{path} lacks {key!r} as a list of names; expected the CIFAR meta pickle")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in meta[key]]


def _read_cifar10(root: Path) -> Dataset:
    parts = [_pickle_arrays(root / f"data_batch_{i}", "labels") for i in range(1, 6)]
    x_test, y_test = _pickle_arrays(root / "test_batch", "labels")
    classes = _names(_unpickle(root / "batches.meta"), "label_names", root / "batches.meta")
    x_train = np.concatenate([x for x, _ in parts])
    y_train = np.concatenate([y for _, y in parts])
    return _checked(Dataset("cifar10", str(root), classes, x_train, y_train, x_test, y_test))


def _read_cifar100(root: Path) -> Dataset:
    x_train, y_train = _pickle_arrays(root / "train", "fine_labels")
    x_test, y_test = _pickle_arrays(root / "test", "fine_labels")
    classes = _names(_unpickle(root / "meta"), "fine_label_names", root / "meta")
    return _checked(Dataset("cifar100", str(root), classes, x_train, y_train, x_test, y_test))


def _decode(blob: bytes, where: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(blob)) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as exc:  # noqa: BLE001 -- PIL raises many types for broken files
        raise ValueError(f"cannot decode image {where} ({exc.__class__.__name__})") from None
    if arr.shape != (INPUT_RESOLUTION, INPUT_RESOLUTION, 3):
        raise ValueError(f"image {where} is {arr.shape[1]}x{arr.shape[0]}; expected {INPUT_RESOLUTION}x{INPUT_RESOLUTION}")
    return arr


PARALLEL_FROM = 20000  # images; fewer decode in the calling process


def _decode_chunk(blobs: list[bytes], wheres: list[str]) -> np.ndarray:
    return np.stack([_decode(b, w) for b, w in zip(blobs, wheres)])


def decode_images(blobs: list[bytes], wheres: list[str], workers: int | None = None) -> np.ndarray:
    """uint8 (N, 32, 32, 3) of encoded images, in order. From :data:`PARALLEL_FROM` images on,
    chunks decode in spawned processes (up to 8, one per core): the GPU campaign decodes CIFAR-10's
    60,000 JPEGs inside its time budget. A worker that dies ends the call at once (``RuntimeError``,
    one line)."""
    import os

    n = len(blobs)
    workers = workers or min(8, os.cpu_count() or 1)
    if n < PARALLEL_FROM or workers < 2:
        return _decode_chunk(blobs, wheres)
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from nascsim._spawn import broken_pool_message, context

    bounds = np.linspace(0, n, 4 * workers + 1).astype(int)
    parts = [(blobs[a:b], wheres[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    from nascsim._children import watch_parent

    # spawned workers that do not re-run the calling script (nascsim._spawn): no __main__ guard
    # needed; each ends with this process (watch_parent)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context(), initializer=watch_parent,
                             initargs=(os.getpid(),)) as pool:
        try:
            return np.concatenate(list(pool.map(_decode_chunk, *zip(*parts))))
        except BrokenProcessPool:
            raise RuntimeError(broken_pool_message("image-decoding", False)) from None


def _split_member(name: str) -> tuple[str, str] | None:
    """('train'|'test', class) for a member path ``[prefix/]<split>/<class>/<file>.<img>``."""
    parts = name.split("/")
    if len(parts) < 3 or Path(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES or parts[-3] not in ("train", "test"):
        return None
    return parts[-3], parts[-2]


def _collect_folder(items: list[tuple[str, str, str, bytes]], source: Path) -> Dataset:
    """items: (split, class, where, encoded bytes), in file order."""
    by_split: dict[str, list[tuple[str, str, bytes]]] = {"train": [], "test": []}
    for split, cls, where, blob in items:
        by_split[split].append((cls, where, blob))
    for split in ("train", "test"):
        if not by_split[split]:
            raise FileNotFoundError(f"no {split}/<class>/*.jpg|png images found in {source}; expected {EXPECTED}")
    classes = sorted({c for c, _, _ in by_split["train"]})
    unknown = sorted({c for c, _, _ in by_split["test"]} - set(classes))
    if unknown:
        raise ValueError(f"{source}: test classes {', '.join(unknown)} have no training images")
    index = {c: i for i, c in enumerate(classes)}
    arrays = {}
    for split, rows in by_split.items():
        rows.sort(key=lambda r: (index[r[0]], r[1]))
        x = decode_images([blob for _, _, blob in rows], [where for _, where, _ in rows])
        y = np.array([index[c] for c, _, _ in rows], dtype=np.int64)
        arrays[split] = (x, y)
    name = source.name.replace(".tar.gz", "").replace(".tgz", "")
    return _checked(Dataset(f"folder:{name}", str(source), classes, *arrays["train"], *arrays["test"]))


def _read_folder(root: Path, files: list[Path]) -> Dataset:
    items = [(f.parent.parent.name, f.parent.name, str(f), read_regular_bytes(f, "image", follow=False)) for f in files]
    return _collect_folder(items, root)


def _read_tars(root: Path, archives: list[Path]) -> Dataset:
    items = []
    for arc in archives:
        try:
            with tarfile.open(arc, "r:gz") as tar:
                for m in tar:
                    if not m.isfile():
                        continue
                    key = _split_member(m.name)
                    if key is None:
                        continue
                    fh = tar.extractfile(m)
                    items.append((key[0], key[1], f"{arc}:{m.name}", fh.read()))
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ValueError(f"{arc} is not a readable .tar.gz ({exc})") from None
    return _collect_folder(items, root)


def _checked(ds: Dataset) -> Dataset:
    """``ds`` when its arrays are what training expects -- uint8 images (N, 32, 32, 3), one int64
    label per image in 0..classes-1, class names as strings -- else ``ValueError`` naming the
    problem. Runs on every decode, cached ones included."""
    side = INPUT_RESOLUTION
    if not ds.classes or not all(isinstance(c, str) for c in ds.classes):
        raise ValueError(f"{ds.source}: no class names")
    for split in ("train", "test"):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (side, side, 3):
            raise ValueError(f"{ds.source}: {split} images have shape {x.shape} ({x.dtype}); expected uint8 (N, {side}, {side}, 3)")
        if y.dtype.kind not in "iu" or y.ndim != 1 or len(y) != len(x):
            raise ValueError(f"{ds.source}: {split} labels have shape {y.shape} ({y.dtype}) for {len(x)} images; expected one integer each")
        if y.size == 0:
            raise ValueError(f"{ds.source}: the {split} split is empty")
        if y.min() < 0 or y.max() >= len(ds.classes):
            raise ValueError(f"{ds.source}: {split} labels span {y.min()}..{y.max()} for {len(ds.classes)} classes")
    return ds


# ------------------------------------------------------------------------------------------------
# cache
# ------------------------------------------------------------------------------------------------

def _fingerprint(layout: str, files: list[Path]) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}:{layout}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def cache_file(path: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Where the decoded arrays of ``path`` are cached: ``<cache_dir>/<name>-<hash>.npz``, or next
    to the data (``<folder>/.nascsim-<name>.npz``) when no cache folder is given."""
    p = Path(path).resolve()
    name = p.name.replace(".tar.gz", "").replace(".tgz", "") or "data"
    if cache_dir is not None:
        tag = hashlib.sha256(str(p).encode()).hexdigest()[:10]
        return Path(cache_dir) / f"{name}-{tag}.npz"
    folder = p.parent if p.is_file() else p
    return folder / f".nascsim-{name}.npz"


def _save_npz(target: Path, ds: Dataset, fingerprint: str) -> None:
    from nascsim.atomic import atomic_path

    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh, x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test, y_test=ds.y_test,
                classes=np.array(ds.classes), meta=np.array([ds.name, ds.source, fingerprint]),
            )


def _load_npz(target: Path, fingerprint: str) -> Dataset | None:
    """The cached decode at ``target`` when its fingerprint matches (None when it does not, or the
    cache is unreadable), checked by :func:`_checked` like a fresh decode: ``ValueError`` when
    its arrays are not what training expects. A cache that is a link, FIFO or device is refused."""
    fh = open_regular(target, "decoded-image cache", follow=False)
    try:
        with fh, np.load(fh, allow_pickle=False) as z:
            meta = z["meta"]
            if meta.shape != (3,) or meta.dtype.kind != "U":
                return None
            name, source, fp = (str(s) for s in meta)
            if fp != fingerprint:
                return None
            classes = z["classes"]
            if classes.ndim != 1 or classes.dtype.kind != "U":
                return None
            ds = Dataset(name, source, [str(c) for c in classes], z["x_train"], z["y_train"], z["x_test"], z["y_test"])
    except (OSError, KeyError, ValueError, EOFError):
        return None
    try:
        return _checked(ds)
    except ValueError as exc:
        raise ValueError(f"the decoded-image cache {target} does not fit its data ({exc}); delete it to decode again") from None


def load_dataset(path: str | Path, cache_dir: str | Path | None = None, use_cache: bool = True,
                 check: Callable[[Dataset], object] | None = None) -> Dataset:
    """Decode the dataset at ``path`` (see module docstring), through the uint8 cache. ``check``
    (raising ``ValueError``) runs on the decoded set before the cache is written, so a run with
    settings the data cannot serve writes nothing."""
    layout, root, files = detect_layout(path)
    fp = _fingerprint(layout, files)
    target = cache_file(path, cache_dir)
    if use_cache and (target.exists() or target.is_symlink()):
        ds = _load_npz(target, fp)
        if ds is not None:
            if check is not None:
                check(ds)
            return ds
    if layout == "cifar10":
        ds = _read_cifar10(root)
    elif layout == "cifar100":
        ds = _read_cifar100(root)
    elif layout == "folder":
        ds = _read_folder(root, files)
    else:
        ds = _read_tars(root, files)
    if check is not None:
        check(ds)
    if use_cache:
        try:
            _save_npz(target, ds, fp)
        except OSError as exc:
            raise OSError(f"cannot write the decoded-image cache {target} ({exc}); pass a writable cache folder") from None
    return ds


# ------------------------------------------------------------------------------------------------
# held-out split and on-device batches
# ------------------------------------------------------------------------------------------------

def holdout_split(n_train: int, valid_images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices) of the training set: ``valid_images`` images drawn without
    replacement by ``seed`` (default 5,000 of CIFAR's 50,000, leaving 45,000 for training). The
    held-out images serve the search-side evaluations; the test set only the final confirmation.
    Both index arrays are in random order (files are stored class by class): any prefix, and any
    contiguous held-out batch, is a class-balanced random sample."""
    if not 0 < valid_images < n_train:
        raise ValueError(f"valid_images must lie in 1..{n_train - 1} for {n_train} training images, got {valid_images}")
    perm = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED])).permutation(n_train)
    return perm[valid_images:], perm[:valid_images]


def channel_stats(x: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation (in [0, 1] units) of uint8 images (N, H, W, 3)."""
    f = x.reshape(-1, 3).astype(np.float64) / 255.0
    return f.mean(axis=0).tolist(), f.std(axis=0).tolist()


def to_device(x: np.ndarray, device) -> "torch.Tensor":  # noqa: F821
    """uint8 (N, H, W, 3) numpy images -> uint8 (N, 3, H, W) tensor on ``device``."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)


def normalise(xb: "torch.Tensor", mean: list[float], std: list[float]) -> "torch.Tensor":  # noqa: F821
    """uint8 (B, 3, H, W) -> float32, ``(x/255 - mean) / std`` per channel."""
    import torch

    m = torch.tensor(mean, device=xb.device, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, device=xb.device, dtype=torch.float32).view(1, 3, 1, 1)
    return (xb.float() / 255.0 - m) / s


def augment(x: "torch.Tensor", generator: "torch.Generator", pad: int = 4) -> "torch.Tensor":  # noqa: F821
    """Random crop with zero padding ``pad`` and horizontal flip, batched on ``x``'s device.

    x: float (B, C, H, W), normalised (zero padding = the channel mean).
    """
    import torch
    import torch.nn.functional as F

    b, c, h, w = x.shape
    dev = x.device
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=dev)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=dev)
    rows = (oy[:, None] + torch.arange(h, device=dev))[:, :, None]
    cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, :]
    bidx = torch.arange(b, device=dev)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[bidx, rows, cols].permute(0, 3, 1, 2)
    flip = torch.rand(b, generator=generator, device=dev) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out).contiguous()
