"""``ringprof.Profile``: the recorder and the recording, as in cProfile.

A Profile owns its :class:`~ringprof.model.ProfileData` and, while enabled,
the process's one native sampler plus a daemon *drain thread* that copies the
per-thread rings out every ``drain_interval`` seconds, arms timers for new
threads and resolves records into the model.

At most one Profile samples at a time (the signal and timers are
process-wide); enabling a second one raises :class:`RuntimeError`.
"""

from __future__ import annotations

import atexit
import functools
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, ParamSpec, TypeVar

from .cprofile import CProfileMethods
from .model import ProfileData

Mode = Literal["cpu", "wall"]
TimerKind = Literal["auto", "thread", "itimer"]

MIN_INTERVAL = 50e-6  # below this the handler cost dominates; refuse it
_TIMER_NAMES = {("thread", "cpu"): "thread-cputime", ("thread", "wall"): "thread-monotonic",
                ("itimer", "cpu"): "itimer-prof"}

P = ParamSpec("P")
R = TypeVar("R")

# The one piece of process-wide mutable state: the Profile that currently owns
# the native sampler (and the one started by ringprof.start(), if any).
_active: Profile | None = None
_started: Profile | None = None
_control = threading.RLock()


class TopEntry(NamedTuple):
    """One row of :meth:`Profile.top`."""

    name: str
    filename: str
    firstlineno: int
    self_ns: int
    total_ns: int
    self_pct: float
    total_pct: float


def _sampler() -> Any:
    from . import _sampler as native

    return native


def validate_options(interval: float, mode: str, max_depth: int, timer_kind: str) -> None:
    """Raise ValueError with a one-line message for bad settings (shared with the CLI)."""
    if not isinstance(interval, int | float) or isinstance(interval, bool) or interval != interval:
        raise ValueError(f"interval must be a number of seconds, got {interval!r}")
    if interval <= 0:
        raise ValueError(f"interval must be positive, got {interval}")
    if interval < MIN_INTERVAL:
        raise ValueError(f"interval {interval} s is below the minimum of {MIN_INTERVAL} s (20 kHz)")
    if interval > 60:
        raise ValueError(f"interval {interval} s is above the maximum of 60 s")
    if mode not in ("cpu", "wall"):
        raise ValueError(f"unknown mode {mode!r}: expected 'cpu' or 'wall'")
    if timer_kind not in ("auto", "thread", "itimer"):
        raise ValueError(f"unknown timer kind {timer_kind!r}: expected 'auto', 'thread' or 'itimer'")
    if not isinstance(max_depth, int) or not 1 <= max_depth <= 2048:
        raise ValueError(f"max_depth must be an integer from 1 to 2048, got {max_depth!r}")


