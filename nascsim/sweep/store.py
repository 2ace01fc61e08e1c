"""A sweep's result store: ``sweep.toml`` (what was asked) and ``runs/`` (what came back).

Layout of an output folder::

    DIR/sweep.toml                      the command, the grid (every field's values), the surrogate
    DIR/runs/chunk-<ns>-<pid>-<n>.parquet  one row per finished run, several runs per chunk
    DIR/summary.csv, comparison.csv, summary.txt, plots/   written by the report

Each chunk is written to a temporary file in ``runs/`` and renamed into place (``os.replace``),
so a reader sees whole chunks or nothing, and a sweep killed at any moment (kill -9 included)
loses only runs whose chunk was not yet committed. Every row carries ``config_hash``
(:meth:`SearchConfig.content_hash`); re-running the same sweep skips the hashes already stored.

A folder whose ``sweep.toml`` describes a different grid or surrogate is refused with a
``ValueError`` before anything is written.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
import tomllib
from dataclasses import dataclass
from itertools import count
from pathlib import Path

from nascsim import __version__
from nascsim.config import SearchConfig
from nascsim.atomic import atomic_write_bytes
from nascsim.sweep.grid import FIELD_KINDS, FIELD_NAMES, Grid

SWEEP_FILE = "sweep.toml"
RUNS_DIR = "runs"
CHUNK_GLOB = "chunk-*.parquet"


@dataclass(frozen=True)
class SweepSpec:
    """What identifies a sweep: its grid and the surrogate it runs on. ``surrogate`` is the path
    given on the command line (absolute) or ``"default"``; ``command`` is kept for the record."""

    grid: Grid
    surrogate: str
    surrogate_id: str
    command: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        import hashlib

        blob = json.dumps({"grid": self.grid.to_toml_dict(), "surrogate_id": self.surrogate_id},
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


def spec_to_toml(spec: SweepSpec) -> str:
    lines = [
        "# A nascsim sweep. Replay it with: nascsim sweep --config sweep.toml",
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
    ]
    lines += [f"{name} = {_toml_value(vals)}" for name, vals in spec.grid.to_toml_dict().items()]
    return "\n".join(lines) + "\n"


def read_spec(path: str | os.PathLike) -> SweepSpec:
    """The sweep recorded in a ``sweep.toml`` (``ValueError`` when it is not one)."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no sweep file at {str(p)!r}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(p)!r} is not a sweep file: {exc}") from None
    try:
        grid = Grid.from_toml_dict(doc["grid"])
        surrogate, surrogate_id = doc["surrogate"]["path"], doc["surrogate"]["id"]
    except KeyError as exc:
        raise ValueError(f"{str(p)!r} is not a sweep file: missing {exc}") from None
    return SweepSpec(grid, surrogate, surrogate_id, tuple(doc.get("command", ())))


def _differences(a: SweepSpec, b: SweepSpec) -> str:
    da, db = a.grid.to_toml_dict(), b.grid.to_toml_dict()
    diffs = [f"{n} {_short(da[n])} vs {_short(db[n])}" for n in FIELD_NAMES if da[n] != db[n]]
    if a.surrogate_id != b.surrogate_id:
        diffs.append(f"surrogate {a.surrogate_id} vs {b.surrogate_id}")
    return "; ".join(diffs)


def _short(vals: list) -> str:
    text = ",".join(str(v) for v in vals)
    return text if len(text) <= 40 else text[:37] + "..."


def check_out_dir(out: str | os.PathLike, spec: SweepSpec) -> bool:
    """Whether ``out`` can take ``spec`` (raises ``ValueError`` when it holds a different sweep or
    other files). Returns True when it already holds this sweep (a resume). Writes nothing."""
    out = Path(out)
    if not out.exists():
        return False
    if not out.is_dir():
        raise ValueError(f"output path {str(out)!r} exists and is not a folder")
    sweep_file = out / SWEEP_FILE
    if not sweep_file.exists():
        if any(out.iterdir()):
            raise ValueError(f"output folder {str(out)!r} is not empty and holds no {SWEEP_FILE}; choose another --out")
        return False
    stored = read_spec(sweep_file)
    if stored.fingerprint() != spec.fingerprint():
        raise ValueError(f"output folder {str(out)!r} holds a different sweep ({_differences(stored, spec)}); "
                         "choose another --out")
    return True


