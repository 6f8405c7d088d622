"""The flight recorder: ``ringprof.recent()``, its memory bound, the
``/debug/ringprof/recent`` endpoint (decoded with our reader and with the real
``go tool pprof``), and dumps to the sinks from the WSGI (Flask) and ASGI
(Starlette) middleware when a request is slow or fails.

Assertions are on weight shares, never on counts or timings."""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from common_helpers import burn
from test_pprof_http import _remove_gocache, cpu_shares, fetch, free_port, go_pprof_top  # noqa: F401

import ringprof
from ringprof.config import ConfigError, from_env
from ringprof.exporters import pprof
from ringprof.flight import FlightRecorder, approx_bytes, fold
from ringprof.model import FLAG_FOLDED, Frame, ProfileData

INTERVAL = 0.001


# ---------------------------------------------------------------- helpers
def func_a(seconds: float) -> None:
    burn(seconds)


def func_b(seconds: float) -> None:
    burn(seconds)


def weight_of(data: ProfileData, name: str) -> int:
    """Total weight of the samples whose stack holds function ``name``."""
    total = 0
    for frames, w in data.iter_stacks():
        if any(f.name == name for f in frames):
            total += w
    return total


def wait_for(condition: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def _no_leftover_profiler() -> Iterator[None]:
    yield
    from ringprof.control import started

    if started() is not None:  # a failed test must not leave the sampler running
        ringprof.stop()


def window(stacks: list[list[Frame]], per_stack: int, t0: int, thread: int = 1) -> ProfileData:
    """A hand-made window: ``per_stack`` samples of each stack, all at ``t0``."""
    data = ProfileData({"mode": "cpu", "interval": 0.01, "stats": {"dropped": 0}})
    sids = [data.intern_stack(data.intern_frame(f) for f in st) for st in stacks]
    column = [sid for sid in sids for _ in range(per_stack)]
    data.add_samples(column, thread, t0)
    return data


def distinct_stacks(n: int, depth: int, tag: str) -> list[list[Frame]]:
    return [[Frame(f"{tag}_fn{i}_{d}", f"/srv/app/{tag}/module{i % 7}.py", d + 1, d + 3) for d in range(depth)]
            for i in range(n)]


# ---------------------------------------------------------------- ground truth
def test_recent_short_shows_only_b_long_shows_both_in_proportion() -> None:
    reference = ringprof.Profile(interval=INTERVAL)  # a second recording of the same samples
    reference.enable()
    try:
        ringprof.start(interval=INTERVAL, continuous=True, window=0.2, sinks=[lambda data: None])
        func_a(1.0)
        func_b(1.0)
        short = ringprof.recent(0.5)
        long = ringprof.recent(60)
    finally:
        ringprof.stop()
        reference.disable()
    assert isinstance(short, ringprof.Profile) and isinstance(long, ringprof.Profile)
    # A ended at least 1 s of this thread's CPU (so >= 1 s) before: not in the last 0.5 s (+ one 0.2 s slice).
    assert weight_of(short.data, "func_a") == 0
    assert weight_of(short.data, "func_b") > 0
    meta = short.data.meta["recent"]
    assert meta["seconds"] == 0.5 and meta["resolution"] == 0.2 and 0.5 <= meta["covered"] <= 0.7 + 0.05
    a, b = weight_of(long.data, "func_a"), weight_of(long.data, "func_b")
    assert 0.35 <= a / (a + b) <= 0.65  # equal CPU burned in each
    # Nothing was lost on the way through windows and folding: the recorder's
    # weights equal those of a plain recording of the same samples.
    assert (a, b) == (weight_of(reference.data, "func_a"), weight_of(reference.data, "func_b"))
    assert long.data.meta["recent"]["truncated"]  # 60 s asked, the recorder ran for ~2 s
    assert long.data.meta["mode"] == "cpu" and long.data.meta["interval"] == INTERVAL
    # Folded: one row per (stack, thread, labels), far fewer than samples; the top table counts samples.
    samples = long.data.meta["stats"]["samples"]
    assert len(long.data) < samples
    assert long.format_top(3).startswith(f"ringprof: {samples} samples, cpu mode")


def test_recent_needs_continuous_mode_and_valid_seconds() -> None:
    with pytest.raises(RuntimeError, match="continuous mode"):
        ringprof.recent(60)
    ringprof.start(interval=INTERVAL, continuous=True, window=0.2, sinks=[lambda data: None], recent=0)
    try:
        with pytest.raises(RuntimeError, match="flight recorder is off"):
            ringprof.recent(60)
    finally:
        ringprof.stop()
    ringprof.start(interval=INTERVAL, continuous=True, window=0.2, sinks=[lambda data: None])
    try:
        for bad in (0, -1, "60", True, float("nan")):
            with pytest.raises(ValueError, match="seconds"):
                ringprof.recent(bad)  # type: ignore[arg-type]
    finally:
        ringprof.stop()
    with pytest.raises(ValueError, match="recent"):
        ringprof.start(interval=INTERVAL, continuous=True, sinks=[lambda data: None], recent=-5)
    with pytest.raises(ValueError, match="recent_max_bytes"):
        ringprof.start(interval=INTERVAL, continuous=True, sinks=[lambda data: None], recent_max_bytes=10)


def test_recent_settings_from_the_environment() -> None:
    assert from_env({}).recent == 600 and from_env({}).recent_max_bytes == 32 << 20
    settings = from_env({"RINGPROF_RECENT": "5m", "RINGPROF_RECENT_MAX_MB": "8"})
    assert (settings.recent, settings.recent_max_bytes) == (300, 8 << 20)
    assert settings.start_kwargs()["recent"] == 300 and settings.start_kwargs()["recent_max_bytes"] == 8 << 20
    assert from_env({"RINGPROF_RECENT": "0"}).recent == 0
    for name, value in (("RINGPROF_RECENT", "soon"), ("RINGPROF_RECENT_MAX_MB", "0"),
                        ("RINGPROF_RECENT_MAX_MB", "lots")):
        with pytest.raises(ConfigError) as exc:
            from_env({name: value})
        assert str(exc.value).startswith(name) and "\n" not in str(exc.value)


# ---------------------------------------------------------------- memory
def test_memory_bound_holds_and_the_estimate_is_an_upper_bound() -> None:
    cap = 4 << 20
    now = time.monotonic_ns()
    recorder = FlightRecorder(horizon=600, max_bytes=cap, resolution=1, start_ns=now - 60_000_000_000)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(40):  # one window a second: 200 distinct 10-deep stacks, 5 samples each
            recorder.add(window(distinct_stacks(200, 10, f"w{i}"), 5, now - (40 - i) * 1_000_000_000))
            assert recorder.nbytes <= cap
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert recorder.stats["evicted_for_memory"] > 0 and 0 < recorder.windows < 40
    # What the recorder really holds (measured) stays under its estimate, hence under the cap.
    assert held <= recorder.nbytes <= cap, (held, recorder.nbytes)
    # The history lost to the cap is reported, not silently missing.
    chunks, complete_from = recorder.chunks()
    data = recorder.assemble(600, chunks, complete_from, None)
    assert data.meta["recent"]["truncated"]
    assert weight_of(data, "w39_fn0_9") == 5 and weight_of(data, "w0_fn0_9") == 0


def test_folding_keeps_one_row_per_stack_and_slice() -> None:
    now = time.monotonic_ns()
    data = ProfileData({"mode": "cpu", "interval": 0.01})  # 10,000 samples of 10 stacks
    sids = [data.intern_stack(data.intern_frame(f) for f in st) for st in distinct_stacks(10, 30, "busy")]
    t0 = now - now % 10_000_000_000  # one 10 s slice, a sample every 0.5 ms
    data.add_samples([sids[k % 10] for k in range(10_000)], 1, [t0 + 500_000 * k for k in range(10_000)])
    folded, samples = fold(data, 10.0)
    assert len(folded) == 10 and sum(samples.values()) == 10_000
    assert folded.total_weight() == data.total_weight()
    assert all(f & FLAG_FOLDED for f in folded.flags.tolist())  # aggregates, as exporters must know
    assert folded.nbytes() * 10 < data.nbytes()  # sample columns: 10 rows, not 10,000 samples
    assert approx_bytes(folded) < approx_bytes(data)
    # Folding one profile keeps its stack ids (no interning afresh), and each
    # row's stack is the same stack of frames, with the weight of its samples.
    assert folded.stacks == data.stacks and folded.frames == data.frames
    per_stack = {sid: 0 for sid in sids}
    for k in range(10_000):
        per_stack[sids[k % 10]] += 1
    assert dict(zip(folded.stack.tolist(), folded.weight.tolist(), strict=True)) == per_stack


def test_windows_older_than_the_horizon_are_dropped() -> None:
    now = time.monotonic_ns()
    recorder = FlightRecorder(horizon=5, max_bytes=1 << 20, resolution=1, start_ns=now - 60_000_000_000)
    recorder.add(window(distinct_stacks(3, 4, "old"), 2, now - 20_000_000_000))
    recorder.add(window(distinct_stacks(3, 4, "new"), 2, now))
    assert recorder.windows == 1 and recorder.stats["expired"] == 1
    chunks, complete_from = recorder.chunks()
    data = recorder.assemble(60, chunks, complete_from, None)
    assert weight_of(data, "new_fn0_3") == 2 and weight_of(data, "old_fn0_3") == 0


# ---------------------------------------------------------------- the endpoint
def app_burn(stop: threading.Event) -> None:
    while not stop.is_set():
        burn(0.01)


@pytest.fixture
def continuous_burning() -> Iterator[list[ProfileData]]:
    """Continuous mode (0.2 s windows) with a thread burning CPU in app_burn."""
    sink: list[ProfileData] = []
    stop = threading.Event()
    ringprof.start(interval=INTERVAL, continuous=True, window=0.2, sinks=[sink.append], service="svc")
    t = threading.Thread(target=app_burn, args=(stop,), name="app")
    t.start()
    try:
        burn(0.3)
        yield sink
    finally:
        stop.set()
        t.join()
        ringprof.stop()


def test_endpoint_answers_pprof_and_html(continuous_burning: list[ProfileData], tmp_path: Path) -> None:
    server = ringprof.serve_http(port=0, token="tok")
    try:
        url = server.url + "/debug/ringprof/recent"
        auth = {"Authorization": "Bearer tok"}
        assert fetch(url)[0] == 401
        status, headers, body = fetch(url + "?seconds=30", auth)
        assert status == 200 and headers["Content-Type"] == "application/octet-stream"
        assert cpu_shares(body)["app_burn"] >= 0.3
        assert pprof.decode(body)["sample_type"]
        status, headers, body = fetch(url + "?format=html", auth)
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        assert body.startswith(b"<!DOCTYPE html>") and b"app_burn" in body
        for query in ("seconds=0", "seconds=abc", "seconds=1.5", "seconds=86401", "format=svg", "seconds=%ff"):
            status, headers, body = fetch(f"{url}?{query}", auth)
            assert status == 400, query
            assert body.endswith(b"\n") and body.count(b"\n") == 1 and headers["X-Go-Pprof"] == "1"
        assert fetch(server.url + "/debug/ringprof/nope", auth)[0] == 404
        index = fetch(server.url + "/debug/pprof/", auth)[2]
        assert b'href="../ringprof/recent?seconds=60"' in index
    finally:
        server.close()


def test_endpoint_past_the_limit_is_429_and_without_continuous_mode_503() -> None:
    from ringprof.pprof_http import PprofEndpoint, RecentRequest, Response

    ep = PprofEndpoint(max_concurrent=1)
    off = ep.dispatch("GET", "/debug/ringprof/recent")
    assert isinstance(off, Response) and off.status == 503 and off.body.count(b"\n") == 1
    ringprof.start(interval=INTERVAL, continuous=True, window=0.2, sinks=[lambda data: None])
    try:
        first = ep.dispatch("GET", "/debug/ringprof/recent", "seconds=5")
        assert isinstance(first, RecentRequest)
        second = ep.dispatch("GET", "/debug/ringprof/recent")
        assert isinstance(second, Response) and second.status == 429
        assert first.finish().status == 200
        third = ep.dispatch("GET", "/debug/ringprof/recent")  # the slot came back
        assert isinstance(third, RecentRequest) and third.finish().status == 200
    finally:
        ringprof.stop()


def test_flask_and_starlette_mounts_serve_recent(continuous_burning: list[ProfileData]) -> None:
    flask = pytest.importorskip("flask")
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from test_pprof_http import uvicorn_server

    from ringprof.integrations import pprof_asgi, pprof_wsgi
    from ringprof.pprof_http import find_pprof_path

    assert find_pprof_path("/svc/debug/ringprof/recent") == "/debug/ringprof/recent"
    assert find_pprof_path("/debug/ringprofile") is None
    app = flask.Flask("mounted")
    app.wsgi_app = pprof_wsgi.PprofApp(app.wsgi_app)  # type: ignore[method-assign]
    resp = app.test_client().get("/debug/ringprof/recent?seconds=10")
    assert resp.status_code == 200 and cpu_shares(resp.data)["app_burn"] >= 0.3
    assert app.test_client().get("/debug/ringprof/recent?seconds=x").status_code == 400
    asgi = Starlette(routes=[Mount("/debug", app=pprof_asgi.PprofApp())])
    with uvicorn_server(asgi) as url:
        status, headers, body = fetch(url + "/debug/ringprof/recent?seconds=10&format=html")
        assert status == 200 and headers["content-type"] == "text/html; charset=utf-8" and b"app_burn" in body
        status, _, body = fetch(url + "/debug/ringprof/recent")
        assert status == 200 and cpu_shares(body)["app_burn"] >= 0.3
        assert fetch(url + "/debug/pprof/")[0] == 200


def test_go_tool_pprof_reads_the_recent_profile(continuous_burning: list[ProfileData], tmp_path: Path) -> None:
    server = ringprof.serve_http(port=0)
    try:
        text = go_pprof_top(server.url + "/debug/ringprof/recent?seconds=30", tmp_path)
    finally:
        server.close()
    assert "Type: cpu" in text and "app_burn" in text
    (saved,) = tmp_path.rglob("*.pb.gz")
    assert cpu_shares(saved.read_bytes())["app_burn"] >= 0.3


_APP = """
import sys, threading, time
def launched_burn(stop):
    while not stop.is_set():
        end = time.thread_time() + 0.01
        while time.thread_time() < end:
            sum(range(300))
stop = threading.Event()
t = threading.Thread(target=launched_burn, args=(stop,))
t.start()
print("ready", flush=True)
sys.stdin.readline()
stop.set()
t.join()
"""


def test_recent_under_the_launcher(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(_APP)
    port = free_port()
    env = {**os.environ, "RINGPROF_HTTP": f"127.0.0.1:{port}", "RINGPROF_WINDOW": "1",
           "RINGPROF_RECENT": "2m", "RINGPROF_SINKS": f"dir:{tmp_path / 'windows'}"}
    proc = subprocess.Popen([sys.executable, "-m", "ringprof.auto", str(script)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(1.5)  # let a window or two be cut (the answer holds the live window either way)
        text = go_pprof_top(f"http://127.0.0.1:{port}/debug/ringprof/recent?seconds=60", tmp_path)
        assert "launched_burn" in text
    finally:
        _, err = proc.communicate("\n", timeout=120)
    assert proc.returncode == 0, err


# ---------------------------------------------------------------- middleware dumps
def dumps_in(sink: list[ProfileData]) -> list[ProfileData]:
    return [d for d in list(sink) if "dump" in d.meta]


def before_trouble(seconds: float) -> None:
    burn(seconds)


def flask_slow_view() -> None:
    burn(0.4)


def check_slow_dump(dump: ProfileData, route: str) -> None:
    why = dump.meta["dump"]
    assert why["reason"] == "slow" and why["route"] == route and why["method"] == "GET"
    assert why["status"] == 200 and why["duration"] >= 0.3 and why["error"] is None
    assert dump.meta["service"] == "svc" and dump.meta["recent"]["seconds"] == 60
    # The minute before: what the process did before the request, and the request itself.
    before, slow = weight_of(dump, "before_trouble"), weight_of(dump, "flask_slow_view")
    assert before > 0 and slow > 0
    assert 0.25 <= slow / (before + slow) <= 0.75  # 0.4 s of CPU each


@contextlib.contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def flask_app(tmp_path: Path) -> Iterator[tuple[str, Any, list[ProfileData]]]:
    flask = pytest.importorskip("flask")
    from ringprof.integrations.wsgi import RingprofMiddleware

    app = flask.Flask("flight")

    @app.route("/slow")
    def slow() -> str:
        flask_slow_view()
        return "slow"

    @app.route("/fast")
    def fast() -> str:
        return "fast"

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    app.wsgi_app = RingprofMiddleware(app.wsgi_app, dump_slower_than=0.3,  # type: ignore[method-assign]
                                      dump_on_error=True, max_dumps_per_minute=2)
    sink: list[ProfileData] = []
    ringprof.start(interval=INTERVAL, continuous=True, window=0.2, sinks=[sink.append], service="svc")
    try:
        with serve_wsgi(app) as url:
            yield url, app.wsgi_app, sink
    finally:
        ringprof.stop()


def test_flask_slow_request_dumps_the_last_minute(flask_app: tuple[str, Any, list[ProfileData]]) -> None:
    url, mw, sink = flask_app
    before_trouble(0.4)
    assert fetch(url + "/fast")[0] == 200
    assert fetch(url + "/slow")[2] == b"slow"
    wait_for(lambda: dumps_in(sink))
    (dump,) = dumps_in(sink)
    check_slow_dump(dump, "/slow")
    assert mw.dump.dumped == 1


def test_flask_error_dumps_and_the_rate_limit_holds(flask_app: tuple[str, Any, list[ProfileData]]) -> None:
    url, mw, sink = flask_app
    before_trouble(0.2)
    for _ in range(5):  # a storm of failing requests: 2 dumps a minute at most
        assert fetch(url + "/boom")[0] == 500
    wait_for(lambda: len(dumps_in(sink)) >= 2 and mw.dump.dumped + mw.dump.skipped == 5)
    dumps = dumps_in(sink)
    assert len(dumps) == 2 and mw.dump.skipped == 3
    why = dumps[0].meta["dump"]
    assert why["reason"] == "error" and why["route"] == "/boom" and why["status"] == 500
    assert why["error"] == "HTTP 500"  # Flask answers 500 for an exception in a view
    assert weight_of(dumps[0], "before_trouble") > 0


def test_wsgi_exception_dump_goes_to_its_own_sink_as_a_named_file(tmp_path: Path) -> None:
    from ringprof.integrations.wsgi import RingprofMiddleware

    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise ValueError("no such order")

    windows: list[ProfileData] = []
    mw = RingprofMiddleware(broken, dump_on_error=True, dump_sinks=[f"dir:{tmp_path}?keep=3"], dump_seconds=30)
    ringprof.start(interval=INTERVAL, continuous=True, window=0.2, sinks=[windows.append], service="svc")
    try:
        before_trouble(0.2)
        with pytest.raises(ValueError):
            mw({"REQUEST_METHOD": "POST", "PATH_INFO": "/orders/12"}, lambda *a: None)
        wait_for(lambda: list(tmp_path.glob("*.pprof")))
    finally:
        ringprof.stop()
    (written,) = tmp_path.glob("svc-dump-error-*.pprof")
    assert "before_trouble" in cpu_shares(written.read_bytes())
    assert not dumps_in(windows)  # the windows' sink got windows only
    assert mw.dump.dumped == 1


def test_wsgi_body_that_fails_midway_dumps_as_an_error() -> None:
    from ringprof.integrations.wsgi import RingprofMiddleware

    def streaming(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"first"
        raise OSError("disk gone")

    sink: list[ProfileData] = []
    mw = RingprofMiddleware(streaming, dump_on_error=True)
    ringprof.start(interval=INTERVAL, continuous=True, window=0.2, sinks=[sink.append])
    try:
        before_trouble(0.1)
        body = mw({"REQUEST_METHOD": "GET", "PATH_INFO": "/export"}, lambda *a: None)
        with pytest.raises(OSError):
            list(body)
        body.close()  # type: ignore[attr-defined]  (the server closes the body)
        wait_for(lambda: dumps_in(sink))
    finally:
        ringprof.stop()
    (dump,) = dumps_in(sink)
    assert dump.meta["dump"]["error"] == "OSError: disk gone" and dump.meta["dump"]["status"] == 200


def test_dump_without_continuous_mode_is_skipped_quietly() -> None:
    from ringprof.integrations.wsgi import RingprofMiddleware

    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise ValueError("x")

    mw = RingprofMiddleware(broken, dump_on_error=True)
    with pytest.raises(ValueError):
        mw({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda *a: None)
    assert (mw.dump.dumped, mw.dump.unavailable) == (0, 1)
    with pytest.raises(ValueError, match="dump_slower_than"):
        RingprofMiddleware(broken, dump_slower_than=-1)
    with pytest.raises(ValueError, match="max_dumps_per_minute"):
        RingprofMiddleware(broken, dump_on_error=True, max_dumps_per_minute=0)


async def _starlette_slow(request: Any) -> Any:
    from starlette.responses import PlainTextResponse

    flask_slow_view()  # the same CPU burn, on the event loop
    return PlainTextResponse("slow")


async def _starlette_boom(request: Any) -> Any:
    raise RuntimeError("boom in starlette")


def test_starlette_dumps_on_slow_request_and_exception() -> None:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route
    from test_pprof_http import uvicorn_server

    from ringprof.integrations.asgi import RingprofMiddleware

    app = Starlette(routes=[Route("/slow", _starlette_slow), Route("/boom", _starlette_boom)],
                    middleware=[Middleware(RingprofMiddleware, dump_slower_than=0.3, dump_on_error=True)])
    sink: list[ProfileData] = []
    ringprof.start(interval=INTERVAL, continuous=True, window=0.2, sinks=[sink.append], service="svc")
    try:
        with uvicorn_server(app) as url:
            before_trouble(0.4)
            assert fetch(url + "/slow")[2] == b"slow"
            wait_for(lambda: len(dumps_in(sink)) == 1)
            check_slow_dump(dumps_in(sink)[0], "/slow")
            assert fetch(url + "/boom")[0] == 500
            wait_for(lambda: len(dumps_in(sink)) == 2)
    finally:
        ringprof.stop()
    why = dumps_in(sink)[1].meta["dump"]
    assert why["reason"] == "error" and why["route"] == "/boom"
    assert why["error"] == "RuntimeError: boom in starlette" and why["status"] is None


def test_flight_recorder_and_recent_load_no_numpy() -> None:
    code = """
import sys, time, ringprof
from ringprof.exporters import render
ringprof.start(interval=0.001, continuous=True, window=0.1, sinks=[lambda d: None])
end = time.thread_time() + 0.3
while time.thread_time() < end:
    sum(range(300))
profile = ringprof.recent(5)
assert profile.data.total_weight() > 0
render(profile.data, "pprof")
ringprof.stop()
print("numpy" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "False\n"
