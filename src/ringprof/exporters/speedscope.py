"""speedscope's JSON file format (https://www.speedscope.app/file-format-schema.json).

One ``"sampled"`` profile per thread, busiest thread first (speedscope opens
``activeProfileIndex`` 0). When samples carry labels, extra profiles follow
their thread's, so a request or task can be viewed on its own (the per-thread
profiles stay complete): one per asyncio task (samples whose labels carry a
``task_id``), named ``"<thread> task <name> #<id>"``, then one per label set
with other labels than the task's, named ``"<thread> [k=v, ...]"``.

Samples keep their time order (speedscope's "Time Order" view is a timeline);
consecutive samples of a thread with the same stack are merged into one
weighted sample, which changes nothing in any view and shrinks the file.
Weights are nanoseconds (``weight * interval``).

Frames are shared between profiles and keyed by *function* (name, file, first
line) by default: keying by the sampled line would split a function into one
box per line in every view. ``lines=True`` opts into that finer keying.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ringprof.model import Frame, ProfileData

EXTENSIONS: tuple[str, ...] = (".speedscope.json",)

SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"


def _thread_name(data: ProfileData, tid: int) -> str:
    name = data.threads.get(tid)
    return f"{name} (tid {tid})" if name else f"thread {tid}"


def _frame_key(frame: Frame, lines: bool) -> tuple[str, str, int]:
    return (frame.name, frame.filename, frame.line if lines else frame.firstlineno)


def _profile(name: str, samples: list[list[int]], weights: list[int]) -> dict[str, Any]:
    return {
        "type": "sampled",
        "name": name,
        "unit": "nanoseconds",
        "startValue": 0,
        "endValue": sum(weights),
        "samples": samples,
        "weights": weights,
    }


def to_dict(data: ProfileData, *, lines: bool = False, by_labels: bool = True,
            name: str | None = None) -> dict[str, Any]:
    """The speedscope document as plain Python data (what :func:`render` serialises)."""
    # Shared frame table, in first-use order over frame ids (deterministic).
    key_index: dict[tuple[str, str, int], int] = {}
    shared: list[dict[str, Any]] = []
    frame_index: list[int] = []
    for frame in data.frames:
        key = _frame_key(frame, lines)
        idx = key_index.get(key)
        if idx is None:
            idx = key_index[key] = len(shared)
            entry: dict[str, Any] = {"name": frame.name}
            if frame.filename:
                entry["file"] = frame.filename
                entry["line"] = key[2]
            shared.append(entry)
        frame_index.append(idx)
    stack_frames = [[frame_index[f] for f in stack] for stack in data.stacks]

    # Samples in time order (stable, so equal times keep recording order).
    order = np.argsort(data.time_ns, kind="stable")
    sid_col = data.stack[order].tolist()
    tid_col = data.thread[order].tolist()
    lid_col = data.labels[order].tolist()
    ns_col = data.sample_ns()[order].tolist()

    # Group key: (tid, kind, id): kind 0 is the whole thread, 1 an asyncio task
    # (id: its task_id label), 2 a label set (id: label set id); value: (stacks, weights).
    # Merging compares frame-index lists, not stack ids: stacks that differ only in
    # sampled lines are the same stack here unless ``lines`` is set.
    groups: dict[tuple[int, int, str], tuple[list[list[int]], list[int]]] = {}
    titles: dict[tuple[int, int, str], str] = {}

    def add(key: tuple[int, int, str], sid: int, ns: int) -> None:
        stacks, weights = groups.setdefault(key, ([], []))
        if stacks and stacks[-1] == stack_frames[sid]:
            weights[-1] += ns
        else:
            stacks.append(stack_frames[sid])
            weights.append(ns)

    # Per label set: (task key or None, whether it has labels besides the task's).
    label_kinds: dict[int, tuple[str | None, bool]] = {}
    for sid, tid, lid, ns in zip(sid_col, tid_col, lid_col, ns_col, strict=True):
        if ns <= 0:
            continue
        add((tid, 0, ""), sid, ns)
        if not (by_labels and lid and data.label_sets[lid]):
            continue
        kind = label_kinds.get(lid)
        if kind is None:
            ls = data.label_sets[lid]
            task = ls.get("task_id")
            kind = label_kinds[lid] = (task, any(k not in ("task", "task_id") for k in ls))
        if kind[0] is not None:
            gkey = (tid, 1, kind[0])
            titles.setdefault(gkey, f"task {data.label_sets[lid].get('task', '?')} #{kind[0]}")
            add(gkey, sid, ns)
        if kind[1]:
            gkey = (tid, 2, str(lid))
            titles.setdefault(gkey, f"[{_labels_text(data.label_sets[lid])}]")
            add(gkey, sid, ns)

    totals = {tid: sum(w) for (tid, kind, _), (_, w) in groups.items() if kind == 0}

    # Busiest thread first; within a thread the full profile, then tasks, then label sets, by text.
    def sort_key(key: tuple[int, int, str]) -> tuple[int, int, int, str]:
        tid, kind, _ = key
        return (-totals[tid], tid, kind, titles.get(key, ""))

    profiles = []
    for gkey in sorted(groups, key=sort_key):
        stacks, weights = groups[gkey]
        title = _thread_name(data, gkey[0])
        if gkey[1]:
            title += " " + titles[gkey]
        profiles.append(_profile(title, stacks, weights))
    if not profiles:
        profiles.append(_profile("(no samples)", [], []))

    return {
        "$schema": SCHEMA_URL,
        "shared": {"frames": shared},
        "profiles": profiles,
        "name": name if name is not None else _default_name(data),
        "activeProfileIndex": 0,
        "exporter": "ringprof",
    }


def _labels_text(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _default_name(data: ProfileData) -> str:
    argv = data.meta.get("argv")
    mode = data.meta.get("mode", "cpu")
    if isinstance(argv, list) and argv:
        return f"ringprof {mode}: {' '.join(str(a) for a in argv)}"
    return f"ringprof {mode} profile"


def render(data: ProfileData, *, lines: bool = False, by_labels: bool = True,
           name: str | None = None) -> bytes:
    """speedscope JSON bytes.

    ``lines``: one frame per sampled line instead of per function.
    ``by_labels``: add a profile per (thread, label set) when labels exist.
    ``name``: the document title (default: mode and argv from ``meta``).
    """
    doc = to_dict(data, lines=lines, by_labels=by_labels, name=name)
    # ensure_ascii: lone surrogates (undecodable file names) become valid \u escapes.
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")
