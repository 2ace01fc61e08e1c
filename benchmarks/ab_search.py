"""A/B of the search kernels of two source trees on one default NASC search (35,190 steps, λ = 2,
shipped surrogate, noise shared-64), alternating in one process, and a check that both give the
same record.

    python benchmarks/ab_search.py /path/to/tree_A /path/to/tree_B [--processes 4] [--rounds 12]

Each process loads ``nascsim/core/_asng_kernels.py`` and ``nascsim/core/_engine_kernels.py``
of both trees (``nascsim/_asng_kernels.py`` and ``nascsim/_engine_kernels.py`` in a tree from
before the ``hw``/``core`` layout, their imports renamed to the modules' present places) as
separate modules (compiled afresh, into a temporary numba cache), puts each in turn under
``nascsim.core._engine_kernels`` and times ``run_search`` (CPU time, ``time.process_time``), A
and B alternating, ``--rounds`` each.
Everything else (surrogate, latency model, record) comes from the tree this script runs from.
The code's place in memory moves a search by a few per cent from one process to the next, so the
ratio is taken in each of ``--processes`` processes; printed: each process's best and median B/A,
the median over processes, and whether the two kernels' records (θ, Δ, arch, split) are equal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types


def load_kernels(tree: str, tag: str):
    """The engine kernels of ``tree`` as fresh modules (their import of the ASNG kernels renamed)."""
    mods = {}
    flat = not os.path.isdir(os.path.join(tree, "nascsim", "core"))  # before the hw/core layout
    for name in ("_asng_kernels", "_engine_kernels"):
        path = os.path.join(tree, "nascsim", *(() if flat else ("core",)), f"{name}.py")
        with open(path) as fh:
            src = fh.read()
        if flat:
            for old, new in (("nascsim._rng_kernels", "nascsim.core._rng_kernels"),
                             ("nascsim._latency_kernels", "nascsim.hw._latency_kernels")):
                src = src.replace(old, new)
        src = src.replace("nascsim._asng_kernels" if flat else "nascsim.core._asng_kernels", f"ab{tag}_asng_kernels")
        mod = types.ModuleType(f"ab{tag}{name}")
        mod.__file__ = path
        sys.modules[mod.__name__] = mod
        exec(compile(src, path, "exec"), mod.__dict__)
        mods[name] = mod
    return mods["_engine_kernels"]


def one_process(trees: list[str], rounds: int) -> dict:
    import nascsim
    from nascsim.config import SearchConfig
    from nascsim.methods import run_search
    from nascsim.surrogate import default_surrogates

    sur = default_surrogates()
    cfg = SearchConfig(method="nasc", threshold_ms=30, loss=0.2, seed=0, noise="shared", minibatch=64)
    kernels = [load_kernels(t, str(i)) for i, t in enumerate(trees)]
    times, records = [[], []], [None, None]
    for i, k in enumerate(kernels):
        nascsim.core._engine_kernels = k
        run_search(cfg.with_(steps=10), sur)  # compile
    for r in range(rounds):
        for i in ((0, 1) if r % 2 == 0 else (1, 0)):
            nascsim.core._engine_kernels = kernels[i]
            t = time.process_time()
            rec = run_search(cfg, sur)
            times[i].append(time.process_time() - t)
            records[i] = {k: v for k, v in rec.items() if k not in ("wall_s", "search_s")}
    a, b = times
    return {"a_best_ms": min(a) * 1e3, "b_best_ms": min(b) * 1e3, "best": min(b) / min(a),
            "median": statistics.median(b) / statistics.median(a), "equal": records[0] == records[1]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree_a")
    ap.add_argument("tree_b")
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    trees = [os.path.abspath(args.tree_a), os.path.abspath(args.tree_b)]
    if args.child:
        print(json.dumps(one_process(trees, args.rounds)))
        return 0
    # the children's numba cache in a folder of their own: the renamed kernel modules must never
    # leave entries in the trees' __pycache__ (they would name modules that do not exist there)
    with tempfile.TemporaryDirectory(prefix="ab_search_numba_") as cache:
        env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "NUMBA_CACHE_DIR": cache}
        out = []
        for p in range(args.processes):
            r = subprocess.run([sys.executable, __file__, *trees, "--rounds", str(args.rounds), "--child"],
                               capture_output=True, text=True, env=env)
            if r.returncode != 0:
                sys.stderr.write(r.stderr)
                return 2
            out.append(json.loads(r.stdout.strip().splitlines()[-1]))
            o = out[-1]
            print(f"process {p}: A {o['a_best_ms']:.2f} ms  B {o['b_best_ms']:.2f} ms (best)  "
                  f"B/A best {o['best']:.3f}  median {o['median']:.3f}", flush=True)
    equal = all(o["equal"] for o in out)
    print(f"median over processes: B/A best {statistics.median(o['best'] for o in out):.3f}  "
          f"median {statistics.median(o['median'] for o in out):.3f}  records {'equal' if equal else 'DIFFER'}")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
