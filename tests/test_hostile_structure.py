"""Hostile structured data: pickles that would build objects from raw bytes, nesting 50,000 levels
deep, wrong types where a reader expects a dict, a number or a name, and decode caches that lie.
Every case ends in one line on stderr naming the bad value, exit code 2, no traceback and nothing
written (docs/input-contract.md lists the classes)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nascsim.safe_load import MAX_DEPTH, StructureError, loads_json, loads_toml
from nascsim.safe_pickle import PlainArray, RefusedPickle, plain_loads
from _cli_helpers import assert_contract, run_in_process
from _cli_helpers import run_subprocess as nascsim_subprocess
from surrogate_fixtures import make_stand_in_surrogate, synthetic_evaluations, write_evaluations

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from _train_fixtures import write_cifar10  # noqa: E402

ARCH = ",".join(["k3_e1"] * 22)
DEEP = 50_000


def files_under(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


def nascsim_in_process(argv, cwd: Path) -> tuple[int, str]:
    """(exit code, stderr) of ``nascsim ARGV`` run in this process with ``cwd`` as working folder."""
    code, _, err = run_in_process(argv, cwd)
    return code, err


# ------------------------------------------------------------------------------------------------
# pickles: no object built from raw bytes
# ------------------------------------------------------------------------------------------------

def array_pickle(spec: str, flags: int, shape: tuple[int, ...], raw: bytes, order: str = "|",
                 module: str = "numpy._core.multiarray") -> bytes:
    """A protocol-2 pickle of one array written opcode by opcode, as numpy writes it, but with the
    dtype spec, the dtype's flags, the byte order and the raw data the caller chooses."""
    p = pickle

    def s(text: str) -> bytes:
        b = text.encode()
        return p.BINUNICODE + len(b).to_bytes(4, "little") + b

    def i(n: int) -> bytes:
        return p.BININT + n.to_bytes(4, "little", signed=True)

    dims = b"".join(i(n) for n in shape)
    return b"".join([
        p.PROTO, b"\x02",
        p.GLOBAL, f"{module}\n_reconstruct\n".encode(), p.GLOBAL, b"numpy\nndarray\n", i(0), p.TUPLE1,
        p.SHORT_BINBYTES, b"\x01b", p.TUPLE3, p.REDUCE,
        p.MARK, i(1), p.MARK, dims, p.TUPLE,
        p.GLOBAL, b"numpy\ndtype\n", s(spec), p.NEWFALSE, p.NEWTRUE, p.TUPLE3, p.REDUCE,
        p.MARK, i(3), s(order), p.NONE, p.NONE, p.NONE, i(-1), i(-1), i(flags), p.TUPLE, p.BUILD,
        p.NEWFALSE, p.BINBYTES, len(raw).to_bytes(4, "little"), raw, p.TUPLE, p.BUILD, p.STOP,
    ])


def test_the_array_pickle_of_this_test_is_what_numpy_itself_reads():
    a = np.arange(6, dtype="<f8").reshape(2, 3)
    assert np.array_equal(pickle.loads(array_pickle("f8", 0, (2, 3), a.tobytes(), "<")), a)


def test_an_object_array_with_cleared_flags_is_refused_before_numpy_reads_its_bytes():
    blob = array_pickle("O8", 0, (2,), b"\x41" * 16)
    with pytest.raises(RefusedPickle, match="dtype 'O8'"):
        plain_loads(blob)


PICKLE_DTYPES = st.sampled_from(sorted({*np.typecodes["All"], "O8", "V8", "U2", "S4", "M8[s]", "f8,O", "(2,)f8", "b1"}))


@settings(max_examples=150, deadline=None)
@given(spec=PICKLE_DTYPES, flags=st.integers(0, 255), order=st.sampled_from("<>|="),
       n=st.integers(0, 4), extra=st.integers(-2, 2), module=st.sampled_from(["numpy._core.multiarray", "numpy.core.multiarray"]))
