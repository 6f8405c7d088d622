"""Never crash the host: fork() while sampling.

Kernel facts (INTERNALS §6.1): a fork child inherits no timer and only the
forking thread; ringprof's pthread_atfork child handler forgets every slot and
gives SIGPROF back, and the Python at-fork hook forgets the Profile (or, with
``follow_fork=True``, starts the child's own).
"""

from __future__ import annotations

import os
import sys

import pytest
from robust_helpers import run_child

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")


def test_os_fork_child_is_clean_and_parent_keeps_sampling() -> None:
    child = run_child('''
        import signal
        prof = ringprof.Profile(interval=0.004)
        prof.enable()
        burn(0.15)
        before = prof.data.total_weight()  # weights, not records: robust to a loaded machine
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                if rpp.enabled_profiles(): code = 10
                elif native.is_enabled(): code = 11
                elif signal.getsignal(signal.SIGPROF) is not signal.SIG_DFL: code = 12
                elif native.stats()["threads"] != 0: code = 13
                burn(0.3)          # a stray timer or pending SIGPROF would kill us here
            except BaseException:
                code = 99
            os._exit(code)
        at_fork = prof.data.total_weight()
        burn(0.4)
        _, status = os.waitpid(pid, 0)
        after = prof.data.total_weight()
        prof.disable()
        result(before=before, at_fork=at_fork, after=after, status=status, timer=prof.data.meta["timer"])
    ''', timeout=60)
    r = child.result
    assert r["status"] == 0, f"child exit status {r['status']:#x} (10: _active set, 11: native enabled, " \
        f"12: SIGPROF not SIG_DFL, 13: slots armed, 99: exception)\n{child.describe()}"
    assert r["before"] > 0, child.describe()
    # 0.4 s of parent CPU at 250 Hz is ~100 samples; ask for a quarter of it.
    assert r["after"] - r["at_fork"] >= 25, f"parent stopped sampling after fork\n{child.describe()}"


def test_fork_from_a_worker_thread() -> None:
    child = run_child('''
        prof = ringprof.Profile(interval=0.0005, mode="wall")
        prof.enable()
        statuses = []
        def forker():
            for _ in range(5):
                pid = os.fork()
                if pid == 0:
                    os._exit(0 if not rpp.enabled_profiles() and not native.is_enabled() else 3)
                statuses.append(os.waitpid(pid, 0)[1])
        t = threading.Thread(target=forker)
        t.start()
        spin(0.3)
        t.join()
        n = prof.data.total_weight()  # weights, not records: robust to a loaded machine
        prof.disable()
        result(statuses=statuses, samples=n)
    ''')
    assert child.result["statuses"] == [0] * 5, child.describe()
    assert child.result["samples"] > 100, child.describe()


def test_multiprocessing_fork_pool() -> None:
    child = run_child('''
        import multiprocessing as mp

        def work(i):
            burn(0.02)
            return (i, os.getpid(), not rpp.enabled_profiles(), native.is_enabled())

        if __name__ == "__main__":
            prof = ringprof.Profile(interval=0.004)
            prof.enable()
            with mp.get_context("fork").Pool(4) as pool:
                out = pool.map(work, range(24))
            burn(0.1)
            prof.disable()
            result(ids=sorted(r[0] for r in out), pids=len({r[1] for r in out}),
                   clean=all(r[2] and not r[3] for r in out), samples=len(prof.data))
    ''', timeout=90)
    r = child.result
    assert r["ids"] == list(range(24)), child.describe()
    assert r["clean"], f"a pool worker inherited an active sampler\n{child.describe()}"
    assert r["samples"] > 0, child.describe()


