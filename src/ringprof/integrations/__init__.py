"""Framework integrations: WSGI/ASGI middleware, OpenTelemetry, gunicorn.

Shared pieces live here: cheap label switching for request code, bounded
route names, "slow request" capture (the samples of one request, cut out
of the running profile into their own :class:`~ringprof.ProfileData`), and
flight-recorder dumps (the last minute of the whole process, sent to the
sinks when a request is slow or fails).
"""

from __future__ import annotations

import copy
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _native
from ..labels import intern, lookup
from ..model import ProfileData

__all__ = ["FlightDump", "RateLimit", "SlowRequest", "normalize_path", "select"]

log = logging.getLogger("ringprof")


#: The calling thread's label set id (a C call, no Python in between).
get_label: Callable[[], int] = _native.load().get_thread_label
#: Set the calling thread's label set id.
set_label: Callable[[int], None] = _native.load().set_thread_label


class LabelCache:
    """(base label id, extra labels) -> merged label id, without re-sorting
    and re-interning on every request.  Bounded: cleared when full."""

    def __init__(self, limit: int = 10_000) -> None:
        self._ids: dict[tuple[Any, ...], int] = {}
        self.limit = limit

    def merged(self, base: int, method: str, route: str) -> int:
        """The id of the base set plus ``method`` and ``route``."""
        key = (base, method, route)
        lid = self._ids.get(key)
        if lid is None:
            if len(self._ids) >= self.limit:
                self._ids.clear()
            lid = self._ids[key] = intern({**lookup(base), "method": method, "route": route})
        return lid


