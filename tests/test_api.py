"""The Python API (``nascsim.query``, ``search``, ``sweep``), its plug-in points (latency tables,
predictors, registered methods) and the README's examples, on the stand-in surrogate."""

import doctest
import importlib.util
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from surrogate_fixtures import make_stand_in_surrogate

import nascsim
from nascsim.hw.latency import breakdown, build_latency_model
from nascsim.methods import nasc
from nascsim.space import get_space, parse_arch
from nascsim.surrogate import save_surrogate

ROOT = Path(__file__).resolve().parents[1]
ARCH = ["k3_e6"] * 8 + ["skip"] * 14


@pytest.fixture(scope="module")
def sur():
    return make_stand_in_surrogate("fbnet", seed=0)


@pytest.fixture(scope="module")
def sur_plain():
    return make_stand_in_surrogate("fbnet", seed=0, split_dropout_train=0.0)


@pytest.fixture(scope="module")
def sur_file(sur, tmp_path_factory):
    return str(save_surrogate(sur, tmp_path_factory.mktemp("sur") / "stand-in.json"))


def nasc_margin(config, surrogates, space, trace=False):
    """A user's method: NASC searching against a threshold 10% tighter than it is judged at."""
    return nasc.run(config.with_(threshold_ms=0.9 * config.threshold_ms), surrogates, space, trace)


@pytest.fixture
def registered():
    nascsim.register_method("nasc-margin", nasc_margin, roles=("dropout",), description="NASC with a 10% margin")
    yield "nasc-margin"
    nascsim.unregister_method("nasc-margin")


# -- the package surface -----------------------------------------------------------------------

