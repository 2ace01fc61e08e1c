"""Shared test setup: makes the plain helper modules in tests/ (e.g. ``surrogate_fixtures``)
importable from every test module."""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # without the dev extra (hypothesis) there is nothing to configure
    pass
else:
    # no test may depend on the machine's speed or load: no per-example deadline and no "too slow"
    # health check, for every property test (a test's own @settings must say the same)
    settings.register_profile("nascsim", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("nascsim")
