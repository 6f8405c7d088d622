"""speedscope export: schema validity (speedscope's own schema) and exact content."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from modelfactory import INTERVAL_NS, make_empty_model, make_model, make_weird_model

from ringprof.exporters import speedscope
from ringprof.model import Frame, ProfileData

#: speedscope's own schema, vendored with its license (tests/data/speedscope-LICENSE).
SCHEMA = Path(__file__).resolve().parent / "data" / "speedscope-file-format-schema.json"
MS = 1_000_000


def _doc(data: ProfileData, **options: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(speedscope.render(data, **options))
    return doc


def _names(doc: dict[str, Any], stack: list[int]) -> list[str]:
    return [doc["shared"]["frames"][i]["name"] for i in stack]


@pytest.mark.parametrize("factory", [make_model, lambda: make_model("wall"), make_weird_model,
                                     make_empty_model], ids=["cpu", "wall", "weird", "empty"])
def test_validates_against_speedscope_schema(factory: Any) -> None:
    import jsonschema  # a [test] dependency: missing, it fails rather than skips

    schema = json.loads(SCHEMA.read_text())
    doc = _doc(factory())
    jsonschema.validate(doc, schema)
    # The schema's anyOf(evented, sampled) would also accept a broken sampled profile
    # that happens to look evented; pin that ours are sampled and self-consistent.
    for prof in doc["profiles"]:
        assert prof["type"] == "sampled"
        assert len(prof["samples"]) == len(prof["weights"])
        assert prof["endValue"] - prof["startValue"] == sum(prof["weights"])
        n = len(doc["shared"]["frames"])
        assert all(0 <= i < n for s in prof["samples"] for i in s)


def test_vendored_schema_rejects_a_broken_file() -> None:
    """The vendored schema really constrains (a schema that accepts anything proves nothing)."""
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    doc = _doc(make_model())
    del doc["shared"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)
    doc = _doc(make_model())
    doc["profiles"][0]["unit"] = "parsecs"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def test_profiles_per_thread_and_label_set() -> None:
    doc = _doc(make_model())
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    assert doc["name"] == "ringprof cpu: app.py --fast"
    assert doc["activeProfileIndex"] == 0
    # Busiest thread first (MainThread 11 > worker 7), label-set profile after its thread.
    assert [p["name"] for p in doc["profiles"]] == [
        "MainThread (tid 100)", "MainThread (tid 100) [endpoint=/a]", "worker (tid 200)"]
    assert all(p["unit"] == "nanoseconds" for p in doc["profiles"])
    assert [p["endValue"] for p in doc["profiles"]] == [110 * MS, 50 * MS, 70 * MS]


def test_one_profile_per_asyncio_task_then_per_label_set() -> None:
    """A task's samples make one profile whatever other labels they carry; a
    label set made only of the task's labels adds no duplicate profile."""
    data = ProfileData({"mode": "cpu", "interval": INTERVAL_NS / 1e9})
    data.threads = {1: "MainThread"}
    step = [Frame("_run_once", "base_events.py", 1, 2), Frame("handler", "app.py", 10, 11)]
    t = 0
    for n, labels in ((3, {"task": "req", "task_id": "7", "route": "/a"}), (2, {"task": "req", "task_id": "7"}),
                      (4, {"task": "req", "task_id": "9"}), (1, {})):
        for _ in range(n):
            data.add_sample(step, thread=1, time_ns=t, labels=labels or None)
            t += 1
    doc = _doc(data)
    assert [(p["name"], p["endValue"] // INTERVAL_NS) for p in doc["profiles"]] == [
        ("MainThread (tid 1)", 10), ("MainThread (tid 1) task req #7", 5), ("MainThread (tid 1) task req #9", 4),
        ("MainThread (tid 1) [route=/a, task=req, task_id=7]", 3)]
    assert len(_doc(data, by_labels=False)["profiles"]) == 1


def test_samples_in_time_order_with_consecutive_equal_stacks_merged() -> None:
    doc = _doc(make_model())
    main, labelled, worker = doc["profiles"]
    got = [(_names(doc, s), w) for s, w in zip(main["samples"], main["weights"], strict=True)]
    assert got == [
        (["<module>", "main", "work"], 5 * INTERVAL_NS),  # lines 7 and 8 merged
        (["<module>", "main", "Helper.run"], 1 * INTERVAL_NS),
        (["<module>", "main", "fib", "fib", "fib"], 4 * INTERVAL_NS),
        (["<module>", "main"], 1 * INTERVAL_NS),
    ]
    assert [(_names(doc, s), w) for s, w in zip(labelled["samples"], labelled["weights"], strict=True)] == [
        (["<module>", "main", "Helper.run"], 1 * INTERVAL_NS),
        (["<module>", "main", "fib", "fib", "fib"], 4 * INTERVAL_NS),
    ]
    assert [(_names(doc, s), w) for s, w in zip(worker["samples"], worker["weights"], strict=True)] == [
        (["idle"], 5 * INTERVAL_NS),
        (["<truncated>", "work"], 2 * INTERVAL_NS),
    ]


def test_shared_frames_by_function_with_file_and_line() -> None:
    frames = _doc(make_model())["shared"]["frames"]
    assert {"name": "work", "file": "lib.py", "line": 5} in frames
    assert [f["name"] for f in frames].count("work") == 1
    assert {"name": "<truncated>"} in frames  # synthetic: no file or line
    fine = _doc(make_model(), lines=True)["shared"]["frames"]
    assert {"name": "work", "file": "lib.py", "line": 7} in fine
    assert {"name": "work", "file": "lib.py", "line": 8} in fine


def test_weights_total_matches_model() -> None:
    data = make_model()
    doc = _doc(data, by_labels=False)
    assert len(doc["profiles"]) == 2
    assert sum(sum(p["weights"]) for p in doc["profiles"]) == int(data.sample_ns().sum())


def test_unnamed_threads_and_empty_model() -> None:
    data = make_model()
    data.threads = {}
    assert [p["name"] for p in _doc(data)["profiles"]][::2] == ["thread 100", "thread 200"]
    empty = _doc(make_empty_model())
    assert [p["name"] for p in empty["profiles"]] == ["(no samples)"]
    assert empty["profiles"][0]["samples"] == []


def test_deterministic_ascii_bytes() -> None:
    a, b = speedscope.render(make_weird_model()), speedscope.render(make_weird_model())
    assert a == b
    a.decode("ascii")  # non-ASCII and lone surrogates are \u-escaped
    assert "naïve_λ" in json.dumps(json.loads(a), ensure_ascii=False)
    assert speedscope.render(make_model(), name="x") != speedscope.render(make_model())
