"""Memory per sample and the bound of long recordings (issue 12).

Packed columns (ringprof.sample_store) must give every value back exactly and
stay within 24 bytes a sample; a capped recording folds its oldest samples
into aggregate rows (ringprof.folding) with every weight kept, and every
exporter and reader still works on it.
"""

from __future__ import annotations

import array
import io
import json
import pstats
import random
import time
from collections import Counter

import pytest

import ringprof
from ringprof import exporters, readers
from ringprof.exporters import chrome
from ringprof.folding import DEFAULT_MAX_SAMPLES, FLAG_FOLDED, HISTOGRAM_BUCKETS
from ringprof.model import COLUMN_TYPECODES, FLAG_HOLDS_GIL, Frame, ProfileData
from ringprof.sample_store import SampleStore

COLUMNS = tuple(COLUMN_TYPECODES)


def _random_columns(rng: random.Random, n: int) -> dict[str, array.array[int]]:
    """Columns with every awkward value: int64 extremes, negatives, jumps, wide ids."""
    big = (1 << 63) - 1
    t = 5_000_000_000
    times = []
    for _ in range(n):
        t += rng.choice((10_000_000, 3, -40_000, 7 * 10**9, -(1 << 40), 1 << 62 if t < 0 else -(1 << 62)))
        t = max(-big - 1, min(big, t))
        times.append(t)
    return {
        "stack": array.array("i", [rng.choice((0, 1, 300, 70_000, 2**31 - 1)) for _ in range(n)]),
        "thread": array.array("q", [rng.choice((-5, 0, 1 << 40, big - 400)) + rng.randrange(400) for _ in range(n)]),
        "time_ns": array.array("q", times),
        "weight": array.array("q", [rng.choice((1, 1, 2, 254, 255, 256, 1 << 40, -1, big)) for _ in range(n)]),
        "cpu_ns": array.array("q", [rng.choice((0, 7, 65_536, 2**32 - 1, 2**32, big, -3)) for _ in range(n)]),
        "flags": array.array("H", [rng.choice((0, 2, 0x3F, 0xFFFF)) for _ in range(n)]),
        "labels": array.array("i", [rng.choice((0, 1, 255, 256, 70_000, -1, -(2**31))) for _ in range(n)]),
        "depth": array.array("i", [rng.choice((0, 20, 128, 1024, -7, 2**31 - 1)) for _ in range(n)]),
    }


def test_packed_columns_give_back_every_value_exactly() -> None:
    rng = random.Random(7)
    store = SampleStore(segment_samples=1000)
    want: dict[str, array.array[int]] = {k: array.array(tc) for k, tc in COLUMN_TYPECODES.items()}
    # Constant runs first (no bytes per sample), then values that force widening and escapes.
    for size, kind in ((500, "const"), (700, "small"), (3000, "random"), (1, "random"), (2500, "random")):
        if kind == "const":
            chunk = {k: array.array(tc, [3]) * size for k, tc in COLUMN_TYPECODES.items()}
        elif kind == "small":
            chunk = {k: array.array(tc, [rng.randrange(200) for _ in range(size)])
                     for k, tc in COLUMN_TYPECODES.items()}
        else:
            chunk = _random_columns(rng, size)
        store.append(chunk)
        for k in COLUMNS:
            want[k].extend(chunk[k])
    assert len(store) == len(want["stack"]) and store.segments >= 3
    for k in COLUMNS:
        got = store.column(k)
        assert got.typecode == COLUMN_TYPECODES[k]
        assert got == want[k], k
    first = store.pop_oldest()
    n = len(first["stack"])
    for k in COLUMNS:
        assert first[k] == want[k][:n]
        assert store.column(k) == want[k][n:]


def _steady_chunks(rng: random.Random, mode: str, threads: int, stacks: int, label_sets: int, drains: int):
    """Drain-sized chunks as a busy program gives them: 100 Hz per thread, 0.1 s drains."""
    now = {t: 10**12 + rng.randrange(10**7) for t in range(threads)}
    for _ in range(drains):
        chunk: dict[str, list[int]] = {k: [] for k in COLUMNS}
        for t in range(threads):
            for _ in range(10):
                w = 1 if rng.random() > 0.02 else 2
                chunk["stack"].append(rng.randrange(stacks))
                chunk["thread"].append(100_000 + t)
                chunk["time_ns"].append(now[t])
                chunk["weight"].append(w)
                chunk["cpu_ns"].append(rng.randrange(10_000_000 * w) if mode == "wall" else 0)
                chunk["flags"].append(FLAG_HOLDS_GIL if rng.random() < 0.5 else 0)
                chunk["labels"].append(rng.randrange(label_sets) if label_sets > 1 else 0)
                chunk["depth"].append(rng.randrange(1, 129))
                now[t] += 10_000_000 * w + rng.randrange(100_000)
        yield {k: array.array(tc, chunk[k]) for k, tc in COLUMN_TYPECODES.items()}


