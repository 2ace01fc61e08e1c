"""From a benchmark's runs to its figures: per method and cell the feasibility rate and medians
(:func:`summarize`), each method against the reference paired per seed (:func:`against_reference`),
and the noise-aware check of this run against a baseline (:func:`check`).

The runs travel as a plain structure (what a baseline file stores)::

    {method: {cell: {"seed": [...], "accuracy": [...], "T_ms": [...], "feasible": [...]}}}

with the lists in seed order; accuracy is a fraction, T_ms in ms.
"""

from __future__ import annotations

import math

import numpy as np

from nascsim.bench import stats
from nascsim.bench.suite import METRICS

FIELDS = ("seed", "accuracy", "T_ms", "feasible")


def runs_of(frame, methods=(), cells=()) -> dict:
    """The plain run structure of a frame of benchmark rows (``method``, ``cell``, ``seed``,
    ``accuracy``, ``T_ms``, ``feasible``): methods in the order of ``methods`` and cells in the
    order of ``cells`` (the suite's), others after them in order of appearance."""
    out: dict = {m: {} for m in methods}
    for row in frame.select("method", "cell", *FIELDS).sort("seed", maintain_order=True).iter_rows(named=True):
        cell = out.setdefault(row["method"], {}).setdefault(row["cell"], {k: [] for k in FIELDS})
        for k in FIELDS:
            cell[k].append(row[k])
    rank = {c: i for i, c in enumerate(cells)}
    return {m: dict(sorted(cs.items(), key=lambda kv: rank.get(kv[0], len(rank)))) for m, cs in out.items() if cs}


def _cells(runs: dict) -> list[str]:
    """Every cell of ``runs``, in the order of the first method that has it."""
    return list(dict.fromkeys(c for cells in runs.values() for c in cells))


def _arrays(cell: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.asarray(cell["accuracy"], dtype=np.float64), np.asarray(cell["T_ms"], dtype=np.float64),
            np.asarray(cell["feasible"], dtype=bool))


def summarize(runs: dict) -> list[dict]:
    """One row per method and cell: runs, feasibility rate, median accuracy and latency over all
    runs and over feasible runs (NaN when none is feasible)."""
    rows = []
    for cell in _cells(runs):
        for method, cells in runs.items():
            if cell not in cells:
                continue
            acc, t, ok = _arrays(cells[cell])
            rows.append({"method": method, "cell": cell, "runs": int(acc.size),
                         "feasible_rate": float(ok.mean()) if acc.size else float("nan"),
                         "accuracy": stats.median(acc), "accuracy_feasible": stats.median(acc[ok]),
                         "T_ms": stats.median(t), "T_ms_feasible": stats.median(t[ok])})
    return rows


def _paired_cells(a: dict, b: dict) -> tuple[dict, dict]:
    """``a`` and ``b`` restricted to their common seeds, in the same order."""
    common = sorted(set(a["seed"]) & set(b["seed"]))
    ia = {s: i for i, s in enumerate(a["seed"])}
    ib = {s: i for i, s in enumerate(b["seed"])}
    pick = lambda d, idx: {k: [d[k][idx[s]] for s in common] for k in FIELDS}  # noqa: E731
    return pick(a, ia), pick(b, ib)


def against_reference(runs: dict, reference: str, confidence: float) -> list[dict]:
    """Every other method against ``reference`` in every cell both ran, paired per seed:
    differences (method - reference) of accuracy (all runs; and over the seeds where both are
    feasible) and latency, each as the median difference with the sign test's interval, W/L/ties
    and the exact Wilcoxon p; feasibility as the rate difference with the exact McNemar p."""
    rows = []
    ref = runs.get(reference, {})
    for cell in _cells(runs):
        for method, cells in runs.items():
            if method == reference or cell not in cells or cell not in ref:
                continue
            a, r = _paired_cells(cells[cell], ref[cell])
            acc, t, ok = _arrays(a)
            racc, rt, rok = _arrays(r)
            both = ok & rok
            rows.append({
                "method": method, "reference": reference, "cell": cell, "pairs": int(acc.size),
                "confidence": confidence,
                "accuracy": stats.paired(acc, racc, confidence).to_dict(),
                "accuracy_both_feasible": stats.paired(acc[both], racc[both], confidence).to_dict(),
                "T_ms": stats.paired(t, rt, confidence).to_dict(),
                "feasible": stats.paired_rates(ok, rok).to_dict(),
            })
    return rows


