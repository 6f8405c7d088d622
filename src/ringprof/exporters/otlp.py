"""OpenTelemetry profiles (OTLP, ``v1development``): binary protobuf and OTLP/JSON.

Follows ``opentelemetry/proto/profiles/v1development/profiles.proto`` as the
``opentelemetry-proto`` 1.45 package ships it.  One ``ProfilesData`` holds the
shared ``dictionary`` and one resource with one scope (``ringprof``) whose
profiles describe the recording.  The same bytes are a valid
``ExportProfilesServiceRequest`` (identical fields), which is what the OTLP
sink posts to ``/v1development/profiles``.

What goes in:

* **dictionary**: every table starts with its zero entry (``""``, ``Mapping{}``,
  ``Location{}``, ``Function{}``, ``Link{}``, ``KeyValueAndUnit{}``,
  ``Stack{}``), as the schema requires.  One Function per (name, file, first
  line), one Location per sampled line (mapping 0: Python frames have no
  addresses; attribute ``profile.frame.type=cpython``), one Stack per sampled
  stack (locations **leaf first**), one Link per (trace, span);
* **profiles**: the first has sample type ``samples/count`` and period type
  ``cpu/nanoseconds`` (``wall/nanoseconds`` in wall mode) with the interval as
  period, so time is ``count * period``, the same number the other exporters
  report (this is also the shape the OpenTelemetry eBPF profiler sends and the
  one Pyroscope maps to ``process_cpu``).  Each Sample carries only
  ``timestamps_unix_nano``, one per timer expiration (a sample of weight 3
  repeats its timestamp 3 times), so its count is its weight; the schema says
  to count each timestamp as 1 when ``values`` is empty.  Values per
  observation (``values: [2, 3]``) would say the same, but receivers that
  convert to pprof (Pyroscope) reject Samples with more values than sample
  types.  In wall mode a second profile ``cpu/nanoseconds`` carries the
  measured CPU time per sample identity as one aggregated value;
* **samples** are keyed by (stack, attributes, link) as the schema defines a
  Sample's identity: attributes ``thread.id``, ``thread.name`` and every label
  of the sample's label set, except ``trace_id``/``span_id`` (set by
  :mod:`ringprof.integrations.otel`), which become the sample's Link instead;
* **resource**: ``service.name`` and the attributes of ``OTEL_SERVICE_NAME`` /
  ``OTEL_RESOURCE_ATTRIBUTES`` (which win, as in the OpenTelemetry SDKs), over
  the recording's own: its service, its static labels (``RINGPROF_LABELS``,
  continuous mode's ``tags``), ``process.pid``,
  ``process.runtime.name/version/description`` and, when the profile comes
  from this very process, ``process.executable.name/path``.

Timestamps: samples carry monotonic-clock times.  For a profile recorded by
this process they are converted with the current offset between the
real-time and monotonic clocks (exact); for a profile loaded from a file (or
from another process) the first sample is placed at the recording's start
time, so relative times are exact and absolute ones approximate.  Pass
``clock_offset_ns`` to set the offset explicitly.

JSON follows the OTLP/JSON encoding rules: lowerCamelCase keys, 64-bit
integers as decimal strings, ``traceId``/``spanId`` as hex (not base64),
default values omitted.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .protowire import Message

if TYPE_CHECKING:
    from ringprof.model import Frame, ProfileData

EXTENSIONS: tuple[str, ...] = (".otlp.pb",)

#: Scope name in every export.
SCOPE_NAME = "ringprof"

# ---------------------------------------------------------------------- schema
# Message name -> (field name, number, kind, repeated).  Kind is a scalar type
# or the name of another message.  Only the fields ringprof writes are listed;
# numbers and types are those of opentelemetry-proto 1.45 (tests compare them
# with the real descriptors).
_SCALARS = frozenset({"int32", "int64", "uint32", "uint64", "fixed64", "bool", "string", "bytes"})
SCHEMA: dict[str, tuple[tuple[str, int, str, bool], ...]] = {
    "ProfilesData": (("resource_profiles", 1, "ResourceProfiles", True),
                     ("dictionary", 2, "ProfilesDictionary", False)),
    "ProfilesDictionary": (("mapping_table", 1, "Mapping", True), ("location_table", 2, "Location", True),
                           ("function_table", 3, "Function", True), ("link_table", 4, "Link", True),
                           ("string_table", 5, "string", True), ("attribute_table", 6, "KeyValueAndUnit", True),
                           ("stack_table", 7, "Stack", True)),
    "ResourceProfiles": (("resource", 1, "Resource", False), ("scope_profiles", 2, "ScopeProfiles", True),
                         ("schema_url", 3, "string", False)),
    "Resource": (("attributes", 1, "KeyValue", True), ("dropped_attributes_count", 2, "uint32", False)),
    "KeyValue": (("key", 1, "string", False), ("value", 2, "AnyValue", False)),
    "AnyValue": (("string_value", 1, "string", False), ("bool_value", 2, "bool", False),
                 ("int_value", 3, "int64", False), ("array_value", 5, "ArrayValue", False),
                 ("bytes_value", 7, "bytes", False)),
    "ArrayValue": (("values", 1, "AnyValue", True),),
    "ScopeProfiles": (("scope", 1, "InstrumentationScope", False), ("profiles", 2, "Profile", True),
                      ("schema_url", 3, "string", False)),
    "InstrumentationScope": (("name", 1, "string", False), ("version", 2, "string", False)),
    "Profile": (("sample_type", 1, "ValueType", False), ("samples", 2, "Sample", True),
                ("time_unix_nano", 3, "fixed64", False), ("duration_nano", 4, "uint64", False),
                ("period_type", 5, "ValueType", False), ("period", 6, "int64", False),
                ("dropped_attributes_count", 8, "uint32", False), ("attribute_indices", 11, "int32", True)),
    "ValueType": (("type_strindex", 1, "int32", False), ("unit_strindex", 2, "int32", False)),
    "Sample": (("stack_index", 1, "int32", False), ("attribute_indices", 2, "int32", True),
               ("link_index", 3, "int32", False), ("values", 4, "int64", True),
               ("timestamps_unix_nano", 5, "fixed64", True)),
    "Mapping": (("memory_start", 1, "uint64", False), ("memory_limit", 2, "uint64", False),
                ("file_offset", 3, "uint64", False), ("filename_strindex", 4, "int32", False),
                ("attribute_indices", 5, "int32", True)),
    "Stack": (("location_indices", 1, "int32", True),),
    "Location": (("mapping_index", 1, "int32", False), ("address", 2, "uint64", False),
                 ("lines", 3, "Line", True), ("attribute_indices", 4, "int32", True)),
    "Line": (("function_index", 1, "int32", False), ("line", 2, "int64", False), ("column", 3, "int64", False)),
    "Function": (("name_strindex", 1, "int32", False), ("system_name_strindex", 2, "int32", False),
                 ("filename_strindex", 3, "int32", False), ("start_line", 4, "int64", False)),
    "KeyValueAndUnit": (("key_strindex", 1, "int32", False), ("value", 2, "AnyValue", False),
                        ("unit_strindex", 3, "int32", False)),
    "Link": (("trace_id", 1, "bytes", False), ("span_id", 2, "bytes", False)),
}
#: Messages whose fields form a ``oneof``: a member that is set is written even when zero.
_ONEOF = frozenset({"AnyValue"})
#: bytes fields that OTLP/JSON writes as hex instead of base64.
_HEX_FIELDS = frozenset({"trace_id", "span_id"})


def encode_message(kind: str, msg: Mapping[str, Any]) -> bytes:
    """Protobuf bytes of ``msg`` (a dict keyed by field names) as message ``kind``."""
    out = Message()
    oneof = kind in _ONEOF
    for name, number, ftype, repeated in SCHEMA[kind]:
        if name not in msg:
            continue
        value = msg[name]
        if ftype not in _SCALARS:
            for item in (value if repeated else [value]):
                out.delimited(number, encode_message(ftype, item), always=True)
        elif repeated:
            if ftype == "string":
                for text in value:
                    out.string(number, text, always=True)
            elif ftype == "fixed64":
                out.packed_fixed64(number, value)
            else:
                out.packed(number, value)
        elif ftype in ("string", "bytes"):
            raw = value.encode("utf-8", "backslashreplace") if ftype == "string" else bytes(value)
            out.delimited(number, raw, always=oneof)
        elif ftype == "fixed64":
            out.fixed64(number, int(value))
        else:
            out.varint(number, int(value), always=oneof)
    return out.done()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _json_scalar(ftype: str, name: str, value: Any) -> Any:
    if ftype in ("int64", "uint64", "fixed64"):
        return str(int(value))
    if ftype == "bytes":
        raw = bytes(value)
        return raw.hex() if name in _HEX_FIELDS else base64.b64encode(raw).decode("ascii")
    if ftype == "bool":
        return bool(value)
    if ftype == "string":
        return str(value)
    return int(value)


def json_message(kind: str, msg: Mapping[str, Any]) -> dict[str, Any]:
    """``msg`` in the OTLP/JSON encoding (a JSON-serialisable dict)."""
    out: dict[str, Any] = {}
    oneof = kind in _ONEOF
    for name, _number, ftype, repeated in SCHEMA[kind]:
        if name not in msg:
            continue
        value = msg[name]
        if repeated:
            if not value:
                continue
            if ftype in _SCALARS:
                out[_camel(name)] = [_json_scalar(ftype, name, v) for v in value]
            else:
                out[_camel(name)] = [json_message(ftype, v) for v in value]
        elif ftype not in _SCALARS:
            out[_camel(name)] = json_message(ftype, value)
        elif value or oneof:
            out[_camel(name)] = _json_scalar(ftype, name, value)
    return out


# ---------------------------------------------------------------------- environment
def parse_key_values(text: str) -> dict[str, str]:
    """``key1=value1,key2=value2`` (``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_HEADERS``).

    Keys and values are trimmed and percent-decoded, as the OpenTelemetry
    SDKs do; entries without ``=`` or with an empty key are skipped.
    """
    out: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = unquote(key.strip())
        if not sep or not key:
            continue
        out[key] = unquote(value.strip())
    return out


def environment_resource(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Resource attributes set by the environment, as OpenTelemetry SDKs read them."""
    env = os.environ if env is None else env
    attrs = parse_key_values(env.get("OTEL_RESOURCE_ATTRIBUTES", ""))
    service = env.get("OTEL_SERVICE_NAME", "").strip()
    if service:
        attrs["service.name"] = service
    return attrs


