"""Helpers shared by several test modules: CPU burners and a local HTTP receiver.

A plain module (as ``robust_helpers`` and ``otlp_helpers``), imported by name.

* :func:`burn` spends ``seconds`` of the calling thread's CPU time;
  :func:`burn_wall` spends ``seconds`` of wall time busy.  Both show in a
  profile as a leaf frame named after themselves.
* :class:`Receiver` is a stand-in server on ``127.0.0.1`` (an ephemeral port)
  that records every POST and answers from a queue of statuses;
  :func:`running` serves one on a daemon thread (over TLS with ``tls=``) for
  the duration of a ``with`` block or fixture, and :func:`self_signed_cert`
  makes a certificate for ``127.0.0.1`` with the ``openssl`` command.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


# --------------------------------------------------------------------------- CPU
def burn(seconds: float) -> None:
    """Burn ``seconds`` of this thread's CPU time (not wall time: a loaded
    machine hands the thread less CPU than the profile is asked to show)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        sum(range(300))


def burn_wall(seconds: float) -> None:
    """Stay busy for ``seconds`` of wall time (for what is cut by the clock, such as windows)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(300))


# --------------------------------------------------------------------------- HTTP
#: A queued answer: a status, or (status, extra response headers).
Answer = int | tuple[int, dict[str, str]]
#: ``decode(headers, raw body) -> extra fields of the record`` (the request as the real server decodes it).
Decoder = Callable[[dict[str, str], bytes], dict[str, Any]]
#: ``respond(status, record) -> (response headers, body)``.
Responder = Callable[[int, dict[str, Any]], tuple[dict[str, str], bytes]]


def plain_answer(status: int, record: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    return {}, b"ok" if status == 200 else b"the receiver says no"


class Receiver(ThreadingHTTPServer):
    """Records each POST as ``{"path", "query", "headers" (lower-case), "body", **decode(...)}``.

    ``statuses`` are answered in order, then 200; ``delay`` holds each answer
    back (cut short by ``release``, set at teardown).
    """

    daemon_threads = True

    def __init__(self, decode: Decoder | None = None, respond: Responder = plain_answer) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.decode = decode
        self.respond = respond
        self.received: list[dict[str, Any]] = []
        self.statuses: list[Answer] = []
        self.delay = 0.0
        self.release = threading.Event()

    @property
    def url(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"

    def next_answer(self) -> tuple[int, dict[str, str]]:
        answer = self.statuses.pop(0) if self.statuses else 200
        return (answer, {}) if isinstance(answer, int) else answer


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        parts = urlsplit(self.path)
        record: dict[str, Any] = {"path": parts.path, "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                                  "headers": headers, "body": body}
        if self.server.decode is not None:
            record.update(self.server.decode(headers, body))
        self.server.received.append(record)
        status, extra = self.server.next_answer()
        if self.server.delay:
            self.server.release.wait(self.server.delay)
        response_headers, payload = self.server.respond(status, record)
        self.send_response(status)
        for k, v in {**response_headers, **extra}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def running(receiver: Receiver, tls: tuple[Path, Path] | None = None) -> Iterator[Receiver]:
    """Serve ``receiver`` on a daemon thread (over TLS with a (cert, key) pair) until the block ends."""
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        receiver.socket = ctx.wrap_socket(receiver.socket, server_side=True)
    thread = threading.Thread(target=receiver.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        receiver.shutdown()
        receiver.server_close()
        thread.join(10)


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """(cert.pem, key.pem) for ``127.0.0.1``, made with the ``openssl`` command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
