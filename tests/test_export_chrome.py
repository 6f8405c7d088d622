"""Chrome trace-event export: structure, nesting, exact events, and Chromium's DevTools as reader."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from modelfactory import MAIN_TID, WORKER_TID, make_empty_model, make_model, make_weird_model

from ringprof.exporters import chrome
from ringprof.model import Frame, ProfileData

MS_US = 1000  # microseconds per millisecond


def _doc(data: ProfileData, **options: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(chrome.render(data, **options))
    return doc


def _x(doc: dict[str, Any], tid: int) -> list[tuple[str, int, int]]:
    return [(e["name"], e["ts"], e["dur"]) for e in doc["traceEvents"]
            if e["ph"] == "X" and e["tid"] == tid]


def check_structure(doc: dict[str, Any]) -> None:
    """Every X event complete and typed; events of each thread properly nested."""
    assert isinstance(doc["traceEvents"], list)
    per_thread: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for event in doc["traceEvents"]:
        assert event["ph"] in ("X", "M")
        if event["ph"] == "M":
            assert event["name"] in ("process_name", "thread_name")
            assert isinstance(event["args"]["name"], str)
            continue
        for key, kind in (("ts", int), ("dur", int), ("pid", int), ("tid", int), ("name", str)):
            assert isinstance(event[key], kind), (key, event)
        assert event["dur"] >= 0 and event["ts"] >= 0
        per_thread.setdefault((event["pid"], event["tid"]), []).append(event)
    for events in per_thread.values():
        # In file order (start time, parents first), each event must lie inside every
        # still-open event: a stack of open intervals never overlaps partially.
        open_ends: list[int] = []
        last_ts = -1
        for event in events:
            assert event["ts"] >= last_ts
            last_ts = event["ts"]
            end = event["ts"] + event["dur"]
            while open_ends and open_ends[-1] <= event["ts"] and not (
                    open_ends[-1] == event["ts"] and event["dur"] == 0):
                open_ends.pop()
            if open_ends:
                assert end <= open_ends[-1], f"{event} overhangs its parent"
            open_ends.append(end)


@pytest.mark.parametrize("factory", [make_model, make_weird_model, make_empty_model],
                         ids=["model", "weird", "empty"])
def test_structure_is_valid(factory: Any) -> None:
    check_structure(_doc(factory()))


def test_metadata_names_process_and_threads() -> None:
    doc = _doc(make_model())
    meta = [e for e in doc["traceEvents"] if e["ph"] == "M"]
    assert meta == [
        {"ph": "M", "name": "process_name", "pid": 4242, "tid": 0, "args": {"name": "app.py --fast"}},
        {"ph": "M", "name": "thread_name", "pid": 4242, "tid": MAIN_TID, "args": {"name": "MainThread"}},
        {"ph": "M", "name": "thread_name", "pid": 4242, "tid": WORKER_TID, "args": {"name": "worker"}},
    ]
    assert doc["displayTimeUnit"] == "ms"
    assert doc["otherData"]["mode"] == "cpu"


def test_exact_flame_chart_events() -> None:
    doc = _doc(make_model())
    # Main thread: samples at 0 (w3), 30 (w2), 50 (w1), 60 (w4), 100 (w1) ms, 10 ms each.
    assert _x(doc, MAIN_TID) == [
        ("<module>", 0, 110 * MS_US),
        ("main", 0, 110 * MS_US),
        ("work", 0, 50 * MS_US),  # lines 7 and 8 of one function: one box
        ("Helper.run", 50 * MS_US, 10 * MS_US),
        ("fib", 60 * MS_US, 40 * MS_US),
        ("fib", 60 * MS_US, 40 * MS_US),
        ("fib", 60 * MS_US, 40 * MS_US),
    ]
    # Worker: idle 5..55 ms, then <truncated>;work 55..75 ms; times relative to the first sample.
    assert _x(doc, WORKER_TID) == [
        ("idle", 5 * MS_US, 50 * MS_US),
        ("<truncated>", 55 * MS_US, 20 * MS_US),
        ("work", 55 * MS_US, 20 * MS_US),
    ]
    work = next(e for e in doc["traceEvents"] if e.get("name") == "work")
    assert work["args"] == {"file": "lib.py", "line": 5}
    assert "args" not in next(e for e in doc["traceEvents"] if e.get("name") == "<truncated>")


def test_lines_option_splits_by_line() -> None:
    names = [(n, ts, dur) for n, ts, dur in _x(_doc(make_model(), lines=True), MAIN_TID) if n == "work"]
    assert names == [("work", 0, 30 * MS_US), ("work", 30 * MS_US, 20 * MS_US)]


def test_gap_closes_frames_and_overlap_is_cut() -> None:
    a, b = Frame("a", "x.py", 1, 1), Frame("b", "x.py", 5, 5)
    data = ProfileData({"mode": "cpu", "interval": 0.001, "pid": 1})
    t0 = 10**12  # arbitrary monotonic origin
    data.add_sample([a, b], 9, t0, weight=2)             # 0..2 ms
    data.add_sample([a, b], 9, t0 + 1_500_000, weight=1)  # starts before the previous one ends
    data.add_sample([a], 9, t0 + 10_000_000, weight=1)    # after a gap: a new box for a
    doc = _doc(data)
    check_structure(doc)
    assert _x(doc, 9) == [("a", 0, 2500), ("b", 0, 2500), ("a", 10_000, 1000)]


def test_deterministic() -> None:
    assert chrome.render(make_model()) == chrome.render(make_model())
    chrome.render(make_weird_model()).decode("ascii")


# ------------------------------------------------------------- Chrome DevTools
#: Parses a trace with the trace engine of Chromium's DevTools (the Performance panel's
#: parser, bundled with the browser) and returns every thread's entries with their depth.
DEVTOOLS_PARSE = """
const done = arguments[arguments.length - 1];
(async () => {
  const T = await import('./models/trace/trace.js');
  const doc = JSON.parse(arguments[0]);
  const model = T.TraceModel.Model.createWithAllHandlers();
  await model.parse(doc.traceEvents, {metadata: {}, isFreshRecording: false});
  const parsed = model.parsedTrace(0);
  const renderer = (parsed.data || parsed).Renderer;
  const threads = [];
  for (const [pid, proc] of renderer.processes) {
    for (const [tid, thread] of proc.threads) {
      const entries = thread.entries.map(e => [e.name, renderer.entryToNode.get(e).depth, e.ts, e.dur]);
      threads.push([pid, tid, thread.name, entries]);
    }
  }
  return JSON.stringify(threads);
})().then(done, e => done('error: ' + e + '\\n' + e.stack));
"""


def _devtools_threads(trace: bytes) -> dict[int, tuple[str, list[tuple[str, int, int, int]]]]:
    """{tid: (thread name, [(name, depth, ts, dur)])} as Chromium's DevTools reads ``trace``."""
    chromium = os.environ.get("RINGPROF_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    chromedriver = (os.environ.get("RINGPROF_CHROMEDRIVER") or shutil.which("chromedriver")
                    or "/usr/bin/chromedriver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not (os.access(chromium, os.X_OK) and os.access(chromedriver, os.X_OK)):
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver missing in CI (apt-get install chromium chromium-driver)")
        pytest.skip("chromium/chromedriver not installed")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(chromedriver), options=opts)
    try:
        drv.set_script_timeout(120)
        drv.get("devtools://devtools/bundled/trace_app.html")
        out = drv.execute_async_script(DEVTOOLS_PARSE, trace.decode())
    finally:
        drv.quit()
    assert not out.startswith("error:"), out
    return {tid: (name, [tuple(e) for e in entries]) for _pid, tid, name, entries in json.loads(out)}


