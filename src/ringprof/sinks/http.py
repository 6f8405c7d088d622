"""What the network sinks (OTLP, Pyroscope) share: the request, its auth and TLS, retries (standard library only).

:class:`HTTPSink` is their common base: it checks the server URL (``http`` or
``https``, credentials in ``user:password@`` taken out of the URL and sent as
basic auth), builds the auth headers (``token`` as a bearer token, ``tenant``
as ``X-Scope-OrgID``), the TLS context (``ca``, ``cert``/``key``, ``verify``),
reads the options every network sink takes from its URL
(:meth:`HTTPSink.common_options`) and posts with :func:`post`.

Sinks run on continuous mode's exporter thread, never on an application
thread, and continuous mode bounds the windows waiting for them; this module
bounds the time one window may take: ``retries + 1`` attempts of at most
``timeout`` seconds each, separated by exponential backoff with jitter
(``backoff``, doubling, at most 30 s; a ``Retry-After`` answer is honoured up
to the same cap).
"""

from __future__ import annotations

import base64
import gzip
import math
import os
import random
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from ..config import parse_duration
from . import SinkError, parse_bool, parse_int

MAX_BACKOFF = 30.0


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    attempts: int


def check_retry_settings(what: str, timeout: float, retries: int, backoff: float) -> None:
    if timeout <= 0 or not math.isfinite(timeout):
        raise ValueError(f"{what}: timeout must be positive, got {timeout}")
    if retries < 0:
        raise ValueError(f"{what}: retries must be >= 0, got {retries}")
    if backoff < 0 or not math.isfinite(backoff):
        raise ValueError(f"{what}: backoff must be >= 0, got {backoff}")


