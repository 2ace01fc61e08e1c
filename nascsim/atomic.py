"""Atomic file writes: nothing is ever left half-written.

Every file nascsim writes (tables, surrogates, sweep chunks, checkpoints, evaluation files) goes to
a temporary file in the target's folder, is flushed to disk, gets the usual permissions (0666 less
the umask) and is renamed over the target with ``os.replace``; on any failure the temporary file
is removed and the target is untouched.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: str | os.PathLike, tmp_dir: str | os.PathLike | None = None) -> Iterator[str]:
    """Yield a temporary path next to ``target`` (or in ``tmp_dir``, a folder on the same file
    system); on a clean exit it replaces ``target``.

    >>> with atomic_path("out.parquet") as tmp:   # doctest: +SKIP
    ...     frame.write_parquet(tmp)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    where = target.parent if tmp_dir is None else Path(tmp_dir)
    where.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=where)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(data: bytes, target: str | os.PathLike, tmp_dir: str | os.PathLike | None = None) -> None:
    """Write ``data`` to ``target`` atomically (the temporary file in ``tmp_dir`` when given)."""
    with atomic_path(target, tmp_dir) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
