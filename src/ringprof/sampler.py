"""The one process-wide sampler, and the subscriptions of recordings to it.

The signal, the timers and the rings are process-wide, so there is exactly one
sampler.  A recording (:class:`ringprof.Profile`, ``ringprof.start()``, a
continuous window, a decorated call, the cProfile drop-in, a slow-request
capture) *subscribes*: :func:`subscribe` returns a :class:`Subscription`
that receives every drained :class:`~ringprof.resolve.Batch` restricted to the
samples taken while it was open, on the threads it asked for.

* The sampler starts with the first subscription and stops (synchronously:
  no handler runs and no timer is armed afterwards) when the last one closes.
* One drain thread copies the rings out, arms timers for new threads and
  resolves the records **once**; the resulting batch is handed to every open
  subscription.  N recordings cost one drain, not N.  It drains every
  ``drain_interval`` while the rings fill fast, and up to
  :data:`DRAIN_WAIT_MAX` apart while they fill slowly (:func:`next_drain_wait`).
* **Settings rule**: the settings of the running sampler win.  A subscription
  that asks for another mode, interval, depth or timer gets the samples of the
  running sampler; :attr:`Subscription.settings` says what it actually got
  (recordings store it in their metadata) and the first such conflict in the
  process is logged as a warning on the ``"ringprof"`` logger.  Nothing
  raises because another recording runs.
* Closing a subscription is cheap (no drain): it keeps receiving until a drain
  that began after it closed has been delivered; :func:`flush` forces that.
* Drain failures never reach the application: the first failure of a streak
  is logged (``"ringprof"`` logger) and all are counted
  (:func:`counters`\\ ``["drain_failures"]``).

The drain thread is a raw thread (see :mod:`ringprof._threads`): the profiled
program does not see it in ``threading.enumerate()``.  In a forked child the
sampler may be re-armed at once (``follow_fork``) but its drain thread starts
lazily -- at the child's first garbage collection one drain interval after the
fork, when the child starts a thread, reads a profile or exits -- so the code
that forked sees a child with one thread.
"""

from __future__ import annotations

import bisect
import gc
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple

from . import _native, asyncio_tasks, label_table, pacing
from ._threads import Background, forget_dummy
from .resolve import Batch, Resolver

__all__ = [
    "MIN_INTERVAL",
    "Settings",
    "Subscription",
    "counters",
    "flush",
    "is_running",
    "running_settings",
    "subscribe",
    "validate_options",
]

log = logging.getLogger("ringprof")

Mode = Literal["cpu", "wall"]
TimerKind = Literal["auto", "thread", "itimer"]

MIN_INTERVAL = 50e-6  # below this the handler cost dominates; refuse it
TIMER_NAMES = {("thread", "cpu"): "thread-cputime", ("thread", "wall"): "thread-monotonic",
               ("itimer", "cpu"): "itimer-prof"}
_MAX_ERRORS = 32


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


class Settings(NamedTuple):
    """What the sampler runs with (``timer`` is filled in once it runs)."""

    mode: str = "cpu"
    interval: float = 0.01
    max_depth: int = 128
    timer_kind: str = "auto"
    ring_bytes: int = 1 << 18
    drain_interval: float = 0.1
    timer: str | None = None

    def differs_from(self, other: Settings) -> list[str]:
        """Names of the sampling settings in which ``self`` (a request) differs from ``other``."""
        out = [name for name in ("mode", "interval", "max_depth", "ring_bytes")
               if getattr(self, name) != getattr(other, name)]
        if self.timer_kind != "auto" and other.timer and not other.timer.startswith(
                {"thread": "thread-", "itimer": "itimer-"}[self.timer_kind]):
            out.append("timer_kind")
        return out


#: The longest a drain waits while the rings fill slowly (seconds).
DRAIN_WAIT_MAX = 1.0
RECORD_HEADER_BYTES = 56  #: rp_record in csrc/ring.h (checked against the native module by the tests)
FRAME_BYTES = 16          #: rp_frame
_TARGET_FILL = 0.25        # the fraction of the fullest ring a drain aims to find


