"""Pyroscope sink: push each window as pprof to Pyroscope, by ``/ingest`` or the push API.

``pyroscope:http://127.0.0.1:4040?token=...``  (``/ingest``, the default)
``pyroscope:http://127.0.0.1:4040?api=push``   (``/push.v1.PusherService/Push``)

With ``api=ingest`` the request follows Pyroscope's documented ``POST /ingest`` endpoint (the
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

With ``api=push`` the sink calls the push API of Pyroscope (and of Grafana
Alloy's ``pyroscope.receive_http``) with the Connect protocol (a unary POST of
one message; ``Connect-Protocol-Version: 1``)::

    POST <server>/push.v1.PusherService/Push
    Content-Type: application/proto         (encoding=proto, the default)
                  application/json          (encoding=json)
    PushRequest { series: [ RawProfileSeries {
        labels:  [ {name: "__name__", value: "process_cpu"},   # "wall" in wall mode
                   {name: "service_name", value: <app>}, <tags...> ],
        samples: [ RawSample { raw_profile: <gzipped pprof>, ID: <uuid> } ] } ] }

``__name__`` names the profile type (the pprof's sample types complete it:
``process_cpu:cpu:nanoseconds:cpu:nanoseconds``) and ``service_name`` is the
label Pyroscope requires.  The window's time travels in the pprof
(``time_nanos``/``duration_nanos``).  Pyroscope's OTLP endpoint is reached
with the OTLP sink instead (``otlp:http://pyroscope:4040``).

Options (query parameters of the sink URL, removed before the request):

``api``            ``ingest`` (default) or ``push``
``encoding``       push body encoding: ``proto`` (default) or ``json``
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
server's message (the same rules for both APIs).  Only the standard library
is used (``urllib``, ``ssl``).
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlunsplit

from . import check_options, split_query
from .http import HTTPSink

if TYPE_CHECKING:
    from ringprof.model import ProfileData

_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")
_APP_NAME = re.compile(r"[^A-Za-z0-9_.\-/]")
_APIS = ("ingest", "push")
_ENCODINGS = ("proto", "json")
PUSH_PATH = "/push.v1.PusherService/Push"


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


class PyroscopeSink(HTTPSink):
    WHAT = "pyroscope sink"
    OPTIONS = ("api", "encoding", "app", "token_file", "user", "password", *HTTPSink.COMMON_OPTIONS)

    def __init__(self, url: str, *, app: str | None = None, tags: Mapping[str, str] | None = None,
                 token: str | None = None, user: str | None = None, password: str | None = None,
                 tenant: str | None = None, ca: str | None = None, cert: str | None = None,
                 key: str | None = None, verify: bool = True, timeout: float = 10.0, retries: int = 3,
                 backoff: float = 0.5, headers: Mapping[str, str] | None = None, api: str = "ingest",
                 encoding: str = "proto") -> None:
        if api not in _APIS:
            raise ValueError(f"pyroscope sink: api must be one of {', '.join(_APIS)}, got {api!r}")
        if encoding not in _ENCODINGS:
            raise ValueError(f"pyroscope sink: encoding must be one of {', '.join(_ENCODINGS)}, got {encoding!r}")
        if encoding != "proto" and api != "push":
            raise ValueError("pyroscope sink: encoding applies to api=push only")
        parts = self._setup(url, token=token, user=user, password=password, tenant=tenant, ca=ca, cert=cert,
                            key=key, verify=verify, timeout=timeout, retries=retries, backoff=backoff,
                            headers=headers)
        self.api = api
        self.encoding = encoding
        path = PUSH_PATH if api == "push" else "/ingest"
        self.endpoint = urlunsplit(parts._replace(path=parts.path.rstrip("/") + path, query="", fragment=""))
        self.app = app
        self.tags = dict(tags or {})
        self.name = f"pyroscope:{urlunsplit(parts._replace(query='', fragment=''))}"

    @classmethod
    def from_url(cls, rest: str) -> PyroscopeSink:
        url, options = split_query(rest)
        check_options("pyroscope", options, cls.OPTIONS)
        kw = cls.common_options(options)
        for k in ("api", "encoding", "app", "user", "password"):
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

    def push_labels(self, data: ProfileData) -> list[tuple[str, str]]:
        """The series labels of a push request: ``__name__``, ``service_name``, then the tags."""
        name = "wall" if data.meta.get("mode") == "wall" else "process_cpu"
        service = self.app or str(data.meta.get("service") or "python")
        labels = [("__name__", name), ("service_name", service)]
        tags = {**{str(k): str(v) for k, v in (data.meta.get("tags") or {}).items()}, **self.tags}
        taken = {"__name__", "service_name"}
        for key, value in sorted((label_name(k), v) for k, v in tags.items()):
            if key not in taken:
                taken.add(key)
                labels.append((key, value))
        return labels

    def push_body(self, data: ProfileData) -> tuple[bytes, str]:
        """(``PushRequest`` body, content type) in the sink's encoding."""
        from ringprof.exporters import render
        from ringprof.exporters.protowire import Message

        pprof = render(_valid_labels(data), "pprof")
        labels = self.push_labels(data)
        profile_id = str(uuid.uuid4())
        if self.encoding == "json":
            doc = {"series": [{"labels": [{"name": k, "value": v} for k, v in labels],
                               "samples": [{"rawProfile": base64.b64encode(pprof).decode("ascii"),
                                            "ID": profile_id}]}]}
            return json.dumps(doc, separators=(",", ":")).encode(), "application/json"
        series = Message()
        for k, v in labels:
            series.message(1, Message().string(1, k).string(2, v))
        series.message(2, Message().delimited(1, pprof).string(2, profile_id))
        return Message().message(1, series).done(), "application/proto"

    def export(self, data: ProfileData) -> None:
        if self.api == "push":
            body, ctype = self.push_body(data)
            url = self.endpoint
            extra = {"Connect-Protocol-Version": "1"}
        else:
            body, ctype = self.body(data)
            url = self.request_url(data)
            extra = {}
        self._post(url, body, {**extra, "Content-Type": ctype}, retryable=_retryable, label=self.endpoint)

    def __repr__(self) -> str:
        return f"<PyroscopeSink {self.endpoint}>"


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _valid_labels(data: ProfileData) -> ProfileData:
    """The window itself, or a copy whose sample label names Pyroscope accepts."""
    if all(label_name(k) == k for ls in data.label_sets for k in ls):
        return data
    out = data.filter()
    out.label_sets = [{label_name(k): v for k, v in ls.items()} for ls in out.label_sets]
    return out
