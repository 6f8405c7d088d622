"""OpenTelemetry span processor: trace/span id labels on samples."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk is not installed (extra 'otel')")

from common_helpers import burn_wall
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import ringprof
from ringprof.integrations.otel import RingprofSpanProcessor, for_span, for_trace
from ringprof.labels import current as current_labels


def in_outer(seconds: float) -> None:
    burn_wall(seconds)


def in_inner(seconds: float) -> None:
    burn_wall(seconds)


@pytest.fixture
def tracing():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    processor = RingprofSpanProcessor()
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter, processor
    provider.shutdown()


def hexes(span) -> tuple[str, str]:
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def test_labels_follow_spans_and_are_restored(tracing):
    tracer, exporter, _ = tracing
    with ringprof.labels(service_area="cart"):
        with tracer.start_as_current_span("outer") as outer:
            trace_id, outer_id = hexes(outer)
            assert current_labels() == {"service_area": "cart", "trace_id": trace_id, "span_id": outer_id}
            with tracer.start_as_current_span("inner") as inner:
                _, inner_id = hexes(inner)
                assert current_labels()["span_id"] == inner_id
            assert current_labels()["span_id"] == outer_id
        assert current_labels() == {"service_area": "cart"}
    assert current_labels() == {}
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["outer"].attributes["pyroscope.profile.id"] == outer_id
    assert spans["inner"].attributes["pyroscope.profile.id"] == inner_id


def test_one_spans_profile(tracing):
    tracer, _, _ = tracing
    prof = ringprof.Profile(interval=0.001)
    with prof:
        with tracer.start_as_current_span("request") as outer:
            in_outer(0.15)
            with tracer.start_as_current_span("db") as inner:
                in_inner(0.15)
        burn_wall(0.05)  # outside any span
    trace_id, outer_id = hexes(outer)
    _, inner_id = hexes(inner)
    data = prof.data
    outer_only = for_span(data, outer_id)
    inner_only = for_span(data, inner.get_span_context().span_id)  # int ids work too
    whole = for_trace(data, trace_id)
    names = lambda d: {d.frames[f].name for s in d.stack.tolist() for f in d.stacks[s]}  # noqa: E731
    assert "in_outer" in names(outer_only) and "in_inner" not in names(outer_only)
    assert "in_inner" in names(inner_only) and "in_outer" not in names(inner_only)
    assert {"in_outer", "in_inner"} <= names(whole)
    assert len(whole) == len(outer_only) + len(inner_only) < len(data)
    # The same with the model's own filter, as the docs show.
    assert len(data.filter(labels={"span_id": inner_id})) == len(inner_only)


def test_root_only_labels_local_roots(tracing):
    tracer, _, _ = tracing
    provider = TracerProvider()
    provider.add_span_processor(RingprofSpanProcessor(root_only=True, link_attribute=None))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        _, root_id = hexes(root)
        with tracer.start_as_current_span("child"):
            assert current_labels()["span_id"] == root_id
    assert current_labels() == {}
    assert "pyroscope.profile.id" not in (root.attributes or {})


def test_spans_ending_out_of_order_restore_cleanly(tracing):
    tracer, _, _ = tracing
    a = tracer.start_span("a")
    from opentelemetry import trace

    token_a = trace.use_span(a, end_on_exit=False)
    token_a.__enter__()
    b = tracer.start_span("b")
    a.end()  # a ends first: b's labels stay while b is open
    assert current_labels()["span_id"] == hexes(b)[1]
    b.end()  # b restores past a, to what was there before a
    assert current_labels() == {}
    token_a.__exit__(None, None, None)


def test_span_labels_are_per_thread(tracing):
    tracer, _, _ = tracing
    seen: dict[str, dict[str, str]] = {}

    def other() -> None:
        seen["other"] = current_labels()

    with tracer.start_as_current_span("here"):
        t = threading.Thread(target=other)
        t.start()
        t.join()
        seen["here"] = current_labels()
    assert seen["other"] == {} and "span_id" in seen["here"]


def test_label_set_budget_stops_labelling(tracing, caplog):
    provider = TracerProvider()
    processor = RingprofSpanProcessor(max_label_sets=0)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("x"):
        assert current_labels() == {}
    with tracer.start_as_current_span("y"):
        assert current_labels() == {}
    assert len([r for r in caplog.records if "no longer labelling spans" in r.getMessage()]) == 1