def next_drain_wait(settings: Settings, waited: float, fill: float) -> float:
    """Seconds until the next drain pass, after one that waited ``waited`` s
    and found the fullest ring ``fill`` full (a fraction of its size).

    A pass costs about as much with 1 sample as with 50 (on a 2-vCPU VM, ~0.4
    ms of CPU and the GIL taken from the program: waking the thread, handing
    the GIL over, delivering to recordings), so while the rings fill slowly the
    drain waits longer: until the fullest ring would be about a quarter full at
    the rate it filled last time, never less than ``drain_interval``, and never
    more than the time in which a thread sampled at every interval, each
    sample ``max_depth`` frames deep, could fill half its ring (so waiting
    longer can never drop a sample of a per-thread ring), nor more than
    :data:`DRAIN_WAIT_MAX`.  At the defaults (100 Hz, depth 128, 256 KiB
    rings) that is 0.62 s; at 1 kHz with deep stacks it stays at
    ``drain_interval``.
    """
    base = settings.drain_interval
    worst_bytes_per_s = (RECORD_HEADER_BYTES + FRAME_BYTES * settings.max_depth) / settings.interval
    longest = max(base, min(DRAIN_WAIT_MAX, 0.5 * settings.ring_bytes / worst_bytes_per_s))
    wanted = 2 * waited if fill <= 0 else waited * _TARGET_FILL / fill
    return min(longest, max(base, wanted))


class Subscription:
    """One open interval of a recording: the samples of ``threads`` (None: all)
    taken from ``start_ns`` until it is closed, delivered to ``receive``."""

    __slots__ = ("differs", "end_ns", "on_error", "on_stopped", "receive", "settings", "start_ns", "threads")

    def __init__(self, receive: Callable[[Batch, list[int] | None], None], threads: frozenset[int] | None,
                 settings: Settings, on_error: Callable[[str], None] | None,
                 on_stopped: Callable[[], None] | None, start_ns: int | None = None) -> None:
        self.receive = receive
        self.threads = threads
        self.settings = settings  #: what the sampler actually runs with
        self.differs: list[str] = []  #: names of the requested settings that were not used
        self.on_error = on_error
        self.on_stopped = on_stopped
        self.start_ns = time.monotonic_ns() if start_ns is None else start_ns
        self.end_ns: int | None = None

    @property
    def open(self) -> bool:
        return self.end_ns is None

    def rows(self, batch: Batch) -> list[int] | None:
        """Indexes of the batch's samples this subscription takes (None: all)."""
        start, end, threads = self.start_ns, self.end_ns, self.threads
        if threads is None and batch.min_time >= start and (end is None or batch.max_time <= end):
            return None
        if end is None:
            end = 1 << 63
        if threads is None:
            return [i for i, t in enumerate(batch.time_ns) if start <= t <= end]
        out: list[int] = []
        by_thread = batch.by_thread()
        for tid in threads:
            found = by_thread.get(tid)
            if found is not None:
                times, rows = found
                out.extend(rows[bisect.bisect_left(times, start):bisect.bisect_right(times, end)])
        if len(threads) > 1:
            out.sort()
        return out

    def close(self) -> None:
        """Stop taking samples now (those taken so far still arrive); idempotent."""
        _SAMPLER.close(self)


