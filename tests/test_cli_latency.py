import json
import subprocess
import sys

import pytest

ARCH = ",".join(["k3_e1"] * 21 + ["skip"])


def nascsim(*args):
    return subprocess.run([sys.executable, "-m", "nascsim", *args], capture_output=True, text=True)


def test_latency_json_gives_the_breakdown():
    r = nascsim("latency", "--arch", ARCH, "--split", "9", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("T_head_ms", "T_comm_ms", "T_tail_ms", "T_ms", "payload_bits", "head_flops", "tail_flops"):
        assert key in out
    assert out["T_ms"] == pytest.approx(out["T_head_ms"] + out["T_comm_ms"] + out["T_tail_ms"])
    assert out["payload_bits"] == 32 * (32 * 16 * 16)  # layer 9: 32 channels at 16x16, q = 32


def test_devices_json_reports_compute_power_and_r2():
    r = nascsim("devices", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"edgegpu", "raspi4", "pixel3", "eyeriss", "fpga"}
    assert out["raspi4"]["gflops"] == pytest.approx(2.3562, rel=0.005)


@pytest.mark.parametrize(
    "args, bad",
    [
        (["--head", "tpu"], "tpu"),
        (["--tail", "phone"], "phone"),
        (["--bandwidth", "-5"], "-5"),
        (["--split", "30"], "30"),
        (["--source", "guess"], "guess"),
        (["--arch", "k3_e1,k9"], "22"),
        (["--arch", ",".join(["k3_e1"] * 21 + ["bogus"])], "bogus"),
    ],
)
def test_bad_latency_input_is_one_line_naming_the_value_with_exit_2(args, bad):
    base = {"--arch": ARCH, "--split": "3"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [x for kv in base.items() for x in kv]
    r = nascsim("latency", *flat)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and bad in lines[0], r.stderr


def test_tables_build_with_an_unreadable_file_writes_nothing(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = tmp_path / "tables"
    r = nascsim("tables", "build", "--lut", str(bad), "--out", str(out))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from nascsim.cli import cli; "
        "from click.testing import CliRunner; CliRunner().invoke(cli, ['--help']); "
        "print(','.join(m for m in ('numba','torch','sklearn','polars','matplotlib') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""
