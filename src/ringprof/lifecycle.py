"""Process-lifecycle guards: keep the sampler from outliving this program image.

``exec``: ``execve(2)`` keeps ``setitimer`` interval timers, pending signals and
the signal mask, and resets caught signals to ``SIG_DFL`` -- whose action for
SIGPROF is *terminate*.  With the ``ITIMER_PROF`` fallback the new program is
therefore killed by the first inherited tick ("Profiling timer expired"); with
per-thread POSIX timers (deleted by exec) an already-queued SIGPROF can still
kill it.  :func:`install` wraps every ``os.exec*`` function so that, before the
real call, the sampler is suspended -- which disarms every timer, waits for
running handlers, discards pending SIGPROFs (transient ``SIG_IGN``), puts back
the disposition that was there before ringprof (normally ``SIG_DFL``) and
flushes every recording -- and, if ``exec`` raises, resumed with every
recording still enabled.

Not covered (documented gap): a raw ``execve()`` from C code bypasses these
wrappers.  ``subprocess``/``os.posix_spawn``/``os.fork`` need nothing: a new
process inherits no timers and no pending signals (``pthread_atfork`` in the
native layer restores SIGPROF in a fork child).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

from . import sampler

#: Every ``os`` function that replaces the program image.  ``execl*``/``execvp*``
#: funnel into ``execv``/``execve`` through module globals, so the inner calls
#: hit the wrappers too; a per-thread depth makes only the outermost one act.
EXEC_FUNCTIONS = ("execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe")

#: ``os.supports_fd`` and its siblings hold functions: ``os.execve in os.supports_fd``
#: is how programs (and CPython's own tests) ask whether ``execve`` takes a file
#: descriptor, so a wrapper is added to every set its original is in.
SUPPORTS_SETS = ("supports_fd", "supports_dir_fd", "supports_follow_symlinks", "supports_effective_ids")

_installed = False
_originals: dict[str, Callable[..., Any]] = {}
_depth = threading.local()


def _guarded(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_depth, "n", 0)
        if depth or not sampler.is_running():
            return real(*args, **kwargs)
        _depth.n = depth + 1
        try:
            # suspend() holds the sampler's control lock until resume(), so no
            # other thread re-arms sampling between the disarm and the exec.
            was_running = sampler.suspend()
            try:
                return real(*args, **kwargs)
            finally:
                # Only reached when exec failed (ENOENT, EACCES, ...): this program goes on.
                sampler.resume(was_running)
        finally:
            _depth.n = depth

    wrapper.__ringprof_wrapped__ = real  # type: ignore[attr-defined]
    return wrapper


def install() -> None:
    """Wrap ``os.exec*`` (idempotent; called when a recording is first enabled)."""
    global _installed
    if _installed:
        return
    _installed = True
    for name in EXEC_FUNCTIONS:
        real = getattr(os, name, None)
        if real is None or hasattr(real, "__ringprof_wrapped__"):
            continue
        _originals[name] = real
        wrapper = _guarded(name, real)
        for capability in _supports_sets():
            if real in capability:
                capability.add(wrapper)
        setattr(os, name, wrapper)


def _supports_sets() -> list[set[Any]]:
    return [s for s in (getattr(os, name, None) for name in SUPPORTS_SETS) if isinstance(s, set)]


def uninstall() -> None:
    """Put the original ``os.exec*`` functions back (tests)."""
    global _installed
    for name, real in _originals.items():
        current = getattr(os, name, None)
        if getattr(current, "__ringprof_wrapped__", None) is real:
            setattr(os, name, real)
            for capability in _supports_sets():
                capability.discard(current)
    _originals.clear()
    _installed = False
