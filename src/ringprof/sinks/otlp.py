"""OTLP sink: post each window as OpenTelemetry profiles to a Collector (OTLP/HTTP).

``otlp:http://collector:4318``, or just ``otlp:`` to take everything from the
standard OpenTelemetry environment variables.

Each window becomes one ``ExportProfilesServiceRequest`` (see
:mod:`ringprof.exporters.otlp`) posted to ``/v1development/profiles`` with::

    Content-Type: application/x-protobuf          (application/json with encoding=json)
    Content-Encoding: gzip                         (unless compression=none)
    OTLP-Profiles-Development-Version: 1

The last header names the profiles development version of the payload (the
schema of opentelemetry-proto 1.45); version-aware servers reject a version
they do not support with 400, which is not retried.  Pyroscope ingests OTLP
natively on its HTTP port: ``otlp:http://pyroscope:4040`` (add ``tenant=`` for
a multi-tenant one).

Endpoint, as the OpenTelemetry SDKs resolve it: the sink URL if given (a base
URL: ``/v1development/profiles`` is appended unless its path already ends so),
else ``OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT`` (used as is), else
``OTEL_EXPORTER_OTLP_ENDPOINT`` plus ``/v1development/profiles``, else
``http://localhost:4318/v1development/profiles``.  Headers come from
``OTEL_EXPORTER_OTLP_HEADERS`` overlaid by ``OTEL_EXPORTER_OTLP_PROFILES_HEADERS``
(``key=value,...``, percent-decoded), then the sink's own options.
``OTEL_EXPORTER_OTLP[_PROFILES]_TIMEOUT`` (milliseconds),
``..._COMPRESSION`` (``gzip``/``none``), ``..._CERTIFICATE`` (CA bundle),
``..._CLIENT_CERTIFICATE``/``..._CLIENT_KEY`` (mutual TLS) and ``..._PROTOCOL``
(``http/protobuf``/``http/json``; ``grpc`` is refused with a clear message:
this sink speaks OTLP/HTTP only) are honoured the same way.

Options (query parameters of the sink URL):

``encoding``     ``protobuf`` (default) or ``json``
``compression``  ``gzip`` (default) or ``none``
``headers``      extra headers, ``key=value,key2=value2`` (percent-encoded values)
``token``        ``Authorization: Bearer <token>`` (``http://user:pass@host`` gives basic auth)
``tenant``       ``X-Scope-OrgID`` header (multi-tenant Pyroscope, Mimir-style gateways)
``ca``/``cert``/``key``/``verify=0``  TLS, as for the Pyroscope sink
``timeout``      seconds per attempt (default 10)
``retries``      extra attempts after a failure (default 3)
``backoff``      first retry delay, doubling with jitter, at most 30 s (default 0.5)

Retries follow the OTLP/HTTP rules: connection errors, timeouts and HTTP 429,
502, 503 and 504 are retried (honouring ``Retry-After``); other statuses fail
the window at once with the server's message.  A partial success (some
profiles rejected) is logged, not retried.  Like every sink it runs on
continuous mode's exporter thread; a slow or absent collector costs that
thread time, never the application's, and continuous mode drops the oldest
windows when too many wait.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from . import check_options, split_query
from .http import COMPRESSIONS, HTTPSink, compress

if TYPE_CHECKING:
    from ringprof.model import ProfileData

log = logging.getLogger("ringprof")

SIGNAL_PATH = "/v1development/profiles"
DEFAULT_ENDPOINT = "http://localhost:4318"
#: Profiles development version of the payload ringprof writes (opentelemetry-proto 1.45 schema).
DEVELOPMENT_VERSION = "1"
DEVELOPMENT_VERSION_HEADER = "OTLP-Profiles-Development-Version"

_ENCODINGS = {"protobuf": "application/x-protobuf", "json": "application/json"}
_PROTOCOLS = {"http/protobuf": "protobuf", "http/json": "json"}


def _retryable(status: int) -> bool:
    return status in (429, 502, 503, 504)


def _env(env: Mapping[str, str], name: str) -> str | None:
    """``OTEL_EXPORTER_OTLP_PROFILES_<name>``, else ``OTEL_EXPORTER_OTLP_<name>`` (None when unset/empty)."""
    for key in (f"OTEL_EXPORTER_OTLP_PROFILES_{name}", f"OTEL_EXPORTER_OTLP_{name}"):
        value = env.get(key, "").strip()
        if value:
            return value
    return None


def _signal_url(base: str) -> str:
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    if not path.endswith(SIGNAL_PATH):
        path += SIGNAL_PATH
    return urlunsplit(parts._replace(path=path))


def resolve_endpoint(url: str | None, env: Mapping[str, str]) -> str:
    """The full profiles URL, as the OpenTelemetry SDKs resolve it (see the module docstring)."""
    if url:
        return _signal_url(url)
    specific = env.get("OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT", "").strip()
    if specific:
        return specific
    return _signal_url(env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or DEFAULT_ENDPOINT)


class OTLPSink(HTTPSink):
    WHAT = "otlp sink"
    OPTIONS = ("encoding", "compression", "headers", *HTTPSink.COMMON_OPTIONS)

    def __init__(self, url: str | None = None, *, encoding: str | None = None, compression: str | None = None,
                 headers: Mapping[str, str] | None = None, token: str | None = None, tenant: str | None = None,
                 ca: str | None = None, cert: str | None = None, key: str | None = None, verify: bool = True,
                 timeout: float | None = None, retries: int = 3, backoff: float = 0.5,
                 resource: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> None:
        from ringprof.exporters.otlp import parse_key_values

        env = dict(os.environ if env is None else env)
        self.env = env
        endpoint = resolve_endpoint(url, env)
        if encoding is None:
            protocol = _env(env, "PROTOCOL") or "http/protobuf"
            if protocol not in _PROTOCOLS:
                raise ValueError(f"otlp sink: protocol {protocol!r} (OTEL_EXPORTER_OTLP_[PROFILES_]PROTOCOL) is not "
                                 "supported: this sink speaks OTLP/HTTP only; set "
                                 "OTEL_EXPORTER_OTLP_PROFILES_PROTOCOL=http/protobuf and point the endpoint at "
                                 "the collector's HTTP port (4318)")
            encoding = _PROTOCOLS[protocol]
        if encoding not in _ENCODINGS:
            raise ValueError(f"otlp sink: encoding must be protobuf or json, got {encoding!r}")
        compression = compression or _env(env, "COMPRESSION") or "gzip"
        if compression not in COMPRESSIONS:
            raise ValueError(f"otlp sink: compression must be gzip or none, got {compression!r}")
        if timeout is None:
            env_timeout = _env(env, "TIMEOUT")
            try:
                timeout = float(env_timeout) / 1000.0 if env_timeout else 10.0
            except ValueError:
                raise ValueError(f"otlp sink: OTEL_EXPORTER_OTLP_[PROFILES_]TIMEOUT must be milliseconds, "
                                 f"got {env_timeout!r}") from None
        all_headers = {
            **parse_key_values(env.get("OTEL_EXPORTER_OTLP_HEADERS", "")),
            **parse_key_values(env.get("OTEL_EXPORTER_OTLP_PROFILES_HEADERS", "")),
            **dict(headers or {}),
        }
        parts = self._setup(endpoint, token=token, tenant=tenant, ca=ca or _env(env, "CERTIFICATE"),
                            cert=cert or _env(env, "CLIENT_CERTIFICATE"), key=key or _env(env, "CLIENT_KEY"),
                            verify=verify, timeout=timeout, retries=retries, backoff=backoff, headers=all_headers)
        self.endpoint = urlunsplit(parts)
        self.encoding = encoding
        self.compression = compression
        self.resource = dict(resource or {})
        self.name = f"otlp:{self.endpoint}"
        self.partial_failures = 0  # windows the server accepted only in part

    @classmethod
    def from_url(cls, rest: str) -> OTLPSink:
        from ringprof.exporters.otlp import parse_key_values

        url, options = split_query(rest)
        check_options("otlp", options, cls.OPTIONS)
        kw = cls.common_options(options)
        for k in ("encoding", "compression"):
            if k in options:
                kw[k] = options[k]
        if "headers" in options:
            kw["headers"] = parse_key_values(options["headers"])
        return cls(url or None, **kw)

    def body(self, data: ProfileData) -> tuple[bytes, dict[str, str]]:
        """(request body, content headers) for one window."""
        from ringprof.exporters import render

        payload = render(data, "otlp" if self.encoding == "protobuf" else "otlp-json",
                         resource=self.resource, env=self.env)
        payload, encoding = compress(payload, self.compression)
        return payload, {"Content-Type": _ENCODINGS[self.encoding], **encoding}

    def export(self, data: ProfileData) -> None:
        body, content = self.body(data)
        resp = self._post(self.endpoint, body, {**content, DEVELOPMENT_VERSION_HEADER: DEVELOPMENT_VERSION},
                          retryable=_retryable)
        rejected, message = _partial_success(resp.body, resp.headers.get("Content-Type", ""))
        if rejected or message:
            self.partial_failures += 1
            log.warning("ringprof: %s accepted the window only in part: %d profile(s) rejected%s",
                        self.endpoint, rejected, f": {message}" if message else "")

    def __repr__(self) -> str:
        return f"<OTLPSink {self.endpoint} {self.encoding}>"


def _partial_success(body: bytes, content_type: str) -> tuple[int, str]:
    """(rejected profiles, error message) of an ``ExportProfilesServiceResponse``; (0, "") if unreadable."""
    if not body:
        return 0, ""
    try:
        if "json" in content_type:
            doc = json.loads(body)
            partial = doc.get("partialSuccess") or {}
            return int(partial.get("rejectedProfiles") or 0), str(partial.get("errorMessage") or "")
        from ringprof.exporters.protowire import fields, signed

        rejected, message = 0, ""
        for field, _wire, value in fields(body):
            if field == 1 and isinstance(value, bytes):
                for sub, _w, v in fields(value):
                    if sub == 1 and isinstance(v, int):
                        rejected = signed(v)
                    elif sub == 2 and isinstance(v, bytes):
                        message = v.decode("utf-8", "replace")
        return rejected, " ".join(message.split())[:200]
    except (ValueError, TypeError, AttributeError):
        return 0, ""