class Profile(CProfileMethods):
    """A sampling profile: call :meth:`enable`/:meth:`disable` (or use ``with``),
    then read it with :meth:`top`, :meth:`to_collapsed`, :meth:`save`,
    :meth:`export` or the cProfile methods (:meth:`print_stats`, ...).

    ``interval`` is the sampling period in seconds; ``mode="cpu"`` samples each
    thread on its own CPU-time clock (idle threads cost nothing and are not
    seen), ``mode="wall"`` samples every thread on the monotonic clock,
    including threads blocked in I/O.  ``max_depth`` frames are kept per sample
    (the leaf side).  ``timer``, ``timeunit``, ``subcalls`` and ``builtins`` are
    accepted for cProfile compatibility and ignored.
    """

    def __init__(
        self,
        interval: float | Callable[[], float] = 0.01,
        mode: Mode = "cpu",
        max_depth: int = 128,
        *,
        timer: Callable[[], float] | None = None,
        timeunit: float = 0.0,
        subcalls: bool = True,
        builtins: bool = True,
        timer_kind: TimerKind = "auto",
        drain_interval: float = 0.1,
        ring_bytes: int = 1 << 18,
        follow_fork: bool = False,
    ) -> None:
        if callable(interval):  # cProfile.Profile(timer) passed positionally
            interval = 0.01
        validate_options(interval, mode, max_depth, timer_kind)
        if not 0.001 <= drain_interval <= 10:
            raise ValueError(f"drain_interval must be between 0.001 and 10 s, got {drain_interval}")
        if ring_bytes < 4096 or ring_bytes & (ring_bytes - 1):
            raise ValueError(f"ring_bytes must be a power of two >= 4096, got {ring_bytes}")
        self.interval = float(interval)
        self.mode: Mode = mode
        self.max_depth = max_depth
        self.timer_kind: TimerKind = timer_kind
        self.drain_interval = drain_interval
        self.ring_bytes = ring_bytes
        self.follow_fork = follow_fork
        self._data = ProfileData(self._base_meta())
        self._resolver: Any = None
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._enabled = False
        self._enabled_at = 0.0
        self._stats_at_enable: dict[str, int] = {}
        self.errors: list[str] = []
        #: The :class:`ringprof.continuous.Continuous` controller cutting this
        #: profile into windows (``ringprof.start(continuous=True)``), or None.
        self.continuous: Any = None

    # ------------------------------------------------------------------ metadata
    def _base_meta(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "interval": self.interval,
            "timer": None,
            "max_depth": self.max_depth,
            "start_time": None,
            "duration": 0.0,
            "python": sys.version,
            "pid": os.getpid(),
            "argv": list(sys.argv),
            "stats": {"samples": 0, "dropped": 0, "unattributed": 0, "handler_ns": 0,
                      "invalid_frames": 0, "rate_per_thread": {}},
        }

    # ------------------------------------------------------------------ control
    @property
    def enabled(self) -> bool:
        return self._enabled

    def enable(self) -> None:
        """Start sampling into this profile.  A no-op if it is already enabled.

        Raises RuntimeError if another Profile is sampling, or if SIGPROF
        already belongs to another handler (named in the message).
        """
        global _active
        with _control:
            if self._enabled:
                return
            if _active is not None:
                raise RuntimeError("another ringprof Profile is already enabled in this process; "
                                   "disable it first (one sampler per process)")
            native = _sampler()
            handler = signal.getsignal(signal.SIGPROF)
            if callable(handler):
                name = getattr(handler, "__qualname__", repr(handler))
                module = getattr(handler, "__module__", None)
                raise RuntimeError(f"SIGPROF is already handled by the Python handler "
                                   f"{module + '.' if module else ''}{name}; refusing to take it over")
            from .resolve import Resolver

            if self._resolver is None:
                self._resolver = Resolver(self._data)
            ready = threading.Event()
            self._wake.clear()
            self._thread = threading.Thread(target=self._drain_loop, args=(ready,),
                                            name="ringprof-drain", daemon=True)
            self._thread.start()
            if not ready.wait(10) or not self._thread.is_alive():
                self._stop_thread()
                raise RuntimeError("ringprof: the drain thread did not start: " + "; ".join(self.errors))
            kinds = ["thread", "itimer"] if self.timer_kind == "auto" and self.mode == "cpu" else (
                ["thread"] if self.timer_kind == "auto" else [self.timer_kind])
            error: Exception | None = None
            for kind in kinds:
                try:
                    native.start(self.mode, kind, self.interval, self.max_depth, self.ring_bytes)
                except native.SamplerError as exc:
                    error = exc
                    if "per-thread timers are unavailable" not in str(exc):
                        break  # only a missing timer_create warrants the fallback
                    continue
                self._data.meta["timer"] = _TIMER_NAMES[(kind, self.mode)]
                error = None
                break
            if error is not None:
                self._stop_thread()
                raise RuntimeError(str(error)) from None
            self._stats_at_enable = native.stats()
            self._enabled_at = time.monotonic()
            if self._data.meta.get("start_time") is None:
                self._data.meta["start_time"] = time.time()
            self._enabled = True
            _active = self
            _install_process_hooks()
            _thread_hook.install()

    def disable(self) -> None:
        """Stop sampling and flush every sample taken so far into the profile.

        When it returns no signal handler is running, no timer is armed and
        the previous SIGPROF disposition is restored.  A no-op if not enabled.
        """
        global _active
        with _control:
            if not self._enabled:
                return
            native = _sampler()
            _thread_hook.uninstall()
            try:
                native.stop()
            finally:
                self._enabled = False
                _active = None
                self._stop_thread()
                self._drain_once()
                native.set_codes_active(False)
                native.release_codes(native.codes_mark())
                self._account(native.stats())

    def _account(self, now: dict[str, int]) -> None:
        meta = self._data.meta
        elapsed = time.monotonic() - self._enabled_at
        meta["duration"] = float(meta.get("duration", 0.0)) + elapsed
        stats = meta["stats"]
        for key in ("samples", "dropped", "unattributed", "handler_ns"):
            stats[key] = int(stats.get(key, 0)) + now[key] - self._stats_at_enable.get(key, 0)
        if self._resolver is not None:
            stats["invalid_frames"] = self._resolver.invalid_frames
        self._update_rates()

    def _update_rates(self) -> None:
        meta = self._data.meta
        duration = float(meta.get("duration") or 0.0)
        if duration <= 0 or not len(self._data):
            return
        tids, counts = _unique_counts(self._data.thread)
        meta["stats"]["rate_per_thread"] = {str(t): round(c / duration, 2) for t, c in zip(tids, counts, strict=True)}

    def _stop_thread(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._wake.set()
            if thread is not threading.current_thread():
                thread.join(timeout=5)

    def _drain_loop(self, ready: threading.Event) -> None:
        native = _sampler()
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPROF})
            native.exclude_current_thread()
        except Exception as exc:  # pragma: no cover - reported by enable()
            self.errors.append(f"drain thread failed to start: {exc!r}")
            return
        finally:
            ready.set()  # enable() must never wait forever
        while not self._wake.wait(self.drain_interval):
            try:
                if not native.handler_installed():
                    if self._handler_lost():
                        return
                    continue  # disable() is running, or retry next interval
                native.sync_threads()
                self._drain_once()
            except Exception as exc:  # never let the profiler take the host down
                self.errors.append(f"drain failed: {exc!r}")

    def _handler_lost(self) -> bool:
        """Someone replaced our SIGPROF handler: disarm at once, keep the data.

        Returns False when the control lock is busy (the caller retries)."""
        global _active
        native = _sampler()
        # Never block here: disable() may hold the lock while it joins us.
        if not _control.acquire(blocking=False):
            return False
        try:
            if not self._enabled:
                return True
            self.errors.append("SIGPROF handler was replaced by another library; sampling stopped")
            print("ringprof: SIGPROF handler was replaced by another library; sampling stopped",
                  file=sys.stderr)
            _thread_hook.uninstall()
            native.stop()
            self._enabled = False
            _active = None
            self._thread = None
            self._drain_once()
            native.set_codes_active(False)
            native.release_codes(native.codes_mark())
            self._account(native.stats())
            return True
        finally:
            _control.release()

    def _drain_once(self) -> None:
        native = _sampler()
        with self._lock:
            buf, mark = native.drain()
            if self._resolver is not None:
                self._resolver.ingest(buf)
            native.release_codes(mark)

    def cut(self) -> ProfileData:
        """Atomically swap in an empty ProfileData and return the recorded one.

        Pending samples are drained first, so the returned data holds every
        sample taken up to the cut, with its own ``duration`` and ``stats``;
        sampling goes on into the fresh data without a gap.  Used by
        continuous mode to cut windows (see :mod:`ringprof.continuous`).
        """
        with self._lock:
            old = self._data
            if self._enabled:
                self._drain_once()
                now = _sampler().stats()
                self._account(now)
                self._stats_at_enable = now
                self._enabled_at = time.monotonic()
            new = ProfileData(self._base_meta())
            new.meta["timer"] = old.meta.get("timer")
            new.meta["start_time"] = time.time() if self._enabled else None
            self._data = new
            if self._resolver is not None:
                self._resolver.retarget(new)
            return old

    def __enter__(self) -> Profile:
        self.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disable()

    # ------------------------------------------------------------------ the recording
    @property
    def data(self) -> ProfileData:
        """The recorded data (drains pending samples first when enabled)."""
        if self._enabled:
            self._drain_once()
            self._update_rates()
        return self._data

    @classmethod
    def from_data(cls, data: ProfileData) -> Profile:
        meta = data.meta
        prof = cls(interval=float(meta.get("interval") or 0.01), mode=meta.get("mode") or "cpu",
                   max_depth=int(meta.get("max_depth") or 128))
        prof._data = data
        return prof

    def top(self, n: int = 20) -> list[TopEntry]:
        """The ``n`` functions with the most total (inclusive) time."""
        data = self.data
        total = data.total_weight() or 1
        unit = data.interval_ns
        rows = []
        for st in data.function_stats()[:n]:
            filename, firstlineno, name = st.key
            rows.append(TopEntry(name, filename, firstlineno, st.self_weight * unit, st.total_weight * unit,
                                 100.0 * st.self_weight / total, 100.0 * st.total_weight / total))
        return rows

    def format_top(self, n: int = 20, *, sort: Literal["total", "self"] = "total") -> str:
        """The top-N table as text (function, file:line, self %, total %)."""
        from .model import format_top

        return format_top(self.data, n, sort=sort)

    def print_top(self, n: int = 20, file: Any = None) -> None:
        print(self.format_top(n), end="", file=file if file is not None else sys.stderr)

    def to_collapsed(self, lines: bool = False) -> str:
        """Folded stacks: one ``a;b;c 42`` line per unique stack (root first)."""
        from .exporters import render

        return render(self.data, "collapsed", lines=lines).decode()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the native, versioned format (read back with :func:`ringprof.load`)."""
        self.data.save(path)

    def export(self, path: str | os.PathLike[str], format: str | None = None, **options: Any) -> None:
        """Write any supported format, chosen by ``format`` or the path's extension."""
        from .exporters import write

        write(self.data, path, format, **options)

    def __repr__(self) -> str:
        state = "enabled" if self._enabled else "disabled"
        return f"<ringprof.Profile {state} mode={self.mode} interval={self.interval} samples={len(self._data)}>"