@pytest.mark.parametrize(("mode", "threads", "stacks", "label_sets", "limit"), [
    ("cpu", 4, 3000, 1, 12.0),  # a typical CPU-mode service
    ("wall", 300, 100_000, 100_000, 24.0),  # worst case: wide ids, > 255 threads, CPU ns
])
def test_bytes_per_kept_sample(mode: str, threads: int, stacks: int, label_sets: int, limit: float) -> None:
    rng = random.Random(3)
    store = SampleStore()
    drains = 140_000 // (threads * 10) + 1
    for chunk in _steady_chunks(rng, mode, threads, stacks, label_sets, drains):
        store.append(chunk)
    per_sample = store.nbytes() / len(store)
    assert per_sample <= limit, per_sample
    data = ProfileData({"interval": 0.01})  # the model holds the same store
    for chunk in _steady_chunks(random.Random(3), mode, threads, stacks, label_sets, 20):
        data.append_columns(chunk)
    assert data.nbytes() / len(data) <= limit + 4  # short: one segment's fixed cost weighs more


def _frames_model(stacks: int) -> ProfileData:
    data = ProfileData({"interval": 0.001, "mode": "wall", "pid": 1, "argv": ["app"]})
    frames = [data.intern_frame(Frame(f"f{i}", f"/app/m{i % 7}.py", i + 1, i + 2)) for i in range(40)]
    rng = random.Random(11)
    while len(data.stacks) < stacks:
        data.intern_stack([frames[0], *rng.sample(frames[1:], rng.randrange(1, 6))])
    for i in range(1, 5):
        assert data.intern_labels({"endpoint": f"/e{i}"}) == i
    data.threads = {100_000 + t: f"worker-{t}" for t in range(4)}
    return data


def _truth(chunks: list[dict[str, array.array[int]]]) -> tuple[Counter[tuple[int, int, int]], int, int]:
    weights: Counter[tuple[int, int, int]] = Counter()
    cpu = 0
    for c in chunks:
        for s, t, lab, w in zip(c["stack"], c["thread"], c["labels"], c["weight"], strict=True):
            weights[(s, t, lab)] += w
        cpu += sum(c["cpu_ns"])
    return weights, sum(weights.values()), cpu


def _weights(data: ProfileData) -> Counter[tuple[int, int, int]]:
    out: Counter[tuple[int, int, int]] = Counter()
    for s, t, lab, w in zip(data.stack.tolist(), data.thread.tolist(), data.labels.tolist(), data.weight.tolist(),
                            strict=True):
        out[(s, t, lab)] += w
    return out


@pytest.fixture(scope="module")
def folded() -> tuple[ProfileData, list[dict[str, array.array[int]]]]:
    rng = random.Random(5)
    data = _frames_model(60)
    data.max_samples = 2000
    chunks = list(_steady_chunks(rng, "wall", 4, 60, 5, 300))  # 12,000 samples
    for chunk in chunks:
        data.append_columns(chunk)
    return data, chunks


def test_folding_keeps_every_weight(folded: tuple[ProfileData, list[dict[str, array.array[int]]]]) -> None:
    data, chunks = folded
    truth, total, cpu = _truth(chunks)
    meta = data.meta["folded"]
    kept = int(((data.flags & FLAG_FOLDED) == 0).sum())
    assert 1500 <= kept <= 2000 + 40  # between 3/4 of the cap and the cap (plus one batch)
    assert meta["samples"] + kept == 12_000
    assert _weights(data) == truth
    assert data.total_weight() == total and int(data.cpu_ns.sum()) == cpu
    # Folded rows: one per (stack, thread, labels, flags, depth) at most.
    assert len(data) - kept == meta["rows"] <= 60 * 4 * 5 * 2 * 128
    assert meta["weight"] == int(data.weight[(data.flags & FLAG_FOLDED) != 0].sum())
    hist = meta["histogram"]
    assert sum(hist["weight"]) == meta["weight"] and len(hist["weight"]) <= HISTOGRAM_BUCKETS
    assert meta["oldest_ns"] <= meta["newest_ns"] < int(data.time_ns[(data.flags & FLAG_FOLDED) == 0].max())
    assert meta["since"] <= time.time() and meta["max_samples"] == 2000
    # Folding again later merges into the same rows: the folded part does not grow with time.
    rows_before = meta["rows"]
    more = list(_steady_chunks(random.Random(6), "wall", 4, 60, 5, 300))
    copy = data.filter()
    copy.max_samples = 2000
    for chunk in more:
        copy.append_columns(chunk)
    truth2, total2, _ = _truth(chunks + more)
    assert _weights(copy) == truth2 and copy.total_weight() == total2
    assert len(copy) <= rows_before + 2 * copy.meta["folded"]["rows"] + 2040


