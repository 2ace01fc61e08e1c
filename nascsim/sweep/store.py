"""A sweep's result store: ``sweep.toml`` (what was asked) and ``runs/`` (what came back).

Layout of an output folder::

    DIR/sweep.toml                         the surrogates, the grid(s) and the commands that asked for them
    DIR/runs/chunk-<ns>-<pid>-<n>.parquet  one row per finished run, several runs per chunk
    DIR/.partial/                          chunks being written (renamed into runs/ when whole)
    DIR/damaged/                           chunks that could not be read, moved aside by the next sweep
    DIR/summary.csv, comparison.csv, summary.txt, plots/   written by the report

Writes. Nothing is written until the first batch of runs has finished: the folder, ``sweep.toml``
and ``runs/`` appear with the first chunk. Each chunk is written under ``.partial/`` and renamed
into ``runs/`` (``os.replace``), so ``runs/`` only ever holds whole chunks (``polars.read_parquet``
and ``pyarrow`` read it as one dataset) and a sweep killed at any moment (kill -9 included) loses
only the runs whose chunk was not yet committed. One writer at a time: a sweep holds an advisory
lock (``flock``) on the folder from its first look at the stored runs (or its first write) to its
end; a second sweep into the same folder is refused with a message saying so. Two sweeps started
together into a folder that does not exist yet both find nothing stored: the lock comes with the
first commit (which makes the folder), and that commit drops the runs another sweep stored before
it, so no run is ever stored twice.

Rows. Every chunk has the same columns with the same types (:func:`store_schema`): the
SearchConfig fields, ``config_hash`` (:meth:`SearchConfig.content_hash`), the results, and
``extra`` (JSON of any record field outside the schema, e.g. a user method's own fields).
Re-running a sweep skips the hashes already stored.

Meaning. A stored row means "this config, searched and judged by these surrogates". A folder
takes any grid run on the same surrogates (more seeds, thresholds, methods or any axis values are
added runs, recorded in ``sweep.toml`` as additions); a different surrogate would change what the
stored rows mean and is refused, before anything is written, with the way out.

Links and special files. Nothing is followed out of a store: a folder holding a symbolic link
(``runs``, ``.partial``, ``damaged``, ``plots`` or any file), a FIFO, a device or a socket is
refused in one line before anything in it is read, moved, deleted or written
(:func:`check_store_tree`); files are read without blocking and without following links.

Reading. A chunk that is not a readable parquet file, lacks a column, has a column of another
type or holds a value outside its field's rule is skipped with one warning line on stderr; a
sweep into the folder moves it to ``damaged/`` with its first commit and recomputes its runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Callable, Iterator

from nascsim import __version__
from nascsim.atomic import atomic_write_bytes, check_tree, read_regular_bytes
from nascsim.config import SearchConfig
from nascsim.sweep.grid import FIELD_KINDS, FIELD_NAMES, Grid

SWEEP_FILE = "sweep.toml"
RUNS_DIR = "runs"
PARTIAL_DIR = ".partial"
DAMAGED_DIR = "damaged"
CHUNK_GLOB = "chunk-*.parquet"
MAX_SWEEP_FILE_BYTES = 64 * 2**20


class StoreBusy(ValueError):
    """Another process holds the result store's lock."""


