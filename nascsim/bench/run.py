"""Running a suite: resolve its methods, surrogates and cells (:func:`plan`, which writes nothing),
then run every group of cells through the sweep machinery into a resumable result store
(:func:`run`): one sweep folder per group, ``OUT/cells-<i>/`` (``sweep.toml`` and ``runs/``, as
``nascsim sweep --out`` writes; ``nascsim report OUT/cells-1`` draws its figures). Re-running the
same benchmark into the same folder runs only what is missing.

One search serves every loss rate of a cell (:func:`nascsim.sweep.run.run_batch`), so the cost of
a suite is (thresholds x methods x seeds) searches, whatever the number of loss rates.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nascsim.bench.suite import Group, Suite, cell_key

SUITE_COPY = "bench-suite.toml"
IDENTITY_FILE = "bench-identity.json"
REPORT_FILES = ("bench.json", "bench.md")


# -- methods ------------------------------------------------------------------------------------------

def parse_methods(text: str | None, suite: Suite) -> tuple[str, ...]:
    """Method names from ``--methods`` (the suite's when None): names of built-in, registered or
    entry-point methods, or module paths ``pkg.mod:function`` (named after the function) or
    ``NAME=pkg.mod:function``, which are imported now and registered (:func:`load_method`)."""
    if text is None:
        return suite.methods
    items = [t.strip() for t in text.split(",")]
    if not items or any(not t for t in items):
        raise ValueError(f"--methods {text!r}: expected a comma list of method names or pkg.mod:function")
    names = []
    for item in items:
        names.append(load_method(item) if ":" in item else _known(item))
    if len(set(names)) != len(names):
        raise ValueError(f"--methods {text!r} names a method twice")
    return tuple(names)


def _known(name: str) -> str:
    from nascsim.config import check_method

    return check_method(name)


def load_method(item: str) -> str:
    """Import ``pkg.mod:function`` (or ``NAME=pkg.mod:function``) and register it as a search
    method (the current folder is importable, as for ``python -m``); returns its name. Worker
    processes import it again by the same path."""
    from nascsim.methods.registry import get_method, register_method

    name, sep, target = item.partition("=")
    if not sep:
        name, target = item.rpartition(":")[2].rpartition(".")[2], item
    name, target = name.strip(), target.strip()
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise ValueError(f"method {item!r}: expected pkg.mod:function")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except ImportError as exc:
        raise ValueError(f"method {item!r}: cannot import {module!r} ({exc})") from None
    except AttributeError:
        raise ValueError(f"method {item!r}: module {module!r} has no {attr!r}") from None
    if not callable(obj):
        raise ValueError(f"method {item!r}: {target} is not callable")
    try:
        spec = get_method(name)
    except ValueError:
        spec = None
    if spec is not None and spec.target != target:
        raise ValueError(f"method {item!r}: the name {name!r} is taken ({spec.origin} method); "
                         "name yours with NAME=pkg.mod:function")
    if spec is None:
        register_method(name, target, description=f"module path {target}")
    return name


# -- surrogates ---------------------------------------------------------------------------------------

def surrogate_sets(spaces, surrogate=None, dropout=None, no_dropout=None) -> tuple[dict, dict]:
    """(space -> ``{"dropout": s, "no_dropout": s}`` for the spaces that have surrogates,
    space -> reason for those that do not). Given files fill the roles of the space they were
    fitted on; every other role takes the shipped default of its space, where one exists."""
    from nascsim.surrogate.model import default_surrogates, load_surrogate

    given = {}
    for role, value in (("dropout", dropout if dropout is not None else surrogate),
                        ("no_dropout", no_dropout if no_dropout is not None else surrogate)):
        if value is not None:
            given[role] = load_surrogate(value)
    sets, missing = {}, {}
    for space in dict.fromkeys(spaces):
        roles = {r: s for r, s in given.items() if s.space == space}
        if len(roles) < 2:
            try:
                shipped = default_surrogates(space)
            except FileNotFoundError:
                shipped = {}
            for r in ("dropout", "no_dropout"):
                if r not in roles and r in shipped:
                    roles[r] = shipped[r]
        if len(roles) == 2:
            sets[space] = roles
        else:
            need = [r for r in ("dropout", "no_dropout") if r not in roles]
            missing[space] = (f"no {' or '.join(need)} surrogate of the {space} space (none shipped; give one fitted "
                              f"on it with --surrogate-dropout / --surrogate-no-dropout)")
    return sets, missing


# -- the plan -----------------------------------------------------------------------------------------

@dataclass
class Plan:
    """What a benchmark will run: the suite, methods, reference, seeds, the runnable groups with
    their grids and surrogates, the skipped groups with the reason, and the identity."""

    suite: Suite
    methods: tuple[str, ...]
    reference: str
    seeds: list[int]
    groups: list[tuple[Group, object, dict]]  # (group, Grid, {space: roles})
    skipped: list[tuple[Group, str]]
    identity: dict
    surrogate_label: str
    tables: str | None
    command: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        """The keys of the cells that run, in the suite's order."""
        from nascsim.bench.suite import cell_keys

        return [k for group, grid, _ in self.groups for k in cell_keys(
            {"space": grid.as_dict["space"], "threshold_ms": grid.as_dict["threshold_ms"], "loss": grid.as_dict["loss"]},
            group.label)]

    @property
    def n_runs(self) -> int:
        return sum(len(grid) for _, grid, _ in self.groups)

    @property
    def n_searches(self) -> int:
        return sum(len(grid) // len(grid.as_dict["loss"]) for _, grid, _ in self.groups)

    def fingerprint(self) -> str:
        """Digest of everything that decides the runs, the code of the engine and of the methods
        included (for the default result folder's name: a changed method never resumes from the
        runs of its previous code)."""
        blob = json.dumps({"identity": self.identity, "methods": self.methods, "seeds": self.seeds,
                           "surrogates": self.surrogate_label, "tables": self.tables}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    def default_out(self) -> Path:
        """``nascsim-bench/<fingerprint>``: the same inputs and code resume, any change starts afresh
        (named by the digest only: no path is built from a suite file's content)."""
        return Path("nascsim-bench") / self.fingerprint()


def plan(suite: Suite, methods: tuple[str, ...] | None = None, reference: str | None = None, *,
         seeds: int | None = None, seed_offset: int | None = None, surrogate=None, surrogate_dropout=None,
         surrogate_no_dropout=None, tables=None, command: tuple[str, ...] = ()) -> Plan:
    """Resolve and validate everything a run needs; ``ValueError`` on bad input. Writes nothing."""
    from nascsim.api import surrogate_label
    from nascsim.bench.identity import identity
    from nascsim.methods.common import validate

    methods = tuple(methods) if methods else suite.methods
    reference = reference if reference is not None else suite.reference
    _known(reference)
    if reference not in methods:
        methods = (reference, *methods)
    if seeds is not None or seed_offset is not None:
        if seeds is not None and not 2 <= seeds <= 1000:
            raise ValueError(f"--seeds must lie in 2..1000, got {seeds}")
        if seed_offset is not None and seed_offset < 0:
            raise ValueError(f"--seed-offset must be >= 0, got {seed_offset}")
        suite = suite.with_(seeds=suite.seeds if seeds is None else seeds,
                            seed_offset=suite.seed_offset if seed_offset is None else seed_offset)
    tables_path = None
    if tables is not None:
        from nascsim.api import _tables_path

        tables_path = _tables_path(tables)
    sets, missing = surrogate_sets([g.space for g in suite.groups], surrogate, surrogate_dropout,
                                   surrogate_no_dropout)
    runnable, skipped, notes = [], [], []
    for group in suite.groups:
        if group.space in missing:
            if not group.optional:
                raise ValueError(f"cells of the {group.space} space: {missing[group.space]}")
            skipped.append((group, missing[group.space]))
            notes.append(f"skipped the {group.space} cells: {missing[group.space]}")
            continue
        fields_ = dict(group.fields)
        if tables_path is not None:
            fields_["tables"] = [tables_path]
        grid = suite.grid(Group(group.index, fields_, group.optional, group.label), methods, suite.seed_list())
        probe = type(grid)(tuple((n, v[:1] if n == "seed" else v) for n, v in grid.values))
        for config in probe.cells():
            validate(config)
        runnable.append((group, grid, {group.space: sets[group.space]}))
    if not runnable:
        raise ValueError("no cell of the suite can run: " + "; ".join(notes))
    used = {g.space: sets[g.space] for g, _, _ in runnable}
    ident = identity(suite, used, tables_path, methods)
    label = surrogate_label(surrogate, surrogate_dropout, surrogate_no_dropout)
    return Plan(suite, methods, reference, suite.seed_list(), runnable, skipped, ident, label, tables_path,
                tuple(command), notes)


# -- the result store ---------------------------------------------------------------------------------

def _specs(p: Plan):
    from nascsim.sweep.run import surrogate_id
    from nascsim.sweep.store import SweepSpec

    return [SweepSpec(grid, p.surrogate_label, surrogate_id(sets), p.command) for _, grid, sets in p.groups]


def group_dir(out: Path, group: Group) -> Path:
    return Path(out) / f"cells-{group.index + 1}"


def check_out(p: Plan, out: str | os.PathLike) -> bool:
    """Whether ``out`` can take this benchmark (``ValueError`` when it holds something else);
    True when it already holds (part of) it, a resume. Writes nothing."""
    from nascsim.sweep.store import check_out_dir

    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"output path {str(out)!r} exists and is not a folder")
        from nascsim.atomic import check_tree

        check_tree(out, "benchmark folder")
        if any(out.iterdir()) and not (out / SUITE_COPY).is_file():
            raise ValueError(f"output folder {str(out)!r} is not empty and holds no benchmark; choose another --out")
        _check_stored_identity(out, p.identity)
    resume = False
    for (group, _, _), spec in zip(p.groups, _specs(p)):
        resume |= check_out_dir(group_dir(out, group), spec)
    return resume


def _check_stored_identity(out: Path, current: dict) -> None:
    """Stored runs of other code or inputs must not be resumed: ``ValueError`` naming the change."""
    from nascsim.bench.identity import code_changes, mismatches

    from nascsim.atomic import read_regular_bytes
    from nascsim.safe_load import loads_json

    f = out / IDENTITY_FILE
    if not f.exists() and not f.is_symlink():
        return
    try:
        stored = loads_json(read_regular_bytes(f, IDENTITY_FILE, follow=False), IDENTITY_FILE)
        changes = mismatches(stored, current) + code_changes(stored, current)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise ValueError(f"output folder {str(out)!r} has an unreadable {IDENTITY_FILE}; choose another --out") from None
    if changes:
        raise ValueError(f"output folder {str(out)!r} holds runs made with other {changes[0]}; they cannot be "
                         "resumed: choose another --out")


def run(p: Plan, out: str | os.PathLike, *, jobs: int | None = None,
        progress: Callable[[int], None] | None = None):
    """Run the plan's pending cells into ``out`` and return every run of the plan as a polars
    frame (store rows plus ``cell``: the cell's key), runs already stored included."""
    import polars as pl

    from nascsim.api import MethodsSearch
    from nascsim.atomic import atomic_write_bytes
    from nascsim.methods.registry import portable_runs
    from nascsim.sweep.run import execute, pending_configs
    from nascsim.sweep.store import ResultStore

    out = Path(out)
    check_out(p, out)
    out.mkdir(parents=True, exist_ok=True)
    if p.suite.text and not (out / SUITE_COPY).is_file():
        atomic_write_bytes(p.suite.text.encode(), out / SUITE_COPY)
    elif not (out / SUITE_COPY).is_file():
        atomic_write_bytes(f"# suite {p.suite.name} v{p.suite.version}\n".encode(), out / SUITE_COPY)
    if not (out / IDENTITY_FILE).is_file():
        atomic_write_bytes(json.dumps(p.identity, indent=1, sort_keys=True).encode(), out / IDENTITY_FILE)
    search = MethodsSearch(tuple(portable_runs(p.methods).items()))
    frames = []
    for (group, grid, sets), spec in zip(p.groups, _specs(p)):
        store = ResultStore.create(group_dir(out, group), spec)
        cells = list(grid.cells())
        todo = pending_configs(cells, store.done_hashes())
        execute(todo, store, sets, jobs=jobs, search=search, on_commit=progress)
        hashes = [c.content_hash() for c in cells]
        frame = store.read().filter(pl.col("config_hash").is_in(hashes))
        keys = [cell_key(c.space, c.threshold_ms, c.loss, group.label) for c in cells]
        lookup = pl.DataFrame({"config_hash": hashes, "cell": keys})
        frames.append(frame.join(lookup, on="config_hash", how="left"))
    return pl.concat(frames, how="diagonal_relaxed")


def stored_counts(p: Plan, out: str | os.PathLike) -> int:
    """How many of the plan's runs ``out`` holds already."""
    from nascsim.sweep.store import ResultStore

    done = 0
    for group, grid, _ in p.groups:
        d = group_dir(Path(out), group)
        if (d / "runs").is_dir():
            hashes = ResultStore(d).done_hashes()
            done += sum(c.content_hash() in hashes for c in grid.cells())
    return done
