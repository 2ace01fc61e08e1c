"""The search computes the same bits on another x86-64 CPU (docs/reproducibility.md).

A child process imitates another CPU: numba compiles the kernels for a generic x86-64
(``NUMBA_CPU_NAME=generic``, into its own cache folder, so it shares no compiled code with this
process), OpenBLAS uses kernels other than this CPU's (``OPENBLAS_CORETYPE``: AVX2 ``Haswell``,
which AMD's Zen cores use too, or the SSE3 ``Prescott`` where this CPU already runs ``Haswell``;
the two sum a dot product in different orders) and numpy its baseline SIMD loops
(``NPY_DISABLE_CPU_FEATURES``). Its search records
(``scripts/repro_fingerprint.py``) must equal this process's bit for bit.

A CPU without FMA makes glibc's libm pick other ``exp``/``log`` variants, which round differently
in rare cases (``GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA`` imitates one): there the promise is
every choice exact and floats to a relative 1e-12.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "repro_fingerprint.py"
STEPS = 500
REL = 1e-12
HANG_GUARD_S = 1800  # only against a hung child: it takes seconds of CPU, but a starved one may wait minutes
CHOICES = ("arch_idx", "arch", "split", "feasible", "n_updates", "payload_bits")


def _fingerprint_module():
    spec = importlib.util.spec_from_file_location("repro_fingerprint", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _numpy_features_to_disable() -> str:
    """numpy's dispatched x86 SIMD levels this CPU has (disabling one it lacks is an error)."""
    from numpy._core._multiarray_umath import __cpu_features__

    levels = ("X86_V3", "X86_V4", "AVX512_ICL", "AVX512_SPR", "AVX2", "FMA3", "AVX512F", "AVX512_SKX")
    return " ".join(f for f in levels if __cpu_features__.get(f))


def _other_openblas_core() -> str:
    """An OpenBLAS kernel set this CPU can run that differs from the one OpenBLAS picked."""
    import threadpoolctl
    from numpy._core._multiarray_umath import __cpu_features__

    picked = {i.get("architecture") for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"}
    if __cpu_features__.get("AVX2") and not picked & {"Haswell", "Zen"}:
        return "Haswell"
    return "Prescott"


def other_cpu_env(cache_dir: Path, **extra: str) -> dict:
    """The environment of a child that imitates another x86-64 CPU (see the module docstring)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), NUMBA_CPU_NAME="generic", NUMBA_CPU_FEATURES="",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **extra)
    if platform.machine() in ("x86_64", "AMD64"):
        env["OPENBLAS_CORETYPE"] = _other_openblas_core()
        features = _numpy_features_to_disable()
        if features:
            env["NPY_DISABLE_CPU_FEATURES"] = features
    return env


def child_records(env: dict) -> list[dict]:
    out = subprocess.run([sys.executable, str(SCRIPT), "--steps", str(STEPS)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert out.returncode == 0, out.stderr[-3000:]
    body, _, last = out.stdout.rpartition("\nsha256 ")
    return json.loads(body)


@pytest.fixture(scope="module")
def here() -> list[dict]:
    return _fingerprint_module().fingerprint(STEPS)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """One numba cache for the children, none shared with this process."""
    return tmp_path_factory.mktemp("numba-cache-generic-cpu")


def test_a_child_imitating_another_x86_64_cpu_gets_the_same_records_bit_for_bit(here, cache_dir):
    there = child_records(other_cpu_env(cache_dir))
    assert [r["method"] for r in there] == [r["method"] for r in here]
    for a, b in zip(here, there):
        assert a == b  # exact: every float, every choice


def test_without_fma_in_libm_choices_are_exact_and_floats_agree_to_1e_12(here, cache_dir):
    there = child_records(other_cpu_env(cache_dir, GLIBC_TUNABLES="glibc.cpu.hwcaps=-AVX2,-FMA"))
    for a, b in zip(here, there, strict=True):
        assert {k: a[k] for k in CHOICES} == {k: b[k] for k in CHOICES}
        for k, v in a.items():
            if isinstance(v, float) and math.isfinite(v):
                assert b[k] == pytest.approx(v, rel=REL, abs=0), k
            else:
                assert b[k] == v, k


def test_the_fingerprint_digest_is_a_function_of_the_records_alone(here):
    module = _fingerprint_module()
    assert module.digest(here) == module.digest(json.loads(json.dumps(here)))
    changed = json.loads(json.dumps(here))
    changed[0]["T_ms"] = math.nextafter(changed[0]["T_ms"], math.inf)
    assert module.digest(changed) != module.digest(here)
