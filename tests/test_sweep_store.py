"""The result store: nothing written before the first commit, atomic chunks, one schema for every
chunk, resume by config hash, extension by more grids, refusal of other surrogates, damaged
chunks skipped and recomputed, and one writer at a time."""

import json

import polars as pl
import pytest

from nascsim.config import SearchConfig
from nascsim.sweep import store as store_mod
from nascsim.sweep.grid import Grid
from nascsim.sweep.run import pending_configs
from nascsim.sweep.store import (
    DAMAGED_DIR,
    ResultStore,
    StoreBusy,
    SweepSpec,
    check_out_dir,
    make_row,
    read_spec,
    spec_to_toml,
    store_schema,
)


def constructed_row(config: SearchConfig, **extra) -> dict:
    """A row as a finished run makes it (numbers made up from the config; no search)."""
    T = 20.0 + config.seed
    record = {"arch": ["skip"] * 22, "split": 3, "T_head_ms": T / 2, "T_comm_ms": T / 4, "T_tail_ms": T / 4,
              "T_ms": T, "feasible": T <= config.threshold_ms, "accuracy": 0.5, "surrogate": "s", "dataset": "d"}
    if config.method.startswith("hwnas"):
        record["dropout_distinguished"] = True
    if config.method != "random":
        record.update({"Delta": 1.5, "n_updates": 10, "theta_op_confidence": 0.4})
    record.update(extra)
    return make_row(config, record, 0.0)


def spec(surrogate_id="dropout=s;no_dropout=t", **grid) -> SweepSpec:
    g = Grid.build(**{"threshold_ms": "20,30", "method": "nasc,hwnas", "seed": range(3), **grid})
    return SweepSpec(g, "default", surrogate_id, ("nascsim", "sweep"))


def tree(path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(path)), p.stat().st_size if p.is_file() else -1) for p in path.rglob("*"))


def test_nothing_is_written_before_the_first_commit(tmp_path):
    s = spec()
    store = ResultStore.create(tmp_path / "out", s)
    store.lock()
    assert store.done_hashes() == set()
    assert not (tmp_path / "out").exists()
    store.commit([constructed_row(c) for c in s.grid.cells()][:2])
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"sweep.toml", "runs"}


def test_committed_chunks_hold_the_rows_and_no_temporary_file_remains(tmp_path):
    s = spec()
    store = ResultStore.create(tmp_path / "out", s)
    cells = list(s.grid.cells())
    store.commit([constructed_row(c) for c in cells[:5]])
    store.commit([constructed_row(c) for c in cells[5:]])
    assert len(store.chunks()) == 2
    frame = store.read()
    assert len(frame) == len(cells)
    assert set(frame["config_hash"]) == {c.content_hash() for c in cells}
    assert [p.name for p in store.runs.iterdir() if not p.name.startswith("chunk-")] == []
    assert list(store.partial.iterdir()) == []


