"""pprof: gzip-compressed protobuf per google/pprof ``proto/profile.proto``.

The encoder (and the small decoder used by tests and sinks) is written by hand
on purpose, on the wire-format helpers of :mod:`ringprof.exporters.protowire`
(shared with the OTLP exporter). ringprof is imported into every profiled service, so it must stay
light: the ``protobuf`` runtime is a multi-megabyte dependency whose versions
conflict with what services already pin (the 3.x/4.x split), and needing it (or
generated ``_pb2`` code) just to write one fixed message schema is not worth
that. The subset of the wire format pprof needs is tiny: varints, length-
delimited fields (strings, sub-messages, packed repeated scalars) and nothing
else.

What goes in:

* sample types ``samples/count`` (weight) and ``cpu/nanoseconds``; in wall mode
  ``samples/count``, ``wall/nanoseconds`` and ``cpu/nanoseconds`` (the measured
  ``cpu_ns`` column). In CPU mode the CPU time is ``weight * interval``, the
  same number every other exporter reports. ``period_type`` is the mode's
  nanoseconds, ``period`` the interval, and ``default_sample_type`` the mode's
  time type so ``go tool pprof`` shows time, not counts, by default;
* one Function per (name, file, first line), one Location per sampled line, a
  single Mapping flagged ``has_functions`` so pprof never tries to symbolize
  (there are no addresses, only Python frames);
* ``system_name`` is ``name (file:first line)`` (``ringprof:<name>`` for
  synthetic frames), never equal to ``name``: pprof runs C++ demangling
  heuristics on functions whose two names are equal, which take ``<module>``,
  ``<lambda>`` or ``<genexpr>`` for template arguments and erase them;
* location ids **leaf first** (pprof's convention; our model is root first);
* labels: ``thread id`` (numeric), ``thread name`` (when known) and every label
  of the sample's label set. Samples with equal stack, thread and labels are
  summed: pprof samples carry no timestamps, so nothing is lost.

Output is deterministic: tables are numbered in first-use order over the model's
columns, and gzip's header time is fixed at 0.
"""

from __future__ import annotations

import array
import gzip
from typing import Any

from ringprof.model import Frame, ProfileData
from ringprof.pacing import tick

from . import protowire
from .protowire import Message as _Message
from .protowire import fields as _fields
from .protowire import read_varint as _read_varint  # noqa: F401  (kept for callers of the old names)
from .protowire import varint as _varint

EXTENSIONS: tuple[str, ...] = (".pprof", ".pb.gz")

# Field numbers from profile.proto.
_P_SAMPLE_TYPE, _P_SAMPLE, _P_MAPPING, _P_LOCATION, _P_FUNCTION, _P_STRINGS = 1, 2, 3, 4, 5, 6
_P_DROP, _P_KEEP, _P_TIME, _P_DURATION, _P_PERIOD_TYPE, _P_PERIOD = 7, 8, 9, 10, 11, 12
_P_COMMENT, _P_DEFAULT_TYPE = 13, 14


class _Strings:
    """The profile's string table: index 0 is always ``""``."""

    def __init__(self) -> None:
        self.table: list[str] = [""]
        self._index: dict[str, int] = {"": 0}

    def __call__(self, text: str) -> int:
        idx = self._index.get(text)
        if idx is None:
            idx = self._index[text] = len(self.table)
            self.table.append(text)
        return idx


def _value_type(strings: _Strings, kind: str, unit: str) -> _Message:
    return _Message().varint(1, strings(kind)).varint(2, strings(unit))


