"""Benchmark suites: which cells, methods and seeds a regression benchmark runs, and the tolerances
of its check against a baseline. A suite is a TOML file (``nascsim/bench/suites/*.toml`` ship with
the package; ``paper.toml`` is the default)::

    format = "nascsim-bench-suite"
    name = "paper"
    version = 1                          # bump when the cells or options change
    methods = ["nasc", "hwnas", "hwnas-dropout"]
    reference = "nasc"                   # every method is compared with it, paired per seed
    seeds = 60                           # paired seeds per cell: seed_offset .. seed_offset+seeds-1
    seed_offset = 0
    confidence = 0.95                    # of the paired comparisons' intervals
    check_confidence = 0.99              # of the baseline check, family-wise over all its tests

    [options]                            # SearchConfig fields of every cell (paper defaults otherwise)
    steps = 35190

    [[group]]                            # a block of cells: every threshold x loss rate
    space = "fbnet"
    threshold_ms = [20, 25, 30, 40]
    loss = [0, 0.2, 0.5]

    [[group]]
    space = "extended"
    threshold_ms = [15]
    loss = [0, 0.2, 0.5]
    optional = true                      # skipped, with a note, when the space has no surrogate

    [tolerance]                          # how far a metric may move to the worse side (see stats.py)
    feasible_rate = 0.10                 # share of runs
    accuracy = 0.005                     # fraction (0.005 = 0.5 percentage points), all runs
    accuracy_feasible = 0.005            # fraction, feasible runs only
    T_ms = 1.0                           # ms, median latency of all runs

A group may also set any other SearchConfig field (except ``method`` and ``seed``) and a
``label`` that tells its cells apart from another group's cells with the same space, threshold
and loss rate. The suite's *identity* (:attr:`Suite.digest`) covers its name, version, options and
cells -- not its methods, seeds, confidences or tolerances, which a check may change.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "nascsim-bench-suite"
SUITES_DIR = Path(__file__).resolve().parent / "suites"
DEFAULT_SUITE = "paper"

# metric -> (higher is better, kind): "rate" (a share of runs) or "location" (a median)
METRICS: dict[str, tuple[bool, str]] = {
    "feasible_rate": (True, "rate"),
    "accuracy": (True, "location"),
    "accuracy_feasible": (True, "location"),
    "T_ms": (False, "location"),
}

_TOP_KEYS = {"format", "name", "version", "description", "methods", "reference", "seeds", "seed_offset",
             "confidence", "check_confidence", "options", "group", "tolerance"}
_GROUP_KEYS = {"optional", "label"}
_NOT_IN_SUITE = ("method", "seed", "tables")  # methods / seeds keys; tables: --tables
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_SEEDS = 1000


@dataclass(frozen=True)
class Group:
    """A block of cells: ``fields`` (SearchConfig field -> values) crossed; ``optional`` groups
    are skipped with a note when their space has no surrogate."""

    index: int
    fields: dict
    optional: bool = False
    label: str = ""

    @property
    def space(self) -> str:
        return self.fields.get("space", ["fbnet"])[0]


@dataclass(frozen=True)
class Suite:
    """A parsed, validated suite file (see the module docstring)."""

    name: str
    version: int
    description: str
    methods: tuple[str, ...]
    reference: str
    seeds: int
    seed_offset: int
    confidence: float
    check_confidence: float
    options: dict
    groups: tuple[Group, ...]
    tolerance: dict
    source: str = ""
    text: str = field(default="", repr=False)

    @property
    def digest(self) -> str:
        """Content digest of what the cells are: name, version, options and groups."""
        blob = json.dumps({"name": self.name, "version": self.version, "options": self.options,
                           "groups": [[g.fields, g.label] for g in self.groups]}, sort_keys=True, default=repr)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def seed_list(self) -> list[int]:
        return list(range(self.seed_offset, self.seed_offset + self.seeds))

    def grid(self, group: Group, methods, seeds: list[int]):
        """The sweep :class:`~nascsim.sweep.grid.Grid` of ``group`` for ``methods`` and ``seeds``."""
        from nascsim.sweep.grid import Grid

        given = dict(self.options)
        given.update(group.fields)
        given["method"] = list(methods)
        given["seed"] = list(seeds)
        return Grid.build(**given)

    def with_(self, **changes) -> "Suite":
        from dataclasses import replace

        return replace(self, **changes)


def shipped_suites() -> dict[str, Path]:
    """Name -> file of the suites shipped in ``nascsim/bench/suites``."""
    return {p.stem: p for p in sorted(SUITES_DIR.glob("*.toml"))}


def find_suite(name_or_path: str | os.PathLike | None) -> Path:
    """The file of a shipped suite by name, or a suite file by path (``ValueError`` naming it)."""
    if name_or_path is None:
        name_or_path = DEFAULT_SUITE
    shipped = shipped_suites()
    text = str(name_or_path)
    if text in shipped:
        return shipped[text]
    p = Path(text).expanduser()
    if p.is_file():
        return p
    raise ValueError(f"unknown suite {text!r}: neither a shipped suite ({', '.join(shipped) or 'none'}) "
                     "nor a suite file")


def load_suite(name_or_path: str | os.PathLike | None = None) -> Suite:
    """Read and validate a suite (a shipped name or a file); ``ValueError`` with one line naming
    the file and the bad value."""
    path = find_suite(name_or_path)
    where = f"suite file {str(path)!r}"
    from nascsim.atomic import read_regular_bytes
    from nascsim.safe_load import StructureError, loads_toml

    try:
        raw = read_regular_bytes(path, "suite file")
        text = raw.decode("utf-8")
        doc = loads_toml(text, where)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where} is not TOML: {exc}") from None
    except StructureError as exc:
        raise ValueError(str(exc)) from None
    except OSError as exc:
        raise ValueError(f"cannot read {where}: {exc.strerror}") from None
    source = f"shipped:{path.stem}" if path.parent == SUITES_DIR else str(path.resolve())
    try:
        return parse_suite(doc, source, text)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _int(doc: dict, key: str, default=None, minimum: int = 0, maximum: int | None = None) -> int:
    v = doc.get(key, default)
    if v is None:
        raise ValueError(f"missing {key!r}")
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum or (maximum is not None and v > maximum):
        bound = f">= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
        raise ValueError(f"{key} must be an integer {bound}, got {v!r}")
    return v


def _fraction(doc: dict, key: str, default: float) -> float:
    v = doc.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.5 <= v < 1:
        raise ValueError(f"{key} must be a number in [0.5, 1), got {v!r}")
    return float(v)


def _values(name: str, v) -> list:
    """A field's values as a list (a scalar is one value); each checked by the sweep grid."""
    from nascsim.sweep.grid import FIELD_KINDS, check_value, parse_values

    if name == "tables":
        raise ValueError("a suite names no files: give a latency table with --tables")
    if name in _NOT_IN_SUITE:
        raise ValueError(f"{name!r} is set by the suite's methods / seeds, not per cell")
    if name not in FIELD_KINDS:
        raise ValueError(f"unknown search option {name!r}")
    if isinstance(v, dict):
        raise ValueError(f"{name}: expected a value or a list of values, got a table")
    if FIELD_KINDS[name] == "floats":
        values = parse_values(name, v if isinstance(v, list) and v and isinstance(v[0], list) else [v])
        values = [list(x) for x in values]
    else:
        items = v if isinstance(v, list) else [v]
        if not items:
            raise ValueError(f"{name}: no values")
        values = list(parse_values(name, items))
    for x in values:
        check_value(name, tuple(x) if isinstance(x, list) else x)
    return values


