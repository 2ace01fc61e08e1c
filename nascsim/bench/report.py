"""The benchmark's report: one JSON document (``bench.json``, for machines and CI artifacts), the
same content as Markdown (``bench.md``, to post on a pull request) and as plain text for the
terminal, both built from the same tables. Accuracy is a fraction in the JSON and in % (points for
differences) in the text and Markdown. Files are written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path

from nascsim.bench.compare import per_test_confidence
from nascsim.bench.stats import IMPROVED, NOT_CHECKED, OK, REGRESSED, WORSE_IN_NOISE

FORMAT = "nascsim-bench-report"
FORMAT_VERSION = 1
PASS, FAIL, NO_BASELINE = "pass", "regressed", "no baseline"

# metric -> (label, scale to the printed unit, unit)
_UNITS = {"feasible_rate": ("feasible", 100.0, "pts"), "accuracy": ("acc all", 100.0, "pts"),
          "accuracy_feasible": ("acc feasible", 100.0, "pts"), "T_ms": ("T", 1.0, "ms")}


def exit_code(report: dict) -> int:
    """0 when nothing regressed (or no baseline was given), 1 when something did."""
    return 1 if report["verdict"] == FAIL else 0


def build(plan, out: Path, summary: list[dict], comparisons: list[dict], baseline: dict | None, wall_s: float,
          ran: int) -> dict:
    """The report document. ``baseline``: None, or ``{"file", "created", "mismatches", "notes",
    "checks": [Check...], "check_notes"}``."""
    s = plan.suite
    doc = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "suite": {"name": s.name, "version": s.version, "source": s.source, "description": s.description,
                  "seeds": plan.seeds, "methods": list(plan.methods), "reference": plan.reference,
                  "confidence": s.confidence, "check_confidence": s.check_confidence, "tolerance": s.tolerance},
        "identity": plan.identity,
        "provenance": provenance(plan),
        "out": str(out),
        "runs": plan.n_runs, "searches": plan.n_searches, "ran_now": ran, "wall_s": round(wall_s, 3),
        "notes": list(plan.notes),
        "summary": summary,
        "comparisons": comparisons,
        "baseline": None,
        "verdict": NO_BASELINE,
    }
    if baseline is not None:
        checks = [c.to_dict() for c in baseline["checks"]]
        regressed = [c for c in checks if c["status"] == REGRESSED]
        doc["baseline"] = {"file": baseline["file"], "created": baseline["created"],
                           "identity_mismatches": baseline["mismatches"], "notes": baseline["notes"],
                           "checked": sum(c["status"] != NOT_CHECKED for c in checks), "regressed": len(regressed),
                           "tests": len(checks), "test_confidence": per_test_confidence(s.check_confidence, len(checks)),
                           "checks": checks}
        doc["verdict"] = FAIL if regressed else PASS
    doc["exit_code"] = exit_code(doc)
    return doc


def provenance(plan) -> str:
    """The surrogates' provenance line (names, data, provisional status from their model cards;
    :func:`nascsim.surrogate.provenance.provenance_line`)."""
    from nascsim.surrogate.provenance import provenance_line

    return provenance_line(s for _, _, sets in plan.groups for roles in sets.values() for s in roles.values())


def short(doc: dict) -> dict:
    """What ``--json`` prints: the verdict, the moves that are not ``ok``, counts, identity and
    where the full report is."""
    b = doc["baseline"]
    return {
        "verdict": doc["verdict"], "exit_code": doc["exit_code"],
        "suite": {k: doc["suite"][k] for k in ("name", "version", "methods", "reference", "seeds")},
        "identity": doc["identity"], "provenance": doc["provenance"], "runs": doc["runs"], "searches": doc["searches"], "ran_now": doc["ran_now"],
        "wall_s": doc["wall_s"], "notes": doc["notes"],
        "baseline": None if b is None else {
            "file": b["file"], "checked": b["checked"], "regressed": b["regressed"],
            "identity_mismatches": b["identity_mismatches"], "notes": b["notes"],
            "moves": [c for c in b["checks"] if c["status"] not in (OK, NOT_CHECKED)]},
        "report": {"json": str(Path(doc["out"]) / "bench.json"), "markdown": str(Path(doc["out"]) / "bench.md")},
    }


# -- tables -------------------------------------------------------------------------------------------

def _f(x: float, scale: float = 1.0, digits: int = 2, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return ("+" if x > 0 else "-") + "inf"
    return f"{x * scale:{'+' if sign else ''}.{digits}f}"


def _ci(lo: float, hi: float, scale: float = 1.0, digits: int = 2) -> str:
    return f"[{_f(lo, scale, digits, True)}, {_f(hi, scale, digits, True)}]"


def _p(p: float) -> str:
    return "-" if p is None or math.isnan(p) else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def summary_table(doc: dict) -> tuple[list[str], list[list[str]]]:
    head = ["cell", "method", "runs", "feas%", "acc% all", "acc% feas", "T ms all", "T ms feas"]
    rows = [[r["cell"], r["method"], str(r["runs"]), _f(r["feasible_rate"], 100, 1), _f(r["accuracy"], 100),
             _f(r["accuracy_feasible"], 100), _f(r["T_ms"]), _f(r["T_ms_feasible"])] for r in doc["summary"]]
    return head, rows


def comparison_table(doc: dict) -> tuple[list[str], list[list[str]]]:
    head = ["cell", "method", "pairs", "dacc pts [CI]", "W/L", "p", "dT ms [CI]", "p", "dfeas%", "p"]
    rows = []
    for r in doc["comparisons"]:
        a, t, f = r["accuracy"], r["T_ms"], r["feasible"]
        rows.append([r["cell"], r["method"], str(r["pairs"]),
                     f"{_f(a['median_diff'], 100, 2, True)} {_ci(a['ci_low'], a['ci_high'], 100)}",
                     f"{a['wins']}/{a['losses']}", _p(a["p"]),
                     f"{_f(t['median_diff'], 1, 2, True)} {_ci(t['ci_low'], t['ci_high'])}", _p(t["p"]),
                     _f(f["median_diff"], 100, 0, True), _p(f["p"])])
    return head, rows


def check_table(doc: dict, only_moves: bool = True) -> tuple[list[str], list[list[str]]]:
    head = ["cell", "method", "metric", "baseline", "now", "move [CI] or (p)", "tolerance", "beyond noise", "status"]
    rows = []
    for c in doc["baseline"]["checks"]:
        if only_moves and c["status"] in (OK, NOT_CHECKED):
            continue
        label, scale, unit = _UNITS[c["metric"]]
        digits = 1 if c["metric"] == "feasible_rate" else 2
        who = c["method"] if c["against"] == c["method"] else f"{c['method']} (as {c['against']})"
        rows.append([c["cell"], who, label, _f(c["baseline"], scale, digits), _f(c["current"], scale, digits),
                     f"{_f(c['move'], scale, digits, True)} {unit} " + (
                         f"(p={_p(c['p'])})" if c["metric"] == "feasible_rate" else _ci(c["ci_low"], c["ci_high"], scale, digits)),
                     f"{_f(c['tolerance'], scale, digits)} {unit}", "yes" if c["beyond_noise"] else "no",
                     c["status"].upper() if c["status"] == REGRESSED else c["status"]])
    return head, rows


def _text_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = lambda r: "  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(head), "-" * len(fmt(head)), *map(fmt, rows)])


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(v.replace("|", "\\|") for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _identity_line(doc: dict) -> str:
    ident = doc["identity"]
    sur = "; ".join(f"{sp}: " + ", ".join(f"{role} {v['id']}@{v['digest'][:8]}" for role, v in roles.items())
                    for sp, roles in ident["surrogates"].items())
    return (f"suite {ident['suite']['name']} v{ident['suite']['version']} ({ident['suite']['digest'][:8]}), "
            f"nascsim {ident['nascsim_version']} (engine {ident['engine_digest'][:8]}), "
            f"table {ident['tables']['file']}@{ident['tables']['digest'][:8]}, surrogates {sur}")


def _headline(doc: dict) -> str:
    b = doc["baseline"]
    if b is None:
        return "no baseline given: figures only"
    if doc["verdict"] == FAIL:
        return f"REGRESSED: {b['regressed']} of {b['checked']} checked metrics moved beyond tolerance and seed noise"
    worse = sum(c["status"] == WORSE_IN_NOISE for c in b["checks"])
    better = sum(c["status"] == IMPROVED for c in b["checks"])
    return (f"PASS: none of {b['checked']} checked metrics regressed" +
            (f" ({worse} worse by more than tolerance but within seed noise)" if worse else "") +
            (f" ({better} improved)" if better else ""))


def _sections(doc: dict, table) -> list[tuple[str, str]]:
    s = doc["suite"]
    conf, cconf = int(round(100 * s["confidence"])), s["check_confidence"] * 100
    out = []
    b = doc["baseline"]
    if b is not None:
        tests, each = b["tests"], b["test_confidence"]
        text = [f"Baseline {b['file']} (made {b['created']}); two-sample comparison per method, cell and metric "
                f"(now - baseline): the Hodges-Lehmann shift with its exact interval, or the difference "
                "of feasibility rates with the p-value of Fisher's exact test, each at the confidence that keeps "
                f"all {tests} tests together at {cconf:g}% (Bonferroni: {100 * each:.4g}% each). A metric regressed "
                f"when it moved to the worse side by more than its tolerance and beyond seed noise (interval excludes "
                f"0; p < {1 - each:.2g})."]
        text += [f"Note: {n}" for n in b["identity_mismatches"]]
        text += [f"Note: {n}" for n in b["notes"]]
        head, rows = check_table(doc)
        text.append(table(head, rows) if rows else "Every checked metric is within tolerance.")
        out.append(("Against the baseline", "\n\n".join(text)))
    head, rows = summary_table(doc)
    out.append(("Per method and cell", f"{len(s['seeds'])} seeds per cell (seeds {s['seeds'][0]}..{s['seeds'][-1]}); "
                "medians over all runs and over feasible runs (T <= T_th).\n\n" + table(head, rows)))
    head, rows = comparison_table(doc)
    if rows:
        out.append((f"Against the reference ({s['reference']}), paired per seed",
                    f"Median paired difference (method - {s['reference']}) with its exact {conf}% sign-test interval; "
                    "W/L: seeds where the method is higher / lower; p: exact Wilcoxon signed-rank test "
                    "(feasibility: rate difference, exact McNemar test).\n\n" + table(head, rows)))
    return out


def markdown(doc: dict) -> str:
    """The report as Markdown."""
    s = doc["suite"]
    lines = [f"# nascsim bench: {s['name']} v{s['version']}: {_headline(doc)}", "",
             _identity_line(doc) + ".", "", doc["provenance"] + ".", "",
             f"{doc['runs']} runs ({doc['searches']} searches, {doc['ran_now']} run now) in {doc['wall_s']:.1f} s; "
             f"results in `{doc['out']}`."]
    lines += [f"\nNote: {n}" for n in doc["notes"]]
    for title, body in _sections(doc, _md_table):
        lines += ["", f"## {title}", "", body]
    return "\n".join(lines) + "\n"


def text(doc: dict) -> str:
    """The report as plain text for the terminal."""
    s = doc["suite"]
    lines = [f"nascsim bench {s['name']} v{s['version']}: {_headline(doc)}", _identity_line(doc), doc["provenance"]]
    lines += [f"Note: {n}" for n in doc["notes"]]
    for title, body in _sections(doc, _text_table):
        lines += ["", f"{title}:", body]
    return "\n".join(lines)


def write(doc: dict, out: Path) -> tuple[Path, Path]:
    """Write ``bench.json`` and ``bench.md`` into ``out``, each atomically."""
    from nascsim.api import to_json
    from nascsim.atomic import atomic_write_bytes

    out = Path(out)
    j, m = out / "bench.json", out / "bench.md"
    atomic_write_bytes((to_json(doc) + "\n").encode(), j)
    atomic_write_bytes(markdown(doc).encode(), m)
    return j, m
