"""Never crash the host: other users of SIGPROF and other profilers at the same time.

* Per-thread sampling uses a real-time signal, so SIGPROF users (handlers,
  ITIMER_PROF, resets to SIG_IGN / SIG_DFL) before or during sampling change
  nothing for it, and their SIGPROF keeps working.
* The ITIMER_PROF fallback needs SIGPROF: a handler installed *before* start
  makes enable() refuse with a message naming it; one installed *after* start
  is noticed within a drain interval, said on stderr, sampling stops, and the
  user's handler stays installed and working.
* Peers: cProfile (sys.setprofile, no signals: both work), faulthandler's
  watchdog thread and signal dumps, and yappi if it is installed.
"""

from __future__ import annotations

import sys

import pytest
from robust_helpers import run_child

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")


def test_python_sigprof_handler_before_start_coexists() -> None:
    """Per-thread samples travel on a real-time signal: a SIGPROF user that was
    there first keeps SIGPROF and ringprof samples anyway."""
    child = run_child('''
        import signal
        calls = []
        def my_profiler_tick(signum, frame):
            calls.append(signum)
        signal.signal(signal.SIGPROF, my_profiler_tick)
        prof = ringprof.Profile(interval=0.004)
        prof.enable()
        signal.setitimer(signal.ITIMER_PROF, 0.005, 0.005)
        burn(0.3)
        signal.setitimer(signal.ITIMER_PROF, 0)
        prof.disable()
        result(mine=signal.getsignal(signal.SIGPROF) is my_profiler_tick, calls=len(calls),
               weight=int(prof.data.weight.sum()), sig=native.signal_number())
    ''')
    r = child.result
    assert r["mine"] and r["calls"] >= 10, child.describe()
    assert r["weight"] >= 15 and r["sig"] != 27, child.describe()  # 0.3 s at 250 Hz is ~75


def test_python_sigprof_handler_before_start_refuses_the_itimer_fallback() -> None:
    child = run_child('''
        import signal
        calls = []
        def my_profiler_tick(signum, frame):
            calls.append(signum)
        signal.signal(signal.SIGPROF, my_profiler_tick)
        prof = ringprof.Profile(interval=0.004, timer_kind="itimer")
        try:
            prof.enable()
            outcome = "enabled"
        except RuntimeError as exc:
            outcome = str(exc)
        signal.setitimer(signal.ITIMER_PROF, 0.005, 0.005)
        burn(0.2)
        signal.setitimer(signal.ITIMER_PROF, 0)
        result(outcome=outcome, mine=signal.getsignal(signal.SIGPROF) is my_profiler_tick, calls=len(calls),
               active=not rpp.enabled_profiles(), native=native.is_enabled())
    ''')
    r = child.result
    assert "SIGPROF is already handled" in r["outcome"] and "my_profiler_tick" in r["outcome"], child.describe()
    assert r["mine"] and r["calls"] >= 10 and r["active"] and not r["native"], child.describe()


@pytest.mark.parametrize("timer_kind", ["thread", "itimer"])
def test_sigprof_handler_set_with_sigaction_in_c_before_start(timer_kind: str) -> None:
    """A C-level handler (here libc's own `abort`, installed through ctypes): the
    itimer fallback refuses and names it; per-thread sampling does not need SIGPROF."""
    child = run_child(f'''
        import ctypes, ctypes.util, signal
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        handler = ctypes.cast(libc.abort, ctypes.c_void_p).value
        libc.signal.restype = ctypes.c_void_p
        libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.signal(int(signal.SIGPROF), handler)
        prof = ringprof.Profile(interval=0.004, timer_kind={timer_kind!r})
        try:
            prof.enable()
            burn(0.2)
            prof.disable()
            outcome = "enabled"
        except RuntimeError as exc:
            outcome = str(exc)
        libc.signal(int(signal.SIGPROF), 0)   # SIG_DFL
        result(outcome=outcome, weight=int(prof.data.weight.sum()))
    ''')
    r = child.result
    if timer_kind == "itimer":
        assert "SIGPROF is already handled by" in r["outcome"] and "abort" in r["outcome"], child.describe()
    else:
        assert r["outcome"] == "enabled" and r["weight"] >= 10, child.describe()


