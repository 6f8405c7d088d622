"""speedscope JSON files into a model.

Read: ``sampled`` profiles (stacks of indices into ``shared.frames``, root
first, with weights) and ``evented`` ones (open/close events; the time between
two events goes to the stack open at the time). Each profile becomes one
thread: ``"name (tid N)"`` (how ringprof names them) gives back the thread id
and name, any other name becomes the name of a made-up thread id. ringprof's
own per-label profiles (``"thread [k=v]"``, copies of part of a thread's
samples) are skipped so nothing is counted twice; their labels are lost.

Weights: time units are turned into nanoseconds and divided by the largest
interval that divides them all (for ringprof's exports, the sampling interval,
so weights are sample counts again); ``none`` weights are counts at ringprof's
default 10 ms interval. Other units (``bytes``) are refused.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from . import ProfileFormatError

if TYPE_CHECKING:
    from ringprof.model import ProfileData

_UNITS = {"nanoseconds": 1, "microseconds": 1_000, "milliseconds": 1_000_000, "seconds": 1_000_000_000,
          "none": None}
_TID_RE = re.compile(r"^(?P<name>.*) \(tid (?P<tid>-?\d+)\)$")
_THREAD_RE = re.compile(r"^thread (?P<tid>-?\d+)$")
_LABELLED_RE = re.compile(r"^(?P<base>.*) \[[^\[\]]*\]$")
_DEFAULT_INTERVAL_NS = 10_000_000


def _bad(what: str) -> ProfileFormatError:
    return ProfileFormatError(f"malformed speedscope file: {what}")


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _index_list(v: Any, nframes: int, where: str) -> list[int]:
    if not isinstance(v, list) or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < nframes
                                          for i in v):
        raise _bad(f"{where} is not a list of frame indices below {nframes}")
    return v


def _profile_samples(prof: dict[str, Any], nframes: int, where: str) -> tuple[list[list[int]], list[float],
                                                                           list[float], int | None]:
    """(stacks root first, weights, start times, unit scale) of one profile, in its unit."""
    unit = prof.get("unit", "none")
    if unit not in _UNITS:
        raise ProfileFormatError(f"speedscope {where} is in {unit!r}: ringprof reads time profiles")
    scale = _UNITS[unit]
    kind = prof.get("type")
    stacks: list[list[int]] = []
    weights: list[float] = []
    starts: list[float] = []
    if kind == "sampled":
        samples, ws = prof.get("samples"), prof.get("weights")
        if not isinstance(samples, list) or not isinstance(ws, list) or len(samples) != len(ws):
            raise _bad(f"{where} needs lists 'samples' and 'weights' of equal length")
        t = prof.get("startValue", 0)
        t = t if _num(t) else 0
        for j, (stack, w) in enumerate(zip(samples, ws, strict=True)):
            if not _num(w) or w < 0:
                raise _bad(f"{where} weight {j} is not a non-negative number")
            stacks.append(_index_list(stack, nframes, f"{where} sample {j}"))
            weights.append(float(w))
            starts.append(float(t))
            t += w
    elif kind == "evented":
        events = prof.get("events")
        if not isinstance(events, list):
            raise _bad(f"{where} has no 'events' list")
        open_stack: list[int] = []
        last = None
        for j, ev in enumerate(events):
            if not (isinstance(ev, dict) and ev.get("type") in ("O", "C") and _num(ev.get("at"))
                    and isinstance(ev.get("frame"), int) and 0 <= ev["frame"] < nframes):
                raise _bad(f"{where} event {j} is not {{type: O|C, frame, at}}")
            at = float(ev["at"])
            if last is not None and at < last:
                raise _bad(f"{where} event {j} goes back in time")
            if open_stack and last is not None and at > last:
                stacks.append(list(open_stack))
                weights.append(at - last)
                starts.append(last)
            last = at
            if ev["type"] == "O":
                open_stack.append(ev["frame"])
            elif not open_stack or open_stack[-1] != ev["frame"]:
                raise _bad(f"{where} event {j} closes a frame that is not open")
            else:
                open_stack.pop()
    else:
        raise _bad(f"{where} has type {kind!r} (expected 'sampled' or 'evented')")
    return stacks, weights, starts, scale


def from_document(doc: Any) -> ProfileData:
    from ringprof.model import Frame, ProfileData

    shared = doc.get("shared")
    frames = shared.get("frames") if isinstance(shared, dict) else None
    profiles = doc.get("profiles")
    if not isinstance(frames, list) or not isinstance(profiles, list):
        raise _bad("needs 'shared.frames' and 'profiles' lists")
    model_frames: list[Frame] = []
    for i, fr in enumerate(frames):
        if not isinstance(fr, dict) or not isinstance(fr.get("name"), str):
            raise _bad(f"frame {i} has no name")
        file = fr.get("file", "")
        line = fr.get("line", 0)
        if not isinstance(file, str) or not (isinstance(line, int) and not isinstance(line, bool)):
            raise _bad(f"frame {i} has a bad file or line")
        model_frames.append(Frame(fr["name"], file, max(line, 0), max(line, 0)))

    ours = doc.get("exporter") == "ringprof"
    names_seen: set[str] = set()
    parts = []
    for i, prof in enumerate(profiles):
        if not isinstance(prof, dict):
            raise _bad(f"profile {i} is not an object")
        name = prof.get("name", f"profile {i}")
        name = name if isinstance(name, str) else f"profile {i}"
        labelled = _LABELLED_RE.match(name)
        if ours and labelled and labelled.group("base") in names_seen:
            continue
        names_seen.add(name)
        parts.append((i, name, *_profile_samples(prof, len(model_frames), f"profile {i}")))

    # One interval for the whole file: the largest that divides every weight (in ns).
    ns_weights = [round(w * scale) for _i, _n, _s, ws, _t, scale in parts if scale for w in ws]
    interval_ns = 0
    for ns in ns_weights:
        interval_ns = math.gcd(interval_ns, ns)
    interval_ns = interval_ns or _DEFAULT_INTERVAL_NS

    data = ProfileData({"mode": "cpu", "interval": interval_ns / 1e9})
    frame_ids = [data.intern_frame(f) for f in model_frames]
    stack_col: list[int] = []
    weight_col: list[int] = []
    time_col: list[int] = []
    thread_col: list[int] = []
    for i, name, stacks, weights, starts, scale in parts:
        m, t = _TID_RE.match(name), _THREAD_RE.match(name)
        if m:
            tid, tname = int(m.group("tid")), m.group("name")
        elif t:
            tid, tname = int(t.group("tid")), ""
        else:
            tid, tname = i + 1, name
        if tname:
            data.threads[tid] = tname
        for stack, w, start in zip(stacks, weights, starts, strict=True):
            weight = round(w * scale / interval_ns) if scale else round(w)
            if weight <= 0:
                continue
            stack_col.append(data.intern_stack(frame_ids[f] for f in stack))
            weight_col.append(weight)
            time_col.append(round(start * scale) if scale else 0)
            thread_col.append(tid)
    if stack_col:
        try:
            data.add_samples(stack_col, thread_col, time_col, weight_col)
        except OverflowError as exc:
            raise _bad(f"a value does not fit in 64 bits ({exc})") from None
    return data
