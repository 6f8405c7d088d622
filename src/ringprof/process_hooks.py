"""Process lifecycle: interpreter exit and fork, for every recording.

* At exit (``atexit``), the sampler is stopped before finalization starts:
  every enabled recording is flushed and told, then the callbacks registered
  with :func:`at_exit` run (continuous mode exports its final window there).
* In a fork child, the sampler forgets its subscriptions and locks first,
  then the callbacks registered with :func:`after_fork_in_child` run in
  registration order (``follow_fork`` recordings re-arm, continuous mode
  gives them a controller).  The hook is registered when this module is
  imported -- before any recording can be enabled -- so a fork racing the
  very first ``enable()`` still resets the child.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable

from . import lifecycle, sampler

__all__ = ["after_fork_in_child", "at_exit", "install"]

_exit_callbacks: list[Callable[[], None]] = []
_fork_callbacks: list[Callable[[], None]] = []
_installed = False


def at_exit(callback: Callable[[], None]) -> None:
    """Run ``callback`` at exit, after every recording was flushed."""
    _exit_callbacks.append(callback)


def after_fork_in_child(callback: Callable[[], None]) -> None:
    """Run ``callback`` in each fork child, after the sampler was reset."""
    _fork_callbacks.append(callback)


def install() -> None:
    """Register the exit handler and the ``os.exec*`` guards (idempotent;
    called when a recording is first enabled)."""
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(_shutdown)
    lifecycle.install()  # os.exec* must not inherit a timer or a pending SIGPROF


def _shutdown() -> None:
    """At exit: stop sampling before finalization starts, flush, run callbacks."""
    try:
        sampler.stop_all()
    except Exception as exc:  # pragma: no cover - best effort at exit
        print(f"ringprof: could not stop cleanly at exit: {exc}", file=sys.stderr)
    while _exit_callbacks:
        cb = _exit_callbacks.pop(0)
        try:
            cb()
        except Exception as exc:
            print(f"ringprof: exit callback failed: {exc}", file=sys.stderr)


def _child() -> None:
    sampler.after_fork_in_child()
    for cb in list(_fork_callbacks):
        try:
            cb()
        except Exception as exc:  # pragma: no cover - never break the child
            print(f"ringprof: after-fork callback failed: {exc}", file=sys.stderr)


os.register_at_fork(after_in_child=_child)