class StoreTooLarge(ValueError):
    """A result store holds more rows than :data:`nascsim.limits.MAX_STORE_ROWS`."""


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep asks for: its grid and the surrogates it runs on. ``surrogate`` is the path
    given on the command line (absolute) or ``"default"``; ``surrogate_id`` names the surrogates'
    contents; ``command`` is kept for the record. ``additions``: grids added to the same store
    later, each with its command (read from ``sweep.toml``)."""

    grid: Grid
    surrogate: str
    surrogate_id: str
    command: tuple[str, ...] = ()
    additions: tuple[tuple[Grid, tuple[str, ...]], ...] = ()

    def grids(self) -> tuple[Grid, ...]:
        return (self.grid,) + tuple(g for g, _ in self.additions)

    def cells(self) -> Iterator[SearchConfig]:
        """Every run of every grid, in grid order, each once."""
        if not self.additions:
            yield from self.grid.cells()
            return
        seen: set[SearchConfig] = set()
        for g in self.grids():
            for c in g.cells():
                if c not in seen:
                    seen.add(c)
                    yield c

    @property
    def n_runs(self) -> int:
        """Runs asked for (an upper bound when grids overlap)."""
        return sum(g.n_runs for g in self.grids())

    def identity(self) -> str:
        """Hash of what gives a stored row its meaning besides its config: the surrogates."""
        return hashlib.sha256(json.dumps({"surrogate_id": self.surrogate_id}).encode()).hexdigest()[:16]

    def fingerprint(self) -> str:
        """Hash of the grids and the identity (names the default result folder)."""
        blob = json.dumps({"grids": [g.to_toml_dict() for g in self.grids()], "surrogate_id": self.surrogate_id},
                          sort_keys=True, default=repr)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# -- sweep.toml -----------------------------------------------------------------------------------

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


def _grid_lines(grid: Grid) -> list[str]:
    return [f"{name} = {_toml_value(vals)}" for name, vals in grid.to_toml_dict().items()]


def spec_to_toml(spec: SweepSpec) -> str:
    lines = [
        "# A nascsim sweep. Replay it (and resume in this folder) with: nascsim sweep --config sweep.toml",
        f"nascsim_version = {_toml_value(__version__)}",
        f"created = {_toml_value(time.strftime('%Y-%m-%dT%H:%M:%S'))}",
        f"command = {_toml_value(list(spec.command))}",
        f"fingerprint = {_toml_value(spec.fingerprint())}",
        "",
        "[surrogate]",
        f"path = {_toml_value(spec.surrogate)}",
        f"id = {_toml_value(spec.surrogate_id)}",
        "",
        "[grid]  # every search option's values; options with several values are the sweep's axes",
        *_grid_lines(spec.grid),
    ]
    for grid, command in spec.additions:
        lines += ["", "[[added]]  # a later sweep into this folder: its runs are added to the store",
                  f"command = {_toml_value(list(command))}", "[added.grid]", *_grid_lines(grid)]
    return "\n".join(lines) + "\n"


def _not_sweep(p: Path, why: str) -> ValueError:
    return ValueError(f"{str(p)!r} is not a sweep file: {why}")


def read_spec(path: str | os.PathLike) -> SweepSpec:
    """The sweep recorded in a ``sweep.toml`` (``ValueError`` when it is not one, naming why)."""
    from nascsim.safe_load import StructureError, loads_toml

    p = Path(path)
    if p.is_dir():
        raise _not_sweep(p, "it is a folder")
    try:
        raw = read_regular_bytes(p, "sweep file", max_bytes=MAX_SWEEP_FILE_BYTES)
    except FileNotFoundError:
        raise FileNotFoundError(f"no sweep file at {str(p)!r}") from None
    try:
        doc = loads_toml(raw, "the file")
    except StructureError as exc:
        raise _not_sweep(p, str(exc)) from None
    grid_doc, sur = doc.get("grid"), doc.get("surrogate")
    if not isinstance(grid_doc, dict):
        raise _not_sweep(p, "no [grid] table")
    if not isinstance(sur, dict) or not isinstance(sur.get("path"), str) or not isinstance(sur.get("id"), str):
        raise _not_sweep(p, "no [surrogate] table with path and id")
    added = doc.get("added", [])
    if not isinstance(added, list) or not all(isinstance(a, dict) and isinstance(a.get("grid"), dict) for a in added):
        raise _not_sweep(p, "[[added]] entries need a grid table")
    try:
        grid = Grid.from_toml_dict(grid_doc)
        additions = tuple((Grid.from_toml_dict(a["grid"]), _command(a.get("command"))) for a in added)
    except ValueError as exc:
        raise _not_sweep(p, str(exc)) from None
    return SweepSpec(grid, sur["path"], sur["id"], _command(doc.get("command")), additions)


def _command(value) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(w, str) for w in value):
        return tuple(value)
    return ()


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def check_store_tree(root: str | os.PathLike) -> None:
    """``ValueError`` (:class:`~nascsim.atomic.NotARegularFile`) when the store folder ``root``
    holds a symbolic link, FIFO, device or socket anywhere, or its ``runs``, ``.partial``,
    ``damaged`` or ``plots`` is not a folder."""
    check_tree(root, "result store")
    for name in (RUNS_DIR, PARTIAL_DIR, DAMAGED_DIR, "plots"):
        if (Path(root) / name).exists() and not (Path(root) / name).is_dir():
            raise ValueError(f"result store {str(root)!r}: {name!r} is not a folder")


def check_out_dir(out: str | os.PathLike, spec: SweepSpec) -> bool:
    """Whether ``out`` can take ``spec`` (``ValueError`` when it holds runs of other surrogates,
    other files, links or special files). Returns True when it already holds a sweep (a resume,
    or runs to add). Writes nothing."""
    out = Path(out)
    if not out.exists():
        if out.is_symlink():
            raise ValueError(f"output path {str(out)!r} is a dangling symbolic link")
        return False
    if not out.is_dir():
        raise ValueError(f"output path {str(out)!r} exists and is not a folder")
    check_store_tree(out)
    sweep_file = out / SWEEP_FILE
    if not sweep_file.exists():
        if any(out.iterdir()):
            raise ValueError(f"output folder {str(out)!r} is not empty and holds no {SWEEP_FILE}; choose another --out")
        return False
    stored = read_spec(sweep_file)
    if stored.identity() != spec.identity():
        was = "the shipped surrogates" if stored.surrogate == "default" else stored.surrogate
        raise ValueError(
            f"output folder {str(out)!r} holds runs judged by other surrogates ({_short(stored.surrogate_id)}, "
            f"not {_short(spec.surrogate_id)}), so the same configs would mean other results; "
            f"add runs there with the surrogates it was made with ({was}), or choose another --out")
    return True


# -- rows and chunks ------------------------------------------------------------------------------

# result columns: name -> polars dtype name; REQUIRED ones must be present (and non-null) in a chunk
RESULT_COLUMNS: dict[str, str] = {
    "arch": "List[str]", "arch_idx": "List[int]", "split": "int", "payload_bits": "float",
    "T_head_ms": "float", "T_comm_ms": "float", "T_tail_ms": "float", "T_ms": "float", "feasible": "bool",
    "accuracy": "float", "l_sc": "float", "surrogate": "str", "search_surrogate": "str", "dataset": "str",
    "steps_used": "int", "source_used": "str",
    # ASNG methods (null for random search); theta_* as in the shared schema (C)
    "Delta": "float", "n_updates": "int", "theta_op_confidence": "float", "theta_split_prob": "float",
    "theta_min_confidence": "float", "theta_decided_share": "float",
    "dropout_distinguished": "bool",  # hwnas, hwnas-dropout
    "search_s": "float", "cache_hit_rate": "float", "wall_s": "float",
    "config_hash": "str", "nascsim_version": "str", "version": "str",
    "extra": "str",  # JSON object of record fields outside this schema, or null
}
REQUIRED_RESULTS = ("arch", "split", "T_head_ms", "T_comm_ms", "T_tail_ms", "T_ms", "feasible", "accuracy",
                    "surrogate", "dataset", "config_hash")


def _polars_dtype(kind: str):
    import polars as pl

    return {"str": pl.String, "str?": pl.String, "float": pl.Float64, "int": pl.Int64, "int?": pl.Int64,
            "bool": pl.Boolean, "floats": pl.List(pl.Float64), "List[str]": pl.List(pl.String),
            "List[int]": pl.List(pl.Int64)}[kind]


def store_schema() -> dict:
    """Column -> polars dtype of every chunk: the SearchConfig fields in their order, then the
    result columns by name. One schema for all chunks, whatever the methods in them."""
    schema = {name: _polars_dtype(kind) for name, kind in FIELD_KINDS.items()}
    for name in sorted(RESULT_COLUMNS):
        schema[name] = _polars_dtype(RESULT_COLUMNS[name])
    return schema


def required_columns() -> tuple[str, ...]:
    return tuple(FIELD_NAMES) + REQUIRED_RESULTS


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def make_row(config: SearchConfig, record: dict, wall_s: float) -> dict:
    """One store row: the config's fields exactly as run, the record's results, the config hash,
    the package version and the wall time. A record value that differs from the config's (e.g.
    ``steps`` resolved from ``None`` to the paper's schedule) is kept as ``<field>_used``."""
    row = {k: v for k, v in record.items() if k not in FIELD_KINDS}
    for name, value in config.to_dict().items():
        row[name] = value
        if name in record and not _same(record[name], value):
            row[f"{name}_used"] = record[name]
    row["config_hash"] = config.content_hash()
    row["nascsim_version"] = __version__
    row["wall_s"] = float(record.get("wall_s", wall_s))
    return row


