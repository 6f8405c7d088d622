"""WSGI (Flask, served by werkzeug) and ASGI (Starlette, served by uvicorn)
middleware, on real servers on 127.0.0.1: route/method labels, slow requests."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from common_helpers import burn

import ringprof
from ringprof.integrations import SlowRequest, normalize_path, select
from ringprof.model import ProfileData


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(condition, timeout: float = 10.0) -> None:
    """WSGI servers call close() -- where a slow request is captured -- after
    the client already has the response: wait for it."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def frames_with_labels(data: ProfileData, name: str) -> list[dict[str, str]]:
    """Label sets of the samples whose stack contains function ``name``."""
    out = []
    for sid, lid in zip(data.stack.tolist(), data.labels.tolist(), strict=True):
        if any(data.frames[f].name == name for f in data.stacks[sid]):
            out.append(data.label_sets[lid])
    return out


@pytest.fixture
def profiler() -> Iterator[ringprof.Profile]:
    prof = ringprof.Profile(interval=0.001)
    prof.enable()
    try:
        yield prof
    finally:
        prof.disable()


def test_normalize_path():
    assert normalize_path("/users/42/orders/7") == "/users/{int}/orders/{int}"
    assert normalize_path("/o/123e4567-e89b-12d3-a456-426614174000") == "/o/{uuid}"
    assert normalize_path("/blob/9f1c0d2e3b4a59687a6b5c4d") == "/blob/{hex}"
    assert normalize_path("/static/app.js") == "/static/app.js"
    assert normalize_path("") == "/"


def test_select_keeps_only_what_the_samples_use():
    from ringprof.model import Frame

    data = ProfileData({"mode": "cpu", "interval": 0.01})
    for i in range(50):
        data.add_sample([Frame(f"f{i}", "x.py", i, i)], thread=i % 2, time_ns=i, labels={"k": str(i % 3)})
    part = select(data, thread=0, start_ns=10, end_ns=20, labels={"k": "1"})
    assert sorted(part.time_ns.tolist()) == [10, 16]
    assert len(part.frames) == 2 and len(part.stacks) == 2 and part.label_sets == [{}, {"k": "1"}]


# ---------------------------------------------------------------------- WSGI / Flask
flask = None


@pytest.fixture
def flask_server(tmp_path) -> Iterator[tuple[str, list[SlowRequest], object]]:
    global flask
    flask = pytest.importorskip("flask", reason="Flask is not installed (test extra 'web')")
    from werkzeug.serving import make_server

    from ringprof.integrations.wsgi import RingprofMiddleware

    app = flask.Flask("shop")

    @app.route("/items/<int:item_id>")
    def item(item_id: int) -> str:
        flask_busy(0.25 if item_id == 1 else 0.0)
        return f"item {item_id}"

    @app.route("/stream")
    def stream() -> object:
        def body() -> Iterator[str]:
            for _ in range(3):
                stream_chunk(0.05)
                yield "chunk\n"
        return flask.Response(body())

    slow: list[SlowRequest] = []
    app.wsgi_app = RingprofMiddleware(app.wsgi_app, slow_threshold=0.15, on_slow=slow.append,
                                      slow_dir=tmp_path / "slow")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", slow, app.wsgi_app
    finally:
        server.shutdown()
        server.server_close()


def flask_busy(seconds: float) -> None:
    burn(seconds)


def stream_chunk(seconds: float) -> None:
    burn(seconds)


def test_wsgi_labels_route_and_method(flask_server, profiler, tmp_path):
    from werkzeug.test import EnvironBuilder

    base, _slow, mw = flask_server
    assert mw.route_of(EnvironBuilder(path="/items/7").get_environ()) == "/items/<int:item_id>"
    assert mw.route_of(EnvironBuilder(path="/nope/42").get_environ()) == "<unmatched>"
    assert get(f"{base}/items/1") == (200, b"item 1")
    assert get(f"{base}/stream")[1] == b"chunk\n" * 3
    assert get(f"{base}/nope/42")[0] == 404
    data = profiler.data
    busy = frames_with_labels(data, "flask_busy")
    assert busy and all(ls == {"route": "/items/<int:item_id>", "method": "GET"} for ls in busy)
    # Work done while the server iterates the streamed body is labelled too.
    chunks = frames_with_labels(data, "stream_chunk")
    assert chunks and all(ls.get("route") == "/stream" for ls in chunks)
    # The server thread's own labels were restored after each request.
    assert not any(ls.get("route") for ls in frames_with_labels(data, "serve_forever"))


