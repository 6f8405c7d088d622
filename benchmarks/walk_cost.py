"""Handler body cost per sample by frame kind and depth.

``python -m benchmarks.walk_cost [--quick] [--json FILE]``

The sampled thread burns CPU at the bottom of a chain of ``depth`` frames of
one kind:

* ``datastack``: plain recursive calls (frames in the thread's datastack);
* ``generator``: ``yield from`` chain (each frame inside a generator object);
* ``coroutine``: ``await`` chain (each frame inside a coroutine object),
  driven by ``asyncio.run``.

Each configuration is one recording in CPU mode at 250 Hz, ``max_depth=128``:
a warm-up window, then several short windows (the first samples after a start
pay for the sampler's own start-up, which is not what this measures).  A
CPU-time timer fires right after a scheduler tick, so the handler is
practically never preempted and its self-timing (CLOCK_MONOTONIC)
is the handler body itself.  The table gives the median over windows of the
walk and record time per sample (``stats.record_ns / samples``) and the minimum
window, then the whole handler body (``stats.handler_ns``: with re-arming the
timer at random every 4th sample, one system call that costs about a signal
delivery on a VM), the fault-free copies (one ``process_vm_readv`` syscall
each) per sample, and the recorded depth.  "Flat beyond max_depth" means depth 1000 costs what 128 costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import ringprof
from ringprof import _sampler as native

KINDS = ("datastack", "generator", "coroutine")
DEPTHS = (10, 30, 128, 1000)
MAX_DEPTH = 128


def burn(seconds: float) -> int:
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for _ in range(200):
            x += 1
    return x


def _recurse(depth: int, seconds: float) -> int:
    if depth <= 0:
        return burn(seconds)
    return _recurse(depth - 1, seconds)


def _gen(depth: int, seconds: float) -> Generator[int, None, None]:
    if depth <= 0:
        yield burn(seconds)
    else:
        yield from _gen(depth - 1, seconds)


async def _coro(depth: int, seconds: float) -> int:
    if depth <= 0:
        return burn(seconds)
    return await _coro(depth - 1, seconds)


def _runner(kind: str) -> Callable[[int, float], Any]:
    if kind == "datastack":
        return _recurse
    if kind == "generator":
        return lambda d, s: list(_gen(d, s))

    def run_coro(d: int, s: float) -> int:
        c: Coroutine[Any, Any, int] = _coro(d, s)
        return asyncio.run(c)

    return run_coro


def _copies() -> int:
    # walk_copies() is new: comparing with an older build reads 0 there.
    counter: Callable[[], int] = getattr(native, "walk_copies", lambda: 0)
    return counter()


def measure(kind: str, depth: int, windows: int, window_s: float, hz: int = 250) -> dict[str, Any]:
    """One recording per cell: a warm-up window (discarded: the first samples
    after a start pay for the sampler's own start-up -- its first drains, the
    live-code scan, cold rings), then ``windows`` windows read from the
    sampler's counters."""
    run = _runner(kind)
    means: list[float] = []
    bodies: list[float] = []
    copies: list[float] = []
    samples = 0
    p = ringprof.Profile(1.0 / hz, "cpu", MAX_DEPTH)
    with p:
        run(depth, window_s)  # warm-up
        for _ in range(windows):
            s0, c0 = native.stats(), _copies()
            run(depth, window_s)
            s1, c1 = native.stats(), _copies()
            n = int(s1["samples"] - s0["samples"])
            if n:
                means.append((s1["record_ns"] - s0["record_ns"]) / n)
                bodies.append((s1["handler_ns"] - s0["handler_ns"]) / n)
                copies.append((c1 - c0) / n)
                samples += n
    d = p.data
    depths = [int(x) for x in d.depth]
    truncated = int((d.flags & 0x01).astype(bool).sum())
    return {
        "ns_median_window": statistics.median(means) if means else None,
        "ns_min_window": min(means, default=None),
        "handler_ns_median_window": statistics.median(bodies) if bodies else None,
        "copies_per_sample": statistics.median(copies) if copies else None,
        "recorded_depth_max": max(depths, default=None),
        "truncated_share": truncated / len(depths) if depths else None,
        "samples": samples,
    }


def run_all(quick: bool = False, hz: int = 250) -> dict[str, Any]:
    sys.setrecursionlimit(10_000)
    windows, window_s = (3, 0.2) if quick else (6, 0.25)
    out: dict[str, Any] = {"python": platform.python_version(), "max_depth": MAX_DEPTH, "hz": hz,
                           "windows": windows, "window_s": window_s, "results": {}}
    for kind in KINDS:
        for depth in DEPTHS:
            out["results"][f"{kind}/{depth}"] = measure(kind, depth, windows, window_s, hz)
    return out


def table(res: dict[str, Any]) -> str:
    lines = [f"Python {res['python']}, cpu mode {res['hz']} Hz: walk+record ns/sample, median window (min window) · "
             "whole handler ns/sample · copies/sample · "
             f"max recorded depth (max_depth={res['max_depth']})",
             "| kind | " + " | ".join(f"depth {d}" for d in DEPTHS) + " |",
             "|---|" + "---|" * len(DEPTHS)]
    for kind in KINDS:
        cells = []
        for d in DEPTHS:
            r = res["results"][f"{kind}/{d}"]
            if r["ns_median_window"] is None:
                cells.append("n/a")
                continue
            cells.append(f"{r['ns_median_window']:,.0f} ({r['ns_min_window']:,.0f}) · "
                         f"{r['handler_ns_median_window']:,.0f} · "
                         f"{r['copies_per_sample']:.2f} · {r['recorded_depth_max']}")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.walk_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer, shorter windows")
    p.add_argument("--json", metavar="FILE", help="also write the raw results as JSON")
    p.add_argument("--hz", type=int, default=250,
                   help="sampling rate (default 250: each sample lands right after a kernel tick, on a cold "
                        "cache; above the tick rate perf events fire between ticks)")
    ns = p.parse_args(argv)
    res = run_all(ns.quick, ns.hz)
    print(table(res))
    if ns.json:
        with open(ns.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