def test_any_array_pickle_gives_a_plain_number_array_or_a_refusal(spec, flags, order, n, extra, module):
    """Whatever dtype, flags, byte order and byte count the file claims, the result is an array of
    plain numbers holding exactly those bytes, or RefusedPickle: never an object array."""
    try:
        dt = np.dtype(spec)
        size = max(0, n * dt.itemsize + extra)
    except TypeError:
        dt, size = None, n
    raw = bytes(range(size % 256)) * (size // 256) + bytes(range(size % 256))
    raw = raw[:size]
    try:
        arr = plain_loads(array_pickle(spec, flags, (n,), raw, order, module))
    except RefusedPickle as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(arr, PlainArray) and arr.dtype.kind in "biuf" and not arr.dtype.hasobject
    assert arr.dtype.fields is None and arr.shape == (n,) and len(raw) == n * arr.dtype.itemsize
    claimed = dt.newbyteorder(order) if order in "<>" and dt.itemsize > 1 else dt
    native = claimed.newbyteorder("=")
    assert arr.astype(native).tobytes() == np.frombuffer(raw, claimed).astype(native).tobytes()


@pytest.mark.parametrize("payload, fragment", [
    (lambda: {"fbnet": [[[[[[1.0]]]]]] * 2}, None),
    (lambda: {"x": np.array([1.5, 2.5], dtype=">f4"), "y": np.float64(2.0), "z": np.bool_(True)}, None),
    (lambda: np.array([None], dtype=object), "dtype 'O8'"),
    (lambda: np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]), "dtype"),
    (lambda: np.array(["ab"]), "dtype"),
])
def test_plain_pickles_read_and_others_are_refused(payload, fragment):
    for protocol in (2, 5):
        blob = pickle.dumps(payload(), protocol=protocol)
        if fragment is None:
            got, want = plain_loads(blob), payload()
            assert json.dumps(got, default=lambda a: np.asarray(a).tolist()) == json.dumps(want, default=lambda a: np.asarray(a).tolist())
        else:
            with pytest.raises(RefusedPickle, match=fragment):
                plain_loads(blob)


def test_a_pickle_nested_50000_levels_is_refused():
    blob = b"\x80\x02" + b"]" * DEEP + b"a" * (DEEP - 1) + b"."
    with pytest.raises(RefusedPickle, match="nested deeper"):
        plain_loads(blob)


EVIL = "@@evil@@"


def with_evil_array(obj, n: int = 2) -> bytes:
    """A protocol-2 pickle of ``obj`` in which the string :data:`EVIL` (memoised: every use is the
    same object) is an object array of ``n`` pointers 0x4141414141414141 read from raw bytes."""
    body = pickle.dumps(obj, protocol=2)
    text = pickle.BINUNICODE + len(EVIL).to_bytes(4, "little") + EVIL.encode()
    assert body.count(text) == 1
    return body.replace(text, array_pickle("O8", 0, (n,), b"\x41" * 8 * n)[2:-1])


def _evil_tables_pickle() -> bytes:
    from nascsim.hw.tables import METRICS, required_keys

    # the one array under every required key: the reader would print it and dereference 0x4141...
    return with_evil_array({m: {k: EVIL for k in required_keys()} for m in METRICS})


def test_tables_build_refuses_an_object_array_from_raw_bytes_without_crashing(tmp_path):
    (tmp_path / "HW.pickle").write_bytes(_evil_tables_pickle())
    code, err = nascsim_subprocess(["tables", "build", "--lut", "HW.pickle", "--out", "t.parquet"], tmp_path, 60)
    assert_contract(code, err, "dtype 'O8'", "HW.pickle")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["HW.pickle"]


def test_supernet_train_refuses_a_cifar_batch_of_object_pointers_without_crashing(tmp_path):
    write_cifar10(tmp_path / "d", per_batch=4, test=4)
    batch = tmp_path / "d" / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(with_evil_array({b"data": EVIL, b"labels": [0, 1, 2, 3]}, 4))
    before = files_under(tmp_path)
    code, err = nascsim_subprocess(["supernet", "train", "--data", "d", "--out", "o", "--epochs", "1", "--no-progress",
                                    "--device", "cpu"], tmp_path, 1800)
    assert_contract(code, err, "data_batch_2", "dtype 'O8'")
    assert files_under(tmp_path) == before


# ------------------------------------------------------------------------------------------------
# nesting: 50,000 levels, before any parser sees it
# ------------------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(depth=st.integers(MAX_DEPTH + 1, DEEP), opener=st.sampled_from(["[", "{\"a\":"]), fmt=st.sampled_from(["json", "toml"]))
def test_any_nesting_past_the_limit_is_one_structure_error(depth, opener, fmt):
    if fmt == "json":
        close = "]" if opener == "[" else "}"
        text = opener * depth + "1" + close * depth
        load = loads_json
    else:
        text = "x = " + ("[" if opener == "[" else "{a = ") * depth + "1" + ("]" if opener == "[" else "}") * depth
        load = loads_toml
    with pytest.raises(StructureError) as exc:
        load(text, "f")
    assert "\n" not in str(exc.value) and "levels deep" in str(exc.value)


