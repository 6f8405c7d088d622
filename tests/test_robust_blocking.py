"""Never crash the host: blocking calls under wall-mode sampling at a high rate.

Wall mode runs on the tick thread: a thread blocked with the GIL released is
never signalled, its stack is read from outside.  Where that read is not
available (no process_vm_readv: RINGPROF_WALL_TICK=0 simulates it) per-thread
CLOCK_MONOTONIC timers interrupt blocked threads thousands of times a second;
the handler is installed with SA_RESTART and CPython retries EINTR (PEP 475).
Either way every call must return its normal result, take its normal time, and
Python code must never see InterruptedError.
"""

from __future__ import annotations

import sys

import pytest
from robust_helpers import run_child

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")


@pytest.mark.parametrize("wall_timers", ["tick", "per-thread"])
def test_blocking_calls_are_not_interrupted(wall_timers: str) -> None:
    child = run_child('''
        import queue, select, socket, subprocess, selectors
        interrupted = []
        checks = {}
        def check(name, ok, detail=""):
            checks[name] = True if ok else repr(detail)
        def later(delay, fn, *args):
            threading.Timer(delay, fn, args).start()
        prof = ringprof.Profile(interval=0.0001, mode="wall")
        started = time.monotonic()
        prof.enable()
        try:
            for rnd in range(2):
                t0 = time.monotonic(); time.sleep(0.15); dt = time.monotonic() - t0
                check(f"sleep{rnd}", 0.149 <= dt < 0.5, dt)

                a, b = socket.socketpair()
                t0 = time.monotonic()  # before the sender's timer starts: a late t0 would shorten dt
                later(0.1, b.sendall, b"x" * 10)
                got = a.recv(10); dt = time.monotonic() - t0
                check(f"recv{rnd}", got == b"x" * 10 and dt >= 0.09, (got, dt))
                a.settimeout(0.1)
                t0 = time.monotonic()
                try:
                    a.recv(1); check(f"recv_timeout{rnd}", False)
                except socket.timeout:
                    check(f"recv_timeout{rnd}", 0.099 <= time.monotonic() - t0 < 0.5)
                a.close(); b.close()

                r, w = os.pipe()
                t0 = time.monotonic(); ready = select.select([r], [], [], 0.12); dt = time.monotonic() - t0
                check(f"select_timeout{rnd}", ready == ([], [], []) and 0.119 <= dt < 0.5, dt)
                later(0.05, os.write, w, b"y")
                ready = select.select([r], [], [], 5)
                check(f"select_ready{rnd}", ready[0] == [r] and os.read(r, 1) == b"y")
                p = select.poll(); p.register(r, select.POLLIN)
                t0 = time.monotonic(); ev = p.poll(120); dt = time.monotonic() - t0
                check(f"poll{rnd}", ev == [] and dt >= 0.119, dt)
                sel = selectors.DefaultSelector(); sel.register(r, selectors.EVENT_READ)
                t0 = time.monotonic(); ev = sel.select(0.12); dt = time.monotonic() - t0
                check(f"epoll{rnd}", ev == [] and dt >= 0.119, dt)
                sel.close()
                later(0.05, os.write, w, b"z")
                check(f"read{rnd}", os.read(r, 1) == b"z")
                os.close(r); os.close(w)

                proc = subprocess.Popen(["sleep", "0.15"])
                t0 = time.monotonic(); rc = proc.wait(); dt = time.monotonic() - t0
                check(f"wait{rnd}", rc == 0 and dt >= 0.1, (rc, dt))
                proc = subprocess.Popen(["sleep", "5"])
                try:
                    proc.wait(timeout=0.1); check(f"wait_timeout{rnd}", False)
                except subprocess.TimeoutExpired:
                    check(f"wait_timeout{rnd}", True)
                proc.kill(); proc.wait()
                out = subprocess.run(["sh", "-c", "sleep 0.05; echo hi"], capture_output=True, text=True)
                check(f"run{rnd}", out.stdout == "hi\\n" and out.returncode == 0)

                lock = threading.Lock(); lock.acquire()
                t0 = time.monotonic(); got = lock.acquire(timeout=0.12); dt = time.monotonic() - t0
                check(f"lock_timeout{rnd}", got is False and 0.119 <= dt < 0.5, dt)
                later(0.05, lock.release)
                check(f"lock_acquire{rnd}", lock.acquire(timeout=5))
                cond = threading.Condition()
                with cond:
                    t0 = time.monotonic(); notified = cond.wait(0.1); dt = time.monotonic() - t0
                check(f"cond{rnd}", notified is False and dt >= 0.099, dt)
                ev = threading.Event()
                later(0.05, ev.set)
                check(f"event{rnd}", ev.wait(5))

                q = queue.Queue()
                t0 = time.monotonic()
                try:
                    q.get(timeout=0.12); check(f"queue_timeout{rnd}", False)
                except queue.Empty:
                    check(f"queue_timeout{rnd}", 0.119 <= time.monotonic() - t0 < 0.5)
                later(0.05, q.put, 42)
                check(f"queue_get{rnd}", q.get(timeout=5) == 42)

                t0 = time.monotonic()  # before the thread starts sleeping, as for recv above
                t = threading.Thread(target=time.sleep, args=(0.1,)); t.start()
                t.join(); check(f"join{rnd}", time.monotonic() - t0 >= 0.09)
        except InterruptedError as exc:
            interrupted.append(repr(exc))
        n = len(prof.data)
        prof.disable()
        elapsed = time.monotonic() - started
        me = threading.main_thread().native_id
        main_weight = sum(w for t, w in zip(prof.data.thread, prof.data.weight) if t == me)
        result(checks=checks, interrupted=interrupted, samples=n, timer=prof.data.meta["timer"],
               main_intervals=main_weight, elapsed_intervals=elapsed / 0.0001)
    ''', timeout=120, env={"RINGPROF_WALL_TICK": "1" if wall_timers == "tick" else "0"})
    r = child.result
    assert r["interrupted"] == [], child.describe()
    failed = {k: v for k, v in r["checks"].items() if v is not True}
    assert not failed, f"blocking calls misbehaved under sampling: {failed}\n{child.describe()}"
    if wall_timers == "per-thread":
        assert r["timer"] == "thread-monotonic", child.describe()
        assert r["samples"] > 1000, child.describe()   # the main thread really was being signalled
    else:
        assert r["timer"] == "thread-tick", child.describe()
        # Its blocked time was recorded without signals: the weights cover the run.
        assert r["main_intervals"] >= 0.5 * r["elapsed_intervals"], child.describe()