class _Sampler:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (at creation, and in a fork child: the native layer
        already forgot its slots, and locks held by threads that do not exist
        in the child would never be released)."""
        self.control = threading.RLock()  # start/stop, subscribe/close
        self.drain_lock = threading.Lock()  # one drain pass at a time
        self.subs_lock = threading.Lock()  # swaps of the subscription tuple
        self.subs: list[Subscription] = []  # open ones, and closed ones not yet fully delivered
        self.open_count = 0
        self.settings: Settings | None = None
        self.resolver: Resolver | None = None
        self.thread: Background | None = None
        self.wake = threading.Event()  # set at stop
        self.nudge = threading.Event()  # set at stop, and to drain before the paced wait is over
        self.deferred_until: float | None = None  # fork child: drain thread not started yet
        self.when_threads_allowed: list[Callable[[], None]] = []
        self.counters = {"drains": 0, "drain_failures": 0, "samples": 0}
        self.failure_streak = 0
        self.last_drain_ns = 0  # when the last drain pass began (monotonic)
        self.since_last_drain = 0.0  # seconds between the last two passes
        self.conflict_logged = False
        self.thread_hook = _ThreadStartHook(self)

    # ------------------------------------------------------------------ subscriptions
    def subscribe(self, requested: Settings, threads: frozenset[int] | None,
                  receive: Callable[[Batch, list[int] | None], None],
                  on_error: Callable[[str], None] | None, on_stopped: Callable[[], None] | None,
                  defer_thread: bool = False) -> Subscription:
        with self.control:
            # Blocked intervals (wall mode) are written in batches stamped with
            # their first interval: cut them here, so none straddles the start.
            begins = time.monotonic_ns()
            if self.settings is None:
                self._start(requested, defer_thread)
            else:
                _native.load().flush_blocked()
                begins = time.monotonic_ns()
            assert self.settings is not None
            differs = requested.differs_from(self.settings)
            if differs:
                level = logging.DEBUG if self.conflict_logged else logging.WARNING
                self.conflict_logged = True
                asked = ", ".join(f"{n}={getattr(requested, n)!r}" for n in differs)
                used = ", ".join(f"{n}={getattr(self.settings, n)!r}" for n in differs if n != "timer_kind")
                log.log(level, "ringprof: a recording asked for %s but the sampler already runs with %s; "
                        "it records with the running settings (see meta['requested'])", asked,
                        used or f"timer={self.settings.timer}")
            sub = Subscription(receive, threads, self.settings, on_error, on_stopped, begins)
            sub.differs = differs
            with self.subs_lock:
                self.subs.append(sub)
                self.open_count += 1
            return sub

    def close(self, sub: Subscription) -> None:
        with self.control:
            if sub.end_ns is not None:
                return
            if self.settings is not None and sub.settings is self.settings:
                _native.load().flush_blocked()  # batches end before this recording does
            sub.end_ns = time.monotonic_ns()
            if self.settings is None or sub.settings is not self.settings:
                return  # the sampler it belonged to already stopped
            with self.subs_lock:
                self.open_count -= 1
                last = self.open_count <= 0
            if last:
                self._stop()

    # ------------------------------------------------------------------ start / stop
    def _start(self, requested: Settings, defer_thread: bool) -> None:
        native = _native.load()
        handler = signal.getsignal(signal.SIGPROF)
        if callable(handler) and requested.timer_kind == "itimer":  # only the itimer fallback uses SIGPROF
            name = getattr(handler, "__qualname__", repr(handler))
            module = getattr(handler, "__module__", None)
            raise RuntimeError(f"SIGPROF is already handled by the Python handler "
                               f"{module + '.' if module else ''}{name}; refusing to take it over")
        if self.resolver is None:
            self.resolver = Resolver()
        # (Code objects that died while nothing was sampling are in the quiet
        # log, which the resolver reads as its first drain begins.)
        kinds = (["thread", "itimer"] if requested.timer_kind == "auto" and requested.mode == "cpu" else
                 ["thread"] if requested.timer_kind == "auto" else [requested.timer_kind])
        error: Exception | None = None
        timer = None
        label_table.set_sampling(True)  # from now on, samples may name a label set until drained
        for kind in kinds:
            try:
                native.start(requested.mode, kind, requested.interval, requested.max_depth, requested.ring_bytes)
            except native.SamplerError as exc:
                error = exc
                if "per-thread timers are unavailable" not in str(exc):
                    break  # only a missing timer_create warrants the fallback
                continue
            timer = TIMER_NAMES[(kind, requested.mode)]
            if timer == "thread-cputime" and native.uses_perf():
                timer = "thread-perf"  # task-clock perf events: see csrc/sampler.c
            elif timer == "thread-monotonic" and native.uses_wall_tick():
                timer = "thread-tick"  # the tick thread: blocked threads are not signalled (csrc/sampler.c)
            error = None
            break
        if error is not None:
            label_table.set_sampling(False)
            raise RuntimeError(str(error)) from None
        self.settings = requested._replace(timer=timer)
        self.wake = threading.Event()
        self.nudge = threading.Event()
        label_table.on_backlog(self.nudge.set)
        if defer_thread:
            self.deferred_until = time.monotonic() + requested.drain_interval
            if self._gc_poke not in gc.callbacks:
                gc.callbacks.append(self._gc_poke)
        else:
            self._start_thread()
        self.thread_hook.install()
        asyncio_tasks.enable()

    def _start_thread(self) -> None:
        self.deferred_until = None
        if self.thread is not None and self.thread.is_alive():
            return
        ready = threading.Event()
        self.thread = Background(self._drain_loop, ready, self.wake, self.nudge, name="ringprof-drain")
        ready.wait(10)
        callbacks, self.when_threads_allowed = self.when_threads_allowed, []
        for callback in callbacks:
            try:
                callback()
            except Exception as exc:  # pragma: no cover - never break the host
                log.warning("ringprof: a deferred start failed: %r", exc)
        forget_dummy()

    def ensure_thread(self) -> None:
        """Start the drain thread now if it was deferred (fork child)."""
        if self.deferred_until is not None and self.settings is not None:
            with self.control:
                if self.deferred_until is not None and self.settings is not None:
                    self._start_deferred()

    def _start_deferred(self) -> None:
        try:
            self._start_thread()
        except RuntimeError as exc:  # interpreter shutdown (3.12+): drains happen inline instead
            self.deferred_until = None
            log.debug("ringprof: drain thread not started: %s", exc)

    def _gc_poke(self, phase: str, info: dict[str, int]) -> None:
        deadline = self.deferred_until
        if phase == "stop" and deadline is not None and time.monotonic() >= deadline:
            if self.control.acquire(blocking=False):
                try:
                    if self.deferred_until is not None and self.settings is not None:
                        self._start_deferred()
                finally:
                    self.control.release()

    def call_when_threads_allowed(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (which starts threads) once the drain thread runs:
        at once normally, later in a fork child (see the module docstring)."""
        with self.control:
            if self.deferred_until is None:
                callback()
            else:
                self.when_threads_allowed.append(callback)

    def _stop(self) -> None:
        """Stop the native sampler, flush, close every subscription (control held)."""
        native = _native.load()
        self.thread_hook.uninstall()
        asyncio_tasks.disable()
        try:
            native.stop()
        finally:
            self.settings = None
            self.deferred_until = None
            self.when_threads_allowed = []
            thread, self.thread = self.thread, None
            label_table.on_backlog(None)
            self.wake.set()
            self.nudge.set()
            if thread is not None:
                thread.join(timeout=5)
            with self.drain_lock:
                self._drain_pass(final=True)
            label_table.set_sampling(False)  # the last sample is drained
            native.set_codes_active(False)
            native.release_codes(native.codes_mark())
            if self._gc_poke in gc.callbacks:
                gc.callbacks.remove(self._gc_poke)

    def stop_all(self) -> None:
        """Stop sampling for every recording (interpreter exit); each is told."""
        with self.control:
            subs = list(self.subs)
            if self.settings is None:
                return
            for sub in subs:
                if sub.end_ns is None:
                    sub.end_ns = time.monotonic_ns()
            self._stop()
        for sub in subs:
            if sub.on_stopped is not None:
                sub.on_stopped()

    # ------------------------------------------------------------------ exec
    def suspend(self) -> bool:
        """Disarm and flush, keeping every subscription (``os.exec*``); control
        stays held until :meth:`resume`.  Returns whether it was running."""
        self.control.acquire()
        if self.settings is None:
            return False
        native = _native.load()
        native.stop()
        with self.drain_lock:
            self._drain_pass()
        return True

    def resume(self, was_running: bool) -> None:
        try:
            if was_running and self.settings is not None:
                s = self.settings
                kind = "itimer" if s.timer and s.timer.startswith("itimer") else "thread"
                try:
                    _native.load().start(s.mode, kind, s.interval, s.max_depth, s.ring_bytes)
                except Exception as exc:
                    self._report(f"could not resume sampling after a failed exec: {exc}")
        finally:
            self.control.release()

    # ------------------------------------------------------------------ drain
    def flush(self) -> None:
        """Drain now and deliver to every subscription (no-op when stopped)."""
        if self.settings is None:
            return
        if self.deferred_until is not None and sys.is_finalizing() is False:
            self.ensure_thread()
        with self.drain_lock:
            if self.settings is not None:
                _native.load().flush_blocked()  # wall mode: blocked time counted so far, too
                self._drain_pass()

    def _drain_pass(self, final: bool = False) -> bool:
        """One drain: copy the rings out, resolve once, deliver to everyone
        (drain_lock held).  Returns whether there were records."""
        native = _native.load()
        began = time.monotonic_ns()
        self.since_last_drain = (began - self.last_drain_ns) / 1e9 if self.last_drain_ns else 0.0
        self.last_drain_ns = began
        labels_token = label_table.drain_begins()
        buf, mark = native.drain()
        self.counters["drains"] += 1
        try:
            batch = self.resolver.ingest(buf) if self.resolver is not None else None
        finally:
            native.release_codes(mark)
        with self.subs_lock:
            subs = list(self.subs)
        if batch is not None:
            self.counters["samples"] += len(batch)
            for sub in subs:
                try:
                    sub.receive(batch, sub.rows(batch))
                except Exception as exc:  # one broken recording must not starve the others
                    self._failed(exc)
        # Every label id this pass copied is looked up: sets unused since before it began may go.
        label_table.drain_ends(labels_token)
        if final:
            with self.subs_lock:
                self.subs = []
                self.open_count = 0
        elif any(s.end_ns is not None and s.end_ns <= began for s in subs):
            with self.subs_lock:
                self.subs = [s for s in self.subs if s.end_ns is None or s.end_ns > began]
        return batch is not None

    def _drain_loop(self, ready: threading.Event, wake: threading.Event, nudge: threading.Event) -> None:
        native = _native.load()
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPROF} | _sampling_signal(native))
            native.exclude_current_thread()
        finally:
            ready.set()  # the starter must never wait forever
        settings = self.settings or Settings()
        wait = settings.drain_interval
        while True:
            if nudge.wait(wait):
                nudge.clear()
            if wake.is_set():
                return
            pacing.begin()
            try:
                if not native.handler_installed():
                    if self._handler_lost(wake):
                        return
                    continue  # stop or exec is running, or retry next interval
                native.sync_threads()
                asyncio_tasks.poll()  # asyncio imported after the sampler started
                with self.drain_lock:
                    if wake.is_set():
                        return
                    worked = self._drain_pass()
                wait = next_drain_wait(settings, self.since_last_drain or wait, native.drain_fill())
            except Exception as exc:  # never let the profiler take the host down
                wait = settings.drain_interval
                self._failed(exc)
            else:
                if self.failure_streak and worked:  # an empty pass proves nothing
                    log.warning("ringprof: draining recovered after %d failed pass(es)", self.failure_streak)
                    forget_dummy()
                    self.failure_streak = 0

    def _failed(self, exc: BaseException) -> None:
        self.counters["drain_failures"] += 1
        self.failure_streak += 1
        if self.failure_streak == 1:
            self._report(f"drain failed: {exc!r}; further failures are counted until it recovers")

    def _report(self, message: str) -> None:
        log.warning("ringprof: %s", message)
        forget_dummy()
        for sub in list(self.subs):
            if sub.on_error is not None and sub.end_ns is None:
                sub.on_error(message)

    def _handler_lost(self, wake: threading.Event) -> bool:
        """Someone replaced our sampling signal's handler: disarm at once, keep the data.

        Returns False when the control lock is busy (the caller retries)."""
        # Never block here: a stop may hold the lock while it joins us.
        if not self.control.acquire(blocking=False):
            return False
        try:
            if wake.is_set() or self.settings is None:
                return True
            message = "the sampling signal's handler was replaced by another library; sampling stopped"
            print(f"ringprof: {message}", file=sys.stderr)
            self._report(message)
            subs = list(self.subs)
            for sub in subs:
                if sub.end_ns is None:
                    sub.end_ns = time.monotonic_ns()
            self.thread = None  # we are it: _stop must not join us
            self._stop()
        finally:
            self.control.release()
        for sub in subs:
            if sub.on_stopped is not None:
                sub.on_stopped()
        return True


