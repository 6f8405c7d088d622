"""``ringprof convert IN OUT`` and ``ringprof view -o OUT`` when OUT cannot be written.

One line on stderr, exit status 2, never a traceback, and no output or
temporary file left behind.  CI runs as root, which ignores permission bits,
so the unwritable paths are ones root cannot write either: a directory where
the file should be, a path under a regular file, a missing directory, a
read-only directory with the DAC capabilities dropped (tests/unwritable.py),
and a write that fails after the up-front check passed (the disk filling up,
the directory vanishing), simulated in-process.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from modelfactory import make_model
from unwritable import drop_dac_on_exec, read_only_dir

from ringprof import cli

VERBS: dict[str, Callable[[Path, Path], list[str]]] = {
    "convert": lambda src, out: ["convert", str(src), str(out)],
    "view": lambda src, out: ["view", str(src), "-o", str(out), "--no-browser"],
}

# Each makes an output path (of a .html name, readable by both verbs) that root cannot write.
UNWRITABLE: dict[str, Callable[[Path], Path]] = {
    "directory-in-place-of-file": lambda tmp: _mkdir(tmp / "out.html"),
    "path-under-a-regular-file": lambda tmp: _file(tmp / "plain") / "out.html",
    "missing-directory": lambda tmp: tmp / "absent" / "out.html",
}


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _file(path: Path) -> Path:
    path.write_text("x")
    return path


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "in" / "run.ringprof"
    src.parent.mkdir()
    make_model().save(src)
    return src


def _ringprof(args: list[str], cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run([sys.executable, "-m", "ringprof", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, **kw)  # type: ignore[call-overload]


def _check_one_line_exit_2(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ringprof: error: "), proc.stderr
    assert proc.stdout == "", proc.stdout


def _leftovers(directory: Path) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.endswith((".tmp", ".ringprof-probe")))


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize("case", sorted(UNWRITABLE))
def test_unwritable_output_is_one_line_and_exit_2(verb: str, case: str, tmp_path: Path) -> None:
    src = _source(tmp_path)
    out = UNWRITABLE[case](tmp_path)
    proc = _ringprof(VERBS[verb](src, out), cwd=tmp_path)
    _check_one_line_exit_2(proc)
    assert str(out.name) in proc.stderr
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_read_only_directory_as_root_too(verb: str, tmp_path: Path) -> None:
    src = _source(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    read_only_dir(ro)
    try:
        proc = _ringprof(VERBS[verb](src, ro / "out.html"), cwd=tmp_path, preexec_fn=drop_dac_on_exec)
    finally:
        ro.chmod(0o700)
    _check_one_line_exit_2(proc)
    assert "permission denied" in proc.stderr.lower()
    assert os.listdir(ro) == []


FAILURES = {
    "disk-full-on-fsync": ("fsync", OSError(errno.ENOSPC, "No space left on device")),
    "directory-gone-at-rename": ("replace", FileNotFoundError(errno.ENOENT, "No such file or directory")),
    "io-error-at-rename": ("replace", OSError(errno.EIO, "Input/output error")),
}


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_write_failing_after_the_check_is_one_line_and_exit_2(verb: str, failure: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    src = _source(tmp_path)
    out = tmp_path / "out.html"
    name, error = FAILURES[failure]

    def fail(*args: object, **kw: object) -> None:
        raise error

    monkeypatch.setattr(os, name, fail)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    rc = cli.main(VERBS[verb](src, out))
    monkeypatch.undo()
    captured = capsys.readouterr()
    assert rc == 2, captured
    lines = captured.err.splitlines()
    assert lines == [f"ringprof: error: could not write {out}: {error.strerror}"], captured.err
    assert captured.out == ""
    assert not out.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_a_named_pipe_is_written_into_not_replaced(verb: str, tmp_path: Path) -> None:
    """OUT that is a FIFO or a device (``/dev/stdout``, ``/dev/null``) must not be replaced by a file:
    as root that would destroy the device node.  A FIFO in tmp_path stands for them (harmless if it breaks)."""
    import stat
    import time

    src = _source(tmp_path)
    fifo = tmp_path / "out.html"
    os.mkfifo(fifo)
    args = VERBS[verb](src, fifo) + (["--format", "collapsed"] if verb == "convert" else [])
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader exists: the writer's open does not block
    chunks: list[bytes] = []
    try:
        proc = subprocess.Popen([sys.executable, "-m", "ringprof", *args], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            exited = proc.poll() is not None
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:  # a writer is connected, nothing to read yet
                chunk = None
            if chunk:
                chunks.append(chunk)
            elif exited:
                break
            else:
                time.sleep(0.01)
        else:
            proc.kill()
        _out, err = proc.communicate(timeout=60)
    finally:
        os.close(fd)
    assert proc.returncode == 0, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the named pipe was replaced by a file"
    written = b"".join(chunks)
    assert b"<html" in written.lower() if verb == "view" else b"work" in written, written[:200]
    assert _leftovers(tmp_path) == []
