"""Go-style pprof over HTTP: the request handling, free of any web framework.

The paths and conventions are those of Go's ``net/http/pprof``, so
``go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=5`` and
scrapers that pull pprof over HTTP (Grafana Alloy's ``pyroscope.scrape``) work
against a Python process unchanged:

=============================  ===============================================================
path                           answer
=============================  ===============================================================
``/debug/pprof/``              a small HTML index (``/debug/pprof`` redirects there, as in Go)
``/debug/pprof/profile``       records ``seconds`` (default 30, at most ``max_seconds``, 300 by
                               default) and answers a gzip pprof profile, ``application/
                               octet-stream`` with ``Content-Disposition: attachment;
                               filename="profile"``; ``mode=cpu`` (default) or ``mode=wall``
``/debug/pprof/cmdline``       the command line, arguments separated by NUL bytes
``/debug/ringprof/recent``     the flight recorder (:func:`ringprof.recent`): the last
                               ``seconds`` (default 60, at most 86400) of continuous profiling,
                               at once, as gzip pprof (``format=pprof``, the default) or as the
                               HTML flame graph viewer (``format=html``); ``503`` when continuous
                               mode or its flight recorder is not running
=============================  ===============================================================

Every profile request is one :class:`ringprof.Profile` recording (all threads,
``interval`` seconds between samples).  At most ``max_concurrent`` profile
requests (and ``recent`` requests, which take a slot while they merge and
encode) run at once; more get ``429``.  Bad parameters get ``400`` with a
one-line ``text/plain`` body and the ``X-Go-Pprof: 1`` header (which makes
``go tool pprof`` print that line).  With a ``token``, every request must carry
``Authorization: Bearer TOKEN`` or gets ``401``.  Unlike Go, a non-numeric,
zero or too large ``seconds`` is an error (``400``), not silently 30.

:class:`PprofEndpoint` turns a request (method, path, query, Authorization
header) into a :class:`Response`, or for ``/profile`` into a
:class:`ProfileRequest` the caller drives: :meth:`ProfileRequest.start`, wait
``seconds`` (a thread sleeps, an event loop awaits), :meth:`ProfileRequest.finish`.
The WSGI and ASGI adapters live in :mod:`ringprof.integrations.pprof_wsgi` and
:mod:`ringprof.integrations.pprof_asgi`; the standalone listener in
:mod:`ringprof.http_server`.
"""

from __future__ import annotations

import hmac
import html
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

__all__ = ["DEFAULT_SECONDS", "MAX_SECONDS", "PREFIX", "RINGPROF_PREFIX", "PprofEndpoint", "ProfileRequest",
           "RecentRequest", "Response", "error", "find_pprof_path"]

PREFIX = "/debug/pprof"
RINGPROF_PREFIX = "/debug/ringprof"  #: ringprof's own paths (the flight recorder), beside Go's
DEFAULT_RECENT_SECONDS = 60
MAX_RECENT_SECONDS = 86400
DEFAULT_SECONDS = 30
MAX_SECONDS = 300  #: the default ``max_seconds``: longer recordings tie up a slot (and memory) too long
DEFAULT_MAX_CONCURRENT = 2

Headers = tuple[tuple[str, str], ...]

_REASONS = {200: "OK", 301: "Moved Permanently", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}
_SECONDS = re.compile(r"^[0-9]{1,9}$")
_OUR_PATHS = re.compile(f"(?:{re.escape(PREFIX)}|{re.escape(RINGPROF_PREFIX)})(?=/|$)")


@dataclass(frozen=True)
class Response:
    """An HTTP answer: status, headers (name, value) and the whole body."""

    status: int
    headers: Headers
    body: bytes

    @property
    def status_line(self) -> str:
        """``"200 OK"``, as WSGI wants it."""
        return f"{self.status} {_REASONS.get(self.status, 'Unknown')}"


def find_pprof_path(full_path: str) -> str | None:
    """The ``/debug/pprof...`` (or ``/debug/ringprof...``) part of a request
    path, wherever the app is mounted (behind a proxy prefix, say), or None
    when it has none."""
    m = _OUR_PATHS.search(full_path)
    return full_path[m.start():] if m else None


