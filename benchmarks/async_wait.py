"""Cost of the async view (``Profile(async_tasks=True)``) with 1,000 pending tasks.

    python -m benchmarks.async_wait [--reps 7] [--tasks 1000] [--seconds 3]

Each run is a fresh interpreter: an event loop holds ``--tasks`` pending tasks
(handler -> fetch -> acquire -> ``asyncio.sleep``, four coroutine frames each)
for ``--seconds``, recorded by a ``Profile(mode="cpu")`` without the async view
(the baseline) or with it at 20 Hz or 10 Hz.  Two workloads:

* ``idle``: every task sleeps through the window (a service holding 1,000 slow
  requests or connections);
* ``churn``: every task wakes every 50-150 ms (about 10,000 task steps a
  second), so most snapshots find hundreds of tasks that moved.

The variants are interleaved (A B C A B C ...) so load changes on a shared
machine hit them alike; figures are medians.  The cost is the extra process
CPU time over the baseline, as a percentage of one core (CPU seconds per wall
second); the snapshot thread's own accounting (``meta["async"]["cost_ns"]``,
its ``thread_time``) and the snapshot rate it achieved are printed beside it.
Prints a Markdown section for ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

RUN_CODE = """
import asyncio, json, random, sys, time
import ringprof

N, SECONDS, WORKLOAD, INTERVAL = {tasks}, {seconds}, {workload!r}, {interval!r}

async def acquire(i):
    if WORKLOAD == "idle":
        await asyncio.sleep(3600)
    else:
        rnd = random.Random(i)
        while True:
            await asyncio.sleep(rnd.uniform(0.05, 0.15))

async def fetch(i):
    await acquire(i)

async def handler(i):
    await fetch(i)

async def main():
    tasks = [asyncio.create_task(handler(i)) for i in range(N)]
    await asyncio.sleep(0.5)  # every task suspended, caches warm
    if INTERVAL is None:
        prof = ringprof.Profile(mode="cpu")
    else:
        prof = ringprof.Profile(mode="cpu", async_tasks=True, async_interval=INTERVAL)
    prof.enable()
    await asyncio.sleep(0.3)  # the first snapshots (cold chain tables) are not measured
    c0, w0 = time.process_time(), time.monotonic()
    before = dict(prof._waiters[0].stats) if INTERVAL is not None else {{}}
    await asyncio.sleep(SECONDS)
    c1, w1 = time.process_time(), time.monotonic()
    after = dict(prof._waiters[0].stats) if INTERVAL is not None else {{}}
    prof.disable()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    wall = w1 - w0
    out = {{"cpu_pct": 100 * (c1 - c0) / wall, "wall": wall}}
    if after:
        out["self_pct"] = 100 * (after["cost_ns"] - before["cost_ns"]) / 1e9 / wall
        out["rate_hz"] = (after["snapshots"] - before["snapshots"]) / wall
        out["backoffs"] = after["backoffs"] - before["backoffs"]
        snapshots = max(1, after["snapshots"] - before["snapshots"])
        out["per_snapshot_us"] = (after["cost_ns"] - before["cost_ns"]) / 1e3 / snapshots
    print(json.dumps(out))

asyncio.run(main())
"""

VARIANTS = (("baseline", None), ("async 20 Hz", 0.05), ("async 10 Hz", 0.1))


def run_once(tasks: int, seconds: float, workload: str, interval: float | None) -> dict[str, float]:
    code = RUN_CODE.format(tasks=tasks, seconds=seconds, workload=workload, interval=interval)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    rows = []
    for workload in ("idle", "churn"):
        runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in VARIANTS}
        for _ in range(args.reps):
            for name, interval in VARIANTS:
                runs[name].append(run_once(args.tasks, args.seconds, workload, interval))
        base = statistics.median(r["cpu_pct"] for r in runs["baseline"])
        for name, interval in VARIANTS:
            if interval is None:
                continue
            rs = runs[name]
            extra = statistics.median(r["cpu_pct"] for r in rs) - base
            paired = statistics.median(r["cpu_pct"] - b["cpu_pct"] for r, b in zip(rs, runs["baseline"], strict=True))
            rows.append((workload, name, base, extra, paired, statistics.median(r["self_pct"] for r in rs),
                         statistics.median(r["rate_hz"] for r in rs),
                         statistics.median(r["per_snapshot_us"] for r in rs), sum(r["backoffs"] for r in rs)))
    print(f"{args.tasks} pending tasks, {args.seconds:g} s windows, {args.reps} interleaved runs per variant, "
          f"Python {sys.version.split()[0]}\n")
    print("| workload | variant | baseline CPU (% of a core) | extra CPU, medians | extra CPU, paired median "
          "| snapshot thread's own CPU | snapshots/s achieved | CPU per snapshot | back-offs (all runs) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for workload, name, base, extra, paired, own, rate, per, backoffs in rows:
        print(f"| {workload} | {name} | {base:.2f} % | {extra:+.2f} % | {paired:+.2f} % | {own:.2f} % | {rate:.1f} "
              f"| {per:.0f} µs | {backoffs:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
