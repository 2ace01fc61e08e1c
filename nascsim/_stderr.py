"""Warning lines on stderr, held back while a command may still fail.

The library writes a warning line (a skipped damaged chunk, one surrogate in two roles) through
:func:`warning_line`. The command line (:func:`nascsim.cli.main`) calls :func:`hold` first and
:func:`release` at the end: a command that succeeds prints its warnings, one line each; a
command that fails prints its one error line alone. Outside the command line the lines go to
stderr at once.
"""

from __future__ import annotations

import sys

from nascsim.limits import printable

_held: list[str] | None = None


def warning_line(text: str) -> None:
    """One line on stderr (non-printable characters escaped), or held (see the module docstring)."""
    line = printable(text)
    if _held is not None:
        _held.append(line)
    else:
        print(line, file=sys.stderr, flush=True)


def hold() -> None:
    """Hold warning lines until :func:`release`."""
    global _held
    _held = []


def release(show: bool) -> None:
    """Print the held lines (``show``) or drop them; stop holding."""
    global _held
    lines, _held = _held or [], None
    if show:
        for line in lines:
            print(line, file=sys.stderr, flush=True)
