"""The flight recorder: the last minutes of a continuous profile, kept in memory.

In continuous mode (:mod:`ringprof.continuous`) every window that is cut is
also handed to a :class:`FlightRecorder`, which keeps it **folded**: one row
per (time slice, stack, thread, label set, flags) holding the summed weight
and CPU time, instead of one row per sample.  A busy thread sampled at 100 Hz
costs one row per distinct stack per slice, not 100 rows a second.  Rows
carry :data:`~ringprof.model.FLAG_FOLDED`, as the rows of a capped recording
that :mod:`ringprof.folding` folds: they are aggregates, not samples.  Rows keep
the slice's start (CLOCK_MONOTONIC nanoseconds) in ``time_ns``; the slice is
``resolution`` seconds long (the window length, at most 10 s).

:meth:`FlightRecorder.assemble` (behind :func:`ringprof.recent`) merges the
kept windows and the current partial window into one
:class:`~ringprof.model.ProfileData` covering the last ``seconds``, with one
row per (stack, thread, label set, flags) for the whole span (``time_ns``: the
start of the first slice it was seen in).  Its
granularity is the slice: it covers from the start of the slice holding
"now - seconds" (so up to ``resolution`` seconds more than asked for) to now,
and never more than the recorder still holds (``meta["recent"]`` says what it
covers).

Memory is bounded twice: windows older than ``horizon`` seconds are dropped,
and the oldest windows are dropped while the folded windows together take more
than ``max_bytes`` (an estimate that errs high: strings shared between windows
are counted once per window).  The current window is the continuous
profile's own live data and is not counted here.

Everything here is stdlib-only (no numpy): folding runs on continuous mode's
window thread.
"""

from __future__ import annotations

import array
import logging
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .model import FLAG_FOLDED, ProfileData
from .pacing import tick

__all__ = ["DEFAULT_HORIZON", "DEFAULT_MAX_BYTES", "MAX_RESOLUTION", "FlightRecorder", "approx_bytes", "fold"]

log = logging.getLogger("ringprof")

DEFAULT_HORIZON = 600.0  #: seconds of history kept by default (10 minutes)
DEFAULT_MAX_BYTES = 32 << 20  #: default memory cap of the folded windows (32 MiB)
MAX_RESOLUTION = 10.0  #: longest slice, seconds

# Conservative per-object costs (CPython 3.11-3.15, 64-bit) for :func:`approx_bytes`.
_DICT_ENTRY = 112  # a dict entry with the table's slack after a resize
_LIST_SLOT = 16  # a list slot with over-allocation
_PER_TABLE = 4096  # a ProfileData's own dicts, lists and meta


def approx_bytes(data: ProfileData, slices: Mapping[int, int] | None = None) -> int:
    """An upper estimate of the memory ``data`` holds (columns, tables, meta)."""
    total = _PER_TABLE + data.nbytes()
    for i, frame in enumerate(data.frames):
        if not i & 255:
            tick()  # on the window cutter: let the application's threads run (see ringprof.pacing)
        total += (sys.getsizeof(frame) + sys.getsizeof(frame.name) + sys.getsizeof(frame.filename)
                  + _DICT_ENTRY + _LIST_SLOT)
    for i, stack in enumerate(data.stacks):
        if not i & 255:
            tick()
        total += sys.getsizeof(stack) + _DICT_ENTRY + _LIST_SLOT
    for label_set in data.label_sets:
        total += sys.getsizeof(label_set) + _DICT_ENTRY + _LIST_SLOT
        total += sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in label_set.items())
    total += len(data.threads) * _DICT_ENTRY + sum(sys.getsizeof(name) for name in data.threads.values())
    if slices is not None:
        total += len(slices) * _DICT_ENTRY
    return total


