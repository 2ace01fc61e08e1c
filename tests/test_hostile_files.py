"""Hostile and damaged files (issue 13): no code runs from a file, no path is built from file
contents, and every bad surrogate or table file ends in one line naming the bad value, exit code 2
and nothing written -- from every command that reads such a file."""

from __future__ import annotations

import functools
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from nascsim.cli import main
from nascsim.surrogate import load_surrogate, save_surrogate
from nascsim.surrogate.validate import SurrogateFileError, validate_document
from nascsim.hw.tables import TABLE_FILE, TableError, load_tables, read_table_columns
from surrogate_fixtures import make_stand_in_surrogate, synthetic_evaluations, write_evaluations


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def assert_one_line_exit_2(code, err, fragment):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("Error: "), err
    assert "Traceback" not in err
    assert fragment in err, err


# --------------------------------------------------------------------------- surrogate documents


@functools.lru_cache(maxsize=None)
def _good_text() -> str:
    return json.dumps(make_stand_in_surrogate("fbnet").doc)


def good_doc() -> dict:
    return json.loads(_good_text())


def _internal(e: dict, categorical: bool = False) -> int:
    """Index of the first internal (and, if asked, categorical) node of one target's export."""
    for i, f in enumerate(e["flags"]):
        if not f & 1 and (not categorical or f & 2):
            return i
    raise AssertionError("no such node")


def _set(path: str, value):
    """An edit that sets doc[k1][k2]...[kn] = value (keys separated by '/', list indices as ints)."""

    def edit(doc):
        *head, last = path.split("/")
        d = doc
        for k in head:
            d = d[int(k)] if isinstance(d, list) else d[k]
        if isinstance(d, list):
            d[int(last)] = value
        else:
            d[last] = value

    return edit


def _delete(path: str):
    def edit(doc):
        *head, last = path.split("/")
        d = doc
        for k in head:
            d = d[k]
        del d[last]

    return edit


def _node(field: str, value, categorical: bool = False, target: str = "loss"):
    def edit(doc):
        e = doc["targets"][target]
        e[field][_internal(e, categorical)] = value if not callable(value) else value(e)

    return edit


def _self_loop(doc):
    e = doc["targets"]["loss"]
    i = _internal(e)
    e["left"][i] = i


def _back_to_root(doc):
    e = doc["targets"]["acc"]
    i = [j for j, f in enumerate(e["flags"]) if not f & 1][1]
    e["right"][i] = e["tree_start"][0]


def _orphan(doc):
    e = doc["targets"]["loss"]
    e["flags"][_internal(e)] |= 1  # an internal node made a leaf: its subtree hangs loose


def _noise_p_descending(doc):
    doc["noise"]["p"] = doc["noise"]["p"][::-1]