def encode(data: ProfileData) -> bytes:
    """The uncompressed ``Profile`` message (what :func:`render` gzips)."""
    strings = _Strings()
    wall = data.meta.get("mode") == "wall"
    time_type = "wall" if wall else "cpu"
    types = [("samples", "count"), ("wall", "nanoseconds"), ("cpu", "nanoseconds")] if wall \
        else [("samples", "count"), ("cpu", "nanoseconds")]
    profile = _Message()
    for kind, unit in types:
        profile.message(_P_SAMPLE_TYPE, _value_type(strings, kind, unit))
    tables = _tables(data, strings, wall)
    tick()  # on ringprof's exporter thread: let the application's threads run (see ringprof.pacing)
    samples, locations, used = _encode_samples(tables)
    profile.raw(samples)
    mapping = (_Message().varint(1, 1).varint(5, strings(_mapping_name(data)))
               .varint(7, 1).varint(8, 1).varint(9, 1))
    profile.message(_P_MAPPING, mapping)
    profile.raw(locations)
    functions = tables.functions
    for i, index in enumerate(used):
        if not i & 255:
            tick()
        frame = functions[index]
        profile.message(_P_FUNCTION, _Message().varint(1, i + 1).varint(2, strings(frame.name))
                        .varint(3, strings(_system_name(frame)))
                        .varint(4, strings(frame.filename)).varint(5, frame.firstlineno))

    start = data.meta.get("start_time")
    duration = data.meta.get("duration")
    period_type = _value_type(strings, time_type, "nanoseconds")
    default_type = strings(time_type)
    time_nanos = round(float(start) * 1e9) if start is not None else 0
    duration_nanos = round(float(duration) * 1e9) if duration is not None else 0
    # Strings are all interned now; the table goes before the scalars, as pprof's
    # own writer orders fields (any order is valid protobuf).
    for i, text in enumerate(strings.table):
        if not i & 255:
            tick()
        profile.delimited(_P_STRINGS, text.encode("utf-8", "backslashreplace"), always=True)
    profile.varint(_P_TIME, time_nanos).varint(_P_DURATION, duration_nanos)
    profile.message(_P_PERIOD_TYPE, period_type).varint(_P_PERIOD, data.interval_ns)
    profile.varint(_P_DEFAULT_TYPE, default_type)
    return profile.done()


class _Tables:
    """A profile flattened into the integer tables both sample encoders take
    (the arguments of ``ringprof._sampler.pprof_samples``, in order)."""

    __slots__ = ("args", "functions")

    def __init__(self, args: tuple[Any, ...], functions: list[Frame]) -> None:
        self.args = args
        self.functions = functions  # function index -> a frame of that function


def _tables(data: ProfileData, strings: _Strings, wall: bool) -> _Tables:
    """The profile as integer tables, with the label fields of every thread
    and label set encoded (their strings interned, in first-use order)."""
    function_index: dict[tuple[str, int, str], int] = {}
    functions: list[Frame] = []
    frame_function = array.array("i")
    frame_line = array.array("q")
    for i, frame in enumerate(data.frames):
        if not i & 255:
            tick()
        key = frame.function_key
        index = function_index.get(key)
        if index is None:
            index = function_index[key] = len(functions)
            functions.append(frame)
        frame_function.append(index)
        frame_line.append(frame.line)
    stack_start = array.array("I", [0])
    stack_frames = array.array("i")
    for i, stack in enumerate(data.stacks):
        if not i & 255:
            tick()
        stack_frames.extend(stack)
        stack_start.append(len(stack_frames))
    k_tid, k_tname = strings("thread id"), strings("thread name")
    thread_ids = array.array("q", dict.fromkeys(data.thread))  # first-appearance order
    thread_start, thread_fields = array.array("I", [0]), bytearray()
    for tid in thread_ids:
        thread_fields += _Message().message(3, _Message().varint(1, k_tid).varint(3, tid)).done()
        tname = data.threads.get(tid)
        if tname:
            thread_fields += _Message().message(3, _Message().varint(1, k_tname).varint(2, strings(tname))).done()
        thread_start.append(len(thread_fields))
    label_start, label_fields = array.array("I", [0]), bytearray()
    used_sets = set(data.labels)
    for lset, labels in enumerate(data.label_sets):
        if lset in used_sets:
            for name, value in sorted(labels.items()):
                label_fields += _Message().message(3, _Message().varint(1, strings(name))
                                                   .varint(2, strings(value))).done()
        label_start.append(len(label_fields))
    args = (data.stack, data.thread, data.labels, data.weight, data.cpu_ns, data.interval_ns, wall,
            stack_start, stack_frames, frame_function, frame_line, len(functions),
            thread_ids, thread_start, bytes(thread_fields), label_start, bytes(label_fields))
    return _Tables(args, functions)


def _encode_samples(tables: _Tables) -> tuple[bytes, bytes, list[int]]:
    """The Sample and Location fields and the function indexes used: in C
    without the GIL (``csrc/pprof.h``), or in Python where the native core
    cannot be loaded."""
    from ringprof import _native

    try:
        native = _native.load()
    except _native.SamplingUnavailable:
        return _python_samples(tables)
    samples, locations, used = native.pprof_samples(*tables.args)
    return samples, locations, used


