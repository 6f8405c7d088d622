"""Reading every format ringprof writes back into a model (ringprof.readers).

Round trips keep the stack weights and frames; a pprof re-encoded by the real
``go tool pprof -proto`` reads back; malformed input of any kind raises
ProfileFormatError only, and through the CLI gives one line and exit status 2.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from modelfactory import MAIN_TID, TOTAL_WEIGHT, WORKER_TID, make_model, make_weird_model

import ringprof
from ringprof import cli, readers
from ringprof.exporters import pprof, render
from ringprof.model import Frame, ProfileData
from ringprof.readers import ProfileFormatError


def stack_weights(data: ProfileData, *, lines: bool = True) -> Counter[tuple[Any, ...]]:
    """Weight per stack of frames (or of (name, file) when ``lines`` is False)."""
    out: Counter[tuple[Any, ...]] = Counter()
    for frames, w in data.iter_stacks():
        out[tuple(f if lines else (f.name, f.filename) for f in frames)] += w
    return out


def per_thread_labels(data: ProfileData) -> Counter[tuple[int, tuple[tuple[str, str], ...]]]:
    out: Counter[tuple[int, tuple[tuple[str, str], ...]]] = Counter()
    for tid, lid, w in zip(data.thread.tolist(), data.labels.tolist(), data.weight.tolist(), strict=True):
        out[(tid, tuple(sorted(data.label_sets[lid].items())))] += w
    return out


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("mode", ["cpu", "wall"])
@pytest.mark.parametrize("gzipped", [True, False])
def test_pprof_round_trip_keeps_stacks_frames_threads_labels(mode: str, gzipped: bool) -> None:
    data = make_model(mode)
    raw = pprof.render(data) if gzipped else pprof.encode(data)
    back = readers.parse(raw)
    assert readers.detect(raw) == "pprof"
    assert stack_weights(back) == stack_weights(data)  # frames with their lines, and weights
    assert back.total_weight() == TOTAL_WEIGHT
    assert back.threads == {MAIN_TID: "MainThread", WORKER_TID: "worker"}
    assert per_thread_labels(back) == per_thread_labels(data)
    assert back.meta["mode"] == mode
    assert back.interval_ns == data.interval_ns
    assert back.meta["start_time"] == data.meta["start_time"]
    assert back.meta["duration"] == data.meta["duration"]
    if mode == "wall":  # the measured CPU column survives in wall profiles
        assert int(back.cpu_ns.sum()) == int(data.cpu_ns.sum())
    assert [(s.key, s.self_weight, s.total_weight) for s in back.function_stats()] == \
        [(s.key, s.self_weight, s.total_weight) for s in data.function_stats()]


def test_pprof_round_trip_of_odd_names() -> None:
    data = make_weird_model()
    back = readers.parse(pprof.render(data))
    # The surrogate file name is written with backslashreplace: its text changes, nothing else.
    expected = Counter({tuple((f.name, f.filename.encode("utf-8", "backslashreplace").decode()) for f in k): w
                        for k, w in stack_weights(data).items()})
    assert stack_weights(back, lines=False) == expected


@pytest.mark.parametrize("fmt", ["native", "collapsed", "speedscope"])
def test_other_formats_round_trip_by_content(fmt: str, tmp_path: Path) -> None:
    data = make_model()
    # A misleading extension: detection is by content.
    path = tmp_path / "profile.bin"
    path.write_bytes(render(data, fmt))
    back = readers.read(path)
    assert readers.detect(path.read_bytes()) == fmt
    assert back.total_weight() == TOTAL_WEIGHT
    assert back.interval_ns == data.interval_ns
    if fmt == "native":
        assert stack_weights(back) == stack_weights(data)
    else:  # folded stacks and speedscope keep functions, not sampled lines
        assert stack_weights(back, lines=False) == stack_weights(data, lines=False)
    if fmt == "speedscope":
        assert back.threads == {MAIN_TID: "MainThread", WORKER_TID: "worker"}
        assert Counter(back.thread.tolist()) != Counter()
        by_thread = Counter(dict(zip(*_thread_weights(back), strict=True)))
        assert by_thread == Counter(dict(zip(*_thread_weights(data), strict=True)))


def _thread_weights(data: ProfileData) -> tuple[list[int], list[int]]:
    tids = sorted(set(data.thread.tolist()))
    return tids, [int(data.weight[data.thread == t].sum()) for t in tids]


def test_uncompressed_native_json_and_gzipped_collapsed_read() -> None:
    data = make_model()
    raw_json = json.dumps(data.to_dict()).encode()
    assert readers.detect(raw_json) == "native"
    assert stack_weights(readers.parse(raw_json)) == stack_weights(data)
    folded = gzip.compress(render(data, "collapsed"))
    assert readers.detect(folded) == "collapsed"
    assert readers.parse(folded).total_weight() == TOTAL_WEIGHT


def test_speedscope_evented_profile() -> None:
    doc = {"$schema": "https://www.speedscope.app/file-format-schema.json",
           "shared": {"frames": [{"name": "main", "file": "a.py", "line": 1}, {"name": "hot"}]},
           "profiles": [{"type": "evented", "name": "t", "unit": "milliseconds", "startValue": 0, "endValue": 10,
                         "events": [{"type": "O", "frame": 0, "at": 0}, {"type": "O", "frame": 1, "at": 2},
                                    {"type": "C", "frame": 1, "at": 8}, {"type": "C", "frame": 0, "at": 10}]}]}
    back = readers.parse(json.dumps(doc).encode())
    weights = {tuple(f.name for f in k): w * back.interval_ns for k, w in stack_weights(back).items()}
    assert weights == {("main",): 4_000_000, ("main", "hot"): 6_000_000}


def test_ringprof_load_and_exporters_read_use_the_readers(tmp_path: Path) -> None:
    path = tmp_path / "window.pb.gz"
    path.write_bytes(pprof.render(make_model()))
    prof = ringprof.load(path)
    assert isinstance(prof, ringprof.Profile)
    assert prof.data.total_weight() == TOTAL_WEIGHT
    from ringprof import exporters

    assert exporters.read(path).total_weight() == TOTAL_WEIGHT
    with pytest.raises(ValueError, match="cannot read html"):
        exporters.read(path, "html")


# ---------------------------------------------------------------- go tool pprof
def _go() -> str:
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI"):
            pytest.fail("`go` is missing in CI: install Debian's golang-go")
        pytest.skip("`go` is not on PATH: install Debian's golang-go to check go tool pprof's output")
    return go


@pytest.mark.parametrize("mode", ["cpu", "wall"])
def test_profile_rewritten_by_go_tool_pprof_reads_back(tmp_path: Path, mode: str) -> None:
    go = _go()
    data = make_model(mode)
    ours = tmp_path / "ours.pb.gz"
    ours.write_bytes(pprof.render(data))
    env = {**os.environ, "HOME": str(tmp_path), "PPROF_TMPDIR": str(tmp_path),
           "GOCACHE": str(tmp_path / "gocache"), "PPROF_BINARY_PATH": str(tmp_path)}
    out = subprocess.run([go, "tool", "pprof", "-proto", str(ours)], capture_output=True, timeout=300,
                         env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    rewritten = out.stdout
    assert rewritten[:2] == b"\x1f\x8b" and rewritten != ours.read_bytes()  # really Go's encoding
    back = readers.parse(rewritten)
    assert stack_weights(back) == stack_weights(data)
    assert back.threads == data.threads
    assert per_thread_labels(back) == per_thread_labels(data)
    assert back.meta["mode"] == mode and back.interval_ns == data.interval_ns


# ---------------------------------------------------------------- malformed input
def _native(mutate: Callable[[dict[str, Any]], None]) -> bytes:
    doc = make_model().to_dict()
    mutate(doc)
    return gzip.compress(json.dumps(doc).encode())


def _b64(values: bytes) -> str:
    return base64.b64encode(values).decode()


def _pprof_msg(*fields: tuple[int, bytes]) -> bytes:
    return b"".join(pprof._varint(f << 3 | 2) + pprof._varint(len(v)) + v for f, v in fields)


MALFORMED: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "random-bytes": lambda: random.Random(1).randbytes(200),
    "truncated-gzip": lambda: gzip.compress(json.dumps(make_model().to_dict()).encode())[:-20],
    "gzip-of-nothing": lambda: gzip.compress(b""),
    "json-array": lambda: b"[1, 2, 3]",
    "json-other-object": lambda: b'{"hello": "world"}',
    "json-deep": lambda: b"[" * 100_000 + b"]" * 100_000,
    "json-broken": lambda: b'{"format": "ringprof", ',
    "native-version": lambda: _native(lambda d: d.update(version=99)),
    "native-missing-frames": lambda: _native(lambda d: d.pop("frames")),
    "native-missing-columns": lambda: _native(lambda d: d.pop("columns")),
    "native-missing-column": lambda: _native(lambda d: d["columns"].pop("weight")),
    "native-frames-wrong-type": lambda: _native(lambda d: d.update(frames={"a": 1})),
    "native-frame-short": lambda: _native(lambda d: d["frames"].__setitem__(0, ["x", "y"])),
    "native-frame-line-text": lambda: _native(lambda d: d["frames"].__setitem__(0, ["x", "y", "1", 2])),
    "native-stack-frame-range": lambda: _native(lambda d: d["stacks"].__setitem__(0, [999])),
    "native-stack-not-list": lambda: _native(lambda d: d["stacks"].__setitem__(0, 5)),
    "native-bad-base64": lambda: _native(lambda d: d["columns"].__setitem__("stack", "AAA")),
    "native-base64-junk": lambda: _native(lambda d: d["columns"].__setitem__("stack", "!!!!")),
    "native-column-not-string": lambda: _native(lambda d: d["columns"].__setitem__("weight", [1, 2])),
    "native-column-odd-size": lambda: _native(lambda d: d["columns"].__setitem__("weight", _b64(b"\0" * 7))),
    "native-columns-differ": lambda: _native(lambda d: d["columns"].__setitem__("weight", _b64(b"\0" * 8))),
    "native-stack-id-range": lambda: _native(
        lambda d: d["columns"].__setitem__("stack", _b64((999).to_bytes(4, "little") * 7))),
    "native-label-id-range": lambda: _native(
        lambda d: d["columns"].__setitem__("labels", _b64((999).to_bytes(4, "little") * 7))),
    "native-label-sets-wrong": lambda: _native(lambda d: d.update(label_sets=[{"a": 1}])),
    "native-threads-wrong": lambda: _native(lambda d: d.update(threads={"x": "main"})),
    "native-meta-wrong": lambda: _native(lambda d: d.update(meta=[1])),
    "pprof-truncated": lambda: pprof.encode(make_model())[:-5],
    "pprof-gzip-truncated": lambda: pprof.render(make_model())[:-8],
    "pprof-no-sample-types": lambda: _pprof_msg((6, b"")) + b"\x12\x00",
    "pprof-string-index": lambda: _pprof_msg((1, b"\x08\x05\x10\x06"), (6, b"")),
    "pprof-missing-location": lambda: _pprof_msg((1, b"\x08\x01\x10\x02"), (2, b"\x0a\x01\x07\x12\x01\x01"),
                                                 (6, b""), (6, b"samples"), (6, b"count")),
    "pprof-value-count": lambda: _pprof_msg((1, b"\x08\x01\x10\x02"), (2, b"\x12\x02\x01\x01"),
                                            (6, b""), (6, b"samples"), (6, b"count")),
    "pprof-heap-profile": lambda: _pprof_msg((1, b"\x08\x01\x10\x02"), (6, b""), (6, b"space"), (6, b"bytes")),
    "pprof-bad-utf8-string": lambda: _pprof_msg((6, b""), (6, b"\xff\xfe")),
    "collapsed-no-count": lambda: b"main;work\n",
    "collapsed-negative": lambda: b"main;work -3\n",
    "collapsed-huge-count": lambda: b"main;work " + b"9" * 40 + b"\n",
    "collapsed-only-comments": lambda: b"# nothing\n",
    "collapsed-huge-line": lambda: b"main (app.py:" + b"9" * 30 + b") 3\n",
    "native-huge-line": lambda: _native(lambda d: d["frames"].__setitem__(0, ["x", "y", 10**30, 2])),
    "text-latin1": lambda: "main;caf\xe9 3\n".encode("latin-1") + b"\x01",
    "speedscope-frames-wrong": lambda: json.dumps({"shared": {"frames": 3}, "profiles": []}).encode(),
    "speedscope-sample-index": lambda: json.dumps({
        "shared": {"frames": [{"name": "a"}]},
        "profiles": [{"type": "sampled", "name": "t", "unit": "nanoseconds", "samples": [[5]], "weights": [1]}],
    }).encode(),
    "speedscope-weights-wrong": lambda: json.dumps({
        "shared": {"frames": [{"name": "a"}]},
        "profiles": [{"type": "sampled", "name": "t", "unit": "nanoseconds", "samples": [[0]], "weights": ["x"]}],
    }).encode(),
    "speedscope-bytes": lambda: json.dumps({
        "shared": {"frames": [{"name": "a"}]},
        "profiles": [{"type": "sampled", "name": "t", "unit": "bytes", "samples": [[0]], "weights": [1]}],
    }).encode(),
    "speedscope-unbalanced-events": lambda: json.dumps({
        "shared": {"frames": [{"name": "a"}]},
        "profiles": [{"type": "evented", "name": "t", "unit": "seconds", "events": [
            {"type": "C", "frame": 0, "at": 0}]}],
    }).encode(),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_raises_profile_format_error(case: str) -> None:
    raw = MALFORMED[case]()
    with pytest.raises(ProfileFormatError) as info:
        readers.parse(raw)
    assert "\n" not in str(info.value)


def _one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    rc = cli.main(argv)
    captured = capsys.readouterr()
    assert rc == 2, captured
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ringprof: error: "), captured.err
    assert captured.out == ""
    return lines[0]


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_through_view_and_convert(case: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.ringprof"
    path.write_bytes(MALFORMED[case]())
    line = _one_line_exit_2(capsys, ["view", str(path), "--no-browser", "-o", str(tmp_path / "v.html")])
    assert str(path) in line
    _one_line_exit_2(capsys, ["convert", str(path), str(tmp_path / "out.collapsed")])
    assert not (tmp_path / "v.html").exists() and not (tmp_path / "out.collapsed").exists()


def _mutations(raw: bytes, seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    out = [raw[:n] for n in sorted({rng.randrange(len(raw)) for _ in range(count)})]
    for _ in range(count):
        b = bytearray(raw)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("fmt", ["pprof-raw", "pprof", "native", "native-json", "speedscope", "collapsed"])
def test_fuzzed_inputs_parse_or_raise_only_profile_format_error(fmt: str) -> None:
    data = make_model()
    raw = {"pprof-raw": lambda: pprof.encode(data), "native-json": lambda: json.dumps(data.to_dict()).encode()}.get(
        fmt, lambda: render(data, fmt))()
    for mutated in _mutations(raw, seed=len(fmt), count=150):
        try:
            back = readers.parse(mutated)
        except ProfileFormatError as exc:
            assert "\n" not in str(exc)
            continue
        # Whatever parses must be a usable model.
        back.function_stats()
        render(back, "collapsed")
        render(back, "html")


def test_pstats_files_are_recognised_and_refused(tmp_path: Path) -> None:
    import cProfile

    ours = render(make_model(), "pstats")
    prof = cProfile.Profile()
    prof.enable()
    sorted(range(100))
    prof.disable()
    prof.dump_stats(tmp_path / "cp.prof")
    for raw in (ours, (tmp_path / "cp.prof").read_bytes()):
        with pytest.raises(ProfileFormatError, match=r"a pstats \(cProfile\) file"):
            readers.parse(raw)


def test_cli_subprocess_malformed_file_has_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "cut.pb.gz"
    path.write_bytes(pprof.render(make_model())[:-8])
    for args in (["view", str(path), "--no-browser"], ["convert", str(path), str(tmp_path / "o.txt")]):
        proc = subprocess.run([sys.executable, "-m", "ringprof", *args], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.startswith(f"ringprof: error: {path}: ")


def test_view_and_convert_read_pprof(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "window.pb.gz"
    src.write_bytes(pprof.render(make_model()))
    assert cli.main(["convert", str(src), str(tmp_path / "w.collapsed")]) == 0
    text = (tmp_path / "w.collapsed").read_text()
    assert sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()) == TOTAL_WEIGHT
    assert cli.main(["view", str(src), "--no-browser"]) == 0
    assert capsys.readouterr().out.strip() == str((tmp_path / "window.pb.html").resolve())
    assert "Helper.run" in (tmp_path / "window.pb.html").read_text()


def test_frames_from_pprof_without_lines_are_named_by_address() -> None:
    # A location with an address and no line info (an unsymbolised native frame).
    loc = b"\x08\x01\x18\xef\x01"  # id 1, address 0xef
    sample = b"\x0a\x01\x01\x12\x01\x02"  # location 1, value 2
    raw = _pprof_msg((1, b"\x08\x01\x10\x02"), (2, sample), (4, loc), (6, b""), (6, b"samples"), (6, b"count"))
    back = readers.parse(raw)
    assert stack_weights(back) == Counter({(Frame("0xef", "", 0, 0),): 2})


GO_PROGRAM = """\
package main