def error(status: int, message: str, extra: Headers = ()) -> Response:
    """A one-line ``text/plain`` error, as Go's pprof handlers answer them."""
    line = " ".join(message.split())
    return Response(status, (("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff"),
                             ("X-Go-Pprof", "1"), *extra), (line + "\n").encode())


class ProfileRequest:
    """An admitted ``/profile`` request; it holds one of the endpoint's slots
    until :meth:`close` (also called by :meth:`finish` and on ``with`` exit)."""

    def __init__(self, endpoint: PprofEndpoint, seconds: int, mode: str, head_only: bool) -> None:
        self.seconds = seconds
        self.mode = mode
        self.head_only = head_only
        self._endpoint = endpoint
        self._profile: Any = None
        self._closed = False

    def start(self) -> Response | None:
        """Enable the recording: None when it runs, else the error to answer."""
        if self.head_only:
            return None
        from . import Profile

        profile = Profile(interval=self._endpoint.interval, mode=self.mode)  # type: ignore[arg-type]
        try:
            profile.enable()
        except RuntimeError as exc:
            self.close()
            return error(503, f"could not start profiling: {exc}")
        self._profile = profile
        return None

    def wait(self, cancelled: Callable[[], bool] | None = None, step: float = 0.25) -> None:
        """Block this thread for ``seconds``; stop early when ``cancelled()``
        says the client went away."""
        deadline = time.monotonic() + self.seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(step, left))
            if cancelled is not None and cancelled():
                return

    def finish(self) -> Response:
        """Disable the recording and answer its pprof bytes; releases the slot."""
        try:
            body = b""
            if self._profile is not None:
                from .exporters import render

                self._profile.disable()
                body = render(self._profile.data, "pprof")
            return Response(200, (("Content-Type", "application/octet-stream"),
                                  ("Content-Disposition", 'attachment; filename="profile"'),
                                  ("X-Content-Type-Options", "nosniff"),
                                  ("Content-Length", str(len(body)))), b"" if self.head_only else body)
        except Exception as exc:
            return error(500, f"could not export the profile: {exc!r}")
        finally:
            self.close()

    def close(self) -> None:
        """Disable the recording if it still runs and give the slot back (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._profile is not None and self._profile.enabled:
                self._profile.disable()
        finally:
            self._endpoint._release()

    def __enter__(self) -> ProfileRequest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecentRequest:
    """An admitted ``/debug/ringprof/recent`` request; it holds one of the
    endpoint's slots until :meth:`finish` (or :meth:`close`)."""

    def __init__(self, endpoint: PprofEndpoint, seconds: int, format: str, head_only: bool) -> None:
        self.seconds = seconds
        self.format = format
        self.head_only = head_only
        self._endpoint = endpoint
        self._closed = False

    def finish(self) -> Response:
        """Merge the flight recorder's last ``seconds`` and encode them; releases the slot."""
        try:
            body = b""
            if not self.head_only:
                from .continuous import current
                from .exporters import render

                controller = current()
                if controller is None or controller.recorder is None:
                    return error(503, _RECORDER_OFF)
                body = render(controller.recent(self.seconds), self.format)
            if self.format == "html":
                headers: Headers = (("Content-Type", "text/html; charset=utf-8"),)
            else:
                headers = (("Content-Type", "application/octet-stream"),
                           ("Content-Disposition", 'attachment; filename="recent"'))
            return Response(200, (*headers, ("X-Content-Type-Options", "nosniff"),
                                  ("Content-Length", str(len(body)))), body)
        except Exception as exc:
            return error(500, f"could not export the recent profile: {exc!r}")
        finally:
            self.close()

    def close(self) -> None:
        """Give the slot back (idempotent)."""
        if not self._closed:
            self._closed = True
            self._endpoint._release()


_RECORDER_OFF = ("the flight recorder is not running: it needs continuous mode (ringprof-run, RINGPROF=1 with "
                 "import ringprof.auto, or ringprof.start(continuous=True)) with recent > 0")


