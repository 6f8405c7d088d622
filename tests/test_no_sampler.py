"""An interpreter ringprof cannot sample (a free-threaded build, CPython 3.16+):
setup.py installs it without the native sampler there.  Everything that does
not sample must still work, and starting a recording says why in one line.

Simulated in a child process by making ``ringprof._sampler`` unimportable
before ringprof is imported, exactly what such an install looks like.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from modelfactory import make_model

HIDE_SAMPLER = "import sys; sys.modules['ringprof._sampler'] = None\n"


def run_child(code: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-c", HIDE_SAMPLER + textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=full_env)


def test_recording_refuses_with_one_line_and_the_rest_works(tmp_path: Path) -> None:
    make_model().save(tmp_path / "in.ringprof")
    proc = run_child(
        """
        import ringprof
        from ringprof import cli
        with ringprof.labels(request="a"):   # labels never raise in user code
            pass
        for name, attempt in (("Profile", lambda: ringprof.Profile().enable()), ("start", ringprof.start)):
            try:
                attempt()
            except RuntimeError as exc:
                assert "\\n" not in str(exc), exc
                print(name, "refused:", exc)
            else:
                raise SystemExit(name + " started without a sampler")
        @ringprof.profile
        def f():
            return 42
        assert f() == 42 and f() == 42   # runs unprofiled: the reason is logged once
        data = ringprof.load("in.ringprof")
        data.export("out.pprof")
        data.export("out.html")
        assert cli.main(["convert", "in.ringprof", "out.speedscope.json"]) == 0
        assert cli.main(["diff", "in.ringprof", "out.pprof"]) == 0
        print("exports ok")
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("Profile", "start"):
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(name + " refused:"))
        assert "cannot sample on this interpreter" in line and "native sampler is not installed" in line
    assert "exports ok" in proc.stdout
    assert proc.stderr.count("runs unprofiled") == 1, proc.stderr
    for out in ("out.pprof", "out.html", "out.speedscope.json"):
        assert (tmp_path / out).stat().st_size > 0


def test_auto_prints_one_line_and_the_application_runs(tmp_path: Path) -> None:
    proc = run_child(
        """
        import ringprof.auto
        print("application ran")
        """,
        tmp_path,
        env={"RINGPROF": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "application ran"
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ringprof: not profiling:"), proc.stderr
    assert "cannot sample on this interpreter" in lines[0]


def test_cli_run_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    proc = run_child(
        """
        import sys
        from ringprof import cli
        sys.exit(cli.main(["app.py"]))
        """,
        tmp_path,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cannot sample on this interpreter" in lines[0], proc.stderr
