"""Tiny datasets for the torch-stage tests, written in the on-disk layouts the loaders read."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np


def tiny_images(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (n, 32, 32, 3), labels) with a class-dependent colour so a net can learn a little."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.integers(0, 60, size=(n, 32, 32, 3))
    x[..., 0] += (y * 190 // max(classes - 1, 1))[:, None, None]
    return x.clip(0, 255).astype(np.uint8), y.astype(np.int64)


def _dump(obj, path: Path) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


def write_cifar10(root: Path, per_batch: int = 8, test: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``root/cifar-10-batches-py`` with 5 training batches; returns the training images/labels."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    xs, ys = [], []
    for i in range(1, 6):
        x, y = tiny_images(per_batch, 10, i)
        xs.append(x)
        ys.append(y)
        _dump({b"data": x.transpose(0, 3, 1, 2).reshape(per_batch, -1), b"labels": y.tolist()}, d / f"data_batch_{i}")
    x, y = tiny_images(test, 10, 99)
    _dump({b"data": x.transpose(0, 3, 1, 2).reshape(test, -1), b"labels": y.tolist()}, d / "test_batch")
    _dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, d / "batches.meta")
    return np.concatenate(xs), np.concatenate(ys)


def write_cifar100(root: Path, train: int = 20, test: int = 10) -> tuple[np.ndarray, np.ndarray]:
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    x, y = tiny_images(train, 100, 1)
    _dump({b"data": x.transpose(0, 3, 1, 2).reshape(train, -1), b"fine_labels": y.tolist(), b"coarse_labels": (y // 5).tolist()}, d / "train")
    xt, yt = tiny_images(test, 100, 2)
    _dump({b"data": xt.transpose(0, 3, 1, 2).reshape(test, -1), b"fine_labels": yt.tolist()}, d / "test")
    _dump({b"fine_label_names": [f"f{i:02d}".encode() for i in range(100)]}, d / "meta")
    return x, y


def _encode(img: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return buf.getvalue()


def write_image_folder(root: Path, classes: int = 3, per_class: int = 4, fmt: str = "PNG", tar: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``root/train/<class>/NNNN.png`` and ``root/test/...``, or ``root/tiny-{split}.tar.gz`` holding
    them; returns the training images/labels in loader order (class, then file name)."""
    root.mkdir(parents=True, exist_ok=True)
    ext = ".png" if fmt == "PNG" else ".jpg"
    out = {}
    for split, seed in (("train", 1), ("test", 2)):
        x, y = tiny_images(classes * per_class, classes, seed)
        order = np.argsort(y, kind="stable")
        x, y = x[order], y[order]
        files = {f"{split}/cls{c}/{i:04d}{ext}": _encode(img, fmt) for i, (img, c) in enumerate(zip(x, y))}
        if tar:
            with tarfile.open(root / f"tiny-{split}.tar.gz", "w:gz") as t:
                for name, blob in files.items():
                    info = tarfile.TarInfo(name)
                    info.size = len(blob)
                    t.addfile(info, io.BytesIO(blob))
        else:
            for name, blob in files.items():
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(blob)
        out[split] = (x, y)
    return out["train"]
