"""Chrome trace-event JSON: a per-thread flame chart for Perfetto / chrome://tracing.

Sampled stacks are turned into ``"X"`` (complete) events the way a flame chart
is drawn: walking each thread's samples in time order, a frame stays open while
consecutive samples share it at the same depth (and the same frame below it),
and closes when a sample's stack diverges or when there is a gap in sampling.
Events of a thread therefore nest properly, which the viewers require.

Each sample covers ``[time, time + weight * interval)``, cut short where the
thread's next sample starts. In CPU mode a thread that slept between samples
leaves a gap there, which is the truth: it was not running.

Frames are compared by function (name, file, first line) so that moving to
another line of the same function does not split its box; ``lines=True``
compares sampled lines instead. Times are integer microseconds from the first
sample (floor of nanoseconds / 1000): integers keep nesting exact, where float
sums of microsecond fractions could make a child overhang its parent.

The output is streamed: :func:`write_to` writes the JSON to a binary file as it
goes, event by event, and never holds the trace in memory.  Events are written
in file order (start time, parents before children), which needs each event's
end when it starts, so each thread is walked twice: the first walk stores one
8-byte end time per event (an ``array('q')``, no Python object per event), the
second writes.  Memory beyond the model is about 40 bytes per sample (time-sorted
copies of the columns) plus 8 bytes per event of the largest thread; the output
is about 110-150 bytes per event (see the README for measured sizes).
:func:`render` (bytes in memory) is for small profiles and tests.

Folded recordings (:mod:`ringprof.folding`): a folded row is the aggregate of
many older samples whose times were dropped.  Such rows are drawn on a track
of their own per thread, named ``"<thread> (folded: aggregated, not in time
order)"`` (track id: the thread id plus :data:`FOLDED_TRACK`), laid end to end
from the oldest folded time, grouped by stack, each as long as its weight
times the interval: the time axis of that track means nothing, the widths are
exact.
"""

from __future__ import annotations

import io
import json
from array import array
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from ringprof.model import FLAG_FOLDED, Frame, ProfileData

#: Added to a thread id to name the track of its folded rows.
FOLDED_TRACK = 1 << 32

EXTENSIONS: tuple[str, ...] = (".trace.json", ".chrome.json")

_Key = tuple[str, str, int]
#: Samples converted to Python ints at a time (bounds the per-thread Python objects).
_CHUNK = 1 << 14
#: Pairs of consecutive stacks whose common prefix is remembered.
_CACHE_LIMIT = 1 << 16
#: Events joined per write.
_BATCH = 4096

# One step of a thread's flame chart: close open frames down to ``keep`` of them at
# ``close_us``, then open ``opened`` (key ids, root side first) at ``open_us``.
_Step = tuple[int, int, tuple[int, ...], int]


def _key(frame: Frame, lines: bool) -> _Key:
    return (frame.name, frame.filename, frame.line if lines else frame.firstlineno)


class _Keys:
    """Frames interned by the key they are compared by; stacks as tuples of key ids."""

    def __init__(self, data: ProfileData, lines: bool) -> None:
        ids: dict[_Key, int] = {}
        self.frames: list[Frame] = []  # one representative frame per key id
        frame_key: list[int] = []
        for frame in data.frames:
            key = _key(frame, lines)
            kid = ids.get(key)
            if kid is None:
                kid = ids[key] = len(self.frames)
                self.frames.append(frame)
            frame_key.append(kid)
        self.stacks = [tuple(frame_key[f] for f in stack) for stack in data.stacks]
        self.lines = lines


