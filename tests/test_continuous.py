"""Continuous mode: windows cut from the live profile, exported off-thread."""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from common_helpers import burn_wall

import ringprof
from ringprof import continuous
from ringprof.model import ProfileData

INTERVAL = 0.001


def only_a(seconds: float) -> None:
    burn_wall(seconds)


def only_b(seconds: float) -> None:
    burn_wall(seconds)


@pytest.fixture(autouse=True)
def _no_leftover_profiler():
    yield
    from ringprof.control import started

    if started() is not None:  # a failed test must not leave the sampler running
        ringprof.stop()


def test_windows_are_cut_exported_and_tagged():
    windows: list[ProfileData] = []
    prof = ringprof.start(interval=INTERVAL, continuous=True, window=0.2, sinks=[windows.append],
                          service="svc", tags={"env": "test"})
    ctl = prof.continuous
    assert isinstance(ctl, continuous.Continuous) and continuous.current() is ctl
    with ringprof.labels(route="/w"):
        burn_wall(1.0)
        deadline = time.monotonic() + 10  # a loaded machine may cut late: burn on (bounded) until it has
        while ctl.stats["windows"] < 3 and time.monotonic() < deadline:
            burn_wall(0.1)
    stopped = ringprof.stop()
    assert stopped is prof and continuous.current() is None
    assert len(windows) >= 3, ctl.stats
    starts = [w.meta["window_start"] for w in windows]
    assert starts == sorted(starts)
    for a, b in itertools.pairwise(windows):
        assert b.meta["window_start"] == pytest.approx(a.meta["window_end"])  # contiguous windows
        assert b.meta["window_index"] == a.meta["window_index"] + 1
    for w in windows:
        meta = w.meta
        assert meta["pid"] == os.getpid() and meta["service"] == "svc" and meta["tags"] == {"env": "test"}
        assert meta["window_end"] > meta["window_start"]
        assert meta["continuous"]["window"] == 0.2
        assert meta["timer"] and meta["duration"] > 0
    for w in windows[:-1]:  # (the final window may hold only the few samples taken after the block)
        assert {"route": "/w"} in w.label_sets
        assert threading.main_thread().native_id in w.threads
    # Every sample lands in exactly one window: the per-window sampler counts
    # telescope to the total, which equals the samples resolved into windows.
    assert sum(len(w) for w in windows) == sum(w.meta["stats"]["samples"] for w in windows)
    assert ctl.stats["windows"] >= len(windows) and ctl.stats["exported"] == len(windows)


def test_window_tables_hold_only_that_windows_stacks():
    windows: list[ProfileData] = []
    prof = ringprof.start(interval=INTERVAL, continuous=True, window=60, sinks=[windows.append])
    only_a(0.3)
    prof.continuous.cut_now()
    only_b(0.3)
    ringprof.stop()
    assert len(windows) == 2
    names = [{f.name for f in w.frames} for w in windows]
    assert "only_a" in names[0] and "only_b" not in names[0]
    assert "only_b" in names[1] and "only_a" not in names[1]  # per-window tables were reset


def test_final_window_is_exported_on_stop():
    windows: list[ProfileData] = []
    ringprof.start(interval=INTERVAL, continuous=True, window=3600, sinks=[windows.append])
    burn_wall(0.2)
    ringprof.stop()
    assert len(windows) == 1 and len(windows[0]) > 0


def test_empty_windows_are_skipped_unless_asked():
    windows: list[ProfileData] = []
    # Only a sleeping thread is recorded: this thread burns CPU inside start()
    # itself, and a thread left running by an earlier test (an HTTP receiver
    # finishing its reply) may burn CPU too; neither is what this test is about.
    idle = threading.Thread(target=time.sleep, args=(0.5,), daemon=True)
    idle.start()
    prof = ringprof.start(interval=INTERVAL, continuous=True, window=3600, sinks=[windows.append],
                          threads=[idle])
    time.sleep(0.05)  # cpu mode: an idle thread takes no samples
    prof.continuous.cut_now()
    ringprof.stop()
    assert windows == [] and prof.continuous.stats["empty"] == 2
    windows.clear()
    prof = ringprof.start(interval=INTERVAL, continuous=True, window=3600, sinks=[windows.append],
                          export_empty=True)
    ringprof.stop()
    assert len(windows) == 1


def test_slow_sink_never_blocks_and_the_queue_is_bounded():
    release = threading.Event()
    seen: list[int] = []

    def slow_sink(data: ProfileData) -> None:
        release.wait(10)
        seen.append(data.meta["window_index"])

    prof = ringprof.start(interval=INTERVAL, continuous=True, window=0.05, sinks=[slow_sink],
                          max_pending=2, flush_timeout=5)
    ctl = prof.continuous
    worst = 0.0
    end = time.monotonic() + 0.8
    while time.monotonic() < end:  # the application keeps running at full speed
        t0 = time.perf_counter()
        burn_wall(0.005)
        worst = max(worst, time.perf_counter() - t0)
    assert len(ctl._queue) <= 2
    assert ctl.stats["dropped"] >= 3, ctl.stats
    assert worst < 0.5  # nothing waited for the sink (generous bound: noisy machine)
    ctl.stop_cutting()  # no new windows between the release and stop()
    release.set()
    ringprof.stop()
    assert seen == sorted(seen)
    assert len(seen) <= 1 + 2 + 1  # the one in flight, the queue, the final window
    assert seen[-1] - seen[0] > len(seen) - 1  # the oldest windows were the ones dropped


