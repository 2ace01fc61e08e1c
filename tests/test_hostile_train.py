"""Hostile files and bad input for the torch stage: no code runs from a data file or checkpoint,
and every bad value ends in one line, exit code 2, with nothing written."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from _train_fixtures import write_cifar10  # noqa: E402

from nascsim.cli import main  # noqa: E402

ARCH = ",".join(["k3_e1"] * 22)


class Payload:
    """Unpickling this object creates ``marker``: what a crafted file would do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("c10")
    write_cifar10(root, per_batch=8, test=6)
    return root


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def assert_one_line_exit_2(code, err, *needles):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


# ------------------------------------------------------------------------------------------------
# files that would run code
# ------------------------------------------------------------------------------------------------

def test_a_crafted_cifar_pickle_is_refused_without_running_its_payload(tmp_path):
    from nascsim.train.data import load_dataset

    write_cifar10(tmp_path / "d", per_batch=4, test=4)
    marker = tmp_path / "pwned"
    with open(tmp_path / "d" / "cifar-10-batches-py" / "data_batch_3", "wb") as fh:
        pickle.dump({b"data": Payload(marker), b"labels": [0]}, fh)
    with pytest.raises(ValueError, match="data_batch_3.*refused global io.open"):
        load_dataset(tmp_path / "d", use_cache=False)
    assert not marker.exists()


def test_the_restricted_unpickler_still_reads_arrays_lists_and_bytes():
    import io

    from nascsim.train.data import safe_unpickle

    blob = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), b"labels": [1, 2, 3], b"name": b"x", "f": 1.5,
            "i": np.int64(3)}
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        back = safe_unpickle(io.BytesIO(pickle.dumps(blob, protocol=protocol)))
        assert np.array_equal(back[b"data"], blob[b"data"]) and back[b"labels"] == [1, 2, 3] and back[b"name"] == b"x"


@pytest.mark.parametrize("kind", ["supernet evaluate", "supernet train --resume", "retrain --resume", "exported part"])
def test_a_crafted_checkpoint_is_refused_without_running_its_payload(kind, data, tmp_path, capsys):
    marker = tmp_path / "pwned"
    ckpt_dir = tmp_path / "ck"
    ckpt_dir.mkdir()
    blob = {"kind": "child" if kind.startswith("retrain") else "supernet", "arch": [0] * 22, "split": 3,
            "model": Payload(marker), "part": "head", "spec": {}}
    torch.save(blob, ckpt_dir / "checkpoint.pt")
    if kind == "exported part":
        from nascsim.train.parts import load_part

        with pytest.raises(ValueError, match="not a readable nascsim checkpoint"):
            load_part(ckpt_dir / "checkpoint.pt")
        assert not marker.exists()
        return
    argv = {
        "supernet evaluate": ["supernet", "evaluate", "--checkpoint", ckpt_dir, "--data", data, "--out", tmp_path / "e.parquet",
                              "--no-progress"],
        "supernet train --resume": ["supernet", "train", "--data", data, "--out", ckpt_dir, "--resume", "--no-progress"],
        "retrain --resume": ["retrain", "--data", data, "--out", ckpt_dir, "--arch", ARCH, "--split", "3", "--resume",
                             "--no-progress"],
    }[kind]
    code, _, err = run(argv, capsys)
    assert_one_line_exit_2(code, err, "not a readable nascsim checkpoint")
    assert not marker.exists()
    assert not (tmp_path / "e.parquet").exists()


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, os.urandom(4096), b"PK\x03\x04not a zip"])
def test_a_garbage_checkpoint_is_a_one_line_error_not_an_unpickling_traceback(content, data, tmp_path, capsys):
    (tmp_path / "checkpoint.pt").write_bytes(content)
    code, _, err = run(["supernet", "evaluate", "--checkpoint", tmp_path / "checkpoint.pt", "--data", data,
                        "--out", tmp_path / "e.parquet", "--no-progress"], capsys)
    assert_one_line_exit_2(code, err, "checkpoint.pt")
    assert "Traceback" not in err and not (tmp_path / "e.parquet").exists()


