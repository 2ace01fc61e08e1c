"""A/B of one default NASC search (35,190 steps, λ = 2, shipped surrogate, noise shared-64) between
two source trees, alternating processes in one run, with a check that both give the same record.

    python benchmarks/ab_search.py /path/to/tree_A /path/to/tree_B [--pairs 6] [--rounds 15]

Each process puts its tree first on ``sys.path``, compiles (or loads its numba cache), then takes
the best CPU time (``time.process_time``) of ``--rounds`` searches. The processes alternate
A, B, A, B, ... so that both see the same load; printed: each pair's figures, the median of the
per-pair ratios B/A, and whether the two trees' records (θ, Δ, arch, split) are equal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import hashlib, json, sys, time
sys.path.insert(0, {tree!r})
from nascsim.config import SearchConfig
from nascsim.methods import run_search
from nascsim.surrogate import default_surrogates
sur = default_surrogates()
cfg = SearchConfig(method="nasc", threshold_ms=30, loss=0.2, seed=0, noise="shared", minibatch=64)
run_search(cfg.with_(steps=10), sur)
best = float("inf")
for _ in range({rounds}):
    t = time.process_time()
    rec = run_search(cfg, sur)
    best = min(best, time.process_time() - t)
keep = {{k: v for k, v in rec.items() if not k.endswith("_s") and k not in ("wall_s", "search_s")}}
print(json.dumps({{"ms": best * 1e3, "digest": hashlib.sha256(repr(sorted(keep.items())).encode()).hexdigest()}}))
"""


def one(tree: str, rounds: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(tree=tree, rounds=rounds)], capture_output=True,
                         text=True, check=True, env={**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree_a")
    ap.add_argument("tree_b")
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    ratios, digests = [], set()
    for p in range(args.pairs):
        a = one(args.tree_a, args.rounds)
        b = one(args.tree_b, args.rounds)
        ratios.append(b["ms"] / a["ms"])
        digests.update((a["digest"], b["digest"]))
        print(f"pair {p}: A {a['ms']:.2f} ms  B {b['ms']:.2f} ms  B/A {ratios[-1]:.3f}", flush=True)
    print(f"median B/A {statistics.median(ratios):.3f}  records {'equal' if len(digests) == 1 else 'DIFFER'}")
    return 0 if len(digests) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
