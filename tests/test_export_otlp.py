"""OTLP profiles export, decoded with the real opentelemetry-proto classes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.proto.profiles.v1development.profiles_pb2",
                    reason="opentelemetry-proto is not installed (test extra)")

from common_helpers import burn_wall
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelfactory import INTERVAL_NS, MAIN_TID, TOTAL_WEIGHT, WORKER_TID, make_model
from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2
from opentelemetry.proto.profiles.v1development import profiles_pb2
from otlp_helpers import (
    check_indices,
    decode,
    model_weight_by_stack,
    profiles,
    resource,
    sample_attrs,
    stack_names,
    string,
    weight_by_stack,
)

import ringprof
from ringprof import exporters
from ringprof.exporters import otlp
from ringprof.model import Frame, ProfileData

REPO = Path(__file__).resolve().parents[1]
NO_ENV: dict[str, str] = {}


def test_binary_decodes_with_the_real_classes_and_every_index_is_in_range() -> None:
    data = make_model()
    raw = exporters.render(data, "otlp", env=NO_ENV)
    msg = decode(raw)
    check_indices(msg)
    # The same bytes are a valid collector request (identical fields).
    req = profiles_service_pb2.ExportProfilesServiceRequest.FromString(raw)
    assert req.SerializeToString(deterministic=True) == msg.SerializeToString(deterministic=True)

    (prof,) = profiles(msg)
    assert (string(msg, prof.sample_type.type_strindex), string(msg, prof.sample_type.unit_strindex)) == \
        ("samples", "count")
    assert (string(msg, prof.period_type.type_strindex), string(msg, prof.period_type.unit_strindex)) == \
        ("cpu", "nanoseconds")
    assert prof.period == INTERVAL_NS
    # Counts sum to the model's weights, per stack and in total; time = count * period.
    assert weight_by_stack(msg, prof) == model_weight_by_stack(data)
    total = sum(len(s.timestamps_unix_nano) for s in prof.samples)
    assert total == TOTAL_WEIGHT == data.total_weight()
    assert total * prof.period == int(data.sample_ns().sum())
    # Timestamps: relative times kept exactly (first sample anchored at the recording start).
    start_ns = round(data.meta["start_time"] * 1e9)
    assert prof.time_unix_nano == start_ns
    assert prof.duration_nano >= round(data.meta["duration"] * 1e9)
    stamps = sorted(t for s in prof.samples for t in s.timestamps_unix_nano)
    expected = sorted(start_ns + t for t, w in zip(data.time_ns.tolist(), data.weight.tolist(), strict=True)
                      for _ in range(w))
    assert stamps == expected


def test_thread_and_label_attributes() -> None:
    data = make_model()
    msg = decode(exporters.render(data, "otlp", env=NO_ENV))
    (prof,) = profiles(msg)
    by_stack = {stack_names(msg, s): sample_attrs(msg, s) for s in prof.samples}
    assert by_stack[("<module>", "main", "Helper.run")] == {"thread.id": MAIN_TID, "thread.name": "MainThread",
                                                             "endpoint": "/a"}
    assert by_stack[("idle",)] == {"thread.id": WORKER_TID, "thread.name": "worker"}
    # Frames: file, first line and sampled line survive; locations are typed as CPython frames.
    d = msg.dictionary
    lines = {}
    for loc in d.location_table[1:]:
        fn = d.function_table[loc.lines[0].function_index]
        lines.setdefault(string(msg, fn.name_strindex), set()).add(
            (string(msg, fn.filename_strindex), fn.start_line, loc.lines[0].line))
        assert [string(msg, d.attribute_table[i].key_strindex) for i in loc.attribute_indices] == \
            ["profile.frame.type"]
    assert lines["work"] == {("lib.py", 5, 7), ("lib.py", 5, 8)}
    assert lines["<truncated>"] == {("", 0, 0)}


def test_wall_mode_has_a_wall_profile_and_a_measured_cpu_profile() -> None:
    data = make_model("wall")
    msg = decode(exporters.render(data, "otlp", env=NO_ENV))
    check_indices(msg)
    wall, cpu = profiles(msg)
    assert string(msg, wall.period_type.type_strindex) == "wall"
    assert string(msg, cpu.sample_type.type_strindex) == "cpu"
    assert string(msg, cpu.sample_type.unit_strindex) == "nanoseconds"
    assert weight_by_stack(msg, wall) == model_weight_by_stack(data)
    assert sum(v for s in cpu.samples for v in s.values) == int(data.cpu_ns.sum())
    assert all(not s.timestamps_unix_nano and len(s.values) == 1 for s in cpu.samples)


def test_resource_attributes_from_environment_and_recording() -> None:
    data = make_model()
    data.meta["service"] = "checkout"
    data.meta["tags"] = {"env": "prod"}
    env = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=staging, team=pay%2Cments,broken,=x,"
                                       "service.name=from-attrs",
           "OTEL_SERVICE_NAME": "from-env"}
    attrs = resource(decode(exporters.render(data, "otlp", env=env)))
    assert attrs["service.name"] == "from-env"  # OTEL_SERVICE_NAME wins over OTEL_RESOURCE_ATTRIBUTES
    assert attrs["deployment.environment"] == "staging"
    assert attrs["team"] == "pay,ments"  # percent-decoded
    assert attrs["env"] == "prod"
    assert attrs["process.pid"] == 4242
    assert attrs["process.runtime.name"] == "cpython"
    assert attrs["process.runtime.version"] == "3.11.7"
    assert "process.executable.path" not in attrs  # another process's profile: not ours to tell
    env2 = {"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs"}
    assert resource(decode(exporters.render(data, "otlp", env=env2)))["service.name"] == "from-attrs"
    assert resource(decode(exporters.render(data, "otlp", env=NO_ENV)))["service.name"] == "checkout"


def test_json_is_the_same_message_in_the_otlp_json_encoding() -> None:
    data = make_model("wall")
    trace, span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    data.add_sample([Frame("handler", "app.py", 50, 51)], thread=MAIN_TID, time_ns=120_000_000,
                    labels={"trace_id": trace, "span_id": span})
    doc = json.loads(exporters.render(data, "otlp-json", env=NO_ENV, clock_offset_ns=10**18))
    links = doc["dictionary"]["linkTable"]
    assert links == [{}, {"traceId": trace, "spanId": span}]  # hex, not base64 (OTLP/JSON rule)
    sample = doc["resourceProfiles"][0]["scopeProfiles"][0]["profiles"][0]["samples"][0]
    assert isinstance(sample["timestampsUnixNano"][0], str)  # 64-bit integers as strings

    # Undo the OTLP/JSON hex rule, then the standard protobuf JSON parser must agree byte for byte.
    for link in links[1:]:
        link["traceId"] = base64.b64encode(bytes.fromhex(link["traceId"])).decode()
        link["spanId"] = base64.b64encode(bytes.fromhex(link["spanId"])).decode()
    from_json = json_format.ParseDict(doc, profiles_pb2.ProfilesData())
    from_binary = decode(exporters.render(data, "otlp", env=NO_ENV, clock_offset_ns=10**18))
    assert from_json == from_binary


def test_span_labels_become_links_not_attributes() -> None:
    data = ProfileData({"mode": "cpu", "interval": 0.01, "start_time": 1_700_000_000.0, "duration": 1.0})
    f = Frame("f", "a.py", 1, 2)
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    data.add_sample([f], thread=1, time_ns=1, labels={"trace_id": trace, "span_id": "00f067aa0ba902b7", "k": "v"})
    data.add_sample([f], thread=1, time_ns=2, labels={"trace_id": trace, "span_id": "00f067aa0ba902b8"})
    data.add_sample([f], thread=1, time_ns=3, labels={"trace_id": "not-hex", "span_id": "zz"})
    msg = decode(exporters.render(data, "otlp", env=NO_ENV))
    check_indices(msg)
    (prof,) = profiles(msg)
    d = msg.dictionary
    got = []
    for s in prof.samples:
        link = d.link_table[s.link_index]
        got.append((link.trace_id.hex(), link.span_id.hex(), sample_attrs(msg, s)))
    assert got == [
        (trace, "00f067aa0ba902b7", {"thread.id": 1, "k": "v"}),
        (trace, "00f067aa0ba902b8", {"thread.id": 1}),
        ("", "", {"thread.id": 1, "trace_id": "not-hex", "span_id": "zz"}),  # malformed ids stay labels
    ]


def test_labels_never_duplicate_the_thread_attributes() -> None:
    data = ProfileData({"mode": "cpu", "interval": 0.01, "start_time": 1_700_000_000.0, "duration": 1.0})
    data.threads = {5: "worker-5"}
    data.add_sample([Frame("f", "a.py", 1, 2)], thread=5, time_ns=1, labels={"thread.name": "mine", "x": "1"})
    msg = decode(exporters.render(data, "otlp", env=NO_ENV))
    check_indices(msg)  # keys unique per sample
    (sample,) = profiles(msg)[0].samples
    assert sample_attrs(msg, sample) == {"thread.id": 5, "thread.name": "worker-5", "x": "1"}


def test_empty_profile_and_heavy_samples() -> None:
    empty = ProfileData({"mode": "cpu", "interval": 0.01})
    msg = decode(exporters.render(empty, "otlp", env=NO_ENV))
    check_indices(msg)
    assert profiles(msg)[0].samples == []
    heavy = ProfileData({"mode": "cpu", "interval": 0.005, "start_time": 1_700_000_000.0, "duration": 1.0})
    heavy.add_sample([Frame("f", "a.py", 1, 2)], thread=9, time_ns=5_000, weight=4)
    heavy.add_sample([Frame("f", "a.py", 1, 2)], thread=9, time_ns=9_000, weight=0)  # dropped, as in pprof
    msg = decode(exporters.render(heavy, "otlp", env=NO_ENV))
    (sample,) = profiles(msg)[0].samples
    assert len(sample.timestamps_unix_nano) == 4 and len(set(sample.timestamps_unix_nano)) == 1


def test_schema_matches_the_real_descriptors() -> None:
    """Every field ringprof writes has the number and type opentelemetry-proto declares."""
    from google.protobuf.descriptor import FieldDescriptor as FD
    from opentelemetry.proto.common.v1 import common_pb2
    from opentelemetry.proto.resource.v1 import resource_pb2

    modules = (profiles_pb2, common_pb2, resource_pb2)
    types = {FD.TYPE_INT32: "int32", FD.TYPE_INT64: "int64", FD.TYPE_UINT32: "uint32", FD.TYPE_UINT64: "uint64",
             FD.TYPE_FIXED64: "fixed64", FD.TYPE_BOOL: "bool", FD.TYPE_STRING: "string", FD.TYPE_BYTES: "bytes"}
    for name, fields in otlp.SCHEMA.items():
        desc = next(m.DESCRIPTOR.message_types_by_name[name] for m in modules
                    if name in m.DESCRIPTOR.message_types_by_name)
        for fname, number, ftype, repeated in fields:
            fd = desc.fields_by_name[fname]
            assert fd.number == number, (name, fname)
            assert fd.is_repeated == repeated, (name, fname)
            kind = fd.message_type.name if fd.type == FD.TYPE_MESSAGE else types[fd.type]
            assert kind == ftype, (name, fname)


def test_live_profile_exports_with_exact_timestamps(tmp_path: Path) -> None:
    before = time.time_ns()
    prof = ringprof.Profile(interval=0.001)
    with prof:
        end = time.perf_counter() + 0.15
        while time.perf_counter() < end:
            sum(range(300))
    after = time.time_ns()
    out = tmp_path / "live.otlp.pb"
    prof.export(out, format="otlp")
    msg = decode(out.read_bytes())
    check_indices(msg)
    (p,) = profiles(msg)
    assert weight_by_stack(msg, p) == model_weight_by_stack(prof.data)
    stamps = [t for s in p.samples for t in s.timestamps_unix_nano]
    assert stamps and before <= min(stamps) and max(stamps) <= after
    attrs = resource(msg)
    assert attrs["process.pid"] == os.getpid()
    assert attrs["process.executable.path"] == sys.executable


def test_convert_cli_writes_both_encodings(tmp_path: Path) -> None:
    src = tmp_path / "in.ringprof"
    make_model().save(src)
    for name, check in (("out.otlp.pb", lambda raw: decode(raw)),
                        ("out.otlp.json", lambda raw: json_format.Parse(
                            raw, profiles_pb2.ProfilesData(), ignore_unknown_fields=False))):
        out = tmp_path / name
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        proc = subprocess.run([sys.executable, "-m", "ringprof", "convert", str(src), str(out)],
                              capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 0, proc.stderr
        msg = check(out.read_bytes())
        (prof,) = profiles(msg)
        assert sum(len(s.timestamps_unix_nano) for s in prof.samples) == TOTAL_WEIGHT


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_FRAME = st.builds(Frame, name=_TEXT, filename=_TEXT, firstlineno=st.integers(0, 2**31 - 1),
                   line=st.integers(0, 2**31 - 1))
_SAMPLE = st.tuples(st.lists(_FRAME, min_size=1, max_size=6), st.integers(1, 2**40), st.integers(0, 10**12),
                    st.integers(0, 5), st.dictionaries(_TEXT, _TEXT, max_size=3), st.integers(0, 10**9))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples=st.lists(_SAMPLE, max_size=12), wall=st.booleans())
def test_any_model_decodes_with_the_real_classes(samples, wall) -> None:
    """Random models (any names, labels, threads, weights): always valid OTLP with the model's weights."""
    data = ProfileData({"mode": "wall" if wall else "cpu", "interval": 0.01, "start_time": 1_700_000_000.0,
                        "duration": 5.0})
    for frames, tid, t, weight, labels, cpu in samples:
        data.add_sample(frames, thread=tid, time_ns=t, weight=weight, labels=labels, cpu_ns=cpu)
    for encoding in ("otlp", "otlp-json"):
        raw = exporters.render(data, encoding, env=NO_ENV)
        msg = decode(raw) if encoding == "otlp" else json_format.Parse(raw, profiles_pb2.ProfilesData())
        check_indices(msg)
        main = profiles(msg)[0]
        assert weight_by_stack(msg, main) == +model_weight_by_stack(data)
        if wall:
            assert sum(v for s in profiles(msg)[1].samples for v in s.values) == \
                sum(c for _f, _t, _ts, w, _l, c in samples if w > 0)


