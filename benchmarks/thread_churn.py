"""Cost of arming new threads as they start (issue 11, item 12).

    python -m benchmarks.thread_churn [-n 5] [--seconds 2]

A thread-per-request program: the main thread runs a call-heavy loop for
``seconds`` of CPU while a second thread starts and joins short threads as
fast as it can.  Each configuration runs in a fresh interpreter (the hook and
sys.monitoring state are interpreter-wide); configurations rotate every
repetition; medians are reported:

* ``off``: no profiler;
* ``shipped``: ringprof cpu 100 Hz as shipped (3.12+: new threads are armed
  by a wrapper around ``Thread._bootstrap_inner``; 3.11: ``threading.setprofile``);
* ``setprofile``: ringprof cpu 100 Hz arming new threads through
  ``threading.setprofile`` on every version (on 3.12+ that is built on
  sys.monitoring and turns legacy profiling on and off interpreter-wide for
  each new thread: what ringprof did before).

Reported: the main thread's work rate (rounds per CPU second: instrumentation
slows it) and the churn rate (threads per wall second).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CHILD = r'''
import sys, threading, time, importlib
import ringprof
sampler = importlib.import_module("ringprof.sampler")
mode, seconds = sys.argv[1], float(sys.argv[2])
if mode == "setprofile":
    sampler._ThreadStartHook.WRAP_BOOTSTRAP = False
def small(i):
    return i + 1
def work(seconds):
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        for i in range(1000):
            small(i)
        n += 1
    return n
stop = False
churned = [0]
def churn():
    while not stop:
        t = threading.Thread(target=small, args=(1,))
        t.start()
        t.join()
        churned[0] += 1
prof = ringprof.Profile(interval=0.01) if mode != "off" else None
if prof:
    prof.enable()
ct = threading.Thread(target=churn)
ct.start()
w0 = time.perf_counter()
n = work(seconds)
stop = True
ct.join()
w = time.perf_counter() - w0
if prof:
    prof.disable()
print(n / seconds, churned[0] / w)
'''


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.thread_churn")
    p.add_argument("-n", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0)
    args = p.parse_args(argv)
    modes = ["off", "shipped", "setprofile"]
    res: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    for rep in range(args.n):
        order = modes[rep % 3:] + modes[:rep % 3]
        for m in order:
            out = subprocess.run([sys.executable, "-c", CHILD, m, str(args.seconds)], capture_output=True, text=True,
                                 check=True).stdout.split()
            res[m].append((float(out[0]), float(out[1])))
    base = statistics.median(r[0] for r in res["off"])
    print(f"Python {sys.version.split()[0]}, {args.n} runs each, medians:")
    for m in modes:
        work = statistics.median(r[0] for r in res[m])
        churn = statistics.median(r[1] for r in res[m])
        print(f"  {m:10s} main thread {work:8.0f} rounds/CPU-s ({100 * (work / base - 1):+.1f} %), "
              f"churn {churn:6.0f} threads/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