import (
	"os"
	"runtime/pprof"
)

//go:noinline
func spin(n int) int {
	x := 0
	for i := 0; i < n; i++ {
		x = x*31 + i
	}
	return x
}

//go:noinline
func heavy() int { return spin(600000000) }

//go:noinline
func light() int { return spin(200000000) }

func main() {
	f, err := os.Create(os.Args[1])
	if err != nil {
		panic(err)
	}
	pprof.StartCPUProfile(f)
	s := heavy() + light()
	pprof.StopCPUProfile()
	f.Close()
	if s == 42 {
		println(s)
	}
}
"""


def test_cpu_profile_of_a_go_program_reads_back(tmp_path: Path) -> None:
    """A profile written by Go's runtime/pprof (addresses, mappings, Go's own
    encoder): the reader's per-function counts equal go tool pprof's."""
    go = _go()
    (tmp_path / "main.go").write_text(GO_PROGRAM)
    env = {**os.environ, "HOME": str(tmp_path), "PPROF_TMPDIR": str(tmp_path), "GOCACHE": str(tmp_path / "gocache"),
           "GO111MODULE": "off", "GOFLAGS": "", "CGO_ENABLED": "0"}
    out = tmp_path / "cpu.pprof"
    proc = subprocess.run([go, "run", "main.go", str(out)], capture_output=True, text=True, timeout=600,
                          env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = readers.read(out)
    assert data.meta["mode"] == "cpu" and data.interval_ns == 10_000_000
    top = subprocess.run([go, "tool", "pprof", "-top", "-sample_index=samples", "-nodecount=1000",
                          "-nodefraction=0", "-edgefraction=0", str(out)], capture_output=True, text=True,
                         timeout=300, env=env, cwd=tmp_path)
    assert top.returncode == 0, top.stderr
    lines = top.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["flat", "flat%"]) + 1
    go_rows: dict[str, tuple[int, int]] = {}
    for line in lines[start:]:
        flat, _fp, _sp, cum, _cp, name = line.split(maxsplit=5)
        # pprof lists an inlined call apart, as "f (inline)"; the reader keys
        # functions by name (seen once in CI: runtime.gopreempt_m, inlined).
        name = name.removesuffix(" (inline)")
        f0, c0 = go_rows.get(name, (0, 0))
        go_rows[name] = (f0 + int(flat), c0 + int(cum))
    ours = {s.key[2]: (s.self_weight, s.total_weight) for s in data.function_stats()}
    assert ours == go_rows
    assert ours["main.heavy"][1] > 0 and ours["main.light"][1] > 0
    total = sum(flat for flat, _cum in go_rows.values())
    assert data.total_weight() == total