def test_blocking_in_many_threads_no_eintr() -> None:
    """Eight threads sit in blocking calls under a 0.1 ms wall timer each."""
    child = run_child('''
        import socket, queue
        prof = ringprof.Profile(interval=0.0001, mode="wall")
        prof.enable()
        errors = []
        outcome = []
        def sock_worker():
            a, b = socket.socketpair()
            try:
                for i in range(30):
                    threading.Timer(0.005, b.sendall, (b"%03d" % i,)).start()
                    data = b""
                    while len(data) < 3:
                        data += a.recv(3 - len(data))
                    outcome.append(data == b"%03d" % i)
            except Exception as exc:
                errors.append(repr(exc))
        def queue_worker():
            q = queue.Queue()
            try:
                for i in range(30):
                    threading.Timer(0.005, q.put, (i,)).start()
                    outcome.append(q.get(timeout=5) == i)
            except Exception as exc:
                errors.append(repr(exc))
        threads = [threading.Thread(target=sock_worker if i % 2 else queue_worker) for i in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        prof.disable()
        result(errors=errors, ok=all(outcome), count=len(outcome), tids=len(set(prof.data.thread.tolist())))
    ''', timeout=120)
    r = child.result
    assert r["errors"] == [] and r["ok"] and r["count"] == 240, child.describe()
    assert r["tids"] >= 8, child.describe()
