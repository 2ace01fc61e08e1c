"""Plain scripts, without ``if __name__ == "__main__":``, that start worker processes: every
process-starting function finishes (its workers do not re-run the script), and a worker that dies
ends the call at once with one line instead of leaving the parent waiting.

Each script runs in a fresh interpreter; the subprocess timeout only guards against a hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD_S = 1800  # only against a hang: a starved machine may take minutes


def run_script(tmp_path: Path, body: str, name: str = "plain_script.py") -> subprocess.CompletedProcess:
    """``body`` as a script file, run as ``python FILE`` (the case that re-runs a script in spawned
    children) with this checkout on the path; its last stdout line is JSON."""
    script = tmp_path / name
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]), "OMP_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=HANG_GUARD_S)


def last_json(p: subprocess.CompletedProcess):
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_a_sweep_with_two_jobs_from_a_plain_script_finishes_with_the_rows_of_one_job(tmp_path):
    out = last_json(run_script(tmp_path, """
        import json
        import nascsim

        kw = dict(threshold_ms=[30], loss=[0.0, 0.2], method=["nasc"], seeds=3, steps=60)
        two = nascsim.sweep(jobs=2, **kw).sort("seed", "loss")
        one = nascsim.sweep(jobs=1, **kw).sort("seed", "loss")
        print(json.dumps({"rows": two.height, "same": two["T_ms"].to_list() == one["T_ms"].to_list()}))
    """))
    assert out == {"rows": 6, "same": True}


def test_load_dataset_and_its_decoding_workers_from_a_plain_script_finish(tmp_path):
    pytest.importorskip("PIL")
    out = last_json(run_script(tmp_path, """
        import json
        import numpy as np
        import nascsim.train.data as data
        from _train_fixtures import write_image_folder

        x, y = write_image_folder(data_root := __import__("pathlib").Path("images"), classes=3, per_class=4)
        data.PARALLEL_FROM = 1  # decode even these few images in worker processes
        ds = data.load_dataset(data_root, cache_dir="cache")
        files = sorted(data_root.glob("train/*/*.png"), key=lambda f: (f.parent.name, f.name))
        direct = data.decode_images([f.read_bytes() for f in files], [str(f) for f in files], workers=2)
        print(json.dumps({"loaded": bool(np.array_equal(ds.x_train, x)), "decoded": bool(np.array_equal(direct, x))}))
    """))
    assert out == {"loaded": True, "decoded": True}


def test_processes_of_the_worker_context_start_from_a_plain_script(tmp_path):
    """What the campaign's two lanes use: Process, Queue and Barrier of :func:`nascsim._spawn.context`."""
    out = last_json(run_script(tmp_path, """
        import json
        from nascsim._spawn import context

        ctx = context()
        events, barrier = ctx.Queue(), ctx.Barrier(2)
        procs = [ctx.Process(target=events.put, args=(i,)) for i in range(2)]
        for p in procs:
            p.start()
        got = sorted(events.get(timeout=1800) for _ in procs)
        for p in procs:
            p.join(timeout=1800)
        print(json.dumps({"got": got, "exit": [p.exitcode for p in procs]}))
    """))
    assert out == {"got": [0, 1], "exit": [0, 0]}


def test_a_sweep_worker_that_dies_at_start_up_ends_the_sweep_at_once_with_one_line(tmp_path):
    """The workers read the surrogates at start-up; here reading them kills the worker."""
    out = last_json(run_script(tmp_path, """
        import json, os
        from nascsim.config import SearchConfig
        from nascsim.surrogate.model import default_surrogates
        from nascsim.sweep.grid import Grid
        from nascsim.sweep.run import execute
        from nascsim.sweep.store import ResultStore, SweepSpec

        class DiesWhenLoaded(dict):
            def __reduce__(self):
                return (os._exit, (3,))

        grid = Grid.build(threshold_ms=[30], seed=range(4), method="random", steps=50)
        store = ResultStore.create(__import__("pathlib").Path("store"), SweepSpec(grid, "default", "x", ("test",)))
        try:
            execute(list(grid.cells()), store, DiesWhenLoaded(fbnet=default_surrogates("fbnet")), jobs=2, size=1)
            print(json.dumps({"error": None}))
        except RuntimeError as exc:
            print(json.dumps({"error": str(exc)}))
    """))
    assert out["error"] and "\n" not in out["error"] and "worker process ended abruptly" in out["error"]


METHOD_IN_SCRIPT = """
    import json
    import nascsim
    from nascsim.methods import nasc

    def nasc_margin(config, surrogates, space, trace=False):
        return nasc.run(config.with_(threshold_ms=0.9 * config.threshold_ms), surrogates, space, trace)

    def main():
        nascsim.register_method("nasc-margin", nasc_margin, roles=("dropout",))
        runs = nascsim.sweep([30], [0.0], ["nasc-margin"], seeds=3, steps=60, jobs=2)
        print(json.dumps({"methods": sorted(set(runs["method"])), "rows": runs.height}))
"""


def test_a_method_defined_in_a_guarded_script_runs_in_the_sweep_workers(tmp_path):
    out = last_json(run_script(tmp_path, METHOD_IN_SCRIPT + "\n    if __name__ == '__main__':\n        main()\n"))
    assert out == {"methods": ["nasc-margin"], "rows": 3}


def test_a_method_defined_in_an_unguarded_script_ends_the_sweep_at_once_with_one_line_naming_the_guard(tmp_path):
    """Its workers must re-run the script to find the method; the unguarded script's re-run
    sweeps again and kills them at start-up."""
    p = run_script(tmp_path, METHOD_IN_SCRIPT + "\n    main()\n")
    assert p.returncode == 1 and p.stdout == ""
    error = p.stderr.strip().splitlines()[-1]  # the script's own error, after its workers' tracebacks
    assert error.startswith("RuntimeError: a sweep worker process ended abruptly")
    assert 'if __name__ == "__main__":' in error and "one job" in error


def test_the_worker_context_leaves_the_parent_main_module_as_it_was():
    from nascsim._spawn import context

    main = sys.modules["__main__"]
    spec = main.__spec__
    p = context().Process(target=np.zeros, args=(1,))
    p.start()
    p.join(timeout=HANG_GUARD_S)
    assert p.exitcode == 0 and sys.modules["__main__"] is main and main.__spec__ is spec
