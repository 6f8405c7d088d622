"""ringprof: a low-overhead sampling profiler for CPython.

    import ringprof
    with ringprof.Profile(interval=0.005) as p:
        work()
    p.print_top()

One public noun, as in cProfile: :class:`Profile` records and is the
recording.  ``import ringprof as cProfile`` works too (see the README).

Importing ringprof is light: the names below are loaded on first use, and
nothing here imports numpy or starts a thread.
"""

from __future__ import annotations

# ``labels`` is both a submodule and the function it exports: bind the
# function eagerly (the module is small), or a later ``import ringprof.labels``
# would make the attribute the module.
from .labels import labels

TYPE_CHECKING = False  # typing itself is not imported: it costs milliseconds
if TYPE_CHECKING:
    from typing import Any

    from .control import recent, start, stop
    from .cprofile import run, runctx
    from .decorator import profile
    from .http_server import PprofServer
    from .model import Frame, ProfileData
    from .readers import ProfileFormatError, load
    from .recording import Profile, TopEntry

__all__ = [
    "Frame",
    "Profile",
    "ProfileData",
    "ProfileFormatError",
    "TopEntry",
    "labels",
    "load",
    "profile",
    "recent",
    "run",
    "runctx",
    "serve_http",
    "start",
    "stop",
]
__version__ = "0.1.0"

_LAZY = {
    "Frame": "model",
    "ProfileData": "model",
    "Profile": "recording",
    "TopEntry": "recording",
    "load": "readers",
    "ProfileFormatError": "readers",
    "profile": "decorator",
    "run": "cprofile",
    "runctx": "cprofile",
    "recent": "control",
    "start": "control",
    "stop": "control",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ringprof' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


def serve_http(host: str = "127.0.0.1", port: int = 6060, token: str | None = None, *, max_seconds: int = 300,
               max_concurrent: int = 2, max_connections: int = 16, interval: float = 0.01) -> PprofServer:
    """Serve Go-style ``/debug/pprof/`` on ``host:port`` from a daemon thread (see :mod:`ringprof.http_server`)."""
    from .http_server import serve_http as serve

    return serve(host, port, token, max_seconds=max_seconds, max_concurrent=max_concurrent,
                 max_connections=max_connections, interval=interval)


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext ringprof``: the ``%ringprof`` magics (see :mod:`ringprof.ipython_magic`)."""
    from .ipython_magic import load_ipython_extension as load

    load(ipython)
