"""`ringprof view FILE` and `ringprof convert` end to end, in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ringprof.model import Frame, ProfileData


def _saved_profile(tmp_path: Path) -> Path:
    data = ProfileData({"interval": 0.01, "mode": "cpu"})
    main, hot = Frame("main", "app.py", 1, 3), Frame("hot<script>", "app.py", 10, 12)
    data.add_sample([main, hot], thread=7, time_ns=1_000, weight=3)
    data.add_sample([main], thread=7, time_ns=2_000)
    path = tmp_path / "run.ringprof"
    data.save(path)
    return path


def _ringprof(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run([sys.executable, "-m", "ringprof", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_view_writes_html_and_prints_its_path_without_a_browser(tmp_path: Path) -> None:
    src = _saved_profile(tmp_path)
    proc = _ringprof("view", str(src), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = Path(proc.stdout.strip())
    assert out == (tmp_path / "run.html").resolve()
    html = out.read_text()
    assert "<html" in html.lower() and "app.py" in html
    assert "hot<script>" not in html  # names are escaped, never raw markup


def test_view_with_source_url_and_output_path(tmp_path: Path) -> None:
    src = _saved_profile(tmp_path)
    out = tmp_path / "sub.html"
    proc = _ringprof("view", str(src), "-o", str(out), "--source-url",
                     "https://example.invalid/blob/main/{path}#L{line}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "example.invalid/blob/main/" in out.read_text()


def test_view_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = _ringprof("view", str(tmp_path / "missing.ringprof"), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("ringprof: error:")
    junk = tmp_path / "junk.ringprof"
    junk.write_bytes(b"not a profile")
    proc = _ringprof("view", str(junk), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("ringprof: error:") and "Traceback" not in proc.stderr


def test_convert_to_every_format(tmp_path: Path) -> None:
    src = _saved_profile(tmp_path)
    for name in ("out.prof", "out.speedscope.json", "out.pprof", "out.collapsed", "out.trace.json",
                 "out.html", "copy.ringprof"):
        proc = _ringprof("convert", str(src), name, cwd=tmp_path)
        assert proc.returncode == 0, (name, proc.stderr)
        assert (tmp_path / name).stat().st_size > 0
    proc = _ringprof("convert", str(src), "out.unknownext", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("ringprof: error:")
    assert not (tmp_path / "out.unknownext").exists()
