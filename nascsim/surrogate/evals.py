"""Read and validate supernet evaluation files (one row per (a, k, p) on one minibatch).

Schema (shared with :mod:`nascsim.train`; docs/surrogate.md documents it):
``pair``, ``op00``..``op21``, ``split``, ``p``, ``batch``, ``repeat``, ``loss``, ``acc`` (required),
``supernet``, ``arch``, ``n_images``, ``dataset``, ``seed``, ``lowvar``, ``design`` (optional). The
parquet schema metadata key ``nascsim_supernet`` holds the supernet's training record (dataset,
space, classes, split_dropout_train, epochs, ...).

``design`` says which experiment a row belongs to: "main" (single-batch pairs; the
trees are fitted on these rows only), "lowvar" (whole held-out split; honest test targets of the
report) and "noise" (the crossed minibatch-noise set; it feeds the noise model only). A file without
``design`` reads as "lowvar" where ``lowvar`` is true, else "main".
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from nascsim.safe_load import MAX_CLASSES, need_float, need_int, need_str
from nascsim.space import N_LAYERS, Space, get_space
from nascsim.surrogate.validate import check_name

OP_COLUMNS = tuple(f"op{i:02d}" for i in range(N_LAYERS))
REQUIRED = ("pair",) + OP_COLUMNS + ("split", "p", "batch", "repeat", "loss", "acc")
INTEGER_COLUMNS = ("pair",) + OP_COLUMNS + ("split", "batch", "repeat")
META_KEY = "nascsim_supernet"
DESIGNS = ("main", "lowvar", "noise")
MAX_LOSS = 50.0  # nats: a cross-entropy beyond it is a diverged or corrupted evaluation (ln 100,000 classes = 11.5)


@dataclass(frozen=True)
class Evaluations:
    """Validated evaluations, split by ``design``: ``rows`` (the "main" single-batch rows the trees
    are fitted on), ``lowvar`` (rows evaluated on the whole held-out split; may be empty), ``noise``
    (the crossed minibatch-noise set; may be empty), the supernet record ``meta`` and the fields a
    surrogate needs. Every frame keeps a ``design`` column."""

    rows: pl.DataFrame
    lowvar: pl.DataFrame
    meta: dict
    id: str
    space: Space
    dataset: str
    classes: int
    split_dropout_train: float
    source: str
    noise: pl.DataFrame | None = None

    def __post_init__(self):
        if self.noise is None:
            object.__setattr__(self, "noise", self.rows.clear())

    def archs(self, frame: pl.DataFrame) -> np.ndarray:
        return np.ascontiguousarray(frame.select(OP_COLUMNS).to_numpy(), dtype=np.int64)


def read_metadata(path: str | os.PathLike, raw: bytes | None = None) -> dict:
    """The ``nascsim_supernet`` JSON of a parquet file's schema metadata ({} when absent), read
    from ``raw`` (the file's bytes) when given; it must be a JSON object nested at most
    :data:`nascsim.safe_load.MAX_DEPTH` levels."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nascsim.safe_load import StructureError, loads_json, need_dict

    md = pq.read_schema(pa.BufferReader(raw) if raw is not None else path).metadata or {}
    raw = md.get(META_KEY.encode())
    if raw is None:
        return {}
    where = f"{path}: schema metadata {META_KEY!r}"
    try:
        return dict(need_dict(loads_json(raw, where), where))
    except StructureError as exc:
        raise ValueError(str(exc)) from None


def load_evaluations(
    evals: str | os.PathLike | pl.DataFrame,
    *,
    meta: dict | None = None,
    id: str | None = None,
    space: str | None = None,
    dataset: str | None = None,
    classes: int | None = None,
    split_dropout_train: float | None = None,
) -> Evaluations:
    """Read (a parquet path) or take (a polars frame) evaluations and check them.

    Keyword arguments override the supernet record. ``id`` defaults to the record's ``id``, else
    the file name without extension; it must be a safe name
    (:func:`nascsim.surrogate.validate.check_name`). Any problem raises ``ValueError`` naming the
    bad value.
    """
    if isinstance(evals, pl.DataFrame):
        frame, record, source = evals, dict(meta or {}), "evaluation frame"
        stem = None
    else:
        from nascsim.atomic import read_regular_bytes

        path = Path(evals)
        if not path.exists():
            raise FileNotFoundError(f"evaluation file {str(path)!r} not found")
        source = str(path)
        raw = read_regular_bytes(path, "evaluation file")  # a FIFO or device: refused, never waited on
        from nascsim.limits import MAX_EVAL_FILE_ROWS, UnreadableParquet, check_parquet

        try:
            check_parquet(path, "evaluation file", MAX_EVAL_FILE_ROWS)  # the footer, before any column
        except UnreadableParquet as exc:
            raise ValueError(f"cannot read evaluation file {source!r}: {exc.kind}") from None
        try:
            frame = pl.read_parquet(io.BytesIO(raw))
            record = read_metadata(path, raw)
        except ValueError:
            raise
        except Exception as exc:  # polars and pyarrow raise several error types for unreadable files
            raise ValueError(f"cannot read evaluation file {source!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        record.update(meta or {})
        stem = path.name.removesuffix(".parquet")

    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)}")
    if frame.height == 0:
        raise ValueError(f"{source}: no rows")
    for c in REQUIRED:
        col = frame[c]
        if not col.dtype.is_numeric():
            raise ValueError(f"{source}: column {c!r} has type {col.dtype}, expected a number")
        n_bad = col.null_count() + (int(col.is_nan().sum()) if col.dtype.is_float() else 0)
        if n_bad:
            raise ValueError(f"{source}: column {c!r} has {n_bad} missing/NaN value(s)")
        if not np.isfinite(col.cast(pl.Float64).to_numpy()).all():
            raise ValueError(f"{source}: column {c!r} has infinite value(s)")
    for c in INTEGER_COLUMNS:
        col = frame[c]
        if col.dtype.is_float() and not (col == col.round(0)).all():
            bad = col.filter(col != col.round(0))[0]
            raise ValueError(f"{source}: column {c!r} holds {bad}, not an integer")
    if "n_images" in frame.columns:
        col = frame["n_images"]
        if not col.dtype.is_integer() or col.null_count() or col.min() < 1:
            raise ValueError(f"{source}: column 'n_images' must hold positive integers (type {col.dtype}, min {col.min()})")
    design = _design_column(frame, source)

    if "supernet" in frame.columns and frame["supernet"].n_unique() > 1:
        names = sorted(str(x) for x in frame["supernet"].unique().to_list())
        raise ValueError(f"{source}: rows of several supernets ({', '.join(names[:4])}); fit one surrogate per supernet")

    sp_name = space if space is not None else record.get("space")
    if sp_name is None:
        raise ValueError(f"{source}: search space unknown (no 'space' in the {META_KEY} metadata); pass it explicitly")
    try:
        sp = get_space(need_str(sp_name, f"{source}: space", 64))
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}" if source not in str(exc) else str(exc)) from None

    for c in OP_COLUMNS:
        col = frame[c]
        lo, hi = col.min(), col.max()
        if lo < 0 or hi >= sp.n_ops or (col.dtype.is_float() and not (col == col.round(0)).all()):
            bad = lo if lo < 0 else hi
            raise ValueError(f"{source}: column {c!r} holds op index {bad}, out of range 0..{sp.n_ops - 1} for the {sp.name} space")
    lo, hi = frame["split"].min(), frame["split"].max()
    if lo < 0 or hi > sp.n_layers:
        raise ValueError(f"{source}: split {lo if lo < 0 else hi} is out of range 0..{sp.n_layers}")
    lo, hi = frame["p"].min(), frame["p"].max()
    if lo < 0 or hi >= 1:
        raise ValueError(f"{source}: dropout rate p {lo if lo < 0 else hi} is out of range [0, 1)")
    lo, hi = frame["acc"].min(), frame["acc"].max()
    if lo < 0 or hi > 1:
        raise ValueError(f"{source}: accuracy {lo if lo < 0 else hi} is out of range [0, 1]")
    lo, hi = frame["loss"].min(), frame["loss"].max()
    if lo < 0 or hi > MAX_LOSS or not np.isfinite(frame["loss"].to_numpy()).all():
        raise ValueError(f"{source}: loss {lo if lo < 0 else hi} is out of range [0, {MAX_LOSS:g}] (nats)")

    ds = dataset if dataset is not None else record.get("dataset")
    if ds is None and "dataset" in frame.columns:
        ds = frame["dataset"][0]
    if ds is None:
        raise ValueError(f"{source}: dataset unknown (no 'dataset' column or metadata); pass it explicitly")
    ds = need_str(ds, f"{source}: dataset", 200)
    n_classes = classes if classes is not None else record.get("classes")
    if n_classes is None:
        raise ValueError(f"{source}: number of classes unknown; pass it explicitly")
    n_classes = need_int(n_classes, f"{source}: number of classes", 2, MAX_CLASSES)
    sdt = split_dropout_train if split_dropout_train is not None else record.get("split_dropout_train")
    if sdt is None:
        raise ValueError(f"{source}: split_dropout_train unknown; pass it explicitly")
    sdt = need_float(sdt, f"{source}: split_dropout_train", 0.0, 1.0)
    if sdt >= 1:
        raise ValueError(f"{source}: split_dropout_train {sdt!r} is out of range [0, 1)")
    sid = id if id is not None else record.get("id", stem)
    if not sid:
        raise ValueError(f"{source}: surrogate id unknown (a frame has no file name); pass it explicitly")
    check_name(need_str(sid, f"{source}: surrogate id", 200), f"{source}: surrogate id")

    frame = frame.with_columns(
        pl.col(list(INTEGER_COLUMNS)).cast(pl.Int64), pl.col("p", "loss", "acc").cast(pl.Float64), design.alias("design")
    )
    rows, lowvar, noise = (frame.filter(pl.col("design") == d) for d in DESIGNS)
    if rows.height == 0:
        raise ValueError(f"{source}: no \"main\" (single-batch) rows to fit on (designs present: {', '.join(sorted(set(design.to_list())))})")
    record = dict(record)
    record.setdefault("space", sp.name)
    return Evaluations(rows, lowvar, record, str(sid), sp, str(ds), int(n_classes), float(sdt), source, noise)