class _ThreadStartHook:
    """Arms each new ``threading`` thread as it starts, so that threads living
    less than a drain interval are sampled too.  The drain's periodic sweep
    stays the source of truth (it also covers ``_thread`` and C threads).

    On 3.11 ``threading.setprofile`` hands our function to every new thread;
    it runs once, on the thread's first profile event, registers the thread
    and hands over to the user's own hook, if there was one.

    On 3.12+ ``sys.setprofile`` is built on ``sys.monitoring``: each new
    thread that installs and removes a profile function switches legacy
    profiling instrumentation on and off for the whole interpreter, which cost
    a thread-per-request program 9 % of its main thread's work (issue 11,
    item 12).  There the hook wraps ``threading.Thread._bootstrap_inner``
    instead (the method every ``threading`` thread runs first, on the new
    thread): one Python call per new thread and nothing interpreter-wide.  A
    subclass that overrides ``_bootstrap_inner`` is armed by the sweep.
    """

    WRAP_BOOTSTRAP = sys.version_info >= (3, 12)

    def __init__(self, sampler: _Sampler) -> None:
        self.sampler = sampler
        self.previous: Any = None
        self.installed = False
        self.original_bootstrap: Any = None

    def _arm_current_thread(self) -> None:
        try:
            _native.load().register_current_thread()
            if self.sampler.deferred_until is not None:
                self.sampler.ensure_thread()  # the program starts threads: so may we
        except Exception:  # pragma: no cover - never break the user's thread
            pass

    def _hook(self, frame: Any, event: str, arg: Any) -> Any:
        previous = self.previous
        sys.setprofile(previous)
        self._arm_current_thread()
        if previous is not None:
            return previous(frame, event, arg)
        return None

    def _wrapped_bootstrap(self) -> Any:
        original = self.original_bootstrap
        hook = self

        def _bootstrap_inner(thread: threading.Thread) -> None:
            if hook.installed:
                hook._arm_current_thread()
            original(thread)

        _bootstrap_inner.__wrapped__ = original  # type: ignore[attr-defined]
        return _bootstrap_inner

    def install(self) -> None:
        if self.installed:
            return
        if self.WRAP_BOOTSTRAP:
            current = getattr(threading.Thread, "_bootstrap_inner", None)
            if current is None:
                return  # not CPython's threading: the sweep arms threads
            if getattr(current, "__wrapped__", None) is None or self.original_bootstrap is None:
                self.original_bootstrap = current
                threading.Thread._bootstrap_inner = self._wrapped_bootstrap()  # type: ignore[attr-defined]
        else:
            self.previous = threading.getprofile()
            threading.setprofile(self._hook)
        self.installed = True

    def uninstall(self) -> None:
        """Stop arming new threads.  On 3.12+ the wrapper stays in place and
        does nothing while uninstalled: a thread may be inside it right now,
        and another library may have wrapped it in turn."""
        if self.installed:
            if not self.WRAP_BOOTSTRAP and threading.getprofile() == self._hook:
                threading.setprofile(self.previous)
            self.installed = False