def _unique_counts(values: Any) -> tuple[list[int], list[int]]:
    import numpy as np

    tids, counts = np.unique(values, return_counts=True)
    return [int(t) for t in tids], [int(c) for c in counts]


def load(path: str | os.PathLike[str]) -> Profile:
    """Load a profile saved with :meth:`Profile.save`."""
    return Profile.from_data(ProfileData.load(path))


def start(interval: float = 0.01, mode: Mode = "cpu", max_depth: int = 128, *, continuous: bool = False,
          **options: Any) -> Profile:
    """Start the process-wide profiler and return its Profile.

    ``continuous=True`` cuts the profile into windows exported to sinks on a
    background thread: ``ringprof.start(continuous=True, window=60,
    sinks=["dir:/var/lib/ringprof"])``; see :mod:`ringprof.continuous` for
    its options (``window``, ``sinks``, ``service``, ``tags``, ...).

    Raises RuntimeError if ringprof.start() was already called (and not stopped).
    """
    global _started
    with _control:
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
    """Stop the process-wide profiler started by :func:`start` and return it.

    Raises RuntimeError if it was not started (a stop without a start is a bug
    worth hearing about in a service's start-up code).
    """
    global _started
    with _control:
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

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            outer = not getattr(depth, "n", 0)
            depth.n = getattr(depth, "n", 0) + 1
            try:
                if outer:
                    prof.enable()
                return fn(*args, **kwargs)
            finally:
                depth.n -= 1
                if outer:
                    prof.disable()
                    if output is not None:
                        prof.export(output)

        wrapper.profile = prof  # type: ignore[attr-defined]
        return wrapper

    if func is not None:
        return decorate(func)
    return decorate