def _jsonable(v):
    if hasattr(v, "tolist"):  # numpy arrays and scalars
        return _jsonable(v.tolist())
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return repr(v)


def rows_frame(rows: list[dict]):
    """Polars frame of rows in the store's one schema (:func:`store_schema`): missing columns
    null, fields outside the schema folded into ``extra`` (JSON). ``ValueError`` naming the
    column when a value does not fit its column's type."""
    import polars as pl

    schema = store_schema()
    rows = [_fold_extra(r, schema) for r in rows]
    columns = {}
    for c, dtype in schema.items():
        try:
            columns[c] = pl.Series(c, [r.get(c) for r in rows], dtype=dtype, strict=True)
        except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError) as exc:
            raise ValueError(f"result column {c!r} cannot hold the run's values ({str(exc).splitlines()[0]})") from None
    return pl.DataFrame(columns)


def _fold_extra(row: dict, schema: dict) -> dict:
    outside = {k: v for k, v in row.items() if k not in schema}
    if not outside:
        return row
    out = {k: v for k, v in row.items() if k in schema}
    extra = json.loads(row["extra"]) if isinstance(row.get("extra"), str) else {}
    extra.update({k: _jsonable(v) for k, v in outside.items()})
    out["extra"] = json.dumps(extra, sort_keys=True)
    return out


