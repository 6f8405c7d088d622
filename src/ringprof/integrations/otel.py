# mypy: disallow-subclassing-any=False
# (opentelemetry-sdk is optional: without it installed, SpanProcessor is Any to mypy.)
"""OpenTelemetry linkage: label samples with the active span's trace and span id.

    from opentelemetry.sdk.trace import TracerProvider
    from ringprof.integrations.otel import RingprofSpanProcessor, for_span

    provider = TracerProvider()
    provider.add_span_processor(RingprofSpanProcessor())

While a span is open on a thread, every sample taken on that thread carries
the labels ``trace_id`` and ``span_id`` (lower-case hex, as in W3C trace
context), merged with the thread's other labels; when the span ends the
previous labels come back.  One span's profile is then::

    for_span(prof.data, span.get_span_context().span_id)   # or its hex string
    prof.data.filter(labels={"span_id": "00f067aa0ba902b7"})

and one trace's: ``for_trace(data, trace_id)``.  pprof and Pyroscope carry the
labels as sample labels, so a trace UI can jump from a span to its flame
graph: each labelled span gets the attribute ``pyroscope.profile.id`` (the
span id hex; Grafana's span-profile link convention; ``link_attribute=None``
turns it off).

``root_only=True`` labels only local root spans (a request's entry span; its
child spans run under the root's labels), which is what Pyroscope's own span
profiles do and keeps the number of label sets down.

Costs and limits: starting a labelled span interns a new label set (a dict
and a C call, ~2 us).  Label sets are kept for the life of the process
(the ids this processor sets are pinned in ``ringprof.labels``' table), so the processor stops labelling
new spans after ``max_label_sets`` sets (default 50,000, tens of MB at most)
and logs it once.  Labels are per OS thread: in asyncio code, use the ASGI
middleware (:mod:`ringprof.integrations.asgi`), which makes them follow the
request's coroutine across awaits.  A span ended on another thread than the
one that started it leaves its labels on the starting thread until that
thread's labels next change.

Install the SDK with the ``otel`` extra: ``pip install 'ringprof[otel]'``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor

from ..label_table import live_count as live_label_sets
from ..labels import intern, lookup
from ..model import ProfileData
from . import get_label, select, set_label

__all__ = ["RingprofSpanProcessor", "for_span", "for_trace"]

log = logging.getLogger("ringprof")


def _hex(value: int | str, width: int) -> str:
    if isinstance(value, int):
        return format(value, f"0{width}x")
    text = value.strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    return text.rjust(width, "0")


def for_span(data: ProfileData, span_id: int | str) -> ProfileData:
    """The samples taken while the span was the innermost labelled span."""
    return select(data, labels={"span_id": _hex(span_id, 16)})


def for_trace(data: ProfileData, trace_id: int | str) -> ProfileData:
    """The samples taken inside any span of the trace."""
    return select(data, labels={"trace_id": _hex(trace_id, 32)})


class RingprofSpanProcessor(SpanProcessor):
    """Sets ``trace_id``/``span_id`` sample labels for the duration of each span."""

    def __init__(self, *, root_only: bool = False, link_attribute: str | None = "pyroscope.profile.id",
                 max_label_sets: int = 50_000) -> None:
        self.root_only = root_only
        self.link_attribute = link_attribute
        self.max_label_sets = max_label_sets
        self._open: dict[int, tuple[int, int]] = {}  # span id -> (previous label, our label)
        self._ended: dict[int, int] = {}  # our label of a span ended out of order -> its previous
        self._full = False
        self._lock = threading.Lock()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self._full:
            return
        ctx = span.get_span_context()
        if not ctx.is_valid:
            return
        if self.root_only:
            parent = getattr(span, "parent", None)
            if parent is not None and not parent.is_remote:
                return
        span_hex = format(ctx.span_id, "016x")
        previous = get_label()
        label = intern({**lookup(previous), "trace_id": format(ctx.trace_id, "032x"), "span_id": span_hex})
        live = live_label_sets()  # ids are never reused: they count released sets too
        if live > self.max_label_sets:
            self._full = True
            log.warning("ringprof: %d label sets interned; no longer labelling spans with their ids "
                        "(max_label_sets; consider RingprofSpanProcessor(root_only=True))", live)
            return
        set_label(label)
        with self._lock:
            if len(self._open) > 100_000:  # spans that never end: don't grow forever
                self._open.clear()
            self._open[ctx.span_id] = (previous, label)
        if self.link_attribute:
            span.set_attribute(self.link_attribute, span_hex)

    def on_end(self, span: Any) -> None:
        ctx = span.get_span_context()
        with self._lock:
            entry = self._open.pop(ctx.span_id, None)
            if entry is None:
                return
            previous, label = entry
            if get_label() != label:
                # Ended out of order (or on another thread): whoever restores
                # our label later must skip past it to what we replaced.
                if len(self._ended) > 10_000:
                    self._ended.clear()
                self._ended[label] = previous
                return
            while previous in self._ended:
                previous = self._ended.pop(previous)
        set_label(previous)

    def shutdown(self) -> None:
        self._open.clear()
        self._ended.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
