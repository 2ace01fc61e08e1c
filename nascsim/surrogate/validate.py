"""Complete validation of a surrogate document before any numba code sees it.

A surrogate file is data a user may be handed, so :func:`validate_document` checks every field the
loader and the numba kernels of :mod:`nascsim.surrogate.predict` read: required keys and their
types, every index (children, features, bitset rows, ``f_idx_map`` rows, tree roots) in range,
every tree a proper tree (each node reached exactly once from its root: no cycle, no shared or
orphan node), finite numbers, and the noise section of format version 2 (docs/surrogate.md). The first
problem found raises :class:`SurrogateFileError` (a ``ValueError``) with one line naming the file,
the field and the bad value. Only numpy is needed (no numba, no scikit-learn).

Names that may end up in a file name (``id``, ``fit --name``, the card's ``source``) must be safe
names (:func:`check_name`): letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit,
no ``..``, at most 128 characters.
"""

from __future__ import annotations

import math
import re

import numpy as np

from nascsim.surrogate.features import CATEGORICAL, FEATURE_NAMES, N_FEATURES

FORMAT = "nascsim-surrogate"
FORMAT_VERSION = 2
TARGET_NAMES = ("loss", "acc", "lsc")
TREE_KEYS = ("baseline", "tree_start", "feature", "threshold", "left", "right", "value", "flags", "bitset",
             "cat_bitsets", "known_bitsets", "f_idx_map")
NODE_LISTS = ("feature", "threshold", "left", "right", "value", "flags", "bitset")
LEAF, CATEGORICAL_FLAG, MISSING_LEFT = 1, 2, 4
MAX_CLASSES = 100_000
MAX_LOSS = 50.0  # nats (ln 100,000 classes = 11.5): beyond it a loss is a corrupted value
# target -> the range its predictions must lie in; RANGE_SLACK admits the rounding of a sum of leaves
TARGET_RANGES = {"loss": (0.0, MAX_LOSS), "acc": (0.0, 1.0), "lsc": (0.0, MAX_LOSS)}
TARGET_UNITS = {"loss": "an expected loss (nats)", "acc": "an accuracy (a fraction)", "lsc": "l_SC (nats)"}
RANGE_SLACK = 1e-9
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MAX_SHOWN = 60


class SurrogateFileError(ValueError):
    """A surrogate document that fails validation (one line: file, field, bad value)."""


def _show(value) -> str:
    """A short one-line repr of a bad value."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def check_name(name, what: str = "name") -> str:
    """Return ``name`` if it is a safe file-name stem, else raise ``ValueError`` naming it."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"{what} {_show(name)} is not a safe name (letters, digits, '.', '_', '-'; starting with a letter "
            "or digit; no '..', no path separators; at most 128 characters)"
        )
    return name


