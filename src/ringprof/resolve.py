"""Raw records -> batches of resolved samples, shared by every recording.

Runs on the drain thread (or whoever flushes).  A sample
names a code object by address; by the time it is resolved that object may
have died and the address may hold another code object, or nothing.  The
native layer answers without ever reading memory that is not known to be live
(see ``csrc/codes.h``):

* the **registry** of live code objects: :func:`_sampler.code_object` returns
  a reference only for an address in it.  Code created while the hooks are
  installed is registered by the interpreter's code watcher (3.12+); what
  existed before, and everything on 3.11, is registered by
  :func:`register_live_code`, which walks functions, generators, coroutines,
  frames and their constants.  An address that is still unknown after that is
  reported as ``<unknown>`` and retried at the next drain (never cached);
* the **graveyard**: each code object that died while samples may name it
  left a snapshot (address, time of death, names, line table).  A sample taken
  at time ``t`` that names address ``A`` names the code that died at ``A`` at
  the first death time after ``t``, if any, and otherwise the live object at
  ``A``.

The resolver holds no reference to any code object between drains: it caches
names, file names and per-instruction frames, keyed by address, and forgets an
address as soon as a death at it is reported.

**The GIL.**  The drain runs next to the application's request threads, so
a steady-state pass must hold the GIL only briefly: the buffer is split into
columns and every sample whose stack is already known is resolved in C
(:class:`ringprof._sampler.StackCache`: raw frame -> frame id, frame ids ->
stack id), without the GIL when the batch is large enough for that to pay
off (a small one is done before a waiting request thread would notice).
Only the samples it cannot resolve (a raw frame never seen, a code pointer
that died, a stack never seen) come back to Python, which resolves them as
described above and teaches the cache what it learnt from live code objects
(never what it learnt from the graveyard or an unknown address).

Resolved stacks go into one process-wide :class:`StackTable` (tuples of
:class:`~ringprof.model.Frame`, root first); a :class:`Batch` carries the
drained samples with *table* stack ids, and each recording maps those ids to
its own model's ids.  So a drained buffer is parsed and resolved once however
many recordings are enabled.

Caches (bounded):

* ``_codes``: code pointer -> :class:`_CodeInfo` (names and resolved frames);
* the native ``StackCache``: raw frames of code objects that are still alive,
  and the stacks made of them; the raw frames of an address are dropped as
  soon as a death at it is reported.  Stacks that name a dead or unknown
  address are resolved per drain (per sample, when a death splits the batch)
  and not kept;
* the table itself: when it outgrows its bound a new *generation* starts
  (recordings notice the new generation and drop their id maps).

Nothing here imports numpy: columns are ``array.array``.
"""

from __future__ import annotations

import array
import gc
import sys
import time
import types
from typing import Any

from . import _native
from .model import (
    FLAG_BAD_FRAME,
    FLAG_FINALIZING,
    FLAG_OTHER_INTERP,
    FLAG_TRUNCATED,
    Frame,
)
from .pacing import tick

TRUNCATED = Frame("<truncated>", "", 0, 0)
UNKNOWN = Frame("<unknown>", "", 0, 0)
NO_PYTHON = Frame("<no Python frames>", "", 0, 0)
SUBINTERPRETER = Frame("<subinterpreter>", "", 0, 0)
FINALIZING = Frame("<finalizing>", "", 0, 0)
BAD_FRAME = Frame("<bad frame>", "", 0, 0)

_CODE_CACHE_LIMIT = 50_000
# The native cache is cleared when it knows more raw frames or stacks than
# this (~5 MB of frames; stacks are bounded by the table's generations too).
_RAW_FRAME_LIMIT = 100_000
_CACHED_STACK_LIMIT = 50_000
_STACK_TABLE_LIMIT = 200_000

# A full registry scan walks every GC-tracked object: at most once per
# _SCAN_MIN_INTERVAL seconds, and spending at most 1/_SCAN_COST_FACTOR of the
# time.  In between, an unknown address only triggers the cheap scan (the
# frames that are running now, the young GC generations, and the code they
# contain).
_SCAN_MIN_INTERVAL = 1.0
_SCAN_COST_FACTOR = 20
_last_full_scan = -float("inf")
_last_full_cost = 0.0



