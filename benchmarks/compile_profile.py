"""Where a first search in a fresh environment spends its time: numba's compilation per function.

    python benchmarks/compile_profile.py [--rounds 1]

Runs, in a new process with an empty numba cache (a temporary ``NUMBA_CACHE_DIR``), what
``test_compile_once_then_a_warm_start`` runs (imports and surrogates, then one 10-step default
search through ``run_search``, record included) and lists every function numba compiled, with its
compile time exclusive of the functions it compiled in turn (from numba's ``numba:compile``
events), largest first. Times are wall seconds of that process (single-threaded compilation).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROFILE = r"""
import json, time
t0 = time.perf_counter()
from numba.core import event

stack, rows = [], {}

class Timer(event.Listener):
    def on_start(self, ev):
        stack.append([ev.data["dispatcher"], time.perf_counter(), 0.0])

    def on_end(self, ev):
        d, start, children = stack.pop()
        dt = time.perf_counter() - start
        if stack:
            stack[-1][2] += dt
        f = d.py_func
        row = rows.setdefault(f"{f.__module__}.{f.__qualname__}", [0, 0.0, 0.0])
        row[0] += 1
        row[1] += dt - children
        row[2] += dt

event.register("numba:compile", Timer())
from nascsim.config import SearchConfig
from nascsim.methods import run_search
from nascsim.surrogate import default_surrogates
sur = default_surrogates()
t1 = time.perf_counter()
run_search(SearchConfig(steps=10), sur)
t2 = time.perf_counter()
print(json.dumps({"start_s": t1 - t0, "first_search_s": t2 - t1, "functions": rows}))
"""


def profile_once() -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        r = subprocess.run([sys.executable, "-c", PROFILE], capture_output=True, text=True, env=env, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"profile run failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1, help="profile this many fresh processes; report the fastest")
    ap.add_argument("--top", type=int, default=25, help="list this many functions")
    args = ap.parse_args(argv)
    best = min((profile_once() for _ in range(args.rounds)), key=lambda o: o["first_search_s"])
    rows = sorted(best["functions"].items(), key=lambda kv: -kv[1][1])
    total = sum(r[1] for _, r in rows)
    print(f"imports and surrogates {best['start_s']:.2f} s, first search {best['first_search_s']:.2f} s "
          f"(numba compiling {total:.2f} s, {sum(r[0] for _, r in rows)} compilations)")
    print(f"{'exclusive s':>11} {'inclusive s':>11} {'n':>3}  function")
    for name, (n, excl, incl) in rows[: args.top]:
        print(f"{excl:11.2f} {incl:11.2f} {n:3d}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