def test_a_checkpoint_of_plain_data_with_the_wrong_weights_is_a_one_line_error(data, tmp_path, capsys):
    torch.save({"kind": "supernet", "space": "fbnet", "classes": 10, "model": {"stem.0.weight": torch.zeros(1)}},
               tmp_path / "checkpoint.pt")
    code, _, err = run(["supernet", "evaluate", "--checkpoint", tmp_path, "--data", data, "--out", tmp_path / "e.parquet",
                        "--no-progress"], capsys)
    assert_one_line_exit_2(code, err, "do not fit")


# ------------------------------------------------------------------------------------------------
# bad values: one line, exit 2, nothing written (before any training or caching)
# ------------------------------------------------------------------------------------------------

def _results(tmp_path: Path) -> Path:
    f = tmp_path / "res.json"
    f.write_text(json.dumps([{"arch": ARCH, "split": 3, "accuracy": 0.5}]))
    return f


BAD = [
    ("supernet train", ["--train-images", "-5"], "--train-images"),
    ("supernet train", ["--train-images", "0"], "--train-images"),
    ("supernet train", ["--batch-size", "0"], "--batch-size"),
    ("supernet train", ["--valid-images", "999999"], "valid_images"),
    ("supernet train", ["--valid-images", "0"], "--valid-images"),
    ("supernet train", ["--epochs", "0"], "--epochs"),
    ("supernet train", ["--lr", "nan"], "lr"),
    ("supernet train", ["--dropout", "1.0"], "split_dropout"),
    ("retrain", ["--bits", "0"], "--bits"),
    ("retrain", ["--bits", "0.5"], "--bits"),
    ("retrain", ["--bits", "nan"], "--bits"),
    ("retrain", ["--bits", "inf"], "--bits"),
    ("retrain", ["--ps", "1.5"], "1.5"),
    ("retrain", ["--ps", "nan"], "--ps"),
    ("retrain", ["--train-images", "0"], "--train-images"),
    ("retrain", ["--batch-size", "0"], "--batch-size"),
    ("confirm", ["--bits", "nan"], "--bits"),
    ("confirm", ["--ps", "1.5"], "1.5"),
    ("supernet campaign", ["--budget-s", "nan"], "--budget-s"),
    ("supernet campaign", ["--budget-s", "-5"], "--budget-s"),
    ("supernet campaign", ["--train-images", "0"], "--train-images"),
    ("supernet campaign", ["--dropouts", "1.0"], "--dropouts"),
    ("supernet campaign", ["--noise-pairs", "1"], "--noise-pairs"),
    ("supernet campaign", ["--batch-images", "0"], "--batch-images"),
    ("supernet campaign", ["--valid-images", "999999"], "valid_images"),
]


@pytest.mark.parametrize("command,extra,needle", BAD, ids=[f"{c} {' '.join(e)}" for c, e, _ in BAD])
def test_a_bad_value_is_one_line_exit_2_and_writes_nothing(command, extra, needle, tmp_path, capsys):
    d = tmp_path / "data"
    write_cifar10(d, per_batch=8, test=6)
    before = files_under(tmp_path)
    out = tmp_path / "out"
    common = {
        "supernet train": ["supernet", "train", "--data", d, "--out", out, "--no-progress", "--epochs", "1"],
        "retrain": ["retrain", "--data", d, "--out", out, "--arch", ARCH, "--split", "3", "--no-progress", "--epochs", "1"],
        "confirm": ["confirm", _results(tmp_path), "--data", d, "--out", out / "c.parquet", "--no-progress", "--epochs", "1"],
        "supernet campaign": ["supernet", "campaign", "--data", d, "--out", out, "--budget-s", "60", "--device", "cpu",
                              "--valid-images", "20", "--batch-images", "4", "--monitor-images", "4", "--noise-images", "4",
                              "--noise-batches", "2"],
    }[command]
    before = files_under(tmp_path)
    code, _, err = run(common + extra, capsys)
    assert_one_line_exit_2(code, err, needle)
    assert files_under(tmp_path) == before, "the failed command wrote files"
