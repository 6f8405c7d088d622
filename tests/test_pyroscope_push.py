"""The Pyroscope sink's push API (``/push.v1.PusherService/Push``, Connect) against a local receiver.

The receiver decodes requests with real protobuf classes built from the push.v1
schema (``api/push/v1/push.proto`` and ``types.v1.LabelPair`` of Grafana
Pyroscope, declared below field by field), independently of ringprof's
hand-written encoder, and parses the JSON variant with the standard protobuf
JSON parser.
"""

from __future__ import annotations

import pytest

pytest.importorskip("google.protobuf", reason="protobuf is not installed (test extra)")

from common_helpers import Receiver, running
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

from ringprof.exporters import pprof
from ringprof.model import Frame, ProfileData
from ringprof.sinks import SinkError, from_url
from ringprof.sinks.pyroscope import PyroscopeSink


def _push_classes():
    fdp = descriptor_pb2.FieldDescriptorProto
    pool = descriptor_pool.DescriptorPool()
    types = descriptor_pb2.FileDescriptorProto(name="types/v1/types.proto", package="types.v1", syntax="proto3")
    pair = types.message_type.add(name="LabelPair")
    pair.field.add(name="name", number=1, type=fdp.TYPE_STRING, label=fdp.LABEL_OPTIONAL)
    pair.field.add(name="value", number=2, type=fdp.TYPE_STRING, label=fdp.LABEL_OPTIONAL)
    pool.Add(types)
    push = descriptor_pb2.FileDescriptorProto(name="push/v1/push.proto", package="push.v1", syntax="proto3",
                                              dependency=["types/v1/types.proto"])
    req = push.message_type.add(name="PushRequest")
    req.field.add(name="series", number=1, type=fdp.TYPE_MESSAGE, label=fdp.LABEL_REPEATED,
                  type_name=".push.v1.RawProfileSeries")
    series = push.message_type.add(name="RawProfileSeries")
    series.field.add(name="labels", number=1, type=fdp.TYPE_MESSAGE, label=fdp.LABEL_REPEATED,
                     type_name=".types.v1.LabelPair")
    series.field.add(name="samples", number=2, type=fdp.TYPE_MESSAGE, label=fdp.LABEL_REPEATED,
                     type_name=".push.v1.RawSample")
    sample = push.message_type.add(name="RawSample")
    sample.field.add(name="raw_profile", number=1, type=fdp.TYPE_BYTES, label=fdp.LABEL_OPTIONAL)
    sample.field.add(name="ID", number=2, type=fdp.TYPE_STRING, label=fdp.LABEL_OPTIONAL)
    pool.Add(push)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("push.v1.PushRequest"))


PushRequest = _push_classes()


def decode_push(headers: dict[str, str], body: bytes) -> dict:
    request = PushRequest()
    if headers.get("content-type") == "application/json":
        json_format.Parse(body, request)  # unknown JSON names would raise
    else:
        request.ParseFromString(body)
    return {"request": request}


def connect_answer(status: int, record: dict) -> tuple[dict[str, str], bytes]:
    """Connect unary: a JSON error body on failure, the (empty) PushResponse on success."""
    if status != 200:
        return {"Content-Type": "application/json"}, b'{"code":"invalid_argument","message":"bad labels"}'
    return {"Content-Type": record["headers"].get("content-type", "")}, b""


@pytest.fixture
def server():
    with running(Receiver(decode=decode_push, respond=connect_answer)) as srv:
        yield srv


def window(mode: str = "cpu") -> ProfileData:
    data = ProfileData({"mode": mode, "interval": 0.01, "service": "shop", "pid": 1,
                        "window_start": 1_700_000_000.25, "window_end": 1_700_000_060.5,
                        "start_time": 1_700_000_000.25, "duration": 60.0,
                        "tags": {"env": "prod", "k8s.pod": "p-1"}})
    main = Frame("main", "/app/main.py", 1, 3)
    work = Frame("work", "/app/main.py", 10, 12)
    data.add_sample([main, work], thread=7, time_ns=1, weight=3, labels={"route": "/a"})
    data.add_sample([main], thread=7, time_ns=2, weight=1)
    return data


def check_series(req: dict, name: str, service: str = "shop") -> dict:
    assert req["path"] == "/push.v1.PusherService/Push"
    assert req["headers"]["connect-protocol-version"] == "1"
    (series,) = req["request"].series
    labels = [(lp.name, lp.value) for lp in series.labels]
    assert labels[:2] == [("__name__", name), ("service_name", service)]
    assert dict(labels)["env"] == "prod" and dict(labels)["k8s_pod"] == "p-1"  # valid label names
    (sample,) = series.samples
    assert len(sample.ID) == 36  # a UUID
    prof = pprof.decode(sample.raw_profile)  # gzipped pprof, as /ingest sends it
    stacks = dict((tuple(names), values) for names, values in pprof.sample_stacks(prof))
    assert stacks[("work", "main")][0] == 3 and stacks[("main",)][0] == 1
    assert prof["time_nanos"] == round(1_700_000_000.25 * 1e9)  # the window's time travels in the pprof
    return prof


def test_push_binary_follows_the_push_v1_schema(server):
    sink = from_url(f"pyroscope:{server.url}?api=push&tenant=team-a")
    assert sink.endpoint == server.url + "/push.v1.PusherService/Push"
    sink.export(window())
    (req,) = server.received
    assert req["headers"]["content-type"] == "application/proto"
    assert req["headers"]["x-scope-orgid"] == "team-a"
    prof = check_series(req, "process_cpu")
    assert [t["type"] for t in prof["sample_type"]] == ["samples", "cpu"]  # -> process_cpu:cpu:nanoseconds:...


def test_push_json_and_wall_mode(server):
    PyroscopeSink(server.url, api="push", encoding="json", app="checkout").export(window("wall"))
    (req,) = server.received
    assert req["headers"]["content-type"] == "application/json"
    prof = check_series(req, "wall", service="checkout")
    assert prof["period_type"] == {"type": "wall", "unit": "nanoseconds"}


def test_push_retries_server_errors_and_fails_on_client_errors(server):
    server.statuses = [503, 200]
    sink = PyroscopeSink(server.url, api="push", backoff=0.01)
    delays: list[float] = []
    sink._sleep = delays.append
    sink.export(window())
    assert sink.attempts == 2 and len(delays) == 1
    server.statuses = [400]
    with pytest.raises(SinkError, match=r"HTTP 400 .*bad labels"):
        sink.export(window())
    assert sink.attempts == 3


def test_push_options_are_checked():
    with pytest.raises(ValueError, match="api must be"):
        from_url("pyroscope:http://127.0.0.1:4040?api=grpc")
    with pytest.raises(ValueError, match="encoding must be"):
        from_url("pyroscope:http://127.0.0.1:4040?api=push&encoding=xml")
    with pytest.raises(ValueError, match="api=push only"):
        from_url("pyroscope:http://127.0.0.1:4040?encoding=json")
    assert from_url("pyroscope:http://127.0.0.1:4040").endpoint.endswith("/ingest")  # default unchanged