def _may_read_all_frames() -> bool:
    """sys._current_frames() returns the frames of every interpreter.  From
    3.12 on a sub-interpreter may run under its own GIL, and its code dies
    unseen by the main interpreter's code watcher: touch its frames only when
    no sub-interpreter exists.  (3.11 shares one GIL, and its death hook sees
    every interpreter's code.)"""
    if sys.version_info < (3, 12):
        return True
    if not _native.load().only_main_interpreter():
        return False
    for name in ("_interpreters", "_xxsubinterpreters"):
        mod = sys.modules.get(name)
        if mod is not None:
            try:
                if len(mod.list_all()) > 1:
                    return False
            except Exception:
                return False
    return True


def register_live_code(full: bool = True) -> int:
    """Register live code objects with the native registry; returns how many
    were new.  ``full=False`` looks only at the frames running now and at the
    objects of the two young GC generations (where new functions are)."""
    roots: list[types.CodeType] = []
    objects = gc.get_objects() if full else gc.get_objects(0) + gc.get_objects(1)
    for i, obj in enumerate(objects):
        if not i & 4095:
            tick()  # on the drain thread: let the application's threads run (see ringprof.pacing)
        t = type(obj)
        if t is types.FunctionType:
            roots.append(obj.__code__)
        elif t is types.GeneratorType:
            roots.append(obj.gi_code)
        elif t is types.CoroutineType:
            roots.append(obj.cr_code)
        elif t is types.AsyncGeneratorType:
            roots.append(obj.ag_code)
        elif t is types.FrameType:
            roots.append(obj.f_code)
    if _may_read_all_frames():
        for top in sys._current_frames().values():
            f: types.FrameType | None = top
            while f is not None:
                roots.append(f.f_code)
                f = f.f_back
    seen: set[int] = set()
    codes: list[types.CodeType] = []
    while roots:
        co = roots.pop()
        if id(co) in seen:
            continue
        seen.add(id(co))
        codes.append(co)
        roots.extend(c for c in co.co_consts if type(c) is types.CodeType)
    return int(_native.load().register_codes(codes))


def _refresh_registry() -> None:
    """An address was unknown: register what is alive, within the scan budget."""
    global _last_full_scan, _last_full_cost
    now = time.monotonic()
    if now - _last_full_scan >= max(_SCAN_MIN_INTERVAL, _SCAN_COST_FACTOR * _last_full_cost):
        register_live_code(full=True)
        _last_full_scan = time.monotonic()
        _last_full_cost = _last_full_scan - now
    else:
        register_live_code(full=False)


