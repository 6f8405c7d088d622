"""ASGI middleware: label samples by route and method; capture slow requests.

    from ringprof.integrations.asgi import RingprofMiddleware
    app = Starlette(routes=..., middleware=[Middleware(RingprofMiddleware, slow_threshold=0.5,
                                                       slow_dir="/var/lib/ringprof/slow")])
    app.add_middleware(RingprofMiddleware)                      # FastAPI / Starlette
    app = RingprofMiddleware(app)                               # any ASGI app

Labels are per OS thread and an event loop runs many requests on one
thread, so the middleware makes them *per request*: the request's coroutine
is driven through a thin wrapper that sets the request's label set each time
the event loop resumes it and restores the loop's own labels each time it
suspends.  Every sample taken while the request's code runs (including
``ringprof.labels()`` blocks and OpenTelemetry span labels set inside it,
which persist across its awaits) carries ``route`` and ``method``.  Tasks the
request spawns itself (``asyncio.create_task``) are not covered.

``route`` is the route template: the middleware matches the routes of the
Starlette/FastAPI app it wraps (``/users/{id}``, ``<unmatched>`` for 404s),
else the path with ids replaced, or whatever ``route=callable(scope)``
returns; at most ``max_routes`` distinct values, then ``<other>``.

With ``slow_threshold`` (seconds), a slower request has its profile cut out of
the running one -- the samples of the event-loop thread within its time range
carrying its labels (concurrent requests to the *same* route overlap) -- and
passed to ``on_slow(SlowRequest)`` and/or written to ``slow_dir``, after the
response was sent, at most ``max_captures_per_minute`` times a minute.

With ``dump_slower_than`` (seconds) and/or ``dump_on_error=True``, a request
that slow, or one that raised or answered 5xx, asks continuous mode's flight
recorder to send the last ``dump_seconds`` (default 60) of the whole process
to the sinks (``dump_sinks``, default continuous mode's), at most
``max_dumps_per_minute`` (default 2) times a minute; ``meta["dump"]`` says why.
Only a queue push runs on the event loop: the profile is merged and exported
on continuous mode's exporter thread.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Iterable
from typing import Any

from . import FlightDump, LabelCache, RouteNames, SlowCapture, SlowRequest, get_label, normalize_path, set_label

__all__ = ["RingprofMiddleware", "SlowRequest"]

Scope = dict[str, Any]
ASGIApp = Callable[..., Awaitable[None]]


class _Labeled:
    """Awaitable driving ``coro`` with thread label ``label`` set while it runs.

    Each resumption (``send``/``throw`` from the task) sets the request's
    label; each suspension records the label the request's code left (so its
    own label changes survive awaits) and restores the loop's.
    """

    __slots__ = ("_it", "label")

    def __init__(self, coro: Awaitable[Any], label: int) -> None:
        self._it: Any = coro.__await__()
        self.label = label

    def __await__(self) -> Generator[Any, None, Any]:
        return self

    def __iter__(self) -> _Labeled:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        previous = get_label()
        set_label(self.label)
        try:
            return self._it.send(value)
        finally:
            self.label = get_label()
            set_label(previous)

    def throw(self, *args: Any) -> Any:
        previous = get_label()
        set_label(self.label)
        try:
            return self._it.throw(*args)
        finally:
            self.label = get_label()
            set_label(previous)

    def close(self) -> None:
        self._it.close()


class RingprofMiddleware:
    def __init__(self, app: ASGIApp, *, slow_threshold: float | None = None,
                 on_slow: Callable[[SlowRequest], Any] | None = None,
                 slow_dir: str | os.PathLike[str] | None = None, slow_format: str = "html",
                 route: Callable[[Scope], str | None] | None = None, max_routes: int = 500,
                 max_captures_per_minute: int = 6, dump_slower_than: float | None = None,
                 dump_on_error: bool = False, dump_seconds: float = 60.0, dump_sinks: Iterable[Any] | None = None,
                 max_dumps_per_minute: int = 2) -> None:
        self.app = app
        self.slow = SlowCapture(slow_threshold, on_slow, slow_dir, slow_format, max_captures_per_minute)
        self.dump = FlightDump(dump_slower_than, dump_on_error, dump_seconds, dump_sinks, max_dumps_per_minute)
        self._route_fn = route
        self._routes = RouteNames(max_routes)
        self._labels = LabelCache()
        self._router: Any = None
        self._router_searched = False

    def route_of(self, scope: Scope) -> str:
        path = str(scope.get("path") or "/")
        if self._route_fn is not None:
            found = self._route_fn(scope)
            return self._routes(str(found) if found else normalize_path(path))
        if not self._router_searched:
            self._router = _find_routes(self.app)
            self._router_searched = True
        if self._router is None:
            return self._routes(normalize_path(path))
        return _match_starlette(self._router, scope, self._routes)

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        try:
            route = self.route_of(scope)
        except Exception:  # a route function must never fail the request
            route = "<error>"
        # The labels of the task serving the request (``task``/``task_id`` while a
        # recording runs, labels of an enclosing ringprof.labels()) plus ours.
        label = self._labels.merged(get_label(), method, route)
        thread = threading.get_native_id()
        status: list[int] = []
        if self.slow.enabled or self.dump.enabled:
            async def send_status(message: dict[str, Any]) -> None:
                if message.get("type") == "http.response.start":
                    status.append(int(message.get("status", 0)))
                await send(message)
            downstream: Callable[..., Any] = send_status
        else:
            downstream = send
        start = time.monotonic_ns()
        error: Exception | None = None
        try:
            await _Labeled(self.app(scope, receive, downstream), label)
        except Exception as exc:
            error = exc
            raise
        finally:
            end = time.monotonic_ns()
            if self.slow.enabled:
                self.slow.finish(method, route, str(scope.get("path") or "/"), start, end, thread,
                                 status[0] if status else None, {"method": method, "route": route})
            if self.dump.enabled:
                self.dump.finish(method, route, str(scope.get("path") or "/"), start, end,
                                 status[0] if status else None, error)


def _find_routes(app: Any) -> Any:
    """The object holding Starlette ``routes`` below ``app`` (through ``.app``)."""
    seen = 0
    node = app
    while node is not None and seen < 32:
        routes = getattr(node, "routes", None)
        if isinstance(routes, list) and routes and callable(getattr(routes[0], "matches", None)):
            return node
        router = getattr(node, "router", None)
        routes = getattr(router, "routes", None)
        if isinstance(routes, list) and routes and callable(getattr(routes[0], "matches", None)):
            return router
        node = getattr(node, "app", None)
        seen += 1
    return None


def _match_starlette(router: Any, scope: Scope, names: RouteNames) -> str:
    from starlette.routing import Match

    partial = None
    for route in router.routes:
        match, _child = route.matches(scope)
        if match is Match.FULL:
            return names(str(getattr(route, "path", "") or getattr(route, "path_format", "") or "<mount>"))
        if match is Match.PARTIAL and partial is None:
            partial = route
    if partial is not None:
        return names(str(getattr(partial, "path", "<partial>")))
    return "<unmatched>"
