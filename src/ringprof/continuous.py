"""Continuous mode: cut the running profile into windows and export them.

    ringprof.start(continuous=True, window=60, service="checkout",
                   sinks=["dir:/var/lib/ringprof?keep=1440",
                          "pyroscope:http://127.0.0.1:4040"])

Every ``window`` seconds a *cutter* thread swaps the profile's data for an
empty one (:meth:`ringprof.Profile.cut`: an atomic swap under the profile's
lock, so no sample is lost or counted twice) and queues the old window; an
*exporter* thread hands each queued window to every sink in turn.  Both are
raw threads the program does not see (:mod:`ringprof._threads`); in a fork
child they start together with the sampler's drain thread, not at the fork.  Memory is
bounded: the live window holds its own unique stacks only (the resolver's
per-window tables are cleared on each cut) and at most ``max_pending``
finished windows wait for slow sinks; when the queue is full the **oldest**
window is dropped and counted.  A sink that raises never reaches the
application: the first failure of a streak is logged once (logger
``"ringprof"``), the rest are counted until the sink recovers (logged too).

Each window's ``meta`` carries ``service``, ``pid``, ``tags`` (static labels,
``RINGPROF_LABELS``), ``window_start``/``window_end`` (unix seconds),
``window_index`` and ``continuous`` (window length, dropped windows, sink
failures so far).  Windows without samples are not exported unless
``export_empty=True``.

The final, partial window is exported when :func:`ringprof.stop` is called or
at interpreter exit (after the profile is flushed), waiting at most
``flush_timeout`` seconds for the sinks.  In a forked child of a
``follow_fork`` profile (the default in continuous mode: prefork servers such
as gunicorn) a new controller with the same sinks takes over the child's own
profile, so every worker exports windows tagged with its own pid.  A child
that ends with ``os._exit()`` (multiprocessing workers) loses its last
partial window.

Options of ``ringprof.start(continuous=True, ...)``:

``sinks``          sink URLs, sink objects or callables (required)
``window``         window length in seconds (default 60; at least 0.05)
``service``        service name (default: the program's name)
``tags``           static labels for every window (``{"env": "prod"}``)
``max_pending``    finished windows that may wait for the sinks (default 4)
``flush_timeout``  seconds to wait for the sinks at exit (default 5)
``export_empty``   export windows without samples too (default False)
``recent``         seconds of history the flight recorder keeps in memory for
                   :func:`ringprof.recent` (default 600; 0 turns it off)
``recent_max_bytes``  memory cap of that history (default 32 MiB)

The flight recorder (:mod:`ringprof.flight`) keeps every window cut, folded
into per-stack counts, for ``recent`` seconds: :meth:`Continuous.recent`
merges them with the current window, and :meth:`Continuous.request_dump`
sends such a profile to the sinks from the exporter thread (the WSGI/ASGI
middleware asks for one when a request is slow or fails).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import pacing, process_hooks, sampler
from ._threads import Background, forget_dummy
from .flight import DEFAULT_HORIZON, DEFAULT_MAX_BYTES, MAX_RESOLUTION, FlightRecorder
from .model import ProfileData
from .recording import child_profile
from .sinks import coerce, sink_name

log = logging.getLogger("ringprof")

__all__ = ["Continuous", "current"]

_current: Continuous | None = None
_hooks_installed = False


def current() -> Continuous | None:
    """The continuous-mode controller of this process, if any."""
    c = _current
    return c if c is not None and c._pid == os.getpid() else None


def default_service() -> str:
    """The program's name: the script's base name without ``.py``, else ``python``."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    name = os.path.basename(argv0)
    if name in ("", "-c", "-m", "__main__.py"):
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        name = (spec.name.rsplit(".", 1)[0] if spec is not None and spec.name.endswith(".__main__")
                else spec.name if spec is not None else "")
    if name.endswith(".py"):
        name = name[:-3]
    return name or "python"


