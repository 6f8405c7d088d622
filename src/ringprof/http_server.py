"""The standalone pprof listener: ``ringprof.serve_http()`` and ``RINGPROF_HTTP``.

    server = ringprof.serve_http()                      # 127.0.0.1:6060, /debug/pprof/
    server = ringprof.serve_http("0.0.0.0", 6060, token="s3cret")
    server.close()

It answers :mod:`ringprof.pprof_http`'s paths on its own daemon thread, and
each connection on a daemon thread of its own (at most ``max_connections``
at once; more are answered 429 and closed), so a slow client or a 30-second
recording never blocks the application.  The threads are started with
``_thread.start_new_thread``: they are not in ``threading.enumerate()``, so
programs and test suites that count their threads do not see them.

It binds to ``127.0.0.1`` unless told otherwise; binding to another address
without a ``token`` logs a warning (logger ``ringprof``).
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import select
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from .pprof_http import DEFAULT_MAX_CONCURRENT, MAX_SECONDS, PprofEndpoint, Response, error

__all__ = ["PprofServer", "serve_http"]

log = logging.getLogger("ringprof")

MAX_CONNECTIONS = 16
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class _Handler(BaseHTTPRequestHandler):
    server: _Listener
    server_version = "ringprof"
    sys_version = ""
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers
    timeout = 10  # seconds to read the request; a slow client only holds its own thread
    error_message_format = "%(code)d %(message)s\n"  # malformed requests: one line, like our own errors
    error_content_type = "text/plain; charset=utf-8"

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        try:
            answer = self.server.endpoint.handle(self.command, parts.path, parts.query,
                                                 self.headers.get("Authorization"), cancelled=self._client_gone)
        except Exception as exc:  # never let a request take the listener down
            log.warning("ringprof: pprof request failed: %r", exc)
            answer = error(500, f"internal error: {exc!r}")
        self._send(answer)

    def _client_gone(self) -> bool:
        """True once the client closed its end (it stopped waiting)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _send(self, answer: Response) -> None:
        self.send_response(answer.status)
        names = {name.lower() for name, _ in answer.headers}
        for name, value in answer.headers:
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD" and answer.body:
            self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("ringprof http: " + format, *args)


class _Listener(socketserver.TCPServer):
    allow_reuse_address = True
    request_queue_size = 16

    def __init__(self, address: tuple[str, int], endpoint: PprofEndpoint, max_connections: int) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        self.endpoint = endpoint
        self.max_connections = max_connections
        self._open = 0
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            busy = self._open >= self.max_connections
            if not busy:
                self._open += 1
        if busy:
            try:
                request.settimeout(1)
                answer = error(429, "too many connections; retry later")
                request.sendall(f"HTTP/1.0 {answer.status_line}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                f"Content-Length: {len(answer.body)}\r\n\r\n".encode() + answer.body)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        _thread.start_new_thread(self._process, (request, client_address))

    def _process(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            pass  # a client that went away mid-answer: nothing to do
        finally:
            self.shutdown_request(request)
            with self._open_lock:
                self._open -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("ringprof http: error serving %s", client_address, exc_info=True)


class PprofServer:
    """A running listener; :attr:`url` is its base (``http://HOST:PORT``)."""

    def __init__(self, listener: _Listener) -> None:
        self._listener = listener
        self._done = threading.Event()
        self._closed = False
        _thread.start_new_thread(self._run, ())

    def _run(self) -> None:
        try:
            self._listener.serve_forever(poll_interval=0.5)
        except Exception as exc:
            log.warning("ringprof: the pprof listener stopped: %r", exc)
        finally:
            self._done.set()

    @property
    def endpoint(self) -> PprofEndpoint:
        return self._listener.endpoint

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def close(self) -> None:
        """Stop accepting and close the socket (requests in flight finish on their threads)."""
        if self._closed:
            return
        self._closed = True
        self._listener.shutdown()
        self._done.wait(5)
        with contextlib.suppress(OSError):
            self._listener.server_close()

    def __enter__(self) -> PprofServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PprofServer {self.url}/debug/pprof/>"


def serve_http(host: str = "127.0.0.1", port: int = 6060, token: str | None = None, *,
               max_seconds: int = MAX_SECONDS, max_concurrent: int = DEFAULT_MAX_CONCURRENT,
               max_connections: int = MAX_CONNECTIONS, interval: float = 0.01) -> PprofServer:
    """Serve ``/debug/pprof/`` on ``host:port`` from a daemon thread; returns at once.

    ``port=0`` picks a free port (see :attr:`PprofServer.address`).  Raises
    OSError when the address cannot be bound, ValueError for bad options.
    """
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be from 0 to 65535, got {port!r}")
    if max_connections < 1:
        raise ValueError(f"max_connections must be >= 1, got {max_connections}")
    endpoint = PprofEndpoint(token=token, max_seconds=max_seconds, max_concurrent=max_concurrent,
                             interval=interval)
    host = host.strip("[]") or "127.0.0.1"
    if token is None and host not in _LOOPBACK:
        log.warning("ringprof: the pprof endpoint listens on %s without a token: anyone who can reach it "
                    "can profile this process", host)
    return PprofServer(_Listener((host, port), endpoint, max_connections))
