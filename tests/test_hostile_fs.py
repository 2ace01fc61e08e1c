"""Links and special files: nothing escapes its folder, nothing blocks, only regular files are written.

A result store or an image folder holding a symbolic link (to a folder or a file), a FIFO or a
device is refused in one line (exit 2) before anything in it is read, moved, deleted or written;
an output path that is a FIFO, device, folder or link is never replaced. Cases that would block
forever if the code were wrong run in a subprocess with a timeout."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from _cli_helpers import assert_contract, run_subprocess
from _cli_helpers import run_in_process as nascsim_in_process
from hypothesis import given, settings
from hypothesis import strategies as st

from nascsim.atomic import NotARegularFile, atomic_write_bytes, check_output_target, check_tree, read_regular_bytes
from surrogate_fixtures import make_stand_in_surrogate
from test_hostile_input import TINY

GUARD_S = 1800  # a wrong reader would wait on a FIFO forever; the subprocess is killed after this (generous: a starved machine must not fail it)


def snapshot(root: Path) -> list[tuple[str, int, int, int]]:
    """(path, mode, size, mtime) of everything under ``root``, links not followed."""
    out = []
    for p in sorted(root.rglob("*")):
        st_ = p.lstat()
        out.append((str(p.relative_to(root)), st_.st_mode, st_.st_size if stat.S_ISREG(st_.st_mode) else 0, st_.st_mtime_ns))
    return out


class no_hang:
    """In-process guard: SIGALRM after :data:`GUARD_S` seconds turns a read that blocks on a FIFO
    (what a wrong reader would do) into a failing test instead of a hung suite."""

    def __enter__(self):
        def fail(signum, frame):
            raise TimeoutError("blocked on a FIFO")

        self.old = signal.signal(signal.SIGALRM, fail)
        signal.alarm(GUARD_S)

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.old)


def nascsim_subprocess(argv, cwd: Path) -> tuple[int, str]:
    return run_subprocess(argv, cwd, timeout=GUARD_S)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A stand-in surrogate and a finished tiny sweep (the report's files are planted by the cases)."""
    from nascsim.surrogate import save_surrogate

    root = tmp_path_factory.mktemp("fs")
    sur = save_surrogate(make_stand_in_surrogate("fbnet", 0), root / "stand-in.json")
    code, _, err = nascsim_in_process(["sweep", *TINY, "--surrogate", str(sur), "--out", str(root / "store"),
                                       "--jobs", "1", "--quiet", "--no-report"], root)
    assert code == 0, err
    return sur, root / "store"


@pytest.fixture
def world(tmp_path, finished):
    """``tmp/store`` (a copy of the finished sweep) and ``tmp/outside`` (someone else's folder)."""
    sur, store = finished
    shutil.copytree(store, tmp_path / "store", symlinks=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "precious.txt").write_text("mine")
    shutil.copy(next((store / "runs").glob("chunk-*.parquet")), tmp_path / "outside" / "chunk-0-0-0.parquet")
    shutil.copy(store / "sweep.toml", tmp_path / "outside" / "sweep.toml")
    return sur, tmp_path


def _plant(store: Path, where: str, kind: str, outside: Path) -> None:
    """Put a ``kind`` ("link" or "fifo") at ``where`` inside ``store`` (replacing what is there)."""
    target = store / where
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(target)
    elif where in ("runs", ".partial", "damaged", "plots"):
        target.symlink_to(outside, target_is_directory=True)
    else:
        name = {".parquet": "chunk-0-0-0.parquet", ".toml": "sweep.toml"}.get(Path(where).suffix, "precious.txt")
        target.symlink_to(outside / name)


STORE_PATHS = [".partial", "runs", "damaged", "plots", "sweep.toml", "runs/chunk-9-9-9.parquet", "summary.csv",
               "plots/x.png", ".partial/x.tmp", "damaged/old.parquet"]


