"""Worker processes end with the process that started them.

Every process nascsim starts (sweep workers, the campaign's two training lanes, image-decode
workers) calls :func:`watch_parent` first thing: on Linux the kernel sends it SIGKILL the moment
its parent dies (``prctl(PR_SET_PDEATHSIG)``, set through libc with ctypes); everywhere a daemon
thread also polls ``os.getppid()`` and ends the process within ``poll_s`` seconds of the parent's
death (the fallback for other systems, and for a parent that died before the call). So a parent
killed with SIGKILL leaves no orphan computing on.
"""

from __future__ import annotations

import os
import signal
import threading
import time

PARENT_POLL_S = 0.5  # a worker's check that the process that started it is alive
_PR_SET_PDEATHSIG = 1


def watch_parent(parent_pid: int, poll_s: float = PARENT_POLL_S) -> None:
    """End this process when ``parent_pid`` is no longer its parent: at once on Linux, else within
    ``poll_s`` seconds (see the module docstring)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="nascsim-parent-watch", daemon=True).start()
