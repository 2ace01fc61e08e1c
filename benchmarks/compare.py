"""Run the benchmark suite and fail when a gated ratio fell below its baseline (for CI).

    python benchmarks/compare.py            # run, print every figure, exit 1 on a regression
    python benchmarks/compare.py --update   # run and write the figures as the new baseline
    python benchmarks/compare.py -k engine  # a subset (pytest -k expression)

The gate compares ratios measured within one run (the engine against the numpy reference on
identical work, the ASNG kernels against the numpy ASNG, numba prediction against scikit-learn):
they move with the code, far less with the machine or its load than absolute times do. A ratio
fails when it drops below (1 - tolerance) x its baseline; absolute figures are printed, not gated.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "baseline.json"
GATED = ("engine_vs_reference", "asng_vs_numpy", "predict_vs_sklearn")
DEFAULT_TOLERANCE = 0.3


def run_suite(select: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider", "--benchmark-only",
               f"--benchmark-json={out}", "-s"]
        if select:
            cmd += ["-k", select]
        r = subprocess.run(cmd, cwd=HERE.parent)
        if r.returncode != 0:
            raise SystemExit(f"benchmark run failed (pytest exit {r.returncode})")
        data = json.loads(out.read_text())
    figures: dict = {}
    for b in data["benchmarks"]:
        figures.update(b.get("extra_info", {}))
    figures["_machine"] = {k: data["machine_info"].get(k) for k in ("node", "processor", "cpu")}
    return figures


def compare(figures: dict, baseline: dict) -> list[str]:
    failures = []
    tol = baseline.get("tolerance", DEFAULT_TOLERANCE)
    for key in GATED:
        if key not in figures or key not in baseline.get("ratios", {}):
            continue
        base, got = baseline["ratios"][key], figures[key]
        ok = got >= (1 - tol) * base
        print(f"{'ok  ' if ok else 'FAIL'} {key}: {got:.1f} (baseline {base:.1f}, floor {(1 - tol) * base:.1f})")
        if not ok:
            failures.append(key)
    return failures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update", action="store_true", help="write the measured figures as the new baseline")
    ap.add_argument("-k", dest="select", default=None, help="pytest -k expression (a subset of the suite)")
    ap.add_argument("--baseline", type=Path, default=BASELINE)
    args = ap.parse_args(argv)
    figures = run_suite(args.select)
    print("\nfigures:")
    for k, v in figures.items():
        if not k.startswith("_"):
            print(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}")
    if args.update:
        base = json.loads(args.baseline.read_text()) if args.baseline.is_file() else {}
        base.setdefault("tolerance", DEFAULT_TOLERANCE)
        base["ratios"] = {**base.get("ratios", {}), **{k: figures[k] for k in GATED if k in figures}}
        base["figures"] = {k: v for k, v in figures.items() if k not in GATED}
        args.baseline.write_text(json.dumps(base, indent=1) + "\n")
        print(f"wrote {args.baseline}")
        return 0
    if not args.baseline.is_file():
        print(f"no baseline at {args.baseline}; run with --update first")
        return 1
    failures = compare(figures, json.loads(args.baseline.read_text()))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