class _Folder:
    """Folds samples into one row per (slice, stack, thread, labels, flags)."""

    def __init__(self, resolution_ns: int, *, merge_slices: bool = False,
                 tables_of: ProfileData | None = None) -> None:
        self.resolution_ns = resolution_ns
        self.merge_slices = merge_slices  # one row per stack for the whole span (time_ns: its first slice)
        # Folding one profile: start from copies of its tables, so that its
        # stack and label ids carry over instead of being interned afresh.
        self.data = ProfileData() if tables_of is None else tables_of.empty_like()
        self._same_ids = tables_of
        #: (slice start or 0, stack, thread, labels, flags) -> [weight, cpu_ns, depth, first slice start]
        self.rows: dict[tuple[int, int, int, int, int], list[int]] = {}
        #: slice start -> samples folded into it
        self.samples: dict[int, int] = {}

    def add(self, src: ProfileData, *, from_ns: int | None = None, until_ns: int | None = None,
            samples: Mapping[int, int] | None = None) -> None:
        """Fold ``src``'s samples taken in slices ending after ``from_ns`` and
        at or before ``until_ns``.  ``samples`` (slice -> count) when ``src`` is
        itself folded; else each of its rows is one sample."""
        res = self.resolution_ns
        # Slices must start after ``low``; samples be taken at or before ``high``.
        low = -(1 << 62) if from_ns is None else from_ns - res
        high = 1 << 62 if until_ns is None else until_ns
        # First sum by the source's own ids (one dict operation a sample), then
        # re-intern each distinct row once.
        agg: dict[tuple[int, int, int, int, int], list[int]] = {}
        for i, (sid, tid, t, w, cpu, flags, lid, depth) in enumerate(zip(
                src.stack.tolist(), src.thread.tolist(), src.time_ns.tolist(), src.weight.tolist(),
                src.cpu_ns.tolist(), src.flags.tolist(), src.labels.tolist(), src.depth.tolist(), strict=True)):
            if not i & 255:
                tick()  # on the window cutter: let the application's threads run (see ringprof.pacing)
            start = t - t % res
            if start <= low or t > high:
                continue
            flags |= FLAG_FOLDED
            row = agg.get((start, sid, tid, lid, flags))
            if row is None:
                agg[(start, sid, tid, lid, flags)] = [w, cpu, depth, 1]
            else:
                row[0] += w
                row[1] += cpu
                row[3] += 1
        out = self.data
        rows = self.rows
        counts = self.samples
        merge = self.merge_slices
        same_ids = src is self._same_ids
        stack_map: dict[int, int] = {}
        label_map: dict[int, int] = {0: 0}
        for (start, sid, tid, lid, flags), (w, cpu, depth, n) in agg.items():
            osid, olid = sid, lid
            if not same_ids:
                osid = stack_map.get(sid, -1)
                if osid < 0:
                    tick()
                    osid = stack_map[sid] = out.intern_stack(out.intern_frame(src.frames[f]) for f in src.stacks[sid])
                olid = label_map.get(lid, -1)
                if olid < 0:
                    olid = label_map[lid] = out.intern_labels(src.label_sets[lid])
            key = (0 if merge else start, osid, tid, olid, flags)
            row = rows.get(key)
            if row is None:
                rows[key] = [w, cpu, depth, start]
            else:
                row[0] += w
                row[1] += cpu
                if start < row[3]:
                    row[3] = start
            if samples is None:
                counts[start] = counts.get(start, 0) + n
        if samples is not None:
            for start, n in samples.items():
                if low < start <= high:
                    counts[start] = counts.get(start, 0) + n
        for tid, name in src.threads.items():
            out.threads.setdefault(tid, name)

    def finish(self, meta: Mapping[str, Any]) -> ProfileData:
        out = self.data
        out.meta = dict(meta)
        keys = list(self.rows)
        values = list(self.rows.values())
        out.append_columns({
            "stack": array.array("i", [k[1] for k in keys]),
            "thread": array.array("q", [k[2] for k in keys]),
            "time_ns": array.array("q", [v[3] for v in values]),
            "weight": array.array("q", [v[0] for v in values]),
            "cpu_ns": array.array("q", [v[1] for v in values]),
            "flags": array.array("H", [k[4] for k in keys]),
            "labels": array.array("i", [k[3] for k in keys]),
            "depth": array.array("i", [v[2] for v in values]),
        })
        return out


def fold(data: ProfileData, resolution: float,
         meta: Mapping[str, Any] | None = None) -> tuple[ProfileData, dict[int, int]]:
    """``data`` folded into ``resolution``-second slices (with ``meta``, by
    default ``data``'s), and the samples per slice."""
    folder = _Folder(_resolution_ns(resolution), tables_of=data)
    folder.add(data)
    return folder.finish(data.meta if meta is None else meta), folder.samples


def _dropped(meta: Mapping[str, Any]) -> int:
    stats = meta.get("stats")
    return int(stats.get("dropped", 0)) if isinstance(stats, dict) else 0


def _resolution_ns(resolution: float) -> int:
    return max(1, round(resolution * 1e9))


@dataclass(frozen=True)
class Chunk:
    """One folded window."""

    data: ProfileData
    samples: dict[int, int]  #: slice start -> samples
    end_ns: int  #: end of its last slice (monotonic ns); its rows all lie before
    nbytes: int  #: :func:`approx_bytes`
    dropped: int  #: samples the sampler dropped during the window