SURROGATE_CASES = {
    "child index 1e9": (_node("left", 1_000_000_000), "is out of range"),
    "child index 1e9 as a float": (_node("right", 1e9), "must be an integer"),
    "self-loop": (_self_loop, "a second time"),
    "cycle back to the root": (_back_to_root, "a second time"),
    "orphan node": (_orphan, "is not reachable from the tree's root"),
    "feature index 1e6": (_node("feature", 1_000_000), "targets.loss.feature"),
    "negative feature index": (_node("feature", -1), "is out of range 0..31"),
    "categorical split on a numeric feature": (_node("feature", 25, categorical=True), "not a categorical feature"),
    "bitset row out of range": (_node("bitset", 10**6, categorical=True), "targets.loss.bitset"),
    "NaN baseline": (_set("targets/acc/baseline", float("nan")), "targets.acc.baseline must be a finite number"),
    "infinite leaf value": (_set("targets/lsc/value/0", float("inf")), "targets.lsc.value[0] must be finite"),
    "NaN threshold": (_node("threshold", float("nan")), "must be a number (not NaN)"),
    "tree root past the nodes": (lambda d: d["targets"]["loss"]["tree_start"].append(10**6), "targets.loss.tree_start"),
    "tree starts out of order": (lambda d: d["targets"]["loss"]["tree_start"].reverse(), "targets.loss.tree_start"),
    "f_idx_map row out of range": (lambda d: d["targets"]["loss"]["f_idx_map"].update({"0": 999}), "f_idx_map['0']"),
    "bitset word too wide": (lambda d: d["targets"]["loss"]["known_bitsets"][0].__setitem__(0, 2**40), "known_bitsets[0][0]"),
    "node lists of different lengths": (lambda d: d["targets"]["loss"]["value"].pop(), "targets.loss.value has"),
    "missing target": (_delete("targets/acc"), "targets.acc is missing"),
    "missing node list": (_delete("targets/loss/left"), "targets.loss.left is missing"),
    "missing id": (_delete("id"), "id is missing"),
    "missing noise section": (_delete("noise"), "noise is missing"),
    "missing noise shares": (_delete("noise/shared"), "noise.shared is missing"),
    "classes as a string": (_set("classes", "10"), "classes must be an integer"),
    "feature list as an object": (_set("targets/loss/feature", {"a": 1}), "targets.loss.feature must be a list"),
    "targets as a list": (_set("targets", []), "targets must be a JSON object"),
    "card as a list": (_set("card", []), "card must be a JSON object"),
    "boolean split dropout": (_set("split_dropout_train", True), "split_dropout_train must be a finite number"),
    "unknown space": (_set("space", "resnet"), "unknown space 'resnet'"),
    "unsafe id": (_set("id", "../../evil"), "is not a safe name"),
    "negative noise sd": (_set("noise/acc/2", -0.1), "noise.acc[2] is a negative standard deviation"),
    "NaN noise sd": (_set("noise/loss/0", float("nan")), "noise.loss[0] must be finite"),
    "noise share above 1": (_set("noise/shared/loss/1", 1.5), "noise.shared.loss[1] = 1.5 is out of range"),
    "noise lengths differ": (lambda d: d["noise"]["acc"].pop(), "noise.acc has 5 entries"),
    "noise p not ascending": (_noise_p_descending, "noise.p must be strictly ascending"),
    "zero images per batch": (_set("noise/n_images", 0), "noise.n_images = 0 is out of range"),
    "format version 1": (_set("format_version", 1), "refit it with `nascsim surrogate fit"),
    "unknown format version": (_set("format_version", 7), "format version 7"),
}


def test_the_good_document_passes_and_every_case_breaks_it():
    validate_document(good_doc(), "good")
    for name, (edit, fragment) in SURROGATE_CASES.items():
        doc = good_doc()
        edit(doc)
        with pytest.raises(SurrogateFileError) as exc:
            validate_document(doc, "bad.json")
        assert fragment in str(exc.value), (name, str(exc.value))
        assert "\n" not in str(exc.value)


def _bad_file(tmp_path: Path, case: str) -> Path:
    doc = good_doc()
    SURROGATE_CASES[case][0](doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return path


COMMANDS = {
    "search": lambda f, out: ["search", "--surrogate", str(f), "--steps", "10"],
    "sweep": lambda f, out: ["sweep", "--surrogate", str(f), "--thresholds", "30", "--loss", "0", "--seeds", "1", "--steps", "10",
                             "--methods", "nasc", "--jobs", "1", "--out", str(out)],
    "surrogate show": lambda f, out: ["surrogate", "show", str(f)],
    "surrogate report": lambda f, out: ["surrogate", "report", str(f), "--out", str(out)],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", ["child index 1e9", "self-loop", "feature index 1e6", "NaN baseline", "missing target",
                                  "missing noise shares", "classes as a string", "noise share above 1", "format version 1"])
def test_a_damaged_surrogate_file_ends_every_command_in_one_line_and_writes_nothing(tmp_path, capsys, command, case):
    bad = _bad_file(tmp_path, case)
    out = tmp_path / "out"
    code, _, err = run(COMMANDS[command](bad, out), capsys)
    assert_one_line_exit_2(code, err, SURROGATE_CASES[case][1])
    assert "bad.json" in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"{not json", "is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "is not valid JSON"),
        (b'{"format": "nascsim-surrogate", "format_version": 2, "classes": ' + b"9" * 5000 + b"}", "is not valid JSON"),
        (b"\xff\xfe\x00garbage", "is not valid JSON"),
        (b"[1, 2, 3]", "is not a nascsim surrogate"),
    ],
)
def test_a_surrogate_file_that_is_not_a_surrogate_document_is_one_line(tmp_path, capsys, content, fragment):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    code, _, err = run(["surrogate", "show", str(bad)], capsys)
    assert_one_line_exit_2(code, err, fragment)


