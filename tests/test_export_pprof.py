"""pprof export: our decoder round trip, then the real consumer, ``go tool pprof``."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from modelfactory import (
    EXPECTED_FUNCTIONS,
    INTERVAL_NS,
    MAIN_TID,
    TOTAL_WEIGHT,
    WORKER_TID,
    make_empty_model,
    make_model,
    make_weird_model,
)

from ringprof.exporters import pprof
from ringprof.model import ProfileData

MS = 1_000_000


def _flat_cum(decoded: dict[str, Any], index: int) -> dict[str, tuple[int, int]]:
    """Per function name: (flat, cum) of sample value ``index``, pprof's way."""
    flat: Counter[str] = Counter()
    cum: Counter[str] = Counter()
    for names, values in pprof.sample_stacks(decoded):
        if names:
            flat[names[0]] += values[index]
        for name in set(names):
            cum[name] += values[index]
    return {name: (flat[name], cum[name]) for name in cum}


def test_header_fields_and_sample_types_cpu() -> None:
    d = pprof.decode(pprof.render(make_model()))
    assert d["sample_type"] == [{"type": "samples", "unit": "count"},
                                {"type": "cpu", "unit": "nanoseconds"}]
    assert d["period_type"] == {"type": "cpu", "unit": "nanoseconds"}
    assert d["period"] == INTERVAL_NS
    assert d["default_sample_type"] == "cpu"
    assert d["time_nanos"] == 1_700_000_000_500_000_000
    assert d["duration_nanos"] == 2_000_000_000
    assert d["string_table"][0] == ""
    assert len(d["mappings"]) == 1 and d["mappings"][0]["has_functions"]


def test_values_match_function_stats() -> None:
    data = make_model()
    d = pprof.decode(pprof.render(data))
    counts, cpu = _flat_cum(d, 0), _flat_cum(d, 1)
    assert {name: (s, t) for name, s, t in EXPECTED_FUNCTIONS} == counts
    for stat in data.function_stats():
        name = stat.key[2]
        assert counts[name] == (stat.self_weight, stat.total_weight)
        assert cpu[name] == (stat.self_weight * INTERVAL_NS, stat.total_weight * INTERVAL_NS)
    assert sum(s["values"][0] for s in d["samples"]) == TOTAL_WEIGHT


def test_locations_leaf_first_with_lines_and_functions() -> None:
    d = pprof.decode(pprof.render(make_model()))
    stacks = pprof.sample_stacks(d)
    assert (["fib", "fib", "fib", "main", "<module>"], [4, 40 * MS]) in stacks
    assert (["work", "<truncated>"], [2, 20 * MS]) in stacks
    funcs = {f["id"]: f for f in d["functions"]}
    work = [f for f in d["functions"] if f["name"] == "work"]
    assert len(work) == 1  # one Function per function...
    assert work[0]["filename"] == "lib.py" and work[0]["start_line"] == 5
    work_lines = sorted(line["line"] for loc in d["locations"] for line in loc["lines"]
                        if funcs[line["function_id"]]["name"] == "work")
    assert work_lines == [7, 8]  # ...one Location per sampled line
    # system_name differs from name so pprof's C++ demangling heuristics leave <module> alone.
    assert all(f["system_name"] != f["name"] for f in d["functions"])


def test_labels_thread_and_label_set() -> None:
    d = pprof.decode(pprof.render(make_model()))
    by_leaf = {pprof.sample_stacks(d)[i][0][0]: s for i, s in enumerate(d["samples"])}
    assert by_leaf["fib"]["num_labels"] == {"thread id": [MAIN_TID]}
    assert by_leaf["fib"]["labels"] == {"thread name": ["MainThread"], "endpoint": ["/a"]}
    assert by_leaf["idle"]["labels"] == {"thread name": ["worker"]}
    assert by_leaf["idle"]["num_labels"] == {"thread id": [WORKER_TID]}