def test_a_failed_commit_leaves_no_chunk_and_no_temporary_file(tmp_path, monkeypatch):
    s = spec()
    store = ResultStore.create(tmp_path / "out", s)
    rows = [constructed_row(c) for c in s.grid.cells()]
    store.commit(rows[:2])
    before = tree(tmp_path / "out")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(store_mod.os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.commit(rows[2:])
    monkeypatch.undo()
    assert tree(tmp_path / "out") == before


def test_resume_skips_the_runs_already_stored(tmp_path):
    s = spec()
    with ResultStore.create(tmp_path / "out", s) as store:
        cells = list(s.grid.cells())
        store.commit([constructed_row(c) for c in cells[:4]])
    again = ResultStore.create(tmp_path / "out", s)
    assert pending_configs(cells, again.done_hashes()) == cells[4:]


def test_rows_stored_twice_are_read_once(tmp_path):
    s = spec()
    store = ResultStore.create(tmp_path / "out", s)
    rows = [constructed_row(c) for c in s.grid.cells()]
    store.commit(rows[:3])
    store.commit(rows[:3])
    assert len(store.read()) == 3


def test_a_second_writer_is_refused_and_does_not_touch_the_first_ones_partial_files(tmp_path):
    s = spec()
    first = ResultStore.create(tmp_path / "out", s)
    first.commit([constructed_row(c) for c in s.grid.cells()][:2])
    live = first.partial / ".chunk-live.parquet.abc.tmp"  # a chunk the first writer is writing
    live.write_bytes(b"half a parquet file")
    second = ResultStore.create(tmp_path / "out", s)
    with pytest.raises(StoreBusy, match="another nascsim sweep is writing"):
        second.lock()
    with pytest.raises(StoreBusy):
        second.commit([constructed_row(c) for c in s.grid.cells()][2:])
    assert live.exists() and len(first.chunks()) == 1
    first.close()
    second.lock()  # the lock is free once the first writer has ended


def test_partial_files_of_a_dead_sweep_are_removed_by_the_next_writer(tmp_path):
    s = spec()
    with ResultStore.create(tmp_path / "out", s) as store:
        store.commit([constructed_row(c) for c in s.grid.cells()][:2])
        stale = store.partial / ".chunk-123.parquet.abc.tmp"
        stale.write_bytes(b"half a parquet file")
    again = ResultStore.create(tmp_path / "out", s)
    assert stale.exists()  # opening the store deletes nothing
    again.commit([constructed_row(c) for c in s.grid.cells()][2:3])
    assert not stale.exists()


def test_sweep_file_records_the_command_and_round_trips(tmp_path):
    s = spec(loss_set="0/0.5", steps="none,40", Delta_max="inf")
    ResultStore.create(tmp_path / "out", s).commit([constructed_row(next(s.grid.cells()))])
    back = read_spec(tmp_path / "out" / "sweep.toml")
    assert back.grid == s.grid
    assert back.fingerprint() == s.fingerprint()
    assert back.command == ("nascsim", "sweep")
    assert "nascsim sweep --config" in spec_to_toml(s)


def test_more_seeds_thresholds_and_methods_are_added_runs(tmp_path):
    out = tmp_path / "out"
    first = spec()
    with ResultStore.create(out, first) as store:
        store.commit([constructed_row(c) for c in first.grid.cells()])
    bigger = spec(seed=range(5), threshold_ms="20,30,40", method="nasc,hwnas,random")
    assert check_out_dir(out, bigger) is True
    with ResultStore.create(out, bigger) as store:
        todo = pending_configs(list(bigger.cells()), store.done_hashes())
        assert len(todo) == len(bigger.grid) - len(first.grid)
        store.commit([constructed_row(c) for c in todo])
        assert len(store.read()) == len(bigger.grid)
    recorded = read_spec(out / "sweep.toml")
    assert recorded.grids() == (first.grid, bigger.grid)
    assert len(list(recorded.cells())) == len(bigger.grid)  # the union, each run once


def test_a_folder_of_runs_on_other_surrogates_is_refused_saying_why_and_what_to_do(tmp_path):
    with ResultStore.create(tmp_path / "out", spec()) as store:
        store.commit([constructed_row(c) for c in spec().grid.cells()][:2])
    before = tree(tmp_path / "out")
    with pytest.raises(ValueError, match="other surrogates.*would mean other results.*choose another --out"):
        ResultStore.create(tmp_path / "out", spec(surrogate_id="dropout=x;no_dropout=y"))
    assert tree(tmp_path / "out") == before


def test_a_non_empty_folder_without_a_sweep_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no sweep.toml"):
        check_out_dir(tmp_path, spec())


def test_the_same_sweep_resumes_in_its_folder(tmp_path):
    assert check_out_dir(tmp_path / "out", spec()) is False
    ResultStore.create(tmp_path / "out", spec()).commit([constructed_row(next(spec().grid.cells()))])
    assert check_out_dir(tmp_path / "out", spec()) is True


def test_config_columns_keep_their_types_across_chunks(tmp_path):
    s = spec(steps="none,40")
    store = ResultStore.create(tmp_path / "out", s)
    cells = list(s.grid.cells())
    store.commit([constructed_row(c) for c in cells if c.steps is None])
    store.commit([constructed_row(c) for c in cells if c.steps == 40])
    frame = store.read()
    assert frame.schema["steps"] == pl.Int64 and frame.schema["loss_set"] == pl.List(pl.Float64)
    assert sorted(frame["steps"].to_list(), key=lambda v: -1 if v is None else v)[0] is None


# -- one schema ----------------------------------------------------------------------------------

def mixed_store(path):
    """Chunks of nasc only, hwnas only and random only (each with its own record fields), and one
    with a record field outside the schema."""
    s = spec(method="nasc,hwnas,random")
    store = ResultStore.create(path, s)
    cells = list(s.grid.cells())
    for method in ("nasc", "hwnas", "random"):
        store.commit([constructed_row(c) for c in cells if c.method == method and c.seed < 2])
    store.commit([constructed_row(c, my_score=[1, 2]) for c in cells if c.seed == 2])
    return store, cells


def test_every_chunk_has_the_same_columns_and_types(tmp_path):
    store, _ = mixed_store(tmp_path / "out")
    schemas = {tuple(pl.read_parquet_schema(c).items()) for c in store.chunks()}
    assert len(schemas) == 1
    assert dict(next(iter(schemas))) == store_schema()


def test_a_mixed_store_reads_whole_with_polars_pyarrow_and_pandas(tmp_path):
    store, cells = mixed_store(tmp_path / "out")
    with_polars = pl.read_parquet(store.runs)
    assert len(with_polars) == len(cells)
    assert with_polars.schema == pl.Schema(store_schema())
    hwnas = with_polars.filter(pl.col("method") == "hwnas")
    assert hwnas["dropout_distinguished"].to_list() == [True] * len(hwnas)
    assert with_polars.filter(pl.col("method") == "random")["Delta"].null_count() == len(hwnas)
    assert json.loads(with_polars.filter(pl.col("seed") == 2)["extra"][0]) == {"my_score": [1, 2]}

    import pyarrow.parquet as pq  # what pandas.read_parquet reads a folder with

    table = pq.read_table(store.runs)
    assert table.num_rows == len(cells) and "dropout_distinguished" in table.column_names
    pd = pytest.importorskip("pandas")
    frame = pd.read_parquet(store.runs)
    assert len(frame) == len(cells) and list(frame.columns) == list(store_schema())
    assert frame.loc[frame["method"] == "hwnas", "dropout_distinguished"].all()


def test_a_value_that_does_not_fit_its_column_is_refused_naming_it(tmp_path):
    s = spec()
    store = ResultStore.create(tmp_path / "out", s)
    with pytest.raises(ValueError, match="'split'"):
        store.commit([constructed_row(next(s.grid.cells()), split="three")])
    assert not (tmp_path / "out").exists()


# -- damaged chunks ------------------------------------------------------------------------------

def damage(store, how: str):
    """Replace the first chunk by a damaged copy."""
    chunk = store.chunks()[0]
    frame = pl.read_parquet(chunk)
    if how == "half-written":
        chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    elif how == "column missing":
        frame.drop("config_hash").write_parquet(chunk)
    elif how == "wrong type":
        frame.with_columns(pl.col("T_ms").cast(pl.String)).write_parquet(chunk)
    elif how == "bad value":
        frame.with_columns(pl.lit(float("nan")).alias("threshold_ms")).write_parquet(chunk)
    elif how == "not parquet":
        chunk.write_text("hello")
    return chunk


@pytest.mark.parametrize("how", ["half-written", "column missing", "wrong type", "bad value", "not parquet"])
def test_a_damaged_chunk_is_skipped_reported_in_one_line_and_recomputed(tmp_path, how):
    s = spec()
    cells = list(s.grid.cells())
    with ResultStore.create(tmp_path / "out", s) as store:
        store.commit([constructed_row(c) for c in cells[:4]])
        store.commit([constructed_row(c) for c in cells[4:]])
    lines = []
    reader = ResultStore(tmp_path / "out", on_damaged=lines.append)
    bad = damage(reader, how)
    frame = reader.read()
    assert len(frame) == len(cells) - 4 and set(frame["config_hash"]) == {c.content_hash() for c in cells[4:]}
    assert len(lines) == 1 and bad.name in lines[0] and "recomputes" in lines[0]

    resumed = ResultStore.create(tmp_path / "out", s)
    resumed.on_damaged = lines.append
    todo = pending_configs(cells, resumed.done_hashes())
    assert todo == cells[:4]
    resumed.commit([constructed_row(c) for c in todo])  # the first commit moves the damaged chunk aside
    assert (tmp_path / "out" / DAMAGED_DIR / bad.name).exists() and not bad.exists()
    assert len(resumed.read()) == len(cells) and len(lines) == 2


def test_a_store_of_damaged_chunks_only_has_no_runs(tmp_path):
    s = spec()
    with ResultStore.create(tmp_path / "out", s) as store:
        store.commit([constructed_row(c) for c in s.grid.cells()])
    reader = ResultStore(tmp_path / "out", on_damaged=lambda line: None)
    damage(reader, "half-written")
    with pytest.raises(ValueError, match="holds no finished runs"):
        reader.read()


@pytest.mark.parametrize("text, why", [
    ("grid = 3\n[surrogate]\npath = 'default'\nid = 'x'\n", "no \\[grid\\] table"),
    ("[grid]\nsteps = [1e300]\n[surrogate]\npath = 'default'\nid = 'x'\n", "steps"),
    ("[grid]\nloss_set = [0.1]\n[surrogate]\npath = 'default'\nid = 'x'\n", "loss_set"),
    ("[grid]\nthreshold_ms = [nan]\n[surrogate]\npath = 'default'\nid = 'x'\n", "threshold_ms"),
    ("[grid]\n[surrogate]\npath = 3\nid = 'x'\n", "surrogate"),
    ("[grid]\ncolour = ['red']\n[surrogate]\npath = 'default'\nid = 'x'\n", "colour"),
    ("[grid\n", "not a sweep file"),
])
def test_a_bad_sweep_file_is_refused_naming_why(tmp_path, text, why):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=why):
        read_spec(path)


