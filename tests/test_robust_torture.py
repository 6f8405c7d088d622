"""Long robustness runs: the issue's full-size numbers.  Deselected by default.

Run them with:

    python -m pytest -m torture -rP tests/test_robust_torture.py

(-rP prints each run's measurements: "[robust] ..." lines.)  On the reference
machine (2 noisy cores) the whole file takes about 3-4 minutes per Python
version: 30 s of thread churn in each of wall and CPU mode, ~1,000,000
short-lived functions (~30-60 s), 100,000 start/stop cycles, a long mixed
storm.  The default test run has a short version of each (test_robust_*.py).
"""

from __future__ import annotations

import sys

import pytest
from robust_helpers import code_churn_code, report, run_child, thread_churn_code

pytestmark = [
    pytest.mark.torture,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only"),
]


@pytest.mark.parametrize("mode,interval", [("wall", 0.00005), ("cpu", 0.004)])
def test_thread_churn_30s(mode: str, interval: float) -> None:
    child = run_child(thread_churn_code(mode, interval, 30.0), timeout=240)
    r = child.result
    report(f"torture thread churn {mode}", seconds=30, created=r["created"], samples=r["samples"], tids=r["tids"])
    assert r["created"] > 3000, child.describe()
    assert r["samples"] > 0 and r["threads_after"] == 0 and r["dfl"], child.describe()
    assert r["errors"] == [], child.describe()


def test_code_churn_1m() -> None:
    child = run_child(code_churn_code(1_000_000), timeout=900)
    r = child.result
    report("torture code churn", count=r["count"], seconds=round(r["seconds"], 1), samples=r["samples"],
           generated_frames=r["gen_frames"], unknown=r["unknown"])
    assert r["nproblems"] == 0, f"{r['problems']}\n{child.describe()}"
    assert r["gen_frames"] > 500, child.describe()
    assert r["parked"] == 0, child.describe()


def test_start_stop_100k() -> None:
    child = run_child('''
        prof = ringprof.Profile(interval=0.0001, mode="wall")
        t0 = time.perf_counter()
        for i in range(100_000):
            prof.enable()
            prof.disable()
        elapsed = time.perf_counter() - t0
        spin(0.3)
        result(seconds=elapsed, threads=native.stats()["threads"], enabled=native.is_enabled())
    ''', timeout=600)
    report("torture start/stop", cycles=100_000, seconds=round(child.result["seconds"], 1))
    assert child.result["threads"] == 0 and not child.result["enabled"], child.describe()


def test_mixed_storm_60s() -> None:
    """Everything at once for a minute: churned threads, generators, exceptions,
    deep recursion, code churn, blocking calls and fork, at 50 us wall sampling."""
    child = run_child('''
        import random, socket, queue
        sys.setrecursionlimit(20000)
        prof = ringprof.Profile(interval=0.00005, mode="wall")
        prof.enable()
        deadline = time.monotonic() + 60
        errors = []
        def guard(fn):
            def run():
                try:
                    while time.monotonic() < deadline:
                        fn()
                except Exception as exc:
                    errors.append(repr(exc))
            return run
        def gens():
            def g(n):
                for i in range(n):
                    yield i
            sum(sum(g(50)) for _ in range(50))
        def excs():
            def t(n):
                if n == 0:
                    raise KeyError(n)
                return t(n - 1)
            try:
                t(300)
            except KeyError:
                pass
        def deep():
            def d(n):
                return 0 if n == 0 else d(n - 1) + 1
            d(15000)
        def churn():
            for i in range(200):
                exec(compile(f"def f(): return {i}\\nf()", f"<storm-{i}>", "exec"), {})
        def blocking():
            a, b = socket.socketpair()
            threading.Timer(0.001, b.send, (b"x",)).start()
            assert a.recv(1) == b"x"
            a.close(); b.close()
            q = queue.Queue(); threading.Timer(0.001, q.put, (1,)).start(); q.get(timeout=5)
        def threads():
            ts = [threading.Thread(target=gens) for _ in range(8)]
            for t in ts: t.start()
            for t in ts: t.join()
        def forks():
            pid = os.fork()
            if pid == 0:
                os._exit(0 if not native.is_enabled() else 3)
            assert os.waitpid(pid, 0)[1] == 0
            time.sleep(0.05)
        workers = [threading.Thread(target=guard(fn)) for fn in (gens, excs, deep, churn, blocking, threads, forks)]
        for w in workers: w.start()
        for w in workers: w.join()
        prof.disable()
        result(errors=errors[:5], samples=len(prof.data), tids=len(set(prof.data.thread.tolist())))
    ''', timeout=300)
    r = child.result
    report("torture mixed storm", seconds=60, samples=r["samples"], tids=r["tids"])
    assert r["errors"] == [] and r["samples"] > 10_000, child.describe()