def test_a_card_naming_a_source_outside_its_folder_is_refused_by_report(tmp_path, capsys):
    s = make_stand_in_surrogate("fbnet")
    doc = json.loads(json.dumps(s.doc))
    doc["card"]["source"] = "../../etc/evals.parquet"
    (tmp_path / "s.json").write_text(json.dumps(doc))
    code, _, err = run(["surrogate", "report", str(tmp_path / "s.json"), "--out", str(tmp_path / "r")], capsys)
    assert_one_line_exit_2(code, err, "card.source")
    assert not (tmp_path / "r").exists()


def test_a_valid_surrogate_round_trips_through_the_validator(tmp_path):
    path = save_surrogate(make_stand_in_surrogate("fbnet"), tmp_path / "s.json")
    assert load_surrogate(path).id == make_stand_in_surrogate("fbnet").id


# --------------------------------------------------------------------------- path traversal


@pytest.fixture(scope="module")
def evals_file(tmp_path_factory):
    frame, meta = synthetic_evaluations("fbnet", n_pairs=30, seed=1)
    folder = tmp_path_factory.mktemp("ev")
    return frame, meta, write_evaluations(frame, meta, folder / "evals.parquet")


@pytest.mark.parametrize(
    "args, meta_id, fragment",
    [
        (["--name", "../../evil"], None, "--name '../../evil' is not a safe name"),
        (["--name", "a/b"], None, "--name 'a/b' is not a safe name"),
        (["--name", "..\\evil"], None, "is not a safe name"),
        (["--name", ".hidden"], None, "is not a safe name"),
        (["--id", "../x"], None, "--id '../x' is not a safe name"),
        ([], "../../evil", "surrogate id '../../evil' is not a safe name"),
        ([], "/abs/evil", "is not a safe name"),
    ],
)
def test_surrogate_fit_never_builds_a_path_from_a_name_or_file_contents(tmp_path, capsys, evals_file, args, meta_id, fragment):
    frame, meta, path = evals_file
    if meta_id is not None:
        path = write_evaluations(frame, {**meta, "id": meta_id}, tmp_path / "evals.parquet")
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    before = set(tmp_path.rglob("*"))
    code, _, err = run(["surrogate", "fit", str(path), "--out", str(work / "out"), "--no-quality", "--quiet"] + args, capsys)
    assert_one_line_exit_2(code, err, fragment)
    assert set(tmp_path.rglob("*")) == before


# --------------------------------------------------------------------------- pickles that would run code


