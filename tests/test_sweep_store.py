"""The result store: atomic chunks, resume by config hash, sweep.toml, refusing another sweep."""

import polars as pl
import pytest

from nascsim.config import SearchConfig
from nascsim.sweep import store as store_mod
from nascsim.sweep.grid import Grid
from nascsim.sweep.run import pending_configs
from nascsim.sweep.store import ResultStore, SweepSpec, check_out_dir, make_row, read_spec, spec_to_toml


def constructed_row(config: SearchConfig) -> dict:
    T = 20.0 + config.seed
    record = {"arch": ["skip"] * 22, "split": 3, "T_head_ms": T / 2, "T_comm_ms": T / 4, "T_tail_ms": T / 4,
              "T_ms": T, "feasible": T <= config.threshold_ms, "accuracy": 0.5, "surrogate": "s", "dataset": "d"}
    return make_row(config, record, 0.0)


def spec(**grid) -> SweepSpec:
    g = Grid.build(**{"threshold_ms": "20,30", "method": "nasc,hwnas", "seed": range(3), **grid})
    return SweepSpec(g, "default", "dropout=s;no_dropout=t", ("nascsim", "sweep"))


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
    assert not [p for p in store.runs.iterdir() if p.name.startswith(".")]


def test_a_failed_commit_leaves_no_chunk_and_no_temporary_file(tmp_path, monkeypatch):
    s = spec()
    store = ResultStore.create(tmp_path / "out", s)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(store_mod.os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.commit([constructed_row(c) for c in s.grid.cells()])
    assert list(store.runs.iterdir()) == []


def test_resume_skips_the_runs_already_stored(tmp_path):
    s = spec()
    store = ResultStore.create(tmp_path / "out", s)
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


def test_stale_temporary_files_are_removed_when_the_sweep_resumes(tmp_path):
    s = spec()
    store = ResultStore.create(tmp_path / "out", s)
    stale = store.runs / ".chunk-123.parquet.abc.tmp"
    stale.write_bytes(b"half a parquet file")
    ResultStore.create(tmp_path / "out", s)
    assert not stale.exists()


def test_sweep_file_records_the_command_and_round_trips(tmp_path):
    s = spec(loss_set="0/0.5", steps="none,40", Delta_max="inf")
    ResultStore.create(tmp_path / "out", s)
    back = read_spec(tmp_path / "out" / "sweep.toml")
    assert back.grid == s.grid
    assert back.fingerprint() == s.fingerprint()
    assert back.command == ("nascsim", "sweep")
    assert "nascsim sweep --config" in spec_to_toml(s)


def test_an_out_dir_holding_another_sweep_is_refused_naming_the_difference(tmp_path):
    ResultStore.create(tmp_path / "out", spec())
    before = sorted(p.name for p in (tmp_path / "out").rglob("*"))
    with pytest.raises(ValueError, match="different sweep.*seed"):
        check_out_dir(tmp_path / "out", spec(seed=range(4)))
    other_surrogate = SweepSpec(spec().grid, "default", "dropout=x;no_dropout=y")
    with pytest.raises(ValueError, match="surrogate"):
        ResultStore.create(tmp_path / "out", other_surrogate)
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == before


def test_a_non_empty_folder_without_a_sweep_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no sweep.toml"):
        check_out_dir(tmp_path, spec())


def test_the_same_sweep_resumes_in_its_folder(tmp_path):
    assert check_out_dir(tmp_path / "out", spec()) is False
    ResultStore.create(tmp_path / "out", spec())
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
