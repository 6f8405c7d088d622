"""Test oracle for the Chrome-trace exporter: the straightforward implementation
(one dict per event, all events sorted in memory) that the streaming exporter
replaced.  Too slow and too big for large profiles, but simple enough to trust;
tests check the streaming exporter writes the same events.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ringprof.model import Frame, ProfileData

_Key = tuple[str, str, int]


def _key(frame: Frame, lines: bool) -> _Key:
    return (frame.name, frame.filename, frame.line if lines else frame.firstlineno)


def _event(frame: Frame, lines: bool, pid: int, tid: int, start_us: int, end_us: int) -> dict[str, Any]:
    event: dict[str, Any] = {"ph": "X", "name": frame.name, "cat": "python", "pid": pid,
                             "tid": tid, "ts": start_us, "dur": end_us - start_us}
    if frame.filename:
        event["args"] = {"file": frame.filename, "line": frame.line if lines else frame.firstlineno}
    return event


def _thread_events(data: ProfileData, rows: list[tuple[int, int, int]], t0: int, pid: int,
                   tid: int, lines: bool) -> list[dict[str, Any]]:
    """X events for one thread from its (time_ns, end_ns, stack id) rows in time order.

    Sorted by start time, parents before children (by depth at equal starts).
    """
    events: list[tuple[int, int, dict[str, Any]]] = []  # (start, depth, event)
    open_frames: list[tuple[_Key, Frame, int]] = []  # (key, frame, start_us), root first
    prev_end = 0

    def close_to(depth: int, at_us: int) -> None:
        while len(open_frames) > depth:
            _k, frame, start = open_frames.pop()
            events.append((start, len(open_frames), _event(frame, lines, pid, tid, start, at_us)))

    for start_ns, end_ns, sid in rows:
        start_us = (start_ns - t0) // 1000
        if open_frames and start_ns > prev_end:
            close_to(0, (prev_end - t0) // 1000)  # a gap in sampling closes everything
        frames = [data.frames[f] for f in data.stacks[sid]]
        common = 0
        while (common < len(open_frames) and common < len(frames)
               and open_frames[common][0] == _key(frames[common], lines)):
            common += 1
        close_to(common, start_us)
        for frame in frames[common:]:
            open_frames.append((_key(frame, lines), frame, start_us))
        prev_end = end_ns
    close_to(0, (prev_end - t0) // 1000)
    events.sort(key=lambda item: item[:2])
    return [event for _start, _depth, event in events]


def to_dict(data: ProfileData, *, lines: bool = False) -> dict[str, Any]:
    """The trace document as plain Python data (what :func:`render` serialises)."""
    pid = int(data.meta.get("pid") or 0)
    argv = data.meta.get("argv")
    process = " ".join(str(a) for a in argv) if isinstance(argv, list) and argv else "python"
    meta_events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": process}},
    ]
    events: list[dict[str, Any]] = []

    keep = data.weight > 0
    times = data.time_ns[keep]
    t0 = int(times.min()) if times.size else 0
    ends = times + data.sample_ns()[keep]
    order = np.lexsort((np.arange(times.size), times, data.thread[keep]))
    tids = data.thread[keep][order].tolist()
    rows_all = list(zip(times[order].tolist(), ends[order].tolist(), data.stack[keep][order].tolist(),
                        strict=True))

    start = 0
    while start < len(tids):
        tid = tids[start]
        stop = start
        while stop < len(tids) and tids[stop] == tid:
            stop += 1
        rows = rows_all[start:stop]
        # Cut each sample at the next one's start so a thread's samples never overlap.
        rows = [(s, min(e, rows[i + 1][0]) if i + 1 < len(rows) else e, sid)
                for i, (s, e, sid) in enumerate(rows)]
        name = data.threads.get(tid) or f"thread {tid}"
        meta_events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                            "args": {"name": name}})
        events.extend(_thread_events(data, rows, t0, pid, tid, lines))
        start = stop

    other: dict[str, Any] = {"exporter": "ringprof"}
    for key in ("mode", "interval", "start_time", "duration", "python"):
        if key in data.meta:
            other[key] = data.meta[key]
    return {"traceEvents": meta_events + events, "displayTimeUnit": "ms", "otherData": other}


def render(data: ProfileData, *, lines: bool = False) -> bytes:
    return json.dumps(to_dict(data, lines=lines), separators=(",", ":"), ensure_ascii=True).encode("ascii")