def tls_context(what: str, scheme: str, ca: str | None = None, cert: str | None = None, key: str | None = None,
                verify: bool = True) -> ssl.SSLContext | None:
    """The TLS context for an ``https`` endpoint (None for ``http``)."""
    if scheme != "https":
        if ca or cert:
            raise ValueError(f"{what}: ca/cert options need an https:// URL")
        return None
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def backoff_delay(backoff: float, attempt: int, retry_after: float | None) -> float:
    """Delay before retry number ``attempt`` (1-based)."""
    delay = min(backoff * float(2 ** (attempt - 1)), MAX_BACKOFF) * random.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_BACKOFF))
    return delay


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float, retries: int, backoff: float,
         retryable: Callable[[int], bool], context: ssl.SSLContext | None = None,
         sleep: Callable[[float], object], label: str | None = None,
         on_attempt: Callable[[], object] | None = None) -> Response:
    """POST ``body``; retry connection errors, timeouts and ``retryable`` statuses.

    Raises :class:`SinkError` (one line, with the server's message) when a
    status is not retryable or the attempts run out.
    """
    where = label or url
    last = ""
    retry_after: float | None = None
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff_delay(backoff, attempt, retry_after))
        retry_after = None
        if on_attempt is not None:
            on_attempt()
        req = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
                return Response(resp.status, dict(resp.headers.items()), resp.read(1 << 20), attempt + 1)
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code} from {where}: {error_text(exc)}"
            if not retryable(exc.code):
                raise SinkError(last) from None
            retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"cannot reach {where}: {reason}"
    raise SinkError(f"{last} (gave up after {retries + 1} attempts)")


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def error_text(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(300).decode("utf-8", "replace")
    except Exception:
        text = ""
    return " ".join(text.split())[:200] or str(exc.reason)


#: ``compression`` values a network sink accepts, with the header they add.
COMPRESSIONS = ("gzip", "none")


def compress(payload: bytes, compression: str) -> tuple[bytes, dict[str, str]]:
    """(body, content headers) of ``payload`` under ``compression`` (see :data:`COMPRESSIONS`)."""
    if compression == "gzip":
        return gzip.compress(payload, compresslevel=6, mtime=0), {"Content-Encoding": "gzip"}
    return payload, {}


def without_credentials(parts: SplitResult) -> SplitResult:
    """The URL without its ``user:password@`` part."""
    host = parts.hostname or ""
    netloc = host if ":" not in host else f"[{host}]"
    return parts._replace(netloc=netloc + (f":{parts.port}" if parts.port else ""))


class HTTPSink:
    """The common base of the network sinks; subclasses name themselves in :attr:`WHAT`."""

    #: How error messages name the sink ("otlp sink").
    WHAT = "http sink"
    #: URL options every network sink takes (see :meth:`common_options`).
    COMMON_OPTIONS = ("token", "tenant", "ca", "cert", "key", "verify", "timeout", "retries", "backoff")

    headers: dict[str, str]
    timeout: float
    retries: int
    backoff: float
    attempts: int

    def _setup(self, url: str, *, token: str | None = None, user: str | None = None, password: str | None = None,
               tenant: str | None = None, ca: str | None = None, cert: str | None = None, key: str | None = None,
               verify: bool = True, timeout: float = 10.0, retries: int = 3, backoff: float = 0.5,
               headers: Mapping[str, str] | None = None) -> SplitResult:
        """Check ``url`` and the settings, set the auth headers, TLS and retry policy.

        Returns the URL without credentials; ``user:password@`` in it is basic
        auth (``user``/``password`` given here win).  Raises ValueError with one
        line naming the sink.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{self.WHAT}: URL must be http(s)://host[:port], got {url!r}")
        if parts.username is not None:
            user = user if user is not None else unquote(parts.username)
            password = password if password is not None else unquote(parts.password or "")
            parts = without_credentials(parts)
        if token and user is not None:
            raise ValueError(f"{self.WHAT}: give either a token or basic auth (user:password), not both")
        check_retry_settings(self.WHAT, timeout, retries, backoff)
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.headers = dict(headers or {})
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif user is not None:
            cred = base64.b64encode(f"{user}:{password or ''}".encode()).decode("ascii")
            self.headers["Authorization"] = f"Basic {cred}"
        if tenant:
            self.headers["X-Scope-OrgID"] = tenant
        self._context = tls_context(self.WHAT, parts.scheme, ca, cert, key, verify)
        self._sleep: Callable[[float], object] = time.sleep  # tests may replace it
        self.attempts = 0  # HTTP attempts made (for tests and stats)
        return parts

    @classmethod
    def common_options(cls, options: Mapping[str, str]) -> dict[str, Any]:
        """Keyword arguments from the :attr:`COMMON_OPTIONS` of a sink URL's query (files checked, values parsed)."""
        kw: dict[str, Any] = {k: options[k] for k in ("token", "tenant", "ca", "cert", "key") if k in options}
        for k in ("ca", "cert", "key"):
            if k in kw and not os.path.isfile(kw[k]):
                raise ValueError(f"{cls.WHAT}: {k} file {kw[k]!r} does not exist")
        if "verify" in options:
            kw["verify"] = parse_bool(options["verify"], f"{cls.WHAT} verify")
        if "timeout" in options:
            kw["timeout"] = parse_duration(options["timeout"], f"{cls.WHAT} timeout")
        if "retries" in options:
            kw["retries"] = parse_int(options["retries"], f"{cls.WHAT} retries")
        if "backoff" in options:
            kw["backoff"] = parse_duration(options["backoff"], f"{cls.WHAT} backoff")
        return kw

    def _post(self, url: str, body: bytes, headers: Mapping[str, str], *, retryable: Callable[[int], bool],
              label: str | None = None) -> Response:
        """POST with the sink's auth headers (then ``headers``), TLS and retry policy."""
        from ringprof import __version__

        sent = {**self.headers, **headers, "User-Agent": f"ringprof/{__version__}"}
        return post(url, body, sent, timeout=self.timeout, retries=self.retries, backoff=self.backoff,
                    retryable=retryable, context=self._context, sleep=self._sleep, label=label,
                    on_attempt=self._count_attempt)

    def _count_attempt(self) -> None:
        self.attempts += 1
