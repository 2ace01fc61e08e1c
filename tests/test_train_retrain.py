"""Re-training, head/tail export, the lossy-channel confirmation and ``confirm`` of search results,
plus the command line's errors."""

import json

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny tensors: one thread avoids oversubscription when the suite shares cores

from _train_fixtures import write_image_folder  # noqa: E402

from nascsim.train.channel import lossy_channel, quantise  # noqa: E402
from nascsim.train.confirm import read_candidates  # noqa: E402
from nascsim.train.loop import Recipe  # noqa: E402
from nascsim.train.parts import load_part  # noqa: E402
from nascsim.train.retrain import retrain  # noqa: E402

ARCH = ",".join(["k3_e1", "skip"] * 11)
EXT_ARCH = ",".join(["k3_e1/4"] + ["skip"] * 21)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    write_image_folder(root, classes=3, per_class=4, fmt="PNG", tar=True)
    return root


def small(**kw):
    return Recipe(**{"epochs": 1, "batch_size": 8, "lr": 0.02, "lambda_x": 1, **kw})


def test_quantisation_has_2_to_the_q_levels_and_channel_drops_the_share_p():
    z = torch.randn(4, 1000)
    q = quantise(z, 3)
    assert all(len(torch.unique(row)) <= 8 for row in q)
    assert (q - z).abs().max() <= (z.max() - z.min()) / 7
    assert torch.equal(quantise(z, 32), z)
    out = lossy_channel(torch.ones(20000), 32, 0.3, torch.Generator().manual_seed(0))
    assert abs(float((out == 0).float().mean()) - 0.3) < 0.02
    assert torch.allclose(out[out != 0], torch.tensor(1 / 0.7))


def test_retrain_exports_head_and_tail_that_reproduce_the_network(data, tmp_path):
    res = retrain(data, tmp_path / "r", EXT_ARCH, 1, space="extended", recipe=small(), ps=(0.0, 0.5),
                  progress=False, bits=32, latency_repeats=2)
    head, spec = load_part(tmp_path / "r" / "head.pt")
    tail, _ = load_part(tmp_path / "r" / "tail.pt")
    assert spec["split"] == 1 and spec["arch_names"][0] == "k3_e1/4"
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        z = head(x)
        assert z.shape == (2, 4, 32, 32)  # depthwise output of k3_e1/4 on 16 channels
        assert tail(z).shape == (2, 3)
    assert res["payload_elements"] == 4 * 32 * 32
    assert res["head_ms"] > 0 and res["tail_ms"] > 0
    r0 = res["rows"][0]
    # at p = 0 and q = 32 the channel is lossless: the exported parts agree with the whole network
    assert r0["p"] == 0.0 and r0["channel_acc"] == pytest.approx(r0["test_acc"])
    saved = json.loads((tmp_path / "r" / "retrain.json").read_text())
    assert [r["p"] for r in saved["rows"]] == [0.0, 0.5]


def test_confirm_reads_a_sweep_parquet_and_writes_predicted_vs_measured(data, tmp_path):
    import polars as pl

    from nascsim.train.confirm import confirm_results

    sweep = tmp_path / "sweep.parquet"
    pl.DataFrame({"arch": [ARCH, ARCH, ",".join(["skip"] * 22)], "split": [3, 3, 22],
                  "accuracy": [0.9, 0.9, 0.5], "loss": [0.1, 0.1, 0.0]}).write_parquet(sweep)
    cands = read_candidates(sweep, "fbnet", top=5)
    assert len(cands) == 2 and cands[0]["predicted"] == 0.9 and cands[0]["p"] == 0.1
    rows = confirm_results(sweep, data, tmp_path / "confirm.parquet", "fbnet", top=1, retrain_kw=dict(
        recipe=small(), ps=(0.0, 0.1), progress=False, bits=8, latency_repeats=2))
    df = pl.read_parquet(tmp_path / "confirm.parquet")
    assert df.height == 2 and df["predicted_acc"].to_list() == [None, 0.9]
    assert {"measured_acc", "channel_acc", "head_ms", "tail_ms"} <= set(df.columns)
    assert len(rows) == 2


def test_search_json_candidates_accept_op_name_lists(tmp_path):
    f = tmp_path / "search.json"
    f.write_text(json.dumps({"arch": ARCH.split(","), "split": 5, "accuracy": 0.8}))
    (c,) = read_candidates(f, "fbnet", top=3)
    assert c["split"] == 5 and c["arch"][1] == 8 and c["p"] is None
    f.write_text(json.dumps([{"arch": ARCH, "split": 5}]))
    with pytest.raises(ValueError, match="accuracy"):
        read_candidates(f, "fbnet", top=3)


def run_cli(args):
    from click.testing import CliRunner

    from nascsim.cli import cli

    return CliRunner().invoke(cli, args)


def test_cli_missing_dataset_is_a_one_line_error_naming_the_path(tmp_path):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "nascsim", "supernet", "train", "--data", str(tmp_path / "nope"),
                        "--out", str(tmp_path / "o"), "--no-progress"], capture_output=True, text=True)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "nope") in lines[0]


def test_cli_retrain_rejects_an_unknown_op():
    arch = ",".join(["skip"] * 21 + ["bogus"])
    r = run_cli(["retrain", "--data", ".", "--out", "x", "--arch", arch, "--split", "1"])
    assert r.exit_code != 0 and "bogus" in str(r.exception) and "layer 22" in str(r.exception)