@given(depth=st.integers(1, MAX_DEPTH - 1))
@settings(max_examples=30, deadline=None)
def test_nesting_within_the_limit_reads_back(depth):
    assert loads_json("[" * depth + "]" * depth, "f") is not None
    assert loads_toml("x = " + "[" * depth + "]" * depth, "f")["x"] is not None


def test_brackets_inside_strings_and_comments_do_not_count():
    assert loads_json(json.dumps({"a": "[" * DEEP}), "f") == {"a": "[" * DEEP}
    assert loads_toml('a = "' + "{" * DEEP + '"\n# ' + "[" * DEEP + "\nb = '''" + "[" * 500 + "'''", "f")["a"] == "{" * DEEP


def test_dotted_toml_keys_nesting_too_deep_are_refused():
    with pytest.raises(StructureError, match="nested deeper"):
        loads_toml(".".join(["a"] * 5000) + " = 1", "f")


def _deep(kind: str) -> str:
    return {"json": "[" * DEEP + "]" * DEEP, "toml": "x = " + "[" * DEEP + "]" * DEEP}[kind]


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    from nascsim.surrogate import save_surrogate

    root = tmp_path_factory.mktemp("deep")
    return save_surrogate(make_stand_in_surrogate("fbnet", 0), root / "stand-in.json")


def _deep_case(name: str, tmp: Path, stand_in: Path) -> list:
    """Writes the deep file of case ``name`` into ``tmp``; returns the command that reads it."""
    if name == "surrogate JSON":
        (tmp / "s.json").write_text(_deep("json"))
        return ["surrogate", "show", "s.json"]
    if name == "sweep TOML":
        (tmp / "sweep.toml").write_text(_deep("toml"))
        return ["sweep", "--config", "sweep.toml"]
    if name == "bench suite":
        (tmp / "suite.toml").write_text(_deep("toml"))
        return ["bench", "--suite", "suite.toml", "--surrogate", stand_in, "--out", "b"]
    if name == "bench baseline":
        (tmp / "base.json").write_text(_deep("json"))
        return ["bench", "--baseline", "base.json", "--surrogate", stand_in, "--out", "b", "--seeds", "2"]
    if name == "confirm records":
        (tmp / "res.json").write_text(_deep("json"))
        return ["confirm", "res.json", "--data", "nodata", "--out", "c.parquet"]
    if name == "parquet metadata":
        import pyarrow.parquet as pq

        frame, _ = synthetic_evaluations("fbnet", n_pairs=10, seed=1)
        pq.write_table(frame.to_arrow().replace_schema_metadata({"nascsim_supernet": _deep("json")}), tmp / "ev.parquet")
        return ["surrogate", "fit", "ev.parquet", "--out", "o", "--no-quality", "--quiet"]
    if name == "lookup-table JSON":
        (tmp / "lut.json").write_text(_deep("json"))
        return ["tables", "build", "--lut", "lut.json", "--out", "t.parquet"]
    raise KeyError(name)


DEEP_CASES = ["surrogate JSON", "sweep TOML", "bench suite", "bench baseline", "confirm records", "parquet metadata",
              "lookup-table JSON"]


@pytest.mark.parametrize("case", DEEP_CASES)
def test_a_file_nested_50000_levels_deep_is_one_line_from_every_reader(case, tmp_path, stand_in):
    argv = _deep_case(case, tmp_path, stand_in)
    before = files_under(tmp_path)
    code, err = nascsim_in_process(argv, tmp_path)
    assert_contract(code, err, "levels deep")
    assert files_under(tmp_path) == before


# ------------------------------------------------------------------------------------------------
# wrong types: evaluation metadata, confirm records, checkpoints
# ------------------------------------------------------------------------------------------------

