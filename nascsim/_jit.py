"""The numba option sets of the kernels, in one place.

- ``CACHED``: compiled once per machine, cached on disk, releasing the GIL.
- ``FAST``: ``CACHED`` with numpy's error model (a division by zero gives inf or NaN instead of
  raising), for the search's hot loops.
- :func:`internal`: for helpers called only from compiled code: no Python or C entry point (for
  the helpers that take a surrogate's 22-array tuple, unpacking it in the entry point is most of
  their compile time).
- :func:`inline`: ``internal`` and inlined by LLVM (``forceinline``) rather than by numba's IR
  inliner (``inline="always"``), which types the helper's body again at every call site (the
  search kernel took 10 s to compile that way). Their cache entries serve a kernel compiled later
  (the kernels' own entries hold the inlined code).
"""

from __future__ import annotations

CACHED = dict(cache=True, nogil=True)
FAST = dict(CACHED, error_model="numpy")


def internal(base: dict) -> dict:
    """``base`` without Python or C entry points."""
    return dict(base, no_cpython_wrapper=True, no_cfunc_wrapper=True)


def inline(base: dict) -> dict:
    """``base`` for a helper LLVM inlines into its compiled callers (no entry points)."""
    return dict(internal(base), forceinline=True)
