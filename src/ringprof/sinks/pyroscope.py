"""Pyroscope sink: push each window as pprof to Pyroscope's HTTP ingest API.

``pyroscope:http://127.0.0.1:4040?token=...``

The request follows Pyroscope's documented ``POST /ingest`` endpoint (the
server HTTP API, "pprof format" section)::

    POST <server>/ingest?name=<app>{k=v,...}&from=<unix s>&until=<unix s>
                        &format=pprof&sampleRate=<Hz>
    Content-Type: multipart/form-data; boundary=...
      profile             the gzipped pprof bytes
      sample_type_config  which pprof sample types to ingest (JSON)

For pprof, ``name`` is the *prefix* of the application name: Pyroscope
appends the profile type (``my-app.cpu{...}``, ``my-app.wall{...}``).  The
series labels in braces are the window's ``tags`` (``RINGPROF_LABELS``) plus
the sink's ``tags``; per-sample labels (``ringprof.labels``, route, span id)
travel inside the pprof as sample labels.  Label names are made valid for
Pyroscope (``[A-Za-z_][A-Za-z0-9_]*``).

Options (query parameters of the sink URL, removed before the request):

``app``            application name (default: the window's service name)
``token``          ``Authorization: Bearer <token>``; ``token_file`` reads it from a file
``user``/``password``  HTTP basic auth (also ``https://user:pass@host``)
``tenant``         ``X-Scope-OrgID`` header (multi-tenant Pyroscope)
``ca``             CA bundle file to verify the server (https)
``cert``/``key``   client certificate and key files (mutual TLS)
``verify=0``       do not verify the server certificate (testing only)
``timeout``        seconds per attempt (default 10)
``retries``        extra attempts after a failure (default 3)
``backoff``        first retry delay in seconds, doubling each time, with
                   jitter, at most 30 s (default 0.5)

Connection errors, timeouts, HTTP 408, 429 and 5xx are retried (``429`` and
``503`` honour ``Retry-After``, capped); other 4xx fail at once with the
server's message.  Only the standard library is used (``urllib``, ``ssl``).
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import re
import ssl
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

from . import SinkError, check_options, parse_bool, parse_duration, parse_int, split_query

if TYPE_CHECKING:
    from ringprof.model import ProfileData

_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")
_APP_NAME = re.compile(r"[^A-Za-z0-9_.\-/]")
_MAX_BACKOFF = 30.0


def label_name(name: str) -> str:
    """A valid Pyroscope/Prometheus label name."""
    out = _LABEL_NAME.sub("_", name)
    return out if out and not out[0].isdigit() else "_" + out


def _label_value(value: str) -> str:
    # The name{k=v,...} syntax has no escaping: keep values out of its syntax.
    return re.sub(r"[,{}=\"\n]", "_", value)


def sample_type_config(mode: str) -> dict[str, dict[str, Any]]:
    """The ``sample_type_config`` for our pprof: time types, summed, sampled."""
    types = ("wall", "cpu") if mode == "wall" else ("cpu",)
    return {t: {"units": "samples", "aggregation": "sum", "display-name": t, "sampled": True}
            for t in types}


class PyroscopeSink:
    OPTIONS = ("app", "token", "token_file", "user", "password", "tenant", "ca", "cert", "key",
               "verify", "timeout", "retries", "backoff")

    def __init__(self, url: str, *, app: str | None = None, tags: Mapping[str, str] | None = None,
                 token: str | None = None, user: str | None = None, password: str | None = None,
                 tenant: str | None = None, ca: str | None = None, cert: str | None = None,
                 key: str | None = None, verify: bool = True, timeout: float = 10.0, retries: int = 3,
                 backoff: float = 0.5, headers: Mapping[str, str] | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"pyroscope sink: server URL must be http(s)://host[:port], got {url!r}")
        if parts.username is not None:
            user = user if user is not None else unquote(parts.username)
            password = password if password is not None else unquote(parts.password or "")
            netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
            if parts.port:
                netloc += f":{parts.port}"
            parts = parts._replace(netloc=netloc)
        if token and user is not None:
            raise ValueError("pyroscope sink: give either a token or basic auth (user/password), not both")
        if timeout <= 0 or not math.isfinite(timeout):
            raise ValueError(f"pyroscope sink: timeout must be positive, got {timeout}")
        if retries < 0:
            raise ValueError(f"pyroscope sink: retries must be >= 0, got {retries}")
        if backoff < 0:
            raise ValueError(f"pyroscope sink: backoff must be >= 0, got {backoff}")
        self.endpoint = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/ingest", query="",
                                                  fragment=""))
        self.app = app
        self.tags = dict(tags or {})
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.headers: dict[str, str] = dict(headers or {})
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif user is not None:
            cred = base64.b64encode(f"{user}:{password or ''}".encode()).decode("ascii")
            self.headers["Authorization"] = f"Basic {cred}"
        if tenant:
            self.headers["X-Scope-OrgID"] = tenant
        self._context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            ctx = ssl.create_default_context(cafile=ca)
            if cert:
                ctx.load_cert_chain(cert, key)
            if not verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._context = ctx
        elif ca or cert:
            raise ValueError("pyroscope sink: ca/cert options need an https:// server URL")
        self.name = f"pyroscope:{urlunsplit(parts._replace(query='', fragment=''))}"
        self._sleep = time.sleep  # tests may replace it
        self.attempts = 0  # HTTP attempts made (for tests and stats)

    @classmethod
    def from_url(cls, rest: str) -> PyroscopeSink:
        url, options = split_query(rest)
        check_options("pyroscope", options, cls.OPTIONS)
        kw: dict[str, Any] = {}
        for k in ("app", "token", "user", "password", "tenant", "ca", "cert", "key"):
            if k in options:
                kw[k] = options[k]
        if "token_file" in options:
            if "token" in options:
                raise ValueError("pyroscope sink: give token or token_file, not both")
            try:
                with open(options["token_file"], encoding="utf-8") as fh:
                    kw["token"] = fh.read().strip()
            except OSError as exc:
                raise ValueError(f"pyroscope sink: cannot read token_file {options['token_file']!r}: "
                                 f"{exc.strerror or exc}") from None
        for k in ("ca", "cert", "key"):
            if k in kw and not os.path.isfile(kw[k]):
                raise ValueError(f"pyroscope sink: {k} file {kw[k]!r} does not exist")
        if "verify" in options:
            kw["verify"] = parse_bool(options["verify"], "pyroscope sink verify")
        if "timeout" in options:
            kw["timeout"] = parse_duration(options["timeout"], "pyroscope sink timeout")
        if "retries" in options:
            kw["retries"] = parse_int(options["retries"], "pyroscope sink retries")
        if "backoff" in options:
            kw["backoff"] = float(parse_duration(options["backoff"], "pyroscope sink backoff"))
        return cls(url, **kw)

    # ------------------------------------------------------------------ request
    def app_name(self, data: ProfileData) -> str:
        app = self.app or str(data.meta.get("service") or "python")
        tags = {**{str(k): str(v) for k, v in (data.meta.get("tags") or {}).items()}, **self.tags}
        app = _APP_NAME.sub("_", app) or "python"
        inner = ",".join(f"{label_name(k)}={_label_value(v)}" for k, v in sorted(tags.items()))
        return f"{app}{{{inner}}}"

    def request_url(self, data: ProfileData) -> str:
        meta = data.meta
        now = time.time()
        start = float(meta.get("window_start") or meta.get("start_time") or now)
        end = float(meta.get("window_end") or now)
        until = max(math.ceil(end), int(start) + 1)
        interval = float(meta.get("interval") or 0.01)
        query = {"name": self.app_name(data), "from": str(int(start)), "until": str(until),
                 "format": "pprof", "sampleRate": str(max(1, round(1 / interval)))}
        return f"{self.endpoint}?{urlencode(query, quote_via=quote)}"

    def body(self, data: ProfileData) -> tuple[bytes, str]:
        """(multipart body, content type) carrying the pprof and its sample type config."""
        from ringprof.exporters import render

        pprof = render(_valid_labels(data), "pprof")
        config = json.dumps(sample_type_config(str(data.meta.get("mode") or "cpu"))).encode()
        boundary = uuid.uuid4().hex
        parts = []
        for field, filename, payload, ctype in (("profile", "profile.pprof", pprof, "application/octet-stream"),
                                                ("sample_type_config", "sample_type_config.json", config,
                                                 "application/json")):
            parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                         f"filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n".encode() + payload + b"\r\n")
        return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"

    def export(self, data: ProfileData) -> None:
        body, ctype = self.body(data)
        url = self.request_url(data)
        headers = {**self.headers, "Content-Type": ctype, "User-Agent": "ringprof"}
        last = ""
        retry_after: float | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self._delay(attempt, retry_after))
            retry_after = None
            self.attempts += 1
            req = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout, context=self._context) as resp:
                    resp.read()
                    return
            except urllib.error.HTTPError as exc:
                detail = _error_text(exc)
                last = f"HTTP {exc.code} from {self.endpoint}: {detail}"
                if exc.code not in (408, 429) and exc.code < 500:
                    raise SinkError(last) from None
                retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"cannot reach {self.endpoint}: {reason}"
        raise SinkError(f"{last} (gave up after {self.retries + 1} attempts)")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff * float(2 ** (attempt - 1)), _MAX_BACKOFF) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, _MAX_BACKOFF))
        return delay

    def __repr__(self) -> str:
        return f"<PyroscopeSink {self.endpoint}>"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(300).decode("utf-8", "replace")
    except Exception:
        text = ""
    return " ".join(text.split())[:200] or str(exc.reason)


def _valid_labels(data: ProfileData) -> ProfileData:
    """The window itself, or a copy whose sample label names Pyroscope accepts."""
    if all(label_name(k) == k for ls in data.label_sets for k in ls):
        return data
    out = data.filter()
    out.label_sets = [{label_name(k): v for k, v in ls.items()} for ls in out.label_sets]
    return out