WRONG_VALUES = st.one_of(st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                         st.booleans(), st.floats(allow_nan=True), st.text(max_size=5).filter(lambda t: not t.isdigit()))
BAD_META = {
    "classes": st.one_of(WRONG_VALUES.filter(lambda v: not (isinstance(v, float) and v.is_integer() and 2 <= v <= 1000)),
                         st.sampled_from([-1, 0, 1, 10**7, 2**70])),
    "split_dropout_train": st.one_of(WRONG_VALUES.filter(lambda v: not (isinstance(v, float) and 0 <= v < 1)),
                                     st.sampled_from([-0.5, 1.0, 7])),
    "space": st.one_of(st.lists(st.text(max_size=3), max_size=2), st.integers(), st.sampled_from(["resnet", ""])),
    "id": st.one_of(st.lists(st.text(max_size=3), max_size=2), st.integers(1), st.sampled_from(["../x", "a/b"])),
    "dataset": st.one_of(st.lists(st.integers(), max_size=2), st.integers(), st.dictionaries(st.text(max_size=2), st.none(), max_size=1)),
}


@pytest.fixture(scope="module")
def evals(tmp_path_factory):
    return synthetic_evaluations("fbnet", n_pairs=10, seed=1)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(sorted(BAD_META)), data=st.data())
def test_a_wrong_type_at_any_metadata_key_is_one_line_and_writes_nothing(key, data, evals, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("meta")
    frame, meta = evals
    value = data.draw(BAD_META[key])
    if key == "dataset":
        frame = frame.drop("dataset") if "dataset" in frame.columns else frame
    write_evaluations(frame, {**meta, key: value}, tmp / "ev.parquet")
    before = files_under(tmp)
    code, err = nascsim_in_process(["surrogate", "fit", "ev.parquet", "--out", "o", "--no-quality", "--quiet"], tmp)
    assert_contract(code, err, "ev.parquet")
    assert files_under(tmp) == before


def test_evaluation_metadata_that_is_a_list_is_one_line(tmp_path, evals):
    import pyarrow.parquet as pq

    pq.write_table(evals[0].to_arrow().replace_schema_metadata({"nascsim_supernet": "[1, 2]"}), tmp_path / "ev.parquet")
    code, err = nascsim_in_process(["surrogate", "fit", "ev.parquet", "--out", "o", "--no-quality"], tmp_path)
    assert_contract(code, err, "must be an object", "got a list")


RECORD_FIELDS = {
    "arch": st.one_of(st.integers(), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
                      st.lists(st.lists(st.integers(), max_size=2), min_size=22, max_size=22), st.lists(st.integers(99, 10**6), min_size=22, max_size=22)),
    "split": st.one_of(st.lists(st.integers(), max_size=2), st.text(max_size=3), st.sampled_from([-1, 23, 10**7, 2.5, True])),
    "accuracy": st.one_of(st.lists(st.floats(), max_size=2), st.text(max_size=3), st.sampled_from([2.0, -1, float("nan"), True])),
    "loss": st.one_of(st.lists(st.floats(), max_size=2), st.dictionaries(st.text(max_size=1), st.none(), max_size=1),
                      st.sampled_from([1.5, -0.1, True])),
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(RECORD_FIELDS)), data=st.data(), wrap=st.sampled_from(["list", "results", "one"]))
def test_a_wrong_type_in_any_confirm_record_field_is_one_line(field, data, wrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rec")
    record = {"arch": ARCH, "split": 3, "accuracy": 0.5, field: data.draw(RECORD_FIELDS[field])}
    doc = {"list": [record], "results": {"results": [record]}, "one": record}[wrap]
    (tmp / "res.json").write_text(json.dumps(doc))
    before = files_under(tmp)
    code, err = nascsim_in_process(["confirm", "res.json", "--data", "nodata", "--out", "c.parquet"], tmp)
    assert_contract(code, err, "res.json")
    assert files_under(tmp) == before


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("c10")
    write_cifar10(root, per_batch=8, test=6)
    return root


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory, data):
    """A real, tiny supernet checkpoint (one epoch on 8 images) to break one field at a time."""
    out = tmp_path_factory.mktemp("sn")
    code, err = nascsim_in_process(["supernet", "train", "--data", data, "--out", out / "sn", "--epochs", "1",
                                    "--train-images", "8", "--valid-images", "8", "--batch-size", "8", "--no-progress",
                                    "--device", "cpu", "--monitor-pairs", "0"], out)
    assert code == 0, err
    return torch.load(out / "sn" / "checkpoint.pt", weights_only=True)


