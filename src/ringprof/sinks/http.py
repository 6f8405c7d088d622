"""HTTP POST with bounded retries, shared by the network sinks (standard library only).

Sinks run on continuous mode's exporter thread, never on an application
thread, and continuous mode bounds the windows waiting for them; this module
bounds the time one window may take: ``retries + 1`` attempts of at most
``timeout`` seconds each, separated by exponential backoff with jitter
(``backoff``, doubling, at most 30 s; a ``Retry-After`` answer is honoured up
to the same cap).
"""

from __future__ import annotations

import math
import random
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import SinkError

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