def test_surrogates_in_names_still_make_valid_utf8() -> None:
    data = ProfileData({"mode": "cpu", "interval": 0.01, "start_time": 1_700_000_000.0, "duration": 1.0})
    data.add_sample([Frame("f", "/tmp/\udcff.py", 1, 2)], thread=1, time_ns=1, labels={"k\udc80": "v"})
    msg = decode(exporters.render(data, "otlp", env=NO_ENV))  # the real parser rejects invalid UTF-8
    check_indices(msg)
    assert "/tmp/\\udcff.py" in msg.dictionary.string_table


def in_checkout(seconds: float) -> None:
    burn_wall(seconds)


def in_payment(seconds: float) -> None:
    burn_wall(seconds)


def test_files_carry_links_to_the_spans_of_a_real_tracer(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk is not installed (extra 'otel')")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from ringprof.integrations.otel import RingprofSpanProcessor

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(RingprofSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("test")
    prof = ringprof.Profile(interval=0.001)
    try:
        with prof:
            with tracer.start_as_current_span("checkout"):
                in_checkout(0.12)
                with tracer.start_as_current_span("payment"):
                    in_payment(0.12)
            burn_wall(0.03)
    finally:
        provider.shutdown()
    ids = {s.name: (s.get_span_context().trace_id.to_bytes(16, "big"), s.get_span_context().span_id.to_bytes(8, "big"))
           for s in spans.get_finished_spans()}
    for name in ("run.otlp.pb", "run.otlp.json"):
        out = tmp_path / name
        prof.export(out)
        raw = out.read_bytes()
        if name.endswith(".pb"):
            msg = decode(raw)
        else:
            doc = json.loads(raw)
            for link in doc["dictionary"].get("linkTable", [])[1:]:
                assert len(link["traceId"]) == 32 and len(link["spanId"]) == 16  # hex
                link["traceId"] = base64.b64encode(bytes.fromhex(link["traceId"])).decode()
                link["spanId"] = base64.b64encode(bytes.fromhex(link["spanId"])).decode()
            msg = json_format.ParseDict(doc, profiles_pb2.ProfilesData())
        check_indices(msg)
        (p,) = profiles(msg)
        d = msg.dictionary
        assert {(lk.trace_id, lk.span_id) for lk in d.link_table[1:]} <= set(ids.values())
        per_span: dict[str, Counter] = {"checkout": Counter(), "payment": Counter(), "": Counter()}
        by_ids = {v: k for k, v in ids.items()}
        for sample in p.samples:
            lk = d.link_table[sample.link_index]
            span = by_ids.get((lk.trace_id, lk.span_id), "")
            for fn in ("in_checkout", "in_payment"):
                if fn in stack_names(msg, sample):
                    per_span[span][fn] += len(sample.timestamps_unix_nano)
        assert per_span["checkout"]["in_checkout"] > 0 and per_span["checkout"]["in_payment"] == 0
        assert per_span["payment"]["in_payment"] > 0 and per_span["payment"]["in_checkout"] == 0
        assert not per_span[""]  # every sample inside a span is linked to it