class StackTable:
    """Interned resolved stacks (tuples of frames, root first) of one generation."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.stacks: list[tuple[Frame, ...]] = []
        self._ids: dict[tuple[Frame, ...], int] = {}
        self._frames: dict[Frame, Frame] = {}

    def frame(self, frame: Frame) -> Frame:
        """The shared instance of ``frame``."""
        return self._frames.setdefault(frame, frame)

    def intern(self, frames: tuple[Frame, ...]) -> int:
        sid = self._ids.get(frames)
        if sid is None:
            sid = self._ids[frames] = len(self.stacks)
            self.stacks.append(frames)
        return sid

    def __len__(self) -> int:
        return len(self.stacks)


class Batch:
    """The samples of one drain pass: typed columns (``array.array``) of equal
    length; ``stack`` holds :class:`StackTable` ids and ``labels`` the
    process-wide label ids of :mod:`ringprof.labels`."""

    __slots__ = ("_by_thread", "cpu_ns", "depth", "flags", "labels", "max_time", "min_time", "stack", "table",
                 "thread", "time_ns", "weight")

    def __init__(self, table: StackTable, stack: array.array[int], thread: array.array[int],
                 time_ns: array.array[int], weight: array.array[int], cpu_ns: array.array[int],
                 flags: array.array[int], labels: array.array[int], depth: array.array[int]) -> None:
        self.table = table
        self.stack = stack
        self.thread = thread
        self.time_ns = time_ns
        self.weight = weight
        self.cpu_ns = cpu_ns
        self.flags = flags
        self.labels = labels
        self.depth = depth
        self.min_time = min(time_ns) if len(time_ns) else 0
        self.max_time = max(time_ns) if len(time_ns) else 0
        self._by_thread: dict[int, tuple[list[int], list[int]]] | None = None

    def by_thread(self) -> dict[int, tuple[list[int], list[int]]]:
        """thread id -> (sample times sorted, their row indexes): built once per
        batch, so a per-thread subscription finds its rows by bisection."""
        if self._by_thread is None:
            rows: dict[int, list[tuple[int, int]]] = {}
            for i, (tid, t) in enumerate(zip(self.thread, self.time_ns, strict=True)):
                rows.setdefault(tid, []).append((t, i))
            out = {}
            for tid, pairs in rows.items():
                pairs.sort()
                out[tid] = ([t for t, _ in pairs], [i for _, i in pairs])
            self._by_thread = out
        return self._by_thread

    def __len__(self) -> int:
        return len(self.stack)



_MISS: Any = object()  # sentinel: not resolved (no code object we can vouch for)


class _CodeInfo:
    __slots__ = ("filename", "firstlineno", "frames", "last_used", "name")

    def __init__(self, code: types.CodeType, generation: int) -> None:
        self.name: str = code.co_qualname
        self.filename: str = code.co_filename
        self.firstlineno: int = code.co_firstlineno
        self.frames: dict[int, Frame | None] = {}  # raw instr -> frame (None: an incomplete frame)
        self.last_used = generation


class Resolver:
    """Turns drained buffers into :class:`Batch` es over one shared :class:`StackTable`."""

    def __init__(self) -> None:
        self.table = StackTable(0)
        self._codes: dict[int, _CodeInfo] = {}
        self._cache: Any = None  # the native StackCache, made at the first buffer
        self._fids: dict[Frame, int] = {}  # frame -> its id in the native cache (this table generation)
        self._frame_list: list[Frame] = []  # frame id -> frame
        self._new_frames: list[tuple[int, int, int]] = []  # (code, instr, frame id) resolved by this stack
        self._passes = 0
        self.invalid_frames = 0
        self.code_lookups = 0  # addresses turned into code objects (not known from earlier drains)
        # The graveyard as of this drain: pointer -> [(death_ns, seq)] in death order.
        self._dead: dict[int, list[tuple[int, int]]] = {}
        self._dead_mark = -1  # codes_mark() when _dead was read
        self._dead_held: tuple[int, int] = (-1, -1)  # (first held, mark) when _dead was read
        self._dead_seen = 0  # deaths up to this sequence have been forgotten from the caches
        self._dead_frames: dict[tuple[int, int], Any] = {}  # (seq, instr) -> frame, per drain
        self._refreshed = False  # registry refreshed during this drain
        self._volatile = False  # the stack being resolved must not be cached

    # ------------------------------------------------------------------ graveyard
    def _read_graveyard(self) -> None:
        native = _native.load()
        mark = native.codes_mark()
        held = (native.codes_first_seq(), mark)  # changes with every death and every release
        if held == self._dead_held:
            return
        self._dead_held = held
        self._dead_mark = mark
        dead: dict[int, list[tuple[int, int]]] = {}
        for ptr, death_ns, seq in native.dead_codes():
            dead.setdefault(ptr, []).append((death_ns, seq))
        self._dead = dead

    def _forget_new_deaths(self) -> None:
        """Drop every cache entry for an address at which a code object died:
        while sampling (the graveyard) or between two sessions (the quiet log)."""
        died = _native.load().take_quiet_deaths()
        if died is None:  # the log cannot tell which: every address is suspect
            self.forget_addresses()
            died = []
        self._read_graveyard()
        died.extend(ptr for ptr, deaths in self._dead.items() if deaths[-1][1] >= self._dead_seen)
        for ptr in died:
            self._codes.pop(ptr, None)
        if died and self._cache is not None:
            self._cache.forget_codes(died)
        self._dead_seen = self._dead_mark

    def _dead_seq(self, code_ptr: int, t_ns: int) -> int | None:
        """The snapshot a sample taken at t_ns names at code_ptr, if it died since."""
        self._read_graveyard()  # deaths can happen while we resolve (other threads run)
        deaths = self._dead.get(code_ptr)
        if deaths:
            for death_ns, seq in deaths:
                if death_ns > t_ns:
                    return seq
        return None

    # ------------------------------------------------------------------ resolution
    def _frame(self, code_ptr: int, instr: int, t_ns: int) -> Any:
        """The frame of one raw frame; None to skip it (incomplete frame);
        _MISS if the address names no code object we can vouch for."""
        native = _native.load()
        seq = self._dead_seq(code_ptr, t_ns)
        if seq is not None:
            self._volatile = True
            return self._dead_frame(seq, instr)
        info = self._codes.get(code_ptr)
        code = None
        if info is None:
            self.code_lookups += 1
            code = native.code_object(code_ptr)
            if code is None and not self._refreshed:
                self._refreshed = True
                _refresh_registry()
                seq = self._dead_seq(code_ptr, t_ns)  # it may have died meanwhile
                if seq is not None:
                    self._volatile = True
                    return self._dead_frame(seq, instr)
                code = native.code_object(code_ptr)
            if code is None:
                self._volatile = True
                return _MISS
            info = self._codes[code_ptr] = _CodeInfo(code, self._passes)
            if self._cache is not None:  # alive now: its new instructions can resolve in C
                self._cache.learn_code(code_ptr, code)
        info.last_used = self._passes
        frame = info.frames.get(instr, _MISS)
        if frame is _MISS:
            if code is None:
                code = native.code_object(code_ptr)
                if code is None:  # died while we resolve: its snapshot is not read yet
                    self._volatile = True
                    return _MISS
            line = native.code_line(code, instr)
            frame = None if line < 0 else self.table.frame(Frame(info.name, info.filename, info.firstlineno, line))
            info.frames[instr] = frame
        return frame

    def _dead_frame(self, seq: int, instr: int) -> Any:
        frame = self._dead_frames.get((seq, instr), _MISS)
        if frame is _MISS:
            native = _native.load()
            what = native.dead_code_info(seq)
            line = native.dead_code_line(seq, instr)
            if what is not None:
                name, filename, firstlineno = what
                frame = None if line < 0 else self.table.frame(Frame(name, filename, firstlineno, line))
            self._dead_frames[(seq, instr)] = frame
        return frame

    def _resolve_stack(self, key: bytes, t_ns: int, learn: list[int] | None = None) -> int:
        """The table id of raw stack ``key`` sampled at ``t_ns``.  With
        ``learn`` (a stack naming no dead code), raw frames the native cache
        knows are taken from it, and ``learn`` receives the frame id of every
        raw frame, leaf first (-1: skipped, -2: not resolved from live code),
        with ``self._new_frames`` listing the raw frames resolved afresh."""
        flags = key[0]
        raw = _pairs(key)
        frames: list[Frame] = []
        # A walk that ended on an implausible frame may have read garbage before
        # it noticed (3.11/3.12 publish tstate->cframe before its current_frame):
        # drop its frames that are not code objects instead of showing <unknown>.
        bad_walk = bool(flags & FLAG_BAD_FRAME)
        if learn is not None:
            frames = self._frames_learning(key, raw, t_ns, bad_walk, learn)
        else:
            for i in range(0, len(raw) - 1, 2):  # leaf first
                frame = self._shown(self._frame(raw[i], raw[i + 1], t_ns), bad_walk)
                if frame is not None:
                    frames.append(frame)
            frames.reverse()  # stacks are root first
        if flags & FLAG_TRUNCATED:
            frames.insert(0, TRUNCATED)
        if not frames:
            frames = [SUBINTERPRETER if flags & FLAG_OTHER_INTERP else
                      FINALIZING if flags & FLAG_FINALIZING else
                      BAD_FRAME if flags & FLAG_BAD_FRAME else NO_PYTHON]
        return self.table.intern(tuple(frames))

    def _shown(self, frame: Any, bad_walk: bool) -> Any:
        """How a resolved raw frame shows in its stack: None (left out), <unknown>
        (counted as invalid), or the frame itself."""
        if frame is _MISS:
            if bad_walk:
                return None
            self.invalid_frames += 1
            return UNKNOWN
        return frame

    def _frames_learning(self, key: bytes, raw: array.array[int], t_ns: int, bad_walk: bool,
                         learn: list[int]) -> list[Frame]:
        """The frames of raw stack ``key`` (root first), taking the raw frames the
        native cache knows from it and resolving only the others; ``learn`` gets
        every raw frame's id, leaf first (see :meth:`_resolve_stack`).  Most new
        stacks differ from known ones in a frame or two, so the loop in Python
        runs over those only."""
        fids = self._cache.lookup_frames(key)
        frame_list = self._frame_list
        picked: list[Any] = [frame_list[f] if f >= 0 else None for f in fids]
        for j in [j for j, f in enumerate(fids) if f < -1]:
            code_ptr, instr = raw[2 * j], raw[2 * j + 1]
            volatile, self._volatile = self._volatile, False
            frame = self._frame(code_ptr, instr, t_ns)
            if self._volatile:
                fid = -2
            else:
                fid = -1 if frame is None else self._frame_id(frame)
                self._new_frames.append((code_ptr, instr, fid))
            self._volatile |= volatile
            fids[j] = fid
            picked[j] = self._shown(frame, bad_walk)
        learn.extend(fids)
        return [f for f in reversed(picked) if f is not None]

    def _names_dead(self, key: bytes) -> bool:
        if not self._dead or len(key) <= 1:
            return False
        return any(p in self._dead for p in _pairs(key)[0::2])

    def ingest(self, buf: bytes) -> Batch | None:
        """Resolve one drained buffer; None when it holds no record."""
        self._passes += 1
        self._refreshed = False
        self._dead_frames.clear()
        # Every sample in buf was taken before this instant, and every death
        # after it is either in the graveyard view read next (so stacks naming
        # it are resolved per sample) or later still: a sample names it.
        batch_ns = time.monotonic_ns()
        self._forget_new_deaths()
        if not buf:
            return None
        if len(self.table) > _STACK_TABLE_LIMIT:
            self._new_generation()
        cache = self._cache
        if cache is None:
            cache = self._cache = _native.load().StackCache()
        # Without the GIL: columns, and the stack id of every sample the cache knows.
        stack, tid, tns, weight, cpu, flags, label, depth, offset, unresolved = cache.resolve(
            buf, self._dead.keys() if self._dead else ())
        if unresolved:
            self._resolve_misses(buf, stack, tns, offset, batch_ns)
        batch = Batch(self.table, stack, tid, tns, weight, cpu, flags, label, depth)
        self._evict()
        return batch

    def _resolve_misses(self, buf: bytes, stack: array.array[int], tns: array.array[int],
                        offset: array.array[int], batch_ns: int) -> None:
        """Resolve the samples the native cache could not (stack id -1) in place."""
        native = _native.load()
        resolved: dict[bytes, int] = {}  # raw key -> stack id, this batch (keys naming no dead code)
        memo: dict[tuple[bytes, tuple[int | None, ...]], int] = {}  # keys naming dead code, per sample
        i = -1
        while True:
            try:
                i = stack.index(-1, i + 1)
            except ValueError:
                return
            tick()
            key = native.raw_key(buf, offset[i])
            if self._names_dead(key):
                # A death splits the batch: resolve per sample time, never cache.
                t = tns[i]
                choice = (key, tuple(self._dead_seq(p, t) for p in _pairs(key)[0::2]))
                sid = memo.get(choice)
                if sid is None:
                    sid = memo[choice] = self._resolve_stack(key, t)
            else:
                sid = resolved.get(key)
                if sid is None:
                    sid = resolved[key] = self._resolve_and_learn(key, batch_ns)
            stack[i] = sid

    def _resolve_and_learn(self, key: bytes, t_ns: int) -> int:
        """Resolve raw stack ``key`` and teach the native cache its raw frames
        that resolved from live code (and the stack, if every frame did)."""
        cache = self._cache
        fids: list[int] = []
        self._new_frames = []
        self._volatile = False
        sid = self._resolve_stack(key, t_ns, fids)
        frame_list = self._frame_list
        for code_ptr, instr, fid in self._new_frames:
            cache.learn_frame(code_ptr, instr, fid)
            if fid >= 0:
                cache.learn_line(code_ptr, frame_list[fid].line, fid)
        if not self._volatile:  # every raw frame resolved from live code: the stack is known
            cache.learn_stack(key[0], [f for f in fids if f >= 0], sid)
        return sid

    def _frame_id(self, frame: Frame) -> int:
        fid = self._fids.get(frame)
        if fid is None:
            fid = self._fids[frame] = len(self._frame_list)
            self._frame_list.append(frame)
        return fid

    def forget_addresses(self) -> None:
        """Forget everything known by code address (names, resolved frames,
        the native cache's raw frames and stacks): when the quiet log cannot
        tell which addresses died between two sessions (``csrc/codes.h``)."""
        self._codes.clear()
        if self._cache is not None:
            self._cache.clear()

    def _new_generation(self) -> None:
        self.table = StackTable(self.table.generation + 1)
        self._fids.clear()  # frame ids name this generation's frames
        self._frame_list.clear()
        if self._cache is not None:
            self._cache.clear()
        self._codes.clear()  # so that their code objects are taught to the cleared cache again

    def _evict(self) -> None:
        if len(self._codes) > _CODE_CACHE_LIMIT:
            horizon = self._passes - 2
            self._codes = {p: i for p, i in self._codes.items() if i.last_used >= horizon}
        cache = self._cache
        if cache is not None and (cache.frames > _RAW_FRAME_LIMIT or cache.stacks > _CACHED_STACK_LIMIT
                                  or cache.codes > _CODE_CACHE_LIMIT):
            cache.clear()  # frame ids stay valid: the table's frames did not change
            self._codes.clear()  # so that their code objects are taught to the cleared cache again


def _pairs(key: bytes) -> array.array[int]:
    """The (code pointer, instruction) words of a raw stack key, leaf first."""
    return array.array("Q", key[1:]) if len(key) > 1 else array.array("Q")
