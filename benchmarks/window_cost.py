"""What one continuous-profiling window costs ringprof's window and exporter threads.

    python -m benchmarks.window_cost [--window 10] [--warmup 30] [--repeat 15] [--save FILE | --load FILE]

Records real windows of :mod:`benchmarks.prod_load`'s Flask endpoint (driven
in this process through Flask's test client, continuous mode at 100 Hz, cpu
mode), keeps the last one, then times in thread CPU time, ``--repeat`` times
each, interleaved:

* ``fold``: what the window thread does with a window besides cutting it
  (:func:`ringprof.flight.fold` into the flight recorder, with its size
  estimate);
* ``encode``: :func:`ringprof.exporters.pprof.encode`, the protobuf message;
* ``render``: :func:`ringprof.exporters.pprof.render`, encode plus gzip: what
  the directory sink writes for each window.

It prints the window's size (samples, stacks, frames) and the median and IQR
of each.  ``--save`` keeps the recorded window (pickle) and ``--load`` times a
saved one instead of recording, so two trees can be compared on the same
window: run it once per tree with ``--load``.  ``--warmup`` seconds of load
come first, so the window is one of a process that has run a while.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import time
from collections.abc import Callable
from typing import Any

from ringprof import flight
from ringprof.exporters import pprof
from ringprof.model import ProfileData


def record_window(window: float, warmup: float) -> ProfileData:
    import ringprof

    from .prod_load import create_app

    client = create_app().test_client()
    windows: list[ProfileData] = []
    ringprof.start(interval=0.01, mode="cpu", continuous=True, window=window, sinks=[windows.append])
    try:
        end = time.monotonic() + warmup + 2 * window + 1
        n = 0
        while time.monotonic() < end:
            client.get(f"/api/items/{n % 500}")
            n += 1
    finally:
        ringprof.stop()
    full = [w for w in windows if len(w)]
    if len(full) < 2:
        raise SystemExit("window_cost: fewer than two windows were recorded")
    return full[-2]  # the last full-length window (the final one is cut short by stop())


def _fold(data: ProfileData) -> None:
    """What FlightRecorder.add does with a window (slices of the window's length, at most 10 s)."""
    folded, samples = flight.fold(data, flight.MAX_RESOLUTION, {})
    flight.approx_bytes(folded, samples)


def time_parts(data: ProfileData, repeat: int) -> dict[str, list[int]]:
    parts: dict[str, Callable[[ProfileData], Any]] = {"fold": _fold, "encode": pprof.encode, "render": pprof.render}
    out: dict[str, list[int]] = {name: [] for name in parts}
    for _ in range(repeat):
        for name, fn in parts.items():
            t0 = time.thread_time_ns()
            fn(data)
            out[name].append(time.thread_time_ns() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--window", type=float, default=10.0, help="window length, seconds (default 10)")
    p.add_argument("--warmup", type=float, default=30.0, help="seconds of load before the windows (default 30)")
    p.add_argument("--repeat", type=int, default=15)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--save", help="keep the recorded window in this file")
    g.add_argument("--load", help="time a window saved with --save instead of recording one")
    args = p.parse_args(argv)
    if args.load:
        with open(args.load, "rb") as f:
            data = pickle.load(f)  # a file this benchmark wrote
    else:
        data = record_window(args.window, args.warmup)
        if args.save:
            with open(args.save, "wb") as f:
                pickle.dump(data, f)
    print(f"window: {len(data)} samples, {len(data.stacks)} stacks, {len(data.frames)} frames, "
          f"{len(pprof.render(data))} bytes of pprof")
    for name, values in time_parts(data, args.repeat).items():
        q = statistics.quantiles(values, n=4)
        print(f"  {name:7s} median {statistics.median(values) / 1e6:6.2f} ms of thread CPU "
              f"(IQR {q[0] / 1e6:.2f}-{q[2] / 1e6:.2f}, {len(values)} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