_SAMPLER = _Sampler()


def subscribe(requested: Settings, *, threads: Iterable[int] | None = None,
              receive: Callable[[Batch, list[int] | None], None],
              on_error: Callable[[str], None] | None = None, on_stopped: Callable[[], None] | None = None,
              defer_thread: bool = False) -> Subscription:
    """Open a subscription, starting the sampler with ``requested`` if it is not
    running (the running sampler's settings win otherwise; see the module
    docstring).  Raises RuntimeError only if the sampler cannot start at all
    (SIGPROF owned by someone else, no usable timer)."""
    return _SAMPLER.subscribe(requested, None if threads is None else frozenset(threads), receive,
                              on_error, on_stopped, defer_thread)


def flush() -> None:
    """Drain the rings now and deliver to every open subscription."""
    _SAMPLER.flush()


def is_running() -> bool:
    return _SAMPLER.settings is not None


def running_settings() -> Settings | None:
    """The settings of the running sampler, or None."""
    return _SAMPLER.settings


def open_subscriptions() -> int:
    """How many subscriptions are open (recordings enabled, decorated calls running)."""
    return _SAMPLER.open_count


def drain_thread_id() -> int | None:
    """Native id of the running drain thread, or None."""
    thread = _SAMPLER.thread
    return thread.native_id if thread is not None and thread.is_alive() else None


