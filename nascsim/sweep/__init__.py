"""Sweeps: grids of searches (:mod:`.grid`), their result store (:mod:`.store`), executors
(:mod:`.run`), summaries (:mod:`.summary`) and plots (:mod:`.plots`).

``nascsim.sweep`` is this package *and* the API function: calling it, ``nascsim.sweep(...)``,
runs :func:`nascsim.api.sweep` (a module attribute of a package cannot be both, so the package is
callable; ``nascsim.sweep.grid`` and friends stay importable as usual).
"""

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from nascsim.api import sweep

        return sweep(*args, **kwargs)

    @property
    def __signature__(self):
        import inspect

        from nascsim.api import sweep

        return inspect.signature(sweep)


sys.modules[__name__].__class__ = _CallablePackage