@pytest.mark.parametrize("mode,interval", [("cpu", 0.004), ("wall", 0.0005)])
def test_sigprof_users_come_and_go_while_sampling(mode: str, interval: float) -> None:
    """Another SIGPROF user installs a handler and arms ITIMER_PROF, then resets
    SIGPROF to SIG_IGN and to SIG_DFL (which terminates on SIGPROF): the process
    survives and ringprof samples all along."""
    child = run_child(f'''
        import signal
        calls = []
        def user_handler(signum, frame):
            calls.append(signum)
        prof = ringprof.Profile(interval={interval}, mode={mode!r}, drain_interval=0.05)
        prof.enable()
        def phase():
            w0 = int(prof.data.weight.sum()) if len(prof.data) else 0
            burn(0.25)
            time.sleep(0.15)   # let a drain run
            return int(prof.data.weight.sum()) - w0
        gains = [phase()]
        signal.signal(signal.SIGPROF, user_handler)
        signal.setitimer(signal.ITIMER_PROF, 0.005, 0.005)
        gains.append(phase())
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, signal.SIG_IGN)
        gains.append(phase())
        signal.signal(signal.SIGPROF, signal.SIG_DFL)
        gains.append(phase())
        enabled = prof.enabled
        prof.disable()
        result(gains=gains, calls=len(calls), enabled=enabled, errors=prof.errors)
    ''')
    r = child.result
    assert r["enabled"] and not r["errors"], child.describe()
    assert r["calls"] >= 10, child.describe()
    assert min(r["gains"]) >= 0.2 * max(r["gains"]) > 0, f"sampling stalled in a phase: {r['gains']}\n" \
        + child.describe()


def test_python_sigprof_handler_after_start_is_detected_with_the_itimer_fallback() -> None:
    """With the itimer fallback the user typically arms ITIMER_PROF right after
    installing the handler: ringprof's stop must not disarm *their* timer."""
    child = run_child('''
        import signal
        calls = []
        def user_handler(signum, frame):
            calls.append(signum)
        prof = ringprof.Profile(interval=0.004, drain_interval=0.05, timer_kind="itimer")
        prof.enable()
        burn(0.1)
        before = len(prof.data)
        t0 = time.monotonic()
        signal.signal(signal.SIGPROF, user_handler)
        signal.setitimer(signal.ITIMER_PROF, 0.005, 0.005)
        while prof.enabled and time.monotonic() - t0 < 5:
            burn(0.005)
        noticed = time.monotonic() - t0
        calls.clear()
        # the user's handler is still installed and still works (their timer too)
        burn(0.2)
        signal.setitimer(signal.ITIMER_PROF, 0)
        spin(0.2)
        result(before=before, noticed=noticed, enabled=prof.enabled, active=not rpp.enabled_profiles(),
               native=native.is_enabled(), mine=signal.getsignal(signal.SIGPROF) is user_handler,
               calls=len(calls), errors=prof.errors, samples=len(prof.data))
    ''')
    r = child.result
    assert r["before"] > 0, child.describe()
    assert not r["enabled"] and r["active"] and not r["native"], child.describe()
    assert r["noticed"] < 1.0, f"took {r['noticed']:.2f}s to notice (drain interval 0.05s)\n{child.describe()}"
    assert "handler was replaced" in child.stderr, child.describe()
    assert r["mine"] and r["calls"] >= 10, child.describe()
    assert any("replaced" in e for e in r["errors"]), child.describe()


def test_sigprof_reset_to_default_with_the_itimer_fallback_does_not_kill() -> None:
    """signal.signal(SIGPROF, SIG_DFL) while ITIMER_PROF is armed: SIG_DFL
    terminates on SIGPROF.  ringprof cannot stop a signal already on its way,
    but it must disarm within a drain interval; the workload keeps running
    meanwhile with SIGPROF blocked in its thread, as a careful application would."""
    child = run_child('''
        import signal
        prof = ringprof.Profile(interval=0.001, timer_kind="itimer", drain_interval=0.02)
        prof.enable()
        burn(0.05)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPROF})
        signal.signal(signal.SIGPROF, signal.SIG_IGN)   # IGN discards what is pending
        signal.signal(signal.SIGPROF, signal.SIG_DFL)
        t0 = time.monotonic()
        while prof.enabled and time.monotonic() - t0 < 5:
            time.sleep(0.01)
        signal.signal(signal.SIGPROF, signal.SIG_IGN)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGPROF})
        burn(0.3)
        result(enabled=prof.enabled, native=native.is_enabled())
    ''')
    assert child.result == {"enabled": False, "native": False}, child.describe()


