"""``benchmarks.prod_load --toggle``: one warm gunicorn whose workers switch
continuous profiling on and off between bursts.  The benchmark's figures are
only worth something if the switch really happens: in "on" bursts ringprof's
threads run in every worker and use CPU, in "off" bursts there are none."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("gunicorn", reason="gunicorn is not installed (test extra)")
pytest.importorskip("flask", reason="flask is not installed (test extra)")

ROOT = Path(__file__).resolve().parent.parent


def test_toggle_switches_profiling_in_every_worker(tmp_path: Path) -> None:
    out = tmp_path / "toggle.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.prod_load", "--toggle", "2", "--duration", "1.5", "--window", "1",
         "--workers", "2", "--connections", "2", "--python-load", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    on, off = results["continuous"], results["off"]
    assert len(on) == len(off) == 2
    for burst in off:
        assert burst["requests"] > 0
        assert burst["profiler_us_per_req"] == 0.0, burst  # no ringprof thread ran
    for burst in on:
        assert burst["requests"] > 0
        threads = burst["profiler_us_per_req_by_thread"]
        assert {"ringprof-drain", "ringprof-window", "ringprof-export"} <= set(threads), threads
        assert burst["profiler_us_per_req"] > 0, burst
    # The server exported windows while profiling was on (1 s windows, 1.5 s bursts).
    assert "windows written" in proc.stderr
    written = int(proc.stderr.split(" windows written")[0].rsplit(" ", 1)[1])
    assert written >= 2, proc.stderr[-2000:]
    assert "server exit 0" in proc.stderr


def test_control_run_never_switches_profiling_on(tmp_path: Path) -> None:
    """``--control`` (A/A): the same bursts, and no ringprof thread in any of them."""
    out = tmp_path / "control.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.prod_load", "--toggle", "1", "--control", "--duration", "1.0",
         "--window", "1", "--workers", "2", "--connections", "2", "--python-load", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    assert len(results["continuous"]) == len(results["off"]) == 1
    for burst in results["continuous"] + results["off"]:
        assert burst["requests"] > 0
        assert burst["profiler_us_per_req"] == 0.0, burst
    assert " 0 windows written" in proc.stderr, proc.stderr[-2000:]
    assert "control (A/A) run" in proc.stdout


def test_control_needs_toggle() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.prod_load", "--control"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--control needs --toggle" in proc.stderr
