"""Where every asyncio task waits: the async view of a Profile.

``Profile(async_tasks=True)`` adds *waiting* samples to the CPU (or wall)
samples of the signal path: every ``async_interval`` seconds (10 Hz by
default, jittered by +-25 %) a background thread takes, with the GIL, a
snapshot of every pending task of the watched event loop but the one running:
the chain the task is suspended in -- the coroutine frames from the task's
root coroutine down to the innermost ``await`` -- under the chains of the
tasks that await it (``gather``, ``TaskGroup``, ``wait_for``, ``shield``,
``wait``, ``await task``).  The state seen at a snapshot is charged the wall
time until the next one; samples are labelled ``state=waiting``,
``task=<name>`` and ``task_id=<the id asyncio_tasks.task_id gives CPU samples>``, so a profile shows on-CPU
time, waiting time, or both (``data.filter(labels={"state": "waiting"})``,
the HTML viewer's switch).

Why a thread and not a loop callback.  A callback (``loop.call_later``) sees
the loop between callbacks, so every task is suspended, but it is biased: it
cannot run while a step blocks the loop, and when it does run, the loop has
already resumed, in the same iteration, the tasks whose waits ended during
the block.  Measured on a Starlette app under load, a callback charged the
short waits of that app 20-70 % too much or too little (depending on which end
of the interval it charged), a thread got every await line's share within a
point.  A thread's snapshots fall at instants that do not depend on what the
loop does (the thread takes the GIL at the loop's next switch point, within
the 5 ms switch interval even in the middle of a long step), so each one sees
the state the loop really is in.  It takes the GIL the loop would otherwise
keep for the snapshot's duration, which is what a callback would cost too.
What it reads is safe from another thread under the GIL (the task registry,
``Task._fut_waiter``, suspended coroutines' frames); a task caught mid-step is
the running one and is skipped (it is on CPU: the signal path records it).
Tasks that are ready to run but queued behind others are waiting for the loop
and are counted at the line they wait at; a task that never started shows its
root coroutine at its first line.  It also works on any loop that uses
:class:`asyncio.Task` (uvloop).

Which tasks become samples.  Every pending task is one: a task awaited by
another is drawn *under* the awaiter's chain (parent handler -> ``await
gather(...)`` -> child coroutine -> ``await pool.acquire()``), and the awaiter
has its own sample at its ``await``.  The weight is *task time*: the inclusive
time of a handler that gathers two children is its own wait plus theirs.

Cost.  A task still suspended on the same future as at the previous snapshot
keeps its chain (a task cannot move without its ``_fut_waiter`` being
replaced), and a snapshot in which no task moved charges the time to the live
keys with one addition (see :meth:`TaskWaitSampler._snapshot`).  The CPU time
of each snapshot is measured (``time.thread_time_ns``, the snapshot thread's
own clock) against a token bucket that refills at ``budget`` (1 %) of a core:
when the bucket runs dry, snapshots are postponed.  Samples are aggregated per
(stack, task) and handed to the profile every 0.5 s (a few tasks) to 5 s (a
thousand), and whenever the profile's data is read: at most about 200 rows a
second, whatever the rate.

CPython 3.14+ maintains, for ``asyncio.graph``, each future's
``_asyncio_awaited_by`` set; it is used to find awaiters there.  The frames
are walked here on every version, the way ``asyncio.graph.capture_call_graph``
walks them (``cr_await`` / ``gi_yieldfrom`` / ``ag_await``; the tests check
that both agree), because ``capture_call_graph`` builds a dataclass per frame
and per awaiter for every call and stops at ``async for``: async generator
``asend`` objects and coroutine wrappers are looked through here with
:func:`gc.get_referents`.  On 3.11-3.13 the awaiter of a child is found from
the future its parent waits on (``Task._fut_waiter``) and from the
done-callbacks of the child (``gather``'s and ``shield``'s closures, ``wait``'s
waiter, ``TaskGroup``'s parent task).
"""

from __future__ import annotations

import _thread
import asyncio
import gc
import itertools
import logging
import random
import signal
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import Any

from ._threads import Background, forget_dummy
from .asyncio_tasks import task_id
from .model import Frame

__all__ = ["DEFAULT_INTERVAL", "TASK_ID_LABEL", "TASK_LABEL", "WAITING", "TaskWaitSampler", "WaitingRow"]

log = logging.getLogger("ringprof")