# -- rows and chunks ------------------------------------------------------------------------------

def _polars_dtype(kind: str):
    import polars as pl

    return {"str": pl.String, "str?": pl.String, "float": pl.Float64, "int": pl.Int64, "int?": pl.Int64,
            "bool": pl.Boolean, "floats": pl.List(pl.Float64)}[kind]


RESULT_DTYPES = {  # columns every search record has (see nascsim.methods.run_search)
    "arch": "List[str]", "split": "int", "T_head_ms": "float", "T_comm_ms": "float", "T_tail_ms": "float",
    "T_ms": "float", "feasible": "bool", "accuracy": "float", "surrogate": "str", "dataset": "str",
    "wall_s": "float", "config_hash": "str", "nascsim_version": "str",
}


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


def rows_frame(rows: list[dict]):
    """Polars frame of rows with the config columns typed from SearchConfig (so chunks agree)."""
    import polars as pl

    schema = {name: _polars_dtype(kind) for name, kind in FIELD_KINDS.items()}
    columns = list(dict.fromkeys(k for r in rows for k in r))
    data = {c: [r.get(c) for r in rows] for c in columns}
    frame = pl.DataFrame({c: pl.Series(c, data[c], dtype=schema.get(c), strict=False) for c in columns})
    return frame


class ResultStore:
    """The ``runs/`` folder of a sweep: commit chunks of rows, list finished hashes, read all."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.runs = self.root / RUNS_DIR
        self._n = count()

    @classmethod
    def create(cls, out: str | os.PathLike, spec: SweepSpec) -> "ResultStore":
        """Open ``out`` for ``spec`` (after :func:`check_out_dir`): create it and write
        ``sweep.toml`` on a fresh start, keep both on a resume; remove stale temporary files."""
        resume = check_out_dir(out, spec)
        store = cls(out)
        store.runs.mkdir(parents=True, exist_ok=True)
        if not resume:
            atomic_write_bytes(spec_to_toml(spec).encode(), store.root / SWEEP_FILE)
        for stale in store.runs.glob(".chunk-*.tmp"):
            stale.unlink(missing_ok=True)
        return store

    def chunks(self) -> list[Path]:
        return sorted(self.runs.glob(CHUNK_GLOB))

    def commit(self, rows: list[dict]) -> Path | None:
        """Write ``rows`` as one new chunk, atomically. Returns its path (None for no rows)."""
        if not rows:
            return None
        buf = io.BytesIO()
        rows_frame(rows).write_parquet(buf)
        target = self.runs / f"chunk-{time.time_ns():020d}-{os.getpid()}-{next(self._n):06d}.parquet"
        atomic_write_bytes(buf.getvalue(), target)
        return target

    def done_hashes(self) -> set[str]:
        import polars as pl

        done: set[str] = set()
        for c in self.chunks():
            done.update(pl.read_parquet(c, columns=["config_hash"])["config_hash"].to_list())
        return done

    def read(self):
        """All stored rows (one per config hash, first committed wins), as a polars frame."""
        import polars as pl

        frames = [pl.read_parquet(c) for c in self.chunks()]
        if not frames:
            raise ValueError(f"result store {str(self.root)!r} holds no finished runs")
        frame = pl.concat(frames, how="diagonal_relaxed")
        # config fields first, in SearchConfig order, then result columns by name: the column
        # order must not depend on which method happened to come first in a chunk
        config_cols = [c for c in FIELD_KINDS if c in frame.columns]
        rest = sorted(c for c in frame.columns if c not in FIELD_KINDS)
        frame = frame.select(config_cols + rest)
        return frame.unique(subset="config_hash", keep="first", maintain_order=True)


def open_store(path: str | os.PathLike) -> tuple[SweepSpec, ResultStore]:
    """An existing sweep folder (for ``nascsim report``): its spec and store."""
    p = Path(path)
    if not (p / SWEEP_FILE).exists():
        raise FileNotFoundError(f"{str(p)!r} is not a sweep folder (no {SWEEP_FILE})")
    return read_spec(p / SWEEP_FILE), ResultStore(p)
