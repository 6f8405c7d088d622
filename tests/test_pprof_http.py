"""The Go-style pprof endpoint: request rules, the standalone listener, Flask and
Starlette mounts, and the real consumer, ``go tool pprof``, fetching over HTTP.

Every test records at most one profile at a time: a test that needs a second
recording running (continuous profiling under ``ringprof-run``) is marked
``# needs many recordings``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ringprof
from ringprof.config import ConfigError, from_env, parse_http_address
from ringprof.exporters import pprof
from ringprof.http_server import PprofServer, serve_http
from ringprof.pprof_http import PprofEndpoint, ProfileRequest, Response, find_pprof_path


# ---------------------------------------------------------------- helpers
def http_burn(stop: threading.Event) -> None:
    x = 0
    while not stop.is_set():
        for i in range(20_000):
            x += i * i


@contextlib.contextmanager
def burning() -> Iterator[None]:
    stop = threading.Event()
    t = threading.Thread(target=http_burn, args=(stop,), name="burner")
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


def fetch(url: str, headers: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def cpu_shares(body: bytes) -> dict[str, float]:
    """Per function: share of the CPU-ns value on the stack (pprof's cum)."""
    decoded = pprof.decode(body)
    index = [t["type"] for t in decoded["sample_type"]].index(decoded["default_sample_type"])
    cum: Counter[str] = Counter()
    total = 0
    for names, values in pprof.sample_stacks(decoded):
        total += values[index]
        for name in set(names):
            cum[name] += values[index]
    return {name: v / total for name, v in cum.items()} if total else {}


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI"):
            pytest.fail("`go` is not on PATH in CI: install Debian's golang-go")
        pytest.skip("`go` is not on PATH: install Debian's golang-go to check the endpoint with go tool pprof")
    return go


_GOCACHE: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _remove_gocache() -> Iterator[None]:
    yield
    while _GOCACHE:
        shutil.rmtree(_GOCACHE.pop(), ignore_errors=True)


def go_pprof_top(url: str, tmp_path: Path) -> str:
    # One build cache for the whole run: newer Go releases build `go tool pprof` on first use,
    # which takes minutes on a loaded machine; later calls reuse it.
    if not _GOCACHE:
        _GOCACHE.append(tempfile.mkdtemp(prefix="ringprof-gocache-"))
    env = {**os.environ, "HOME": str(tmp_path), "PPROF_TMPDIR": str(tmp_path),
           "GOCACHE": _GOCACHE[0], "PPROF_BINARY_PATH": str(tmp_path)}
    out = subprocess.run([_go(), "tool", "pprof", "-top", url], capture_output=True, text=True,
                         timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return out.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server() -> Iterator[PprofServer]:
    srv = serve_http(port=0)
    yield srv
    srv.close()


# ---------------------------------------------------------------- request rules (no recording)
def test_index_redirect_cmdline_and_unknown() -> None:
    ep = PprofEndpoint()
    index = ep.dispatch("GET", "/debug/pprof/")
    assert isinstance(index, Response) and index.status == 200
    assert dict(index.headers)["Content-Type"] == "text/html; charset=utf-8"
    assert b'href="profile?seconds=30"' in index.body
    redirect = ep.dispatch("GET", "/debug/pprof")
    assert isinstance(redirect, Response) and redirect.status == 301
    assert dict(redirect.headers)["Location"] == "/debug/pprof/"
    cmdline = ep.dispatch("GET", "/debug/pprof/cmdline")
    assert isinstance(cmdline, Response) and cmdline.body == "\x00".join(sys.argv).encode()
    unknown = ep.dispatch("GET", "/debug/pprof/heap")
    assert isinstance(unknown, Response) and unknown.status == 404
    assert unknown.body == b"unknown profile: heap\n"
    post = ep.dispatch("POST", "/debug/pprof/")
    assert isinstance(post, Response) and post.status == 405


@pytest.mark.parametrize("query", ["seconds=abc", "seconds=0", "seconds=-1", "seconds=1.5", "seconds=301",
                                   "seconds=99999999999", "mode=heap", "seconds=2&mode=", "seconds=%ff"])
def test_bad_parameters_are_400_with_one_line(query: str) -> None:
    answer = PprofEndpoint().dispatch("GET", "/debug/pprof/profile", query)
    if query == "seconds=2&mode=":  # an empty mode is the default, like an empty seconds
        assert isinstance(answer, ProfileRequest) and (answer.seconds, answer.mode) == (2, "cpu")
        answer.close()
        return
    assert isinstance(answer, Response) and answer.status == 400
    assert answer.body.endswith(b"\n") and answer.body.count(b"\n") == 1
    headers = dict(answer.headers)
    assert headers["Content-Type"] == "text/plain; charset=utf-8" and headers["X-Go-Pprof"] == "1"


def test_seconds_default_and_maximum() -> None:
    ep = PprofEndpoint(max_seconds=600)
    req = ep.dispatch("GET", "/debug/pprof/profile", "")
    assert isinstance(req, ProfileRequest) and (req.seconds, req.mode) == (30, "cpu")
    req.close()
    req = ep.dispatch("GET", "/debug/pprof/profile", "seconds=600&mode=WALL&other=1")
    assert isinstance(req, ProfileRequest) and (req.seconds, req.mode) == (600, "wall")
    req.close()
    too_long = ep.dispatch("GET", "/debug/pprof/profile", "seconds=601")
    assert isinstance(too_long, Response) and too_long.status == 400
    assert b"from 1 to 600" in too_long.body


def test_concurrent_profile_requests_past_the_limit_get_429() -> None:
    ep = PprofEndpoint(max_concurrent=2)
    first = ep.dispatch("GET", "/debug/pprof/profile", "seconds=5")
    second = ep.dispatch("GET", "/debug/pprof/profile", "seconds=5")
    third = ep.dispatch("GET", "/debug/pprof/profile", "seconds=5")
    assert isinstance(first, ProfileRequest) and isinstance(second, ProfileRequest)
    assert isinstance(third, Response) and third.status == 429
    assert ep.dispatch("GET", "/debug/pprof/").status == 200  # type: ignore[union-attr]  # the index still answers
    first.close()
    first.close()  # idempotent: releases one slot once
    fourth = ep.dispatch("GET", "/debug/pprof/profile", "seconds=5")
    assert isinstance(fourth, ProfileRequest)
    second.close()
    fourth.close()
    assert ep.running == 0


def test_bearer_token() -> None:
    ep = PprofEndpoint(token="s3cret")
    for auth in (None, "", "Bearer wrong", "Basic s3cret", "s3cret"):
        answer = ep.dispatch("GET", "/debug/pprof/", "", auth)
        assert isinstance(answer, Response) and answer.status == 401, auth
        assert dict(answer.headers)["WWW-Authenticate"].startswith("Bearer")
    ok = ep.dispatch("GET", "/debug/pprof/", "", "Bearer s3cret")
    assert isinstance(ok, Response) and ok.status == 200
    ok = ep.dispatch("GET", "/debug/pprof/", "", "bearer s3cret")
    assert isinstance(ok, Response) and ok.status == 200
    with pytest.raises(ValueError):
        PprofEndpoint(token="has space")


def test_find_pprof_path_under_any_mount() -> None:
    assert find_pprof_path("/debug/pprof/profile") == "/debug/pprof/profile"
    assert find_pprof_path("/api/v1/debug/pprof/") == "/debug/pprof/"
    assert find_pprof_path("/debug/pprof") == "/debug/pprof"
    assert find_pprof_path("/debug/pprofile") is None
    assert find_pprof_path("/users") is None


# ---------------------------------------------------------------- standalone listener
def test_profile_over_http_is_a_gzip_pprof_of_the_busy_thread(server: PprofServer) -> None:
    with burning():
        status, headers, body = fetch(server.url + "/debug/pprof/profile?seconds=2")
    assert status == 200, body
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"] == 'attachment; filename="profile"'
    assert "Content-Encoding" not in headers  # gzip is the file format, not a transfer encoding
    assert body[:2] == b"\x1f\x8b"
    decoded = pprof.decode(body)
    assert decoded["period_type"]["type"] == "cpu"
    assert cpu_shares(body)["http_burn"] >= 0.5
    assert server.endpoint.running == 0


def test_wall_mode_over_http(server: PprofServer) -> None:
    with burning():
        status, _, body = fetch(server.url + "/debug/pprof/profile?seconds=1&mode=wall")
    assert status == 200, body
    assert pprof.decode(body)["period_type"]["type"] == "wall"
    # Wall mode sees idle threads too (this one, blocked in the request): the burner is not alone.
    assert 0 < cpu_shares(body).get("http_burn", 0) < 1


def test_listener_threads_are_invisible_to_threading(server: PprofServer) -> None:
    before = threading.enumerate()
    status, _, _ = fetch(server.url + "/debug/pprof/")
    assert status == 200
    second = serve_http(port=0)
    try:
        assert threading.enumerate() == before
    finally:
        second.close()


def test_listener_errors_token_and_bad_address(tmp_path: Path) -> None:
    with serve_http(port=0, token="tok") as srv:
        status, _, body = fetch(srv.url + "/debug/pprof/")
        assert status == 401 and body == b"missing or wrong bearer token\n"
        status, _, body = fetch(srv.url + "/debug/pprof/", {"Authorization": "Bearer tok"})
        assert status == 200 and b"/debug/pprof/" in body
        status, _, body = fetch(srv.url + "/debug/pprof/profile?seconds=x", {"Authorization": "Bearer tok"})
        assert status == 400 and body.count(b"\n") == 1
        status, _, _ = fetch(srv.url + "/elsewhere", {"Authorization": "Bearer tok"})
        assert status == 404
        with pytest.raises(OSError):
            serve_http(port=srv.address[1])  # the port is taken
    with pytest.raises(ValueError):
        serve_http(port=70000)


def test_listener_429_past_the_limit_while_one_records() -> None:
    with serve_http(port=0, max_concurrent=1) as srv:
        results: list[int] = []
        first = threading.Thread(target=lambda: results.append(fetch(srv.url + "/debug/pprof/profile?seconds=2")[0]))
        first.start()
        deadline = time.monotonic() + 30
        while srv.endpoint.running == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        status, headers, body = fetch(srv.url + "/debug/pprof/profile?seconds=1")
        first.join()
        assert status == 429 and body.count(b"\n") == 1 and "Retry-After" in headers
        assert results == [200]


def test_malformed_request_gets_a_one_line_400(server: PprofServer) -> None:
    with socket.create_connection(server.address) as sock:
        sock.sendall(b"NOT A REQUEST\r\n\r\n")
        sock.settimeout(30)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    body = answer.split(b"\r\n\r\n")[-1]  # no status line or headers: the request line named no HTTP version
    assert body.count(b"\n") == 1 and body.startswith(b"400 "), answer


def test_client_that_goes_away_frees_its_slot(server: PprofServer) -> None:
    sock = socket.create_connection(server.address)
    sock.sendall(b"GET /debug/pprof/profile?seconds=60 HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 30
    while server.endpoint.running == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.endpoint.running == 1
    sock.close()
    deadline = time.monotonic() + 30  # far below the 60 s asked for
    while server.endpoint.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.endpoint.running == 0


def test_public_serve_http(tmp_path: Path) -> None:
    srv: Any = ringprof.serve_http(port=0)
    try:
        assert fetch(srv.url + "/debug/pprof/")[0] == 200
    finally:
        srv.close()


def test_go_tool_pprof_fetches_from_the_listener(server: PprofServer, tmp_path: Path) -> None:
    with burning():
        text = go_pprof_top(server.url + "/debug/pprof/profile?seconds=2", tmp_path)
    assert "Type: cpu" in text
    assert "http_burn" in text
    saved = list(tmp_path.rglob("*.pb.gz"))  # go tool pprof keeps what it fetched (in PPROF_TMPDIR)
    assert len(saved) == 1
    assert cpu_shares(saved[0].read_bytes())["http_burn"] >= 0.5


# ---------------------------------------------------------------- mounted into real apps
def test_flask_app_serves_pprof_and_its_own_routes(tmp_path: Path) -> None:
    flask = pytest.importorskip("flask")
    from werkzeug.serving import make_server

    from ringprof.integrations.pprof_wsgi import PprofApp

    app = flask.Flask("pprof_test")

    @app.route("/hello")
    def hello() -> str:
        return "hello"

    app.wsgi_app = PprofApp(app.wsgi_app)  # type: ignore[method-assign]
    client = app.test_client()
    assert client.get("/hello").data == b"hello"
    assert client.get("/debug/pprof/").status_code == 200
    bad = client.get("/debug/pprof/profile?seconds=nope")
    assert bad.status_code == 400 and bad.data.count(b"\n") == 1
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    t = threading.Thread(target=srv.serve_forever)
    t.start()
    try:
        url = f"http://127.0.0.1:{srv.server_port}"
        with burning():
            text = go_pprof_top(url + "/debug/pprof/profile?seconds=2", tmp_path)
        assert "http_burn" in text
        assert fetch(url + "/hello")[2] == b"hello"
    finally:
        srv.shutdown()
        t.join()


def test_flask_mount_with_dispatcher_and_token() -> None:
    flask = pytest.importorskip("flask")
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from ringprof.integrations.pprof_wsgi import PprofApp

    app = flask.Flask("pprof_mount")
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/debug/pprof": PprofApp(token="t")})  # type: ignore[method-assign]
    client = app.test_client()
    assert client.get("/debug/pprof/").status_code == 401
    assert client.get("/debug/pprof/", headers={"Authorization": "Bearer t"}).status_code == 200
    with burning():
        resp = client.get("/debug/pprof/profile?seconds=1", headers={"Authorization": "Bearer t"})
    assert resp.status_code == 200
    assert cpu_shares(resp.data)["http_burn"] >= 0.5


@contextlib.contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    uvicorn = pytest.importorskip("uvicorn")
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    t = threading.Thread(target=srv.run)
    t.start()
    deadline = time.monotonic() + 30
    while not srv.started and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        t.join()


def test_starlette_mount_serves_go_tool_pprof_without_blocking_the_loop(tmp_path: Path) -> None:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    from ringprof.integrations.pprof_asgi import PprofApp

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    pprof_app = PprofApp()
    app = Starlette(routes=[Route("/hello", hello), Mount("/debug/pprof", app=pprof_app)])
    with uvicorn_server(app) as url:
        assert fetch(url + "/debug/pprof/")[0] == 200
        assert fetch(url + "/debug/pprof/profile?mode=x")[0] == 400
        text: list[str] = []
        with burning():
            t = threading.Thread(target=lambda: text.append(
                go_pprof_top(url + "/debug/pprof/profile?seconds=5", tmp_path)))
            t.start()
            # (go tool pprof may first have to build itself: wait for the request, not for a time)
            while pprof_app.endpoint.running == 0 and t.is_alive():
                time.sleep(0.01)
            # The event loop answers other requests while the profile records.
            assert fetch(url + "/hello")[2] == b"hello"
            assert pprof_app.endpoint.running == 1
            t.join()
        assert "http_burn" in text[0]


def test_starlette_middleware_form() -> None:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from ringprof.integrations.pprof_asgi import PprofApp

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/hello", hello)])
    app.add_middleware(PprofApp, token="t")
    with uvicorn_server(app) as url:
        assert fetch(url + "/hello")[2] == b"hello"
        assert fetch(url + "/debug/pprof/")[0] == 401
        with burning():
            status, _, body = fetch(url + "/debug/pprof/profile?seconds=1", {"Authorization": "Bearer t"})
        assert status == 200
        assert cpu_shares(body)["http_burn"] >= 0.5


# ---------------------------------------------------------------- RINGPROF_HTTP
def test_ringprof_http_setting() -> None:
    assert parse_http_address("127.0.0.1:6060") == ("127.0.0.1", 6060)
    assert parse_http_address(":7070") == ("127.0.0.1", 7070)
    assert parse_http_address("[::1]:6060") == ("::1", 6060)
    assert parse_http_address("0.0.0.0:1") == ("0.0.0.0", 1)
    for bad in ("6060", "host:", "host:0", "host:70000", "host:x"):
        with pytest.raises(ValueError):
            parse_http_address(bad)
    settings = from_env({"RINGPROF_HTTP": ":6061", "RINGPROF_HTTP_TOKEN": "tok"})
    assert settings.http == ("127.0.0.1", 6061) and settings.http_token == "tok"
    assert from_env({}).http is None
    with pytest.raises(ConfigError, match=r"^RINGPROF_HTTP: "):
        from_env({"RINGPROF_HTTP": "nope"})


_APP = """
import sys, time, threading
def app_burn():
    end = time.monotonic() + 60
    while time.monotonic() < end and not stop.is_set():
        sum(i * i for i in range(10000))
stop = threading.Event()
t = threading.Thread(target=app_burn)
t.start()
print("ready", flush=True)
sys.stdin.readline()
stop.set()
t.join()
print("bye", flush=True)
"""


@contextlib.contextmanager
def launched(tmp_path: Path, env_extra: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    script = tmp_path / "app.py"
    script.write_text(_APP)
    port = free_port()
    env = {**os.environ, "RINGPROF_HTTP": f"127.0.0.1:{port}",
           "RINGPROF_SINKS": f"dir:{tmp_path / 'windows'}", **env_extra}
    proc = subprocess.Popen([sys.executable, "-m", "ringprof.auto", str(script)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        out, err = proc.communicate("\n", timeout=120)
        assert proc.returncode == 0, err
        assert out == "bye\n"


def test_ringprof_http_under_the_launcher_serves_the_index(tmp_path: Path) -> None:
    with launched(tmp_path, {}) as (_proc, url):
        status, _, body = fetch(url + "/debug/pprof/")
        assert status == 200 and b"app.py" in body
        status, _, body = fetch(url + "/debug/pprof/profile?seconds=0")
        assert status == 400


def test_ringprof_http_busy_port_is_one_line_exit_2(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text("print('ran')\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "ringprof.auto", str(script)], capture_output=True, text=True,
                             env={**os.environ, "RINGPROF_HTTP": f"127.0.0.1:{port}",
                                  "RINGPROF_SINKS": f"dir:{tmp_path}"}, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "RINGPROF_HTTP" in out.stderr


# needs many recordings: the endpoint's recording runs beside the launcher's continuous one.
def test_ringprof_http_under_the_launcher_serves_profiles(tmp_path: Path) -> None:
    with launched(tmp_path, {}) as (_proc, url):
        text = go_pprof_top(url + "/debug/pprof/profile?seconds=2", tmp_path)
        assert "app_burn" in text


# needs many recordings: two profile requests record at once (the endpoint allows 2 by default).
def test_two_profile_requests_at_once(server: PprofServer) -> None:
    results: list[tuple[int, dict[str, str], bytes]] = []
    with burning():
        threads = [threading.Thread(target=lambda: results.append(
            fetch(server.url + "/debug/pprof/profile?seconds=2"))) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert [status for status, _, _ in results] == [200, 200]
    for _, _, body in results:
        assert cpu_shares(body)["http_burn"] >= 0.5
