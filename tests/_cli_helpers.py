"""The command line as the tests run it: in this process (exit code, stdout, stderr) or as
``python -m nascsim`` in a child, and the contract for bad input (exit code 2, one line on stderr
naming the bad value, no traceback)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path


def run_in_process(argv, cwd: Path | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``nascsim ARGV`` through ``nascsim.cli.main`` in this process,
    with ``cwd`` (when given) as the working folder; the arguments as strings."""
    from nascsim.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main([str(a) for a in argv])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def run_subprocess(argv, cwd: Path, timeout: float = 1800) -> tuple[int, str]:
    """(exit code, stderr) of ``python -m nascsim ARGV`` in ``cwd``, killed after ``timeout``
    seconds; a crash (SIGSEGV) is a negative code."""
    r = subprocess.run([sys.executable, "-m", "nascsim", *map(str, argv)], capture_output=True, text=True, cwd=cwd,
                       timeout=timeout, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"})
    return r.returncode, r.stderr


def assert_contract(code: int, err: str, *needles: str) -> None:
    """Exit code 2 and one line ``Error: ...`` on stderr, no traceback, naming every needle."""
    assert code == 2, (code, err)
    assert err.count("\n") == 1 and err.startswith("Error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)