def recording_resource(data: ProfileData) -> dict[str, Any]:
    """Resource attributes the recording itself tells (service, process, runtime)."""
    meta = data.meta
    attrs: dict[str, Any] = {}
    pid = meta.get("pid")
    own = pid is not None and int(pid) == os.getpid()
    if own and sys.executable:
        attrs["process.executable.name"] = os.path.basename(sys.executable)
        attrs["process.executable.path"] = sys.executable
    service = meta.get("service")
    if service:
        attrs["service.name"] = str(service)
    else:
        attrs["service.name"] = f"unknown_service:{attrs.get('process.executable.name') or 'python'}"
    if pid is not None:
        attrs["process.pid"] = int(pid)
    attrs["process.runtime.name"] = "cpython"
    python = meta.get("python")
    if python:
        attrs["process.runtime.version"] = str(python).split()[0]
        attrs["process.runtime.description"] = str(python)
    for key, value in sorted((meta.get("tags") or {}).items()):
        attrs.setdefault(str(key), str(value))
    return attrs


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"bool_value": value}
    if isinstance(value, int):
        return {"int_value": value}
    if isinstance(value, bytes):
        return {"bytes_value": value}
    if isinstance(value, list | tuple):
        return {"array_value": {"values": [_any_value(v) for v in value]}}
    return {"string_value": str(value)}


