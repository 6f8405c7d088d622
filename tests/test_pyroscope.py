"""The Pyroscope sink against a local ingest server on 127.0.0.1."""

from __future__ import annotations

import json
import time
from email.parser import BytesParser
from email.policy import HTTP

import pytest
from common_helpers import Receiver, burn_wall, running, self_signed_cert

import ringprof
from ringprof.exporters import pprof
from ringprof.model import Frame, ProfileData
from ringprof.sinks import SinkError, from_url
from ringprof.sinks.pyroscope import PyroscopeSink


def ingest_answer(status: int, record: dict) -> tuple[dict[str, str], bytes]:
    return {}, b"ok" if status == 200 else b"ingest says no"


@pytest.fixture
def server():
    with running(Receiver(respond=ingest_answer)) as srv:
        yield srv


def form_parts(record: dict) -> dict[str, bytes]:
    ctype = record["headers"]["content-type"]
    assert ctype.startswith("multipart/form-data; boundary=")
    msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + record["body"])
    return {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
            for p in msg.iter_parts()}


def window(mode: str = "cpu") -> ProfileData:
    data = ProfileData({"mode": mode, "interval": 0.01, "service": "shop", "pid": 1,
                        "window_start": 1_700_000_000.25, "window_end": 1_700_000_060.5,
                        "start_time": 1_700_000_000.25, "duration": 60.0, "tags": {"env": "prod", "az": "b"}})
    main = Frame("main", "/app/main.py", 1, 3)
    work = Frame("work", "/app/main.py", 10, 12)
    data.add_sample([main, work], thread=7, time_ns=1, weight=3, labels={"route": "/a", "http.method": "GET"})
    data.add_sample([main], thread=7, time_ns=2, weight=1)
    return data


def test_push_follows_the_ingest_api(server):
    sink = PyroscopeSink(server.url)
    sink.export(window())
    (req,) = server.received
    assert req["path"] == "/ingest"
    assert req["query"] == {"name": "shop{az=b,env=prod}", "from": "1700000000", "until": "1700000061",
                            "format": "pprof", "sampleRate": "100"}
    parts = form_parts(req)
    assert json.loads(parts["sample_type_config"]) == {
        "cpu": {"units": "samples", "aggregation": "sum", "display-name": "cpu", "sampled": True}}
    prof = pprof.decode(parts["profile"])
    assert [t["type"] for t in prof["sample_type"]] == ["samples", "cpu"]
    stacks = dict((tuple(names), values) for names, values in pprof.sample_stacks(prof))
    assert stacks[("work", "main")][0] == 3 and stacks[("main",)][0] == 1
    labelled = [s["labels"] for s in prof["samples"] if s["labels"].get("route")]
    # "http.method" is not a valid Pyroscope label name: sent as http_method.
    assert labelled == [{"route": ["/a"], "http_method": ["GET"]}]
    assert "authorization" not in req["headers"]


def test_wall_mode_ingests_wall_and_cpu(server):
    PyroscopeSink(server.url).export(window("wall"))
    config = json.loads(form_parts(server.received[0])["sample_type_config"])
    assert set(config) == {"wall", "cpu"}


def test_bearer_token_basic_auth_and_tenant(server):
    from_url(f"pyroscope:{server.url}?token=tok123&tenant=team-a").export(window())
    from_url(f"pyroscope:http://alice:s%20cret@127.0.0.1:{server.server_address[1]}").export(window())
    first, second = server.received
    assert first["headers"]["authorization"] == "Bearer tok123"
    assert first["headers"]["x-scope-orgid"] == "team-a"
    assert second["headers"]["authorization"] == "Basic YWxpY2U6cyBjcmV0"  # alice:s cret


def test_retries_with_backoff_then_succeeds(server):
    server.statuses = [503, 500]
    sink = PyroscopeSink(server.url, retries=3, backoff=0.01)
    delays: list[float] = []
    sink._sleep = delays.append
    sink.export(window())
    assert len(server.received) == 3 and sink.attempts == 3
    assert server.received[0]["body"] == server.received[2]["body"]
    assert len(delays) == 2 and 0.005 <= delays[0] <= 0.01 and 0.01 <= delays[1] <= 0.02  # doubling, jittered


def test_retry_after_is_honoured(server):
    server.statuses = [429]
    sink = PyroscopeSink(server.url, retries=1, backoff=0.01)
    delays: list[float] = []
    sink._sleep = delays.append
    sink.export(window())
    assert len(server.received) == 2 and len(delays) == 1 and delays[0] <= 0.01  # 429 is retried
    # Retry-After (seconds) wins over a shorter backoff.
    server.statuses = [(503, {"Retry-After": "2"})]
    delays.clear()
    sink.export(window())
    assert delays == [2.0]


def test_client_errors_are_not_retried(server):
    server.statuses = [400]
    sink = PyroscopeSink(server.url, retries=3, backoff=0.01)
    with pytest.raises(SinkError, match=r"HTTP 400 .*ingest says no"):
        sink.export(window())
    assert len(server.received) == 1


def test_unreachable_server_gives_up_in_bounded_time(server):
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    sink = PyroscopeSink(f"http://127.0.0.1:{port}", retries=2, backoff=0.01, timeout=1)
    t0 = time.monotonic()
    with pytest.raises(SinkError, match=r"cannot reach .*\(gave up after 3 attempts\)"):
        sink.export(window())
    assert time.monotonic() - t0 < 5


def test_timeouts_are_retried(server):
    server.delay = 0.5
    sink = PyroscopeSink(server.url, retries=1, backoff=0.01, timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(SinkError, match="timed out"):
        sink.export(window())
    assert len(server.received) == 2 and time.monotonic() - t0 < 3


@pytest.fixture
def tls_server(tmp_path):
    cert, key = self_signed_cert(tmp_path)
    with running(Receiver(respond=ingest_answer), tls=(cert, key)) as srv:
        yield srv, cert


def test_https_with_a_ca_file(tls_server):
    srv, cert = tls_server
    from_url(f"pyroscope:{srv.url}?ca={cert}&token=t").export(window())
    assert len(srv.received) == 1
    assert srv.received[0]["headers"]["authorization"] == "Bearer t"
    with pytest.raises(SinkError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        from_url(f"pyroscope:{srv.url}?retries=0").export(window())  # not trusted without the CA
    from_url(f"pyroscope:{srv.url}?verify=0").export(window())
    assert len(srv.received) == 2


def test_continuous_mode_pushes_labelled_windows(server):
    ringprof.start(interval=0.001, continuous=True, window=0.2, service="e2e", tags={"region": "lab"},
                   sinks=[f"pyroscope:{server.url}?retries=1&backoff=10ms"])
    try:
        with ringprof.labels(route="/checkout"):
            burn_wall(0.6)  # windows are cut by the clock
    finally:
        ringprof.stop()
    assert len(server.received) >= 2
    total = 0
    routes = set()
    for req in server.received:
        q = req["query"]
        assert q["name"] == "e2e{region=lab}" and q["format"] == "pprof" and q["sampleRate"] == "1000"
        assert int(q["until"]) > int(q["from"]) > 1_600_000_000
        prof = pprof.decode(form_parts(req)["profile"])
        total += sum(s["values"][0] for s in prof["samples"])
        routes.update(r for s in prof["samples"] for r in s["labels"].get("route", []))
    assert total > 50 and routes == {"/checkout"}