def check_cell(method: str, against: str, cell: str, current: dict, baseline: dict, tolerance: dict,
               confidence: float) -> list[stats.Check]:
    """The checked metrics of one method in one cell, this run against the baseline (two
    independent samples: see :mod:`nascsim.bench.stats`)."""
    out = []
    cacc, ct, cok = _arrays(current)
    bacc, bt, bok = _arrays(baseline)
    alpha = 1.0 - confidence
    for metric, tol in tolerance.items():
        higher, _ = METRICS[metric]
        if metric == "feasible_rate":
            nb, nc = int(bok.size), int(cok.size)
            base = float(bok.mean()) if nb else math.nan
            cur = float(cok.mean()) if nc else math.nan
            move, lo, hi = cur - base, math.nan, math.nan
            p = stats.fisher_p(int(cok.sum()), nc, int(bok.sum()), nb)
            beyond_noise = p < alpha
        else:
            x, y = {"accuracy": (cacc, bacc), "accuracy_feasible": (cacc[cok], bacc[bok]), "T_ms": (ct, bt)}[metric]
            move, lo, hi = stats.hodges_lehmann(x, y, confidence)
            base, cur, nb, nc, p = stats.median(y), stats.median(x), int(y.size), int(x.size), math.nan
            beyond_noise = bool(lo > 0 or hi < 0)
        beyond_tol, status = stats.verdict(move, tol, higher, beyond_noise)
        out.append(stats.Check(method, against, cell, metric, base, cur, nb, nc, move, lo, hi, p, tol, beyond_tol,
                               beyond_noise and status != stats.NOT_CHECKED, status))
    return out


def per_test_confidence(confidence: float, tests: int) -> float:
    """The confidence of each of ``tests`` intervals (or tests) such that all of them hold together
    with probability at least ``confidence`` (Bonferroni: 1 - (1 - confidence) / tests)."""
    return 1.0 - (1.0 - confidence) / max(1, tests)


def check(runs: dict, baseline_runs: dict, tolerance: dict, confidence: float,
          compare_as: dict | None = None) -> tuple[list[stats.Check], list[str]]:
    """Every method and cell present in both this run and the baseline, checked metric by metric;
    and notes naming what only one of them has (not compared). ``compare_as`` maps a method of
    this run to the baseline method it is checked against (default: the same name).

    ``confidence`` is family-wise: a check tests many metrics (methods x cells x metrics, 144 for
    the paper suite), so each interval and Fisher test is run at :func:`per_test_confidence`, and
    an unchanged method passes the whole check with probability at least ``confidence`` even
    before the tolerances are applied."""
    compare_as = compare_as or {}
    checks, notes, todo = [], [], []
    for method, cells in runs.items():
        against = compare_as.get(method, method)
        if against not in baseline_runs:
            notes.append(f"method {against} is not in the baseline: {method} not checked")
            continue
        for cell, data in cells.items():
            if cell not in baseline_runs[against]:
                notes.append(f"{against} in {cell} is not in the baseline: not checked")
                continue
            todo.append((method, against, cell, data, baseline_runs[against][cell]))
    each = per_test_confidence(confidence, len(todo) * len(tolerance))
    for method, against, cell, data, base in todo:
        checks.extend(check_cell(method, against, cell, data, base, tolerance, each))
    compared = {compare_as.get(m, m) for m in runs}
    for method in baseline_runs:
        if method not in compared:
            notes.append(f"method {method} is in the baseline but was not run: not checked")
    return checks, notes
