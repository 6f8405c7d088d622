"""``RINGPROF_*`` environment variables -> continuous-mode settings.

============================  ===================================================  ==================
variable                      meaning                                              default
============================  ===================================================  ==================
``RINGPROF``                  ``1`` turns profiling on, ``0`` off (see below)       on for the launcher
``RINGPROF_INTERVAL``         sampling interval: seconds (``0.01``), ``10ms``,     ``0.01`` (100 Hz)
                              ``500us`` or a rate (``100hz``)
``RINGPROF_MODE``             ``cpu`` (CPU time of each thread) or ``wall``         ``cpu``
``RINGPROF_WINDOW``           window length: ``60``, ``60s``, ``5m``                ``60``
``RINGPROF_SINKS``            comma-separated sink URLs (:mod:`ringprof.sinks`)     ``dir:./ringprof-profiles?keep=60``
``RINGPROF_SERVICE``          service name (file prefix, Pyroscope app name)        the program's name
``RINGPROF_LABELS``           static labels for every window: ``k=v,k2=v2``         none
``RINGPROF_FOLLOW_FORK``      profile forked children (prefork servers)             ``1``
``RINGPROF_MAX_DEPTH``        frames kept per sample                                ``128``
``RINGPROF_HTTP``             serve ``/debug/pprof/`` on ``HOST:PORT`` (``:PORT``      off
                              is ``127.0.0.1:PORT``), :mod:`ringprof.http_server`
``RINGPROF_HTTP_TOKEN``       bearer token the pprof endpoint requires              none
============================  ===================================================  ==================

``RINGPROF`` accepts ``1/true/yes/on`` and ``0/false/no/off``.  The launcher
(``ringprof-run``, ``python -m ringprof.auto``) profiles unless it is off;
``import ringprof.auto`` profiles only when it is on.  Every bad value is
reported as one :class:`ConfigError` line naming the variable.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConfigError", "Settings", "from_env", "parse_duration", "parse_interval", "parse_labels"]

DEFAULT_SINKS = "dir:./ringprof-profiles?keep=60"

ENV_VARS = ("RINGPROF", "RINGPROF_INTERVAL", "RINGPROF_MODE", "RINGPROF_WINDOW", "RINGPROF_SINKS",
            "RINGPROF_SERVICE", "RINGPROF_LABELS", "RINGPROF_FOLLOW_FORK", "RINGPROF_MAX_DEPTH",
            "RINGPROF_HTTP", "RINGPROF_HTTP_TOKEN")


class ConfigError(ValueError):
    """A bad ``RINGPROF_*`` value; ``str()`` is one line naming the variable."""


@dataclass(frozen=True)
class Settings:
    enabled: bool | None  #: RINGPROF: True/False, or None when unset
    interval: float = 0.01
    mode: str = "cpu"
    window: float = 60.0
    sinks: tuple[Any, ...] = ()  #: sink objects, built (and so validated) from RINGPROF_SINKS
    sinks_spec: str = DEFAULT_SINKS
    service: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    follow_fork: bool = True
    max_depth: int = 128
    http: tuple[str, int] | None = None  #: RINGPROF_HTTP: where to serve /debug/pprof/
    http_token: str | None = None

    def start_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`ringprof.start`."""
        return {"interval": self.interval, "mode": self.mode, "max_depth": self.max_depth,
                "continuous": True, "window": self.window, "sinks": list(self.sinks),
                "service": self.service, "tags": dict(self.labels), "follow_fork": self.follow_fork}


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(us|ms|s|m|h|d|hz)?\s*$", re.IGNORECASE)
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_LABEL_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def parse_duration(text: str | float, what: str = "duration", *, rate: bool = False) -> float:
    """Seconds from ``0.01``, ``500us``, ``10ms``, ``30s``, ``5m``, ``2h`` or ``7d``.

    The one duration parser of ringprof: the CLI's ``-i``, ``ringprof overhead
    -i``, ``RINGPROF_INTERVAL``, ``RINGPROF_WINDOW`` and the sink options
    (``timeout``, ``backoff``, ``max_age``) all use it.  With
    ``rate=True`` (sampling intervals) a rate such as ``100hz`` is accepted too
    and means its period.  A number without a unit is seconds; numbers pass
    through.  Raises ValueError with a one-line message naming ``what``.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        m = _DURATION.match(str(text))
        unit = (m.group(2) or "s").lower() if m else ""
        if not m or (unit == "hz" and not rate):
            example = "0.01, 10ms, 500us, 100hz" if rate else "60, 60s, 500ms, 5m, 2h, 7d"
            raise ValueError(f"{text!r} is not an interval (e.g. {example})" if rate
                             else f"{what} {text!r} is not a duration (e.g. {example})")
        number = float(m.group(1))
        if unit == "hz":
            if not number > 0:
                raise ValueError(f"{what} {text!r} must be positive")
            value = 1.0 / number
        else:
            value = number * _SECONDS[unit]
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} {text!r} must be positive")
    return value


def parse_interval(text: str) -> float:
    """A sampling interval: :func:`parse_duration` with rates (``100hz``) allowed."""
    return parse_duration(text, "interval", rate=True)


def parse_labels(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` -> dict; keys are identifiers (``[A-Za-z_][A-Za-z0-9_.-]*``)."""
    out: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ValueError(f"{item!r} is not key=value")
        if not _LABEL_KEY.match(key):
            raise ValueError(f"label name {key!r} must start with a letter or _ and hold only "
                             "letters, digits, _ . -")
        if key in out:
            raise ValueError(f"label {key!r} given twice")
        out[key] = value
    return out


