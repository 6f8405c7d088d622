"""``ringprof.start()`` / ``ringprof.stop()``: the process-wide recording.

One Profile at a time is "the started one" (what :func:`stop` returns); it is
an ordinary recording, so Profiles, decorated functions and the cProfile
drop-in keep working while it runs.  The launcher (``ringprof-run``,
``RINGPROF=1``) has a slot of its own (:func:`launch`), so a program that
calls ``ringprof.start()`` itself works under the launcher too;
:func:`stop` stops the program's own start() first, else the launcher's.
"""

from __future__ import annotations

import threading
from typing import Any

from . import process_hooks
from .recording import Profile, child_profile
from .sampler import Mode

__all__ = ["launch", "launched", "recent", "start", "started", "stop", "stop_launched"]

_started: Profile | None = None
_launched: Profile | None = None
_lock = threading.RLock()


def started() -> Profile | None:
    """The Profile of :func:`start` (not yet stopped), else the launcher's, or None."""
    return _started if _started is not None else _launched


def launched() -> Profile | None:
    """The launcher's Profile (:func:`launch`), or None."""
    return _launched


def _new(interval: float, mode: Mode, max_depth: int, continuous: bool, options: dict[str, Any]) -> Profile:
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
    return prof


def _finish(prof: Profile) -> Profile:
    if prof.continuous is not None:
        prof.continuous.stop_cutting()  # no window cut may race with disable()
    prof.disable()
    if prof.continuous is not None:
        prof.continuous.close()  # exports the final window
    return prof


def launch(interval: float = 0.01, mode: Mode = "cpu", max_depth: int = 128, *, continuous: bool = False,
           **options: Any) -> Profile:
    """:func:`start` for the launcher (``ringprof-run``, ``RINGPROF=1``): its own
    slot, so the program's own ``start()`` does not collide with it."""
    global _launched
    with _lock:
        if _launched is not None:
            raise RuntimeError("ringprof is already launched in this process")
        _launched = _new(interval, mode, max_depth, continuous, options)
        return _launched


def stop_launched() -> Profile | None:
    """Stop the launcher's Profile (if any) and return it."""
    global _launched
    with _lock:
        prof, _launched = _launched, None
    return _finish(prof) if prof is not None else None


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
        _started = _new(interval, mode, max_depth, continuous, options)
        return _started


def stop() -> Profile:
    """Stop the process-wide profile started by :func:`start` (else the
    launcher's) and return it.

    Raises RuntimeError if it was not started (a stop without a start is a bug
    worth hearing about in a service's start-up code).
    """
    global _started, _launched
    with _lock:
        prof = _started if _started is not None else _launched
        if prof is None:
            raise RuntimeError("ringprof.stop() called, but ringprof.start() was not")
        if prof is _started:
            _started = None
        else:
            _launched = None
    return _finish(prof)


def recent(seconds: float = 60.0) -> Profile:
    """The last ``seconds`` of continuous profiling, as a finished :class:`Profile`.

    Continuous mode (``ringprof.start(continuous=True, ...)``, ``ringprof-run``,
    ``ringprof.auto``) keeps the last ``recent`` seconds (default 600) in
    memory: its finished windows, folded into per-stack counts, and the
    current window.  The answer covers whole slices of ``min(window, 10 s)``,
    so up to one slice more than asked for, and never more than is kept;
    ``data.meta["recent"]`` says what it covers (``covered`` seconds,
    ``truncated`` when history was shorter than asked).  See
    :mod:`ringprof.flight`.

    Raises RuntimeError when continuous mode is not running in this process
    or its flight recorder is off (``recent=0``), ValueError for a bad ``seconds``.
    """
    from .continuous import current

    controller = current()
    if controller is None:
        raise RuntimeError("ringprof.recent() needs continuous mode: ringprof.start(continuous=True, sinks=[...]) "
                           "or the ringprof-run launcher")
    return Profile.from_data(controller.recent(seconds))


def _after_fork_in_child() -> None:
    global _started, _launched, _lock
    _lock = threading.RLock()
    _started = child_profile(_started) if _started is not None else None
    _launched = child_profile(_launched) if _launched is not None else None


process_hooks.after_fork_in_child(_after_fork_in_child)