def _steps(keys: _Keys, starts: np.ndarray, ends: np.ndarray, sids: np.ndarray, t0: int) -> Iterator[_Step]:
    """The open/close steps of one thread's samples (in time order, ends already cut)."""
    common_cache: dict[tuple[int, int], int] = {}
    stacks = keys.stacks
    prev_sid = -1  # -1: nothing open
    prev_end = 0
    for lo in range(0, len(sids), _CHUNK):
        for start_ns, end_ns, sid in zip(starts[lo:lo + _CHUNK].tolist(), ends[lo:lo + _CHUNK].tolist(),
                                         sids[lo:lo + _CHUNK].tolist(), strict=True):
            if prev_sid >= 0 and start_ns > prev_end:
                yield (0, (prev_end - t0) // 1000, (), 0)  # a gap in sampling closes everything
                prev_sid = -1
            if sid != prev_sid:
                stack = stacks[sid]
                if prev_sid < 0:
                    common = 0
                else:
                    common = common_cache.get((prev_sid, sid), -1)
                    if common < 0:
                        prev = stacks[prev_sid]
                        common = 0
                        limit = min(len(prev), len(stack))
                        while common < limit and prev[common] == stack[common]:
                            common += 1
                        if len(common_cache) >= _CACHE_LIMIT:
                            common_cache.clear()
                        common_cache[(prev_sid, sid)] = common
                    if common == len(stack) == len(stacks[prev_sid]):
                        prev_sid, prev_end = sid, end_ns  # another stack, same keys: nothing changes
                        continue
                start_us = (start_ns - t0) // 1000
                yield (common, start_us, stack[common:], start_us)
                prev_sid = sid
            prev_end = end_ns
    if prev_sid >= 0:
        yield (0, (prev_end - t0) // 1000, (), 0)


def _end_times(steps: Iterator[_Step]) -> array[int]:
    """First walk: the end (us) of every event, in the order events open."""
    ends: array[int] = array("q")
    open_slots: list[int] = []
    for keep, close_us, opened, _open_us in steps:
        while len(open_slots) > keep:
            ends[open_slots.pop()] = close_us
        for _ in opened:
            open_slots.append(len(ends))
            ends.append(0)
    return ends


class _EventWriter:
    """Comma-separated JSON events, written in batches."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.batch: list[str] = []
        self.comma = b""

    def add(self, event: str) -> None:
        self.batch.append(event)
        if len(self.batch) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            self.out.write(self.comma + ",".join(self.batch).encode("ascii"))
            self.comma = b","
            self.batch.clear()


def _write_thread(events: _EventWriter, keys: _Keys, steps: Iterator[_Step], ends: array[int], pid: int,
                  tid: int) -> None:
    """Second walk: write the X events of one thread, each as it opens."""
    heads: dict[int, str] = {}
    tails: dict[int, str] = {}
    n = 0
    for _keep, _close_us, opened, open_us in steps:
        for kid in opened:
            head = heads.get(kid)
            if head is None:
                frame = keys.frames[kid]
                head = heads[kid] = (f'{{"ph":"X","name":{json.dumps(frame.name)},"cat":"python",'
                                     f'"pid":{pid},"tid":{tid},"ts":')
                line = frame.line if keys.lines else frame.firstlineno
                tails[kid] = (f',"args":{{"file":{json.dumps(frame.filename)},"line":{line}}}}}'
                              if frame.filename else "}")
            events.add(f'{head}{open_us},"dur":{ends[n] - open_us}{tails[kid]}')
            n += 1


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True)


def write_to(data: ProfileData, out: IO[bytes], *, lines: bool = False) -> None:
    """Stream the trace document (object form: ``traceEvents`` plus metadata) to ``out``."""
    pid = int(data.meta.get("pid") or 0)
    argv = data.meta.get("argv")
    process = " ".join(str(a) for a in argv) if isinstance(argv, list) and argv else "python"

    keep = data.weight > 0
    all_times, all_threads = _folded_tracks(data, keep)
    times = all_times[keep]
    t0 = int(times.min()) if times.size else 0
    order = np.lexsort((np.arange(times.size), times, all_threads[keep]))
    threads = all_threads[keep][order]
    times = times[order]
    ends = times + data.sample_ns()[keep][order]
    sids = data.stack[keep][order]
    del order
    # Per thread: [lo, hi) in the sorted columns.
    bounds = np.flatnonzero(np.diff(threads)) + 1
    lows = [0, *bounds.tolist()] if threads.size else []
    highs = [*bounds.tolist(), int(threads.size)] if threads.size else []
    tids = [int(threads[lo]) for lo in lows]

    out.write(b'{"traceEvents":[')
    events = _EventWriter(out)
    events.add(_dump({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": process}}))
    for tid in tids:
        base = tid - FOLDED_TRACK if tid >= FOLDED_TRACK else tid
        name = data.threads.get(base) or f"thread {base}"
        if tid >= FOLDED_TRACK:
            name += " (folded: aggregated, not in time order)"
        events.add(_dump({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}}))
    keys = _Keys(data, lines)
    for tid, lo, hi in zip(tids, lows, highs, strict=True):
        starts = times[lo:hi]
        # Cut each sample at the next one's start so a thread's samples never overlap.
        cut = ends[lo:hi].copy()
        if cut.size > 1:
            np.minimum(cut[:-1], starts[1:], out=cut[:-1])
        event_ends = _end_times(_steps(keys, starts, cut, sids[lo:hi], t0))
        _write_thread(events, keys, _steps(keys, starts, cut, sids[lo:hi], t0), event_ends, pid, tid)
        del event_ends
    events.flush()
    other: dict[str, Any] = {"exporter": "ringprof"}
    for key in ("mode", "interval", "start_time", "duration", "python", "folded"):
        if key in data.meta:
            other[key] = data.meta[key]
    out.write(b'],"displayTimeUnit":"ms","otherData":' + _dump(other).encode("ascii") + b"}")


def _folded_tracks(data: ProfileData, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The time and thread columns, with folded rows moved to their own
    tracks and laid end to end (see the module docstring)."""
    times = data.time_ns.numpy()
    threads = data.thread.numpy()
    folded = ((data.flags.numpy() & FLAG_FOLDED) != 0) & keep
    if not folded.any():
        return times, threads
    times, threads = times.copy(), threads.copy()
    info = data.meta.get("folded")
    origin = info.get("oldest_ns") if isinstance(info, dict) else None
    origin = int(origin) if isinstance(origin, int) else int(times[folded].min())
    durations = data.sample_ns().numpy()
    sids = data.stack.numpy()
    for tid in np.unique(threads[folded]).tolist():
        rows = np.flatnonzero(folded & (threads == tid)).tolist()
        rows.sort(key=lambda r: data.stacks[int(sids[r])])  # like stacks side by side: they merge
        at = origin
        for r in rows:
            times[r] = at
            at += int(durations[r])
        threads[rows] = tid + FOLDED_TRACK
    return times, threads


def to_dict(data: ProfileData, *, lines: bool = False) -> dict[str, Any]:
    """The trace document as plain Python data (for tests and small profiles)."""
    doc: dict[str, Any] = json.loads(render(data, lines=lines))
    return doc


def render(data: ProfileData, *, lines: bool = False) -> bytes:
    """Trace-event JSON bytes (object form, ``traceEvents`` plus metadata)."""
    buf = io.BytesIO()
    write_to(data, buf, lines=lines)
    return buf.getvalue()
