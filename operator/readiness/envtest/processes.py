"""Child processes that never outlive us.

Three layers, because each covers a way the others miss:
- every child runs in its own process group, and stopping kills the whole group;
- ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` makes the kernel kill a child whose parent dies, even by SIGKILL;
- an ``atexit`` hook and SIGTERM/SIGINT handlers stop whatever is still running on a normal exit,
  an uncaught exception, ``kill`` or Ctrl-C.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Protocol

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class Stoppable(Protocol):
    def stop(self) -> None: ...


_live: weakref.WeakSet[Stoppable] = weakref.WeakSet()
_handlers_installed = False
_lock = threading.Lock()


def _die_with_parent() -> None:
    """Runs in the child between fork and exec. The parent is the thread that forked: start children
    from a thread that lives as long as they should (the main thread in pytest and the CLI)."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Child:
    """One child process, its output appended to a log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=dict(env), start_new_session=True, preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> int | None:
        """The exit code, or None while running."""
        return self.process.poll()

    def stop(self, timeout: float) -> None:
        """SIGTERM the process group, then SIGKILL it after ``timeout`` seconds; reap the child."""
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)
        self._signal_group(signal.SIGKILL)  # also catches grandchildren left in the group
        self.process.wait()

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)


def group_alive(pgid: int) -> bool:
    """Whether any process is left in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def register(owner: Stoppable) -> None:
    """Stop ``owner`` at interpreter exit or on SIGTERM/SIGINT unless it was stopped before."""
    global _handlers_installed
    with _lock:
        _live.add(owner)
        if not _handlers_installed:
            _handlers_installed = True
            atexit.register(stop_all)
            _install_signal_handlers()


def unregister(owner: Stoppable) -> None:
    _live.discard(owner)


def stop_all() -> None:
    for owner in list(_live):
        owner.stop()


def _install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread; atexit still covers us
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if previous != signal.SIG_IGN:  # e.g. SIGINT in a background job: the caller wants it ignored
            signal.signal(sig, _chained_handler(sig, previous))


_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def _chained_handler(sig: signal.Signals, previous: _Handler) -> Callable[[int, FrameType | None], None]:
    """Stop the children, then behave as before: call the previous handler, or exit like the default."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop_all()
        if callable(previous):
            previous(signum, frame)
        else:
            raise SystemExit(128 + sig.value)

    return handler
