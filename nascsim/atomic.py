"""Atomic file writes: nothing is ever left half-written.

Every file nascsim writes (tables, surrogates, sweep chunks, checkpoints, evaluation files) goes to
a temporary file in the target's folder, is flushed to disk, gets the usual permissions (0666 less
the umask) and is renamed over the target with ``os.replace``; on any failure the temporary file
is removed and the target is untouched. A target that exists and is not a regular file (a
symbolic link, a folder, a FIFO, a device, a socket) is never replaced: :class:`NotARegularFile`.

Reading is as careful (:func:`read_regular_bytes`): a path is opened without blocking (a FIFO
would wait for a writer forever) and, inside a folder nascsim reads as a whole (a result store,
an image folder), without following a symbolic link; anything but a regular file is refused
before a byte is read. :func:`check_tree` refuses a folder holding symbolic links or special
files before any file of it is read, moved or deleted.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class NotARegularFile(ValueError):
    """A path nascsim would read or replace is a symbolic link, folder, FIFO, device or socket."""


def kind_of(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words."""
    for test, name in ((stat.S_ISLNK, "symbolic link"), (stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "regular file" if stat.S_ISREG(mode) else "special file"


def check_output_target(target: str | os.PathLike, what: str = "output file") -> None:
    """:class:`NotARegularFile` when ``target`` exists and is not a regular file (nascsim writes
    only regular files it creates and never replaces a link, folder, FIFO or device)."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise NotARegularFile(f"{what} {str(target)!r} lies below a file, not a folder") from None
    if not stat.S_ISREG(mode):
        raise NotARegularFile(f"{what} {str(target)!r} is a {kind_of(mode)}, not a regular file; refusing to replace it")


def open_regular(path: str | os.PathLike, what: str = "file", follow: bool = True):
    """The regular file ``path`` opened for reading (binary). Opened without blocking
    (``O_NONBLOCK``) and, with ``follow=False``, without following a symbolic link
    (``O_NOFOLLOW``); a FIFO, device, socket, folder (or link, with ``follow=False``) raises
    :class:`NotARegularFile`. ``FileNotFoundError`` when it does not exist."""
    path = os.fspath(path)
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path!r} does not exist") from None
    if not stat.S_ISREG(st.st_mode):  # before opening: opening a device can itself act
        raise NotARegularFile(f"{what} {path!r} is a {kind_of(st.st_mode)}, not a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:  # ELOOP: swapped for a link since the check
        raise NotARegularFile(f"{what} {path!r} cannot be opened as a regular file ({exc.strerror})") from None
    f = os.fdopen(fd, "rb")
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        f.close()
        raise NotARegularFile(f"{what} {path!r} is a {kind_of(mode)}, not a regular file")
    return f


def read_regular_bytes(path: str | os.PathLike, what: str = "file", follow: bool = True,
                       max_bytes: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (:func:`open_regular`); a file larger than
    ``max_bytes`` raises ``ValueError``."""
    with open_regular(path, what, follow) as f:
        st = os.fstat(f.fileno())
        if max_bytes is not None and st.st_size > max_bytes:
            raise ValueError(f"{what} {path!r} is {st.st_size} bytes, more than the {max_bytes} a {what} may have")
        return f.read()


def check_tree(root: str | os.PathLike, what: str = "folder") -> None:
    """:class:`NotARegularFile` naming the first symbolic link, FIFO, device or socket at any depth
    inside the folder ``root`` (``root`` itself may be a link the user gave). Nothing is opened."""
    stack = [os.fspath(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_symlink():
                raise NotARegularFile(f"{what} {os.fspath(root)!r} holds a symbolic link, {entry.path!r}; "
                                      "nascsim follows no links inside it")
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif not entry.is_file(follow_symlinks=False):
                kind = kind_of(entry.stat(follow_symlinks=False).st_mode)
                raise NotARegularFile(f"{what} {os.fspath(root)!r} holds a {kind}, {entry.path!r}; "
                                      "only regular files and folders are read")


@contextmanager
def atomic_path(target: str | os.PathLike, tmp_dir: str | os.PathLike | None = None) -> Iterator[str]:
    """Yield a temporary path next to ``target`` (or in ``tmp_dir``, a folder on the same file
    system); on a clean exit it replaces ``target``.

    >>> with atomic_path("out.parquet") as tmp:   # doctest: +SKIP
    ...     frame.write_parquet(tmp)
    """
    target = Path(target)
    check_output_target(target)
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
        check_output_target(target)  # not swapped for a link, FIFO or device meanwhile
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