def check_chunk(frame) -> str | None:
    """Why a chunk read back cannot be trusted, or None: a missing required column, a column of
    another type, a null where a value is required, or a config value outside its field's rule."""
    from nascsim.validate import check_field

    schema = store_schema()
    missing = [c for c in required_columns() if c not in frame.columns]
    if missing:
        older = " (written before these search options existed?)" if set(missing) <= set(FIELD_NAMES) else ""
        return f"lacks column(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}{older}"
    for c in frame.columns:
        if c in schema and frame.schema[c] != schema[c]:
            return f"column {c!r} is {frame.schema[c]}, not {schema[c]}"
    for c in required_columns():
        nullable = FIELD_KINDS.get(c, "").endswith("?")
        if not nullable and frame[c].null_count():
            return f"column {c!r} has empty values"
    for name in FIELD_NAMES:
        for value in frame[name].unique().to_list():
            try:
                check_field(name, tuple(value) if isinstance(value, list) else value)
            except ValueError as exc:
                return f"bad value ({exc})"
    return _check_results(frame) or _check_hashes(frame)


# result column -> (low, high): the range a stored result must lie in (nulls allowed where the
# column is not required); latencies in ms as in nascsim.validate's threshold rule
RESULT_RANGES: dict[str, tuple[float, float]] = {
    "accuracy": (0.0, 1.0), "T_head_ms": (0.0, 1e6), "T_comm_ms": (0.0, 1e6), "T_tail_ms": (0.0, 1e6),
    "T_ms": (0.0, 1e6), "payload_bits": (0.0, 1e15), "l_sc": (0.0, 50.0), "split": (0, 22),
    "theta_op_confidence": (0.0, 1.0), "theta_split_prob": (0.0, 1.0), "theta_min_confidence": (0.0, 1.0),
    "theta_decided_share": (0.0, 1.0), "cache_hit_rate": (0.0, 1.0), "steps_used": (0, 2**62),
    "n_updates": (0, 2**62),
}


