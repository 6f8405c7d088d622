"""The OTLP sink against a local OTLP/HTTP receiver on 127.0.0.1 that decodes with opentelemetry-proto."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import time

import pytest

pytest.importorskip("opentelemetry.proto.profiles.v1development.profiles_pb2",
                    reason="opentelemetry-proto is not installed (test extra)")

from common_helpers import Receiver, burn_wall, closed_port, running, self_signed_cert
from google.protobuf import json_format
from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2 as svc
from otlp_helpers import assert_no_unknown_fields, check_indices, profiles, resource, weight_by_stack

import ringprof
from ringprof.model import Frame, ProfileData
from ringprof.sinks import SinkError, from_url, parse
from ringprof.sinks.otlp import OTLPSink, resolve_endpoint

NO_ENV: dict[str, str] = {}


def decode_otlp(headers: dict[str, str], raw: bytes) -> dict:
    body = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw
    request = svc.ExportProfilesServiceRequest()
    if headers.get("content-type") == "application/json":
        doc = json.loads(body)
        for link in doc.get("dictionary", {}).get("linkTable", []):  # OTLP/JSON ids are hex
            for key in ("traceId", "spanId"):
                if key in link:
                    link[key] = base64.b64encode(bytes.fromhex(link[key])).decode()
        json_format.ParseDict(doc, request)
    elif headers.get("content-type") == "application/x-protobuf":
        request.ParseFromString(body)
    else:
        request = None
    return {"raw": raw, "request": request}


class Collector(Receiver):
    """A stand-in OTLP/HTTP profiles receiver: decodes each request as the Collector would."""

    def __init__(self) -> None:
        super().__init__(decode=decode_otlp, respond=self.answer)
        self.response = b""  # body of a 200 answer (an ExportProfilesServiceResponse)

    def answer(self, status: int, record: dict) -> tuple[dict[str, str], bytes]:
        if status == 200:
            return {"Content-Type": "application/x-protobuf"}, self.response
        return {"Content-Type": "text/plain"}, b"collector says no"


@pytest.fixture
def collector():
    with running(Collector()) as srv:
        yield srv


def window(mode: str = "cpu") -> ProfileData:
    data = ProfileData({"mode": mode, "interval": 0.01, "service": "shop", "pid": 1, "python": "3.11.7 (main)",
                        "window_start": 1_700_000_000.25, "window_end": 1_700_000_060.5,
                        "start_time": 1_700_000_000.25, "duration": 60.0, "tags": {"env": "prod"}})
    main = Frame("main", "/app/main.py", 1, 3)
    work = Frame("work", "/app/main.py", 10, 12)
    data.threads = {7: "MainThread"}
    data.add_sample([main, work], thread=7, time_ns=1_000, weight=3, labels={"route": "/a"})
    data.add_sample([main], thread=7, time_ns=2_000, weight=1)
    return data


def test_posts_each_window_as_the_collector_expects(collector):
    sink = OTLPSink(collector.url, env=NO_ENV)
    data = window()
    sink.export(data)
    (req,) = collector.received
    assert req["path"] == "/v1development/profiles"
    h = req["headers"]
    assert h["content-type"] == "application/x-protobuf"
    assert h["content-encoding"] == "gzip" and req["raw"][:2] == b"\x1f\x8b"
    assert h["otlp-profiles-development-version"] == "1"
    assert h["user-agent"].startswith("ringprof/")
    msg = req["request"]
    assert_no_unknown_fields(msg)
    check_indices(msg)
    (prof,) = profiles(msg)
    assert weight_by_stack(msg, prof) == {("main", "work"): 3, ("main",): 1}
    attrs = resource(msg)
    assert attrs["service.name"] == "shop" and attrs["env"] == "prod" and attrs["process.pid"] == 1
    start, end = round(1_700_000_000.25 * 1e9), round(1_700_000_060.5 * 1e9)  # as floats allow
    assert prof.time_unix_nano == start and prof.duration_nano == end - start
    assert sink.attempts == 1


def test_json_encoding_without_compression(collector):
    from_url(f"otlp:{collector.url}?encoding=json&compression=none").export(window("wall"))
    (req,) = collector.received
    assert req["headers"]["content-type"] == "application/json"
    assert "content-encoding" not in req["headers"]
    msg = req["request"]
    check_indices(msg)
    wall, cpu = profiles(msg)
    assert weight_by_stack(msg, wall) == {("main", "work"): 3, ("main",): 1}
    assert cpu.samples == []  # the hand-made window measured no CPU time


def test_endpoint_headers_and_protocol_from_the_environment(collector, monkeypatch):
    base = collector.url
    assert resolve_endpoint(None, {}) == "http://localhost:4318/v1development/profiles"
    assert resolve_endpoint(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": base + "/otlp/"}) == \
        base + "/otlp/v1development/profiles"
    assert resolve_endpoint(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": base,
                                   "OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT": base + "/custom"}) == base + "/custom"
    assert resolve_endpoint(base + "/v1development/profiles", {}) == base + "/v1development/profiles"

    for key in list(__import__("os").environ):
        if key.startswith("OTEL_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT", base + "/custom/profiles")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=generic,x-team=a%20b")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROFILES_HEADERS", "api-key=specific")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROFILES_PROTOCOL", "http/json")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    (sink,) = parse("otlp:")
    assert sink.timeout == 2.5 and sink.encoding == "json"
    sink.export(window())
    (req,) = collector.received
    assert req["path"] == "/custom/profiles"
    assert req["headers"]["api-key"] == "specific" and req["headers"]["x-team"] == "a b"
    assert resource(req["request"])["service.name"] == "from-env"

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROFILES_PROTOCOL", "grpc")
    with pytest.raises(ValueError, match="OTLP/HTTP only"):
        from_url("otlp:")


def test_sink_options_and_bad_specs(collector):
    sink = from_url(f"otlp:{collector.url}?tenant=team-a&token=t0k&headers=x-a=1,x-b=2&timeout=3&retries=1")
    sink.export(window())
    h = collector.received[0]["headers"]
    assert h["x-scope-orgid"] == "team-a" and h["authorization"] == "Bearer t0k"
    assert h["x-a"] == "1" and h["x-b"] == "2"
    assert sink.timeout == 3 and sink.retries == 1
    port = collector.server_address[1]
    basic = from_url(f"otlp:http://alice:s%20cret@127.0.0.1:{port}")
    assert "alice" not in basic.name and "cret" not in basic.endpoint
    basic.export(window())
    assert collector.received[-1]["headers"]["authorization"] == "Basic YWxpY2U6cyBjcmV0"  # alice:s cret
    # A list of sinks: a comma before "otlp:" starts the next one.
    sinks = parse(f"dir:/tmp/x?keep=2, otlp:{collector.url}?headers=a=1,b=2")
    assert [type(s).__name__ for s in sinks] == ["DirectorySink", "OTLPSink"]
    assert sinks[1].headers["b"] == "2"
    for bad, match in ((f"otlp:{collector.url}?encoding=xml", "encoding"),
                       (f"otlp:{collector.url}?compression=zstd", "compression"),
                       (f"otlp:{collector.url}?nope=1", "unknown option"),
                       ("otlp:ftp://host", "http"),
                       (f"otlp:{collector.url}?retries=-1", "retries")):
        with pytest.raises(ValueError, match=match):
            from_url(bad)


@pytest.fixture
def tls_collector(tmp_path):
    cert, key = self_signed_cert(tmp_path)
    with running(Collector(), tls=(cert, key)) as srv:
        yield srv, str(cert)


def test_https_with_the_ca_from_the_environment(tls_collector):
    srv, cert = tls_collector
    url = f"https://127.0.0.1:{srv.server_address[1]}"
    OTLPSink(url, env={"OTEL_EXPORTER_OTLP_CERTIFICATE": cert}).export(window())
    assert len(srv.received) == 1 and srv.received[0]["request"] is not None
    with pytest.raises(SinkError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        OTLPSink(url, env=NO_ENV, retries=0).export(window())  # not trusted without the CA


def test_retries_with_backoff_then_succeeds(collector):
    collector.statuses = [(503, {}), (429, {"Retry-After": "2"}), (200, {})]
    sink = OTLPSink(collector.url, env=NO_ENV, backoff=0.1)
    delays: list[float] = []
    sink._sleep = delays.append
    sink.export(window())
    assert len(collector.received) == 3 and sink.attempts == 3
    assert 0.05 <= delays[0] <= 0.1  # first backoff, jittered
    assert delays[1] >= 2  # Retry-After honoured


def test_non_retryable_status_fails_at_once(collector):
    collector.statuses = [(400, {})]
    sink = OTLPSink(collector.url, env=NO_ENV)
    sink._sleep = lambda s: pytest.fail("no retry expected")
    with pytest.raises(SinkError, match=r"HTTP 400 .*collector says no"):
        sink.export(window())
    assert sink.attempts == 1


def test_collector_down_gives_up_after_bounded_attempts():
    sink = OTLPSink(f"http://127.0.0.1:{closed_port()}", env=NO_ENV, retries=2, backoff=0.2, timeout=1)
    delays: list[float] = []
    sink._sleep = delays.append
    with pytest.raises(SinkError, match=r"cannot reach .*\(gave up after 3 attempts\)"):
        sink.export(window())
    assert sink.attempts == 3
    assert len(delays) == 2 and 0.1 <= delays[0] <= 0.2 and 0.2 <= delays[1] <= 0.4  # doubling


def test_slow_collector_times_out_per_attempt(collector):
    collector.delay = 5.0
    sink = OTLPSink(collector.url, env=NO_ENV, timeout=0.2, retries=1, backoff=0.01)
    t0 = time.monotonic()
    with pytest.raises(SinkError, match="gave up after 2 attempts"):
        sink.export(window())
    assert time.monotonic() - t0 < 4  # two short attempts, not the collector's 5 s (loose: loaded machine)


def test_partial_success_is_logged_not_retried(collector, caplog):
    collector.response = svc.ExportProfilesServiceResponse(
        partial_success={"rejected_profiles": 1, "error_message": "too old"}).SerializeToString()
    sink = OTLPSink(collector.url, env=NO_ENV)
    caplog.set_level(logging.WARNING, logger="ringprof")
    sink.export(window())
    assert sink.attempts == 1 and sink.partial_failures == 1
    assert "1 profile(s) rejected: too old" in caplog.text


@pytest.fixture
def tracing():
    pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk is not installed (extra 'otel')")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from ringprof.integrations.otel import RingprofSpanProcessor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(RingprofSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def in_request(seconds: float) -> None:
    burn_wall(seconds)


def in_query(seconds: float) -> None:
    burn_wall(seconds)


def test_continuous_push_carries_links_to_real_spans(collector, tracing):
    tracer, spans = tracing
    sink = OTLPSink(collector.url, env=NO_ENV)
    ringprof.start(interval=0.001, continuous=True, window=3600, sinks=[sink], service="links-test")
    try:
        with tracer.start_as_current_span("request"):
            in_request(0.15)
            with tracer.start_as_current_span("query"):
                in_query(0.15)
        burn_wall(0.05)  # outside any span
    finally:
        ringprof.stop()
    finished = {s.name: s.get_span_context() for s in spans.get_finished_spans()}
    assert collector.received, "the final window was not exported"
    weight_by_link: dict[tuple[str, str], dict[str, int]] = {}
    for req in collector.received:
        msg = req["request"]
        check_indices(msg)
        assert resource(msg)["service.name"] == "links-test"
        d = msg.dictionary
        for prof in profiles(msg):
            for sample in prof.samples:
                link = d.link_table[sample.link_index]
                key = (link.trace_id.hex(), link.span_id.hex())
                names = {d.string_table[d.function_table[line.function_index].name_strindex]
                         for li in d.stack_table[sample.stack_index].location_indices
                         for line in d.location_table[li].lines}
                per = weight_by_link.setdefault(key, {})
                for fn in ("in_request", "in_query"):
                    if fn in names:
                        per[fn] = per.get(fn, 0) + len(sample.timestamps_unix_nano)
    req_ctx, query_ctx = finished["request"], finished["query"]
    as_key = lambda ctx: (format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"))  # noqa: E731
    real = {as_key(req_ctx), as_key(query_ctx)}
    linked = {k for k in weight_by_link if k != ("", "")}
    assert linked <= real  # every link points at a real span of this trace
    # Samples in in_request are linked to the request span, those in in_query to the query span.
    assert weight_by_link[as_key(req_ctx)].get("in_request", 0) > 0
    assert weight_by_link[as_key(query_ctx)].get("in_query", 0) > 0
    assert weight_by_link[as_key(req_ctx)].get("in_query", 0) == 0
    assert weight_by_link[as_key(query_ctx)].get("in_request", 0) == 0
    assert weight_by_link.get(("", ""), {}).get("in_request", 0) == 0


def test_slow_or_absent_collector_never_blocks_the_application(collector):
    collector.delay = 30.0  # answers only at teardown
    sink = OTLPSink(collector.url, env=NO_ENV, timeout=5, retries=0)
    prof = ringprof.start(interval=0.001, continuous=True, window=0.05, sinks=[sink], max_pending=2,
                          flush_timeout=0.5)
    ctl = prof.continuous
    worst = 0.0
    try:
        end = time.monotonic() + 0.8
        while time.monotonic() < end:  # the application keeps running at full speed
            t0 = time.perf_counter()
            burn_wall(0.005)
            worst = max(worst, time.perf_counter() - t0)
        assert len(ctl._queue) <= 2
        assert ctl.stats["dropped"] >= 3, ctl.stats
        assert worst < 0.5  # nothing waited for the collector (generous bound: noisy machine)
    finally:
        t0 = time.monotonic()
        ringprof.stop()
        stop_took = time.monotonic() - t0
        collector.release.set()
    assert stop_took < 3  # stop waits flush_timeout for the sink, not the collector
    assert len(collector.received) >= 1  # the exporter thread was stuck in a request, as intended


def test_launcher_with_otlp_sink_from_the_environment(collector, tmp_path):
    """``RINGPROF_SINKS=otlp:`` with the OTel variables, under the launcher, in a separate process."""
    import os
    import subprocess
    import sys

    script = tmp_path / "app.py"
    script.write_text("import time\n"
                      "def busy():\n"
                      "    end = time.perf_counter() + 0.3\n"
                      "    while time.perf_counter() < end:\n"
                      "        sum(range(300))\n"
                      "busy()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "RINGPROF"))}
    env.update({"RINGPROF_SINKS": "otlp:", "RINGPROF_INTERVAL": "0.002",
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_SERVICE_NAME": "launched",
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test"})
    proc = subprocess.run([sys.executable, "-m", "ringprof.auto", str(script)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert collector.received, proc.stderr
    msg = collector.received[-1]["request"]
    check_indices(msg)
    attrs = resource(msg)
    assert attrs["service.name"] == "launched" and attrs["deployment.environment"] == "test"
    assert attrs["process.pid"] != os.getpid()
    weights = weight_by_stack(msg, profiles(msg)[0])
    assert sum(w for stack, w in weights.items() if "busy" in stack) > 0


def test_building_network_sinks_loads_neither_the_model_nor_numpy():
    """Sinks are built at start-up inside the service: they must not pull numpy in (the package's own
    ``__init__`` is bypassed here, so this measures the sink modules alone)."""
    import os
    import subprocess
    import sys

    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "ringprof")
    code = ("import sys, types\n"
            f"pkg = types.ModuleType('ringprof'); pkg.__path__ = [{src!r}]; sys.modules['ringprof'] = pkg\n"
            "from ringprof.sinks import from_url\n"
            "from_url('otlp:http://127.0.0.1:9'); from_url('pyroscope:http://127.0.0.1:9?api=push')\n"
            "print(sorted(m for m in ('numpy', 'ringprof.model') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