def parse_http_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[::1]:PORT`` or ``:PORT`` (``127.0.0.1``) -> (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:6060)")
    return host.strip("[]") or "127.0.0.1", int(port)


def _bool(name: str, text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={text!r}: expected 1 or 0 (also true/false, yes/no, on/off)")


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every ``RINGPROF_*`` variable; raises :class:`ConfigError`.

    Unset or empty variables take their defaults.  Sinks are constructed
    (which checks their options and files) but nothing is written or sent.
    """
    from .sampler import validate_options
    from .sinks import parse as parse_sinks

    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value is not None and value.strip() != "" else None

    raw = get("RINGPROF")
    enabled = None if raw is None else _bool("RINGPROF", raw)
    kw: dict[str, Any] = {"enabled": enabled}
    if (v := get("RINGPROF_INTERVAL")) is not None:
        try:
            kw["interval"] = parse_interval(v)
        except ValueError as exc:
            raise ConfigError(f"RINGPROF_INTERVAL: {exc}") from None
    if (v := get("RINGPROF_MODE")) is not None:
        kw["mode"] = v.strip().lower()
    if (v := get("RINGPROF_MAX_DEPTH")) is not None:
        try:
            kw["max_depth"] = int(v)
        except ValueError:
            raise ConfigError(f"RINGPROF_MAX_DEPTH={v!r}: expected an integer from 1 to 2048") from None
    try:
        validate_options(kw.get("interval", 0.01), kw.get("mode", "cpu"), kw.get("max_depth", 128), "auto")
    except ValueError as exc:
        text = str(exc)
        var = ("RINGPROF_MODE" if text.startswith("unknown mode") else
               "RINGPROF_MAX_DEPTH" if text.startswith("max_depth") else "RINGPROF_INTERVAL")
        raise ConfigError(f"{var}: {text}") from None
    if (v := get("RINGPROF_WINDOW")) is not None:
        try:
            window = parse_duration(v, "window")
        except ValueError as exc:
            raise ConfigError(f"RINGPROF_WINDOW: {exc}") from None
        if window < 1:
            raise ConfigError(f"RINGPROF_WINDOW={v!r}: windows shorter than 1 s are for tests, not services")
        kw["window"] = window
    spec = get("RINGPROF_SINKS") or DEFAULT_SINKS
    try:
        kw["sinks"] = tuple(parse_sinks(spec))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"RINGPROF_SINKS: {exc}") from None
    kw["sinks_spec"] = spec
    if (v := get("RINGPROF_SERVICE")) is not None:
        kw["service"] = v.strip()
    if (v := get("RINGPROF_LABELS")) is not None:
        try:
            kw["labels"] = parse_labels(v)
        except ValueError as exc:
            raise ConfigError(f"RINGPROF_LABELS: {exc}") from None
    if (v := get("RINGPROF_FOLLOW_FORK")) is not None:
        kw["follow_fork"] = _bool("RINGPROF_FOLLOW_FORK", v)
    if (v := get("RINGPROF_HTTP")) is not None:
        try:
            kw["http"] = parse_http_address(v)
        except ValueError as exc:
            raise ConfigError(f"RINGPROF_HTTP: {exc}") from None
    if (v := get("RINGPROF_HTTP_TOKEN")) is not None:
        kw["http_token"] = v.strip()
    return Settings(**kw)
