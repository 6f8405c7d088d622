"""A real gunicorn with 4 sync workers: every worker profiles itself and
exports windows tagged with its own pid; SIGTERM shuts everything down cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from ringprof.model import ProfileData

pytest.importorskip("gunicorn", reason="gunicorn is not installed (test extra 'web')")

APP = '''
import time

def busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(300))

def app(environ, start_response):
    busy(0.02)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited early with {proc.returncode}: {proc.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("gunicorn did not start listening")


def load(port: int, n: int = 80) -> None:
    def hit(k: int) -> None:
        for _ in range(k):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
                assert resp.read() == b"ok"

    threads = [threading.Thread(target=hit, args=(n // 8,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)


def run_gunicorn(tmp_path: Path, cmd: list[str], extra_env: dict[str, str],
                 app: str = APP) -> tuple[str, set[int]]:
    (tmp_path / "app.py").write_text(app)
    port = free_port()
    env = {**os.environ, "RINGPROF_SINKS": f"dir:{tmp_path / 'out'}?format=native",
           "RINGPROF_WINDOW": "1", "RINGPROF_MODE": "wall", "RINGPROF_INTERVAL": "0.005",
           "RINGPROF_SERVICE": "gtest", **extra_env}
    proc = subprocess.Popen([*cmd, "-w", "4", "-k", "sync", "-b", f"127.0.0.1:{port}", "--chdir",
                             str(tmp_path), "--graceful-timeout", "10", "app:app"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        wait_listening(port, proc)
        load(port)
        time.sleep(1.3)  # at least one window boundary in every worker
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=40)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode == 0, err
    workers = {int(p) for p in re.findall(r"Booting worker with pid: (\d+)", err)}
    assert len(workers) == 4, err
    return err, workers


def windows_by_pid(out: Path) -> dict[int, list[ProfileData]]:
    by_pid: dict[int, list[ProfileData]] = {}
    for f in sorted(out.iterdir()):
        data = ProfileData.load(f)
        assert f.name.startswith("gtest-") and f"-{data.meta['pid']}-" in f.name
        by_pid.setdefault(data.meta["pid"], []).append(data)
    return by_pid


def test_launcher_profiles_every_worker(tmp_path):
    err, workers = run_gunicorn(tmp_path, [sys.executable, "-m", "ringprof.auto", "-m", "gunicorn"], {})
    by_pid = windows_by_pid(tmp_path / "out")
    assert workers <= set(by_pid), (workers, set(by_pid))
    for pid in workers:
        windows = by_pid[pid]
        # a worker's windows are its own: contiguous indices, its pid, samples
        assert [w.meta["window_index"] for w in windows] == list(range(1, len(windows) + 1))
        assert all(len(w) > 0 and w.meta["service"] == "gtest" for w in windows)
    handled = [w for pid in workers for w in by_pid[pid]
               if any(f.name == "busy" for f in w.frames)]
    assert handled, "no worker recorded the application's work"
    assert "Traceback" not in err


def test_post_fork_hook_profiles_workers_only(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text(textwrap.dedent("""
        from ringprof.integrations.gunicorn import post_fork, worker_exit  # noqa: F401
    """))
    err, workers = run_gunicorn(tmp_path, [sys.executable, "-m", "gunicorn", "-c",
                                           str(tmp_path / "gunicorn.conf.py")], {})
    by_pid = windows_by_pid(tmp_path / "out")
    assert set(by_pid) == workers  # the master is not profiled
    assert "Traceback" not in err


def test_import_in_the_app_module_with_ringprof_1(tmp_path):
    # No launcher, no hook: the app imports ringprof.auto; gunicorn imports the
    # app in each worker (no --preload), so each worker starts its own profiler.
    err, workers = run_gunicorn(tmp_path, [sys.executable, "-m", "gunicorn"], {"RINGPROF": "1"},
                                app="import ringprof.auto  # noqa: F401\n" + APP)
    assert set(windows_by_pid(tmp_path / "out")) == workers
    assert "Traceback" not in err