def is_number(x) -> bool:
    """A JSON number (int or float, not bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def is_int(x) -> bool:
    """A JSON integer (not bool, not a float like 1e9)."""
    return isinstance(x, int) and not isinstance(x, bool)


class _Checker:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, problem: str):
        raise SurrogateFileError(f"{self.source}: {where} {problem}")

    def get(self, d: dict, key: str, where: str):
        if key not in d:
            self.fail(f"{where}{'.' if where else ''}{key}", "is missing")
        return d[key]

    def dict_(self, x, where: str) -> dict:
        if not isinstance(x, dict):
            self.fail(where, f"must be a JSON object, got {type(x).__name__}")
        return x

    def list_(self, x, where: str) -> list:
        if not isinstance(x, list):
            self.fail(where, f"must be a list, got {type(x).__name__}")
        return x

    def text(self, x, where: str, max_len: int = 200) -> str:
        if not isinstance(x, str) or not x or len(x) > max_len or not x.isprintable():
            self.fail(where, f"must be a non-empty printable string of at most {max_len} characters, got {_show(x)}")
        return x

    def number(self, x, where: str, lo: float = -math.inf, hi: float = math.inf, hi_open: bool = False) -> float:
        if not is_number(x) or not math.isfinite(x):
            self.fail(where, f"must be a finite number, got {_show(x)}")
        if x < lo or x > hi or (hi_open and x == hi):
            self.fail(where, f"= {_show(x)} is out of range [{lo:g}, {hi:g}{')' if hi_open else ']'}")
        return float(x)

    def int_(self, x, where: str, lo: int, hi: int) -> int:
        if not is_int(x):
            self.fail(where, f"must be an integer, got {_show(x)}")
        if not lo <= x <= hi:
            self.fail(where, f"= {_show(x)} is out of range {lo}..{hi}")
        return int(x)

    def int_array(self, xs, where: str) -> np.ndarray:
        xs = self.list_(xs, where)
        for i, x in enumerate(xs):
            if not is_int(x):
                self.fail(f"{where}[{i}]", f"must be an integer, got {_show(x)}")
            if not -(2**62) <= x <= 2**62:
                self.fail(f"{where}[{i}]", f"= {_show(x)} is out of range")
        return np.asarray(xs, dtype=np.int64).reshape(len(xs))

    def float_array(self, xs, where: str, allow_inf: bool = False) -> np.ndarray:
        xs = self.list_(xs, where)
        for i, x in enumerate(xs):
            if not is_number(x):
                self.fail(f"{where}[{i}]", f"must be a number, got {_show(x)}")
        a = np.asarray(xs, dtype=np.float64).reshape(len(xs))
        bad = np.isnan(a) if allow_inf else ~np.isfinite(a)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            self.fail(f"{where}[{i}]", f"must be {'a number (not NaN)' if allow_inf else 'finite'}, got {_show(xs[i])}")
        return a

    def in_range(self, a: np.ndarray, where: str, lo: int, hi: int, mask: np.ndarray | None = None) -> None:
        """Every a[i] (where mask) in lo..hi-1."""
        bad = (a < lo) | (a >= hi)
        if mask is not None:
            bad &= mask
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            self.fail(f"{where}[{i}]", f"= {int(a[i])} is out of range {lo}..{hi - 1}")

    def bitsets(self, rows, where: str) -> int:
        rows = self.list_(rows, where)
        for r, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != 8:
                self.fail(f"{where}[{r}]", f"must be a list of 8 32-bit words, got {_show(row)}")
            for w, word in enumerate(row):
                if not is_int(word) or not 0 <= word < 2**32:
                    self.fail(f"{where}[{r}][{w}]", f"must be an integer in 0..2**32-1, got {_show(word)}")
        return len(rows)


def _check_trees(c: _Checker, e, where: str) -> None:
    """One target's export (:func:`nascsim.surrogate.export.export_trees`)."""
    e = c.dict_(e, where)
    for key in TREE_KEYS:
        c.get(e, key, where)
    c.number(e["baseline"], f"{where}.baseline")
    feature = c.int_array(e["feature"], f"{where}.feature")
    n = len(feature)
    threshold = c.float_array(e["threshold"], f"{where}.threshold", allow_inf=True)  # +inf: scikit-learn's split on missing values
    left = c.int_array(e["left"], f"{where}.left")
    right = c.int_array(e["right"], f"{where}.right")
    c.float_array(e["value"], f"{where}.value")
    flags = c.int_array(e["flags"], f"{where}.flags")
    bitset = c.int_array(e["bitset"], f"{where}.bitset")
    for name, arr in (("threshold", threshold), ("left", left), ("right", right), ("flags", flags), ("bitset", bitset)):
        if len(arr) != n:
            c.fail(f"{where}.{name}", f"has {len(arr)} entries, but {where}.feature has {n}")
    if len(e["value"]) != n:
        c.fail(f"{where}.value", f"has {len(e['value'])} entries, but {where}.feature has {n}")
    c.in_range(flags, f"{where}.flags", 0, 8)
    n_cat = c.bitsets(e["cat_bitsets"], f"{where}.cat_bitsets")
    n_known = c.bitsets(e["known_bitsets"], f"{where}.known_bitsets")
    fmap = c.dict_(e["f_idx_map"], f"{where}.f_idx_map")
    mapped = set()
    for k, v in fmap.items():
        if not (isinstance(k, str) and k.isdigit() and int(k) in CATEGORICAL):
            c.fail(f"{where}.f_idx_map", f"key {_show(k)} is not the index of a categorical feature ({', '.join(map(str, CATEGORICAL))})")
        c.int_(v, f"{where}.f_idx_map[{k!r}]", 0, n_known - 1)
        mapped.add(int(k))

    internal = (flags & LEAF) == 0
    cat = internal & ((flags & CATEGORICAL_FLAG) != 0)
    c.in_range(feature, f"{where}.feature", 0, N_FEATURES, internal)
    c.in_range(left, f"{where}.left", 0, n, internal)
    c.in_range(right, f"{where}.right", 0, n, internal)
    c.in_range(bitset, f"{where}.bitset", 0, n_cat, cat)
    for i in np.flatnonzero(cat):
        f = int(feature[i])
        if f not in CATEGORICAL or f not in mapped:
            c.fail(f"{where}.feature[{i}]", f"= {f} ({FEATURE_NAMES[f]}) is used by a categorical split but is not a categorical feature with an f_idx_map entry")

    starts = c.int_array(e["tree_start"], f"{where}.tree_start")
    if len(starts) == 0:
        if n:
            c.fail(f"{where}.tree_start", f"is empty but there are {n} nodes")
        return
    if starts[0] != 0:
        c.fail(f"{where}.tree_start[0]", f"= {int(starts[0])}; the first tree must start at node 0")
    c.in_range(starts, f"{where}.tree_start", 0, n)
    steps = np.diff(starts)
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0]) + 1
        c.fail(f"{where}.tree_start[{i}]", f"= {int(starts[i])} does not come after the previous tree's start {int(starts[i - 1])}")
    ends = np.r_[starts[1:], n]
    seen = np.zeros(n, dtype=bool)
    internal_l, left_l, right_l = internal.tolist(), left.tolist(), right.tolist()
    for t, (s, end) in enumerate(zip(starts.tolist(), ends.tolist())):
        stack = [s]
        seen[s] = True
        count = 0
        while stack:
            node = stack.pop()
            count += 1
            if not internal_l[node]:
                continue
            for side, child in (("left", left_l[node]), ("right", right_l[node])):
                if not s <= child < end:
                    c.fail(f"{where}.{side}[{node}]", f"= {child} leaves tree {t} (nodes {s}..{end - 1})")
                if seen[child]:
                    c.fail(f"{where}.{side}[{node}]", f"= {child} reaches node {child} a second time (a cycle or a shared node) in tree {t}")
                seen[child] = True
                stack.append(child)
        if count != end - s:
            orphan = s + int(np.flatnonzero(~seen[s:end])[0])
            c.fail(f"{where}", f"node {orphan} of tree {t} is not reachable from the tree's root {s}")