def _check_results(frame) -> str | None:
    """The first result value outside :data:`RESULT_RANGES` (NaN and infinities included)."""
    import polars as pl

    for c, (lo, hi) in RESULT_RANGES.items():
        if c not in frame.columns:
            continue
        col = frame[c].drop_nulls()
        if col.dtype.is_float():
            bad = col.filter(col.is_nan() | (col < lo) | (col > hi))
        else:
            bad = col.filter((col < lo) | (col > hi))
        if bad.len():
            return f"bad value (result {c} = {bad[0]!r} is outside [{lo:g}, {hi:g}])"
    if frame.height and frame.select((pl.col("T_ms") - pl.col("T_head_ms") - pl.col("T_comm_ms") - pl.col("T_tail_ms"))
                                     .abs().max()).item() > 1e-6 * max(1.0, float(frame["T_ms"].max())):
        return "bad value (T_ms is not T_head_ms + T_comm_ms + T_tail_ms)"
    return None


def _check_hashes(frame) -> str | None:
    """A row whose stored ``config_hash`` is not the hash of its own config (a rewritten hash
    would hide a run or duplicate one), or a hash stored twice in one chunk."""
    hashes = frame["config_hash"].to_list()
    if len(set(hashes)) != len(hashes):
        return "holds a config hash twice"
    for row, stored in zip(frame.select(list(FIELD_NAMES)).iter_rows(named=True), hashes):
        if SearchConfig.from_dict(row).content_hash() != stored:
            return f"bad value (config_hash {str(stored)[:20]!r} is not the hash of its row's config)"
    return None


def _stderr_line(message: str) -> None:
    from nascsim._stderr import warning_line

    warning_line(message)


