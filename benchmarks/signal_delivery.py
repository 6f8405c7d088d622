"""How sampling signals are delivered: what blocked threads cost, what a
signal costs, and whether periodic work aliases with the sampling interval.

    python -m benchmarks.signal_delivery [--quick] [--only io,idle,floor,switch,alias]

Sections (each measured in this process; the machine is noisy, so every
overhead is a median of interleaved pairs, as in harness.py):

* ``io``    -- the io_sleep workload (4 threads: file I/O, JSON, 4 ms sleeps)
  under wall mode at 1 kHz and cpu mode at 100 Hz: median CPU-time overhead of
  ABBA pairs (harness.compare).
* ``idle``  -- 100 threads blocked in ``Event.wait`` while the main thread
  sleeps: process CPU time over ``seconds`` with wall mode at 100 Hz vs. no
  profiler (ABBA pairs), as a percentage of one core.
* ``floor`` -- cpu mode at 1 kHz (so that per-signal costs stand out of the
  noise), one thread burning a fixed CPU time: the work each signal takes
  from it (total), the handler body (``handler_ns / samples``), and the rest
  (signal delivery and timer re-arming = the floor), in microseconds; plus
  the CPU of the other threads (the drain) as % of a core.  ``RINGPROF_PERF=0``
  measures cpu mode on POSIX CPU-time timers instead of perf events.
* ``switch`` -- what cpu mode costs a thread that blocks often and burns
  little: round trips over a socket pair with an echo process, so the thread
  sleeps and wakes twice per trip.  A perf task-clock event is switched out
  and in with its thread (a high-resolution timer cancelled and started);
  POSIX CPU-time timers are not.  Per arm (no profiler, cpu mode on perf
  events, cpu mode on POSIX timers, 100 Hz), the thread's CPU per round trip
  and its context switches (``getrusage(RUSAGE_THREAD)``); the cost per
  context switch is the median of per-rotation differences.
* ``alias`` -- rounds of exactly 20 ms CPU (absolute CPU-time schedule) run
  three functions 45/35/20; at each interval the measured shares and the
  largest error in points, with the binomial standard deviation of that many
  intervals for scale.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
from typing import Any

from . import harness, peers, workloads
from .walk_cost import burn  # loop for a given CPU time of this thread; returns the work done


def _pairs(run_base: Any, run_prof: Any, reps: int) -> list[tuple[float, float]]:
    out = []
    for i in range(reps):
        if i % 2 == 0:
            b = run_base()
            p = run_prof()
        else:
            p = run_prof()
            b = run_base()
        out.append((b, p))
    return out


def section_io(reps: int) -> list[dict[str, Any]]:
    wl = workloads.available()["io_sleep"]
    rows = harness.compare(wl, [lambda: peers.Ringprof("wall", 1000), lambda: peers.Ringprof("cpu", 100)], reps=reps)
    print(harness.format_table(rows))
    return [r.to_dict() for r in rows]


def _idle_run(profile: bool, seconds: float, threads: int) -> float:
    import ringprof

    ev = threading.Event()
    ts = [threading.Thread(target=ev.wait, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    prof = ringprof.Profile(interval=0.01, mode="wall") if profile else None
    gc.collect()
    if prof:
        prof.enable()
    c0 = time.process_time()
    time.sleep(seconds)
    c1 = time.process_time()
    if prof:
        prof.disable()
    ev.set()
    for t in ts:
        t.join()
    return c1 - c0


def section_idle(reps: int, seconds: float = 3.0, threads: int = 100) -> dict[str, Any]:
    pairs = _pairs(lambda: _idle_run(False, seconds, threads), lambda: _idle_run(True, seconds, threads), reps)
    extra_pct = [100.0 * (p - b) / seconds for b, p in pairs]
    q1, med, q3 = harness.quantiles(extra_pct)
    print(f"idle: {threads} blocked threads, wall 100 Hz, {seconds:g} s: +{med:.2f} % of one core "
          f"(IQR {q1:.2f}..{q3:.2f}, {reps} pairs)")
    return {"threads": threads, "seconds": seconds, "cpu_pct_median": med, "q1": q1, "q3": q3,
            "pairs": pairs}


def section_floor(reps: int, hz: float = 1000, seconds: float = 3.0) -> dict[str, Any]:
    """The burning thread's CPU time is fixed, and the handler (and the
    kernel's signal delivery) run on that thread's CPU time: what a signal
    costs is the *work* it takes away.  Per pair: lost = 1 - work_profiled /
    work_base; per signal = lost * seconds / signals.  That is independent of
    how busy the machine is (preemption costs wall time, not CPU time)."""
    import ringprof
    import ringprof._sampler as native

    def base() -> tuple[int, int, int, int]:
        gc.collect()
        return burn(seconds), 0, 0, 0

    def prof() -> tuple[int, int, int, int]:
        p = ringprof.Profile(interval=1.0 / hz)
        gc.collect()
        p.enable()
        s0 = native.stats()
        work = burn(seconds)
        s1 = native.stats()
        p.disable()
        samples = s1["samples"] - s0["samples"]  # one signal, one sample (per-thread timers)
        return work, samples, s1["handler_ns"] - s0["handler_ns"], samples

    pairs = _pairs(base, prof, reps)
    per_signal, body = [], []
    for b, p in pairs:
        lost = 1.0 - p[0] / b[0]
        per_signal.append(1e6 * lost * seconds / max(p[3], 1))
        body.append(p[2] / max(p[1], 1) / 1000)
    out: dict[str, Any] = {"hz": hz, "seconds": seconds, "per_signal_us_median": statistics.median(per_signal),
                           "per_signal_us_iqr": harness.quantiles(per_signal)[::2],
                           "body_us_median": statistics.median(body),
                           "signals_per_cpu_s": statistics.median(p[3] / seconds for _, p in pairs)}
    out["floor_us_median"] = out["per_signal_us_median"] - out["body_us_median"]
    # Other threads (the drain): process CPU minus the burning thread's.
    t = ringprof.Profile(interval=1.0 / hz)
    t.enable()
    c0 = time.process_time()
    th0 = time.thread_time()
    burn(seconds)
    other = (time.process_time() - c0) - (time.thread_time() - th0)
    t.disable()
    out["other_threads_cpu_pct"] = 100.0 * other / seconds
    q1, q3 = out["per_signal_us_iqr"]
    print(f"floor: cpu mode {hz:g} Hz: {out['per_signal_us_median']:.1f} us (IQR {q1:.1f}..{q3:.1f}) of the "
          f"sampled thread's CPU per signal = body {out['body_us_median']:.1f}"
          f" + delivery {out['floor_us_median']:.1f}; "
          f"{out['signals_per_cpu_s']:.0f} signals per CPU-s; drain thread "
          f"{out['other_threads_cpu_pct']:.2f} % of a core")
    return out


_ECHO = ("import socket, sys\ns = socket.socket(fileno=int(sys.argv[1]))\n"
         "while (m := s.recv(1)) not in (b'', b'q'):\n    s.send(m)\n")


def _switch_run(arm: str, trips: int) -> tuple[float, float]:
    """(thread CPU us, context switches) per round trip with an echo process."""
    import os
    import resource
    import socket
    import subprocess

    import ringprof
    from ringprof import _sampler as native

    mine, theirs = socket.socketpair()
    echo = subprocess.Popen([sys.executable, "-c", _ECHO, str(theirs.fileno())], pass_fds=[theirs.fileno()])
    theirs.close()
    try:
        mine.send(b"x")
        mine.recv(1)  # the echo process is up
        prof = None
        if arm != "off":
            os.environ["RINGPROF_PERF"] = "1" if arm == "perf" else "0"  # read at start
            prof = ringprof.Profile(mode="cpu", interval=0.01)
            prof.enable()
            del os.environ["RINGPROF_PERF"]
            if native.uses_perf() != (arm == "perf"):
                raise SystemExit(f"switch: the {arm} arm did not get its timer (perf events not allowed?)")
        r0 = resource.getrusage(resource.RUSAGE_THREAD)
        c0 = time.thread_time()
        for _ in range(trips):
            mine.send(b"x")
            mine.recv(1)
        cpu = time.thread_time() - c0
        r1 = resource.getrusage(resource.RUSAGE_THREAD)
        if prof is not None:
            prof.disable()
        switches = (r1.ru_nvcsw - r0.ru_nvcsw) + (r1.ru_nivcsw - r0.ru_nivcsw)
        return cpu / trips * 1e6, switches / trips
    finally:
        mine.send(b"q")
        mine.close()
        echo.wait(timeout=30)


def section_switch(reps: int, trips: int = 50_000) -> dict[str, Any]:
    arms = ("off", "perf", "posix")
    runs: dict[str, list[tuple[float, float]]] = {arm: [] for arm in arms}
    for i in range(reps):
        for arm in arms[i % 3:] + arms[:i % 3]:  # rotate the order
            runs[arm].append(_switch_run(arm, trips))
    out: dict[str, Any] = {"trips": trips, "reps": reps}
    for arm in arms:
        out[f"{arm}_cpu_us_per_trip"] = statistics.median(c for c, _ in runs[arm])
        out[f"{arm}_switches_per_trip"] = statistics.median(n for _, n in runs[arm])
    for arm in ("perf", "posix"):
        per_switch = [(c - b) / max(n, 1e-9) for (c, n), (b, _) in zip(runs[arm], runs["off"], strict=True)]
        out[f"{arm}_us_per_switch"] = statistics.median(per_switch)
        out[f"{arm}_us_per_switch_iqr"] = harness.quantiles(per_switch)[::2]
    print(f"switch: {trips} round trips, {reps} rotations: thread CPU per trip off "
          f"{out['off_cpu_us_per_trip']:.2f} us, perf {out['perf_cpu_us_per_trip']:.2f} us, "
          f"posix {out['posix_cpu_us_per_trip']:.2f} us; {out['off_switches_per_trip']:.2f} context "
          f"switches per trip; cost per switch: perf {out['perf_us_per_switch']:.2f} us "
          f"(IQR {out['perf_us_per_switch_iqr'][0]:.2f}..{out['perf_us_per_switch_iqr'][1]:.2f}), posix "
          f"{out['posix_us_per_switch']:.2f} us")
    return out


def _alias_once(interval: float, seconds: float) -> dict[str, float]:
    import ringprof

    def until(t: float) -> None:
        x = 0
        while time.thread_time() < t:
            x += 1

    def a(base: float) -> None:
        until(base + 0.009)

    def b(base: float) -> None:
        until(base + 0.016)

    def c(base: float) -> None:
        until(base + 0.020)

    prof = ringprof.Profile(interval=interval)
    prof.enable()
    base = time.thread_time()
    end = base + seconds
    while base < end:
        a(base)
        b(base)
        c(base)
        base += 0.020
    prof.disable()
    shares = {e.name.rsplit(".", 1)[-1]: e.total_pct for e in prof.top(50)
              if e.name.rsplit(".", 1)[-1] in ("a", "b", "c")}
    total = sum(shares.values()) or 1.0
    return {k: 100.0 * shares.get(k, 0.0) / total for k in ("a", "b", "c")}


def section_alias(intervals: list[float], intervals_per_run: int) -> list[dict[str, Any]]:
    want = {"a": 45.0, "b": 35.0, "c": 20.0}
    rows = []
    for iv in intervals:
        seconds = max(3.0, intervals_per_run * iv)
        got = _alias_once(iv, seconds)
        err = max(abs(got[k] - want[k]) for k in want)
        sd = 100.0 * (0.45 * 0.55 / (seconds / iv)) ** 0.5
        rows.append({"interval": iv, "seconds": seconds, "shares": got, "max_error_points": err,
                     "binomial_sd_points": sd})
        print(f"alias: {1000 * iv:g} ms, {seconds:g} s CPU: a/b/c = {got['a']:.1f}/{got['b']:.1f}/{got['c']:.1f} "
              f"(want 45/35/20), max error {err:.1f} points, sampling sd {sd:.1f}")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.signal_delivery", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", default="io,idle,floor,switch,alias")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    only = set(args.only.split(","))
    reps = 3 if args.quick else 7
    out: dict[str, Any] = {}
    if "io" in only:
        out["io"] = section_io(reps)
    if "idle" in only:
        out["idle"] = section_idle(reps)
    if "floor" in only:
        out["floor"] = section_floor(reps)
    if "switch" in only:
        out["switch"] = section_switch(reps)
    if "alias" in only:
        out["alias"] = section_alias([0.001, 0.002, 0.005, 0.01, 0.02], 1000 if args.quick else 4000)
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