def parse_suite(doc: dict, source: str = "", text: str = "") -> Suite:
    """A :class:`Suite` from a parsed TOML document (``ValueError`` naming the bad value)."""
    from nascsim.config import check_method

    if doc.get("format") != FORMAT:
        raise ValueError(f"not a benchmark suite (format {doc.get('format')!r}, expected {FORMAT!r})")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
    name = doc.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must be a word of letters, digits, '.', '_' or '-', got {name!r}")
    version = _int(doc, "version", minimum=1)
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise ValueError("description must be a string")
    methods = doc.get("methods")
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
        raise ValueError(f"methods must be a non-empty list of method names, got {methods!r}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods lists a method twice: {methods!r}")
    for m in methods:
        check_method(m)
    reference = doc.get("reference", methods[0])
    if not isinstance(reference, str):
        raise ValueError(f"reference must be a method name, got {reference!r}")
    check_method(reference)
    seeds = _int(doc, "seeds", minimum=2, maximum=MAX_SEEDS)
    seed_offset = _int(doc, "seed_offset", 0, minimum=0)
    confidence = _fraction(doc, "confidence", 0.95)
    check_confidence = _fraction(doc, "check_confidence", 0.99)

    options = doc.get("options", {})
    if not isinstance(options, dict):
        raise ValueError("[options] must be a table of search options")
    opts = {}
    for key, v in options.items():
        values = _values(key, v)
        if len(values) != 1:
            raise ValueError(f"options.{key}: one value for every cell, got {len(values)}; vary it in a [[group]]")
        opts[key] = values

    raw_groups = doc.get("group")
    if not isinstance(raw_groups, list) or not raw_groups or not all(isinstance(g, dict) for g in raw_groups):
        raise ValueError("no cells: give at least one [[group]] of cells")
    groups, seen = [], {}
    for i, g in enumerate(raw_groups):
        fields_ = {}
        for key, v in g.items():
            if key in _GROUP_KEYS:
                continue
            try:
                fields_[key] = _values(key, v)
            except ValueError as exc:
                raise ValueError(f"group {i + 1}: {exc}") from None
        several = [k for k, v in fields_.items() if len(v) > 1 and k not in ("threshold_ms", "loss")]
        if several:
            raise ValueError(f"group {i + 1}: only threshold_ms and loss list several values, not {several[0]}; "
                             "put each setting in its own [[group]] with a label")
        optional = g.get("optional", False)
        if not isinstance(optional, bool):
            raise ValueError(f"group {i + 1}: optional must be true or false, got {optional!r}")
        label = g.get("label", "")
        if not isinstance(label, str) or (label and not _NAME.match(label)):
            raise ValueError(f"group {i + 1}: label must be a word of letters, digits, '.', '_' or '-', got {label!r}")
        group = Group(i, fields_, optional, label)
        merged = {**opts, **fields_}
        for key in cell_keys(merged, label):
            if key in seen:
                raise ValueError(f"cell {key!r} is in groups {seen[key] + 1} and {i + 1}; give one of them a label")
            seen[key] = i
        groups.append(group)

    tol = doc.get("tolerance")
    if not isinstance(tol, dict) or not tol:
        raise ValueError(f"[tolerance] must give at least one of {', '.join(METRICS)}")
    tolerance = {}
    for key, v in tol.items():
        if key not in METRICS:
            raise ValueError(f"tolerance.{key}: unknown metric; metrics: {', '.join(METRICS)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0):
            raise ValueError(f"tolerance.{key} must be a finite number >= 0, got {v!r}")
        tolerance[key] = float(v)
    suite = Suite(name, version, description, tuple(methods), reference, seeds, seed_offset, confidence,
                  check_confidence, opts, tuple(groups), tolerance, source, text)
    for group in suite.groups:  # every cell through the sweep's grid (devices, ranges)
        suite.grid(group, suite.methods[:1], [seed_offset])
    return suite


def cell_key(space: str, threshold_ms: float, loss: float, label: str = "") -> str:
    """The name of a cell in reports and baselines, e.g. ``fbnet T30 p0.2``."""
    return f"{space} T{threshold_ms:g} p{loss:g}" + (f" [{label}]" if label else "")


def cell_keys(fields_: dict, label: str = "") -> list[str]:
    """The keys of a group's cells (``fields_``: its SearchConfig field values)."""
    from nascsim.config import SearchConfig

    space = fields_.get("space", ["fbnet"])[0]
    d = SearchConfig()
    return [cell_key(space, float(t), float(p), label)
            for t in fields_.get("threshold_ms", [d.threshold_ms]) for p in fields_.get("loss", [d.loss])]