class ResultStore:
    """The ``runs/`` folder of a sweep: commit chunks of rows, list finished hashes, read all.

    ``spec`` is what a writer records in ``sweep.toml`` with its first commit (None for a reader).
    ``on_damaged(line)`` receives the one-line report of skipped chunks (default: stderr).
    """

    def __init__(self, root: str | os.PathLike, spec: SweepSpec | None = None,
                 on_damaged: Callable[[str], None] | None = None):
        self.root = Path(root)
        self.runs = self.root / RUNS_DIR
        self.partial = self.root / PARTIAL_DIR
        self.spec = spec
        self.on_damaged = on_damaged or _stderr_line
        self.damaged: dict[Path, str] = {}
        self._reported: set[Path] = set()
        self._n = count()
        self._lock_fd: int | None = None
        self._ready = False

    @classmethod
    def create(cls, out: str | os.PathLike, spec: SweepSpec) -> "ResultStore":
        """A store in ``out`` for ``spec``, checked by :func:`check_out_dir`. Writes nothing: the
        folder, ``sweep.toml`` and ``runs/`` are made by the first :meth:`commit`."""
        check_out_dir(out, spec)
        return cls(out, spec)

    # -- the writer's lock ------------------------------------------------------------------------

    def lock(self) -> None:
        """Take the folder's writer lock when the folder exists (else the first commit takes it).
        ``StoreBusy`` when another process holds it. Writes nothing."""
        if self._lock_fd is not None or not self.root.is_dir():
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return
        fd = os.open(self.root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreBusy(f"another nascsim sweep is writing into {str(self.root)!r} (it holds the folder's lock); "
                            "wait for it to end, or choose another --out") from None
        self._lock_fd = fd

    def close(self) -> None:
        """Release the writer lock (if held)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def _prepare_first_write(self) -> None:
        """Make the folder, take the lock, record the sweep (a new ``sweep.toml``, or the grids it
        adds), and move damaged chunks and dead sweeps' partial files aside."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock()
        check_store_tree(self.root)  # under the lock: what is deleted and moved below stays inside
        if self.spec is not None:
            self._record(self.spec)
        self.runs.mkdir(exist_ok=True)
        # we hold the lock: no live writer owns these (runs/.chunk-*.tmp: an older nascsim's)
        stale = list(self.partial.iterdir()) if self.partial.is_dir() else []
        for path in stale + list(self.runs.glob(".chunk-*.tmp")):
            path.unlink(missing_ok=True)
        if self.damaged:
            (self.root / DAMAGED_DIR).mkdir(exist_ok=True)
            for path in list(self.damaged):
                if path.exists():
                    os.replace(path, self.root / DAMAGED_DIR / path.name)
        self._ready = True

    def _record(self, spec: SweepSpec) -> None:
        sweep_file = self.root / SWEEP_FILE
        if not check_out_dir(self.root, spec):
            atomic_write_bytes(spec_to_toml(spec).encode(), sweep_file)
            return
        stored = read_spec(sweep_file)
        added = list(stored.additions)
        for grid, command in ((spec.grid, spec.command), *spec.additions):
            if grid not in stored.grids() and grid not in [g for g, _ in added]:
                added.append((grid, command))
        if len(added) > len(stored.additions):
            new = SweepSpec(stored.grid, stored.surrogate, stored.surrogate_id, stored.command, tuple(added))
            atomic_write_bytes(spec_to_toml(new).encode(), sweep_file)

    # -- chunks -----------------------------------------------------------------------------------

    def chunks(self) -> list[Path]:
        return sorted(self.runs.glob(CHUNK_GLOB)) if self.runs.is_dir() else []

    def commit(self, rows: list[dict]) -> Path | None:
        """Write ``rows`` as one new chunk, atomically. Returns its path (None for no rows). The
        first commit makes the folder and records the sweep (see the module docstring)."""
        if not rows:
            return None
        frame = rows_frame(rows)
        if not self._ready:
            self._prepare_first_write()
            # Now under the lock: a sweep that started into the same new folder may have stored
            # some of these runs before we got the lock; they are not stored twice.
            stored = self.done_hashes()
            if stored:
                frame = frame.filter(~frame["config_hash"].is_in(list(stored)))
            if frame.height == 0:
                return None
        buf = io.BytesIO()
        frame.write_parquet(buf)
        target = self.runs / f"chunk-{time.time_ns():020d}-{os.getpid()}-{next(self._n):06d}.parquet"
        atomic_write_bytes(buf.getvalue(), target, tmp_dir=self.partial)
        return target

    def _valid_frames(self, columns: list[str] | None = None):
        """(path, frame) of every chunk that reads back whole and fits the schema; the others go to
        :attr:`damaged` and are reported once, in one line."""
        import polars as pl

        from nascsim.limits import MAX_CHUNK_BYTES, MAX_CHUNK_ROWS, MAX_STORE_ROWS, UnreadableParquet, check_parquet

        schema = store_schema()
        out, total = [], 0
        for path in self.chunks():
            raw = read_regular_bytes(path, "result chunk", follow=False)  # a link or FIFO: refused, not skipped
            try:
                # the footer first: a small file may decompress to millions of rows
                total += check_parquet(path, "chunk", MAX_CHUNK_ROWS, MAX_CHUNK_BYTES)
                if total > MAX_STORE_ROWS:
                    raise StoreTooLarge(f"result store {str(self.root)!r} holds more than {MAX_STORE_ROWS:,} rows, "
                                        "more than nascsim reads at once; split its runs/ into several folders")
                frame = pl.read_parquet(io.BytesIO(raw))
                why = check_chunk(frame)
            except StoreTooLarge:
                raise
            except UnreadableParquet as exc:
                why = f"not a readable parquet file ({exc.kind})"
            except ValueError as exc:  # too large for a chunk
                why = str(exc).replace(f"chunk {str(path)!r} ", "")
            except Exception as exc:  # noqa: BLE001 - any failure to read is a damaged chunk
                why = f"not a readable parquet file ({type(exc).__name__})"
            if why is not None:
                self.damaged[path] = why
                continue
            for c, dtype in schema.items():
                if c not in frame.columns:
                    frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(c))
            out.append((path, frame.select(list(schema) if columns is None else columns)))
        return out

    def _damaged_text(self, paths: list[Path]) -> str:
        more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
        return (f"{len(paths)} damaged result chunk(s) in {str(self.runs)!r}: {paths[0].name} "
                f"{self.damaged[paths[0]]}{more}")

    def _report_damaged(self) -> None:
        new = [p for p in self.damaged if p not in self._reported]
        if not new:
            return
        self._reported.update(new)
        self.on_damaged(f"warning: skipped {self._damaged_text(new)}; a sweep into this folder recomputes their runs")

    def done_hashes(self) -> set[str]:
        done: set[str] = set()
        for _, frame in self._valid_frames(["config_hash"]):
            done.update(frame["config_hash"].to_list())
        self._report_damaged()
        return done

    def read(self):
        """All stored rows (one per config hash, first committed wins), as a polars frame in the
        store's schema; damaged chunks skipped (see :attr:`damaged`)."""
        import polars as pl

        frames = [f for _, f in self._valid_frames()]
        if not frames:
            damaged = f" (only {self._damaged_text(list(self.damaged))})" if self.damaged else ""
            raise ValueError(f"result store {str(self.root)!r} holds no finished runs{damaged}")
        self._report_damaged()
        frame = pl.concat(frames, how="vertical")
        return frame.unique(subset="config_hash", keep="first", maintain_order=True)