def test_read_runs_reads_a_sweep_folder_skipping_damaged_chunks_and_refuses_a_damaged_file(tmp_path):
    from nascsim.sweep.store import read_runs

    s = spec()
    with ResultStore.create(tmp_path / "out", s) as store:
        store.commit([constructed_row(c) for c in list(s.grid.cells())[:4]])
        store.commit([constructed_row(c) for c in list(s.grid.cells())[4:]])
    bad = damage(ResultStore(tmp_path / "out"), "half-written")
    assert len(read_runs(tmp_path / "out")) == len(s.grid) - 4
    assert len(read_runs(tmp_path / "out" / "runs")) == len(s.grid) - 4
    with pytest.raises(ValueError, match="not a readable parquet file"):
        read_runs(bad)


def test_confirm_takes_a_sweep_folder_and_refuses_a_half_written_chunk_in_one_line(tmp_path):
    pytest.importorskip("torch")
    from nascsim.train.confirm import read_candidates

    s = spec()
    with ResultStore.create(tmp_path / "out", s) as store:
        store.commit([constructed_row(c) for c in list(s.grid.cells())[:4]])
        store.commit([constructed_row(c) for c in list(s.grid.cells())[4:]])
    bad = damage(ResultStore(tmp_path / "out"), "half-written")
    (cand,) = read_candidates(tmp_path / "out", "fbnet", top=3)  # one distinct (arch, split) in the rows
    assert cand["split"] == 3
    with pytest.raises(ValueError, match="not a readable parquet file") as info:
        read_candidates(bad, "fbnet", top=3)
    assert "\n" not in str(info.value)