def test_failing_sink_is_logged_once_per_streak(caplog):
    state = {"fail": True, "calls": 0}

    def flaky(data: ProfileData) -> None:
        state["calls"] += 1
        if state["fail"]:
            raise OSError("disk full\nsecond line")

    good: list[ProfileData] = []
    caplog.set_level(logging.WARNING, logger="ringprof")
    prof = ringprof.start(interval=INTERVAL, continuous=True, window=0.05, sinks=[flaky, good.append])
    ctl = prof.continuous
    deadline = time.monotonic() + 5
    while state["calls"] < 4 and time.monotonic() < deadline:
        burn_wall(0.02)
    state["fail"] = False
    calls = state["calls"]
    while state["calls"] < calls + 2 and time.monotonic() < deadline:
        burn_wall(0.02)
    ringprof.stop()
    failures = [r for r in caplog.records if "flaky failed:" in r.getMessage()]
    recovered = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in caplog.records]
    assert "disk full second line" in failures[0].getMessage()  # one line
    assert len(recovered) == 1
    assert ctl.stats["sink_failures"] >= 4
    assert len(good) >= 5  # the other sink was not affected


def test_bad_options_leave_nothing_running():
    with pytest.raises(ValueError, match="needs sinks"):
        ringprof.start(continuous=True)
    with pytest.raises(ValueError, match="unknown sink"):
        ringprof.start(continuous=True, sinks=["ftp://x"])
    with pytest.raises(ValueError, match="window"):
        ringprof.start(continuous=True, sinks=[print], window=0)
    with pytest.raises(TypeError, match="not a sink"):
        ringprof.start(continuous=True, sinks=[42])
    prof = ringprof.start(interval=INTERVAL)  # nothing was left half-started
    assert prof.continuous is None
    ringprof.stop()


def test_cut_swaps_data_atomically_under_load():
    prof = ringprof.Profile(interval=INTERVAL)
    prof.enable()
    parts: list[ProfileData] = []
    stop = threading.Event()
    workers = [threading.Thread(target=lambda: [burn_wall(0.01) for _ in iter(stop.is_set, True)])
               for _ in range(2)]
    for w in workers:
        w.start()
    try:
        for _ in range(10):
            time.sleep(0.03)
            parts.append(prof.cut())
    finally:
        stop.set()
        for w in workers:
            w.join()
        prof.disable()
    parts.append(prof.cut())
    assert all(p is not q for p, q in itertools.pairwise(parts))
    total = sum(len(p) for p in parts)
    assert total == sum(p.meta["stats"]["samples"] for p in parts)
    assert len(prof.data) == 0


def _run(code: str, tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={**os.environ, **env})


def test_final_window_is_flushed_at_interpreter_exit(tmp_path):
    out = tmp_path / "out"
    proc = _run(f"""
        import sys, time, ringprof
        ringprof.start(interval=0.001, continuous=True, window=3600, service="exiting",
                       sinks=["dir:{out}?format=native"])
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            sum(range(300))
        sys.exit(3)
    """, tmp_path)
    assert proc.returncode == 3, proc.stderr
    files = sorted(out.iterdir())
    assert len(files) == 1 and files[0].name.startswith("exiting-"), files
    data = ProfileData.load(files[0])
    assert len(data) > 0 and data.meta["service"] == "exiting"


def test_forked_child_profiles_itself_with_its_own_pid(tmp_path):
    out = tmp_path / "out"
    proc = _run(f"""
        import os, sys, time, warnings, ringprof
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads
        def burn(s):
            end = time.perf_counter() + s
            while time.perf_counter() < end:
                sum(range(300))
        ringprof.start(interval=0.001, continuous=True, window=3600, service="forky",
                       sinks=["dir:{out}?format=native"])
        burn(0.1)
        pid = os.fork()
        if pid == 0:
            burn(0.3)
            sys.exit(0)   # normal exit in the child: its final window is flushed
        _, status = os.waitpid(pid, 0)
        print(pid, os.waitstatus_to_exitcode(status))
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    child, code = map(int, proc.stdout.split())
    assert code == 0
    pids = {ProfileData.load(f).meta["pid"] for f in out.iterdir()}
    assert pids == {child, _parent_pid_of(out, child)}


def _parent_pid_of(out, child: int) -> int:
    others = {ProfileData.load(f).meta["pid"] for f in out.iterdir()} - {child}
    assert len(others) == 1
    return others.pop()