def test_every_format_reads_a_folded_recording(folded: tuple[ProfileData, list[dict[str, array.array[int]]]],
                                                 tmp_path) -> None:
    data, chunks = folded
    _, total, _ = _truth(chunks)

    def stack_weights(d: ProfileData) -> Counter[tuple[str, ...]]:
        out: Counter[tuple[str, ...]] = Counter()
        for frames, w in d.iter_stacks():
            out[tuple(f.name for f in frames)] += w
        return out

    want = stack_weights(data)
    assert sum(want.values()) == total
    for fmt in ("native", "collapsed", "pprof", "speedscope"):
        path = tmp_path / f"p{exporters.extensions(fmt)[0]}"
        exporters.write(data, path, fmt)
        back = readers.read(path)
        assert stack_weights(back) == want, fmt
    back = readers.read(tmp_path / "p.ringprof")
    assert back.meta["folded"] == json.loads(json.dumps(data.meta["folded"]))
    # pstats: total time is the weight times the interval.
    exporters.write(data, tmp_path / "p.prof", "pstats")
    st = pstats.Stats(str(tmp_path / "p.prof"), stream=io.StringIO())
    assert st.total_tt == pytest.approx(total * 0.001, rel=1e-9)
    # Chrome trace: each folded track's root boxes add up to that thread's folded weight.
    doc = chrome.to_dict(data)
    names = {e["tid"]: e["args"]["name"] for e in doc["traceEvents"] if e.get("name") == "thread_name"}
    folded_tracks = [tid for tid, name in names.items() if "(folded" in name]
    assert len(folded_tracks) == 4
    fl = data.flags.numpy()
    for tid in folded_tracks:
        roots = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["tid"] == tid and e["name"] == "f0"]
        thread = tid - chrome.FOLDED_TRACK
        weight = int(data.weight.numpy()[((fl & FLAG_FOLDED) != 0) & (data.thread.numpy() == thread)].sum())
        assert abs(sum(e["dur"] for e in roots) - weight * 1000) <= len(roots)  # microseconds, floored
    for fmt in ("html", "otlp", "otlp-json"):
        assert exporters.render(data, fmt)


def test_capped_recording_folds_and_keeps_the_split() -> None:
    """A real recording with a small cap: folding happened, and the CPU split of
    two functions (2:1 by construction) survives it."""
    def burn(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    def heavy() -> None:
        burn(0.02)

    def light() -> None:
        burn(0.01)

    prof = ringprof.Profile(interval=0.001, max_samples=200, threads="current")
    with prof:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for _ in range(10):
                heavy()
                light()
            if prof.data.meta.get("folded") and prof.data.total_weight() >= 1200:
                break
    data = prof.data
    assert data.meta["folded"]["samples"] > 0
    assert int(((data.flags & FLAG_FOLDED) == 0).sum()) <= 200 + 200
    heavy_w = light_w = 0
    for frames, w in data.iter_stacks():
        names = {f.name.rsplit(".", 1)[-1] for f in frames}
        heavy_w += w if "heavy" in names else 0
        light_w += w if "light" in names else 0
    assert heavy_w + light_w >= 0.8 * data.total_weight()
    assert 0.6 <= heavy_w / (heavy_w + light_w) <= 0.73  # 2/3, +-20 % timing noise on weights


def test_a_long_capped_recording_stays_bounded() -> None:
    """Memory of a capped recording stops growing: kept samples stay under the
    cap, folded rows under the number of distinct (stack, thread, labels,
    flags, depth); the total weight is every weight ever appended."""
    data = _frames_model(200)
    data.max_samples = 5000
    total = 0
    sizes = []
    for i, chunk in enumerate(_steady_chunks(random.Random(9), "cpu", 4, 200, 3, 2500)):  # 100,000 samples
        chunk["depth"] = array.array("i", [5]) * len(chunk["depth"])
        data.append_columns(chunk)
        total += sum(chunk["weight"])
        if i % 500 == 499:
            sizes.append(data.nbytes())
    assert data.total_weight() == total
    assert data.meta["folded"]["samples"] >= 95_000
    kept = int(((data.flags & FLAG_FOLDED) == 0).sum())
    assert kept <= 5000 + 40
    assert data.meta["folded"]["rows"] <= 200 * 4 * 3 * 2
    # The last four measurements (40,000 samples apart) do not grow beyond noise.
    assert max(sizes[1:]) <= 1.1 * sizes[1], sizes


def test_start_takes_a_sample_cap() -> None:
    prof = ringprof.start(max_samples=5000)
    try:
        assert prof.max_samples == 5000 and prof.data.max_samples == 5000
    finally:
        ringprof.stop()
    assert ringprof.Profile().max_samples == DEFAULT_MAX_SAMPLES
    with pytest.raises(ValueError, match="max_samples"):
        ringprof.Profile(max_samples=10)