@pytest.mark.parametrize("where", STORE_PATHS)
@pytest.mark.parametrize("command", ["sweep more seeds", "report"])
def test_a_link_anywhere_in_a_store_is_refused_and_nothing_outside_changes(world, where, command):
    sur, tmp = world
    _plant(tmp / "store", where, "link", tmp / "outside")
    more = ["--thresholds", "20,30", "--loss", "0,0.3", "--seeds", "3", "--steps", "20"]  # runs to add: a commit
    argv = {"sweep more seeds": ["sweep", *more, "--surrogate", str(sur), "--out", "store", "--jobs", "1", "--quiet"],
            "report": ["report", "store"]}[command]
    before = snapshot(tmp)
    code, _, err = nascsim_in_process(argv, tmp)
    assert_contract(code, err, "symbolic link", where.split("/")[0])
    assert snapshot(tmp) == before


@pytest.mark.parametrize("where", ["sweep.toml", "runs/chunk-9-9-9.parquet", "plots/x.png", "summary.csv"])
def test_a_fifo_in_a_store_is_refused_without_blocking(world, where):
    _, tmp = world
    _plant(tmp / "store", where, "fifo", tmp / "outside")
    before = snapshot(tmp)
    code, err = nascsim_subprocess(["report", "store"], tmp)
    assert_contract(code, err, "FIFO" if where != "sweep.toml" else "sweep.toml")
    assert snapshot(tmp) == before