def test_samples_sharing_stacks_threads_and_labels_keep_their_own() -> None:
    """The encoder encodes each stack, thread and label set once and reuses the
    bytes: every combination must still come out with its own parts."""
    from ringprof.model import Frame

    a, b, c = (Frame(n, f"{n}.py", 1, 3) for n in ("a", "b", "c"))
    stacks = {"ab": [a, b], "ac": [a, c], "abc": [a, b, c]}
    threads = {11: "one", 12: "two", 13: ""}
    label_sets: list[dict[str, str] | None] = [None, {"route": "/x"}, {"route": "/y", "user": "u"}]
    data = ProfileData({"mode": "cpu", "interval": 0.001})
    data.threads.update({t: n for t, n in threads.items() if n})
    expected: Counter[tuple[tuple[str, ...], int, str, tuple[tuple[str, str], ...]]] = Counter()
    weight = 1
    for frames in stacks.values():
        for tid, tname in threads.items():
            for labels in label_sets:
                data.add_sample(frames, thread=tid, time_ns=weight, weight=weight, labels=labels)
                leaf_first = tuple(f.name for f in reversed(frames))
                expected[(leaf_first, tid, tname, tuple(sorted((labels or {}).items())))] += weight
                weight += 1
    d = pprof.decode(pprof.render(data))
    got: Counter[tuple[tuple[str, ...], int, str, tuple[tuple[str, str], ...]]] = Counter()
    for (names, values), sample in zip(pprof.sample_stacks(d), d["samples"], strict=True):
        labels = {k: v[0] for k, v in sample["labels"].items()}
        tname = labels.pop("thread name", "")
        got[(tuple(names), sample["num_labels"]["thread id"][0], tname, tuple(sorted(labels.items())))] += values[0]
    assert got == expected
    assert len(d["samples"]) == len(stacks) * len(threads) * len(label_sets)


def test_equal_samples_are_summed() -> None:
    data = ProfileData({"mode": "cpu", "interval": 0.001})
    for t in range(5):
        data.add_sample([make_model().frames[0]], thread=7, time_ns=t, weight=2)
    d = pprof.decode(pprof.render(data))
    assert [s["values"] for s in d["samples"]] == [[10, 10 * MS]]


def test_wall_mode_has_wall_and_measured_cpu() -> None:
    data = make_model("wall")
    d = pprof.decode(pprof.render(data))
    assert [t["type"] for t in d["sample_type"]] == ["samples", "wall", "cpu"]
    assert d["period_type"]["type"] == "wall"
    assert d["default_sample_type"] == "wall"
    assert sum(s["values"][1] for s in d["samples"]) == TOTAL_WEIGHT * INTERVAL_NS
    assert sum(s["values"][2] for s in d["samples"]) == int(data.cpu_ns.sum()) == 128 * MS


def test_deterministic_gzip() -> None:
    a, b = pprof.render(make_model()), pprof.render(make_model())
    assert a == b
    assert a[:2] == b"\x1f\x8b"
    assert pprof.decode(gzip.decompress(a)) == pprof.decode(a)  # raw protobuf decodes too


def test_weird_and_empty_models() -> None:
    d = pprof.decode(pprof.render(make_weird_model()))
    names = {f["name"] for f in d["functions"]}
    assert {"a;b c\nd", "naïve_λ", "bad"} == names
    assert "caf\\udce9.py" in {f["filename"] for f in d["functions"]}
    empty = pprof.decode(pprof.render(make_empty_model()))
    assert empty["samples"] == [] and empty["time_nanos"] == 0


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**63 - 1, -1, -(2**63)])
def test_varint_round_trip(value: int) -> None:
    encoded = pprof._varint(value)
    assert len(encoded) <= 10
    decoded, end = pprof._read_varint(encoded, 0)
    assert end == len(encoded)
    assert pprof._int(decoded) == value


def test_varint_bytes_are_protobufs() -> None:
    """The one- and two-byte fast paths and the general loop write what protobuf writes
    (its encoder writes a negative int64 as the 10-byte two's complement)."""
    from google.protobuf.internal.encoder import _VarintBytes

    values = [*range(0, 20_000), 2**14 - 1, 2**14, 2**21, 2**32, 2**63 - 1, 2**64 - 1]
    for value in values:
        assert pprof._varint(value) == _VarintBytes(value), value
    for value in (-1, -127, -128, -(2**14), -(2**63)):
        assert pprof._varint(value) == _VarintBytes(value + 2**64), value


def test_decoder_accepts_unpacked_repeated_and_unknown_fields() -> None:
    # Sample{location_id: 1 (unpacked), location_id: 2, value: 5 (unpacked), field 9 fixed32}
    sample = b"\x08\x01\x08\x02\x10\x05" + b"\x4d\x00\x00\x00\x00"

    def loc(i: int) -> bytes:  # Location{id: i, line: {function_id: 1}}
        return b"\x08" + bytes([i]) + b"\x22\x02\x08\x01"

    profile = (b"\x12" + bytes([len(sample)]) + sample
               + b"\x22\x06" + loc(1) + b"\x22\x06" + loc(2)
               + b"\x2a\x04\x08\x01\x10\x01" + b"\x32\x00" + b"\x32\x01f")
    d = pprof.decode(profile)
    assert d["samples"][0]["location_ids"] == [1, 2]
    assert d["samples"][0]["values"] == [5]
    assert pprof.sample_stacks(d) == [(["f", "f"], [5])]


