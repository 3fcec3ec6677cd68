"""Workers of ``modelreg server --workers N`` end when their supervisor dies.

Uvicorn's supervisor stops its workers when it is stopped, but a supervisor killed with
SIGKILL (the OOM killer, ``kill -9``, a crashed container runtime) cannot: its workers went
on serving and held the port, so the restarted server failed with ``Address already in use``.
Each worker therefore watches its parent twice over: on Linux the kernel sends it SIGTERM
when the parent dies (``prctl(PR_SET_PDEATHSIG)``), and everywhere a thread checks once a
second that its parent is still the supervisor (the kernel's signal follows the parent
*thread*, and a parent that died before the ``prctl`` sends nothing). SIGTERM is uvicorn's
graceful stop: requests in flight finish. A worker still alive 30 s later exits hard.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

SUPERVISOR_ENV = "MODELREG_SUPERVISOR_PID"
"""Set by ``modelreg server`` before it starts several workers: the supervisor's pid."""

_PR_SET_PDEATHSIG = 1
_CHECK_EVERY = 1.0
_GRACE = 30.0


def watch_parent() -> bool:
    """In a worker of ``modelreg server``, end this process when its supervisor dies.

    Does nothing (False) in a process that is not such a worker: a single-process server's
    parent is the shell that started it.
    """
    supervisor = os.environ.get(SUPERVISOR_ENV, "")
    if not supervisor.isdigit() or int(supervisor) == os.getpid():
        return False
    parent = int(supervisor)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    threading.Thread(
        target=_watch, args=(parent,), name="modelreg-parent-watch", daemon=True
    ).start()
    return True


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_CHECK_EVERY)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(_GRACE)
    os._exit(1)


__all__ = ["SUPERVISOR_ENV", "watch_parent"]
