"""The pprof endpoint as a WSGI app: mount it into Flask, Django or any WSGI server.

    from ringprof.integrations.pprof_wsgi import PprofApp
    app.wsgi_app = PprofApp(app.wsgi_app)               # Flask: /debug/pprof/* here, the rest to the app
    application = PprofApp(application, token="s3cret")  # any WSGI app
    # or mounted: werkzeug's DispatcherMiddleware(app, {"/debug": PprofApp()})
    # (a mount at "/debug" also serves /debug/ringprof/recent, the flight recorder)

Paths, parameters and answers are :mod:`ringprof.pprof_http`'s.  A profile
request records on the worker thread that serves it, for ``seconds``: it
holds that one thread (as Go's handler holds its goroutine), never the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..pprof_http import DEFAULT_MAX_CONCURRENT, MAX_SECONDS, PprofEndpoint, error, find_pprof_path

__all__ = ["PprofApp"]

Environ = dict[str, Any]
WSGIApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]


class PprofApp:
    """WSGI app answering ``/debug/pprof/*``; other paths go to ``app`` (404 without one)."""

    def __init__(self, app: WSGIApp | None = None, *, token: str | None = None, max_seconds: int = MAX_SECONDS,
                 max_concurrent: int = DEFAULT_MAX_CONCURRENT, interval: float = 0.01) -> None:
        self.app = app
        self.endpoint = PprofEndpoint(token=token, max_seconds=max_seconds, max_concurrent=max_concurrent,
                                      interval=interval)

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        full = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        path = find_pprof_path(full)
        if path is None and self.app is not None:
            return self.app(environ, start_response)
        try:
            answer = self.endpoint.handle(environ.get("REQUEST_METHOD", "GET"), path or full,
                                          environ.get("QUERY_STRING", ""), environ.get("HTTP_AUTHORIZATION"))
        except Exception as exc:  # never turn a profiling problem into the server's problem
            answer = error(500, f"internal error: {exc!r}")
        start_response(answer.status_line, list(answer.headers))
        return [answer.body]
