"""One sampler, many recordings (issue 12).

Profiles, ``ringprof.start()``, the decorator and the cProfile drop-in may be
enabled at the same time; each gets the samples taken while it is enabled on
the threads it asked for; settings conflicts follow one documented rule; one
drained batch serves every recording.  Whatever needs a fresh process (the
once-per-process warning, fork) runs in a child.

Assertions compare weights (CPU time shares), never record counts or wall
timings, so they hold on a loaded machine.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from robust_helpers import run_child

import ringprof
from ringprof import _native, control, recording, resolve, sampler

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")

INTERVAL = 0.002


def burn(seconds: float) -> int:
    deadline = time.thread_time() + seconds
    acc = 0
    while time.thread_time() < deadline:
        for i in range(200):
            acc += i * i
    return acc


def inside(seconds: float) -> int:
    return burn(seconds)


def outside(seconds: float) -> int:
    return burn(seconds)


def function_weight(prof: ringprof.Profile, name: str) -> int:
    data = prof.data
    total = 0
    for frames, weight in data.iter_stacks():
        if any(f.name == name for f in frames):
            total += weight
    return total


def thread_weights(prof: ringprof.Profile) -> Counter[int]:
    out: Counter[int] = Counter()
    data = prof.data
    for tid, w in zip(data.thread.tolist(), data.weight.tolist(), strict=True):
        out[tid] += w
    return out


@pytest.fixture(autouse=True)
def clean_sampler() -> Iterator[None]:
    yield
    leaked = []
    if control.started() is not None:
        leaked.append("start()")
        ringprof.stop()
    for prof in recording.enabled_profiles():
        leaked.append(repr(prof))
        prof.disable()
    assert not sampler.is_running(), "sampler still running"
    assert not leaked, leaked


# --------------------------------------------------------------------------- the decorator
def test_decorator_under_start_records_both() -> None:
    @ringprof.profile(interval=INTERVAL)
    def decorated(seconds: float) -> int:
        return inside(seconds)

    prof = ringprof.start(interval=INTERVAL)
    try:
        outside(0.15)
        decorated(0.15)  # today: RuntimeError "another ringprof Profile is already enabled"
        outside(0.15)
    finally:
        ringprof.stop()
    deco = decorated.profile  # type: ignore[attr-defined]
    assert not deco.enabled
    assert function_weight(deco, "inside") > 0
    assert function_weight(deco, "outside") == 0, "the decorator recorded outside its call"
    # start()'s profile saw everything: inside is about a third of it
    w_in, w_out = function_weight(prof, "inside"), function_weight(prof, "outside")
    assert w_in > 0 and w_out > 0
    assert 0.15 < w_in / (w_in + w_out) < 0.55, (w_in, w_out)


def test_two_threads_in_one_decorated_function_keep_each_other_recorded() -> None:
    @ringprof.profile(interval=INTERVAL)
    def work(seconds: float) -> int:
        return inside(seconds)

    short_done = threading.Event()
    tids: dict[str, int] = {}

    def short() -> None:
        tids["short"] = threading.get_native_id()
        work(0.1)
        short_done.set()

    def long() -> None:
        tids["long"] = threading.get_native_id()
        work(0.4)  # goes on long after `short` left the function

    def bystander() -> None:
        tids["bystander"] = threading.get_native_id()
        outside(0.3)  # never inside the decorated function

    threads = [threading.Thread(target=f) for f in (short, long, bystander)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert short_done.is_set()
    weights = thread_weights(work.profile)  # type: ignore[attr-defined]
    assert weights[tids["bystander"]] == 0, "a thread outside the function was recorded"
    assert weights[tids["short"]] > 0
    # today the short call's exit disabled the shared profile: the long thread
    # lost everything after 0.1 s.  It burned 4x the CPU of the short one.
    ratio = weights[tids["long"]] / weights[tids["short"]]
    assert ratio > 2.2, (weights, tids)
    assert not work.profile.enabled  # type: ignore[attr-defined]


def test_recursive_and_nested_decorated_calls() -> None:
    @ringprof.profile(interval=INTERVAL)
    def recurse(depth: int) -> int:
        if depth:
            return recurse(depth - 1)
        return inside(0.15)

    @ringprof.profile(interval=INTERVAL)
    def outer() -> int:
        return recurse(3)

    outer()
    recurse(2)
    for fn in (outer, recurse):
        prof = fn.profile  # type: ignore[attr-defined]
        assert not prof.enabled
        assert function_weight(prof, "inside") > 0
    # outer saw one 0.15 s burn, recurse saw two
    ratio = function_weight(recurse.profile, "inside") / function_weight(outer.profile, "inside")  # type: ignore[attr-defined]
    assert 1.4 < ratio < 2.8, ratio
    assert sampler.open_subscriptions() == 0


# --------------------------------------------------------------------------- cProfile drop-in
def test_cprofile_dropin_under_start() -> None:
    import ringprof as cProfile

    prof = ringprof.start(interval=INTERVAL)
    try:
        pr = cProfile.Profile()
        pr.enable()  # today: RuntimeError inside user code
        inside(0.15)
        pr.disable()
    finally:
        ringprof.stop()
    assert function_weight(pr, "inside") > 0
    assert function_weight(prof, "inside") > 0


def test_cprofile_dropin_under_the_cli(tmp_path: Any) -> None:
    script = tmp_path / "uses_cprofile.py"
    script.write_text(
        "import time\n"
        "import ringprof as cProfile\n"
        "def hot():\n"
        "    end = time.thread_time() + 0.3\n"
        "    while time.thread_time() < end:\n"
        "        pass\n"
        "pr = cProfile.Profile()\n"
        "pr.enable()\n"
        "hot()\n"
        "pr.disable()\n"
        "pr.print_stats('cumulative')\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-m", "ringprof", "-i", "0.002", str(script)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "RuntimeError" not in out.stderr
    assert "hot" in out.stdout  # the script's own report
    assert "hot" in out.stderr  # and the CLI's


def test_cprofile_positional_timer_and_timeunit() -> None:
    prof = ringprof.Profile(time.perf_counter, 0.001)  # cProfile.Profile(timer, timeunit)
    assert prof.mode == "cpu" and prof.interval == 0.01 and prof.max_depth == 128
    prof = ringprof.Profile(time.perf_counter, 0.001, False, True)  # ..., subcalls, builtins
    assert prof.mode == "cpu" and prof.max_depth == 128


def test_cprofile_clear_getstats_snapshot_stats() -> None:
    import pstats

    prof = ringprof.Profile(interval=INTERVAL)
    with prof:
        inside(0.1)
    assert len(prof.data) > 0
    prof.snapshot_stats()
    keys = {k[2] for k in prof.stats}
    assert "inside" in keys
    entries = prof.getstats()
    by_name = {e.code if isinstance(e.code, str) else e.code.co_name: e for e in entries}
    entry = by_name["inside"]
    stats = pstats.Stats(prof)  # calls create_stats
    (_cc, nc, tt, ct, _callers), = [v for k, v in stats.stats.items() if k[2] == "inside"]  # type: ignore[attr-defined]
    assert entry.callcount == nc and entry.totaltime == pytest.approx(ct) and entry.inlinetime == pytest.approx(tt)
    callees = {c.code.co_name for c in (by_name["inside"].calls or []) if not isinstance(c.code, str)}
    assert "burn" in callees
    prof.clear()
    assert len(prof.data) == 0
    with prof:
        burn(0.05)
    assert len(prof.data) > 0
    assert "inside" not in {f.name for f in prof.data.frames}


# --------------------------------------------------------------------------- settings rule
def test_settings_conflict_running_sampler_wins_and_warns_once() -> None:
    child = run_child('''
        import logging
        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append((record.levelname, record.getMessage()))
        logging.getLogger("ringprof").addHandler(Keep())
        logging.getLogger("ringprof").setLevel(logging.DEBUG)
        first = ringprof.Profile(interval=0.004, mode="cpu")
        second = ringprof.Profile(interval=0.001, mode="wall")
        third = ringprof.Profile(interval=0.002)
        with first:
            with second:          # never raises: records with the running settings
                with third:
                    burn(0.1)
        late = ringprof.Profile(interval=0.001, mode="wall")
        with late:                # the sampler stopped: a new one starts with late's settings
            spin(0.05)
        result(first=first.data.meta, second=second.data.meta, third=third.data.meta, late=late.data.meta,
               warnings=[m for lvl, m in records if lvl == "WARNING"],
               conflicts=[m for lvl, m in records if "already runs with" in m])
    ''')
    r = child.result
    assert "requested" not in r["first"]
    assert (r["second"]["mode"], r["second"]["interval"]) == ("cpu", 0.004)
    assert r["second"]["requested"] == {"mode": "wall", "interval": 0.001}
    assert r["third"]["interval"] == 0.004 and r["third"]["requested"] == {"interval": 0.002}
    assert r["second"]["timer"] == r["first"]["timer"]
    assert (r["late"]["mode"], r["late"]["interval"]) == ("wall", 0.001) and "requested" not in r["late"]
    assert len(r["conflicts"]) == 2, r  # both conflicts are logged ...
    assert len([w for w in r["warnings"] if "already runs with" in w]) == 1, r  # ... one as a warning
    assert r["second"]["stats"]["samples"] > 0


# --------------------------------------------------------------------------- one drain for all
def test_n_recordings_share_one_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    native = _native.load()
    calls = Counter()
    real_drain, real_ingest = native.drain, resolve.Resolver.ingest

    def counting_drain() -> Any:
        calls["drain"] += 1
        return real_drain()

    def counting_ingest(self: resolve.Resolver, buf: bytes) -> Any:
        calls["resolve"] += 1
        return real_ingest(self, buf)

    monkeypatch.setattr(native, "drain", counting_drain)
    monkeypatch.setattr(resolve.Resolver, "ingest", counting_ingest)

    def run(n: int) -> tuple[Counter[str], list[ringprof.Profile]]:
        calls.clear()
        profs = [ringprof.Profile(interval=INTERVAL, drain_interval=0.05) for _ in range(n)]
        for p in profs:
            p.enable()
        inside(0.4)
        for p in profs:
            p.disable()
        for p in profs:
            p.data  # noqa: B018 - settles pending deliveries; must not drain again
        return Counter(calls), profs

    one, _ = run(1)
    many, profs = run(8)
    assert one["drain"] > 0 and many["drain"] > 0
    # Drain passes follow the drain interval, not the number of recordings
    # (allow for the extra wall time eight enables/disables take on a busy box).
    assert many["drain"] <= 2 * one["drain"] + 4, (one, many)
    assert 0 < many["resolve"] <= 2 * one["resolve"] + 4, (one, many)
    weights = [function_weight(p, "inside") for p in profs]
    assert min(weights) > 0
    assert max(weights) - min(weights) <= 0.05 * max(weights) + 2, weights  # all saw the same burn


# --------------------------------------------------------------------------- drain failures
def test_drain_failures_are_logged_once_per_streak_and_counted() -> None:
    child = run_child('''
        import logging
        from ringprof import resolve
        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())
        logging.getLogger("ringprof").addHandler(Keep())
        real_ingest = resolve.Resolver.ingest
        failing = [True]
        def ingest(self, buf):
            if failing[0]:
                raise MemoryError("simulated")
            return real_ingest(self, buf)
        resolve.Resolver.ingest = ingest
        prof = ringprof.Profile(interval=0.002, drain_interval=0.01)
        prof.enable()
        burn(0.3)                     # many drain passes fail
        failing[0] = False
        burn(0.2)                     # and then recover
        prof.disable()
        result(failures=prof.data.meta["stats"]["drain_failures"], errors=prof.errors,
               failed=[m for m in records if "drain failed" in m],
               recovered=[m for m in records if "recovered" in m], samples=len(prof.data),
               threads=[t.name for t in threading.enumerate()])
    ''')
    r = child.result
    assert r["failures"] >= 3, r
    assert len(r["failed"]) == 1, r  # one line per streak, not one per pass
    assert len(r["recovered"]) == 1, r
    assert len(r["errors"]) == 1 and "MemoryError" in r["errors"][0], r
    assert r["samples"] > 0, r
    assert r["threads"] == ["MainThread"], r  # logging from the drain thread left no trace


# --------------------------------------------------------------------------- light import
def _child_modules(code: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    return run_child(code, prelude=False, env=env).result


_LIGHT_PRELUDE = '''
import json, os, sys, threading, time
def result(**kw):
    sys.stdout.write("RESULT " + json.dumps(kw) + "\\n")
HEAVY = ("numpy", "pstats", "pickle", "ctypes")
def heavy():
    return sorted(m for m in HEAVY if m in sys.modules)
def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
'''


def test_import_and_start_stop_load_no_heavy_module_and_start_no_thread() -> None:
    r = _child_modules(_LIGHT_PRELUDE + '''
import ringprof
after_import = heavy()
threads_after_import = len(sys._current_frames())
prof = ringprof.start(interval=0.002)
burn(0.2)
ringprof.stop()
n = len(prof.data)
result(after_import=after_import, threads_after_import=threads_after_import,
       after_stop=heavy(), samples=n, enumerate=threading.active_count())
''')
    assert r["after_import"] == [], r
    assert r["threads_after_import"] == 1, r
    assert r["after_stop"] == [], r
    assert r["samples"] > 0, r
    assert r["enumerate"] == 1, r


def test_continuous_windows_as_pprof_load_no_heavy_module(tmp_path: Any) -> None:
    out = tmp_path / "windows"
    r = _child_modules(_LIGHT_PRELUDE + f'''
import ringprof
prof = ringprof.start(interval=0.002, continuous=True, window=0.1,
                      sinks=["dir:{out}?format=pprof"])
burn(0.4)
ringprof.stop()
result(heavy=heavy(), files=sorted(os.listdir({str(out)!r})))
''')
    assert r["heavy"] == [], r
    assert any(f.endswith(".pb.gz") or "pprof" in f or f.endswith(".pb") for f in r["files"]), r


def test_import_ringprof_auto_with_profiling_off_builds_nothing() -> None:
    r = _child_modules(_LIGHT_PRELUDE + '''
before = set(sys.modules)
import ringprof.auto
new = sorted(m for m in set(sys.modules) - before if m.startswith("ringprof"))
result(new=new, heavy=heavy(), threads=len(sys._current_frames()))
''', env={"RINGPROF": ""})
    # ringprof.label_table: the label-set table ringprof.labels uses (it lived in labels.py before).
    assert set(r["new"]) <= {"ringprof", "ringprof._native", "ringprof.auto", "ringprof.labels",
                             "ringprof.label_table"}, r
    assert r["heavy"] == [] and r["threads"] == 1, r


def test_importtime_of_ringprof_lists_no_heavy_module() -> None:
    import subprocess

    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import ringprof"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "ringprof" in imported
    assert not imported & {"numpy", "pstats", "pickle", "ctypes", "ringprof._sampler"}, sorted(imported)


# --------------------------------------------------------------------------- invisible threads
def test_profiler_threads_are_invisible_to_threading() -> None:
    r = run_child('''
        import sys
        before = [t.name for t in threading.enumerate()]
        dangling = len(threading._dangling)
        windows = []
        prof = ringprof.start(interval=0.002, continuous=True, window=0.1, sinks=[windows.append])
        burn(0.3)
        during = [t.name for t in threading.enumerate()]
        os_threads = len(sys._current_frames())
        ringprof.stop()
        result(before=before, during=during, os_threads=os_threads, dangling=dangling,
               dangling_after=len(threading._dangling), windows=len(windows),
               active=threading.active_count())
    ''').result
    assert r["os_threads"] >= 2, r  # the drain/exporter threads do exist ...
    assert r["during"] == r["before"] == ["MainThread"], r  # ... but threading does not list them
    assert r["dangling_after"] <= r["dangling"], r
    assert r["active"] == 1 and r["windows"] > 0, r


def test_profiler_threads_carry_their_names_for_the_os() -> None:
    """``top -H`` and /proc tell ringprof's CPU apart from the program's (the
    production benchmark splits a worker's CPU this way)."""
    r = run_child('''
        def comms():
            names = []
            for task in os.listdir("/proc/self/task"):
                with open(f"/proc/self/task/{task}/comm") as fh:
                    names.append(fh.read().strip())
            return sorted(names)
        windows = []
        prof = ringprof.start(interval=0.002, continuous=True, window=0.1, sinks=[windows.append])
        burn(0.3)
        during = comms()
        ringprof.stop()
        result(during=during, windows=len(windows))
    ''').result
    names = r["during"]
    assert {"ringprof-drain", "ringprof-export", "ringprof-window"} <= set(names), r
    assert len([n for n in names if not n.startswith("ringprof")]) == 1, r  # the main thread
    assert r["windows"] > 0, r


def test_follow_fork_child_has_one_thread_right_after_fork() -> None:
    """CPython's test_threading.test_clear_threads_states_after_fork, under
    ringprof-run's defaults (continuous, follow_fork)."""
    r = run_child('''
        import sys
        # long windows: the child's own profile must not be cut while it runs
        prof = ringprof.start(interval=0.002, continuous=True, window=60, sinks=[lambda d: None],
                              follow_fork=True)
        burn(0.1)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            right_after = len(sys._current_frames())
            mine = rpc.started()
            burn(0.2)                                 # past the deferral (one drain interval) ...
            junk = [[i] for i in range(200000)]     # ... then allocate: garbage collections happen
            burn(0.2)
            del junk
            later = len(sys._current_frames())
            n = len(mine.data) if mine is not None else -1
            os.write(w, json.dumps({"right_after": right_after, "later": later, "samples": n,
                                    "enumerate": threading.active_count(),
                                    "distinct": mine is not prof}).encode())
            os._exit(0)
        os.close(w)
        raw = b""
        while chunk := os.read(r, 65536):
            raw += chunk
        _, status = os.waitpid(pid, 0)
        ringprof.stop()
        result(child=json.loads(raw), status=status)
    ''').result
    c = r["child"]
    assert r["status"] == 0, r
    assert c["right_after"] == 1, r  # looks unprofiled right after fork
    assert c["distinct"] and c["samples"] > 0, r  # ... yet profiles itself
    assert c["later"] >= 2 and c["enumerate"] == 1, r  # its drain thread started later, invisibly


# --------------------------------------------------------------------------- thread filters
def test_profile_threads_option_filters_samples() -> None:
    tids: dict[str, int] = {}

    def other() -> None:
        tids["other"] = threading.get_native_id()
        outside(0.2)

    with ringprof.Profile(interval=INTERVAL, threads="current") as mine, \
            ringprof.Profile(interval=INTERVAL) as everyone:
        t = threading.Thread(target=other)
        t.start()
        inside(0.2)
        t.join()
    me = threading.get_native_id()
    assert set(thread_weights(mine)) == {me}
    assert {me, tids["other"]} <= set(thread_weights(everyone))
    assert function_weight(mine, "outside") == 0 and function_weight(mine, "inside") > 0
    with pytest.raises(ValueError):
        ringprof.Profile(threads="everyone")  # type: ignore[arg-type]


def test_disable_is_cheap_and_data_still_complete() -> None:
    """A disabled recording keeps receiving what was taken before its disable
    (delivered at the next drain, or when .data is read)."""
    keeper = ringprof.Profile(interval=INTERVAL, drain_interval=5)  # keeps the sampler up
    keeper.enable()
    try:
        short = ringprof.Profile(interval=INTERVAL)
        with short:
            inside(0.15)
        assert not short.enabled
        w = function_weight(short, "inside")
        assert w > 0
        outside(0.1)
        assert function_weight(short, "outside") == 0
    finally:
        keeper.disable()


def test_logging_is_quiet_without_conflicts(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ringprof"):
        with ringprof.Profile(interval=INTERVAL), ringprof.Profile(interval=INTERVAL):
            burn(0.05)
    assert not [r for r in caplog.records if r.name == "ringprof"], caplog.records
    assert os.getpid() > 0


def test_programs_own_start_stop_work_under_the_launcher(tmp_path: Any) -> None:
    import subprocess

    script = tmp_path / "service.py"
    script.write_text(
        "import time, ringprof\n"
        "def hot():\n"
        "    end = time.thread_time() + 0.3\n"
        "    while time.thread_time() < end:\n"
        "        pass\n"
        "prof = ringprof.start(interval=0.002)   # the launcher already runs: must not raise\n"
        "hot()\n"
        "assert ringprof.stop() is prof\n"
        "print('own', len(prof.data), any(f.name == 'hot' for f in prof.data.frames))\n"
    )
    env = dict(os.environ, RINGPROF_SINKS=f"dir:{tmp_path}/windows?format=native", RINGPROF_WINDOW="60")
    out = subprocess.run([sys.executable, "-m", "ringprof.auto", str(script)], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[0] == "own" and int(words[1]) > 0 and words[2] == "True", out.stdout
    files = os.listdir(tmp_path / "windows")
    assert files, "the launcher's final window was not exported"
    data = ringprof.load(tmp_path / "windows" / files[0]).data
    assert any(f.name == "hot" for f in data.frames)


def test_threads_given_as_thread_objects_or_a_generator() -> None:
    me = threading.get_native_id()
    by_object = ringprof.Profile(interval=INTERVAL, threads=[threading.current_thread()])
    by_generator = ringprof.Profile(interval=INTERVAL, threads=(t for t in [me]))
    with by_object, by_generator:
        inside(0.1)
    assert set(thread_weights(by_object)) == {me}
    assert set(thread_weights(by_generator)) == {me}