# ---------------------------------------------------------------------- building
class _Table:
    """A dictionary table: interned entries, index 0 the zero value."""

    def __init__(self, zero: Any, zero_key: Any = None) -> None:
        self.items: list[Any] = [zero]
        self._index: dict[Any, int] = {} if zero_key is None else {zero_key: 0}

    def add(self, key: Any, make: Any) -> int:
        idx = self._index.get(key)
        if idx is None:
            idx = self._index[key] = len(self.items)
            self.items.append(make() if callable(make) else make)
        return idx


def _is_hex(text: str, length: int) -> bool:
    if len(text) != length:
        return False
    try:
        return int(text, 16) != 0
    except ValueError:
        return False


def _span_link(labels: Mapping[str, str]) -> tuple[str, str] | None:
    trace, span = labels.get("trace_id", ""), labels.get("span_id", "")
    if _is_hex(trace, 32) and _is_hex(span, 16):
        return trace.lower(), span.lower()
    return None


def _window(data: ProfileData) -> tuple[int | None, int | None]:
    """(start, end) of the recording in unix nanoseconds, when the metadata tells."""
    meta = data.meta
    start = meta.get("window_start") or meta.get("start_time")
    if start is None:
        return None, None
    start_ns = round(float(start) * 1e9)
    end = meta.get("window_end")
    if end is not None:
        return start_ns, max(start_ns, round(float(end) * 1e9))
    duration = meta.get("duration")
    return start_ns, (start_ns + round(float(duration) * 1e9)) if duration is not None else None