def counters() -> dict[str, int]:
    """Process-wide counters: ``drains`` (drain passes), ``drain_failures``,
    ``samples`` (delivered), ``invalid_frames`` and ``code_lookups`` (code
    addresses the resolver had to look up: not known from an earlier drain,
    also of an earlier session)."""
    out = dict(_SAMPLER.counters)
    resolver = _SAMPLER.resolver
    out["invalid_frames"] = resolver.invalid_frames if resolver is not None else 0
    out["code_lookups"] = resolver.code_lookups if resolver is not None else 0
    return out


def stop_all() -> None:
    """Stop sampling for every recording (at interpreter exit)."""
    _SAMPLER.stop_all()


def suspend() -> bool:
    """Disarm and flush around ``os.exec*``; pair with :func:`resume`."""
    return _SAMPLER.suspend()


def resume(was_running: bool) -> None:
    _SAMPLER.resume(was_running)


def call_when_threads_allowed(callback: Callable[[], None]) -> None:
    _SAMPLER.call_when_threads_allowed(callback)


def after_fork_in_child() -> None:
    """Forget every subscription and lock (the native layer forgot its slots)."""
    sampler = _SAMPLER
    resolver = sampler.resolver
    hook = sampler.thread_hook
    if sampler._gc_poke in gc.callbacks:
        gc.callbacks.remove(sampler._gc_poke)
    hook.uninstall()
    asyncio_tasks.after_fork_in_child()
    sampler.reset()
    sampler.resolver = resolver
    if sys.modules.get("ringprof._sampler") is not None:
        native = _native.load()
        native.set_codes_active(False)
        native.release_codes(native.codes_mark())


def _sampling_signal(native: Any) -> set[int]:
    """The real-time signal per-thread samples travel on, if one was chosen."""
    try:
        return {int(native.signal_number())}
    except Exception:
        return set()
