"""The benchmark suite (not part of the plain ``pytest -q``, whose testpaths are tests/).

    python -m pytest benchmarks --benchmark-only -s              # run, print the figures
    python benchmarks/compare.py                                  # run and gate against baseline.json

Each benchmark stores its figures in ``benchmark.extra_info``; ratios measured in one run (the
engine against the numpy reference on identical work, numba against scikit-learn, ...) are what
the gate compares, since absolute times depend on the machine and its load.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT / "tests"), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)