def _make_device(path: Path) -> bool:
    """A character device like /dev/null at ``path`` (needs root); False when not allowed."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        return True
    except (PermissionError, OSError):
        return False


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "link"])
@pytest.mark.parametrize("flag", ["--trace", "--trace-plot"])
def test_search_never_replaces_an_output_that_is_not_a_regular_file(world, kind, flag):
    sur, tmp = world
    out = tmp / ("t.png" if flag == "--trace-plot" else "t.parquet")
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "device" and not _make_device(out):
        pytest.skip("making a device node needs root")
    elif kind == "folder":
        out.mkdir()
    elif kind == "link":
        out.symlink_to(tmp / "outside" / "precious.txt")
    before = snapshot(tmp)
    code, err = nascsim_subprocess(["search", "--steps", "20", "--surrogate", sur, flag, out.name], tmp)
    assert_contract(code, err, out.name)
    assert snapshot(tmp) == before


@pytest.mark.parametrize("kind", ["fifo", "device", "link"])
def test_tables_build_never_replaces_an_out_that_is_not_a_regular_file(tmp_path, kind):
    out = tmp_path / "t.parquet"
    (tmp_path / "lut.json").write_text("{}")
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "device" and not _make_device(out):
        pytest.skip("making a device node needs root")
    elif kind == "link":
        (tmp_path / "other.parquet").write_text("x")
        out.symlink_to(tmp_path / "other.parquet")
    before = snapshot(tmp_path)
    code, err = nascsim_subprocess(["tables", "build", "--lut", "lut.json", "--out", "t.parquet", "--force"], tmp_path)
    assert_contract(code, err, "t.parquet", "not a regular file")
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------------------
# image folders and decode caches
# ------------------------------------------------------------------------------------------------

def _image_folder(root: Path) -> Path:
    from _train_fixtures import write_image_folder

    write_image_folder(root / "img", classes=2, per_class=2)
    return root / "img"


LOAD = ("import sys\nfrom nascsim.train.data import load_dataset\n"
        "try:\n    load_dataset(sys.argv[1], use_cache=sys.argv[2] == 'cache')\n"
        "except (ValueError, OSError) as exc:\n    print(f'Error: {exc}', file=sys.stderr); sys.exit(2)\n")


def _load_in_subprocess(path: Path, cache: bool) -> tuple[int, str]:
    r = subprocess.run([sys.executable, "-c", LOAD, str(path), "cache" if cache else "none"], capture_output=True,
                       text=True, timeout=GUARD_S, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    return r.returncode, r.stderr


@pytest.mark.parametrize("kind", ["fifo image", "link to an image", "link to a class folder", "link as train/"])
def test_an_image_folder_with_a_link_or_fifo_is_refused_without_blocking(tmp_path, kind):
    img = _image_folder(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    cls = sorted((img / "train").iterdir())[0]
    if kind == "fifo image":
        os.mkfifo(cls / "zz.png")
    elif kind == "link to an image":
        shutil.copy(next(cls.iterdir()), tmp_path / "elsewhere" / "a.png")
        (cls / "zz.png").symlink_to(tmp_path / "elsewhere" / "a.png")
    elif kind == "link to a class folder":
        shutil.copytree(cls, tmp_path / "elsewhere" / "cls")
        (img / "train" / "zz").symlink_to(tmp_path / "elsewhere" / "cls", target_is_directory=True)
    else:
        shutil.move(img / "train", tmp_path / "elsewhere" / "train")
        (img / "train").symlink_to(tmp_path / "elsewhere" / "train", target_is_directory=True)
    before = snapshot(tmp_path)
    code, err = _load_in_subprocess(img, cache=True)
    assert_contract(code, err, "symbolic link" if kind != "fifo image" else "FIFO")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", ["fifo", "link"])
def test_a_decode_cache_that_is_a_fifo_or_link_is_refused_without_blocking(tmp_path, kind):
    from nascsim.train.data import cache_file

    img = _image_folder(tmp_path)
    cache = cache_file(img)
    if kind == "fifo":
        os.mkfifo(cache)
    else:
        (tmp_path / "c.npz").write_bytes(b"x")
        cache.symlink_to(tmp_path / "c.npz")
    before = snapshot(tmp_path)
    code, err = _load_in_subprocess(img, cache=True)
    assert_contract(code, err, "decoded-image cache")
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------------------
# the primitives, as properties
# ------------------------------------------------------------------------------------------------

KINDS = ["file", "folder", "link to a folder", "link to a file", "dangling link", "fifo"]


@settings(max_examples=60, deadline=None)
@given(plan=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(KINDS)), min_size=1, max_size=8))
def test_check_tree_refuses_exactly_the_trees_holding_a_link_or_special_file(plan, tmp_path_factory):
    """Random trees: check_tree passes when every entry is a file or folder and refuses, naming the
    entry, as soon as one is a link (to anything) or a FIFO -- and never opens a FIFO."""
    base = tmp_path_factory.mktemp("tree")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "f").write_text("x")
    folders = [root]
    for n, (parent, kind) in enumerate(plan):
        at = folders[parent % len(folders)] / f"e{n}"
        if kind == "file":
            at.write_text("x")
        elif kind == "folder":
            at.mkdir()
            folders.append(at)
        elif kind == "link to a folder":
            at.symlink_to(outside, target_is_directory=True)
        elif kind == "link to a file":
            at.symlink_to(outside / "f")
        elif kind == "dangling link":
            at.symlink_to(base / "nowhere")
        else:
            os.mkfifo(at)
    bad = [k for _, k in plan if k not in ("file", "folder")]
    with no_hang():
        if not bad:
            check_tree(root, "store")
            return
        with pytest.raises(NotARegularFile) as exc:
            check_tree(root, "store")
    assert "\n" not in str(exc.value) and str(root) in str(exc.value)


@pytest.mark.parametrize("kind", ["fifo", "folder", "link", "dangling link"])
def test_an_atomic_write_replaces_only_regular_files(tmp_path, kind):
    target = tmp_path / "t"
    {"fifo": lambda: os.mkfifo(target), "folder": target.mkdir, "link": lambda: target.symlink_to(tmp_path / "o"),
     "dangling link": lambda: target.symlink_to(tmp_path / "nowhere")}[kind]()
    (tmp_path / "o").write_text("other")
    before = snapshot(tmp_path)
    with no_hang(), pytest.raises(NotARegularFile, match="not a regular file"):
        atomic_write_bytes(b"new", target)
    with pytest.raises(NotARegularFile):
        check_output_target(target)
    assert snapshot(tmp_path) == before
    target_file = tmp_path / "regular"
    atomic_write_bytes(b"a", target_file)
    atomic_write_bytes(b"b", target_file)
    assert target_file.read_bytes() == b"b"


def test_reading_a_fifo_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "f")
    with no_hang(), pytest.raises(NotARegularFile, match="FIFO"):
        read_regular_bytes(tmp_path / "f")
    (tmp_path / "real").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert read_regular_bytes(tmp_path / "link") == b"x"
    with pytest.raises(NotARegularFile, match="symbolic link"):
        read_regular_bytes(tmp_path / "link", follow=False)
