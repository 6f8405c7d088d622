"""Load the compiled sampler core (:mod:`ringprof._sampler`), once, lazily.

Nothing is loaded at ``import ringprof``: the first recording loads the core.
Where there is no core (an interpreter ringprof cannot sample, see setup.py)
:func:`load` raises :class:`SamplingUnavailable` with the reason in one line;
everything that does not sample keeps working.  The core imports no numpy:
:func:`_sampler.parse` returns ``array.array`` columns.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

_lock = threading.Lock()
_module: Any = None
_missing: str | None = None


class SamplingUnavailable(RuntimeError):
    """This interpreter cannot be sampled (the message says why in one line).

    ringprof still imports, reads, converts, compares and exports profiles
    there; only starting a recording raises this."""


def _why_missing(exc: ImportError) -> str:
    import sysconfig

    if sys.implementation.name != "cpython":
        why = f"{sys.implementation.name} is not CPython"
    elif sysconfig.get_config_var("Py_GIL_DISABLED"):
        why = "free-threaded CPython builds are not supported yet"
    elif sys.version_info >= (3, 16):
        why = f"CPython {sys.version_info[0]}.{sys.version_info[1]} is newer than 3.15, the last frame layout it knows"
    else:
        why = f"its native sampler is not installed ({' '.join(str(exc).split())})"
    return f"ringprof cannot sample on this interpreter: {why}"


def available() -> bool:
    """Whether the native sampler can be loaded here (loads it if so)."""
    try:
        load()
    except SamplingUnavailable:
        return False
    return True


def _in_main_interpreter() -> bool:
    """False inside a sub-interpreter (whose objects the drain must never touch)."""
    import importlib

    for name in ("_interpreters", "_xxsubinterpreters"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        try:
            current, main = mod.get_current(), mod.get_main()
        except Exception:  # pragma: no cover - an API we do not know: assume main
            return True
        current = current[0] if isinstance(current, tuple) else current
        main = main[0] if isinstance(main, tuple) else main
        return int(current) == int(main)
    return True


def load() -> Any:
    """The native core module (imported once, numpy-free).

    Raises :class:`SamplingUnavailable` where there is none (an interpreter
    setup.py could not build it for, or an install without it), and ImportError
    inside a sub-interpreter: the sampler, its handler and its drain belong to
    the main interpreter.
    """
    global _module, _missing
    if _module is not None:  # each interpreter has its own copy of this module: checked below, once
        return _module
    if not _in_main_interpreter():
        raise ImportError("ringprof records from the main interpreter only, not from a sub-interpreter")
    if _missing is not None:
        raise SamplingUnavailable(_missing)
    with _lock:
        if _module is None:
            try:
                _module = _import_core()
            except ImportError as exc:
                _missing = _why_missing(exc)
                raise SamplingUnavailable(_missing) from None
    return _module


def _import_core() -> Any:
    from . import _sampler

    return _sampler
