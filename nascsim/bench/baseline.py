"""Baseline files: what ``nascsim bench --save-baseline FILE`` writes and ``--baseline FILE`` reads.

One JSON object (strict JSON, written atomically)::

    {"format": "nascsim-bench-baseline", "format_version": 1, "created": "...",
     "identity": {...},                       # nascsim.bench.identity.identity
     "seeds": [0, 1, ...],
     "runs": {method: {cell: {"seed": [...], "accuracy": [...], "T_ms": [...], "feasible": [...]}}}}

A baseline keeps every run (not only medians) so that the check can judge a move against the seed
noise of both samples. Reading one validates every field and builds nothing from its content but
numbers and names (no paths, no code).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from nascsim.bench.compare import FIELDS

FORMAT = "nascsim-bench-baseline"
FORMAT_VERSION = 1
MAX_BYTES = 64 * 1024 * 1024


def baseline_doc(identity: dict, seeds: list[int], runs: dict) -> dict:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "identity": identity, "seeds": list(seeds), "runs": runs}


def save_baseline(path: str | os.PathLike, identity: dict, seeds: list[int], runs: dict) -> Path:
    """Write the baseline atomically; returns its path."""
    from nascsim.api import to_json
    from nascsim.atomic import atomic_write_bytes

    atomic_write_bytes((to_json(baseline_doc(identity, seeds, runs)) + "\n").encode(), path)
    return Path(path)


def _fail(where: str, what: str):
    raise ValueError(f"{where} is not a usable baseline: {what}")


def _number(v) -> float:
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError
    return float(v)


def load_baseline(path: str | os.PathLike) -> dict:
    """Read and validate a baseline file (``ValueError`` with one line naming the file and the
    problem; ``FileNotFoundError`` when absent)."""
    p = Path(path)
    where = f"baseline {str(p)!r}"
    from nascsim.atomic import read_regular_bytes
    from nascsim.safe_load import StructureError, loads_json

    if not p.exists():
        raise FileNotFoundError(f"baseline file {str(p)!r} not found")
    raw = read_regular_bytes(p, "baseline file")
    if len(raw) > MAX_BYTES:
        _fail(where, f"larger than {MAX_BYTES // 2**20} MiB")
    try:
        doc = loads_json(raw, "the file")
    except StructureError as exc:
        _fail(where, str(exc))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        _fail(where, f"format {doc.get('format') if isinstance(doc, dict) else None!r}, expected {FORMAT!r}")
    if doc.get("format_version") != FORMAT_VERSION:
        _fail(where, f"format version {doc.get('format_version')!r}; this nascsim reads version {FORMAT_VERSION}")
    ident = doc.get("identity")
    try:
        _check_identity(ident)
    except (KeyError, TypeError):
        _fail(where, "malformed identity block")
    runs = doc.get("runs")
    if not isinstance(runs, dict) or not runs:
        _fail(where, "no runs")
    clean: dict = {}
    for method, cells in runs.items():
        if not _name(method):
            _fail(where, f"bad method name {method[:40]!r}")
        if not isinstance(cells, dict) or not cells:
            _fail(where, f"method {method!r} has no cells")
        for cell, data in cells.items():
            if not _name(cell):
                _fail(where, f"bad cell name {cell[:40]!r}")
            try:
                clean.setdefault(method, {})[cell] = _cell(data)
            except (KeyError, TypeError, ValueError):
                _fail(where, f"malformed runs of {method!r} in {cell!r}")
    seeds = doc.get("seeds")
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        _fail(where, "malformed seeds")
    return {"identity": ident, "seeds": seeds, "runs": clean, "created": str(doc.get("created", ""))}


def _name(text: str) -> bool:
    """A method or cell name worth printing: short, printable, no control characters."""
    return 0 < len(text) <= 200 and text.isprintable()


def _check_identity(ident) -> None:
    if not isinstance(ident, dict):
        raise TypeError
    suite = ident["suite"]
    if not (isinstance(suite["name"], str) and isinstance(suite["version"], int) and isinstance(suite["digest"], str)):
        raise TypeError
    for roles in ident["surrogates"].values():
        for v in roles.values():
            if not (isinstance(v["id"], str) and isinstance(v["digest"], str)):
                raise TypeError
    if not (isinstance(ident["tables"]["file"], str) and isinstance(ident["tables"]["digest"], str)):
        raise TypeError
    if not (isinstance(ident["nascsim_version"], str) and isinstance(ident["engine_digest"], str)):
        raise TypeError
    methods = ident.get("methods", {})
    if not isinstance(methods, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in methods.items()):
        raise TypeError


def _cell(data) -> dict:
    if not isinstance(data, dict) or set(data) != set(FIELDS):
        raise KeyError
    n = len(data["seed"])
    if n == 0 or any(not isinstance(data[k], list) or len(data[k]) != n for k in FIELDS):
        raise ValueError
    seeds = data["seed"]
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds) or len(set(seeds)) != n:
        raise ValueError
    acc = [_number(v) for v in data["accuracy"]]
    t = [_number(v) for v in data["T_ms"]]
    if not all(isinstance(v, bool) for v in data["feasible"]):
        raise TypeError
    if any(math.isnan(v) for v in acc + t):
        raise ValueError
    return {"seed": list(seeds), "accuracy": acc, "T_ms": t, "feasible": list(data["feasible"])}