def test_import_nascsim_exports_the_api_without_importing_heavy_libraries():
    code = ("import sys, nascsim; print(sorted(m for m in ('numba', 'torch', 'sklearn', 'polars', 'matplotlib') "
            "if m in sys.modules)); print(all(n in dir(nascsim) for n in ('query', 'search', 'sweep', "
            "'register_method')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True"


def test_parse_arch_accepts_a_space_name_or_object():
    a = parse_arch(ARCH, "fbnet")
    assert a.tolist() == parse_arch(ARCH, get_space("fbnet")).tolist() == [3] * 8 + [8] * 14
    with pytest.raises(ValueError, match="darts"):
        parse_arch(ARCH, "darts")


def test_api_docstrings_run():
    import nascsim.api
    import nascsim.methods.registry

    for module in (nascsim.api, nascsim.methods.registry, nascsim.space):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# -- query -------------------------------------------------------------------------------------

def test_query_of_one_pair_is_a_dict_of_latency_payload_flops_and_predictions(sur):
    r = nascsim.query(ARCH, split=8, p=0.3, surrogate=sur)
    ref = breakdown(build_latency_model("fbnet", classes=sur.classes), parse_arch(ARCH), 8)
    for key in ("T_head_ms", "T_comm_ms", "T_tail_ms", "T_ms", "payload_elements", "payload_bits", "head_flops",
                "tail_flops"):
        assert r[key] == ref[key], key  # bit-identical to the numpy reference
    a, k, p = parse_arch(ARCH)[None, :], np.array([8]), np.array([0.3])
    assert r["acc"] == sur.predict("acc", a, k, p)[0] and r["loss"] == sur.predict("loss", a, k, p)[0]
    assert r["l_sc"] == sur.predict("lsc", a, k, np.zeros(1))[0]
    assert r["acc_sd"] == sur.noise_sd("acc", a, k, p)[0] > 0
    assert r["flops"] == r["head_flops"] + r["tail_flops"] and r["surrogate"] == sur.id
    json.dumps(r)  # plain Python values


def test_query_of_many_pairs_is_a_frame_with_one_row_per_pair(sur):
    rng = np.random.default_rng(0)
    archs = rng.integers(0, 9, size=(5, 22))
    splits = np.array([0, 3, 8, 15, 22])
    frame = nascsim.query(archs, split=splits, p=[0, 0.1, 0.2, 0.3, 0.4], surrogate=sur)
    assert isinstance(frame, pl.DataFrame) and frame.height == 5
    for i in range(5):
        one = nascsim.query(archs[i].tolist(), split=int(splits[i]), p=0.1 * i, surrogate=sur)
        row = frame.row(i, named=True)
        assert row["T_ms"] == one["T_ms"] and row["acc"] == pytest.approx(one["acc"]) and row["arch"] == one["arch"]
    if importlib.util.find_spec("pandas"):
        assert frame.to_pandas().shape[0] == 5


def test_query_broadcasts_one_architecture_over_splits_and_accepts_names_or_indices(sur):
    by_name = nascsim.query(ARCH, split=list(range(23)), surrogate=sur)
    by_index = nascsim.query(",".join(str(i) for i in parse_arch(ARCH)), split=np.arange(23), surrogate=sur,
                             space=get_space("fbnet"))
    assert by_name.height == 23 and by_name.equals(by_index)


def test_query_accepts_any_object_with_the_predict_signature():
    class Constant:
        """The predictor protocol's minimum: predict(target, archs, splits, ps)."""

        def predict(self, target, archs, splits, ps):
            return np.full(len(archs), 0.5 if target == "acc" else 1.25)

    r = nascsim.query(ARCH, split=8, surrogate=Constant())
    assert r["acc"] == 0.5 and r["l_sc"] == 1.25 and math.isnan(r["acc_sd"]) and r["surrogate"] == "Constant"


def test_bad_query_input_names_the_value(sur):
    with pytest.raises(ValueError, match="bogus"):
        nascsim.query(["bogus"] + ARCH[1:], split=8, surrogate=sur)
    with pytest.raises(ValueError, match="split 23"):
        nascsim.query(ARCH, split=23, surrogate=sur)
    with pytest.raises(ValueError, match="1.5"):
        nascsim.query(ARCH, split=8, p=1.5, surrogate=sur)


# -- latency tables of one's own ---------------------------------------------------------------

@pytest.fixture(scope="module")
def board_table(tmp_path_factory):
    """The shipped table plus a device 'myboard' whose every entry is 1.5 x the Raspberry Pi 4's."""
    shipped = ROOT / "tables" / "hwnasbench_fbnet_cifar.parquet"
    t = pl.read_parquet(shipped).with_columns((pl.col("raspi4_latency") * 1.5).alias("myboard_latency"))
    path = tmp_path_factory.mktemp("tables") / "my_tables.parquet"
    t.write_parquet(path)
    return path


def _digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_a_user_table_names_its_own_devices_and_leaves_the_shipped_one_alone(board_table):
    shipped = ROOT / "tables" / "hwnasbench_fbnet_cifar.parquet"
    before = _digest(shipped)
    mine = nascsim.query(ARCH, split=8, head="myboard", tables=board_table, surrogate=None)
    pi = nascsim.query(ARCH, split=8, head="raspi4", surrogate=None)
    assert mine["T_head_ms"] == pytest.approx(1.5 * pi["T_head_ms"], rel=1e-12)
    assert mine["T_comm_ms"] == pi["T_comm_ms"] and mine["T_tail_ms"] == pi["T_tail_ms"]
    with pytest.raises(ValueError, match="myboard"):
        nascsim.query(ARCH, split=8, head="myboard", surrogate=None)  # not a device of the shipped table
    assert _digest(shipped) == before


def test_search_and_sweep_run_on_a_user_table(board_table, sur):
    rec = nascsim.search("nasc", 40, seed=1, steps=300, head="myboard", tables=board_table, surrogate=sur)
    assert rec["head"] == "myboard" and rec["tables"] == str(Path(board_table).resolve())
    ref = breakdown(build_latency_model("fbnet", "myboard", classes=10, tables=board_table), rec["arch_idx"], rec["split"])
    assert rec["T_ms"] == ref["T_ms"]
    runs = nascsim.sweep([40], [0.0], ["nasc"], 2, head="myboard", tables=board_table, steps=300, surrogate=sur, jobs=1)
    assert runs.height == 2 and set(runs["head"]) == {"myboard"}


def test_cli_latency_and_devices_take_a_user_table(board_table):
    arch = ",".join(ARCH)
    r = subprocess.run([sys.executable, "-m", "nascsim", "latency", "--arch", arch, "--split", "8", "--head", "myboard",
                        "--tables", str(board_table), "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["head"] == "myboard"
    r = subprocess.run([sys.executable, "-m", "nascsim", "devices", "--tables", str(board_table), "--json"],
                       capture_output=True, text=True)
    power = json.loads(r.stdout)
    assert power["myboard"]["gflops"] == pytest.approx(power["raspi4"]["gflops"] / 1.5)
    r = subprocess.run([sys.executable, "-m", "nascsim", "latency", "--arch", arch, "--split", "8", "--head", "myboard"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "'myboard'" in r.stderr and r.stderr.count("\n") == 1


# -- search ------------------------------------------------------------------------------------

def test_search_returns_the_record_the_cli_prints_as_json(sur_file):
    rec = nascsim.search("nasc", 30, 0.2, seed=3, steps=400, surrogate=sur_file)
    r = subprocess.run([sys.executable, "-m", "nascsim", "search", "--threshold", "30", "--loss", "0.2", "--seed", "3",
                        "--steps", "400", "--surrogate", sur_file, "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cli = json.loads(r.stdout)
    api = json.loads(nascsim.api.to_json(rec))
    for volatile in ("wall_s", "search_s"):
        cli.pop(volatile), api.pop(volatile)
    assert cli == api


def test_json_output_is_strict_json_with_non_finite_numbers_as_strings(sur_file):
    r = subprocess.run([sys.executable, "-m", "nascsim", "search", "--steps", "50", "--surrogate", sur_file, "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Infinity" not in r.stdout and "NaN" not in r.stdout

    def refuse(name):
        raise ValueError(f"non-JSON constant {name}")

    rec = json.loads(r.stdout, parse_constant=refuse)
    assert rec["Delta_max"] == "inf" and float(rec["Delta_max"]) == math.inf
    assert nascsim.api.json_safe({"x": [float("nan"), -math.inf, np.float64(2.0)]}) == {"x": ["nan", "-inf", 2.0]}


def test_search_accepts_surrogate_objects_or_paths_per_role(sur, sur_plain, sur_file):
    a = nascsim.search("hwnas-dropout", 30, seed=2, steps=300, surrogate_dropout=sur, surrogate_no_dropout=sur_plain)
    assert a["surrogate"] == sur.id and a["search_surrogate"] == sur_plain.id and a["dropout_distinguished"]
    b = nascsim.search("nasc", 30, seed=2, steps=300, surrogate=sur_file)
    c = nascsim.search("nasc", 30, seed=2, steps=300, surrogate=sur)
    assert b["arch"] == c["arch"] and b["split"] == c["split"]


def test_one_surrogate_in_both_roles_warns_where_the_roles_matter(sur):
    with pytest.warns(UserWarning, match="hwnas and hwnas-dropout will give equal rows"):
        nascsim.search("hwnas-dropout", 30, steps=50, surrogate=sur)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nascsim.search("nasc", 30, steps=50, surrogate=sur)  # nasc uses one role only: no warning


def test_search_needs_a_fitted_surrogate_and_says_where_a_predictor_fits():
    class Constant:
        def predict(self, target, archs, splits, ps):
            return np.zeros(len(archs))

    with pytest.raises(TypeError, match="nascsim.query"):
        nascsim.search("nasc", 30, steps=50, surrogate=Constant())


def test_search_trace_is_a_frame_of_every_step(sur):
    rec = nascsim.search("nasc", 30, steps=120, surrogate=sur, trace=True)
    assert rec["trace"].height == 120 and "theta_entropy" in rec["trace"].columns


# -- sweep -------------------------------------------------------------------------------------

def test_sweep_returns_a_frame_in_grid_order_and_resumes_from_its_folder(sur, sur_plain, tmp_path):
    kw = dict(steps=200, surrogate_dropout=sur, surrogate_no_dropout=sur_plain, jobs=1)
    committed = []
    first = nascsim.sweep("20,30", [0.0, 0.3], "nasc,hwnas", 2, out=tmp_path / "store", progress=committed.append, **kw)
    assert first.height == 2 * 2 * 2 * 2 and sum(committed) == first.height
    assert first.select("seed", "threshold_ms", "loss", "method").rows()[:3] == [
        (0, 20.0, 0.0, "nasc"), (0, 20.0, 0.0, "hwnas"), (0, 20.0, 0.3, "nasc")]
    again = []
    second = nascsim.sweep("20,30", [0.0, 0.3], "nasc,hwnas", 2, out=tmp_path / "store", progress=again.append, **kw)
    assert again == [] and second.drop("wall_s").equals(first.drop("wall_s"))
    if importlib.util.find_spec("pandas"):
        assert second.to_pandas().shape == second.shape


def test_sweep_varies_any_search_option_as_an_axis(sur):
    runs = nascsim.sweep([30], [0.2], ["nasc"], 2, eps_lat=[0.5, 2.0], steps=150, surrogate=sur, jobs=1)
    assert runs.height == 4 and sorted(set(runs["eps_lat"])) == [0.5, 2.0]


def test_sweep_refuses_bad_values_before_running(sur, tmp_path):
    with pytest.raises(ValueError, match="bogus"):
        nascsim.sweep([30], [0.2], ["nasc", "bogus"], 1, surrogate=sur, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


# -- registered methods ------------------------------------------------------------------------

def test_a_registered_method_runs_through_search_like_a_built_in_one(registered, sur):
    rec = nascsim.search(registered, 30, seed=4, steps=400, surrogate=sur)
    same = nascsim.search("nasc", 27, seed=4, steps=400, surrogate=sur)  # what it does inside
    assert rec["method"] == registered and rec["threshold_ms"] == 30
    assert (rec["arch"], rec["split"], rec["T_ms"]) == (same["arch"], same["split"], same["T_ms"])
    assert rec["feasible"] == (rec["T_ms"] <= 30)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_registered_method_runs_through_sweep_in_worker_processes_too(registered, sur, jobs):
    runs = nascsim.sweep([30], [0.0, 0.2], [registered, "nasc"], 2, steps=300, surrogate=sur, jobs=jobs)
    assert runs.height == 2 * 2 * 2 and set(runs["method"]) == {registered, "nasc"}
    mine = runs.filter(pl.col("method") == registered).sort("seed", "loss")
    ref = nascsim.sweep([27], [0.0, 0.2], ["nasc"], 2, steps=300, surrogate=sur, jobs=1).sort("seed", "loss")
    assert mine["T_ms"].to_list() == ref["T_ms"].to_list()


def test_the_cli_lists_and_validates_registered_methods(registered):
    from nascsim.config import check_method
    from nascsim.sweep.grid import Grid

    assert check_method(registered) == registered and registered in nascsim.method_names()
    assert len(Grid.build(method=f"nasc,{registered}")) == 2
    with pytest.raises(ValueError, match="unknown method 'nope'.*nasc-margin"):
        check_method("nope")


def test_built_in_methods_cannot_be_replaced():
    with pytest.raises(ValueError, match="built-in"):
        nascsim.register_method("nasc", nasc_margin)


def test_entry_point_methods_are_found_by_name(monkeypatch):
    from importlib.metadata import EntryPoint

    import nascsim.methods.registry as registry

    ep = EntryPoint(name="nasc-ep", value="test_api:nasc_margin", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group=None: [ep] if group == ep.group else [])
    monkeypatch.setattr(registry, "_ENTRY_POINTS_LOADED", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    spec = registry.get_method("nasc-ep")
    assert spec.origin == "entry point" and spec.run is nasc_margin
    assert "nasc-ep" in registry.method_names()


def test_missing_torch_message_names_the_checkout_install(monkeypatch):
    from nascsim.train import require_torch

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=re.escape("pip install '.[train]'")):
        require_torch()
    assert re.search(r"^train = \[", (ROOT / "pyproject.toml").read_text(), flags=re.M)  # the extra exists


@pytest.mark.parametrize("kw", [
    {}, {"surrogate": "s.json"}, {"dropout": "a.json", "no_dropout": "b.json"}, {"no_dropout": "b.json"},
    {"surrogate": "no_dropout"}, {"dropout": "a.json", "no_dropout": "dropout"},
])
def test_the_recorded_surrogate_label_reads_back_to_the_same_roles(kw, tmp_path, monkeypatch):
    from nascsim.api import parse_surrogate_label, surrogate_label

    monkeypatch.chdir(tmp_path)
    back = parse_surrogate_label(surrogate_label(**kw))
    assert back == {k: (v if v in ("dropout", "no_dropout") else str(tmp_path / v)) for k, v in kw.items()}
