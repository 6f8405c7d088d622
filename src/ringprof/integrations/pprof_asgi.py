"""The pprof endpoint as an ASGI app: mount it into Starlette, FastAPI or any ASGI server.

    from ringprof.integrations.pprof_asgi import PprofApp
    app.mount("/debug/pprof", PprofApp())               # Starlette / FastAPI
    app.mount("/debug", PprofApp())                     # ... also /debug/ringprof/recent (the flight recorder)
    app.add_middleware(PprofApp, token="s3cret")        # or as middleware in front of the app
    app = PprofApp(app)                                 # any ASGI app

Paths, parameters and answers are :mod:`ringprof.pprof_http`'s.  A profile
request never blocks the event loop: enabling, disabling and encoding run in
a worker thread, the recording itself is an ``asyncio.sleep``, cut short when
the client disconnects.  ``/debug/ringprof/recent`` (the flight recorder) is
merged and encoded in a worker thread too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from ..pprof_http import (
    DEFAULT_MAX_CONCURRENT,
    MAX_SECONDS,
    PprofEndpoint,
    RecentRequest,
    Response,
    error,
    find_pprof_path,
)

__all__ = ["PprofApp"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class PprofApp:
    """ASGI app answering ``/debug/pprof/*``; other requests go to ``app`` (404 without one)."""

    def __init__(self, app: ASGIApp | None = None, *, token: str | None = None, max_seconds: int = MAX_SECONDS,
                 max_concurrent: int = DEFAULT_MAX_CONCURRENT, interval: float = 0.01) -> None:
        self.app = app
        self.endpoint = PprofEndpoint(token=token, max_seconds=max_seconds, max_concurrent=max_concurrent,
                                      interval=interval)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str | None = None
        full = ""
        if scope["type"] == "http":
            full = _full_path(scope)
            path = find_pprof_path(full)
        if path is None and self.app is not None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            answer = await self._answer(scope, receive, path or full)
        except Exception as exc:  # never turn a profiling problem into the server's problem
            answer = error(500, f"internal error: {exc!r}")
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]})
        await send({"type": "http.response.body", "body": answer.body})

    async def _answer(self, scope: Scope, receive: Receive, path: str) -> Response:
        auth = None
        for key, value in scope.get("headers", ()):
            if key.lower() == b"authorization":
                auth = value.decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        answer = self.endpoint.dispatch(scope.get("method", "GET"), path, query, auth)
        if isinstance(answer, Response):
            return answer
        if isinstance(answer, RecentRequest):  # merging and encoding run off the event loop
            return await asyncio.to_thread(answer.finish)  # (which gives the slot back, even if we are cancelled)
        with answer:
            failed = await asyncio.to_thread(answer.start)
            if failed is not None:
                return failed
            if not answer.head_only:
                gone = asyncio.ensure_future(_disconnected(receive))
                try:
                    await asyncio.wait({gone}, timeout=answer.seconds)
                finally:
                    gone.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await gone
            return await asyncio.to_thread(answer.finish)


def _full_path(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    # Newer servers and frameworks keep the mount prefix in ``path``; older ones strip it.
    return path if not root or path.startswith(root) else root + path


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