def test_decoder_rejects_truncated_input() -> None:
    raw = gzip.decompress(pprof.render(make_model()))
    with pytest.raises(ValueError, match="truncated"):
        pprof.decode(raw[:-3])
    with pytest.raises(ValueError, match="bad gzip"):
        pprof.decode(pprof.render(make_model())[:-8])


# ---------------------------------------------------------------- go tool pprof
def _go() -> str:
    go = shutil.which("go")
    if go is None:
        pytest.skip("`go` is not on PATH: install Debian's golang-go to check output with go tool pprof")
    return go


def _pprof(go: str, tmp_path: Path, *args: str, data: ProfileData | None = None) -> str:
    path = tmp_path / "p.pb.gz"
    path.write_bytes(pprof.render(data if data is not None else make_model()))
    env = {**os.environ, "HOME": str(tmp_path), "PPROF_TMPDIR": str(tmp_path),
           "GOCACHE": str(tmp_path / "gocache"), "PPROF_BINARY_PATH": str(tmp_path)}
    out = subprocess.run([go, "tool", "pprof", *args, str(path)], capture_output=True, text=True,
                         timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _parse_top(text: str) -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["flat", "flat%"]) + 1
    for line in lines[start:]:
        flat, _flatp, _sump, cum, _cump, name = line.split(maxsplit=5)
        assert name not in rows, f"pprof merged or split {name!r}"
        rows[name] = (flat, cum)
    return rows


def test_go_pprof_top_counts_match_function_stats(tmp_path: Path) -> None:
    go = _go()
    text = _pprof(go, tmp_path, "-top", "-sample_index=samples", "-nodecount=1000", "-nodefraction=0")
    assert f"Total samples = {TOTAL_WEIGHT}" in text
    rows = _parse_top(text)
    expected = {name: (str(s), str(t)) for name, s, t in EXPECTED_FUNCTIONS}
    assert rows == expected
    # Same order as our own report for the leading (non-tied) functions.
    assert list(rows)[:3] == ["work", "idle", "fib"]


def test_go_pprof_top_default_is_cpu_nanoseconds(tmp_path: Path) -> None:
    go = _go()
    data = make_model()
    text = _pprof(go, tmp_path, "-top", "-unit=ns", "-nodecount=1000", "-nodefraction=0", data=data)
    assert "Type: cpu" in text
    rows = _parse_top(text)
    for stat in data.function_stats():
        flat, cum = rows[stat.key[2]]
        assert flat == (f"{stat.self_weight * INTERVAL_NS}ns" if stat.self_weight else "0")
        assert cum == f"{stat.total_weight * INTERVAL_NS}ns"


def test_go_pprof_traces_show_stacks_and_labels(tmp_path: Path) -> None:
    go = _go()
    text = _pprof(go, tmp_path, "-traces", "-sample_index=samples")
    blocks = text.split("-----------+-------------------------------------------------------")[1:]
    traces = []
    for block in blocks:
        labels: dict[str, str] = {}
        stack: list[str] = []
        value = None
        for line in block.strip("\n").splitlines():
            m = re.match(r"^\s*(\d+)\s{3}(\S.*)$", line)
            if value is None and m:
                value, stack = int(m.group(1)), [m.group(2)]
            elif value is None:
                key, _, val = line.strip().partition(":  ")
                labels[key] = val
            else:
                stack.append(line.strip())
        if value is not None:
            traces.append((value, stack, labels))
    assert len(traces) == 7
    assert (4, ["fib", "fib", "fib", "main", "<module>"],
            {"endpoint": "/a", "thread name": "MainThread", "thread id": str(MAIN_TID)}) in traces
    assert (2, ["work", "<truncated>"], {"thread name": "worker", "thread id": str(WORKER_TID)}) in traces
    assert sum(v for v, _, _ in traces) == TOTAL_WEIGHT


def test_go_pprof_reads_wall_profile(tmp_path: Path) -> None:
    go = _go()
    text = _pprof(go, tmp_path, "-top", "-unit=ns", "-sample_index=cpu", "-nodecount=1000",
                  "-nodefraction=0", data=make_model("wall"))
    rows = _parse_top(text)
    assert rows["work"] == ("68000000ns", "68000000ns")  # measured cpu_ns: 29 + 20 + 19 ms
    assert rows["main"][1] == "108000000ns"


