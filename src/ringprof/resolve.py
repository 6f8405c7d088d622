"""Raw records -> model: resolve code pointers, intern frames and stacks.

Runs on the drain thread with the GIL held.  A sample names a code object by
address; by the time it is resolved that object may have died and the address
may hold another code object, or nothing.  The native layer answers without
ever reading memory that is not known to be live (see ``csrc/codes.h``):

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
names, file names and per-instruction model frame ids, keyed by address, and
forgets an address as soon as a death at it is reported.

Caches, all bounded:

* ``_codes``: code pointer -> :class:`_CodeInfo` (names and resolved frames);
* ``_index``: raw stack key (bytes) -> raw id -> model stack id, for stacks
  whose every frame resolved to a code object that is still alive; keys that
  name a dead or unknown address are resolved per drain (per sample, when a
  death splits the batch) and not kept.
"""

from __future__ import annotations

import gc
import sys
import time
import types

import numpy as np

from . import _sampler
from .labels import lookup as labels_lookup
from .model import (
    FLAG_BAD_FRAME,
    FLAG_FINALIZING,
    FLAG_OTHER_INTERP,
    FLAG_TRUNCATED,
    Frame,
    ProfileData,
)

TRUNCATED = Frame("<truncated>", "", 0, 0)
UNKNOWN = Frame("<unknown>", "", 0, 0)
NO_PYTHON = Frame("<no Python frames>", "", 0, 0)
SUBINTERPRETER = Frame("<subinterpreter>", "", 0, 0)
FINALIZING = Frame("<finalizing>", "", 0, 0)
BAD_FRAME = Frame("<bad frame>", "", 0, 0)

_CODE_CACHE_LIMIT = 50_000
_INDEX_LIMIT = 500_000

# A full registry scan walks every GC-tracked object: at most once per
# _SCAN_MIN_INTERVAL seconds, and spending at most 1/_SCAN_COST_FACTOR of the
# time.  In between, an unknown address only triggers the cheap scan (the
# frames that are running now, the young GC generations, and the code they
# contain).
_SCAN_MIN_INTERVAL = 1.0
_SCAN_COST_FACTOR = 20
_last_full_scan = -float("inf")
_last_full_cost = 0.0

_MISS = -2  # sentinel: not resolved yet


def _may_read_all_frames() -> bool:
    """sys._current_frames() returns the frames of every interpreter.  From
    3.12 on a sub-interpreter may run under its own GIL, and its code dies
    unseen by the main interpreter's code watcher: touch its frames only when
    no sub-interpreter exists.  (3.11 shares one GIL, and its death hook sees
    every interpreter's code.)"""
    if sys.version_info < (3, 12):
        return True
    if not _sampler.only_main_interpreter():
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
    for obj in objects:
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
    return _sampler.register_codes(codes)


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


class _CodeInfo:
    __slots__ = ("filename", "firstlineno", "frames", "last_used", "name")

    def __init__(self, code: types.CodeType, generation: int) -> None:
        self.name: str = code.co_qualname
        self.filename: str = code.co_filename
        self.firstlineno: int = code.co_firstlineno
        self.frames: dict[int, int | None] = {}  # raw instr -> model frame id (None: skip)
        self.last_used = generation