class FlightRecorder:
    """Keeps the last ``horizon`` seconds of windows, folded, in at most ``max_bytes``."""

    def __init__(self, horizon: float = DEFAULT_HORIZON, max_bytes: int = DEFAULT_MAX_BYTES,
                 resolution: float = MAX_RESOLUTION, start_ns: int | None = None) -> None:
        if isinstance(horizon, bool) or not isinstance(horizon, int | float) or not horizon > 0:
            raise ValueError(f"recent must be a positive number of seconds (0 turns it off), got {horizon!r}")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1 << 16:
            raise ValueError(f"recent_max_bytes must be an integer of at least 65536, got {max_bytes!r}")
        if not 0 < resolution <= MAX_RESOLUTION:
            raise ValueError(f"resolution must be from 0 to {MAX_RESOLUTION} seconds, got {resolution!r}")
        self.horizon = float(horizon)
        self.max_bytes = max_bytes
        self.resolution = float(resolution)
        self._res_ns = _resolution_ns(resolution)
        self._lock = threading.Lock()
        self._chunks: list[Chunk] = []
        self._nbytes = 0
        #: history is complete from here (monotonic ns): ``start_ns`` (default:
        #: now, before the profile it serves is enabled), then the end of the
        #: last window dropped
        self._complete_from = time.monotonic_ns() if start_ns is None else start_ns
        self._warned_memory = False
        #: counters: windows added, dropped for age, dropped for memory
        self.stats = {"windows": 0, "expired": 0, "evicted_for_memory": 0}

    @property
    def nbytes(self) -> int:
        """Estimated bytes held by the kept windows (at most ``max_bytes``)."""
        return self._nbytes

    @property
    def windows(self) -> int:
        """Windows kept now."""
        return len(self._chunks)

    def add(self, window: ProfileData) -> None:
        """Keep a window just cut (folded), then drop what is too old or too much."""
        chunk = None
        if len(window):
            data, samples = fold(window, self.resolution, {})  # assemble() writes its own meta
            chunk = Chunk(data, samples, max(samples) + self._res_ns, approx_bytes(data, samples),
                          _dropped(window.meta))
        with self._lock:
            self.stats["windows"] += 1
            if chunk is not None:
                self._chunks.append(chunk)
                self._nbytes += chunk.nbytes
            horizon_ns = time.monotonic_ns() - round(self.horizon * 1e9)
            while self._chunks and self._chunks[0].end_ns <= horizon_ns:
                self._evict()
                self.stats["expired"] += 1
            while self._chunks and self._nbytes > self.max_bytes:
                self._evict()
                self.stats["evicted_for_memory"] += 1
                if not self._warned_memory:
                    self._warned_memory = True
                    log.warning("ringprof: the flight recorder's memory cap (%d bytes) holds less than %g s of "
                                "profile; older windows are dropped (raise recent_max_bytes to keep more)",
                                self.max_bytes, self.horizon)

    def _evict(self) -> None:
        gone = self._chunks.pop(0)
        self._nbytes -= gone.nbytes
        self._complete_from = max(self._complete_from, gone.end_ns)

    def chunks(self) -> tuple[list[Chunk], int]:
        """The kept windows (oldest first) and where complete history starts."""
        with self._lock:
            return list(self._chunks), self._complete_from

    def assemble(self, seconds: float, chunks: Iterable[Chunk], complete_from: int, live: ProfileData | None,
                 until_ns: int | None = None, meta: Mapping[str, Any] | None = None) -> ProfileData:
        """The last ``seconds`` up to ``until_ns`` (default now): the kept
        windows ``chunks`` plus ``live`` (the current window, raw samples),
        merged into one ProfileData with one row per slice and stack."""
        now = time.monotonic_ns() if until_ns is None else until_ns
        res = self._res_ns
        asked_from = now - round(seconds * 1e9)
        from_ns = max(asked_from, complete_from)
        folder = _Folder(res, merge_slices=True)
        dropped = 0
        for chunk in chunks:
            if chunk.end_ns <= from_ns:
                continue
            folder.add(chunk.data, from_ns=from_ns, until_ns=until_ns, samples=chunk.samples)
            dropped += chunk.dropped
        if live is not None and len(live):
            folder.add(live, from_ns=from_ns, until_ns=until_ns)
            dropped += _dropped(live.meta)
        covered_from = max(from_ns - from_ns % res, complete_from)
        covered = max(0.0, (now - covered_from) / 1e9)
        unix_now = time.time() - (time.monotonic_ns() - now) / 1e9
        out_meta = dict(meta or {})
        out_meta.update({
            "start_time": unix_now - covered,
            "duration": covered,
            "stats": {"samples": sum(folder.samples.values()), "dropped": dropped},
            "recent": {"seconds": float(seconds), "covered": covered, "resolution": self.resolution,
                       "truncated": complete_from > asked_from, "horizon": self.horizon,
                       "max_bytes": self.max_bytes},
        })
        return folder.finish(out_meta)

    def __repr__(self) -> str:
        return (f"<ringprof.FlightRecorder {self.horizon:g}s windows={len(self._chunks)} "
                f"bytes={self._nbytes}/{self.max_bytes}>")