# ---------------------------------------------------------------------- the native sample encoder
def _random_model(seed: int, mode: str = "cpu") -> ProfileData:
    """Many stacks over shared frames, threads named and not, label sets,
    rows of weight 0 and repeated (stack, thread, labels) rows."""
    import random

    from ringprof.model import Frame

    rng = random.Random(seed)
    frames = [Frame(f"f{i % 97}", f"mod{i % 13}.py", i % 97, rng.choice([0, 1, 200, 70_000, i]))
              for i in range(400)]
    data = ProfileData({"mode": mode, "interval": 0.01})
    data.threads = {t: f"thread-{t}" for t in range(1, 6)}
    label_sets = [{}, {"route": "/a"}, {"route": "/b", "method": "GET"}, {"k": "v" * 300}]
    for i in range(3000):
        stack = [rng.choice(frames) for _ in range(rng.randint(1, 60 if i % 7 else 3))]
        data.add_sample(stack, rng.choice([1, 2, 3, 7, 1 << 40]), i * 1000, weight=rng.choice([0, 1, 1, 2, 300]),
                        cpu_ns=rng.randint(0, 1 << 50), labels=rng.choice(label_sets))
    return data


@pytest.mark.parametrize("model", [make_model, lambda: make_model("wall"), make_weird_model, make_empty_model,
                                   lambda: _random_model(1), lambda: _random_model(2, "wall")],
                         ids=["model", "wall", "weird", "empty", "random", "random-wall"])
def test_native_encoder_writes_the_bytes_of_the_python_one(model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The C encoder (no GIL) and the Python one (where the core cannot be
    loaded) are interchangeable: byte for byte the same profile."""
    native = pprof.encode(model())
    monkeypatch.setattr(pprof, "_encode_samples", pprof._python_samples)
    assert pprof.encode(model()) == native
    if len(model()):
        assert pprof.decode(native)["samples"]


def test_python_encoder_is_used_where_the_core_cannot_be_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    from ringprof import _native

    expected = pprof.encode(make_model())

    def unavailable() -> Any:
        raise _native.SamplingUnavailable("ringprof cannot sample on this interpreter: test")

    monkeypatch.setattr(_native, "load", unavailable)
    assert pprof.encode(make_model()) == expected


def _native_args(data: ProfileData) -> list[Any]:
    return list(pprof._tables(data, pprof._Strings(), False).args)


@pytest.mark.parametrize("what", ["stack", "thread", "labels", "frames", "function", "offsets"])
def test_native_encoder_rejects_ids_out_of_range(what: str) -> None:
    """Every id is checked against its table before the C encoder uses it."""
    import array

    from ringprof import _native

    args = _native_args(make_model())
    if what == "stack":  # a stack id past the stack table
        args[0] = array.array("i", [len(make_model().stacks)] * len(args[0]))
    elif what == "thread":  # a thread id with no label field
        args[1] = array.array("q", [999] * len(args[1]))
    elif what == "labels":  # a label set id past the table
        args[2] = array.array("i", [99] * len(args[2]))
    elif what == "frames":  # a frame id past the frame table
        args[8] = array.array("i", [len(make_model().frames)] * len(args[8]))
    elif what == "function":  # a function index past the function count
        args[9] = array.array("i", [args[11]] * len(args[9]))
    else:  # stack offsets that run backwards
        args[7] = array.array("I", list(reversed(args[7])))
    with pytest.raises(ValueError, match="out of range"):
        _native.load().pprof_samples(*args)


def test_native_encoder_rejects_columns_of_different_lengths() -> None:
    import array

    from ringprof import _native

    args = _native_args(make_model())
    args[3] = array.array("q", list(args[3])[:-1])
    with pytest.raises(ValueError, match="differ in length"):
        _native.load().pprof_samples(*args)


def test_native_encoder_lets_other_threads_run() -> None:
    """While a window is encoded the GIL is free: a thread that needs it
    progresses during the call.  The switch interval is raised so that the
    interpreter never takes the GIL from the caller: progress can only come
    from the encoder letting go of it."""
    import array
    import sys
    import threading
    import time

    from ringprof import _native

    args = _native_args(_random_model(3))
    # Many rows over the same tables: the encoder sums them, so the call is long.
    reps = 400
    for i in (0, 1, 2, 3, 4):
        args[i] = array.array(args[i].typecode, bytes(args[i]) * reps)
    count = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            count[0] += 1
            time.sleep(0.0001)

    native = _native.load()
    old = sys.getswitchinterval()
    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.05)
        sys.setswitchinterval(100.0)
        before = count[0]
        native.pprof_samples(*args)
        during = count[0] - before
    finally:
        sys.setswitchinterval(old)
        stop.set()
        t.join()
    assert during > 0