def _check_noise(c: _Checker, noise, where: str = "noise") -> None:
    """The noise section of format version 2: p grid, sds per target, n_images, shared shares."""
    noise = c.dict_(noise, where)
    for key in ("p", "loss", "acc", "lsc", "n_images", "shared"):
        c.get(noise, key, where)
    grid = c.float_array(noise["p"], f"{where}.p")
    m = len(grid)
    if m == 0:
        c.fail(f"{where}.p", "is empty")
    for i, p in enumerate(grid):
        if not 0 <= p < 1:
            c.fail(f"{where}.p[{i}]", f"= {float(p)!r} is out of range [0, 1)")
    if m > 1 and (np.diff(grid) <= 0).any():
        c.fail(f"{where}.p", f"must be strictly ascending, got {_show(noise['p'])}")
    for key in ("loss", "acc"):
        sd = c.float_array(noise[key], f"{where}.{key}")
        if len(sd) != m:
            c.fail(f"{where}.{key}", f"has {len(sd)} entries, but {where}.p has {m}")
        if (sd < 0).any():
            c.fail(f"{where}.{key}[{int(np.flatnonzero(sd < 0)[0])}]", "is a negative standard deviation")
        top = TARGET_RANGES[key][1]
        if (sd > top).any():
            i = int(np.flatnonzero(sd > top)[0])
            c.fail(f"{where}.{key}[{i}]", f"= {float(sd[i])!r} is a standard deviation above {top:g}, the range of {TARGET_UNITS[key]}")
    c.number(noise["lsc"], f"{where}.lsc", lo=0.0, hi=MAX_LOSS)
    c.int_(noise["n_images"], f"{where}.n_images", 1, 10**9)
    shared = c.dict_(noise["shared"], f"{where}.shared")
    for key in ("loss", "acc"):
        share = c.float_array(c.get(shared, key, f"{where}.shared"), f"{where}.shared.{key}")
        if len(share) != m:
            c.fail(f"{where}.shared.{key}", f"has {len(share)} entries, but {where}.p has {m}")
        bad = (share < 0) | (share > 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            c.fail(f"{where}.shared.{key}[{i}]", f"= {float(share[i])!r} is out of range [0, 1]")
    c.number(c.get(shared, "lsc", f"{where}.shared"), f"{where}.shared.lsc", 0.0, 1.0)


def validate_document(doc, source: str = "surrogate document") -> None:
    """Raise :class:`SurrogateFileError` (one line) unless ``doc`` is a complete, well-formed
    surrogate document of format version 2 (see :mod:`nascsim.surrogate.model`)."""
    from nascsim.space import get_space

    c = _Checker(source)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        fmt = doc.get("format") if isinstance(doc, dict) else None
        raise SurrogateFileError(f"{source} is not a nascsim surrogate (format {_show(fmt)})")
    version = doc.get("format_version")
    if version == 1:
        raise SurrogateFileError(
            f"{source} is a format-version-1 surrogate (no minibatch-noise components); "
            "refit it with `nascsim surrogate fit EVALS.parquet --out DIR`"
        )
    if version != FORMAT_VERSION:
        raise SurrogateFileError(f"{source} has surrogate format version {_show(version)}; this nascsim reads version {FORMAT_VERSION}")
    for key in ("id", "dataset", "space", "classes", "split_dropout_train", "loss_set", "card", "feature_names",
                "flop_check", "targets", "noise"):
        c.get(doc, key, "")
    try:
        check_name(doc["id"], "id")
    except ValueError as exc:
        c.fail("id", str(exc).removeprefix("id "))
    c.text(doc["dataset"], "dataset")
    if not isinstance(doc["space"], str):
        c.fail("space", f"must be a string, got {_show(doc['space'])}")
    try:
        get_space(doc["space"])
    except ValueError as exc:
        c.fail("space", f"names no known search space ({exc})")
    c.int_(doc["classes"], "classes", 2, MAX_CLASSES)
    c.number(doc["split_dropout_train"], "split_dropout_train", 0.0, 1.0, hi_open=True)
    loss_set = c.float_array(doc["loss_set"], "loss_set")
    if len(loss_set) == 0 or ((loss_set < 0) | (loss_set >= 1)).any():
        c.fail("loss_set", f"must hold rates in [0, 1), got {_show(doc['loss_set'])}")
    c.dict_(doc["card"], "card")
    if doc["feature_names"] != list(FEATURE_NAMES):
        c.fail("feature_names", f"= {_show(doc['feature_names'])} are not the features this nascsim computes")
    c.number(doc["flop_check"], "flop_check")
    targets = c.dict_(doc["targets"], "targets")
    for name in TARGET_NAMES:
        _check_trees(c, c.get(targets, name, "targets"), f"targets.{name}")
        _check_prediction_range(c, targets[name], name)
    _check_noise(c, doc["noise"])


def _check_prediction_range(c: _Checker, e: dict, name: str) -> None:
    """Every prediction of target ``name`` within its plausible range (:data:`TARGET_RANGES`):
    the baseline, and the baseline plus the smallest (largest) leaf of every tree, which bounds
    whatever the trees predict. So a file cannot make nascsim report an accuracy outside [0, 1]
    or an infinite loss, whatever its leaves hold."""
    lo, hi = TARGET_RANGES[name]
    where = f"targets.{name}"
    baseline = c.number(e["baseline"], f"{where}.baseline")
    if not lo <= baseline <= hi:
        c.fail(f"{where}.baseline", f"= {_show(e['baseline'])} is out of range [{lo:g}, {hi:g}] for {TARGET_UNITS[name]}")
    value = np.asarray(e["value"], dtype=np.float64)
    leaf = (np.asarray(e["flags"], dtype=np.int64) & LEAF) != 0
    starts = np.asarray(e["tree_start"], dtype=np.int64)
    if len(starts) == 0:
        return
    ends = np.r_[starts[1:], len(value)]
    low, high = baseline, baseline
    for s, end in zip(starts.tolist(), ends.tolist()):
        leaves = value[s:end][leaf[s:end]]
        if len(leaves):
            low += float(leaves.min())
            high += float(leaves.max())
    if low < lo - RANGE_SLACK or high > hi + RANGE_SLACK:
        c.fail(where, f"can predict {low:.6g}..{high:.6g} (baseline plus each tree's extreme leaves), outside "
                      f"[{lo:g}, {hi:g}] for {TARGET_UNITS[name]}")