def test_loads_in_chrome_devtools(tmp_path: Path) -> None:
    """The Performance panel shows each thread's stacks as boxes, nested and timed as sampled."""
    threads = _devtools_threads(chrome.render(make_model()))
    ms = MS_US
    assert threads == {
        MAIN_TID: ("MainThread", [
            ("<module>", 0, 0, 110 * ms), ("main", 1, 0, 110 * ms), ("work", 2, 0, 50 * ms),
            ("Helper.run", 2, 50 * ms, 10 * ms),
            ("fib", 2, 60 * ms, 40 * ms), ("fib", 3, 60 * ms, 40 * ms), ("fib", 4, 60 * ms, 40 * ms)]),
        WORKER_TID: ("worker", [
            ("idle", 0, 5 * ms, 50 * ms), ("<truncated>", 0, 55 * ms, 20 * ms), ("work", 1, 55 * ms, 20 * ms)]),
    }


def test_odd_names_load_in_chrome_devtools(tmp_path: Path) -> None:
    threads = _devtools_threads(chrome.render(make_weird_model()))
    names = {name for _thread, entries in threads.values() for name, *_ in entries}
    assert names == {"naïve_λ", "a;b c\nd", "bad"}


# --------------------------------------------------------------------------- streaming
def _random_model(seed: int, samples: int, distinct_starts: bool) -> ProfileData:
    """Random stacks over a small frame pool (some frames differ only by line), several
    threads, overlaps, gaps, zero weights and, unless ``distinct_starts``, samples of a
    thread starting in the same microsecond."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pool = [Frame(f"f{i % 9}", f"m{i % 3}.py", i % 9 + 1, i % 9 + 1 + i // 9) for i in range(27)]
    data = ProfileData({"mode": "wall", "interval": 0.001, "pid": 7, "argv": ["x.py"]})
    t = {tid: 10**9 for tid in (1, 2, 3)}
    for _ in range(samples):
        tid = int(rng.integers(1, 4))
        depth = int(rng.integers(0, 7))
        frames = [pool[int(k)] for k in rng.integers(0, len(pool), size=depth)]
        if rng.random() < 0.5 and data.stacks:  # share a prefix with an earlier stack
            prev = [data.frames[f] for f in data.stacks[int(rng.integers(0, len(data.stacks)))]]
            frames = prev[: int(rng.integers(0, len(prev) + 1))] + frames[:3]
        step = int(rng.choice([0, 1, 400, 999_999, 1_000_000, 1_500_000, 7_000_000]))
        if distinct_starts:
            step = max(step, 1000)  # a new microsecond every time
        t[tid] += step
        data.add_sample(frames, tid, t[tid], weight=int(rng.integers(0, 4)))
    return data


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("lines", [False, True])
def test_streamed_bytes_equal_the_reference_implementation(seed: int, lines: bool) -> None:
    """Where file order is unambiguous (distinct start times), the streaming exporter
    writes exactly the bytes of the one-dict-per-event implementation it replaced."""
    import chrome_reference

    data = _random_model(seed, 300, distinct_starts=True)
    assert chrome.render(data, lines=lines) == chrome_reference.render(data, lines=lines)


@pytest.mark.parametrize("seed", range(12))
def test_streamed_events_equal_the_reference_with_same_microsecond_samples(seed: int) -> None:
    """With samples in the same microsecond the same events are written, properly nested
    (in depth-first order, where the reference's sort may interleave zero-length boxes)."""
    import chrome_reference

    data = _random_model(seed, 300, distinct_starts=False)
    doc = _doc(data)
    check_structure(doc)
    reference = json.loads(chrome_reference.render(data))
    canon = sorted(json.dumps(e, sort_keys=True) for e in doc["traceEvents"])
    assert canon == sorted(json.dumps(e, sort_keys=True) for e in reference["traceEvents"])
    assert {k: v for k, v in doc.items() if k != "traceEvents"} == {
        k: v for k, v in reference.items() if k != "traceEvents"}


def test_write_streams_to_the_file_and_matches_render(tmp_path: Path) -> None:
    from ringprof import exporters

    data = _random_model(3, 500, distinct_starts=True)
    out = tmp_path / "t.trace.json"
    exporters.write(data, out)
    assert out.read_bytes() == chrome.render(data)
    assert [p.name for p in tmp_path.iterdir()] == ["t.trace.json"]


def test_a_failing_stream_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ringprof import exporters

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("encoder bug")

    monkeypatch.setattr(chrome, "write_to", broken)
    with pytest.raises(RuntimeError):
        exporters.write(make_model(), tmp_path / "t.trace.json")
    assert list(tmp_path.iterdir()) == []


class _CountingSink:
    """A binary file that keeps only a byte count."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, chunk: bytes) -> int:
        self.size += len(chunk)
        return len(chunk)


def _model_with_depth(samples: int, depth: int) -> ProfileData:
    """One thread; consecutive samples have different roots, so every sample closes and
    opens ``depth`` boxes: ``samples * depth`` events."""
    import numpy as np

    data = ProfileData({"mode": "cpu", "interval": 0.01})
    stacks = [data.intern_stack([data.intern_frame(Frame(f"{root}{i}", "fw.py", i + 1, i + 1))
                                 for i in range(depth)]) for root in ("a", "b")]
    data.add_samples(np.asarray(stacks)[np.arange(samples) % 2], 1, np.arange(samples, dtype=np.int64) * 10_000_000)
    _ = data.stack
    return data


def _peak_bytes(data: ProfileData) -> tuple[int, int]:
    import tracemalloc

    sink = _CountingSink()
    tracemalloc.start()
    try:
        chrome.write_to(data, sink)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, sink.size


def test_memory_does_not_grow_with_the_events() -> None:
    """Same samples, 1 vs 60 boxes per sample: the streamed export's peak memory grows by
    at most ~8 bytes per extra event (one end time), never by the events themselves
    (~110 bytes of JSON, ~1 KB as a dict).  tracemalloc counts bytes, so load does not matter."""
    samples = 3_000
    shallow_peak, shallow_size = _peak_bytes(_model_with_depth(samples, 1))
    deep_peak, deep_size = _peak_bytes(_model_with_depth(samples, 60))
    extra_events = samples * 59
    assert deep_size - shallow_size > 50 * extra_events  # the events were written
    per_event = (deep_peak - shallow_peak) / extra_events
    # 8 bytes per end time, the array's over-allocation when it grows, one batch of text.
    assert per_event < 16, f"{per_event:.1f} bytes of peak memory per extra event"
