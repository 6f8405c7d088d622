"""ringprof: a low-overhead sampling profiler for CPython.

    import ringprof
    with ringprof.Profile(interval=0.005) as p:
        work()
    p.print_top()

One public noun, as in cProfile: :class:`Profile` records and is the
recording.  ``import ringprof as cProfile`` works too (see the README).
"""

from typing import TYPE_CHECKING

from .cprofile import run, runctx
from .labels import labels
from .model import Frame, ProfileData
from .profile import Profile, TopEntry, load, profile, start, stop

__all__ = [
    "Frame",
    "Profile",
    "ProfileData",
    "TopEntry",
    "labels",
    "load",
    "profile",
    "run",
    "runctx",
    "start",
    "stop",
]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .http_server import PprofServer


def serve_http(host: str = "127.0.0.1", port: int = 6060, token: str | None = None, *, max_seconds: int = 300,
               max_concurrent: int = 2, max_connections: int = 16, interval: float = 0.01) -> "PprofServer":
    """Serve Go-style ``/debug/pprof/`` on ``host:port`` from a daemon thread (see :mod:`ringprof.http_server`)."""
    from .http_server import serve_http as serve

    return serve(host, port, token, max_seconds=max_seconds, max_concurrent=max_concurrent,
                 max_connections=max_connections, interval=interval)


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext ringprof``: the ``%ringprof`` magics (see :mod:`ringprof.ipython_magic`)."""
    from .ipython_magic import load_ipython_extension as load

    load(ipython)