# ---------------------------------------------------------------------- thread start hook
class _ThreadStartHook:
    """Arms each new ``threading`` thread as it starts, so that threads living
    less than a drain interval are sampled too.  The drain's periodic sweep
    stays the source of truth (it also covers ``_thread`` and C threads).

    ``threading.setprofile`` hands our function to every new thread; it runs
    once, on the thread's first profile event, registers the thread and hands
    over to the user's own hook, if there was one.
    """

    def __init__(self) -> None:
        self.previous: Any = None
        self.installed = False

    def _hook(self, frame: Any, event: str, arg: Any) -> Any:
        previous = self.previous
        sys.setprofile(previous)
        try:
            _sampler().register_current_thread()
        except Exception:  # pragma: no cover - never break the user's thread
            pass
        if previous is not None:
            return previous(frame, event, arg)
        return None

    def install(self) -> None:
        if not self.installed:
            self.previous = threading.getprofile()
            threading.setprofile(self._hook)
            self.installed = True

    def uninstall(self) -> None:
        if self.installed:
            if threading.getprofile() == self._hook:
                threading.setprofile(self.previous)
            self.installed = False


_thread_hook = _ThreadStartHook()


# ---------------------------------------------------------------------- process hooks
_exit_callbacks: list[Callable[[], None]] = []
_hooks_installed = False


