"""Never crash the host: how sampling signals are delivered, and how they stop.

* disable() is synchronous: it returns only once no handler is running, however
  slow that handler is (a test hook makes every handler spin).
* fork() gives the forking thread back the signal mask it had.
* A thread that reuses the kernel tid of a thread that exited before the sweep
  noticed is still armed (slots are matched by tid and thread-state id).
"""

from __future__ import annotations

import os
import sys
from textwrap import dedent

import pytest
from robust_helpers import run_child

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")

SIGNAL_OF_RINGPROF = '''
import signal
def ringprof_signals():
    """The signals ringprof may deliver samples with."""
    sigs = {signal.SIGPROF}
    if hasattr(native, "signal_number"):
        sigs.add(native.signal_number())
    return sigs
'''


def test_disable_waits_for_a_handler_slower_than_any_deadline() -> None:
    child = run_child(SIGNAL_OF_RINGPROF + dedent('''
        import hashlib
        data = b"x" * (32 << 20)
        stop = False
        def hasher():      # burns CPU with the GIL released: handlers run while main runs too
            while not stop:
                hashlib.sha256(data).digest()
        prof = ringprof.Profile(interval=0.002)
        prof.enable()
        t = threading.Thread(target=hasher, daemon=True)
        t.start()
        native._test_handler_delay(6_000_000_000)     # 6 s: longer than the old 1-2 s give-up
        deadline = time.monotonic() + 20
        while native.active_handlers() == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        caught = native.active_handlers()
        native._test_handler_delay(0)                  # the one already spinning keeps spinning
        native.stop()                                  # the native contract: synchronous
        after = native.active_handlers()
        prof.disable()
        stop = True
        t.join()
        # Sampling again (with a larger ring) must not disturb anything either.
        prof2 = ringprof.Profile(interval=0.002, ring_bytes=1 << 20)
        prof2.enable()
        burn(0.1)
        prof2.disable()
        result(caught=caught, after=after, after2=native.active_handlers())
    '''), timeout=90)
    r = child.result
    assert r["caught"] >= 1, f"no handler was caught running\n{child.describe()}"
    assert r["after"] == 0 and r["after2"] == 0, f"disable() returned with a handler running\n{child.describe()}"


@pytest.mark.parametrize("blocked", [True, False])
def test_fork_restores_the_threads_own_signal_mask(blocked: bool) -> None:
    child = run_child(SIGNAL_OF_RINGPROF + dedent(f'''
        prof = ringprof.Profile(interval=0.004)
        prof.enable()
        sigs = ringprof_signals()
        if {blocked!r}:
            signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
        burn(0.05)
        pid = os.fork()
        if pid == 0:
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
            os._exit(0 if all((s in mask) == {blocked!r} for s in sigs) else 3)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        _, status = os.waitpid(pid, 0)
        parent_ok = all((s in mask) == {blocked!r} for s in sigs)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, sigs)
        prof.disable()
        result(parent_ok=parent_ok, child_status=status)
    '''), timeout=60)
    r = child.result
    assert r["parent_ok"], f"fork changed the parent thread's mask\n{child.describe()}"
    assert r["child_status"] == 0, f"fork changed the child thread's mask\n{child.describe()}"


@pytest.mark.skipif(not os.access("/proc/sys/kernel/ns_last_pid", os.W_OK),
                    reason="forcing a tid needs a writable /proc/sys/kernel/ns_last_pid (root)")
def test_thread_reusing_a_dead_threads_tid_before_the_sweep_is_armed() -> None:
    child = run_child('''
        # No sweep during the test (drain every 10 s): only the thread-start hook arms threads.
        prof = ringprof.Profile(interval=0.002, drain_interval=10)
        prof.enable()
        def quick():
            pass
        def worker(out):
            out.append(threading.get_native_id())
            burn(0.4)
        reused = None
        for attempt in range(50):
            a = threading.Thread(target=quick)
            a.start()
            a.join()
            dead_tid = a.native_id
            with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                f.write(str(dead_tid - 1))
            got = []
            b = threading.Thread(target=worker, args=(got,))
            b.start()
            b.join()
            if got[0] == dead_tid:
                reused = dead_tid
                break
        prof.disable()
        tids = prof.data.thread.tolist()
        weights = prof.data.weight.tolist()
        mine = sum(w for t, w in zip(tids, weights) if t == reused)
        result(reused=reused, attempts=attempt + 1, mine=mine, total=sum(weights))
    ''', timeout=120)
    r = child.result
    assert r["reused"] is not None, f"could not make a thread reuse a tid\n{child.describe()}"
    # 0.4 s of CPU at 500 Hz is ~200 intervals; a thread that is never armed has 0.
    assert r["mine"] >= 40, f"the thread that reused tid {r['reused']} was not sampled\n{child.describe()}"


def test_new_threads_are_armed_without_a_profile_hook_on_312_and_later() -> None:
    """On 3.12+ threading.setprofile is built on sys.monitoring and toggles
    instrumentation interpreter-wide for every new thread: ringprof does not
    install it there; it wraps Thread._bootstrap_inner.  A thread that lives
    far less than a drain interval (no sweep runs) is still sampled, on every
    version, and the program's own profile hook is left alone."""
    child = run_child('''
        prof = ringprof.Profile(interval=0.002, drain_interval=10)
        prof.enable()
        hook = threading.getprofile()
        got = []
        t = threading.Thread(target=lambda: got.append((threading.get_native_id(), burn(0.3))))
        t.start()
        t.join()
        prof.disable()
        after = threading.Thread(target=lambda: got.append(sys.getprofile()))
        after.start()
        after.join()
        tid = got[0][0]
        mine = int(prof.data.weight[prof.data.thread == tid].sum())
        result(hook=repr(hook), mine=mine, version=list(sys.version_info[:2]), after=repr(got[1]))
    ''', timeout=60)
    r = child.result
    if tuple(r["version"]) >= (3, 12):
        assert r["hook"] == "None", f"a profile hook is installed on 3.12+: {r['hook']}\n{child.describe()}"
    assert r["after"] == "None", f"a new thread got a profile function after disable(): {r}\n{child.describe()}"
    # 0.3 s of CPU at 500 Hz is ~150 intervals.
    assert r["mine"] >= 40, f"a short-lived thread was not sampled: {r}\n{child.describe()}"