class Continuous:
    """Cuts a :class:`~ringprof.Profile` into windows and exports them to sinks."""

    OPTIONS = ("sinks", "window", "service", "tags", "max_pending", "flush_timeout", "export_empty", "recent",
               "recent_max_bytes")
    MIN_WINDOW = 0.05

    def __init__(self, sinks: Iterable[Any], window: float = 60.0, *, service: str | None = None,
                 tags: Mapping[str, str] | None = None, max_pending: int = 4, flush_timeout: float = 5.0,
                 export_empty: bool = False, recent: float = DEFAULT_HORIZON,
                 recent_max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if isinstance(sinks, str | bytes) or not isinstance(sinks, Iterable):
            sinks = [sinks]
        self.sinks = [coerce(s) for s in sinks]
        if not self.sinks:
            raise ValueError("continuous mode needs at least one sink (e.g. sinks=['dir:/var/lib/ringprof'])")
        if isinstance(window, bool) or not isinstance(window, int | float) or not window >= self.MIN_WINDOW:
            raise ValueError(f"window must be a number of seconds >= {self.MIN_WINDOW}, got {window!r}")
        if not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be an integer >= 1, got {max_pending!r}")
        if not flush_timeout >= 0:
            raise ValueError(f"flush_timeout must be >= 0, got {flush_timeout!r}")
        self.window = float(window)
        self.service = service or default_service()
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.max_pending = max_pending
        self.flush_timeout = float(flush_timeout)
        self.export_empty = export_empty
        if isinstance(recent, bool) or not isinstance(recent, int | float) or not recent >= 0:
            raise ValueError(f"recent must be a number of seconds >= 0 (0 turns it off), got {recent!r}")
        #: The flight recorder (``recent`` > 0), else None.
        self.recorder = (FlightRecorder(recent, recent_max_bytes, min(self.window, MAX_RESOLUTION))
                         if recent > 0 else None)
        self._recent = float(recent)
        self._recent_max_bytes = recent_max_bytes
        #: counters: windows cut, exported (to every sink), empty (skipped),
        #: dropped (queue full), sink_failures (one per failed sink export),
        #: dumps asked for and dumps exported (to every sink)
        self.stats = {"windows": 0, "exported": 0, "empty": 0, "dropped": 0, "sink_failures": 0,
                      "dumps": 0, "dumps_exported": 0}
        self.profile: Any = None
        self._pid = os.getpid()
        self._queue: deque[ProfileData | Dump] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._stop_cutting = threading.Event()
        self._stop_export = False
        self._closed = False
        self._cut_lock = threading.Lock()
        self._window_start = 0.0
        self._index = 0
        self._streaks: dict[int, int] = {}  # id(sink) -> failures in a row
        self._recorder_failed = False
        self._drop_logged = False
        self._cutter: Background | None = None
        self._exporter: Background | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Continuous:
        """Build from ``ringprof.start()`` keyword options, removing the ones it takes."""
        kw = {k: options.pop(k) for k in cls.OPTIONS if k in options}
        if "sinks" not in kw:
            raise ValueError("continuous=True needs sinks=[...], e.g. sinks=['dir:/var/lib/ringprof']")
        sinks = kw.pop("sinks")
        return cls(sinks, **kw)

    def _clone(self) -> Continuous:
        return Continuous(self.sinks, self.window, service=self.service, tags=self.tags,
                          max_pending=self.max_pending, flush_timeout=self.flush_timeout,
                          export_empty=self.export_empty, recent=self._recent,
                          recent_max_bytes=self._recent_max_bytes)

    # ------------------------------------------------------------------ lifecycle
    def attach(self, profile: Any) -> None:
        """Start cutting ``profile`` (already enabled) into windows."""
        global _current
        active = current()
        if active is not None and not active._closed:
            raise RuntimeError("continuous profiling is already running in this process")
        self.profile = profile
        profile.continuous = self
        self._window_start = float(profile.start_time or time.time())
        sampler.call_when_threads_allowed(self._start_threads)
        _current = self
        _install_hooks()
        log.info("ringprof: continuous profiling: pid %d, %s mode, interval %g s, %g s windows -> %s",
                 self._pid, profile.mode, profile.interval, self.window,
                 ", ".join(sink_name(s) for s in self.sinks))

    def _start_threads(self) -> None:
        if self._exporter is None:
            self._exporter = Background(self._export_loop, name="ringprof-export")
        if self._cutter is None and not self._stop_cutting.is_set():
            self._cutter = Background(self._cut_loop, name="ringprof-window")

    def stop_cutting(self) -> None:
        """Stop the window timer (the final window is cut by :meth:`close`)."""
        self._stop_cutting.set()
        cutter = self._cutter
        if cutter is not None and self._pid == os.getpid():
            cutter.join(timeout=5)

    def close(self, timeout: float | None = None) -> bool:
        """Stop cutting, export the final window and wait (at most ``timeout``,
        default ``flush_timeout``) for the sinks.  Returns True if everything
        queued was exported.  Idempotent."""
        with self._cond:
            if self._closed or self._pid != os.getpid():
                return True
            self._closed = True
        global _current
        self.stop_cutting()
        self.cut_now()
        with self._cond:
            self._stop_export = True
            self._cond.notify_all()
        if self._exporter is None:
            # A fork child whose threads never started (see the module docstring);
            # at interpreter exit (3.12+) no thread may start, so export right here.
            self._export_queued_inline()
        done = self.flush(self.flush_timeout if timeout is None else timeout)
        if not done:
            with self._cond:
                left = len(self._queue) + self._busy
            log.warning("ringprof: %d window(s) not exported within %g s at shutdown (slow sink)",
                        left, self.flush_timeout if timeout is None else timeout)
        for sink in self.sinks:
            closer = getattr(sink, "close", None)
            if callable(closer):
                try:
                    closer()
                except Exception as exc:  # pragma: no cover - best effort
                    log.warning("ringprof: closing sink %s failed: %s", sink_name(sink), exc)
        if _current is self:
            _current = None
        return done

    # ------------------------------------------------------------------ windows
    def cut_now(self) -> ProfileData | None:
        """Cut the current window now and queue it for export (returns it, or
        None when it was empty and skipped)."""
        prof = self.profile
        if prof is None:
            return None
        with self._cut_lock:
            data: ProfileData = prof.cut()
            end = time.time()
            start, self._window_start = self._window_start, end
            self._index += 1
            self.stats["windows"] += 1
            self._decorate(data, start, end, self._index)
            if self.recorder is not None and (not self._closed or self._dumps_pending()):
                # (the final window of a closed controller is only kept for the dumps still queued)
                try:
                    self.recorder.add(data)
                except Exception as exc:  # the flight recorder must never stop the windows
                    if not self._recorder_failed:
                        self._recorder_failed = True
                        log.warning("ringprof: the flight recorder could not keep a window: %r", exc)
        if not len(data) and not self.export_empty:
            self.stats["empty"] += 1
            return None
        self._enqueue(data)
        return data

    def _dumps_pending(self) -> bool:
        with self._cond:
            return any(isinstance(item, Dump) for item in self._queue)

    def _enqueue(self, item: ProfileData | Dump) -> None:
        with self._cond:
            if len(self._queue) >= self.max_pending:
                self._queue.popleft()
                self.stats["dropped"] += 1
                if not self._drop_logged:
                    self._drop_logged = True
                    log.warning("ringprof: sinks are too slow: dropped the oldest queued window "
                                "(max_pending=%d); further drops are counted in meta['continuous']",
                                self.max_pending)
            self._queue.append(item)
            self._cond.notify_all()

    # ------------------------------------------------------------------ flight recorder
    def recent(self, seconds: float = 60.0, *, until_ns: int | None = None) -> ProfileData:
        """The last ``seconds`` of the profile (up to ``until_ns``, monotonic, default
        now): the flight recorder's windows merged with the current window.
        Raises RuntimeError when the flight recorder is off (``recent=0``)."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
            raise ValueError(f"seconds must be a positive number, got {seconds!r}")
        recorder = self.recorder
        if recorder is None:
            raise RuntimeError("the flight recorder is off (continuous mode was started with recent=0)")
        prof = self.profile
        with self._cut_lock:  # no window moves from the live profile to the recorder meanwhile
            live = prof.snapshot() if prof is not None and prof.enabled else None
            chunks, complete_from = recorder.chunks()
        base = live.meta if live is not None else prof.data.meta if prof is not None else {}
        meta = {key: base[key] for key in ("mode", "interval", "timer", "max_depth", "requested") if key in base}
        meta.update({"service": self.service, "pid": self._pid, "tags": dict(self.tags),
                     "python": sys.version, "argv": list(sys.argv)})
        data = recorder.assemble(seconds, chunks, complete_from, live, until_ns, meta)
        data.meta["window_start"] = data.meta["start_time"]
        data.meta["window_end"] = data.meta["start_time"] + data.meta["duration"]
        return data

    def request_dump(self, seconds: float, reason: Mapping[str, Any], sinks: Iterable[Any] | None = None) -> bool:
        """Queue a dump of the last ``seconds`` (up to now) for the sinks
        (``sinks``, default this controller's).  The profile is assembled and
        exported on the exporter thread, never on the caller's; ``reason``
        goes into its ``meta["dump"]``.  Returns False when it was not queued
        (the flight recorder is off, or the controller is closed)."""
        if self.recorder is None or self._closed or self._pid != os.getpid():
            return False
        with self._cond:
            self.stats["dumps"] += 1
            index = self.stats["dumps"]
        dump = Dump(float(seconds), time.monotonic_ns(), time.time(), dict(reason),
                    None if sinks is None else list(sinks), index)
        self._enqueue(dump)
        return True

    def _dump_data(self, dump: Dump) -> ProfileData:
        data = self.recent(dump.seconds, until_ns=dump.at_ns)
        data.meta["dump"] = {**dump.reason, "index": dump.index, "time": dump.at}
        return data

    def _decorate(self, data: ProfileData, start: float, end: float, index: int) -> None:
        meta = data.meta
        meta["service"] = self.service
        meta["pid"] = self._pid
        meta["tags"] = dict(self.tags)
        meta["window_start"] = start
        meta["window_end"] = end
        meta["window_index"] = index
        meta["start_time"] = start
        meta["continuous"] = {"window": self.window, "dropped_windows": self.stats["dropped"],
                              "sink_failures": self.stats["sink_failures"]}
        if len(data):
            present = set(data.thread)
            for t in threading.enumerate():
                tid = t.native_id
                if tid is not None and tid in present and tid not in data.threads:
                    data.threads[tid] = t.name

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued window went through the sinks."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                if self._exporter is None or not self._exporter.is_alive():
                    return not self._queue and not self._busy
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(min(left, 1.0) if left is not None else 1.0)
        return True

    # ------------------------------------------------------------------ threads
    def _export_queued_inline(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    return
                item = self._queue.popleft()
            self._export_item(item)

    def _cut_loop(self) -> None:
        deadline = time.monotonic() + self.window
        while not self._stop_cutting.wait(max(0.0, deadline - time.monotonic())):
            pacing.begin()
            try:
                self.cut_now()
            except Exception as exc:  # never let the profiler take the host down
                log.warning("ringprof: cutting a window failed: %r", exc)
                forget_dummy()
            deadline += self.window
            now = time.monotonic()
            if deadline < now:  # we fell behind (suspended host): don't burst
                deadline = now + self.window

    def _export_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop_export:
                    self._cond.wait()
                if not self._queue:
                    return
                item = self._queue.popleft()
                self._busy = True
            pacing.begin()
            try:
                self._export_item(item)
            finally:
                forget_dummy()  # sinks may log, which registers a dummy Thread
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _export_item(self, item: ProfileData | Dump) -> None:
        if isinstance(item, ProfileData):
            if self._export(item, self.sinks):
                self.stats["exported"] += 1
            return
        try:
            data = self._dump_data(item)
        except Exception as exc:  # never let a dump take the exporter down
            log.warning("ringprof: could not assemble the %s dump: %r", item.reason.get("reason", "?"), exc)
            return
        if self._export(data, self.sinks if item.sinks is None else item.sinks):
            self.stats["dumps_exported"] += 1

    def _export(self, data: ProfileData, sinks: list[Any]) -> bool:
        ok = True
        for sink in sinks:
            key = id(sink)
            try:
                sink.export(data)
            except Exception as exc:
                ok = False
                self.stats["sink_failures"] += 1
                streak = self._streaks.get(key, 0) + 1
                self._streaks[key] = streak
                if streak == 1:
                    log.warning("ringprof: sink %s failed: %s; further failures are counted until it "
                                "recovers", sink_name(sink), _one_line(exc))
            else:
                streak = self._streaks.pop(key, 0)
                if streak:
                    log.warning("ringprof: sink %s recovered after %d failed window(s)",
                                sink_name(sink), streak)
        return ok

    def __repr__(self) -> str:
        return (f"<ringprof.Continuous pid={self._pid} window={self.window}s sinks={len(self.sinks)} "
                f"{'closed' if self._closed else 'running'} {self.stats}>")


@dataclass(frozen=True)
class Dump:
    """A queued request to export the recent profile (see :meth:`Continuous.request_dump`)."""

    seconds: float
    at_ns: int  #: monotonic time of the request: the dump ends here
    at: float  #: unix time of the request
    reason: dict[str, Any]
    sinks: list[Any] | None
    index: int


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# ---------------------------------------------------------------------- process hooks
def _before_shutdown() -> None:
    """atexit, before the profile's own handler (atexit runs last-in first-out):
    stop cutting so that no window cut races with the final disable()."""
    c = current()
    if c is not None:
        c.stop_cutting()


def _at_exit() -> None:
    """After the profile was flushed at exit: export the final window."""
    c = current()
    if c is not None:
        c.close()


def _after_fork_in_child() -> None:
    """Runs after :mod:`ringprof.recording`'s fork hook (registered earlier).

    The parent's controller is dead here (its threads did not survive the fork
    and its locks may be held forever): never touch it beyond reading its
    settings.  A ``follow_fork`` profile re-armed itself; give it a controller.
    """
    global _current
    parent = _current
    _current = None
    if parent is None or parent._closed:
        return
    child = child_profile(parent.profile)
    if child is None:
        return
    try:
        controller = parent._clone()
        controller.attach(child)
    except Exception as exc:  # pragma: no cover - never break the child
        print(f"ringprof: could not resume continuous profiling after fork: {exc}", file=sys.stderr)


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    process_hooks.at_exit(_at_exit)
    atexit.register(_before_shutdown)
    process_hooks.after_fork_in_child(_after_fork_in_child)
