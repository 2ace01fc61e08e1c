"""The speed table of issue 12: the engine before the speed work (commit 4968e2b, taken from git
history into a temporary folder) beside the current one, measured in one run, alternating.

    python benchmarks/speed_table.py [--rounds 3]

Rows (µs per ASNG step, 23 categorical variables, λ = 2, CPU time of one process, best of the
rounds): nascsim/core/asng.py (numpy reference) on a trivial objective; the numba sampling and update
alone on the same objective; the numba engine with surrogate and latency (one default NASC
search, shipped surrogates of the current checkout, the old engine's noise model for both, and the
current default noise model for the new engine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD_COMMIT = "4968e2b"

# runs inside a process whose sys.path starts with the old tree
OLD = r"""
import json, sys, time
import numpy as np
from numba import njit
from nascsim.core.asng import ASNG, init_state, sample_into, update_ws, workspace
from nascsim.core.engine import categories, make_rng, run_asng_search
from nascsim.hw.latency import build_latency_model
from nascsim.core.objective import Objective
from nascsim.surrogate.model import surrogate_from_doc

def best_of(f, rounds):
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time(); f(); best = min(best, time.process_time() - t)
    return best

C = categories(9, 22, True)
W = np.random.default_rng(0).normal(size=(len(C), int(C.max()))) * 0.1

@njit
def loop(theta, C, s, scalars, params, rng, steps, c, work, W):
    f = np.empty(2)
    for _ in range(steps):
        sample_into(theta, C, rng, c)
        for i in range(2):
            x = 0.0
            for d in range(c.shape[1]):
                x += W[d, c[i, d]]
            f[i] = x + 0.3 * rng.standard_normal()
        update_ws(theta, C, s, scalars, params, c, f, work)

def asng_numba(steps=35190):
    theta, s, sc = init_state(C)
    loop(theta, C, s, sc, np.array([1.5, 1.0, np.inf]), make_rng(0), steps, np.empty((2, len(C)), dtype=np.int64), workspace(C, 2), W)

def asng_numpy(steps=300):
    rng = np.random.default_rng(0); idx = np.arange(len(C)); asng = ASNG(C)
    for _ in range(steps):
        c = asng.sample(rng, 2)
        asng.update(c, np.array([W[idx, ci].sum() for ci in c]) + 0.3 * rng.standard_normal(2))

doc = json.load(open({surrogate!r}))
if doc.get("format_version") == 2:  # the old reader knows version 1: same trees and sds
    doc["format_version"] = 1
sur = surrogate_from_doc(doc)
lat = build_latency_model("fbnet", classes=sur.classes)
asng_numba(10)
run_asng_search(Objective(30.0), sur, lat, make_rng(0), steps=10, n_ops=9)
rounds = {rounds}
out = {{
    "numpy_asng": best_of(asng_numpy, 1) / 300,
    "numba_asng": best_of(asng_numba, rounds) / 35190,
    "search": best_of(lambda: run_asng_search(Objective(30.0), sur, lat, make_rng(0), steps=35190, n_ops=9), rounds) / 35190,
}}
print(json.dumps(out))
"""

NEW = r"""
import json, sys
sys.path.insert(0, {bench!r})
import speed
from nascsim.core.engine import make_rng, run_asng_search
from nascsim.hw.latency import build_latency_model
from nascsim.core.objective import Objective
from nascsim.surrogate.model import load_surrogate
sur = load_surrogate({surrogate!r})
lat = build_latency_model("fbnet", classes=sur.classes)
rounds = {rounds}
for kw in (speed.OLD_NOISE, {{}}):
    run_asng_search(Objective(30.0), sur, lat, make_rng(0), steps=10, n_ops=9, **kw)
out = {{
    "numpy_asng": speed.numpy_asng_step_s(),
    "numba_asng": speed.numba_asng_step_s(),
    "search": speed.best_of(lambda: run_asng_search(Objective(30.0), sur, lat, make_rng(0), steps=35190, n_ops=9, **speed.OLD_NOISE), rounds) / 35190,
    "search_default": speed.best_of(lambda: run_asng_search(Objective(30.0), sur, lat, make_rng(0), steps=35190, n_ops=9), rounds) / 35190,
}}
print(json.dumps(out))
"""


def run(code: str, path: Path) -> dict:
    env = {"PYTHONPATH": str(path), "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=path)
    if r.returncode != 0:
        raise SystemExit(f"measurement in {path} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    surrogate = ROOT / "surrogate" / "fbnet-dropout.json"
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = Path(tmp) / "old"
        old_tree.mkdir()
        archive = subprocess.run(["git", "archive", OLD_COMMIT], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive, check=True)
        fmt = dict(bench=str(ROOT / "benchmarks"), surrogate=str(surrogate), rounds=args.rounds)
        old = run(OLD.format(**fmt), old_tree)
        new = run(NEW.format(**fmt), ROOT)
    us = lambda s: f"{s * 1e6:.2f}" if s < 1e-5 else f"{s * 1e6:.0f}"  # noqa: E731
    rows = [
        ("`nascsim/core/asng.py` (numpy reference), trivial objective", old["numpy_asng"], new["numpy_asng"]),
        ("numba sampling + update alone, same objective", old["numba_asng"], new["numba_asng"]),
        ("numba engine with surrogate and latency (default NASC search; old noise model)", old["search"], new["search"]),
        ("the same with the new default noise (shared, minibatch 64)", None, new["search_default"]),
    ]
    print("| per ASNG step, 23 categorical variables, λ = 2 | engine of 4968e2b (µs/step) | this engine (µs/step) | speed-up |")
    print("|---|---|---|---|")
    for name, o, n in rows:
        print(f"| {name} | {us(o) if o else '-'} | {us(n)} | {f'{o / n:.1f}x' if o else '-'} |")
    print(f"\none default search (35,190 steps): old {old['search'] * 35190 * 1e3:.0f} ms, new {new['search'] * 35190 * 1e3:.0f} ms "
          f"(old noise model), {new['search_default'] * 35190 * 1e3:.0f} ms (default noise)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