def test_cprofile_at_the_same_time() -> None:
    child = run_child('''
        import cProfile, pstats, io
        def hot_ring_and_cprofile():
            return burn(0.3)
        cp = cProfile.Profile()
        prof = ringprof.Profile(interval=0.004)
        cp.enable()
        prof.enable()
        hot_ring_and_cprofile()
        prof.disable()
        cp.disable()
        s = io.StringIO()
        pstats.Stats(cp, stream=s).print_stats("hot_ring_and_cprofile")
        # and the other nesting order, with wall mode
        prof2 = ringprof.Profile(interval=0.0005, mode="wall")
        prof2.enable()
        cp2 = cProfile.Profile(); cp2.enable()
        hot_ring_and_cprofile()
        cp2.disable(); prof2.disable()
        result(cp_seen="hot_ring_and_cprofile" in s.getvalue(),
               ring=any(f.name == "hot_ring_and_cprofile" for f in prof.data.frames),
               ring2=any(f.name == "hot_ring_and_cprofile" for f in prof2.data.frames),
               n=prof.data.total_weight(), n2=prof2.data.total_weight())  # weights, not records
    ''')
    r = child.result
    assert r["cp_seen"] and r["ring"] and r["ring2"], child.describe()
    assert r["n"] >= 25 and r["n2"] >= 100, child.describe()


def test_faulthandler_watchdog_and_dumps_while_sampling(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "dumps.txt"
    child = run_child(f'''
        import faulthandler, signal
        f = open({str(out)!r}, "w")
        faulthandler.enable(file=f, all_threads=True)
        faulthandler.register(signal.SIGUSR1, file=f, all_threads=True)
        prof = ringprof.Profile(interval=0.0001, mode="wall")
        prof.enable()
        faulthandler.dump_traceback_later(0.05, repeat=True, file=f)
        stop = False
        def worker():
            while not stop:
                spin(0.002)
                time.sleep(0.001)
        ts = [threading.Thread(target=worker) for _ in range(3)]
        for t in ts: t.start()
        def busy_with_faulthandler():
            for _ in range(20):
                os.kill(os.getpid(), signal.SIGUSR1)
                spin(0.02)
        busy_with_faulthandler()
        faulthandler.cancel_dump_traceback_later()
        stop = True
        for t in ts: t.join()
        prof.disable()
        f.flush()
        result(samples=prof.data.total_weight())  # weights, not records
    ''')
    text = out.read_text()
    assert text.count("busy_with_faulthandler") >= 10, child.describe()
    assert child.result["samples"] > 1000, child.describe()


def test_yappi_at_the_same_time() -> None:
    child = run_child('''
        import yappi
        def hot_for_both():
            return burn(0.3)
        yappi.set_clock_type("cpu")
        yappi.start()
        prof = ringprof.Profile(interval=0.004)
        prof.enable()
        workers = [threading.Thread(target=hot_for_both) for _ in range(2)]
        for t in workers: t.start()
        hot_for_both()
        for t in workers: t.join()
        prof.disable()
        yappi.stop()
        stats = yappi.get_func_stats()
        seen = any(s.name == "hot_for_both" for s in stats)
        with ringprof.Profile(interval=0.0005, mode="wall") as prof2:
            yappi.start()
            hot_for_both()
            yappi.stop()
        result(yappi=seen, ring=any(f.name == "hot_for_both" for f in prof.data.frames),
               ring2=any(f.name == "hot_for_both" for f in prof2.data.frames))
    ''')
    assert child.result == {"yappi": True, "ring": True, "ring2": True}, child.describe()
