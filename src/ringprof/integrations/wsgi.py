"""WSGI middleware: label samples by route and method; capture slow requests.

    from ringprof.integrations.wsgi import RingprofMiddleware
    app.wsgi_app = RingprofMiddleware(app.wsgi_app)            # Flask
    application = RingprofMiddleware(application,              # any WSGI app
                                     slow_threshold=0.5, slow_dir="/var/lib/ringprof/slow")

Every sample taken while a request runs on its thread (the application call
and the iteration of its response body, until the server calls ``close()``)
carries the labels ``route`` and ``method`` (merged with labels already set on
the thread).  ``route`` is the URL rule when the app is Flask/Werkzeug (the
middleware matches ``url_map`` itself: ``/users/<int:id>``, ``<unmatched>``
for 404s), else the path with ids replaced (``/users/{int}``), or whatever
``route=callable(environ)`` returns.  At most ``max_routes`` distinct values
are used (label sets live as long as the process), further ones read
``<other>``.

With ``slow_threshold`` (seconds), a request that took at least that long has
its own profile cut out of the running one -- the samples of its thread within
its time range and labels -- and passed to ``on_slow(SlowRequest)`` and/or
written to ``slow_dir`` (``slow_format``, default ``html``: a flame graph).
This runs on the request's thread after the response was sent (in
``close()``), at most ``max_captures_per_minute`` times a minute.  Without a
running profiler (``ringprof.start``/``RINGPROF=1``) the labels cost one C call
per request and captures are empty.

With ``dump_slower_than`` (seconds) and/or ``dump_on_error=True``, a request
that slow, or one that raised or answered 5xx, asks continuous mode's flight
recorder to send the last ``dump_seconds`` (default 60) of the *whole process*
to the sinks (``dump_sinks``, default continuous mode's): "what was the
process doing in the minute before it went wrong".  Its ``meta["dump"]`` says
why (``reason`` ``slow``/``error``, ``route``, ``method``, ``path``,
``status``, ``duration``, ``error``).  At most ``max_dumps_per_minute``
(default 2); the request's thread only queues the dump.  Flask answers 500
for an exception in a view instead of raising it: that counts as an error.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import FlightDump, LabelCache, RouteNames, SlowCapture, SlowRequest, get_label, normalize_path, set_label

__all__ = ["RingprofMiddleware", "SlowRequest"]

Environ = dict[str, Any]


class RingprofMiddleware:
    def __init__(self, app: Callable[..., Any], *, slow_threshold: float | None = None,
                 on_slow: Callable[[SlowRequest], Any] | None = None,
                 slow_dir: str | os.PathLike[str] | None = None, slow_format: str = "html",
                 route: Callable[[Environ], str | None] | None = None, max_routes: int = 500,
                 max_captures_per_minute: int = 6, dump_slower_than: float | None = None,
                 dump_on_error: bool = False, dump_seconds: float = 60.0, dump_sinks: Iterable[Any] | None = None,
                 max_dumps_per_minute: int = 2) -> None:
        self.app = app
        self.slow = SlowCapture(slow_threshold, on_slow, slow_dir, slow_format, max_captures_per_minute)
        self.dump = FlightDump(dump_slower_than, dump_on_error, dump_seconds, dump_sinks, max_dumps_per_minute)
        self._route_fn = route
        self._routes = RouteNames(max_routes)
        self._labels = LabelCache()
        self._url_map: Any = _find_url_map(app)
        self._route_cache: dict[tuple[str, str, str], str] = {}

    def route_of(self, environ: Environ) -> str:
        if self._route_fn is not None:
            found = self._route_fn(environ)
            return self._routes(str(found)) if found else self._routes(
                normalize_path(environ.get("PATH_INFO") or "/"))
        path = environ.get("PATH_INFO") or "/"
        if self._url_map is None:
            return self._routes(normalize_path(path))
        key = (environ.get("REQUEST_METHOD", "GET"), environ.get("HTTP_HOST", ""), path)
        cached = self._route_cache.get(key)
        if cached is not None:
            return cached
        route = self._match(environ)
        if route != "<unmatched>":
            if len(self._route_cache) >= 4096:
                self._route_cache.clear()
            self._route_cache[key] = route
        return route

    def _match(self, environ: Environ) -> str:
        try:
            rule, _args = self._url_map.bind_to_environ(environ).match(return_rule=True)
        except Exception as exc:  # NotFound, MethodNotAllowed, RequestRedirect, ...
            return "<redirect>" if type(exc).__name__ == "RequestRedirect" else "<unmatched>"
        return self._routes(str(getattr(rule, "rule", rule)))

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        try:
            route = self.route_of(environ)
        except Exception:  # a route function must never fail the request
            route = "<error>"
        previous = get_label()
        label = self._labels.merged(previous, method, route)
        start = time.monotonic_ns()
        set_label(label)
        status: list[int] = []
        if self.slow.enabled or self.dump.enabled:
            def capture_status(status_line: str, headers: Any, exc_info: Any = None) -> Any:
                try:
                    status[:] = [int(status_line.split(" ", 1)[0])]
                except ValueError:
                    pass
                return start_response(status_line, headers, exc_info) if exc_info is not None \
                    else start_response(status_line, headers)
            sr: Callable[..., Any] = capture_status
        else:
            sr = start_response
        try:
            body = self.app(environ, sr)
        except BaseException as exc:
            self._finish(exc, environ, method, route, start, previous, label, status)
            raise
        return _Body(body, self, environ, method, route, start, previous, label, status)

    def _finish(self, error: BaseException | None, environ: Environ, method: str, route: str, start: int,
                previous: int, label: int, status: list[int]) -> None:
        if get_label() == label:
            set_label(previous)
        threshold = self.slow.threshold_ns
        if threshold is not None and time.monotonic_ns() - start >= threshold:
            end = time.monotonic_ns()
            self.slow.finish(method, route, str(environ.get("PATH_INFO") or "/"), start, end,
                             threading.get_native_id(), status[0] if status else None,
                             {"method": method, "route": route})
        if self.dump.enabled:
            self.dump.finish(method, route, str(environ.get("PATH_INFO") or "/"), start, time.monotonic_ns(),
                             status[0] if status else None, error if isinstance(error, Exception) else None)


class _Body:
    """The response body: keeps the request's labels set until ``close()``."""

    __slots__ = ("_args", "_body", "_closed", "_error", "_it", "_mw")

    def __init__(self, body: Iterable[bytes], mw: RingprofMiddleware, *args: Any) -> None:
        self._body = body
        self._it: Iterator[bytes] | None = None
        self._mw = mw
        self._args = args
        self._closed = False
        self._error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        self._it = iter(self._body)
        return self

    def __next__(self) -> bytes:
        if self._it is None:
            self._it = iter(self._body)
        try:
            return next(self._it)
        except StopIteration:
            raise
        except BaseException as exc:  # the body failed: the request did
            self._error = exc
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            closer = getattr(self._body, "close", None)
            if closer is not None:
                closer()
        finally:
            self._mw._finish(self._error, *self._args)


def _find_url_map(app: Any) -> Any:
    """Werkzeug's ``url_map`` of a Flask app (or of ``app.wsgi_app``'s owner)."""
    for candidate in (app, getattr(app, "__self__", None)):
        url_map = getattr(candidate, "url_map", None)
        if url_map is not None and callable(getattr(url_map, "bind_to_environ", None)):
            return url_map
    return None