def _clock_offset(data: ProfileData, times: Sequence[int], start_ns: int | None, end_ns: int | None) -> int:
    """Offset from the samples' monotonic clock to unix time (see the module docstring)."""
    if not times:
        return 0
    first, last = min(times), max(times)
    pid = data.meta.get("pid")
    if pid is not None and int(pid) == os.getpid():
        offset = time.time_ns() - time.monotonic_ns()
        # The same pid in another boot (a saved file) would give nonsense: check it.
        lo = (start_ns if start_ns is not None else 0) - 1_000_000_000
        hi = (end_ns if end_ns is not None else time.time_ns()) + 60_000_000_000
        if lo <= first + offset and last + offset <= hi:
            return offset
    if start_ns is None:
        return 0
    return start_ns - first


def build(data: ProfileData, *, resource: Mapping[str, Any] | None = None,
          clock_offset_ns: int | None = None, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``ProfilesData`` message of ``data`` as a dict keyed by field names.

    ``resource``: extra resource attributes (below the environment's, above
    the recording's own); ``env``: the environment to read ``OTEL_*`` from
    (default :data:`os.environ`).
    """
    strings = _Table("", zero_key="")  # "" is always index 0

    def s(text: str) -> int:
        return strings.add(text, text)

    attributes = _Table({})
    functions = _Table({})
    locations = _Table({})
    stacks = _Table({})
    links = _Table({})

    def attribute(key: str, value: Any) -> int:
        return attributes.add((key, type(value).__name__, value),
                              lambda: {"key_strindex": s(key), "value": _any_value(value)})

    frame_type = attribute("profile.frame.type", "cpython")

    def function_index(frame: Frame) -> int:
        return functions.add(frame.function_key, lambda: {
            "name_strindex": s(frame.name), "filename_strindex": s(frame.filename),
            "start_line": frame.firstlineno})

    def location_index(frame: Frame) -> int:
        return locations.add(frame, lambda: {
            "lines": [{"function_index": function_index(frame), "line": frame.line}],
            "attribute_indices": [frame_type]})

    stack_cache: dict[int, int] = {}

    def stack_index(sid: int) -> int:
        idx = stack_cache.get(sid)
        if idx is None:
            leaf_first = tuple(location_index(data.frames[f]) for f in reversed(data.stacks[sid]))
            idx = stack_cache[sid] = stacks.add(leaf_first, lambda: {"location_indices": list(leaf_first)})
        return idx

    wall = data.meta.get("mode") == "wall"
    interval = data.interval_ns
    start_ns, end_ns = _window(data)

    # Group observations by sample identity (stack, thread, label set), in first-seen order.
    groups: dict[tuple[int, int, int], list[tuple[int, int, int]]] = {}
    all_times: list[int] = []
    for sid, tid, lid, t, w, cpu in zip(data.stack.tolist(), data.thread.tolist(), data.labels.tolist(),
                                        data.time_ns.tolist(), data.weight.tolist(), data.cpu_ns.tolist(),
                                        strict=True):
        if w <= 0:
            continue
        groups.setdefault((sid, tid, lid), []).append((t, w, cpu))
        all_times.append(t)
    offset = clock_offset_ns if clock_offset_ns is not None else _clock_offset(data, all_times, start_ns, end_ns)

    main_samples: list[dict[str, Any]] = []
    cpu_samples: list[dict[str, Any]] = []
    for (sid, tid, lid), observations in groups.items():
        labels = data.label_sets[lid]
        link = _span_link(labels)
        attrs = [attribute("thread.id", int(tid))]
        tname = data.threads.get(tid)
        if tname:
            attrs.append(attribute("thread.name", str(tname)))
        for key, value in sorted(labels.items()):
            if (link is not None and key in ("trace_id", "span_id")) or key in ("thread.id", "thread.name", ""):
                continue  # keys are unique (the thread's own attributes win) and never empty
            attrs.append(attribute(str(key), str(value)))
        sample: dict[str, Any] = {"stack_index": stack_index(sid), "attribute_indices": attrs}
        if link is not None:
            trace, span = link
            sample["link_index"] = links.add(link, lambda t=trace, sp=span: {
                "trace_id": bytes.fromhex(t), "span_id": bytes.fromhex(sp)})
        observations.sort()
        main_samples.append({**sample, "timestamps_unix_nano": [
            t + offset for t, w, _cpu in observations for _ in range(w)]})
        if wall:
            cpu_total = sum(cpu for _t, _w, cpu in observations)
            if cpu_total > 0:
                cpu_samples.append({**sample, "values": [cpu_total]})

    stamps = [t + offset for t in all_times]
    time_ns = start_ns if start_ns is not None else (min(stamps) if stamps else 0)
    if stamps:
        time_ns = min(time_ns, min(stamps))
    end = end_ns if end_ns is not None else time_ns
    if stamps:
        end = max(end, max(stamps) + 1)  # timestamps fall in [time, time + duration)

    period_type = {"type_strindex": s("wall" if wall else "cpu"), "unit_strindex": s("nanoseconds")}
    common = {"time_unix_nano": time_ns, "duration_nano": end - time_ns, "period_type": period_type,
              "period": interval}
    profiles = [{"sample_type": {"type_strindex": s("samples"), "unit_strindex": s("count")},
                 "samples": main_samples, **common}]
    if wall:
        profiles.append({"sample_type": {"type_strindex": s("cpu"), "unit_strindex": s("nanoseconds")},
                         "samples": cpu_samples, **common})

    attrs_by_key: dict[str, Any] = {**recording_resource(data), **dict(resource or {}), **environment_resource(env)}
    from ringprof import __version__

    return {
        "resource_profiles": [{
            "resource": {"attributes": [{"key": k, "value": _any_value(v)} for k, v in attrs_by_key.items()]},
            "scope_profiles": [{"scope": {"name": SCOPE_NAME, "version": __version__}, "profiles": profiles}],
        }],
        "dictionary": {
            "mapping_table": [{}],
            "location_table": locations.items,
            "function_table": functions.items,
            "link_table": links.items,
            "string_table": strings.items,
            "attribute_table": attributes.items,
            "stack_table": stacks.items,
        },
    }


def encode(data: ProfileData, **options: Any) -> bytes:
    """``ProfilesData`` protobuf bytes (also a valid ``ExportProfilesServiceRequest``)."""
    return encode_message("ProfilesData", build(data, **options))


def to_json(data: ProfileData, **options: Any) -> dict[str, Any]:
    """``ProfilesData`` in the OTLP/JSON encoding, as plain Python data."""
    return json_message("ProfilesData", build(data, **options))


def render(data: ProfileData, **options: Any) -> bytes:
    """Binary OTLP (``.otlp.pb``). Options: ``resource``, ``clock_offset_ns``, ``env`` (see :func:`build`)."""
    return encode(data, **options)


def render_json(data: ProfileData, **options: Any) -> bytes:
    """OTLP/JSON (``.otlp.json``), UTF-8."""
    return json.dumps(to_json(data, **options), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