#: The label every waiting sample carries (``state=waiting``).
WAITING: tuple[str, str] = ("state", "waiting")
TASK_LABEL = "task"
TASK_ID_LABEL = "task_id"
DEFAULT_INTERVAL = 0.1
MIN_INTERVAL = 0.01
MAX_INTERVAL = 10.0
DEFAULT_BUDGET = 0.01
FLUSH_NS = 5_000_000_000
MIN_FLUSH_NS = 500_000_000
FLUSH_NS_PER_TASK = 5_000_000
MAX_BACKOFF_S = 60.0  # a snapshot costing more than budget x 60 s would exceed the budget
BURST_S = 2.0  # the budget may be saved up over this much wall time
_MAX_CHAIN = 256  # coroutine links followed per task
_MAX_PARENTS = 32  # awaiter levels followed per task
_CACHE_LIMIT = 50_000  # frames or chains before the tables are dropped
#: The frame tables are rebuilt this often, releasing the code objects they hold.
CACHE_LIFETIME_NS = 600 * 1_000_000_000

_HAS_GRAPH = sys.version_info >= (3, 14)
_generations = itertools.count(1)
_ASEND_TYPES = ("async_generator_asend", "async_generator_athrow", "coroutine_wrapper")


#: Aggregated waiting time of one task at one stack (a plain tuple: thousands
#: are made per flush): frames (root first); stack key (equal keys within one
#: table generation mean equal frames); table generation (changes whenever
#: stack keys may be reused for other frames); task name; task id; weight (in
#: units of the profile's interval); ``time.monotonic_ns()`` of the flush;
#: native id of the loop's thread.
WaitingRow = tuple[tuple[Frame, ...], tuple[int, ...], int, str, str, int, int, int]


def validate(async_interval: float, budget: float) -> None:
    """Raise ValueError with one line for bad async-view settings."""
    if not isinstance(async_interval, int | float) or isinstance(async_interval, bool) \
            or not MIN_INTERVAL <= async_interval <= MAX_INTERVAL:
        raise ValueError(f"async_interval must be between {MIN_INTERVAL} and {MAX_INTERVAL} s, got {async_interval!r}")
    if not isinstance(budget, int | float) or isinstance(budget, bool) or not 0 < budget <= 0.5:
        raise ValueError(f"async_budget must be a fraction of a core in (0, 0.5], got {budget!r}")


# A task's own suspended chain, cached while it waits on the same future:
# (the future it waits on -- a strong reference, so its id cannot be reused --,
# chain id, task name).  A plain tuple: built once per moved task.
_Chain = tuple[Any, int, str]