def at_exit(callback: Callable[[], None]) -> None:
    """Run ``callback`` after the active profile was flushed at interpreter exit."""
    _exit_callbacks.append(callback)


def _shutdown() -> None:
    """At exit: stop sampling before finalization starts, flush, run callbacks."""
    prof = _active
    if prof is not None:
        try:
            prof.disable()
        except Exception as exc:  # pragma: no cover - best effort at exit
            print(f"ringprof: could not stop cleanly at exit: {exc}", file=sys.stderr)
    while _exit_callbacks:
        cb = _exit_callbacks.pop(0)
        try:
            cb()
        except Exception as exc:
            print(f"ringprof: exit callback failed: {exc}", file=sys.stderr)


def _after_fork_in_child() -> None:
    """The native layer already forgot every slot; forget the Python side too."""
    global _active, _started, _control
    # Locks held at fork() by threads that do not exist here would never be released.
    _control = threading.RLock()
    prof = _active
    _active = None
    started = _started
    _started = None
    if prof is None:
        return
    prof._lock = threading.RLock()
    prof._enabled = False
    prof._thread = None
    native = _sampler()
    native.set_codes_active(False)
    native.release_codes(native.codes_mark())
    if prof.follow_fork:
        child = Profile(prof.interval, prof.mode, prof.max_depth, timer_kind=prof.timer_kind,
                        drain_interval=prof.drain_interval, ring_bytes=prof.ring_bytes, follow_fork=True)
        child.enable()
        if started is prof:
            _started = child
        _fork_children[os.getpid()] = child


_fork_children: weakref.WeakValueDictionary[int, Profile] = weakref.WeakValueDictionary()


def child_profile() -> Profile | None:
    """In a forked child of a ``follow_fork=True`` profile: the child's own Profile."""
    return _fork_children.get(os.getpid())


def _install_process_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_shutdown)
    from . import lifecycle

    lifecycle.install()  # os.exec* must not inherit a timer or a pending SIGPROF


# At import, not on first enable(): a fork() while another thread holds _control
# (even inside the very first enable()) must still reset it in the child.
os.register_at_fork(after_in_child=_after_fork_in_child)
