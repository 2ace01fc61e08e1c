"""nascsim.load: the results handle of a sweep or bench folder, a frame or records.

Specification: the handle's tables are the sweep summary's own functions on the stored runs; its
Pareto front holds exactly the non-dominated runs; every figure the report writes is one
``figure(name)`` of the handle, returned as a matplotlib Figure, and ``nascsim report`` writes the
same files through it.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from surrogate_fixtures import make_stand_in_surrogate

import nascsim
from nascsim.cli import cli
from nascsim.sweep.summary import compare, summarize


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("handle") / "sweep"
    nascsim.sweep(thresholds=[20, 30], losses=[0, 0.2], methods=["nasc", "random"], seeds=3, steps=30,
                  surrogate=make_stand_in_surrogate("fbnet", 0), out=out, jobs=1)
    return out


def test_load_of_a_folder_gives_the_stored_runs_and_their_tables(sweep_dir):
    res = nascsim.load(sweep_dir)
    assert res.runs.height == 2 * 2 * 2 * 3 and res.methods == ["nasc", "random"]
    assert res.summary().equals(summarize(res.runs))
    assert res.compare().equals(compare(res.runs)) and set(res.compare(baseline="random")["baseline"]) == {"random"}
    assert nascsim.load(res.runs).runs.equals(res.runs)  # a frame (e.g. nascsim.sweep's) works too
    assert nascsim.load(res.runs.to_pandas()).runs.height == res.runs.height
    with pytest.raises(ValueError, match="hwnas"):
        res.compare(baseline="hwnas")


def test_pareto_is_the_set_of_non_dominated_runs(sweep_dir):
    res = nascsim.load(sweep_dir)
    runs = res.runs.filter((res.runs["method"] == "nasc") & (res.runs["loss"] == 0.2))
    front = res.pareto("nasc", p=0.2)
    T, acc = runs["T_ms"].to_numpy(), runs["accuracy"].to_numpy()
    dominated = [bool(np.any((T <= t) & (acc >= a) & ((T < t) | (acc > a)))) for t, a in zip(T, acc)]
    expect = set(zip(T[~np.array(dominated)].tolist(), acc[~np.array(dominated)].tolist()))  # equal runs: one point
    assert set(zip(front["T_ms"].to_list(), front["accuracy"].to_list())) == expect == set(front.select("T_ms", "accuracy").rows())
    assert front.height == len(expect)
    assert front["T_ms"].is_sorted()


def test_every_figure_of_the_report_is_a_figure_of_the_handle(sweep_dir, tmp_path):
    from matplotlib.figure import Figure

    res = nascsim.load(sweep_dir)
    names = res.figure_names()
    assert names[0] == "scatter_T30_p0.2" and "pareto_p0.2" in names
    for name in names + ["scatter", "pareto", "accuracy_vs_axis"]:
        assert isinstance(res.figure(name), Figure), name
    assert isinstance(res.figure("scatter", threshold_ms=20, loss=0.0), Figure)
    with pytest.raises(ValueError, match="unknown figure"):
        res.figure("histogram")
    result = CliRunner().invoke(cli, ["report", str(sweep_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    written = sorted(p.stem for p in (sweep_dir / "plots").glob("*.png"))
    assert written == sorted(names)


def test_load_refuses_what_holds_no_runs(tmp_path):
    with pytest.raises(FileNotFoundError):
        nascsim.load(tmp_path / "absent")
    with pytest.raises(TypeError):
        nascsim.load(42)
    with pytest.raises(ValueError, match="not a result record"):
        nascsim.load([{"x": 1}])