class Resolver:
    """Turns drained buffers into samples of one :class:`ProfileData`."""

    def __init__(self, data: ProfileData) -> None:
        self.data = data
        self._codes: dict[int, _CodeInfo] = {}
        self._index: dict[bytes, int] = {}
        self._keys_by_ptr: dict[int, list[bytes]] = {}  # code pointer -> persistent keys naming it
        self._next_rid = 0
        self._raw_map = np.zeros(0, dtype=np.int64)  # raw id -> model stack id
        self._generation = 0
        self._labels: dict[int, int] = {}  # process label id -> model label id
        self.invalid_frames = 0
        # The graveyard as of this drain: pointer -> [(death_ns, seq)] in death order.
        self._dead: dict[int, list[tuple[int, int]]] = {}
        self._dead_mark = -1  # codes_mark() when _dead was read
        self._dead_seen = 0  # deaths up to this sequence have been forgotten from the caches
        self._dead_frames: dict[tuple[int, int], int | None] = {}  # (seq, instr) -> frame id, per drain
        self._refreshed = False  # registry refreshed during this drain
        self._volatile = False  # the stack being resolved must not be cached

    def retarget(self, data: ProfileData) -> None:
        """Write into a new ProfileData (e.g. a new continuous window)."""
        self.data = data
        self._labels.clear()
        self._index.clear()
        self._keys_by_ptr.clear()
        self._dead_frames.clear()
        for info in self._codes.values():
            info.frames.clear()

    # ------------------------------------------------------------------ graveyard
    def _read_graveyard(self) -> None:
        mark = _sampler.codes_mark()
        if mark == self._dead_mark:
            return
        self._dead_mark = mark
        dead: dict[int, list[tuple[int, int]]] = {}
        for ptr, death_ns, seq in _sampler.dead_codes():
            dead.setdefault(ptr, []).append((death_ns, seq))
        self._dead = dead

    def _forget_new_deaths(self) -> None:
        """Drop every cache entry for an address at which a code object died."""
        self._read_graveyard()
        for ptr, deaths in self._dead.items():
            if deaths[-1][1] < self._dead_seen:
                continue
            self._codes.pop(ptr, None)
            for key in self._keys_by_ptr.pop(ptr, ()):
                self._index.pop(key, None)
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
    def _frame_id(self, code_ptr: int, instr: int, t_ns: int) -> int | None:
        """Model frame id for one raw frame; None to skip it (incomplete
        frame); _MISS if the address names no code object we can vouch for."""
        seq = self._dead_seq(code_ptr, t_ns)
        if seq is not None:
            self._volatile = True
            return self._dead_frame_id(seq, instr)
        info = self._codes.get(code_ptr)
        code = None
        if info is None:
            code = _sampler.code_object(code_ptr)
            if code is None and not self._refreshed:
                self._refreshed = True
                _refresh_registry()
                seq = self._dead_seq(code_ptr, t_ns)  # it may have died meanwhile
                if seq is not None:
                    self._volatile = True
                    return self._dead_frame_id(seq, instr)
                code = _sampler.code_object(code_ptr)
            if code is None:
                self._volatile = True
                return _MISS
            info = self._codes[code_ptr] = _CodeInfo(code, self._generation)
        info.last_used = self._generation
        fid = info.frames.get(instr, _MISS)
        if fid == _MISS:
            if code is None:
                code = _sampler.code_object(code_ptr)
                if code is None:  # died while we resolve: its snapshot is not read yet
                    self._volatile = True
                    return _MISS
            line = _sampler.code_line(code, instr)
            fid = None if line < 0 else self.data.intern_frame(
                Frame(info.name, info.filename, info.firstlineno, line))
            info.frames[instr] = fid
        return fid

    def _dead_frame_id(self, seq: int, instr: int) -> int | None:
        fid = self._dead_frames.get((seq, instr), _MISS)
        if fid == _MISS:
            what = _sampler.dead_code_info(seq)
            line = _sampler.dead_code_line(seq, instr)
            if what is None:
                fid = _MISS
            else:
                name, filename, firstlineno = what
                fid = None if line < 0 else self.data.intern_frame(Frame(name, filename, firstlineno, line))
            self._dead_frames[(seq, instr)] = fid
        return fid

    def _resolve_stack(self, key: bytes, t_ns: int) -> int:
        flags = key[0]
        raw = np.frombuffer(key, dtype=np.uint64, offset=1).reshape(-1, 2) if len(key) > 1 else ()
        ids: list[int] = []
        # A walk that ended on an implausible frame may have read garbage before
        # it noticed (3.11/3.12 publish tstate->cframe before its current_frame):
        # drop its frames that are not code objects instead of showing <unknown>.
        bad_walk = bool(flags & FLAG_BAD_FRAME)
        for code_ptr, instr in raw:  # leaf first
            fid = self._frame_id(int(code_ptr), int(instr), t_ns)
            if fid == _MISS:
                if bad_walk:
                    continue
                self.invalid_frames += 1
                fid = self.data.intern_frame(UNKNOWN)
            if fid is not None:
                ids.append(fid)
        ids.reverse()  # model stacks are root first
        if flags & FLAG_TRUNCATED:
            ids.insert(0, self.data.intern_frame(TRUNCATED))
        if not ids:
            synthetic = (SUBINTERPRETER if flags & FLAG_OTHER_INTERP else
                         FINALIZING if flags & FLAG_FINALIZING else
                         BAD_FRAME if flags & FLAG_BAD_FRAME else NO_PYTHON)
            ids = [self.data.intern_frame(synthetic)]
        return self.data.intern_stack(ids)

    def _names_dead(self, key: bytes) -> bool:
        if not self._dead or len(key) <= 1:
            return False
        raw = np.frombuffer(key, dtype=np.uint64, offset=1).reshape(-1, 2)
        return any(int(p) in self._dead for p in raw[:, 0])

    def ingest(self, buf: bytes) -> int:
        """Resolve one drained buffer into samples; returns the samples added."""
        self._generation += 1
        self._refreshed = False
        self._dead_frames.clear()
        # Every sample in buf was taken before this instant, and every death
        # after it is either in the graveyard view read next (so stacks naming
        # it are resolved per sample) or later still: a sample names it.
        batch_ns = time.monotonic_ns()
        self._forget_new_deaths()
        if not buf:
            return 0
        raw, tid, tns, weight, cpu, flags, label, depth, new = _sampler.parse(buf, self._index, self._next_rid)
        self._next_rid += len(new)
        stacks = None
        if new:
            if self._next_rid > len(self._raw_map):  # grow geometrically: O(new stacks) per drain
                grown = np.zeros(max(self._next_rid, 2 * len(self._raw_map), 1024), dtype=np.int64)
                grown[: len(self._raw_map)] = self._raw_map
                self._raw_map = grown
            per_sample: dict[int, bytes] = {}  # raw id -> key, resolved per sample (a death splits the batch)
            transient: list[bytes] = []
            for rid, key in new:
                if self._names_dead(key):
                    per_sample[rid] = key
                    transient.append(key)
                    continue
                self._volatile = False
                self._raw_map[rid] = self._resolve_stack(key, batch_ns)
                if self._volatile:
                    transient.append(key)
                else:
                    self._remember(key)
            stacks = self._raw_map[raw]
            if per_sample:
                memo: dict[tuple[int, tuple[int | None, ...]], int] = {}
                for i in np.flatnonzero(np.isin(raw, np.fromiter(per_sample, dtype=np.int64))):
                    rid = int(raw[i])
                    key = per_sample[rid]
                    t = int(tns[i])
                    ptrs = np.frombuffer(key, dtype=np.uint64, offset=1)[0::2]
                    choice = (rid, tuple(self._dead_seq(int(p), t) for p in ptrs))
                    sid = memo.get(choice)
                    if sid is None:
                        sid = memo[choice] = self._resolve_stack(key, t)
                    stacks[i] = sid
            for key in transient:
                self._index.pop(key, None)
        if stacks is None:
            stacks = self._raw_map[raw]
        labels = self._model_labels(label)
        self.data.add_samples(stacks, tid, tns, weight, cpu, flags, labels, depth)
        self._evict()
        return len(raw)

    def _remember(self, key: bytes) -> None:
        if len(key) <= 1:
            return
        for p in set(np.frombuffer(key, dtype=np.uint64, offset=1)[0::2].tolist()):
            self._keys_by_ptr.setdefault(p, []).append(key)

    def _model_labels(self, label: np.ndarray) -> np.ndarray:
        """Map the process-wide label ids recorded by the handler to this
        profile's label-set ids."""
        out = np.zeros(len(label), dtype=np.int32)
        if not label.any():
            return out
        for lid in np.unique(label):
            if lid:
                mid = self._labels.get(int(lid))
                if mid is None:
                    mid = self._labels[int(lid)] = self.data.intern_labels(labels_lookup(int(lid)))
                out[label == lid] = mid
        return out

    def _evict(self) -> None:
        if len(self._codes) > _CODE_CACHE_LIMIT:
            horizon = self._generation - 2
            self._codes = {p: i for p, i in self._codes.items() if i.last_used >= horizon}
        if len(self._index) > _INDEX_LIMIT:
            self._index.clear()
            self._keys_by_ptr.clear()
