"""Stated limits: how big an input or a job may be, and the checks that enforce them before
anything is allocated, read or run (docs/limits.md lists each limit and what happens beyond it).

Sizes are checked where they are cheap to know: a count from the command line before its arrays
exist, a parquet file's row count and uncompressed size from its footer before its columns are
read (:func:`check_parquet`), a search's or a sweep's work (samples judged, steps x λ per search)
before it starts (:func:`check_work`). Each check raises ``ValueError`` with one line naming the
value and the limit; the work check can be lifted with ``force`` up to a hard ceiling.

Text read from files (model cards, names in stored rows) goes through :func:`printable` before it
reaches a terminal, so no control character read from a file is ever printed.
"""

from __future__ import annotations

import math
import os

from nascsim.core.schedule import DEFAULT_STEPS

# -- work --------------------------------------------------------------------------------------------
# Measured: the numba engine judges about 1e6 ASNG samples per CPU-second (0.9-1.3e6 for λ = 2..64
# on the shipped surrogate, one core of the development machine); the estimates print with it.
SAMPLES_PER_S = 1_000_000
MAX_SEARCH_SAMPLES = 20_000_000  # steps x λ of one search without force: ~20 s, 284 x the paper's 70,380
MAX_SWEEP_SAMPLES = 4_000_000_000  # Σ steps x λ over a sweep's searches without force: ~1 CPU-hour

# -- counts of the torch stage -------------------------------------------------------------------------
MAX_THREADS = 256  # torch CPU threads; more than any machine's cores only adds overhead
MAX_EVAL_PAIRS = 1_000_000  # pairs of one evaluation design (default 20,000)
MAX_EVAL_ROWS = 5_000_000  # rows of one evaluation file (pairs x loss rates x batches): ~2 GB while built
MAX_NOISE_BATCHES = 10_000
MAX_IMAGES = 10_000_000  # image counts (held-out, training cap, batch, minibatch)
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 65_536
MAX_LAMBDA_X = 64  # (arch, split) paths per training minibatch (paper: 2); each runs the whole batch,
# so λ_x x batch size is at most MAX_BATCH_SIZE rows of activations
MAX_MONITOR_PAIRS = 10_000  # subnets evaluated after each training epoch (default 8)
MAX_ROWS_PER_CALL = 10_000_000  # rows (images x p x pairs) stacked by one evaluation call
MAX_SECONDS = 30 * 24 * 3600.0  # a time budget or interval: 30 days
MAX_TOP = 1000  # candidates re-trained by ``confirm``
MAX_SEED = 2**63 - 1

def check_search_work(steps: int | None, lam: int, force: bool, how: str = "--force (force=True)") -> None:
    """One search's steps x λ against :data:`MAX_SEARCH_SAMPLES` (None steps: the paper's)."""
    steps = DEFAULT_STEPS if steps is None else steps
    check_work(steps * lam, MAX_SEARCH_SAMPLES, force, f"a search of {steps:,} steps x λ = {lam}", how)


def check_sweep_work(grids, pending: int, total: int, force: bool, how: str = "--force (force=True)") -> int:
    """A sweep's work: each search against :data:`MAX_SEARCH_SAMPLES`, and the samples of its
    ``pending`` runs (of ``total``; :meth:`nascsim.sweep.grid.Grid.samples` scaled by
    ``pending / total``) against :data:`MAX_SWEEP_SAMPLES`. Returns the estimate."""
    for g in grids:
        d = g.as_dict
        check_search_work(max(DEFAULT_STEPS if s is None else s for s in d["steps"]), max(d["lam"]), force, how)
    samples = sum(g.samples() for g in grids) * pending // max(1, total)
    check_work(samples, MAX_SWEEP_SAMPLES, force, f"the sweep's {pending:,} pending runs", how)
    return samples


# -- files ----------------------------------------------------------------------------------------------
MAX_EVAL_FILE_ROWS = MAX_EVAL_ROWS
MAX_PARQUET_BYTES = 2 * 2**30  # uncompressed column data of one parquet file read whole
MAX_CHUNK_ROWS = 100_000  # rows of one result-store chunk (a sweep commits at most 64 per chunk)
MAX_CHUNK_BYTES = 256 * 2**20
MAX_STORE_ROWS = 4_000_000  # rows of a whole result store read at once (2 x the largest sweep)
_MAX_COLUMNS = 10_000
_MAX_ROW_GROUPS = 1_000_000