def _recorder_running() -> bool:
    """True when continuous mode runs here with its flight recorder on
    (without importing continuous mode when nothing started it)."""
    module = sys.modules.get("ringprof.continuous")
    controller = module.current() if module is not None else None
    return controller is not None and controller.recorder is not None


class PprofEndpoint:
    """The ``/debug/pprof/`` endpoint, independent of any server.

    ``token``: when set, requests need ``Authorization: Bearer TOKEN``.
    ``max_seconds``: the longest recording one request may ask for.
    ``max_concurrent``: profile requests recording at once; more get 429.
    ``interval``: seconds between samples (Go's default rate is 100 Hz too).
    """

    def __init__(self, *, token: str | None = None, max_seconds: int = MAX_SECONDS,
                 max_concurrent: int = DEFAULT_MAX_CONCURRENT, interval: float = 0.01) -> None:
        if not isinstance(interval, int | float) or not 50e-6 <= interval <= 1:
            raise ValueError(f"interval must be from 50e-6 to 1 second, got {interval!r}")
        if not isinstance(max_seconds, int) or max_seconds < 1:
            raise ValueError(f"max_seconds must be a positive integer, got {max_seconds!r}")
        if not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ValueError(f"max_concurrent must be a positive integer, got {max_concurrent!r}")
        if token is not None and (not token or any(c.isspace() for c in token)):
            raise ValueError("token must be a non-empty string without whitespace")
        self.token = token
        self.max_seconds = max_seconds
        self.max_concurrent = max_concurrent
        self.interval = float(interval)
        self._lock = threading.Lock()
        self._running = 0

    # ------------------------------------------------------------------ slots
    def _acquire(self) -> bool:
        with self._lock:
            if self._running >= self.max_concurrent:
                return False
            self._running += 1
            return True

    def _release(self) -> None:
        with self._lock:
            self._running -= 1

    @property
    def running(self) -> int:
        """Profile requests recording now."""
        return self._running

    # ------------------------------------------------------------------ dispatch
    def _authorized(self, authorization: str | None) -> bool:
        if self.token is None:
            return True
        if not authorization:
            return False
        scheme, _, given = authorization.strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())

    def dispatch(self, method: str, path: str, query: str = "",
                 authorization: str | None = None) -> Response | ProfileRequest | RecentRequest:
        """Answer a request for ``path`` (the full path, starting with
        ``/debug/pprof`` or ``/debug/ringprof``).  A :class:`ProfileRequest` means
        "record, then answer"; a :class:`RecentRequest` "merge, then answer"
        (:meth:`RecentRequest.finish`)."""
        if not self._authorized(authorization):
            return error(401, "missing or wrong bearer token", (("WWW-Authenticate", 'Bearer realm="ringprof"'),))
        if path == RINGPROF_PREFIX or path.startswith(RINGPROF_PREFIX + "/"):
            return self._dispatch_ringprof(method, path[len(RINGPROF_PREFIX):], query)
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            return error(404, f"not found: {path}")
        if method not in ("GET", "HEAD"):
            return error(405, f"method {method} not allowed", (("Allow", "GET, HEAD"),))
        name = path[len(PREFIX):]
        if name == "":
            return Response(301, (("Location", PREFIX + "/"), ("Content-Length", "0")), b"")
        if name == "/":
            return self._index(method == "HEAD")
        if name == "/cmdline":
            body = b"" if method == "HEAD" else "\x00".join(sys.argv).encode("utf-8", "replace")
            return Response(200, (("Content-Type", "text/plain; charset=utf-8"),
                                  ("X-Content-Type-Options", "nosniff")), body)
        if name != "/profile":
            return error(404, f"unknown profile: {name.lstrip('/')}")
        try:
            seconds, mode = self._profile_params(query)
        except ValueError as exc:
            return error(400, str(exc))
        if not self._acquire():
            return error(429, f"too many profile requests running (at most {self.max_concurrent}); retry later",
                         (("Retry-After", str(seconds)),))
        return ProfileRequest(self, seconds, mode, method == "HEAD")

    def _dispatch_ringprof(self, method: str, name: str, query: str) -> Response | RecentRequest:
        if name != "/recent":
            return error(404, f"not found: {RINGPROF_PREFIX}{name}")
        if method not in ("GET", "HEAD"):
            return error(405, f"method {method} not allowed", (("Allow", "GET, HEAD"),))
        try:
            params = _query(query)
            seconds = _whole_seconds(params, DEFAULT_RECENT_SECONDS, MAX_RECENT_SECONDS)
        except ValueError as exc:
            return error(400, str(exc))
        fmt = params.get("format", ["pprof"])[0].strip().lower() or "pprof"
        if fmt not in ("pprof", "html"):
            return error(400, f"format must be pprof or html, got {fmt[:40]!r}")
        if not _recorder_running():
            return error(503, _RECORDER_OFF)
        if not self._acquire():
            return error(429, f"too many profile requests running (at most {self.max_concurrent}); retry later",
                         (("Retry-After", "1"),))
        return RecentRequest(self, seconds, fmt, method == "HEAD")

    def handle(self, method: str, path: str, query: str = "", authorization: str | None = None, *,
               cancelled: Callable[[], bool] | None = None) -> Response:
        """:meth:`dispatch`, then for a profile request record on this thread
        (for a recent request, merge and encode on this thread)."""
        answer = self.dispatch(method, path, query, authorization)
        if isinstance(answer, Response):
            return answer
        if isinstance(answer, RecentRequest):
            return answer.finish()
        with answer:
            failed = answer.start()
            if failed is not None:
                return failed
            if not answer.head_only:
                answer.wait(cancelled)
            return answer.finish()

    def _profile_params(self, query: str) -> tuple[int, str]:
        params = _query(query)
        seconds = _whole_seconds(params, DEFAULT_SECONDS, self.max_seconds)
        mode = params.get("mode", ["cpu"])[0].strip().lower() or "cpu"
        if mode not in ("cpu", "wall"):
            raise ValueError(f"mode must be cpu or wall, got {mode[:40]!r}")
        return seconds, mode

    def _index(self, head_only: bool) -> Response:
        body = _INDEX.format(max_seconds=self.max_seconds, default=DEFAULT_SECONDS,
                             argv=html.escape(" ".join(sys.argv))).encode()
        return Response(200, (("Content-Type", "text/html; charset=utf-8"), ("X-Content-Type-Options", "nosniff")),
                        b"" if head_only else body)


