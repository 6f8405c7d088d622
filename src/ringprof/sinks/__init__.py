"""Sinks: where continuous mode sends each window.

A sink is any object with ``export(data: ProfileData) -> None`` (and an
optional ``close()``); a plain callable taking the window works too.  Sinks
run on continuous mode's exporter thread, one window at a time, never on an
application thread; an exception means "this window failed" and is counted
and logged (once per failure streak), never raised into the application.

Built-in sinks are named by URL, as in ``RINGPROF_SINKS``::

    dir:/var/lib/ringprof?format=pprof&keep=100&max_age=7d
    pyroscope:http://127.0.0.1:4040?token=...&tenant=...&timeout=10&retries=3
    pyroscope:http://127.0.0.1:4040?api=push&tenant=...
    otlp:http://127.0.0.1:4318?compression=gzip&timeout=10
    otlp:                       (endpoint and headers from OTEL_EXPORTER_OTLP_*)

Several sinks are separated by commas (a comma followed by ``dir:``,
``pyroscope:`` or ``otlp:`` starts a new sink, so option values may contain
commas).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from ringprof.model import ProfileData

__all__ = ["CallbackSink", "Sink", "SinkError", "coerce", "from_url", "parse"]

#: URL schemes of the built-in sinks.
SCHEMES = ("dir", "pyroscope", "otlp")


class SinkError(Exception):
    """A sink could not export a window (the message says why, on one line)."""


@runtime_checkable
class Sink(Protocol):
    def export(self, data: ProfileData) -> None: ...


class CallbackSink:
    """Adapts a callable ``fn(data)`` to the sink interface."""

    def __init__(self, fn: Callable[[ProfileData], Any], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__qualname__", None) or repr(fn)

    def export(self, data: ProfileData) -> None:
        self.fn(data)

    def __repr__(self) -> str:
        return f"<CallbackSink {self.name}>"


def sink_name(sink: object) -> str:
    """A short human name for log lines."""
    name = getattr(sink, "name", None)
    return str(name) if name else type(sink).__name__


def parse_int(text: str, what: str, minimum: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} must be an integer, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {value}")
    return value


def parse_bool(text: str, what: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{what} must be 1/0, true/false, yes/no or on/off, got {text!r}")


def split_query(rest: str) -> tuple[str, dict[str, str]]:
    """``'/path?a=1&b=2'`` -> ``('/path', {'a': '1', 'b': '2'})``; repeated keys are an error."""
    base, _, query = rest.partition("?")
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in options:
            raise ValueError(f"option {key!r} given twice")
        options[key] = value
    return base, options


def check_options(scheme: str, options: Mapping[str, str], known: Iterable[str]) -> None:
    known = tuple(known)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"{scheme} sink: unknown option{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(unknown)} (known: {', '.join(known)})")


def from_url(spec: str) -> Any:
    """A built-in sink from its URL (``dir:...``, ``pyroscope:...`` or ``otlp:...``)."""
    spec = spec.strip()
    scheme, sep, rest = spec.partition(":")
    if not sep or scheme not in SCHEMES:
        raise ValueError(f"unknown sink {spec!r}: expected dir:PATH[?options], pyroscope:URL[?options] "
                         "or otlp:[URL][?options]")
    if scheme == "otlp":
        from .otlp import OTLPSink

        return OTLPSink.from_url(rest)
    if not rest:
        raise ValueError(f"sink {spec!r} is missing its {'path' if scheme == 'dir' else 'server URL'}")
    if scheme == "dir":
        from .directory import DirectorySink

        return DirectorySink.from_url(rest)
    from .pyroscope import PyroscopeSink

    return PyroscopeSink.from_url(rest)


_SPLIT = re.compile(r",\s*(?=(?:" + "|".join(SCHEMES) + r"):)")


def parse(spec: str) -> list[Any]:
    """Sinks from a comma-separated list of sink URLs (``RINGPROF_SINKS``)."""
    parts = [p.strip() for p in _SPLIT.split(spec) if p.strip()]
    if not parts:
        raise ValueError("no sink given")
    return [from_url(p) for p in parts]


def coerce(sink: object) -> Any:
    """A sink from a URL string, a sink object or a callable."""
    if isinstance(sink, str):
        return from_url(sink)
    if callable(getattr(sink, "export", None)):
        return sink
    if callable(sink):
        return CallbackSink(sink)
    raise TypeError(f"not a sink: {sink!r} (expected a sink URL, an object with export(data) or a callable)")