def open_store(path: str | os.PathLike) -> tuple[SweepSpec, ResultStore]:
    """An existing sweep folder (for ``nascsim report``): its spec and store."""
    p = Path(path)
    if not (p / SWEEP_FILE).exists():
        raise FileNotFoundError(f"{str(p)!r} is not a sweep folder (no {SWEEP_FILE})")
    check_store_tree(p)
    return read_spec(p / SWEEP_FILE), ResultStore(p)


def read_runs(path: str | os.PathLike):
    """The rows of a sweep folder (its store: damaged chunks skipped and reported, see
    :meth:`ResultStore.read`; its ``runs/`` folder will do) or of one parquet file (``ValueError``
    in one line when the file cannot be read, e.g. a half-written chunk)."""
    import polars as pl

    p = Path(path)
    if p.is_dir():
        if p.name == RUNS_DIR and (p.parent / SWEEP_FILE).exists():
            p = p.parent
        return open_store(p)[1].read()
    raw = read_regular_bytes(p, "result file")
    from nascsim.limits import MAX_STORE_ROWS, check_parquet

    check_parquet(p, "result file", MAX_STORE_ROWS)
    try:
        return pl.read_parquet(io.BytesIO(raw))
    except Exception as exc:  # noqa: BLE001 - any failure to read: one line naming the file
        raise ValueError(f"{str(p)!r} is not a readable parquet file (damaged or half-written?): "
                         f"{type(exc).__name__}") from None
