"""``ringprof.start()`` / ``ringprof.stop()``: the process-wide recording.

One Profile at a time is "the started one" (what :func:`stop` returns); it is
an ordinary recording, so Profiles, decorated functions and the cProfile
drop-in keep working while it runs.
"""

from __future__ import annotations

import threading
from typing import Any

from . import process_hooks
from .recording import Profile, child_profile
from .sampler import Mode

__all__ = ["start", "started", "stop"]

_started: Profile | None = None
_lock = threading.RLock()


def started() -> Profile | None:
    """The Profile of :func:`start` (not yet stopped), or None."""
    return _started


def start(interval: float = 0.01, mode: Mode = "cpu", max_depth: int = 128, *, continuous: bool = False,
          **options: Any) -> Profile:
    """Start the process-wide profile and return it.

    ``continuous=True`` cuts the profile into windows exported to sinks on a
    background thread: ``ringprof.start(continuous=True, window=60,
    sinks=["dir:/var/lib/ringprof"])``; see :mod:`ringprof.continuous` for
    its options (``window``, ``sinks``, ``service``, ``tags``, ...).

    Raises RuntimeError if ringprof.start() was already called (and not stopped).
    """
    global _started
    with _lock:
        if _started is not None:
            raise RuntimeError("ringprof.start() was already called; call ringprof.stop() first")
        controller = None
        if continuous:
            from .continuous import Continuous

            controller = Continuous.from_options(options)  # validates; pops its own keys
            options.setdefault("follow_fork", True)
        prof = Profile(interval, mode, max_depth, **options)
        prof.enable()
        if controller is not None:
            try:
                controller.attach(prof)
            except BaseException:
                prof.disable()
                raise
        _started = prof
        return prof


def stop() -> Profile:
    """Stop the process-wide profile started by :func:`start` and return it.

    Raises RuntimeError if it was not started (a stop without a start is a bug
    worth hearing about in a service's start-up code).
    """
    global _started
    with _lock:
        prof = _started
        if prof is None:
            raise RuntimeError("ringprof.stop() called, but ringprof.start() was not")
        _started = None
    if prof.continuous is not None:
        prof.continuous.stop_cutting()  # no window cut may race with disable()
    prof.disable()
    if prof.continuous is not None:
        prof.continuous.close()  # exports the final window
    return prof


def _after_fork_in_child() -> None:
    global _started, _lock
    _lock = threading.RLock()
    parent = _started
    _started = child_profile(parent) if parent is not None else None


process_hooks.after_fork_in_child(_after_fork_in_child)