def _python_samples(tables: _Tables) -> tuple[bytes, bytes, list[int]]:
    """What ``ringprof._sampler.pprof_samples`` returns, in Python: the Sample
    and Location fields and the function indexes used, in id order.  Samples
    with equal stack, thread and label set are summed, in first-appearance
    order; locations and functions are numbered in first use."""
    (stack, thread, labels, weight, cpu_ns, interval_ns, wall, stack_start, stack_frames, frame_function,
     frame_line, _nfunctions, thread_ids, thread_start, thread_fields, label_start, label_fields) = tables.args
    agg: dict[tuple[int, int, int], list[int]] = {}
    for i, (sid, tid, lid, w, cpu) in enumerate(zip(stack.tolist(), thread.tolist(), labels.tolist(),
                                                    weight.tolist(), cpu_ns.tolist(), strict=True)):
        if not i & 1023:
            tick()
        if w <= 0:
            continue
        vals = agg.setdefault((sid, tid, lid), [0, 0, 0])
        vals[0] += w
        vals[1] += w * interval_ns
        vals[2] += cpu
    thread_at = {tid: i for i, tid in enumerate(thread_ids)}
    location_of: dict[int, bytes] = {}
    function_of: dict[int, int] = {}
    used: list[int] = []
    locations = _Message()
    stack_field: dict[int, bytes] = {}

    def location(frame: int) -> bytes:
        fn = frame_function[frame]
        fid = function_of.get(fn)
        if fid is None:
            used.append(fn)
            fid = function_of[fn] = len(used)
        lid = len(location_of) + 1
        line = _Message().varint(1, fid).varint(2, frame_line[frame])
        locations.message(_P_LOCATION, _Message().varint(1, lid).varint(2, 1).message(4, line))
        encoded = location_of[frame] = _varint(lid)
        return encoded

    def locations_of(sid: int) -> bytes:
        ids = [location_of[f] if f in location_of else location(f)
               for f in reversed(stack_frames[stack_start[sid]:stack_start[sid + 1]])]  # leaf first
        field = stack_field[sid] = _Message().delimited(1, b"".join(ids)).done()
        return field

    samples = _Message()
    for i, ((sid, tid, lid), (w, ns, cpu)) in enumerate(agg.items()):
        if not i & 31:
            tick()
        t = thread_at[tid]
        samples.delimited(_P_SAMPLE, b"".join((
            stack_field[sid] if sid in stack_field else locations_of(sid),
            _Message().packed(2, [w, ns, cpu] if wall else [w, ns]).done(),
            thread_fields[thread_start[t]:thread_start[t + 1]],
            label_fields[label_start[lid]:label_start[lid + 1]],
        )), always=True)
    return samples.done(), locations.done(), used


def _system_name(frame: Frame) -> str:
    """A name that always differs from ``frame.name``; see the module docstring."""
    return frame.label() if frame.filename else f"ringprof:{frame.name}"


def _mapping_name(data: ProfileData) -> str:
    argv = data.meta.get("argv")
    if isinstance(argv, list) and argv:
        return str(argv[0])
    return "python"


def render(data: ProfileData) -> bytes:
    """gzip-compressed ``Profile`` bytes, as ``go tool pprof`` and Pyroscope read them."""
    # Level 1, as Go's runtime/pprof writes: a window costs half the CPU of
    # level 6 for about 10 % more bytes.
    return gzip.compress(encode(data), compresslevel=1, mtime=0)


# ---------------------------------------------------------------------- decoding
def _ints(value: int | bytes, signed: bool = True) -> list[int]:
    return protowire.ints(value, signed)


