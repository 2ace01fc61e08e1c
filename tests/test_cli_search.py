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


# -- output and options (issue 14) ----------------------------------------------------------------

@pytest.fixture(scope="module")
def plain_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sur") / "plain.json"
    save_surrogate(make_stand_in_surrogate("fbnet", seed=0, split_dropout_train=0.0), path)
    return path


def test_search_prints_accuracy_in_percent_like_the_summaries(surrogate_file):
    r = nascsim("search", "--steps", "200", "--loss", "0.2", "--surrogate", str(surrogate_file))
    js = json.loads(nascsim("search", "--steps", "200", "--loss", "0.2", "--surrogate", str(surrogate_file), "--json").stdout)
    assert f"expected accuracy at loss 0.2: {100 * js['accuracy']:.2f}%" in r.stdout


def test_search_classes_defaults_to_the_surrogates_and_refuses_another(surrogate_file):
    help_text = nascsim("search", "--help").stdout
    assert "[default: the surrogate's]" in help_text.replace("\n", " ").replace("  ", " ") or "the surrogate's" in help_text
    assert "[default: 10]" not in help_text.split("--classes", 1)[1].split("--", 1)[0]
    ok = nascsim("search", "--steps", "50", "--classes", "10", "--surrogate", str(surrogate_file))
    assert ok.returncode == 0, ok.stderr
    bad = nascsim("search", "--steps", "50", "--classes", "100", "--surrogate", str(surrogate_file))
    assert bad.returncode == 2 and "--classes 100" in bad.stderr and bad.stderr.count("\n") == 1


def test_one_surrogate_for_both_roles_warns_and_separate_roles_do_not(surrogate_file, plain_file):
    both = nascsim("search", "--method", "hwnas-dropout", "--steps", "100", "--surrogate", str(surrogate_file), "--json")
    assert both.returncode == 0 and "Warning: one surrogate holds both roles" in both.stderr
    assert json.loads(both.stdout)["dropout_distinguished"] is False
    split = nascsim("search", "--method", "hwnas-dropout", "--steps", "100", "--surrogate-dropout", str(surrogate_file),
                    "--surrogate-no-dropout", str(plain_file), "--json")
    assert split.returncode == 0 and "Warning" not in split.stderr
    assert json.loads(split.stdout)["dropout_distinguished"] is True


def test_trace_plot_is_written_as_an_image(surrogate_file, tmp_path):
    png = tmp_path / "trace.png"
    r = nascsim("search", "--steps", "200", "--surrogate", str(surrogate_file), "--trace-plot", str(png))
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8].startswith(b"\x89PNG")
    bad = nascsim("search", "--steps", "20", "--surrogate", str(surrogate_file), "--trace-plot", str(tmp_path / "t.csv"))
    assert bad.returncode == 2 and "t.csv" in bad.stderr and not (tmp_path / "t.csv").exists()