def check_count(name: str, value, low: int, high: int) -> int:
    """``value`` as an int in [low, high] (``ValueError`` naming ``name`` otherwise)."""
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer in [{low:,}, {high:,}], got {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low:,}, {high:,}], got {value:,}")
    return value


def check_number(name: str, value, low: float, high: float, low_open: bool = False) -> float:
    """``value`` as a finite float in [low, high] (``(low, high]`` with ``low_open``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        raise ValueError(f"{name} must be a number in {'(' if low_open else '['}{low:g}, {high:g}], got {value!r}")
    return float(value)


# -- work ---------------------------------------------------------------------------------------------

def duration_text(samples: float) -> str:
    """``samples`` as CPU time at :data:`SAMPLES_PER_S` (e.g. ``"about 2.8 CPU-hours"``)."""
    s = samples / SAMPLES_PER_S
    if s < 120:
        return f"about {s:.0f} CPU-seconds"
    if s < 7200:
        return f"about {s / 60:.0f} CPU-minutes"
    if s < 2 * 86400:
        return f"about {s / 3600:.1f} CPU-hours"
    return f"about {s / 86400:,.0f} CPU-days"


def check_work(samples: float, cap: float, force: bool, what: str, how: str = "--force (force=True)") -> None:
    """Refuse ``samples`` (ASNG samples judged: steps x λ summed over searches) beyond ``cap``
    unless ``force``, printing the estimate."""
    if samples > cap and not force:
        raise ValueError(f"{what} judges {samples:,.0f} samples, {duration_text(samples)} at ~{SAMPLES_PER_S:,} "
                         f"samples/s, more than the {cap:,.0f} run without {how}; pass {how} to run it anyway")


# -- files --------------------------------------------------------------------------------------------

def parquet_size(path: str | os.PathLike) -> tuple[int, int]:
    """(rows, uncompressed bytes of column data) of a parquet file, from its footer only.
    ``ValueError`` when the footer cannot be read or is implausible."""
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as f:
            md = f.metadata
            n_groups, n_cols = md.num_row_groups, md.num_columns
            if not (0 <= n_groups <= _MAX_ROW_GROUPS and 0 <= n_cols <= _MAX_COLUMNS):
                raise ValueError(f"{n_groups} row groups of {n_cols} columns")
            rows, nbytes = 0, 0
            for g in range(n_groups):
                rg = md.row_group(g)
                if rg.num_rows < 0:
                    raise ValueError("a negative row count")
                rows += rg.num_rows
                nbytes += sum(max(0, rg.column(c).total_uncompressed_size) for c in range(n_cols))
            rows = max(rows, md.num_rows)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for garbage footers
        raise UnreadableParquet(f"{str(path)!r} is not a readable parquet file ({_why(exc)})",
                                type(exc).__name__) from None
    return rows, nbytes


class UnreadableParquet(ValueError):
    """A file whose parquet footer cannot be read; ``kind`` names the reader's error type."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return printable(text[0])[:120] if text else type(exc).__name__


def check_parquet(path: str | os.PathLike, what: str, max_rows: int, max_bytes: int = MAX_PARQUET_BYTES) -> int:
    """The row count of parquet file ``path`` when it holds at most ``max_rows`` rows and
    ``max_bytes`` of uncompressed column data (read from the footer, before any column);
    ``ValueError`` naming the file and the limit otherwise."""
    rows, nbytes = parquet_size(path)
    if rows > max_rows:
        raise ValueError(f"{what} {str(path)!r} holds {rows:,} rows, more than the {max_rows:,} nascsim reads")
    if nbytes > max_bytes:
        raise ValueError(f"{what} {str(path)!r} holds {nbytes / 2**20:,.0f} MiB of column data uncompressed, "
                         f"more than the {max_bytes / 2**20:,.0f} MiB nascsim reads")
    return rows


# -- text -----------------------------------------------------------------------------------------------

def printable(text) -> str:
    """``text`` with every non-printable character (control characters, escape sequences, line
    breaks) written as a Python escape (``\\x1b``), so text read from a file prints as one
    harmless line; printable Unicode passes unchanged."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def printable_lines(text: str) -> str:
    """Like :func:`printable` for a block of lines: line breaks kept, every other non-printable
    character escaped."""
    return "\n".join(printable(line) for line in str(text).split("\n"))