def _int(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise ValueError("expected a scalar field")
    return protowire.signed(value)


def _sub(value: int | bytes) -> dict[int, list[int | bytes]]:
    if isinstance(value, int):
        raise ValueError("expected a message field")
    out: dict[int, list[int | bytes]] = {}
    for field, _wire, v in _fields(value):
        out.setdefault(field, []).append(v)
    return out


def _one(msg: dict[int, list[int | bytes]], field: int) -> int:
    values = msg.get(field)
    return _int(values[-1]) if values else 0


def decode(data: bytes) -> dict[str, Any]:
    """Parse a (gzipped or raw) pprof ``Profile`` into plain Python data.

    Strings are resolved through the string table. Keys follow profile.proto's
    field names; samples have ``location_ids`` (leaf first), ``values``,
    ``labels`` (key -> list of str) and ``num_labels`` (key -> list of int).
    """
    try:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError) as exc:
        raise ValueError(f"not a pprof profile: bad gzip data ({exc})") from None
    top: dict[int, list[tuple[int, int | bytes]]] = {}
    for field, wire, value in _fields(raw):
        top.setdefault(field, []).append((wire, value))
    strings = []
    for _wire, value in top.get(_P_STRINGS, []):
        if isinstance(value, int):
            raise ValueError("string table entry is not a string")
        strings.append(value.decode("utf-8"))

    def s(index: int) -> str:
        if not 0 <= index < len(strings):
            raise ValueError(f"string index {index} out of range")
        return strings[index]

    def value_type(value: int | bytes) -> dict[str, str]:
        msg = _sub(value)
        return {"type": s(_one(msg, 1)), "unit": s(_one(msg, 2))}

    samples = []
    for _wire, value in top.get(_P_SAMPLE, []):
        msg = _sub(value)
        labels: dict[str, list[str]] = {}
        num_labels: dict[str, list[int]] = {}
        for lv in msg.get(3, []):
            label = _sub(lv)
            key = s(_one(label, 1))
            if 2 in label:
                labels.setdefault(key, []).append(s(_one(label, 2)))
            else:
                num_labels.setdefault(key, []).append(_one(label, 3))
        samples.append({
            "location_ids": [i for v in msg.get(1, []) for i in _ints(v, signed=False)],
            "values": [i for v in msg.get(2, []) for i in _ints(v)],
            "labels": labels,
            "num_labels": num_labels,
        })
    mappings = []
    for _wire, value in top.get(_P_MAPPING, []):
        msg = _sub(value)
        mappings.append({
            "id": _one(msg, 1), "memory_start": _one(msg, 2), "memory_limit": _one(msg, 3),
            "file_offset": _one(msg, 4), "filename": s(_one(msg, 5)), "build_id": s(_one(msg, 6)),
            "has_functions": bool(_one(msg, 7)), "has_filenames": bool(_one(msg, 8)),
            "has_line_numbers": bool(_one(msg, 9)), "has_inline_frames": bool(_one(msg, 10)),
        })
    locations = []
    for _wire, value in top.get(_P_LOCATION, []):
        msg = _sub(value)
        lines = []
        for lv in msg.get(4, []):
            line = _sub(lv)
            lines.append({"function_id": _one(line, 1), "line": _one(line, 2)})
        locations.append({"id": _one(msg, 1), "mapping_id": _one(msg, 2), "address": _one(msg, 3),
                          "lines": lines, "is_folded": bool(_one(msg, 5))})
    functions = []
    for _wire, value in top.get(_P_FUNCTION, []):
        msg = _sub(value)
        functions.append({"id": _one(msg, 1), "name": s(_one(msg, 2)),
                          "system_name": s(_one(msg, 3)), "filename": s(_one(msg, 4)),
                          "start_line": _one(msg, 5)})

    def scalar(field: int) -> int:
        values = top.get(field)
        return _int(values[-1][1]) if values else 0

    period_type = top.get(_P_PERIOD_TYPE)
    return {
        "sample_type": [value_type(v) for _w, v in top.get(_P_SAMPLE_TYPE, [])],
        "samples": samples,
        "mappings": mappings,
        "locations": locations,
        "functions": functions,
        "string_table": strings,
        "drop_frames": s(scalar(_P_DROP)),
        "keep_frames": s(scalar(_P_KEEP)),
        "time_nanos": scalar(_P_TIME),
        "duration_nanos": scalar(_P_DURATION),
        "period_type": value_type(period_type[-1][1]) if period_type else {"type": "", "unit": ""},
        "period": scalar(_P_PERIOD),
        "comments": [s(i) for _w, v in top.get(_P_COMMENT, []) for i in _ints(v)],
        "default_sample_type": s(scalar(_P_DEFAULT_TYPE)),
    }


def sample_stacks(profile: dict[str, Any]) -> list[tuple[list[str], list[int]]]:
    """(function names leaf first, values) per sample of a :func:`decode` result.

    A convenience for tests and sinks; inlined lines (several per location) are
    listed innermost first, as pprof stores them.
    """
    names = {f["id"]: f["name"] for f in profile["functions"]}
    locs = {loc["id"]: [names[line["function_id"]] for line in loc["lines"]]
            for loc in profile["locations"]}
    return [([n for lid in sample["location_ids"] for n in locs[lid]], list(sample["values"]))
            for sample in profile["samples"]]
