"""The simulator's identity as a benchmark records it: the suite (name, version, digest of its
cells), each space's surrogates (id and a digest of the document), the latency table (file and a
digest of its content), the nascsim version and a digest of the engine's sources.

A baseline made under another surrogate, table or suite measures something else: :func:`mismatches`
names those differences (the check refuses them unless asked to compare across them); an engine or
version change is exactly what a regression benchmark is for, so it is only noted
(:func:`notes`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

# the modules whose code decides a search's result (their digest is recorded, informational):
# the engine and its kernels, the paper's schedule (the default steps), the latency model with Π
# and the FLOP counts behind the ``flops`` source, the surrogate's prediction and noise model, the
# noise's random numbers, the kernels' compile options, and the built-in methods
ENGINE_SOURCES = ("core/engine.py", "core/_engine_kernels.py", "core/asng.py", "core/_asng_kernels.py",
                  "core/objective.py", "core/schedule.py", "core/_rng_kernels.py",
                  "hw/latency.py", "hw/_latency_kernels.py", "hw/devices.py", "hw/flops.py", "_jit.py",
                  "surrogate/predict.py", "surrogate/noise.py", "methods/common.py",
                  "methods/nasc.py", "methods/hwnas.py", "methods/random_search.py")


def _sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()[:16]


def source_bytes(path: Path) -> bytes:
    """A source file's bytes with line endings as git stores them (``\\n``): a checkout that
    converts them (``core.autocrlf`` on Windows) has the same code, hence the same digest."""
    return path.read_bytes().replace(b"\r\n", b"\n")


def surrogate_digest(s) -> str:
    """Digest of a surrogate's document (its trees, noise model and card), key order aside."""
    return _sha(json.dumps(s.doc, sort_keys=True, default=repr).encode())


def surrogate_identity(sets: dict[str, dict]) -> dict:
    """``{space: {role: {"id": ..., "digest": ...}}}`` of the surrogate sets in use."""
    return {space: {role: {"id": s.id, "digest": surrogate_digest(s)} for role, s in sorted(roles.items())}
            for space, roles in sorted(sets.items())}


def table_identity(path: str | None) -> dict:
    """The latency table in use: its file name (``shipped`` for the HW-NAS-Bench table) and a digest
    of its columns' content (independent of how the parquet file was encoded)."""
    from nascsim._data import shipped_path
    from nascsim.hw.tables import TABLE_FILE, read_table_columns

    p = Path(path) if path is not None else shipped_path("tables") / TABLE_FILE
    cols = read_table_columns(p)
    blob = json.dumps({k: [None if v != v else v for v in cols[k].tolist()] for k in sorted(cols)},
                      default=repr).encode()
    return {"file": "shipped:" + TABLE_FILE if path is None else p.name, "digest": _sha(blob)}


def engine_digest(root: Path | None = None) -> str:
    """Digest of the search code's sources (:data:`ENGINE_SOURCES`, under ``root``: this package
    by default). A function of the files' text alone: the same on every machine and checkout."""
    root = Path(__file__).resolve().parent.parent if root is None else Path(root)
    h = hashlib.sha256()
    for name in ENGINE_SOURCES:
        f = root / name
        h.update(name.encode())
        h.update(source_bytes(f) if f.is_file() else b"<missing>")
    return h.hexdigest()[:16]


def method_digest(name: str) -> str:
    """Digest of the source file of a method's ``run`` function (a built-in's is part of
    :func:`engine_digest` too); of its qualified name when the source cannot be read."""
    import inspect

    from nascsim.methods.registry import get_method

    fn = get_method(name).run
    try:
        path = inspect.getsourcefile(fn)
        blob = source_bytes(Path(path)) if path else None
    except (TypeError, OSError):
        blob = None
    name_blob = f"{getattr(fn, '__module__', '')}:{getattr(fn, '__qualname__', repr(fn))}".encode()
    return _sha(name_blob + b"\0" + (blob or b""))


def identity(suite, sets: dict[str, dict], tables: str | None, methods=()) -> dict:
    """The identity block of a report and a baseline."""
    from nascsim import __version__

    return {
        "suite": {"name": suite.name, "version": suite.version, "digest": suite.digest},
        "surrogates": surrogate_identity(sets),
        "tables": table_identity(tables),
        "nascsim_version": __version__,
        "engine_digest": engine_digest(),
        "methods": {m: method_digest(m) for m in methods},
    }


def _roles(roles: dict) -> str:
    return ", ".join(f"{role} {v['id']}@{v['digest'][:8]}" for role, v in roles.items())


def mismatches(baseline: dict, current: dict) -> list[str]:
    """What makes a baseline measure something else than this run: another suite (name, version or
    cells), other surrogates (id or content) on a space both ran, another latency table. Each item
    reads after "made with other ...", e.g. ``surrogates (fbnet: dropout A@1234abcd ... vs ...)``."""
    out = []
    bs, cs = baseline["suite"], current["suite"]
    if (bs["name"], bs["version"], bs["digest"]) != (cs["name"], cs["version"], cs["digest"]):
        out.append(f"suite ({bs['name']} v{bs['version']} {bs['digest'][:8]} vs {cs['name']} v{cs['version']} "
                   f"{cs['digest'][:8]})")
    for space in sorted(set(baseline["surrogates"]) & set(current["surrogates"])):
        b, c = baseline["surrogates"][space], current["surrogates"][space]
        if b != c:
            out.append(f"surrogates ({space}: {_roles(b)} vs {_roles(c)})")
    if baseline["tables"]["digest"] != current["tables"]["digest"]:
        out.append(f"latency table ({baseline['tables']['file']}@{baseline['tables']['digest'][:8]} vs "
                   f"{current['tables']['file']}@{current['tables']['digest'][:8]})")
    return out


def notes(baseline: dict, current: dict) -> list[str]:
    """Differences worth a line that do not stop a comparison (the code under test changed)."""
    out = []
    if baseline["nascsim_version"] != current["nascsim_version"]:
        out.append(f"nascsim {baseline['nascsim_version']} -> {current['nascsim_version']}")
    if baseline["engine_digest"] != current["engine_digest"]:
        out.append(f"search code changed since the baseline (engine digest {baseline['engine_digest'][:8]} -> "
                   f"{current['engine_digest'][:8]})")
    base_methods = baseline.get("methods", {})
    changed = [m for m, d in current.get("methods", {}).items() if m in base_methods and base_methods[m] != d]
    if changed:
        out.append(f"code of method(s) {', '.join(changed)} changed since the baseline")
    only = sorted(set(baseline["surrogates"]) ^ set(current["surrogates"]))
    if only:
        out.append(f"space(s) {', '.join(only)} in only one of baseline and this run: not compared")
    return out


def code_changes(before: dict, now: dict) -> list[str]:
    """Differences of the code that ran (nascsim version, engine sources, method sources)."""
    out = []
    if before.get("nascsim_version") != now.get("nascsim_version"):
        out.append(f"nascsim version ({before.get('nascsim_version')} vs {now.get('nascsim_version')})")
    if before.get("engine_digest") != now.get("engine_digest"):
        out.append("engine code")
    b = before.get("methods", {})
    out += [f"code of method {m}" for m, d in now.get("methods", {}).items() if m in b and b[m] != d]
    return out