def test_wsgi_slow_request_capture(flask_server, profiler, tmp_path):
    base, slow, mw = flask_server
    assert get(f"{base}/items/2")[0] == 200  # fast: not captured
    assert get(f"{base}/items/1")[0] == 200
    wait_for(lambda: slow)
    (req,) = slow
    assert req.route == "/items/<int:item_id>" and req.method == "GET" and req.path == "/items/1"
    assert req.status == 200 and 0.25 <= req.duration < 5
    data = req.data
    names = {data.frames[f].name for s in data.stacks for f in s}
    assert "flask_busy" in names
    assert data.label_sets[1:] == [{"route": "/items/<int:item_id>", "method": "GET"}]
    assert set(data.thread.tolist()) == {req.thread}
    assert all(req.start_ns <= t <= req.end_ns for t in data.time_ns.tolist())
    assert data.total_weight() * 0.001 >= 0.1  # most of the 0.25 s of CPU is there
    assert data.meta["request"]["route"] == "/items/<int:item_id>"
    assert req.path_written and req.path_written.endswith(".html")
    html = (tmp_path / "slow").glob("slow-GET-items_int_item_id-*.html")
    assert list(html)
    assert mw.slow.captured == 1


def test_wsgi_slow_capture_is_rate_limited(flask_server, profiler):
    base, slow, mw = flask_server
    mw.slow.max_per_minute = 2
    mw.slow._tokens = 2.0
    for _ in range(4):
        get(f"{base}/items/1")
    wait_for(lambda: mw.slow.captured + mw.slow.skipped == 4)
    assert len(slow) == 2 and mw.slow.skipped == 2


def test_wsgi_middleware_without_profiler(flask_server):
    base, slow, _ = flask_server
    assert get(f"{base}/items/1") == (200, b"item 1")
    wait_for(lambda: slow)
    (req,) = slow
    assert len(req.data) == 0


def test_wsgi_app_exception_restores_labels():
    from ringprof.integrations.wsgi import RingprofMiddleware
    from ringprof.labels import current

    def broken(environ, start_response):
        assert current() == {"route": "/x", "method": "POST"}
        raise RuntimeError("boom")

    mw = RingprofMiddleware(broken)
    with pytest.raises(RuntimeError):
        mw({"REQUEST_METHOD": "POST", "PATH_INFO": "/x"}, lambda *a: None)
    assert current() == {}


# ---------------------------------------------------------------------- ASGI / Starlette
@pytest.fixture
def starlette_server(tmp_path) -> Iterator[tuple[str, list[SlowRequest]]]:
    pytest.importorskip("starlette", reason="Starlette is not installed (test extra 'web')")
    uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed (test extra 'web')")
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from ringprof.integrations.asgi import RingprofMiddleware
    from ringprof.labels import labels

    async def alpha(request):
        for _ in range(20):  # CPU work in slices, yielding to the loop between them
            asgi_alpha(0.01)
            await asyncio.sleep(0)
        with labels(phase="render"):
            await asyncio.sleep(0.01)
            asgi_render(0.05)  # after an await, still inside the labels block (50 ms of CPU: ~12 ticks)
        return PlainTextResponse("alpha")

    async def beta(request):
        for _ in range(20):
            asgi_beta(0.01)
            await asyncio.sleep(0)
        return PlainTextResponse("beta " + request.path_params["name"])

    slow: list[SlowRequest] = []
    app = Starlette(routes=[Route("/alpha", alpha), Route("/beta/{name}", beta)],
                    middleware=[Middleware(RingprofMiddleware, slow_threshold=0.15, on_slow=slow.append)])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", slow
    finally:
        server.should_exit = True
        thread.join(10)


def asgi_alpha(seconds: float) -> None:
    burn(seconds)


def asgi_beta(seconds: float) -> None:
    burn(seconds)


def asgi_render(seconds: float) -> None:
    burn(seconds)


def test_asgi_labels_follow_each_request_across_awaits(starlette_server, profiler):
    base, slow = starlette_server
    results: dict[str, tuple[int, bytes]] = {}
    threads = [threading.Thread(target=lambda u=u: results.__setitem__(u, get(base + u)))
               for u in ("/alpha", "/beta/x")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {"/alpha": (200, b"alpha"), "/beta/x": (200, b"beta x")}
    assert get(base + "/missing")[0] == 404
    data = profiler.data
    alpha = frames_with_labels(data, "asgi_alpha")
    beta = frames_with_labels(data, "asgi_beta")
    render = frames_with_labels(data, "asgi_render")
    assert alpha and beta and render
    # Both requests interleaved on one event-loop thread, yet each sample
    # carries its own request's labels.
    assert all(ls == {"route": "/alpha", "method": "GET"} for ls in alpha), alpha
    assert all(ls == {"route": "/beta/{name}", "method": "GET"} for ls in beta), beta
    assert all(ls == {"route": "/alpha", "method": "GET", "phase": "render"} for ls in render), render
    assert len(slow) == 2
    by_route = {r.route: r for r in slow}
    assert set(by_route) == {"/alpha", "/beta/{name}"}
    alpha_req = by_route["/alpha"]
    names = {alpha_req.data.frames[f].name for s in alpha_req.data.stacks for f in s}
    assert "asgi_alpha" in names and "asgi_beta" not in names  # the other request is not in it
    assert alpha_req.status == 200


def test_asgi_passes_other_scopes_through():
    from ringprof.integrations.asgi import RingprofMiddleware

    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    asyncio.run(RingprofMiddleware(app)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]
