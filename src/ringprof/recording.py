"""``ringprof.Profile``: a recording, as in cProfile.

A Profile owns its :class:`~ringprof.model.ProfileData`.  While enabled it is
subscribed to the process's one sampler (:mod:`ringprof.sampler`) and
receives the samples taken while it is enabled, on the threads it asked for
(``threads=None``: all threads; ``"current"``: the thread that calls
``enable()``; or thread ids / :class:`threading.Thread` objects).  Any number
of Profiles may be enabled at once; when they ask for different settings the
running sampler's settings win (see :mod:`ringprof.sampler`), and
``data.meta`` says what was used (``meta["requested"]`` what was asked for).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, NamedTuple

from . import _native, process_hooks, sampler
from .cprofile import CProfileMethods
from .folding import DEFAULT_MAX_SAMPLES
from .model import ProfileData
from .pacing import tick
from .resolve import Batch
from .sampler import Mode, Settings, Subscription, TimerKind, validate_options

__all__ = ["Profile", "TopEntry", "child_profile", "enabled_profiles", "load"]

ThreadsArg = None | Literal["current"] | Iterable["int | threading.Thread"]

_STAT_KEYS = ("dropped", "unattributed", "handler_ns", "record_ns")


class TopEntry(NamedTuple):
    """One row of :meth:`Profile.top`."""

    name: str
    filename: str
    firstlineno: int
    self_ns: int
    total_ns: int
    self_pct: float
    total_pct: float


def _thread_ids(threads: ThreadsArg) -> frozenset[int] | None:
    if threads is None:
        return None
    if threads == "current":
        return frozenset((threading.get_native_id(),))
    if isinstance(threads, str):
        raise ValueError(f"threads must be None, 'current' or thread ids/Thread objects, got {threads!r}")
    out = set()
    for t in threads:
        tid = t.native_id if isinstance(t, threading.Thread) else t
        if not isinstance(tid, int):
            raise ValueError(f"not a started thread or a native thread id: {t!r}")
        out.add(tid)
    return frozenset(out)


class Profile(CProfileMethods):
    """A sampling profile: call :meth:`enable`/:meth:`disable` (or use ``with``),
    then read it with :meth:`top`, :meth:`to_collapsed`, :meth:`save`,
    :meth:`export` or the cProfile methods (:meth:`print_stats`, ...).

    ``interval`` is the sampling period in seconds; ``mode="cpu"`` samples each
    thread on its own CPU-time clock (idle threads cost nothing and are not
    seen), ``mode="wall"`` samples every thread on the monotonic clock,
    including threads blocked in I/O.  ``max_depth`` frames are kept per sample
    (the leaf side).  ``threads`` picks the threads recorded: None (all),
    ``"current"`` (the thread calling :meth:`enable`) or thread ids /
    :class:`threading.Thread` objects.  ``max_samples`` caps the samples kept
    as taken (None: no cap); older ones are folded into one row per stack,
    thread and label set, with their weights exact (see
    :mod:`ringprof.folding`).  ``timer``, ``timeunit``, ``subcalls``
    and ``builtins`` are accepted for cProfile compatibility (also
    positionally: ``Profile(timer, timeunit, subcalls, builtins)``) and ignored.

    ``async_tasks=True`` adds the async view (:mod:`ringprof.async_wait`):
    every ``async_interval`` seconds, for every pending asyncio task of the
    event loop running in the thread that calls :meth:`enable` (more loops:
    :meth:`watch_loop`), a *waiting* sample of the chain the task is suspended
    in, weighted by wall time and labelled ``state=waiting``, ``task`` and
    ``task_id``; snapshots use at most ``async_budget`` of a core.
    """

    def __init__(
        self,
        interval: float | Callable[[], float] = 0.01,
        mode: Mode = "cpu",
        max_depth: int = 128,
        *args: Any,
        timer: Callable[[], float] | None = None,
        timeunit: float = 0.0,
        subcalls: bool = True,
        builtins: bool = True,
        timer_kind: TimerKind = "auto",
        drain_interval: float = 0.1,
        ring_bytes: int = 1 << 18,
        follow_fork: bool = False,
        threads: ThreadsArg = None,
        max_samples: int | None = DEFAULT_MAX_SAMPLES,
        async_tasks: bool = False,
        async_interval: float = 0.1,
        async_budget: float = 0.01,
    ) -> None:
        if callable(interval):
            # cProfile.Profile(timer, timeunit, subcalls, builtins) passed positionally:
            # the slots after the timer are cProfile's, not ours.
            interval = 0.01
            mode = "cpu" if not isinstance(mode, str) else mode
            max_depth = 128 if isinstance(max_depth, bool) else max_depth
        elif args:
            raise TypeError(f"Profile() takes at most 3 positional arguments after the interval, got {args!r}")
        validate_options(interval, mode, max_depth, timer_kind)
        if not 0.001 <= drain_interval <= 10:
            raise ValueError(f"drain_interval must be between 0.001 and 10 s, got {drain_interval}")
        if ring_bytes < 4096 or ring_bytes & (ring_bytes - 1):
            raise ValueError(f"ring_bytes must be a power of two >= 4096, got {ring_bytes}")
        if threads is not None and threads != "current":
            threads = _thread_ids(threads)  # validate now; a generator is read once
        if max_samples is not None and (not isinstance(max_samples, int) or max_samples < 100):
            raise ValueError(f"max_samples must be None or an int >= 100, got {max_samples!r}")
        self.max_samples = max_samples
        if async_tasks:
            from .async_wait import validate

            validate(async_interval, async_budget)
        self.async_tasks = bool(async_tasks)
        self.async_interval = float(async_interval)
        self.async_budget = float(async_budget)
        self.interval = float(interval)
        self.mode: Mode = mode
        self.max_depth = max_depth
        self.timer_kind: TimerKind = timer_kind
        self.drain_interval = drain_interval
        self.ring_bytes = ring_bytes
        self.follow_fork = follow_fork
        self.threads = threads
        self._data = self._new_data()
        # Lock order: _state_lock (enable/disable) -> the sampler's locks -> _lock
        # (the data, taken by deliveries).  Never call the sampler holding _lock.
        self._state_lock = threading.RLock()
        self._lock = threading.RLock()
        self._sub: Subscription | None = None  # the enable()/disable() subscription
        self._open = 0  # open subscriptions (enable() plus running sessions)
        self._unsettled = False  # a subscription closed: samples may still be on their way
        self._active_since = 0.0
        self._stats_at_open: dict[str, int] = {}
        self._table_generation = -1
        self._stack_map: dict[int, int] = {}  # sampler table id -> model stack id
        self._label_map: dict[int, int] = {0: 0}  # process label id -> model label id
        self._thread_counts: Counter[int] = Counter()
        self._errors: list[str] = []
        self._waiters: list[Any] = []  # async_wait.TaskWaitSampler, one per watched loop
        self._async_stats: dict[str, Any] = {}  # counters of closed waiters
        # Interning caches of waiting samples, valid for one ProfileData: (data, stack ids, label ids).
        self._waiting_ids: tuple[ProfileData | None, dict[Any, int], dict[Any, int]] = (None, {}, {})
        #: The :class:`ringprof.continuous.Continuous` controller cutting this
        #: profile into windows (``ringprof.start(continuous=True)``), or None.
        self.continuous: Any = None

    # ------------------------------------------------------------------ metadata
    def _new_data(self) -> ProfileData:
        data = ProfileData(self._base_meta())
        data.max_samples = self.max_samples
        return data

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
            "stats": {"samples": 0, "dropped": 0, "unattributed": 0, "handler_ns": 0, "record_ns": 0,
                      "invalid_frames": 0, "drain_failures": 0, "rate_per_thread": {}},
        }

    def _settings(self) -> Settings:
        return Settings(self.mode, self.interval, self.max_depth, self.timer_kind, self.ring_bytes,
                        self.drain_interval)

    @property
    def errors(self) -> list[str]:
        """Problems the sampler reported while this profile was enabled (bounded;
        also logged on the ``"ringprof"`` logger and counted in ``meta['stats']``)."""
        return list(self._errors)

    @property
    def start_time(self) -> float | None:
        """Unix time of the first enable() of the current data, or None."""
        value = self._data.meta.get("start_time")
        return float(value) if value is not None else None

    # ------------------------------------------------------------------ control
    @property
    def enabled(self) -> bool:
        """True while enabled (or while a :meth:`session` is open)."""
        return self._open > 0

    def enable(self) -> None:
        """Start recording into this profile.  A no-op if it is already enabled.

        Other recordings may be enabled too; this one gets the samples taken
        from now on (of its ``threads``).  Raises RuntimeError only when the
        sampler cannot run at all (SIGPROF already belongs to another handler,
        named in the message; no usable timer).
        """
        with self._state_lock:
            if self._sub is not None:
                return
            self._sub = self._subscribe(_thread_ids(self.threads))
            if self.async_tasks:
                import asyncio

                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    loop = None
                if loop is not None:
                    self.watch_loop(loop)
                else:
                    sampler.log.warning("ringprof: Profile(async_tasks=True) enabled outside a running event loop: "
                                        "no task is watched until Profile.watch_loop(loop) is called")

    def watch_loop(self, loop: Any) -> None:
        """Record the waiting tasks of ``loop`` too (``async_tasks=True`` only;
        thread-safe; a no-op for a loop already watched or a disabled profile)."""
        if not self.async_tasks:
            raise ValueError("watch_loop() needs Profile(async_tasks=True)")
        from .async_wait import TaskWaitSampler

        with self._state_lock:
            if self._sub is None or any(w.loop is loop and not w.closed for w in self._waiters):
                return
            waiter = TaskWaitSampler(loop, self._receive_waiting, self._data.interval_ns, self.async_interval,
                                     self.async_budget, self.max_depth)
            waiter.attach()
            self._waiters.append(waiter)
            with self._lock:
                self._async_stats["loops"] = int(self._async_stats.get("loops", 0)) + 1

    def _close_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.close()
            self._merge_async_stats(self._async_stats, waiter.stats)

    @staticmethod
    def _merge_async_stats(into: dict[str, Any], stats: dict[str, Any]) -> None:
        for key, value in stats.items():
            if key == "max_cost_ns":
                into[key] = max(int(into.get(key, 0)), int(value))
            elif key in ("interval", "budget"):
                into[key] = value
            else:
                into[key] = into.get(key, 0) + value

    def _flush_waiters(self) -> None:
        for waiter in list(self._waiters):
            waiter.flush()

    def disable(self) -> None:
        """Stop recording; every sample taken so far ends up in the profile
        (read :attr:`data`).  When the last recording of the process is
        disabled, no signal handler runs and no timer is armed afterwards.  A
        no-op if not enabled."""
        with self._state_lock:
            self._close_waiters()
            sub, self._sub = self._sub, None
            if sub is not None:
                self._close(sub)

    @contextmanager
    def session(self, threads: ThreadsArg = "current") -> Iterator[Profile]:
        """Record into this profile for the duration of the block, on
        ``threads`` (default: the calling thread).  Sessions may overlap each
        other and :meth:`enable` (the decorator opens one per call)."""
        sub = self._subscribe(_thread_ids(threads))
        try:
            yield self
        finally:
            self._close(sub)

    def _subscribe(self, threads: frozenset[int] | None, defer_thread: bool = False) -> Subscription:
        sub = sampler.subscribe(self._settings(), threads=threads, receive=self._receive,
                                on_error=self._on_error, on_stopped=self._on_stopped, defer_thread=defer_thread)
        with self._lock:
            if self._open == 0:
                self._opened(sub)
            self._open += 1
            _enabled[id(self)] = self
        process_hooks.install()
        return sub

    def _close(self, sub: Subscription) -> None:
        sub.close()
        with self._lock:
            if self._open == 0:
                return
            self._unsettled = True
            self._open -= 1
            if self._open == 0:
                self._closed_all()

    def _opened(self, sub: Subscription) -> None:
        meta = self._data.meta
        settings = sub.settings
        meta["mode"], meta["interval"], meta["max_depth"] = settings.mode, settings.interval, settings.max_depth
        meta["timer"] = settings.timer
        if sub.differs:
            asked = self._settings()
            meta["requested"] = {name: getattr(asked, name) for name in sub.differs}
        self._stats_at_open = self._process_stats()
        self._active_since = time.monotonic()
        if meta.get("start_time") is None:
            meta["start_time"] = time.time()

    def _closed_all(self) -> None:
        self._account(self._process_stats())
        _enabled.pop(id(self), None)

    def _process_stats(self) -> dict[str, int]:
        out: dict[str, int] = _native.load().stats()
        counters = sampler.counters()
        out["sampler_invalid_frames"] = counters["invalid_frames"]
        out["sampler_drain_failures"] = counters["drain_failures"]
        return out

    def _account(self, now: dict[str, int]) -> None:
        meta = self._data.meta
        meta["duration"] = float(meta.get("duration", 0.0)) + time.monotonic() - self._active_since
        stats = meta["stats"]
        before = self._stats_at_open
        for key in _STAT_KEYS:
            stats[key] = int(stats.get(key, 0)) + now.get(key, 0) - before.get(key, 0)
        for key in ("invalid_frames", "drain_failures"):
            stats[key] = int(stats.get(key, 0)) + now.get(f"sampler_{key}", 0) - before.get(f"sampler_{key}", 0)

    def _update_rates(self) -> None:
        meta = self._data.meta
        duration = float(meta.get("duration") or 0.0)
        if duration <= 0 or not self._thread_counts:
            return
        meta["stats"]["rate_per_thread"] = {str(t): round(c / duration, 2)
                                            for t, c in sorted(self._thread_counts.items())}

    def _on_error(self, message: str) -> None:
        if len(self._errors) < 32:
            self._errors.append(message)

    def _on_stopped(self) -> None:
        """The sampler stopped under us (exit, a foreign SIGPROF handler)."""
        with self._state_lock, self._lock:
            self._sub = None
            self._close_waiters()
            if self._open:
                self._open = 0
                self._closed_all()

    # ------------------------------------------------------------------ receiving
    def _receive(self, batch: Batch, rows: list[int] | None) -> None:
        import array

        if rows is not None and not rows:
            return
        with self._lock:
            data = self._data
            if batch.table.generation != self._table_generation:
                self._table_generation = batch.table.generation
                self._stack_map = {}
            stack_map = self._stack_map
            table = batch.table.stacks
            gids = batch.stack if rows is None else [batch.stack[i] for i in rows]
            sids = array.array("i")
            for gid in gids:
                sid = stack_map.get(gid)
                if sid is None:
                    tick()  # on the drain thread: a window's first passes meet hundreds of stacks
                    sid = stack_map[gid] = data.intern_stack(data.intern_frame(f) for f in table[gid])
                sids.append(sid)
            label_ids = batch.labels if rows is None else [batch.labels[i] for i in rows]
            if any(label_ids):
                label_map = self._label_map
                labels = array.array("i")
                for lid in label_ids:
                    mid = label_map.get(lid)
                    if mid is None:
                        from .labels import lookup

                        mid = label_map[lid] = data.intern_labels(lookup(lid))
                    labels.append(mid)
            else:
                labels = array.array("i", bytes(4 * len(sids)))
            if rows is None:
                chunk = {"stack": sids, "thread": batch.thread, "time_ns": batch.time_ns, "weight": batch.weight,
                         "cpu_ns": batch.cpu_ns, "flags": batch.flags, "labels": labels, "depth": batch.depth}
            else:
                def pick(col: array.array[int]) -> array.array[int]:
                    return array.array(col.typecode, [col[i] for i in rows])

                chunk = {"stack": sids, "thread": pick(batch.thread), "time_ns": pick(batch.time_ns),
                         "weight": pick(batch.weight), "cpu_ns": pick(batch.cpu_ns), "flags": pick(batch.flags),
                         "labels": labels, "depth": pick(batch.depth)}
            data.append_columns(chunk)
            self._thread_counts.update(chunk["thread"])
            data.meta["stats"]["samples"] = int(data.meta["stats"].get("samples", 0)) + len(sids)

    def _receive_waiting(self, rows: list[Any]) -> None:
        """Waiting samples from the async view (``async_wait.WaitingRow`` lists)."""
        import array

        from .async_wait import TASK_ID_LABEL, TASK_LABEL, WAITING

        with self._lock:
            data = self._data
            if self._waiting_ids[0] is not data:
                self._waiting_ids = (data, {}, {})
            _, stack_ids, label_ids = self._waiting_ids
            n = len(rows)
            sids = array.array("i")
            labels = array.array("i")
            threads, weights, times, depths = (array.array("q"), array.array("q"), array.array("q"),
                                               array.array("i"))
            for frames, stack_key, generation, name, task_id, weight, time_ns, thread in rows:
                skey = (generation, stack_key)
                sid = stack_ids.get(skey)
                if sid is None:
                    sid = stack_ids[skey] = data.intern_stack(data.intern_frame(f) for f in frames)
                sids.append(sid)
                lkey = (name, task_id)
                lid = label_ids.get(lkey)
                if lid is None:
                    if len(label_ids) > 100_000:
                        label_ids.clear()
                    lid = label_ids[lkey] = data.intern_labels({WAITING[0]: WAITING[1], TASK_LABEL: name,
                                                                TASK_ID_LABEL: task_id})
                labels.append(lid)
                threads.append(thread)
                weights.append(weight)
                times.append(time_ns)
                depths.append(len(frames))
                if thread not in data.threads:
                    data.threads[thread] = _thread_name(thread)
            data.append_columns({
                "stack": sids, "thread": threads, "time_ns": times, "weight": weights,
                "cpu_ns": array.array("q", bytes(8 * n)), "flags": array.array("H", bytes(2 * n)),
                "labels": labels, "depth": depths,
            })

    def _settle(self) -> None:
        """Make sure every sample of this profile's closed subscriptions arrived."""
        sampler.flush()  # delivers everything drained, and ends closed subscriptions
        with self._lock:
            self._unsettled = False

    def cut(self) -> ProfileData:
        """Swap in an empty ProfileData and return the recorded one.

        Pending samples are drained first, so the returned data holds every
        sample taken up to the cut, with its own ``duration`` and ``stats``;
        recording goes on into the fresh data without a gap.  Used by
        continuous mode to cut windows (see :mod:`ringprof.continuous`).
        """
        if self._open:
            sampler.flush()
        self._flush_waiters()
        with self._lock:
            old = self._data
            self._store_async_meta(old)
            if self._open:
                now = self._process_stats()
                self._account(now)
                self._stats_at_open = now
                self._active_since = time.monotonic()
            self._update_rates()
            new = self._new_data()
            for key in ("mode", "interval", "max_depth", "timer", "requested"):
                if key in old.meta:
                    new.meta[key] = old.meta[key]
            new.meta["start_time"] = time.time() if self._open else None
            self._data = new
            self._stack_map = {}
            self._label_map = {0: 0}
            self._thread_counts = Counter()
            return old

    def __enter__(self) -> Profile:
        self.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disable()

    # ------------------------------------------------------------------ the recording
    @property
    def data(self) -> ProfileData:
        """The recorded data (delivers pending samples first)."""
        if self._open or self._unsettled:
            self._settle()
        self._flush_waiters()
        with self._lock:
            self._update_rates()
            self._store_async_meta(self._data)
        return self._data

    def _store_async_meta(self, data: ProfileData) -> None:
        """``meta["async"]``: the async view's settings and counters (async_tasks only)."""
        if not self.async_tasks:
            return
        merged: dict[str, Any] = dict(self._async_stats)
        for waiter in self._waiters:
            self._merge_async_stats(merged, waiter.stats)
        merged.setdefault("interval", self.async_interval)
        merged.setdefault("budget", self.async_budget)
        merged.setdefault("loops", 0)
        data.meta["async"] = merged

    def snapshot(self) -> ProfileData:
        """A copy of the data recorded so far (consistent: taken under the lock)."""
        data = self.data
        with self._lock:
            return data.copy()

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

    def clear(self) -> None:
        """Discard everything recorded so far (cProfile's ``clear()``); an
        enabled profile keeps recording into the emptied data."""
        self.cut()
        with self._lock:
            if not self._open:
                self._data.meta["start_time"] = None

    def __repr__(self) -> str:
        state = "enabled" if self._open else "disabled"
        return f"<ringprof.Profile {state} mode={self.mode} interval={self.interval} samples={len(self._data)}>"