class TaskWaitSampler:
    """Snapshots of the pending tasks of one event loop (see the module docstring).

    ``deliver(rows)`` receives :data:`WaitingRow` lists on the snapshot thread
    (or the thread that calls :meth:`flush` or :meth:`close`); ``unit_ns``
    converts wall time to sample weight.  Start with :meth:`attach` (from any thread), stop with
    :meth:`close` (from any thread; idempotent).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[list[WaitingRow]], None],
                 unit_ns: int, interval: float = DEFAULT_INTERVAL, budget: float = DEFAULT_BUDGET,
                 max_depth: int = 128) -> None:
        validate(interval, budget)
        self.loop = loop
        self.interval = float(interval)
        self.budget = float(budget)
        self.max_depth = max_depth
        self._deliver = deliver
        self._unit_ns = max(int(unit_ns), 1)
        self._lock = threading.Lock()  # the accumulator: snapshots vs flush (any thread)
        self._closed = False
        self._stop = _thread.allocate_lock()
        self._stop.acquire()  # released by close()
        self._worker: Background | None = None
        self._loop_thread = 0  # native id of the loop's thread, once known
        self._tick_ns = 0  # monotonic time of the previous tick (the budget's clock)
        self._tokens_ns = self.budget * BURST_S * 1e9  # CPU time the budget still grants (starts full)
        self._last_ns = 0  # monotonic time up to which waiting time was charged
        self._last_flush_ns = 0
        self._chains: dict[Any, _Chain] = {}  # task -> its cached own chain
        self._chain_ids: dict[tuple[int, ...], int] = {}
        self._chain_frames: list[tuple[Frame, ...]] = []
        self._codes: dict[int, types.CodeType] = {}  # keeps the codes of _frames alive (ids stay valid)
        self._paths: dict[tuple[int, ...], tuple[Frame, ...]] = {}
        # Keys are (chain-id path, id(task), task name); values nanoseconds.
        self._acc: dict[tuple[tuple[int, ...], int, str], int] = {}  # charged, not yet delivered
        self._live: dict[tuple[tuple[int, ...], int, str], int] = {}  # present now -> clock when charged last
        self._carry: dict[tuple[tuple[int, ...], int, str], int] = {}  # rounding remainders
        self._clock = 0  # wall time summed over snapshots, ns
        self._cache_since = time.monotonic_ns()
        #: Identifies this sampler's chain tables (unique in the process).
        self.table_generation = next(_generations)
        #: Counters, copied into ``meta["async"]`` by the profile.
        self.stats: dict[str, Any] = {"snapshots": 0, "tasks_seen": 0, "samples": 0, "cost_ns": 0,
                                      "max_cost_ns": 0, "backoffs": 0, "relinks": 0, "errors": 0,
                                      "interval": self.interval, "budget": self.budget}

    # ------------------------------------------------------------------ control
    def attach(self) -> None:
        """Start snapshotting the loop (from any thread): a background thread
        takes the first snapshot one interval from now."""
        if self.loop.is_closed():
            raise RuntimeError("the event loop is closed")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._loop_thread = threading.get_native_id()
        else:
            self.loop.call_soon_threadsafe(self._learn_loop_thread)
        self._last_flush_ns = time.monotonic_ns()
        self._worker = Background(self._run, name="ringprof-async")

    def _learn_loop_thread(self) -> None:
        self._loop_thread = threading.get_native_id()

    def close(self) -> None:
        """Stop snapshotting and deliver what was accumulated (from any thread;
        idempotent).  Waits up to a second for a snapshot in progress."""
        if self._closed:
            return
        self._closed = True
        self._stop.release()
        worker = self._worker
        if worker is not None:
            worker.join(1.0)
        self.flush(until_now=True)

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ snapshots
    def _run(self) -> None:
        """The snapshot thread: never sampled by the signal path, never visible."""
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPROF})
            from . import _native

            _native.load().exclude_current_thread()
        except Exception:  # sampling unavailable here: nothing to exclude from
            pass
        delay = self.interval
        while not self._stop.acquire(timeout=delay * random.uniform(0.75, 1.25)):
            # Jitter (+-25 %) keeps snapshots from locking in phase with periodic work.
            if self.loop.is_closed():
                break
            delay = self._tick()
        self._chains = {}  # no task or future outlives the recording through us

    def _tick(self) -> float:
        """One snapshot and its accounting; returns the delay until the next one."""
        c0 = time.thread_time_ns()
        now = time.monotonic_ns()
        try:
            self._snapshot()
        except Exception as exc:  # never let a snapshot fail the program
            self.stats["errors"] += 1
            if self.stats["errors"] == 1:
                log.warning("ringprof: async task snapshot failed: %r", exc)
                forget_dummy()  # logging registered this raw thread with threading
        # Flush every 0.5 s with a few tasks, up to every 5 s with a thousand:
        # about 200 rows a second at most, and a usable timeline when it is cheap.
        if now - self._last_flush_ns >= min(max(len(self._live) * FLUSH_NS_PER_TASK, MIN_FLUSH_NS), FLUSH_NS):
            self.flush()
        cost = time.thread_time_ns() - c0
        stats = self.stats
        stats["snapshots"] += 1
        stats["cost_ns"] += cost
        stats["max_cost_ns"] = max(stats["max_cost_ns"], cost)
        # Token bucket: the budget refills it (fraction of wall time), each
        # snapshot spends its CPU time; credit saved while under budget (at most
        # BURST_S worth) absorbs a rare slow snapshot (a collection, a burst of
        # new tasks); in debt, the next snapshot waits until it is repaid.
        if self._tick_ns:
            self._tokens_ns = min(self._tokens_ns + self.budget * (now - self._tick_ns),
                                  self.budget * BURST_S * 1e9)
        self._tick_ns = now
        self._tokens_ns -= cost
        delay = self.interval
        if self._tokens_ns < 0:
            needed = -self._tokens_ns / self.budget / 1e9
            if needed > delay:
                stats["backoffs"] += 1
                delay = min(needed, MAX_BACKOFF_S)
        return delay

    def _reset_caches(self) -> None:
        """Drop the frame and chain tables (and the code objects they keep alive).

        Called between snapshots, after a flush, when the tables grew past
        their limit or every :data:`CACHE_LIFETIME_NS`: ids of dead code may
        be reused, so nothing keyed by them may survive the reset."""
        self.flush()
        with self._lock:
            self._chains = {}
            self._live = {}
            self._chain_ids = {}
            self._chain_frames = []
            self._codes = {}
            self._paths = {}
            self._carry = {}
            self._cache_since = time.monotonic_ns()
            self.table_generation = next(_generations)

    def _snapshot(self) -> None:
        """One snapshot: find what changed since the previous one and advance the clock.

        Weight is kept as an integral: ``self._clock`` is the wall time summed
        over snapshots, and each *live* key (stack path, task) remembers the
        clock value at which it appeared.  A key is charged ``clock - since``
        when it disappears or at a flush, so a snapshot in which no task moved
        costs one comparison per task and no dictionary update per key."""
        if (len(self._chain_frames) >= _CACHE_LIMIT
                or time.monotonic_ns() - self._cache_since >= CACHE_LIFETIME_NS):
            self._reset_caches()
        loop = self.loop
        old = self._chains
        old_get = old.get
        active = bool(self._loop_thread) and loop.is_running()
        running = asyncio.current_task(loop) if active else None  # on CPU (the signal path's), not waiting
        if active and old and _quiet(loop, old, running):
            self.stats["tasks_seen"] += len(old)
            with self._lock:
                self._advance()
            return
        if active:
            tasks = _pending_tasks(loop)
            if running is not None:
                try:
                    tasks.remove(running)
                except ValueError:
                    pass
        else:
            tasks = []
        self.stats["tasks_seen"] += len(tasks)
        changed = len(tasks) != len(old)
        if not changed:
            for task in tasks:
                cached = old_get(task)
                if cached is None or cached[0] is None or cached[0] is not task._fut_waiter:
                    changed = True
                    break
        if changed:
            chains: dict[Any, _Chain] = {}
            for task in tasks:
                waiter = task._fut_waiter
                cached = old_get(task)
                if cached is not None and waiter is not None and cached[0] is waiter:
                    chains[task] = cached
                else:
                    chains[task] = (waiter, self._own_chain(task), task.get_name())
            self._chains = chains
        with self._lock:
            # The state seen at the previous snapshot is charged the time until
            # this one; snapshot times do not depend on what the loop does (a
            # thread, jittered), so either end of the interval is unbiased.
            self._advance()
            if changed:
                self.stats["relinks"] += 1
                self._relink(self._chains)

    def _advance(self) -> None:
        """Charge the live keys up to now (holding ``_lock``)."""
        now = time.monotonic_ns()
        if self._last_ns:
            self._clock += now - self._last_ns
        self._last_ns = now

    def _relink(self, chains: dict[Any, _Chain]) -> None:
        """Recompute awaiters and the live keys after some task moved (holding ``_lock``)."""
        waiting_on = {id(c[0]): task for task, c in chains.items() if c[0] is not None}
        parent_of: dict[Any, Any] = {}
        for task in chains:
            parent = self._awaiter(task, waiting_on)
            if parent is not None and parent is not task and parent in chains:
                parent_of[task] = parent
        clock = self._clock
        live = self._live
        new_live: dict[tuple[tuple[int, ...], int, str], int] = {}
        for task, chain in chains.items():
            parent = parent_of.get(task)
            if parent is None:
                path: tuple[int, ...] = (chain[1],)
            else:
                ids = [chain[1]]
                seen = {task}
                while parent is not None and parent not in seen and len(ids) < _MAX_PARENTS:
                    seen.add(parent)
                    ids.append(chains[parent][1])
                    parent = parent_of.get(parent)
                ids.reverse()
                path = tuple(ids)
            key = (path, task_id(task), chain[2])
            new_live[key] = live.pop(key, clock)
        acc = self._acc
        for key, since in live.items():  # keys gone since the previous snapshot
            acc[key] = acc.get(key, 0) + clock - since
        self._live = new_live

    # ------------------------------------------------------------------ one task's chain
    def _own_chain(self, task: Any) -> int:
        """Intern the task's suspended frames (root first) and return the chain id.

        The chain is looked up by (code address, instruction offset) pairs, so
        a chain seen before costs the walk only; the code objects of interned
        chains are kept alive, which keeps those addresses unambiguous."""
        key: list[int] = []
        frames: list[types.FrameType] = []
        coro = task.get_coro()
        for _ in range(_MAX_CHAIN):
            if coro is None:
                break
            if type(coro) is types.CoroutineType:
                frame, coro = coro.cr_frame, coro.cr_await
            else:
                frame, coro = _step(coro)
            if frame is not None:
                frames.append(frame)
                key.append(id(frame.f_code))
                key.append(frame.f_lasti)
        chain_key = tuple(key)
        cid = self._chain_ids.get(chain_key)
        if cid is not None:
            return cid
        if not frames:
            return self._intern_chain(chain_key, (Frame("<task done>" if task.done() else "<task not started>",
                                                        "", 0, 0),))
        out = []
        for frame in frames:
            code = frame.f_code
            self._codes[id(code)] = code
            out.append(Frame(code.co_qualname, code.co_filename, code.co_firstlineno, frame.f_lineno or 0))
        return self._intern_chain(chain_key, tuple(out))

    def _intern_chain(self, key: tuple[int, ...], frames: tuple[Frame, ...]) -> int:
        cid = self._chain_ids.get(key)
        if cid is None:
            cid = self._chain_ids[key] = len(self._chain_frames)
            self._chain_frames.append(frames)
        return cid

    @staticmethod
    def _awaiter(task: Any, waiting_on: dict[int, Any]) -> Any:
        """The pending task that awaits ``task`` (None if none is known)."""
        direct = waiting_on.get(id(task))  # await task / wait_for on 3.12+
        if direct is not None:
            return direct
        if _HAS_GRAPH:
            found = _graph_awaiter(task, waiting_on)
            if found is not None:
                return found
        try:
            callbacks = task._callbacks
        except AttributeError:
            return None
        if not callbacks:
            return None
        for entry in callbacks:
            callback = entry[0] if isinstance(entry, tuple) else entry
            for obj in _referents(callback):
                if isinstance(obj, asyncio.Task):
                    continue  # a task the callback touches is not its awaiter
                if isinstance(obj, asyncio.Future):
                    parent = waiting_on.get(id(obj))
                    if parent is not None:
                        return parent
                    continue
                parent = getattr(obj, "_parent_task", None)  # asyncio.TaskGroup
                if isinstance(parent, asyncio.Task):
                    return parent
        return None

    # ------------------------------------------------------------------ delivery
    def flush(self, until_now: bool = False) -> None:
        """Hand the accumulated waiting time to the profile (thread-safe).

        ``until_now``: charge the tasks seen at the last snapshot up to now
        (they are assumed to wait on until the next one): used when recording
        stops, so the time after the last snapshot is not lost."""
        with self._lock:
            if until_now and self._live:
                self._advance()
            acc, self._acc = self._acc, {}
            clock = self._clock
            for key, since in self._live.items():
                if clock > since:
                    acc[key] = acc.get(key, 0) + clock - since
                    self._live[key] = clock
            self._last_flush_ns = time.monotonic_ns()
            if not acc:
                return
            unit = self._unit_ns
            carry = self._carry
            new_carry: dict[tuple[tuple[int, ...], int, str], int] = {}
            rows: list[WaitingRow] = []
            generation, thread = self.table_generation, self._loop_thread
            now = self._last_flush_ns
            for key, ns in acc.items():
                ns += carry.get(key, 0)
                weight = (ns + unit // 2) // unit
                rest = ns - weight * unit
                if rest:
                    new_carry[key] = rest
                if weight <= 0:
                    continue
                path, tid, name = key
                rows.append((self._path_frames(path), path, generation, name, str(tid), weight, now, thread))
            self._carry = new_carry
            self.stats["samples"] += len(rows)
        if rows:
            self._deliver(rows)

    def _path_frames(self, path: tuple[int, ...]) -> tuple[Frame, ...]:
        frames = self._paths.get(path)
        if frames is None:
            if len(path) == 1:
                frames = self._chain_frames[path[0]]
            else:
                frames = tuple(f for cid in path for f in self._chain_frames[cid])
            if len(frames) > self.max_depth:
                frames = (Frame("<truncated>", "", 0, 0), *frames[len(frames) - self.max_depth + 1:])
            self._paths[path] = frames
        return frames


def _quiet(loop: asyncio.AbstractEventLoop, chains: dict[Any, _Chain], running: Any) -> bool:
    """True if the loop's pending tasks (but ``running``) are exactly the keys of
    ``chains``, each still waiting on the future it holds: the common case in a
    quiet interval, checked in one pass over the task registry of 3.11-3.13
    (a task in ``chains`` belongs to ``loop``, and a task that finished or moved
    has another ``_fut_waiter``, so only unknown tasks need the loop check).
    False whenever it cannot tell."""
    if sys.version_info >= (3, 14):
        return False
    from asyncio import tasks as tasks_module

    registries = [getattr(tasks_module, name, None) for name in ("_all_tasks", "_scheduled_tasks", "_eager_tasks")]
    get = chains.get
    hits = 0
    try:
        for registry in registries:
            if registry is None:
                continue
            refs = getattr(registry, "data", None)
            items = [ref() for ref in list(refs)] if isinstance(refs, set) else list(registry)
            for task in items:
                if task is None or task is running:
                    continue
                cached = get(task)
                if cached is None:
                    if not task.done() and task.get_loop() is loop:
                        return False  # a new task of this loop
                    continue
                waiter = cached[0]
                if waiter is None or waiter is not task._fut_waiter:
                    return False
                hits += 1
    except (RuntimeError, TypeError):
        return False
    return hits == len(chains)


def _pending_tasks(loop: asyncio.AbstractEventLoop) -> list[Any]:
    """The loop's pending tasks, like ``asyncio.all_tasks(loop)`` but without its
    per-task Python calls on 3.11-3.13 (read from the registries it reads)."""
    if sys.version_info < (3, 14):
        from asyncio import tasks as tasks_module

        registries = [getattr(tasks_module, name, None) for name in ("_all_tasks", "_scheduled_tasks", "_eager_tasks")]
        if any(r is not None for r in registries):
            raw: list[Any] = []
            try:
                for registry in registries:
                    refs = getattr(registry, "data", None)  # a WeakSet's set of weak references
                    if isinstance(refs, set):
                        raw.extend([ref() for ref in list(refs)])
                    elif registry is not None:
                        raw.extend(registry)
            except (RuntimeError, TypeError):  # a thread changed a registry meanwhile
                return list(asyncio.all_tasks(loop))
            return [t for t in raw if t is not None and not t.done() and t.get_loop() is loop]
    return list(asyncio.all_tasks(loop))


def _step(obj: Any) -> tuple[types.FrameType | None, Any]:
    """One link of an await chain: (the frame it is suspended in or None, what it awaits)."""
    if isinstance(obj, types.CoroutineType):
        return obj.cr_frame, obj.cr_await
    if isinstance(obj, types.GeneratorType):
        return obj.gi_frame, obj.gi_yieldfrom
    if isinstance(obj, types.AsyncGeneratorType):
        return obj.ag_frame, obj.ag_await
    if type(obj).__name__ in _ASEND_TYPES:
        # `async for` over an async generator awaits an asend object; `await coro.__await__()`
        # a coroutine wrapper.  Neither exposes what it drives but the GC knows.
        for ref in gc.get_referents(obj):
            if isinstance(ref, types.AsyncGeneratorType | types.CoroutineType):
                return None, ref
        return None, None
    cr_await = getattr(obj, "cr_await", None)  # duck-typed coroutines (Cython)
    if cr_await is not None or hasattr(obj, "cr_frame"):
        return getattr(obj, "cr_frame", None), cr_await
    return None, None


def _graph_awaiter(task: Any, waiting_on: dict[int, Any]) -> Any:
    """3.14+: the awaiting task from ``_asyncio_awaited_by`` (through one plain future)."""
    try:
        awaited_by = task._asyncio_awaited_by
    except AttributeError:
        return None
    if not awaited_by:
        return None
    for fut in awaited_by:
        if isinstance(fut, asyncio.Task):
            return fut
        parent = waiting_on.get(id(fut))
        if parent is not None:
            return parent
        for outer in getattr(fut, "_asyncio_awaited_by", None) or ():
            if isinstance(outer, asyncio.Task):
                return outer
    return None


def _referents(callback: Any) -> list[Any]:
    """What a done-callback refers to: a bound method's object, a partial's
    arguments, a closure's cells (one level, no calls into user code)."""
    out: list[Any] = []
    self_obj = getattr(callback, "__self__", None)
    if self_obj is not None and not isinstance(self_obj, types.ModuleType):
        out.append(self_obj)
    args = getattr(callback, "args", None)
    if isinstance(args, tuple) and hasattr(callback, "func"):  # functools.partial
        out.extend(args)
        callback = callback.func
        self_obj = getattr(callback, "__self__", None)
        if self_obj is not None and not isinstance(self_obj, types.ModuleType):
            out.append(self_obj)
    closure = getattr(callback, "__closure__", None)
    if closure:
        for cell in closure:
            try:
                out.append(cell.cell_contents)
            except ValueError:  # empty cell
                pass
    return out