def _design_column(frame: pl.DataFrame, source: str) -> pl.Series:
    """The ``design`` of every row: the column itself, checked against ``lowvar``,
    or, without it, "lowvar" where ``lowvar`` is true and "main" elsewhere."""
    lowmask = None
    if "lowvar" in frame.columns:
        col = frame["lowvar"]
        if col.dtype != pl.Boolean or col.null_count():
            raise ValueError(f"{source}: column 'lowvar' must hold true/false without nulls (type {col.dtype}, {col.null_count()} null)")
        lowmask = col
    if "design" not in frame.columns:
        if lowmask is None:
            return pl.Series("design", ["main"] * frame.height, dtype=pl.String)
        return pl.Series("design", np.where(lowmask.to_numpy(), "lowvar", "main"), dtype=pl.String)
    design = frame["design"]
    if design.dtype not in (pl.String, pl.Categorical, pl.Enum) or design.null_count():
        raise ValueError(f"{source}: column 'design' must hold strings {', '.join(DESIGNS)} without nulls (type {design.dtype}, {design.null_count()} null)")
    design = design.cast(pl.String)
    bad = design.filter(~design.is_in(DESIGNS))
    if bad.len():
        raise ValueError(f"{source}: column 'design' holds {bad[0]!r}; expected one of {', '.join(DESIGNS)}")
    if lowmask is not None:
        clash = (design == "lowvar") != lowmask
        if clash.any():
            i = int(np.flatnonzero(clash.to_numpy())[0])
            raise ValueError(f"{source}: row {i} has design {design[i]!r} but lowvar {'true' if lowmask[i] else 'false'}")
    return design


def lsc_table(frame: pl.DataFrame, loss_set: tuple[float, ...]) -> pl.DataFrame:
    """l_SC observations: per (pair, batch, repeat), the loss averaged over ``loss_set`` (eq. 4).

    Only groups holding every p of ``loss_set`` (to 1e-9) are kept. Columns: pair, batch, repeat,
    op00..op21, split, lsc.
    """
    grid = np.asarray(loss_set, dtype=np.float64)
    ps = frame["p"].to_numpy()
    idx = np.abs(ps[:, None] - grid[None, :]).argmin(axis=1)
    on_grid = np.abs(ps - grid[idx]) <= 1e-9
    f = frame.with_columns(pl.Series("_pi", idx)).filter(pl.Series(on_grid))
    keys = ["pair", "batch", "repeat"]
    g = (
        f.group_by(keys, maintain_order=True)
        .agg(
            [pl.col(c).first() for c in OP_COLUMNS]
            + [pl.col("split").first(), pl.col("_pi").n_unique().alias("_n"), pl.col("loss").mean().alias("lsc")]
        )
        .filter(pl.col("_n") == len(grid))
        .drop("_n")
        .sort(keys)
    )
    return g