def _query(query: str) -> dict[str, list[str]]:
    try:
        return parse_qs(query, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"bad query string: {exc}") from None


def _whole_seconds(params: dict[str, list[str]], default: int, maximum: int) -> int:
    raw = params.get("seconds", [""])[0].strip()
    if raw == "":
        return default
    if not _SECONDS.match(raw) or not 1 <= int(raw) <= maximum:
        raise ValueError(f"seconds must be a whole number from 1 to {maximum}, got {raw[:40]!r}")
    return int(raw)


_INDEX = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>/debug/pprof/</title></head>
<body>
<p>/debug/pprof/ (ringprof, Python): {argv}</p>
<table>
<tr><td><a href="profile?seconds={default}">profile</a></td><td>CPU profile</td></tr>
<tr><td><a href="profile?seconds={default}&amp;mode=wall">profile?mode=wall</a></td><td>wall-clock profile</td></tr>
<tr><td><a href="cmdline">cmdline</a></td><td>the command line</td></tr>
<tr><td><a href="../ringprof/recent?seconds=60">../ringprof/recent</a></td><td>the last minute, from the flight
recorder (continuous mode); <a href="../ringprof/recent?seconds=60&amp;format=html">as a flame graph</a></td></tr>
</table>
<p>profile: records for <code>seconds</code> (default {default}, at most {max_seconds}) and answers a gzip pprof
profile: <code>go tool pprof http://HOST:PORT/debug/pprof/profile?seconds=30</code>.</p>
</body></html>
"""
