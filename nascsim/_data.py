"""Where shipped data lives: `tables/` and `surrogate/` at the repository root.

In a wheel they are installed inside the package as ``nascsim/_shipped/<name>``; in a source
checkout (editable install, tests) they are read from the repository root.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_path(name: str) -> Path:
    """Path of a shipped data folder (``"tables"`` or ``"surrogate"``)."""
    installed = _PACKAGE / "_shipped" / name
    if installed.is_dir():
        return installed
    checkout = _PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"shipped data folder {name!r} not found (looked in {installed} and {checkout})")
