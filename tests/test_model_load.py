"""``ProfileData.load`` reads through :mod:`ringprof.readers`: every malformed file gives one error type.

Before, a native file that was valid gzip and JSON but cut or edited failed
deep inside ``from_dict`` with a raw ``KeyError``, ``IndexError``, ``TypeError``
or a base64 "Incorrect padding"; the CLI must turn each of them into one line
on stderr and exit status 2.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from modelfactory import make_model

from ringprof.model import ProfileData
from ringprof.readers import ProfileFormatError


def _doc() -> dict[str, Any]:
    return copy.deepcopy(make_model().to_dict())


def _gz(doc: Any) -> bytes:
    return gzip.compress(json.dumps(doc).encode(), mtime=0)


def _edit(change: Callable[[dict[str, Any]], None]) -> bytes:
    doc = _doc()
    change(doc)
    return _gz(doc)


def _column(values: list[int], size: int) -> str:
    return base64.b64encode(b"".join(v.to_bytes(size, "little", signed=True) for v in values)).decode()


def _set(doc: dict[str, Any], *path_and_value: Any) -> None:
    *path, key, value = path_and_value
    target = doc
    for step in path:
        target = target[step]
    target[key] = value


MALFORMED: dict[str, Callable[[], bytes]] = {
    "truncated-gzip": lambda: _gz(_doc())[:-20],
    "gzip-of-nothing-useful": lambda: gzip.compress(b"\x00\x01\x02 not a profile", mtime=0),
    "missing-frames": lambda: _edit(lambda d: d.pop("frames")),
    "missing-columns": lambda: _edit(lambda d: d.pop("columns")),
    "missing-stack-column": lambda: _edit(lambda d: d["columns"].pop("stack")),
    "frames-not-a-list": lambda: _edit(lambda d: _set(d, "frames", {"a": 1})),
    "frame-with-wrong-types": lambda: _edit(lambda d: _set(d, "frames", 0, [1, 2, "three", None])),
    "frame-too-short": lambda: _edit(lambda d: _set(d, "frames", 0, ["main"])),
    "stack-frame-id-out-of-range": lambda: _edit(lambda d: _set(d, "stacks", 0, [0, 999])),
    "sample-stack-id-out-of-range": lambda: _edit(
        lambda d: _set(d, "columns", "stack", _column([999] * 7, 4))),
    "sample-label-id-out-of-range": lambda: _edit(
        lambda d: _set(d, "columns", "labels", _column([12345] * 7, 4))),
    "bad-base64": lambda: _edit(lambda d: _set(d, "columns", "weight", "abc")),
    "columns-differ-in-length": lambda: _edit(lambda d: _set(d, "columns", "weight", _column([1], 8))),
    "threads-wrong-type": lambda: _edit(lambda d: _set(d, "threads", ["MainThread"])),
    "label-sets-wrong-type": lambda: _edit(lambda d: _set(d, "label_sets", [{}, {"k": 1}])),
    "top-level-list": lambda: _gz([1, 2, 3]),
    "unknown-version": lambda: _edit(lambda d: _set(d, "version", 99)),
}


def test_a_good_file_still_loads(tmp_path: Path) -> None:
    data = make_model()
    data.save(tmp_path / "good.ringprof")
    back = ProfileData.load(tmp_path / "good.ringprof")
    assert back.total_weight() == data.total_weight() == 18
    assert [f.name for f in back.frames] == [f.name for f in data.frames]


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_native_file_raises_one_line_profile_format_error(case: str, tmp_path: Path) -> None:
    path = tmp_path / f"{case}.ringprof"
    path.write_bytes(MALFORMED[case]())
    with pytest.raises(ProfileFormatError) as info:
        ProfileData.load(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ProfileData.load(tmp_path / "absent.ringprof")


@pytest.mark.parametrize("case", ["truncated-gzip", "missing-frames", "frame-with-wrong-types",
                                  "sample-stack-id-out-of-range", "bad-base64"])
def test_cli_prints_one_line_and_exits_2(case: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.ringprof"
    path.write_bytes(MALFORMED[case]())
    for args in (["convert", str(path), str(tmp_path / "out.collapsed")],
                 ["view", str(path), "--no-browser", "-o", str(tmp_path / "out.html")]):
        proc = subprocess.run([sys.executable, "-m", "ringprof", *args], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith(f"ringprof: error: {path}: "), proc.stderr
    assert not (tmp_path / "out.collapsed").exists() and not (tmp_path / "out.html").exists()
