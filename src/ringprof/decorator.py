"""``@ringprof.profile``: record every call of a function.

Each call is recorded on the calling thread only (a :meth:`Profile.session`
per outermost call), so two threads inside the same decorated function never
switch each other off, and decorated functions work while other recordings
(``ringprof.start()``, the CLI, a Profile) run.  Nested and recursive calls on
one thread are recorded once, by the outermost call.  If sampling cannot
start (an interpreter ringprof cannot sample, a foreign SIGPROF handler), the
function still runs, unprofiled, and the reason is logged once (logger
``ringprof``): a profiler never raises inside the code it observes.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from .recording import Profile

__all__ = ["profile"]

P = ParamSpec("P")
R = TypeVar("R")


def profile(func: Callable[P, R] | None = None, *, output: str | os.PathLike[str] | None = None,
            **options: Any) -> Any:
    """Decorator: profile every call of the function into ``wrapper.profile``.

    ``@ringprof.profile`` or ``@ringprof.profile(interval=0.001, output="f.prof")``.
    Calls accumulate into one Profile; with ``output`` it is written (format by
    extension) after each outermost call.  Nested calls are recorded once.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        prof = Profile(**options)
        depth = threading.local()
        write_lock = threading.Lock()
        refused: list[str] = []

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if getattr(depth, "n", 0):
                depth.n += 1
                try:
                    return fn(*args, **kwargs)
                finally:
                    depth.n -= 1
            depth.n = 1
            try:
                with contextlib.ExitStack() as recording:
                    try:
                        recording.enter_context(prof.session(threads="current"))
                    except RuntimeError as exc:
                        if not refused:
                            refused.append(str(exc))
                            logging.getLogger("ringprof").warning(
                                "ringprof: %s runs unprofiled: %s", getattr(fn, "__qualname__", fn), exc)
                    return fn(*args, **kwargs)
            finally:
                depth.n = 0
                if output is not None and not refused:
                    with write_lock:
                        prof.export(output)

        wrapper.profile = prof  # type: ignore[attr-defined]
        return wrapper

    if func is not None:
        return decorate(func)
    return decorate
