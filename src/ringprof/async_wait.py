"""Where every asyncio task waits: the async view of a Profile.

``Profile(async_tasks=True)`` adds, to the CPU (or wall) samples of the signal
path, *waiting* samples: every ``async_interval`` seconds (20 Hz by default)
the event loop runs one callback that, for every pending task of the loop,
records the chain the task is suspended in -- the coroutine frames from the
task's root coroutine down to the innermost ``await`` -- under the chain of
the task that awaits it (``gather``, ``TaskGroup``, ``wait_for``, ``shield``,
``await task``).  Each such sample is weighted by the wall time since the
previous snapshot and labelled ``state=waiting``, ``task=<name>`` and
``task_id=<id(task) in hex>``, so a profile shows on-CPU time, waiting time,
or both (``data.filter(labels={"state": "waiting"})``, the HTML viewer's
switch).

Why a loop callback and not a thread.  A callback runs on the loop's own
thread *between* task steps: no task is half-way through a step, every pending
task is suspended at an ``await`` and ``asyncio.all_tasks(loop)`` is safe to
call (it is documented as not thread-safe).  A thread holding the GIL would
see the running task mid-step (it is on CPU: the signal path records it) and
would take the GIL from the loop anyway, at a moment it does not choose.  The
callback costs the loop what it costs (bounded below), at a point where the
loop would have run another callback.  It also works on any loop that has
``call_later`` and uses :class:`asyncio.Task` (uvloop).

Which tasks become samples.  A task that other pending tasks are known to be
awaited by is drawn *under* its awaiter: the stack reads parent handler ->
``await gather(...)`` -> child coroutine -> ``await pool.acquire()``.  The
awaiter itself is then not sampled on its own (its time is the time of its
children), so the weight is *task time*: every pending task nobody waits for
contributes its wall time.  Two children of one ``gather`` therefore weigh
twice the wall time of the request that waits for them, split between their
two await lines.

Cost.  The snapshot reuses the chain of a task that is still suspended on the
same pending future as at the previous snapshot (a task cannot move without
its ``_fut_waiter`` being replaced), so a steady task costs a few attribute
reads; the CPU time of each snapshot is measured (``time.thread_time_ns``) and
the next one is postponed so that snapshots use at most ``budget`` (1 %) of a
core.  Samples are aggregated per (stack, task) and handed to the profile
once a second (and whenever the profile's data is read): one row per waiting
task and second, whatever the rate.

On CPython 3.14+ the relations maintained for ``asyncio.graph`` are used:
``asyncio.graph.capture_call_graph`` gives a task's frames and each future's
``_asyncio_awaited_by`` its awaiters.  On 3.11-3.13 the same walk is done
here: ``cr_await`` / ``gi_yieldfrom`` / ``ag_await`` down the chain (async
generator ``asend`` objects and coroutine wrappers are looked through with
:func:`gc.get_referents`), and the awaiter of a child is found from the future
its parent waits on (``Task._fut_waiter``) and from the done-callbacks of the
child (``gather``'s and ``shield``'s closures, ``wait``'s waiter,
``TaskGroup``'s parent task).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import random
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import Any

from .model import Frame

__all__ = ["DEFAULT_INTERVAL", "TASK_ID_LABEL", "TASK_LABEL", "WAITING", "TaskWaitSampler", "WaitingRow"]

log = logging.getLogger("ringprof")

#: The label every waiting sample carries (``state=waiting``).
WAITING: tuple[str, str] = ("state", "waiting")
TASK_LABEL = "task"
TASK_ID_LABEL = "task_id"
DEFAULT_INTERVAL = 0.05
MIN_INTERVAL = 0.01
MAX_INTERVAL = 10.0
DEFAULT_BUDGET = 0.01
FLUSH_NS = 5_000_000_000
MAX_BACKOFF_S = 5.0
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
# (the pending future it waits on -- a strong reference, so its id cannot be
# reused --, chain id, task name).  A plain tuple: built once per moved task.
_Chain = tuple[Any, int, str]


class TaskWaitSampler:
    """Snapshots of the pending tasks of one event loop (see the module docstring).

    ``deliver(rows)`` receives :class:`WaitingRow` lists on the loop thread (or
    the thread that calls :meth:`flush`); ``unit_ns`` converts wall time to
    sample weight.  Start with :meth:`attach` (from any thread), stop with
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
        self._lock = threading.Lock()  # the accumulator: ticks (loop thread) vs flush (any thread)
        self._closed = False
        self._handle: asyncio.TimerHandle | None = None
        self._thread = 0
        self._last_ns = 0
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
                                      "max_cost_ns": 0, "backoffs": 0, "errors": 0, "interval": self.interval,
                                      "budget": self.budget}

    # ------------------------------------------------------------------ control
    def attach(self) -> None:
        """Start snapshots on the loop (thread-safe; the first runs one interval from now)."""
        if self.loop.is_closed():
            raise RuntimeError("the event loop is closed")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._start()
        else:
            self.loop.call_soon_threadsafe(self._start)

    def _start(self) -> None:
        if self._closed:
            return
        self._thread = threading.get_native_id()
        self._last_ns = self._last_flush_ns = time.monotonic_ns()
        self._schedule(self.interval)

    def _schedule(self, delay: float) -> None:
        # Jitter (+-25 %) keeps snapshots from locking in phase with periodic work.
        self._handle = self.loop.call_later(delay * random.uniform(0.75, 1.25), self._tick)

    def close(self) -> None:
        """Stop snapshotting (thread-safe) and deliver what was accumulated."""
        if self._closed:
            return
        self._closed = True
        handle = self._handle
        if handle is not None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self.loop:
                handle.cancel()
            elif not self.loop.is_closed():
                try:
                    self.loop.call_soon_threadsafe(handle.cancel)
                except RuntimeError:  # closed meanwhile
                    pass
        self.flush()
        self._chains.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ snapshots
    def _tick(self) -> None:
        if self._closed:
            return
        c0 = time.thread_time_ns()
        now = time.monotonic_ns()
        elapsed, self._last_ns = now - self._last_ns, now
        try:
            self._snapshot(elapsed)
        except Exception as exc:  # never let a snapshot reach the loop's exception handler
            self.stats["errors"] += 1
            if self.stats["errors"] == 1:
                log.warning("ringprof: async task snapshot failed: %r", exc)
        if now - self._last_flush_ns >= FLUSH_NS:
            self.flush()
        cost = time.thread_time_ns() - c0
        stats = self.stats
        stats["snapshots"] += 1
        stats["cost_ns"] += cost
        stats["max_cost_ns"] = max(stats["max_cost_ns"], cost)
        delay = self.interval
        needed = cost / 1e9 / self.budget
        if needed > delay:
            stats["backoffs"] += 1
            delay = min(needed, MAX_BACKOFF_S)
        if not self._closed:
            self._schedule(delay)

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

    def _snapshot(self, elapsed_ns: int) -> None:
        """One snapshot: find what changed since the previous one and advance the clock.

        Weight is kept as an integral: ``self._clock`` is the wall time summed
        over snapshots, and each *live* key (stack path, task) remembers the
        clock value at which it appeared.  A key is charged ``clock - since``
        when it disappears or at a flush, so a snapshot in which no task moved
        costs one comparison per task and no dictionary update per key."""
        if (len(self._chain_frames) >= _CACHE_LIMIT
                or time.monotonic_ns() - self._cache_since >= CACHE_LIFETIME_NS):
            self._reset_caches()
        tasks = _pending_tasks(self.loop)
        self.stats["tasks_seen"] += len(tasks)
        old = self._chains
        old_get = old.get
        changed = len(tasks) != len(old)
        if not changed:  # the common case in a quiet second: one comparison per task
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
            if changed:
                self._relink(self._chains)
            self._clock += elapsed_ns

    def _relink(self, chains: dict[Any, _Chain]) -> None:
        """Recompute awaiters and the live keys after some task moved (holding ``_lock``)."""
        waiting_on = {id(c[0]): task for task, c in chains.items() if c[0] is not None}
        parent_of: dict[Any, Any] = {}
        for task in chains:
            parent = self._awaiter(task, waiting_on)
            if parent is not None and parent is not task and parent in chains:
                parent_of[task] = parent
        awaiters = set(parent_of.values())
        clock = self._clock
        live = self._live
        new_live: dict[tuple[tuple[int, ...], int, str], int] = {}
        for task, chain in chains.items():
            if task in awaiters:
                continue
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
            key = (path, id(task), chain[2])
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
    def flush(self) -> None:
        """Hand the accumulated waiting time to the profile (thread-safe)."""
        with self._lock:
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
            generation, thread = self.table_generation, self._thread
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
                rows.append((self._path_frames(path), path, generation, name, hex(tid), weight, now, thread))
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
