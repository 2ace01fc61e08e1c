"""Shared test setup: makes the plain helper modules in tests/ (e.g. ``surrogate_fixtures``)
importable from every test module."""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
