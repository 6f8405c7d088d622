"""Raw records -> batches of resolved samples, shared by every recording.

Runs with the GIL held, on the drain thread (or whoever flushes).  The native
layer guarantees that every code pointer in a drained buffer still names the
code object it named when sampled (deaths are deferred until
:func:`_sampler.release_codes`, see ``csrc/codes.h``), so resolution only has
to guard against torn frames, which :func:`_sampler.code_object` does with a
fault-free type check.

Resolved stacks go into one process-wide :class:`StackTable` (tuples of
:class:`~ringprof.model.Frame`, root first); a :class:`Batch` carries the
drained samples with *table* stack ids, and each recording maps those ids to
its own model's ids.  So a drained buffer is parsed and resolved once however
many recordings are enabled.

Caches, all bounded:

* ``_codes``: code pointer -> :class:`_CodeInfo`, holding a **strong reference**
  to the code object, so a cached pointer can never be freed and reused
  behind our back;
* per code: raw instruction pointer -> frame (None: an incomplete frame);
* ``_index``: raw stack key (bytes) -> raw id -> table stack id;
* the table itself: when it outgrows its bound a new *generation* starts
  (recordings notice the new generation and drop their id maps).

Nothing here imports numpy: columns are ``array.array``.
"""

from __future__ import annotations

import array
from typing import Any

from . import _native
from .model import (
    FLAG_BAD_FRAME,
    FLAG_FINALIZING,
    FLAG_OTHER_INTERP,
    FLAG_TRUNCATED,
    Frame,
)

TRUNCATED = Frame("<truncated>", "", 0, 0)
UNKNOWN = Frame("<unknown>", "", 0, 0)
NO_PYTHON = Frame("<no Python frames>", "", 0, 0)
SUBINTERPRETER = Frame("<subinterpreter>", "", 0, 0)
FINALIZING = Frame("<finalizing>", "", 0, 0)
BAD_FRAME = Frame("<bad frame>", "", 0, 0)

_CODE_CACHE_LIMIT = 50_000
_STACK_TABLE_LIMIT = 200_000


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


class _CodeInfo:
    __slots__ = ("code", "filename", "firstlineno", "frames", "last_used", "name")

    def __init__(self, code: object, generation: int) -> None:
        self.code = code  # strong reference: keeps the address ours
        self.name: str = getattr(code, "co_qualname", None) or code.co_name  # type: ignore[attr-defined]
        self.filename: str = code.co_filename  # type: ignore[attr-defined]
        self.firstlineno: int = code.co_firstlineno  # type: ignore[attr-defined]
        self.frames: dict[int, Frame | None] = {}
        self.last_used = generation


class Resolver:
    """Turns drained buffers into :class:`Batch` es over one shared :class:`StackTable`."""

    def __init__(self) -> None:
        self.table = StackTable(0)
        self._codes: dict[int, _CodeInfo | None] = {}
        self._index: dict[bytes, int] = {}
        self._raw_map = array.array("i")  # raw id -> table stack id
        self._passes = 0
        self.invalid_frames = 0

    # ------------------------------------------------------------------ resolution
    def _frame(self, code_ptr: int, instr: int) -> Frame | None:
        """The frame of one raw frame; None to skip it (incomplete frame)."""
        native = _native.load()
        if code_ptr in self._codes:
            info = self._codes[code_ptr]
        else:
            code = native.code_object(code_ptr)
            info = _CodeInfo(code, self._passes) if code is not None else None
            self._codes[code_ptr] = info
        if info is None:
            self.invalid_frames += 1
            return UNKNOWN
        info.last_used = self._passes
        frame = info.frames.get(instr, UNKNOWN)
        if frame is UNKNOWN:
            line = native.code_line(info.code, instr)
            frame = None if line < 0 else self.table.frame(Frame(info.name, info.filename, info.firstlineno, line))
            info.frames[instr] = frame
        return frame

    def _resolve_stack(self, key: bytes) -> int:
        flags = key[0]
        raw = array.array("Q", key[1:]) if len(key) > 1 else array.array("Q")
        frames: list[Frame] = []
        # A walk that ended on an implausible frame may have read garbage before
        # it noticed (3.11/3.12 publish tstate->cframe before its current_frame):
        # drop its frames that are not code objects instead of showing <unknown>.
        bad_walk = bool(flags & FLAG_BAD_FRAME)
        for i in range(0, len(raw) - 1, 2):  # leaf first
            code_ptr, instr = raw[i], raw[i + 1]
            frame = self._frame(code_ptr, instr)
            if bad_walk and self._codes.get(code_ptr) is None:
                continue
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

    def ingest(self, buf: bytes) -> Batch | None:
        """Resolve one drained buffer; None when it holds no record."""
        self._passes += 1
        if not buf:
            return None
        if len(self.table) > _STACK_TABLE_LIMIT:
            self._new_generation()
        native: Any = _native.load()
        raw, tid, tns, weight, cpu, flags, label, depth, new = native.parse(buf, self._index)
        if new:
            need = len(self._index)
            if need > len(self._raw_map):  # grow geometrically: O(new stacks) per drain
                grow = max(need, 2 * len(self._raw_map), 1024) - len(self._raw_map)
                self._raw_map.frombytes(bytes(grow * self._raw_map.itemsize))
            for rid, key in new:
                self._raw_map[rid] = self._resolve_stack(key)
        raw_map = self._raw_map
        stack = array.array("i", [raw_map[r] for r in raw])
        batch = Batch(self.table, stack, tid, tns, weight, cpu, flags, label, depth)
        self._evict()
        return batch

    def _new_generation(self) -> None:
        self.table = StackTable(self.table.generation + 1)
        self._index.clear()
        for info in self._codes.values():
            if info is not None:
                info.frames.clear()

    def _evict(self) -> None:
        if len(self._codes) <= _CODE_CACHE_LIMIT:
            return
        horizon = self._passes - 2
        self._codes = {p: i for p, i in self._codes.items() if i is not None and i.last_used >= horizon}
        # Raw keys embed code pointers that may now be freed and reused.
        self._index.clear()
