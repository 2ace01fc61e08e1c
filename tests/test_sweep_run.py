"""Executors: the same rows whatever runs them (in process, 2 local processes, a dask cluster).
The sweep's throughput is measured by the benchmark suite (benchmarks/)."""

import polars as pl
import pytest
from surrogate_fixtures import make_stand_in_surrogate

from nascsim.config import SearchConfig
from nascsim.sweep.grid import Grid
from nascsim.sweep.run import batch_size, execute
from nascsim.sweep.store import ResultStore, SweepSpec

STEPS = 200


@pytest.fixture(scope="module")
def surrogates():
    s = make_stand_in_surrogate("fbnet", 0)
    return {"fbnet": {"dropout": s, "no_dropout": s}}


def small_grid(seeds: int = 3, steps: int = STEPS) -> Grid:
    return Grid.build(threshold_ms="20,30", loss="0,0.3", method="nasc,hwnas,hwnas-dropout", seed=range(seeds),
                      steps=steps)


def run_into(path, grid, surrogates, **kw):
    store = ResultStore.create(path, SweepSpec(grid, "test", "stand-in"))
    n = execute(list(grid.cells()), store, surrogates, **kw)
    return n, store.read()


def comparable(frame: pl.DataFrame) -> pl.DataFrame:
    """Drop the timing columns (wall clock differs run to run); sort by config hash."""
    timing = [c for c in frame.columns if c.endswith("_s")]
    return frame.drop(timing).sort("config_hash")


def assert_same_runs(a: pl.DataFrame, b: pl.DataFrame) -> None:
    a, b = comparable(a), comparable(b)
    assert a.columns == b.columns and len(a) == len(b)
    differing = [c for c in a.columns if not a[c].equals(b[c])]
    assert differing == [], f"columns differ between executors: {differing}"


def test_results_are_identical_with_one_or_two_local_jobs(tmp_path, surrogates):
    grid = small_grid()
    n1, one = run_into(tmp_path / "one", grid, surrogates, jobs=1)
    n2, two = run_into(tmp_path / "two", grid, surrogates, jobs=2, size=5)
    assert n1 == n2 == len(grid) == len(one) == len(two)
    assert_same_runs(one, two)


def test_results_are_identical_on_a_dask_cluster(tmp_path, surrogates):
    distributed = pytest.importorskip("dask.distributed")
    grid = small_grid(seeds=2)
    _, local = run_into(tmp_path / "local", grid, surrogates, jobs=1)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        _, on_dask = run_into(tmp_path / "dask", grid, surrogates, executor="dask", address=cluster.scheduler_address,
                              size=4)
    assert_same_runs(local, on_dask)


def test_each_finished_batch_is_committed_as_one_chunk(tmp_path, surrogates):
    grid = small_grid(seeds=1)
    seen = []
    store = ResultStore.create(tmp_path / "out", SweepSpec(grid, "test", "stand-in"))
    execute(list(grid.cells()), store, surrogates, jobs=1, size=5, on_commit=seen.append)
    # 12 runs = 4 searches: per threshold nasc (2 loss rates) and hwnas with hwnas-dropout (2 x 2);
    # a batch takes whole searches up to 5 runs
    assert seen == [2, 4, 2, 4]
    assert len(store.chunks()) == 4


def test_runs_that_differ_only_in_what_the_search_ignores_share_one_search(tmp_path, surrogates):
    """Loss rates, hwnas vs hwnas-dropout, and thresholds below the lowest reachable latency."""
    from nascsim.methods import run_search, run_search_group

    calls = []

    def counting_search(configs, sur):
        calls.append(sorted({(c.method, c.threshold_ms, c.loss) for c in configs}))
        return run_search_group(configs, sur)

    grid = Grid.build(threshold_ms="5,10,30", loss="0,0.3", method="nasc,hwnas,hwnas-dropout", seed=range(1), steps=STEPS)
    store = ResultStore.create(tmp_path / "out", SweepSpec(grid, "test", "stand-in"))
    execute(list(grid.cells()), store, surrogates, jobs=1, search=counting_search)
    # nasc: 5 and 10 ms lie below the lowest reachable latency (15.45 ms): one search for both;
    # hwnas: the whole network on the Raspberry Pi takes at least 7.67 ms, so 5 ms alone is below
    assert len(calls) == 2 + 3
    frame = store.read()
    assert len(frame) == len(grid)
    for row in frame.iter_rows(named=True):
        alone = run_search(SearchConfig.from_dict({k: row[k] for k in SearchConfig.__dataclass_fields__}), surrogates["fbnet"])
        assert (row["arch_idx"], row["split"], row["accuracy"], row["feasible"]) == (alone["arch_idx"], alone["split"], alone["accuracy"], alone["feasible"])


def test_batches_shrink_so_that_every_worker_gets_several():
    assert batch_size(12_600, 2) == 64
    assert batch_size(96, 2) == 6
    assert batch_size(3, 8) == 1


def test_unreachable_dask_scheduler_is_a_clear_error(tmp_path, surrogates):
    grid = small_grid(seeds=1)
    store = ResultStore.create(tmp_path / "out", SweepSpec(grid, "test", "stand-in"))
    with pytest.raises(ValueError, match="127.0.0.1:9"):
        execute(list(grid.cells()), store, surrogates, executor="dask", address="tcp://127.0.0.1:9",
                connect_timeout="1s")
