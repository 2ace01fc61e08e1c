"""Worker processes that do not re-run the calling script.

multiprocessing's ``spawn`` start method prepares each child by running the parent's main
script again, as the module ``__mp_main__``, so that functions defined in it can be unpickled
there. In a script without an ``if __name__ == "__main__":`` guard that re-run calls
``nascsim.sweep(...)`` (or ``load_dataset``, ``run_campaign``) once more inside the child, which
dies with "An attempt has been made to start a new process before the current process has
finished its bootstrapping phase"; the parent waited for it forever.

nascsim's workers run nascsim functions on plain data and need nothing from the caller's script,
so :func:`context` gives a spawn context whose children leave their ``__main__`` alone: while a
child is launched, the parent's main module reports the spec name ``__main__``, the name for
which multiprocessing never re-imports a main module (its rule for ``python -m package``). The
child is a fresh interpreter as before (no fork of a parent that holds polars and numba
threads). Only a sweep that hands its workers a function defined in the script (a search method
registered there) needs the script in its workers: :func:`needs_main` tells, and
``context(main=True)`` is the plain spawn context, whose workers re-run the script; a script
without the guard then makes them die at start-up, which :func:`broken_pool_message` explains.
"""

from __future__ import annotations

import multiprocessing
import pickle
import sys
import threading
from contextlib import contextmanager
from multiprocessing.context import BaseContext, SpawnContext, SpawnProcess
from typing import Any, Iterator

_LAUNCH = threading.Lock()  # one launch at a time changes __main__.__spec__


class _MainSpec:
    """What a child's preparation reads of the parent's ``__main__.__spec__``: the name
    ``__main__``, which ``multiprocessing.spawn`` leaves alone (``_fixup_main_from_name``)."""

    name = "__main__"


@contextmanager
def _main_left_alone() -> Iterator[None]:
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _LAUNCH:
        spec = getattr(main, "__spec__", None)
        try:
            main.__spec__ = _MainSpec()
        except (AttributeError, TypeError):  # pragma: no cover - a __main__ that takes no attributes
            yield
            return
        try:
            yield
        finally:
            main.__spec__ = spec


class _Process(SpawnProcess):
    """A spawned process that does not run the parent's main script."""

    @staticmethod
    def _Popen(process_obj):
        with _main_left_alone():
            return SpawnProcess._Popen(process_obj)


class _Context(SpawnContext):
    Process = _Process


_CONTEXT = _Context()


def context(main: bool = False) -> BaseContext:
    """A spawn context for worker processes (``ProcessPoolExecutor(mp_context=...)``, or its
    ``Process``, ``Queue``, ``Barrier``): children that do not re-run the caller's main script,
    or with ``main=True`` the plain spawn context (children that do)."""
    return multiprocessing.get_context("spawn") if main else _CONTEXT


def needs_main(obj: Any) -> bool:
    """Whether ``obj`` refers to something defined in the main script (a function or class of
    ``__main__``), which workers can only find by running the script; False when it does not
    pickle at all (the pool then reports that itself)."""
    try:
        blob = pickle.dumps(obj)
    except Exception:  # noqa: BLE001 -- whatever stops pickling stops the pool too, with its own message
        return False
    return b"__main__" in blob


def broken_pool_message(what: str, main: bool) -> str:
    """One line for a pool whose worker process ended abruptly (``BrokenProcessPool``): killed,
    out of memory, or (``main``: workers that re-run the script) a script without the guard."""
    text = f"a {what} worker process ended abruptly (killed, out of memory, or failed to start)"
    if main:
        text += ("; the workers re-run the calling script to find a function defined in it, so its work must sit "
                 "under `if __name__ == \"__main__\":` (or define the function in a module, or use one job)")
    return text


def drain(pool, calls: dict, on_result, what: str, main: bool = False) -> None:
    """Submit ``calls`` ({key: (fn, *args)}) to the process ``pool`` and hand each result to
    ``on_result(key, value)`` as it finishes (in completion order, in this process). A worker that
    dies ends the whole call with :func:`broken_pool_message`'s one line (``RuntimeError``); any
    other exception, an interrupt included, cancels the calls not yet started and propagates."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    pending: dict = {}
    try:
        pending = {pool.submit(*call): key for key, call in calls.items()}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                on_result(pending.pop(f), f.result())
    except BrokenProcessPool:
        raise RuntimeError(broken_pool_message(what, main)) from None
    except BaseException:
        for f in pending:
            f.cancel()
        raise