#: Profiles enabled in this process (id -> profile): forked children re-arm
#: the ``follow_fork`` ones.
_enabled: dict[int, Profile] = {}
_fork_children: weakref.WeakValueDictionary[int, Profile] = weakref.WeakValueDictionary()
_children_of: dict[int, Profile] = {}


def _thread_name(native_id: int) -> str:
    for thread in threading.enumerate():
        if thread.native_id == native_id:
            return thread.name
    return f"thread {native_id}"


def enabled_profiles() -> list[Profile]:
    """The Profiles currently enabled in this process."""
    return list(_enabled.values())


def load(path: str | os.PathLike[str]) -> Profile:
    """Load a profile saved with :meth:`Profile.save`."""
    return Profile.from_data(ProfileData.load(path))


def child_profile(parent: Profile | None = None) -> Profile | None:
    """In a forked child of a ``follow_fork=True`` profile: the child's own
    Profile (of ``parent``, or the first one)."""
    if parent is not None:
        child = _children_of.get(id(parent))
        return child if child is not None and child._data.meta.get("pid") == os.getpid() else None
    return _fork_children.get(os.getpid())


def _after_fork_in_child() -> None:
    """The sampler forgot every subscription; forget them here, and give each
    ``follow_fork`` profile a successor in the child (its drain thread starts
    lazily: the child looks unprofiled right after fork)."""
    parents = list(_enabled.values())
    _enabled.clear()
    _children_of.clear()
    for prof in parents:
        prof._lock = threading.RLock()
        prof._state_lock = threading.RLock()
        prof._sub = None
        prof._waiters = []
        prof._open = 0
        prof._unsettled = False
    for prof in parents:
        if not prof.follow_fork:
            continue
        child = Profile(prof.interval, prof.mode, prof.max_depth, timer_kind=prof.timer_kind,
                        drain_interval=prof.drain_interval, ring_bytes=prof.ring_bytes, follow_fork=True,
                        threads=None if prof.threads is None else prof.threads, max_samples=prof.max_samples)
        try:
            with child._state_lock:
                child._sub = child._subscribe(None if prof.threads is None else
                                              _thread_ids(prof.threads), defer_thread=True)
        except Exception as exc:  # pragma: no cover - never break the child
            print(f"ringprof: could not resume profiling after fork: {exc}", file=sys.stderr)
            continue
        _children_of[id(prof)] = child
        _fork_children.setdefault(os.getpid(), child)


process_hooks.after_fork_in_child(_after_fork_in_child)
