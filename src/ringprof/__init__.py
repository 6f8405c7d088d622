"""ringprof: a low-overhead sampling profiler for CPython.

    import ringprof
    with ringprof.Profile(interval=0.005) as p:
        work()
    p.print_top()

One public noun, as in cProfile: :class:`Profile` records and is the
recording.  ``import ringprof as cProfile`` works too (see the README).
"""

from .cprofile import run, runctx
from .labels import labels
from .model import Frame, ProfileData
from .profile import Profile, TopEntry, profile, start, stop
from .readers import ProfileFormatError, load

__all__ = [
    "Frame",
    "Profile",
    "ProfileData",
    "ProfileFormatError",
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
