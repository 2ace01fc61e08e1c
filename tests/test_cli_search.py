import json
import subprocess
import sys

import polars as pl
import pytest
from surrogate_fixtures import make_stand_in_surrogate

from nascsim.surrogate import save_surrogate


@pytest.fixture(scope="module")
def surrogate_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sur") / "stand_in.json"
    save_surrogate(make_stand_in_surrogate("fbnet", seed=0), path)
    return path


def nascsim(*args):
    return subprocess.run([sys.executable, "-m", "nascsim", *args], capture_output=True, text=True)


def test_search_json_names_result_latency_and_surrogate(surrogate_file):
    r = nascsim("search", "--method", "nasc", "--threshold", "30", "--loss", "0.2", "--seed", "0",
                "--steps", "500", "--surrogate", str(surrogate_file), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("method", "arch", "split", "T_head_ms", "T_comm_ms", "T_tail_ms", "T_ms", "feasible", "accuracy", "seed", "surrogate"):
        assert key in out
    assert len(out["arch"]) == 22 and out["method"] == "nasc" and out["seed"] == 0


def test_search_trace_records_every_step(surrogate_file, tmp_path):
    trace = tmp_path / "trace.parquet"
    r = nascsim("search", "--steps", "300", "--surrogate", str(surrogate_file), "--trace", str(trace))
    assert r.returncode == 0, r.stderr
    assert "expected accuracy" in r.stdout
    frame = pl.read_parquet(trace)
    assert frame.height == 300
    for col in ("theta_entropy", "Delta", "eps_theta", "f_sample0", "f_sample1", "theta_split_00", "theta_split_22"):
        assert col in frame.columns
    assert frame["theta_entropy"][-1] < frame["theta_entropy"][0]


@pytest.mark.parametrize("args, bad", [
    (["--method", "darts"], "darts"),
    (["--threshold", "-3"], "-3"),
    (["--loss", "1.5"], "1.5"),
    (["--head", "tpu"], "tpu"),
    (["--loss-set", "0,x"], "0,x"),
    (["--surrogate", "/nonexistent/s.json"], "/nonexistent/s.json"),
])
def test_bad_search_input_is_one_line_with_exit_2(args, bad, surrogate_file):
    base = ["search", "--steps", "10"]
    if "--surrogate" not in args:
        base += ["--surrogate", str(surrogate_file)]
    r = nascsim(*base, *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and bad in lines[0], r.stderr


def test_trace_is_not_written_when_the_search_input_is_bad(surrogate_file, tmp_path):
    trace = tmp_path / "t.parquet"
    r = nascsim("search", "--threshold", "0", "--surrogate", str(surrogate_file), "--trace", str(trace))
    assert r.returncode == 2 and not trace.exists()