@pytest.mark.parametrize("follow_fork", [False, True])
def test_prefork_eight_workers(follow_fork: bool) -> None:
    """gunicorn-style: the master forks 8 workers in a loop; each burns CPU and exits."""
    child = run_child(f'''
        prof = ringprof.Profile(interval=0.004, follow_fork={follow_fork})
        prof.enable()
        burn(0.05)
        pids = []
        for i in range(8):
            pid = os.fork()
            if pid == 0:
                try:
                    mine = rpp.child_profile()
                    if {follow_fork}:
                        ok = (mine is not None and mine is not prof and rpp.enabled_profiles() == [mine]
                              and native.is_enabled())
                    else:
                        ok = mine is None and not rpp.enabled_profiles() and not native.is_enabled()
                    burn(0.1)
                    if {follow_fork}:
                        mine.disable()
                        ok = ok and len(mine.data) > 0 and not native.is_enabled()
                    sys.stdout.flush()
                except BaseException as exc:
                    sys.stderr.write(f"worker {{i}}: {{exc!r}}\\n")
                    os._exit(98)
                os._exit(10 + i if ok else 97)
            pids.append(pid)
        burn(0.2)
        codes = [os.waitpid(pid, 0)[1] >> 8 for pid in pids]
        n = len(prof.data)
        prof.disable()
        result(codes=codes, samples=n)
    ''', timeout=90)
    assert child.result["codes"] == list(range(10, 18)), child.describe()
    assert child.result["samples"] > 0, child.describe()


def test_follow_fork_child_gets_its_own_samples() -> None:
    child = run_child('''
        prof = ringprof.Profile(interval=0.004, follow_fork=True)
        prof.enable()
        burn(0.1)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            mine = rpp.child_profile()
            info = {"has": mine is not None, "distinct": mine is not prof,
                    "active": rpp.enabled_profiles() == [mine], "enabled": native.is_enabled()}
            def child_hot():
                return burn(0.4)
            child_hot()
            info["pid_meta"] = mine.data.meta["pid"]
            mine.disable()
            info["samples"] = mine.data.total_weight()
            info["hot"] = any(f.name == "child_hot" for f in mine.data.frames)
            info["parent_samples_in_child"] = len(prof.data)
            os.write(w, json.dumps(info).encode())
            os.close(w)
            sys.exit(0)      # a normal exit: atexit runs with the child's profile already off
        os.close(w)
        raw = b""
        while chunk := os.read(r, 65536):
            raw += chunk
        _, status = os.waitpid(pid, 0)
        n_parent = len(prof.data)
        prof.disable()
        result(child=json.loads(raw or b"{}"), status=status, pid=pid, parent=n_parent)
    ''', timeout=60)
    r = child.result
    c = r["child"]
    assert r["status"] == 0, child.describe()
    assert c["has"] and c["distinct"] and c["active"] and c["enabled"], child.describe()
    assert c["pid_meta"] == r["pid"], child.describe()
    assert c["samples"] >= 25 and c["hot"], child.describe()
    assert r["parent"] > 0, child.describe()


@pytest.mark.skipif(bool(os.environ.get("RINGPROF_SANITIZED")),
                    reason="under ASan a fork while another thread creates a thread can deadlock the child "
                           "in ASan's own thread registry (sanitizer artifact, not ringprof state)")
def test_fork_while_another_thread_toggles_the_profiler() -> None:
    """_control (and a Profile's drain lock) held at fork() by a thread that does
    not exist in the child must not deadlock the child's next enable()."""
    child = run_child('''
        import faulthandler
        stop = False
        def toggler():
            p = ringprof.Profile(interval=0.001, mode="wall")
            while not stop:
                p.enable()
                p.disable()
        # Warm up first: a fork racing the *first* `import ringprof.resolve` inside
        # enable() can leave CPython's module import lock held in the child (a
        # CPython-level lazy-import hazard, not ringprof state).
        q0 = ringprof.Profile(interval=0.001, mode="wall"); q0.enable(); q0.disable()
        t = threading.Thread(target=toggler, daemon=True)
        t.start()
        bad = []
        for i in range(60):
            pid = os.fork()
            if pid == 0:
                faulthandler.dump_traceback_later(10, exit=True)
                q = ringprof.Profile(interval=0.001, mode="wall", follow_fork=True)
                q.enable()
                spin(0.01)
                q.disable()
                os._exit(0)
            status = os.waitpid(pid, 0)[1]
            if status:
                bad.append((i, status))
        stop = True
        t.join()
        result(bad=bad)
    ''', timeout=120)
    assert child.result["bad"] == [], child.describe()
