"""ringprof's own background threads, invisible to the profiled program.

Applications and test suites count threads (``threading.enumerate()``,
``threading.active_count()``, ``threading._dangling``); a profiler's threads
must not change what they see.  So the drain and exporter threads are started
with :func:`_thread.start_new_thread` (no :class:`threading.Thread` object),
and anything in them that makes :mod:`threading` register a stand-in
``_DummyThread`` (``threading.current_thread()``, which :mod:`logging` calls
for every record) is undone by :func:`forget_dummy`.
"""

from __future__ import annotations

import _thread
import sys
from collections.abc import Callable
from typing import Any

from . import pacing


class Background:
    """A raw thread running ``target(*args)``, joinable with a timeout."""

    def __init__(self, target: Callable[..., Any], *args: Any, name: str = "ringprof") -> None:
        self.name = name
        self.ident: int | None = None
        self.native_id: int | None = None
        self._done = _thread.allocate_lock()
        self._done.acquire()
        self._target = target
        self._args = args
        _thread.start_new_thread(self._run, ())

    def _run(self) -> None:
        self.ident = _thread.get_ident()
        self.native_id = _thread.get_native_id()
        _name_for_the_os(self.name)
        try:
            pacing.begin()
            self._target(*self._args)
        except BaseException as exc:  # pragma: no cover - targets catch their own errors
            try:
                sys.stderr.write(f"ringprof: background thread {self.name} failed: {exc!r}\n")
            except Exception:
                pass
        finally:
            forget_dummy()
            self._done.release()

    def is_alive(self) -> bool:
        return self._done.locked()

    def is_current(self) -> bool:
        return self.ident == _thread.get_ident()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to finish; True if it did."""
        if self.is_current():
            return False
        if self._done.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            self._done.release()
            return True
        return False


def _name_for_the_os(name: str) -> None:
    """Show the thread under its name in ``top -H`` and ``/proc/PID/task/*/comm``, so
    that ringprof's own CPU can be told apart from the program's (when the native
    core is loaded: only a sampling process has these threads)."""
    native = sys.modules.get("ringprof._sampler")
    if native is not None:
        try:
            native.set_native_thread_name(name)
        except Exception:  # a name is a convenience: never fail a thread for it
            pass


def forget_dummy() -> None:
    """Undo the ``_DummyThread`` that :mod:`threading` registers when code in
    one of our raw threads asks for ``threading.current_thread()``."""
    threading = sys.modules.get("threading")
    if threading is None:
        return
    ident = _thread.get_ident()
    active: dict[int, Any] = getattr(threading, "_active", {})
    dummy_type = getattr(threading, "_DummyThread", None)
    thread = active.get(ident)
    if thread is not None and dummy_type is not None and isinstance(thread, dummy_type):
        active.pop(ident, None)
        dangling = getattr(threading, "_dangling", None)
        if dangling is not None:
            dangling.discard(thread)
