"""Pacing: ringprof's own threads never hold the GIL for long stretches.

The drain, the window cutter and the exporter run Python code next to the
application's threads.  A thread that wants the GIL waits up to the switch
interval (5 ms by default) before the interpreter makes the holder let go,
so a background task that runs 30 ms of Python code (encoding a window,
scanning the heap for live code objects) delays a request that arrives
meanwhile by several milliseconds, several times over.

Long loops in that code call :func:`tick`.  On a ringprof background thread
(see :class:`ringprof._threads.Background`) it sleeps :data:`PAUSE` once
:data:`SLICE` of time has passed since the last pause: the sleep releases the
GIL, and a thread waiting for it takes it at once.  Anywhere else (the
application calling ``Profile.export()``) it does nothing.  The work costs the
same CPU time; it is spread out instead of being done in one block.

Pausing is safe wherever Python code runs: the interpreter may switch threads
between any two bytecodes anyway.
"""

from __future__ import annotations

import _thread
import time

__all__ = ["PAUSE", "SLICE", "begin", "tick"]

#: Longest stretch of work between two pauses, in seconds.  Shorter slices
#: were tried: at 0.25 ms a drain pass that met new stacks cost 1.8-2.0 ms of
#: CPU instead of 1.0-1.35 ms (each pause leaves caches cold and costs a GIL
#: hand-off), with no change in requests slowed by more than 1 ms that three
#: interleaved runs could show (``benchmarks/RESULTS-production.md``).
SLICE = 0.001
#: Length of a pause, in seconds (long enough for a waiting thread to take the GIL).
PAUSE = 0.0001

_state = _thread._local()
_clock = time.perf_counter
_sleep = time.sleep


def begin() -> None:
    """Make :func:`tick` pace the calling thread (ringprof's background
    threads call it as they start and as they wake up for a new task: the
    slice counts from there)."""
    _state.deadline = _clock() + SLICE


def tick() -> None:
    """Pause briefly if this is a paced thread that has worked for :data:`SLICE`."""
    deadline = getattr(_state, "deadline", None)
    if deadline is None:
        return
    if _clock() >= deadline:
        _sleep(PAUSE)
        _state.deadline = _clock() + SLICE