CHECKPOINT_CASES = {
    "classes -1": (lambda s: s.update(classes=-1), "classes must be an integer in 1..1000, got -1"),
    "classes 10**7": (lambda s: s.update(classes=10**7), "got 10000000"),
    "classes a list": (lambda s: s.update(classes=[10]), "classes must be an integer"),
    "missing recipe": (lambda s: s.pop("recipe"), "lacks 'recipe'"),
    "recipe a list": (lambda s: s.update(recipe=[1, 2]), "recipe must be an object"),
    "recipe with a bad value": (lambda s: s["recipe"].update(lr=-1.0), "lr=-1.0"),
    "stats a dict": (lambda s: s.update(stats={"a": 1}), "stats must be a list"),
    "std zero": (lambda s: s.update(stats=[[0.5] * 3, [0.0] * 3]), "stats std"),
    "valid images 0": (lambda s: s.update(valid_images=0), "valid_images must be an integer"),
    "log a dict": (lambda s: s.update(log={"a": 1}), "log must be a list"),
    "space a number": (lambda s: s.update(space=3), "space must be a string"),
    "kind a tensor": (lambda s: s.update(kind=torch.zeros(2)), "is not a supernet checkpoint"),
    "nested 100 deep": (lambda s: s.update(dataset=__import__("functools").reduce(lambda a, _: [a], range(100), 0)),
                        "nested deeper"),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_a_checkpoint_field_of_the_wrong_type_or_range_is_one_line(case, good_checkpoint, data, tmp_path):
    edit, fragment = CHECKPOINT_CASES[case]
    state = {k: (dict(v) if isinstance(v, dict) else v) for k, v in good_checkpoint.items()}
    edit(state)
    (tmp_path / "sn").mkdir()
    torch.save(state, tmp_path / "sn" / "checkpoint.pt")
    before = files_under(tmp_path)
    code, err = nascsim_in_process(["supernet", "evaluate", "--checkpoint", "sn", "--data", data, "--out", "e.parquet",
                                    "--no-progress", "--device", "cpu"], tmp_path)
    assert_contract(code, err, "checkpoint.pt", fragment)
    assert files_under(tmp_path) == before


def test_a_resumed_checkpoint_of_the_wrong_shape_is_one_line(good_checkpoint, data, tmp_path):
    state = dict(good_checkpoint)
    state["optimizer"] = [1, 2]
    (tmp_path / "sn").mkdir()
    torch.save(state, tmp_path / "sn" / "checkpoint.pt")
    before = files_under(tmp_path)
    code, err = nascsim_in_process(["supernet", "train", "--data", data, "--out", "sn", "--resume", "--no-progress",
                                    "--device", "cpu"], tmp_path)
    assert_contract(code, err, "optimizer must be an object")
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("spec_edit, fragment", [
    ({"classes": 10**7}, "classes must be an integer in 1..1000"),
    ({"arch": {"a": 1}}, "arch must be a list"),
    ({"split": [3]}, "split must be an integer"),
])
def test_an_exported_part_with_a_bad_spec_is_refused(spec_edit, fragment, tmp_path):
    from nascsim.train.parts import load_part

    spec = {"space": "fbnet", "arch": [0] * 22, "split": 3, "classes": 10, **spec_edit}
    torch.save({"spec": spec, "part": "head", "state_dict": {}}, tmp_path / "head.pt")
    with pytest.raises(ValueError, match=fragment):
        load_part(tmp_path / "head.pt")


# ------------------------------------------------------------------------------------------------
# decode caches: a matching fingerprint does not skip the checks
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, fragment", [
    ("y_train", lambda y: y + 50, "labels span"),
    ("y_test", lambda y: -y - 1, "labels span"),
    ("x_train", lambda x: x[:, :16], "images have shape"),
    ("y_train", lambda y: y[:-1], "labels have shape"),
    ("x_test", lambda x: x.astype(np.float32), "images have shape"),
])
def test_a_decode_cache_with_a_matching_fingerprint_is_still_checked(field, value, fragment, tmp_path):
    from nascsim.train.data import cache_file, load_dataset

    write_cifar10(tmp_path / "d", per_batch=4, test=4)
    load_dataset(tmp_path / "d")  # the fingerprint covers the files' absolute paths: the command names the same
    cache = cache_file(tmp_path / "d")
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    arrays[field] = value(arrays[field])
    with open(cache, "wb") as fh:
        np.savez(fh, **arrays)
    before = files_under(tmp_path)
    code, err = nascsim_in_process(["supernet", "train", "--data", tmp_path / "d", "--out", "o", "--epochs", "1",
                                    "--no-progress", "--device", "cpu"], tmp_path)
    assert_contract(code, err, "decoded-image cache", fragment)
    assert files_under(tmp_path) == before
