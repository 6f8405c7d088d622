"""Raw records -> model: resolve code pointers, intern frames and stacks.

Runs on the drain thread with the GIL held.  The native layer guarantees that
every code pointer in a drained buffer still names the code object it named
when sampled (deaths are deferred until :func:`_sampler.release_codes`, see
``csrc/codes.h``), so resolution only has to guard against torn frames, which
:func:`_sampler.code_object` does with a fault-free type check.

Caches, all bounded:

* ``_codes``: code pointer -> :class:`_CodeInfo`, holding a **strong reference**
  to the code object, so a cached pointer can never be freed and reused
  behind our back;
* per code: raw instruction pointer -> model frame id;
* ``_index``: raw stack key (bytes) -> raw id -> model stack id.

When the code cache outgrows its bound, entries not used in the last drains
are dropped together with the raw-stack index (whose keys embed pointers).
"""

from __future__ import annotations

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


class _CodeInfo:
    __slots__ = ("code", "filename", "firstlineno", "frames", "last_used", "name")

    def __init__(self, code: object, generation: int) -> None:
        self.code = code  # strong reference: keeps the address ours
        self.name: str = getattr(code, "co_qualname", None) or code.co_name  # type: ignore[attr-defined]
        self.filename: str = code.co_filename  # type: ignore[attr-defined]
        self.firstlineno: int = code.co_firstlineno  # type: ignore[attr-defined]
        self.frames: dict[int, int | None] = {}
        self.last_used = generation


class Resolver:
    """Turns drained buffers into samples of one :class:`ProfileData`."""

    def __init__(self, data: ProfileData) -> None:
        self.data = data
        self._codes: dict[int, _CodeInfo | None] = {}
        self._index: dict[bytes, int] = {}
        self._raw_map = np.zeros(0, dtype=np.int64)  # raw id -> model stack id
        self._generation = 0
        self._labels: dict[int, int] = {}  # process label id -> model label id
        self.invalid_frames = 0

    def retarget(self, data: ProfileData) -> None:
        """Write into a new ProfileData (e.g. a new continuous window)."""
        self.data = data
        self._labels.clear()
        self._index.clear()
        for info in self._codes.values():
            if info is not None:
                info.frames.clear()

    # ------------------------------------------------------------------ resolution
    def _frame_id(self, code_ptr: int, instr: int) -> int | None:
        """Model frame id for one raw frame; None to skip it (incomplete frame)."""
        if code_ptr in self._codes:
            info = self._codes[code_ptr]
        else:
            code = _sampler.code_object(code_ptr)
            info = _CodeInfo(code, self._generation) if code is not None else None
            self._codes[code_ptr] = info
        if info is None:
            self.invalid_frames += 1
            return self.data.intern_frame(UNKNOWN)
        info.last_used = self._generation
        fid = info.frames.get(instr, -1)
        if fid == -1:
            line = _sampler.code_line(info.code, instr)
            fid = None if line < 0 else self.data.intern_frame(
                Frame(info.name, info.filename, info.firstlineno, line))
            info.frames[instr] = fid
        return fid

    def _resolve_stack(self, key: bytes) -> int:
        flags = key[0]
        raw = np.frombuffer(key, dtype=np.uint64, offset=1).reshape(-1, 2) if len(key) > 1 else ()
        ids: list[int] = []
        # A walk that ended on an implausible frame may have read garbage before
        # it noticed (3.11/3.12 publish tstate->cframe before its current_frame):
        # drop its frames that are not code objects instead of showing <unknown>.
        bad_walk = bool(flags & FLAG_BAD_FRAME)
        for code_ptr, instr in raw:  # leaf first
            fid = self._frame_id(int(code_ptr), int(instr))
            if bad_walk and self._codes.get(int(code_ptr)) is None:
                continue
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

    def ingest(self, buf: bytes) -> int:
        """Resolve one drained buffer into samples; returns the samples added."""
        self._generation += 1
        if not buf:
            return 0
        raw, tid, tns, weight, cpu, flags, label, depth, new = _sampler.parse(buf, self._index)
        if new:
            need = len(self._index)
            if need > len(self._raw_map):  # grow geometrically: O(new stacks) per drain
                grown = np.zeros(max(need, 2 * len(self._raw_map), 1024), dtype=np.int64)
                grown[: len(self._raw_map)] = self._raw_map
                self._raw_map = grown
            for rid, key in new:
                self._raw_map[rid] = self._resolve_stack(key)
        stacks = self._raw_map[raw]
        labels = self._model_labels(label)
        self.data.add_samples(stacks, tid, tns, weight, cpu, flags, labels, depth)
        self._evict()
        return len(raw)

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
        if len(self._codes) <= _CODE_CACHE_LIMIT:
            return
        horizon = self._generation - 2
        self._codes = {p: i for p, i in self._codes.items() if i is not None and i.last_used >= horizon}
        # Raw keys embed code pointers that may now be freed and reused.
        self._index.clear()