_NUMERIC = re.compile(r"^\d+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HEXISH = re.compile(r"^(?=.*\d)[0-9a-fA-F]{16,}$")


def normalize_path(path: str) -> str:
    """A low-cardinality route from a raw path: ids become placeholders
    (``/users/42/orders/9f1c...`` -> ``/users/{int}/orders/{hex}``)."""
    parts = []
    for seg in path.split("/"):
        if _NUMERIC.match(seg):
            seg = "{int}"
        elif _UUID.match(seg):
            seg = "{uuid}"
        elif _HEXISH.match(seg):
            seg = "{hex}"
        elif len(seg) > 40:
            seg = "{long}"
        parts.append(seg)
    return "/".join(parts) or "/"


class RouteNames:
    """Caps the number of distinct route label values (label sets are interned
    for the life of the process): past ``limit`` new routes read ``<other>``."""

    def __init__(self, limit: int = 500) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._warned = False

    def __call__(self, route: str) -> str:
        if route in self._seen:
            return route
        if len(self._seen) >= self.limit:
            if not self._warned:
                self._warned = True
                log.warning("ringprof: more than %d distinct routes; further ones are labelled <other> "
                            "(pass route=... to the middleware to name them)", self.limit)
            return "<other>"
        self._seen.add(route)
        return route


def active_profile() -> Any:
    """The profile slow requests are cut from: ``ringprof.start()``'s, else the
    first enabled Profile, else None."""
    from ..control import started
    from ..recording import enabled_profiles

    prof = started()
    if prof is not None:
        return prof
    enabled = enabled_profiles()
    return enabled[0] if enabled else None


def select(data: ProfileData, *, thread: int | None = None, start_ns: int | None = None,
           end_ns: int | None = None, labels: Mapping[str, str] | None = None) -> ProfileData:
    """Like :meth:`ProfileData.filter`, but the result holds only the frames,
    stacks and label sets its samples use (small, for one request or span)."""
    import numpy as np

    keep = data.select_mask(thread=thread, labels=labels, start_ns=start_ns, end_ns=end_ns)
    out = ProfileData(copy.deepcopy(data.meta))
    idx = np.flatnonzero(keep)
    if not len(idx):
        return out
    stacks, inverse = np.unique(data.stack[idx], return_inverse=True)
    stack_map = np.array([out.intern_stack(out.intern_frame(data.frames[f]) for f in data.stacks[sid])
                          for sid in stacks.tolist()], dtype=np.int64)
    lsets, linverse = np.unique(data.labels[idx], return_inverse=True)
    label_map = np.array([out.intern_labels(data.label_sets[lid]) for lid in lsets.tolist()], dtype=np.int64)
    out.add_samples(stack_map[inverse.ravel()], data.thread[idx], data.time_ns[idx], data.weight[idx],
                    data.cpu_ns[idx], data.flags[idx], label_map[linverse.ravel()], data.depth[idx])
    for tid in np.unique(data.thread[idx]).tolist():
        if tid in data.threads:
            out.threads[tid] = data.threads[tid]
    return out


@dataclass
class SlowRequest:
    """One request slower than the middleware's threshold, with its profile."""

    method: str
    route: str
    path: str
    duration: float  #: seconds
    start_ns: int  #: CLOCK_MONOTONIC (the samples' clock)
    end_ns: int
    thread: int  #: native thread id that ran the request
    status: int | None
    data: ProfileData  #: the request's samples (empty when no profile is running)
    path_written: str | None = None  #: the file written to ``slow_dir``, if any
    labels: dict[str, str] = field(default_factory=dict)


class RateLimit:
    """A token bucket: at most ``per_minute`` events a minute, in bursts of at
    most ``per_minute``.  Thread-safe."""

    def __init__(self, per_minute: int, what: str = "max_per_minute") -> None:
        if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 1:
            raise ValueError(f"{what} must be an integer >= 1, got {per_minute!r}")
        self.per_minute = per_minute
        self._tokens = float(per_minute)
        self._refill_at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """True (and one token spent) when an event may happen now."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(float(self.per_minute),
                               self._tokens + (now - self._refill_at) * self.per_minute / 60.0)
            self._refill_at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class SlowCapture:
    """Cuts slow requests out of the active profile; rate-limited."""

    def __init__(self, threshold: float | None, on_slow: Callable[[SlowRequest], Any] | None,
                 slow_dir: str | os.PathLike[str] | None, slow_format: str, max_per_minute: int) -> None:
        if threshold is not None and not threshold >= 0:
            raise ValueError(f"slow_threshold must be >= 0 seconds, got {threshold!r}")
        if (on_slow is not None or slow_dir is not None) and threshold is None:
            raise ValueError("on_slow/slow_dir need slow_threshold (seconds)")
        if on_slow is not None and not callable(on_slow):
            raise TypeError("on_slow must be callable")
        if slow_dir is not None:
            from ..exporters import extensions

            self.ext = extensions(slow_format)[0]
        self.limit = RateLimit(max_per_minute, "max_captures_per_minute")
        self.threshold_ns = None if threshold is None else int(threshold * 1e9)
        self.on_slow = on_slow
        self.slow_dir = None if slow_dir is None else os.fspath(slow_dir)
        self.slow_format = slow_format
        self.captured = 0
        self.skipped = 0  # slow requests over the rate limit

    @property
    def enabled(self) -> bool:
        return self.threshold_ns is not None

    def _take(self) -> bool:
        if self.limit.take():
            return True
        self.skipped += 1
        return False

    def finish(self, method: str, route: str, path: str, start_ns: int, end_ns: int, thread: int,
               status: int | None, labels: Mapping[str, str]) -> None:
        if self.threshold_ns is None or end_ns - start_ns < self.threshold_ns or not self._take():
            return
        try:
            self._capture(method, route, path, start_ns, end_ns, thread, status, labels)
        except Exception as exc:  # never fail the request
            log.warning("ringprof: slow request capture failed: %r", exc)

    def _capture(self, method: str, route: str, path: str, start_ns: int, end_ns: int, thread: int,
                 status: int | None, labels: Mapping[str, str]) -> None:
        prof = active_profile()
        duration = (end_ns - start_ns) / 1e9
        if prof is None:
            data = ProfileData({"mode": "cpu", "interval": 0.01, "pid": os.getpid(), "stats": {}})
        else:
            data = select(prof.snapshot(), thread=thread, start_ns=start_ns, end_ns=end_ns + 1, labels=labels)
        data.meta["start_time"] = time.time() - (time.monotonic_ns() - start_ns) / 1e9
        data.meta["duration"] = duration
        data.meta["request"] = {"method": method, "route": route, "path": path, "status": status,
                                "duration": duration, "thread": thread}
        req = SlowRequest(method, route, path, duration, start_ns, end_ns, thread, status, data,
                          labels=dict(labels))
        self.captured += 1
        if self.slow_dir is not None:
            from ..exporters import write

            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", route).strip("_") or "root"
            name = f"slow-{method}-{safe[:80]}-{int(time.time() * 1000)}-{os.getpid()}{self.ext}"
            path = os.path.join(self.slow_dir, name)
            try:
                os.makedirs(self.slow_dir, exist_ok=True)
                write(data, path, self.slow_format)
                req.path_written = path
            except Exception as exc:
                log.warning("ringprof: could not write the slow request profile %s: %r", path, exc)
        if self.on_slow is not None:
            self.on_slow(req)


class FlightDump:
    """Asks continuous mode's flight recorder to send the last ``seconds`` of
    the whole process to the sinks when a request is slow (``slower_than``
    seconds) or fails (``on_error``: it raised, or answered 5xx); at most
    ``max_per_minute`` dumps a minute.  Cheap on the request's thread: the
    profile is assembled and exported on continuous mode's exporter thread
    (:meth:`ringprof.continuous.Continuous.request_dump`).  Never raises."""

    def __init__(self, slower_than: float | None, on_error: bool, seconds: float, sinks: Iterable[Any] | None,
                 max_per_minute: int) -> None:
        if slower_than is not None and (isinstance(slower_than, bool) or not isinstance(slower_than, int | float)
                                        or not slower_than >= 0):
            raise ValueError(f"dump_slower_than must be a number of seconds >= 0, got {slower_than!r}")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
            raise ValueError(f"dump_seconds must be a positive number of seconds, got {seconds!r}")
        self.limit = RateLimit(max_per_minute, "max_dumps_per_minute")
        if sinks is not None:
            from ..sinks import coerce

            if isinstance(sinks, str | bytes) or not isinstance(sinks, Iterable):
                sinks = [sinks]
            self.sinks: list[Any] | None = [coerce(s) for s in sinks]
        else:
            self.sinks = None
        self.slower_than_ns = None if slower_than is None else int(slower_than * 1e9)
        self.on_error = bool(on_error)
        self.seconds = float(seconds)
        #: counters: dumps asked for, skipped by the rate limit, not possible
        #: (continuous mode or its flight recorder not running)
        self.dumped = 0
        self.skipped = 0
        self.unavailable = 0
        self._warned = False
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    @property
    def enabled(self) -> bool:
        return self.slower_than_ns is not None or self.on_error

    def reason(self, duration_ns: int, status: int | None, error: BaseException | None) -> str | None:
        """``"error"``, ``"slow"`` or None (no dump)."""
        if self.on_error and (error is not None or (status is not None and status >= 500)):
            return "error"
        if self.slower_than_ns is not None and duration_ns >= self.slower_than_ns:
            return "slow"
        return None

    def finish(self, method: str, route: str, path: str, start_ns: int, end_ns: int, status: int | None,
               error: BaseException | None) -> None:
        try:
            why = self.reason(end_ns - start_ns, status, error)
            if why is None:
                return
            from .. import continuous

            controller = continuous.current()
            if controller is None or controller.recorder is None:
                self._count("unavailable")
                if not self._warned:
                    self._warned = True
                    log.warning("ringprof: a %s request asked for a flight-recorder dump, but continuous mode "
                                "with its flight recorder is not running; dumps are skipped", why)
                return
            if not self.limit.take():
                self._count("skipped")
                return
            text = None
            if error is not None:
                text = " ".join(f"{type(error).__name__}: {error}".split())[:300]
            elif why == "error":
                text = f"HTTP {status}"
            reason = {"reason": why, "method": method, "route": route, "path": path, "status": status,
                      "duration": (end_ns - start_ns) / 1e9, "error": text}
            if controller.request_dump(self.seconds, reason, self.sinks):
                self._count("dumped")
        except Exception as exc:  # never fail the request
            log.warning("ringprof: a flight-recorder dump failed: %r", exc)