class _RunsCode:
    """Unpickling this calls ``func(*args)`` (the classic pickle exploit)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize(
    "payload",
    [
        lambda marker: {"fbnet": _RunsCode(os.system, f"touch {marker}")},
        lambda marker: _RunsCode(exec, f"open({str(marker)!r}, 'w').close()"),
        lambda marker: {"fbnet": {"raspi4_latency": np.array([_RunsCode(eval, f"open({str(marker)!r}, 'w')")], dtype=object)}},
        lambda marker: {"fbnet": _RunsCode(Path.write_text, Path(marker), "x")},
    ],
    ids=["os.system", "builtins.exec", "inside a numpy object array", "a method of an importable class"],
)
def test_tables_build_refuses_a_pickle_that_would_run_code(tmp_path, capsys, payload):
    marker = tmp_path / "pwned"
    evil = tmp_path / "HW-NAS-Bench-v1_0.pickle"
    evil.write_bytes(pickle.dumps(payload(marker), protocol=2))
    out = tmp_path / "t.parquet"
    code, _, err = run(["tables", "build", "--lut", str(evil), "--out", str(out)], capsys)
    assert_one_line_exit_2(code, err, "refused to unpickle")
    assert not marker.exists() and not out.exists()


def test_a_truncated_pickle_is_one_line(tmp_path, capsys):
    bad = tmp_path / "t.pickle"
    bad.write_bytes(pickle.dumps({"fbnet": {"a": 1.0}})[:-5])
    code, _, err = run(["tables", "build", "--lut", str(bad), "--out", str(tmp_path / "t.parquet")], capsys)
    assert_one_line_exit_2(code, err, "neither JSON nor a readable pickle")


# --------------------------------------------------------------------------- table files


def _shipped_columns() -> dict:
    from nascsim._data import shipped_path

    return read_table_columns(shipped_path("tables") / TABLE_FILE)


def _with(name, fn):
    def edit(cols):
        cols = dict(cols)
        cols[name] = fn(np.array(cols[name], copy=True))
        return cols

    return edit


def _rows(keep):
    def edit(cols):
        idx = keep(np.arange(len(cols["block"])), np.asarray(cols["block"]).astype(str))
        return {k: v[idx] for k, v in cols.items()}

    return edit


def _drop(*names):
    return lambda cols: {k: v for k, v in cols.items() if k not in names}


def _set_at(i, value):
    def fn(a):
        a = a.astype(object) if not isinstance(value, (int, float)) else a.astype(np.float64)
        a[i] = value
        return a

    return fn


TABLE_CASES = {
    "missing block column": (_drop("block"), "missing column(s) block"),
    "missing op column": (_drop("op"), "missing column(s) op"),
    "no latency column": (_drop(*[c for c in _shipped_columns() if c.endswith("_latency")]), "no <device>_latency column"),
    "energy without latency": (_drop("eyeriss_latency"), "eyeriss_energy has no eyeriss_latency"),
    "NaN latency": (_with("raspi4_latency", _set_at(17, float("nan"))), "'raspi4_latency' row 17"),
    "negative latency": (_with("edgegpu_latency", _set_at(40, -1.0)), "'edgegpu_latency' row 40 (layer) is negative"),
    "infinite energy": (_with("fpga_energy", _set_at(3, float("inf"))), "'fpga_energy' row 3"),
    "a layer row missing": (_rows(lambda i, b: i != 30), "has 0 rows"),
    "a layer row twice": (_rows(lambda i, b: np.r_[i, 30]), "has 2 rows"),
    "two stem rows": (_rows(lambda i, b: np.r_[i, 0]), "2 'stem' rows"),
    "no fc row": (_rows(lambda i, b: i[b != "fc"]), "no 'fc' row"),
    "layer index 23 on a layer row": (_with("layer", _set_at(5, 23)), "layer 23"),
    "op 9": (_with("op", _set_at(5, 9)), "op 9"),
    "fractional op": (_with("op", _set_at(5, 1.5)), "holds 1.5, not an integer"),
    "unknown block": (_with("block", lambda a: np.where(np.arange(len(a)) == 0, "stemm", a.astype(str))), "block 'stemm'"),
    "null classes on an fc row": (_with("classes", _set_at(-1, float("nan"))), "column 'classes' row"),
    "duplicate fc classes": (_with("classes", _set_at(-1, 10)), "each must be a distinct positive integer"),
    "strings in a latency column": (_with("raspi4_latency", lambda a: a.astype(str)), "'raspi4_latency' has type"),
    "bad device name": (lambda c: {**c, "my board_latency": c["raspi4_latency"]}, "names device 'my board'"),
}


def _write_columns(cols: dict, path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({k: pa.array(np.asarray(v).tolist()) for k, v in cols.items()}), path)
    return path


@pytest.mark.parametrize("case", list(TABLE_CASES))
def test_a_damaged_table_file_is_refused_with_one_line(tmp_path, capsys, case):
    edit, fragment = TABLE_CASES[case]
    path = _write_columns(edit(_shipped_columns()), tmp_path / "t.parquet")
    with pytest.raises(TableError) as exc:
        load_tables(path)
    assert fragment in str(exc.value) and "\n" not in str(exc.value) and "t.parquet" in str(exc.value)
    code, _, err = run(["tables", "check", str(path)], capsys)
    assert_one_line_exit_2(code, err, fragment)


def test_table_files_of_the_wrong_kind_are_one_line(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1 not really")
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"block": [["stem"]], "raspi4_latency": [1.0]}), nested)
    for path, fragment in ((junk, "cannot read table file"), (nested, "column 'block' has type list"), (tmp_path / "nope.parquet", "not found")):
        code, _, err = run(["tables", "check", str(path)], capsys)
        assert_one_line_exit_2(code, err, fragment)
