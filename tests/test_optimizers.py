"""Optuna on the simulator (optional extra): the methods ``optuna-tpe`` and ``optuna-random`` and
the comparison of examples/optuna_on_nascsim.py, at small scale. Skipped without optuna.

Specification: each run spends NASC's budget (steps x λ trials) and reports the incumbent; a run
is reproducible by seed; the comparison table holds every method paired against NASC; the bench
takes the methods by name (``--methods``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from surrogate_fixtures import make_stand_in_surrogate

import nascsim
from nascsim.cli import cli

optuna = pytest.importorskip("optuna")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "optuna_on_nascsim.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("optuna_on_nascsim", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sur():
    return make_stand_in_surrogate("fbnet", seed=0)


def test_an_optuna_run_spends_nascs_budget_and_reports_its_best_observed_pair(sur):
    from nascsim.optimizers.optuna_sampler import tpe

    rec = nascsim.search("optuna-tpe", 30.0, 0.2, 1, surrogate=sur, steps=15)
    assert rec["evaluations"] == 30 and rec["method"] == "optuna-tpe"
    again = nascsim.search("optuna-tpe", 30.0, 0.2, 1, surrogate=sur, steps=15)
    timing = ("wall_s", "search_s", "sim_gpu_s")  # sim_gpu_s: NaN (the stand-in has no timing)
    assert {k: v for k, v in rec.items() if k not in timing} == {k: v for k, v in again.items() if k not in timing}
    problem = nascsim.Problem(threshold_ms=30.0, loss=0.2, surrogate=sur, steps=15, seed=1)
    arch, split = tpe(problem, seed=1)
    assert (arch, split) is not None and problem.incumbent[0].tolist() == arch.tolist()
    assert rec["arch_idx"] == arch.tolist() and rec["split"] == split


def test_the_comparison_runs_at_small_scale_and_tabulates_every_method_against_nasc(example, sur, tmp_path):
    res = example.compare(seeds=3, steps=15, surrogate=sur, jobs=1, out=tmp_path / "cmp")
    assert res.runs.height == 4 * 3 and res.methods == sorted(example.METHODS)
    text = example.table(res, sur)
    lines = text.splitlines()
    assert len(lines) == 2 + 4 and "(reference)" in lines[2]
    for method, line in zip(example.METHODS, lines[2:]):
        assert line.startswith(f"| {method} | 3 | 30 |")
    assert set(res.compare()["baseline"]) == {"random", "optuna-tpe", "optuna-random"}
    assert example.table(nascsim.load(tmp_path / "cmp"), sur) == text  # --table DIR reads it back


def test_bench_takes_the_optuna_methods_by_name(sur, tmp_path):
    from nascsim.surrogate import save_surrogate

    suite = tmp_path / "opt.toml"
    suite.write_text('format = "nascsim-bench-suite"\nname = "opt-small"\nversion = 1\nmethods = ["nasc"]\n'
                     'reference = "nasc"\nseeds = 2\n[options]\nsteps = 10\n[[group]]\nspace = "fbnet"\n'
                     'threshold_ms = [30]\nloss = [0.2]\n[tolerance]\naccuracy = 0.005\n')
    path = save_surrogate(sur, tmp_path / "s.json")
    result = CliRunner().invoke(cli, ["bench", "--suite", str(suite), "--surrogate", str(path), "--jobs", "1",
                                      "--methods", "nasc,optuna-tpe", "--out", str(tmp_path / "b"), "--json"])
    assert result.exit_code == 0, result.output
    res = nascsim.load(tmp_path / "b")
    assert res.methods == ["nasc", "optuna-tpe"] and res.runs.height == 4


def test_the_shipped_optimizers_suite_is_the_papers_cell_at_one_budget():
    from nascsim.bench.suite import load_suite

    s = load_suite("optimizers")
    assert s.methods == ("nasc", "random", "optuna-tpe", "optuna-random") and s.seeds >= 10
    assert s.groups[0].fields["threshold_ms"] == [30.0] and s.groups[0].fields["loss"] == [0.2]


def test_without_optuna_the_methods_say_how_to_install_it(sur, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ValueError, match=r"nascsim\[optuna\]"):
        nascsim.search("optuna-random", 30.0, 0.2, 0, surrogate=sur, steps=5)
