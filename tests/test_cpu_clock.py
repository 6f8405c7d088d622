"""cpu mode's clock: where a sample lands must not depend on anything but
where the thread spends its CPU time.

* Periodic work (rounds of exactly 20 ms of CPU) is not aliased: POSIX
  CPU-time timers expire only at the kernel tick, so with them every sample of
  such a loop sat at the same few phases of the round (97/3/0 for 45/35/20).
  Per-thread perf task-clock events fire at an arbitrary instruction, with a
  random period.
* A thread that competes for a CPU is sampled where it burns CPU, not where the
  kernel preempted it.  A design that sends a signal from another thread
  (tested while ringprof was being built) gets it delivered where the thread
  was preempted, and preemption points cluster at system-call exits: half the
  weight of the loop below landed on its ``time.thread_time()`` call.
* Perf events are used wherever the kernel allows them; a fork child does not
  keep the parent's events.
"""

from __future__ import annotations

import ctypes
import os
import sys

import pytest
from robust_helpers import run_child

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")


def perf_task_clock_allowed() -> bool:
    """Can this process open a task-clock perf event on itself?"""
    if os.environ.get("RINGPROF_PERF") == "0":
        return False

    class Attr(ctypes.Structure):
        _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
                    ("sample_period", ctypes.c_uint64), ("rest", ctypes.c_uint8 * 104)]

    attr = Attr(type=1, size=ctypes.sizeof(Attr), config=1, sample_period=10_000_000)  # SOFTWARE, TASK_CLOCK
    libc = ctypes.CDLL(None, use_errno=True)
    nr_perf_event_open = {"x86_64": 298, "aarch64": 241}.get(os.uname().machine)
    if nr_perf_event_open is None:
        return False
    fd = libc.syscall(nr_perf_event_open, ctypes.byref(attr), 0, -1, -1, 8)  # PERF_FLAG_FD_CLOEXEC
    if fd < 0:
        return False
    os.close(fd)
    return True


PERF = perf_task_clock_allowed()


def test_perf_events_are_used_where_the_kernel_allows_them() -> None:
    child = run_child('''
        with ringprof.Profile(interval=0.005) as prof:
            burn(0.1)
        result(timer=prof.data.meta["timer"])
    ''')
    assert child.result["timer"] == ("thread-perf" if PERF else "thread-cputime"), child.describe()
    child = run_child('''
        with ringprof.Profile(interval=0.005) as prof:
            burn(0.1)
        result(timer=prof.data.meta["timer"], weight=int(prof.data.weight.sum()))
    ''', env={"RINGPROF_PERF": "0"})
    assert child.result["timer"] == "thread-cputime", child.describe()
    assert child.result["weight"] >= 5, child.describe()


@pytest.mark.skipif(not PERF, reason="perf task-clock events are not allowed here (perf_event_paranoid or "
                                     "seccomp): POSIX CPU-time timers, which expire at the kernel tick, are used")
@pytest.mark.parametrize("interval,seconds,tolerance", [(0.004, 5.0, 5.0), (0.01, 6.0, 6.0), (0.02, 10.0, 8.0)])
def test_periodic_work_does_not_alias_with_the_interval(interval: float, seconds: float, tolerance: float) -> None:
    """Rounds of exactly 20 ms of CPU (an absolute CPU-time schedule) run
    three functions for 45/35/20 % of the round.  The tolerance is ~3.5
    standard deviations of the sampling noise of 500-1250 intervals, far below
    a phase-lock's error."""
    child = run_child(f'''
        def until(t):
            x = 0
            while time.thread_time() < t:
                x += 1
        def a(base): until(base + 0.009)
        def b(base): until(base + 0.016)
        def c(base): until(base + 0.020)
        prof = ringprof.Profile(interval={interval})
        prof.enable()
        base = time.thread_time()
        end = base + {seconds}
        while base < end:
            a(base); b(base); c(base)
            base += 0.020
        prof.disable()
        shares = {{e.name: e.total_pct for e in prof.top(50) if e.name in ("a", "b", "c")}}
        result(shares=shares, timer=prof.data.meta["timer"])
    ''', timeout=240)
    shares = child.result["shares"]
    total = sum(shares.values())
    got = {k: 100 * v / total for k, v in shares.items()}
    for name, want in (("a", 45), ("b", 35), ("c", 20)):
        assert abs(got.get(name, 0) - want) <= tolerance, f"{name}: {got} (want 45/35/20)\n{child.describe()}"


@pytest.mark.parametrize("perf", ["1", "0"])
def test_a_thread_competing_for_the_cpu_is_sampled_where_it_burns_cpu(perf: str) -> None:
    """Three busy processes compete with the profiled one for this machine's
    CPUs.  The loop spends >99 % of its CPU in hot() and calls
    time.thread_time() (a system call) once per millisecond."""
    child = run_child('''
        import subprocess
        rivals = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(3)]
        def hot(n):
            acc = 0
            for i in range(n):
                acc += ((i * i + 3 * i) % 7 ^ (i >> 3)) | (i & 15)
            return acc
        def run(seconds):
            deadline = time.thread_time() + seconds
            while time.thread_time() < deadline:
                hot(4000)
        try:
            with ringprof.Profile(interval=0.004) as prof:
                run(0.8)
        finally:
            for r in rivals:
                r.kill()
        d = prof.data
        leaf = {}
        for st, w in zip(d.stack.tolist(), d.weight.tolist()):
            name = d.frames[d.stacks[st][-1]].name
            leaf[name] = leaf.get(name, 0) + w
        result(leaf=leaf, total=int(d.weight.sum()), timer=d.meta["timer"])
    ''', env={"RINGPROF_PERF": perf}, timeout=120)
    r = child.result
    assert r["total"] * 0.004 >= 0.5 * 0.8, f"CPU time was lost: {r}\n{child.describe()}"
    assert r["leaf"].get("hot", 0) >= 0.85 * r["total"], f"samples not where the CPU went: {r}\n{child.describe()}"


@pytest.mark.skipif(not PERF, reason="perf task-clock events are not allowed here")
def test_a_fork_child_does_not_keep_the_parents_perf_events() -> None:
    child = run_child('''
        def perf_fds():
            out = 0
            for fd in os.listdir("/proc/self/fd"):
                try:
                    out += "perf_event" in os.readlink(f"/proc/self/fd/{fd}")
                except OSError:
                    pass
            return out
        prof = ringprof.Profile(interval=0.005)
        prof.enable()
        burn(0.05)
        in_parent = perf_fds()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(w, str(perf_fds()).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        in_child = int(os.read(r, 16))
        burn(0.05)
        prof.disable()
        result(in_parent=in_parent, in_child=in_child, after=perf_fds())
    ''')
    r = child.result
    assert r["in_parent"] >= 1, child.describe()
    assert r["in_child"] == 0, f"the fork child kept the parent's perf events: {r}\n{child.describe()}"
    assert r["after"] == 0, f"disable() left perf events open: {r}\n{child.describe()}"
