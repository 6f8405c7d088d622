"""The flight recorder's cost: folding a window, memory for 10 minutes, ``recent(600)``.

``python -m benchmarks.flight_recorder [--windows 10] [--threads 8]``

Synthetic windows of 60 s of ``--threads`` threads sampled at 100 Hz (48,000
samples with 8 threads) over 300 distinct stacks 35-40 frames deep, with four
label sets, in two shapes:

* ``zipf``: a few stacks dominate (weights 1/rank^1.1) and recur in every
  window, as in a service;
* ``worst``: stacks spread evenly, label sets at random, and new stacks in
  every window (nothing folds well, nothing is shared).

Reported: rows per folded window, the recorder's memory estimate (what
``recent_max_bytes`` caps) beside the memory ``tracemalloc`` measures for
``--windows`` windows, and the CPU time (``time.process_time``, median) of
folding one window, of merging the whole history (``recent(600)``) and of
encoding it as pprof.  The figures in the README come from this script.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc

from ringprof.exporters import render
from ringprof.flight import FlightRecorder, approx_bytes, fold
from ringprof.model import Frame, ProfileData

RATE, SECONDS, NSTACKS, DEPTH = 100, 60, 300, 40


def _stacks(tag: str, common: list[Frame]) -> list[list[Frame]]:
    return [common[: DEPTH - 5 - (i % 10)]
            + [Frame(f"{tag}leaf{i}_{k}", f"/srv/app/leaf{i % 13}.py", k + 1, k + 2) for k in range(5)]
            for i in range(NSTACKS)]


def make_window(shape: str, t0: int, index: int, threads: int, rng: random.Random) -> ProfileData:
    common = [Frame(f"frame{d}", f"/srv/app/mod{d % 9}.py", d * 10 + 1, d * 10 + 3) for d in range(DEPTH)]
    stacks = _stacks(f"w{index}" if shape == "worst" else "s", common)
    data = ProfileData({"mode": "cpu", "interval": 0.01, "stats": {"dropped": 0}})
    sids = [data.intern_stack(data.intern_frame(f) for f in st) for st in stacks]
    lids = [0] + [data.intern_labels({"route": f"/r{j}", "method": "GET"}) for j in range(3)]
    n = threads * RATE * SECONDS
    if shape == "worst":
        stack = [rng.choice(sids) for _ in range(n)]
        labels = [rng.choice(lids) for _ in range(n)]
    else:
        stack = rng.choices(sids, weights=[1 / (i + 1) ** 1.1 for i in range(NSTACKS)], k=n)
        labels = [lids[(k // 97) % 4] for k in range(n)]
    data.add_samples(stack, [1000 + k % threads for k in range(n)],
                     [t0 + int(k * SECONDS * 1e9 / n) for k in range(n)], 1, 10_000_000, 0, labels, DEPTH)
    return data


def cpu_median(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()  # type: ignore[operator]
        times.append(time.process_time() - t)
    return statistics.median(times)


def run(shape: str, windows: int, threads: int) -> None:
    rng = random.Random(1)
    now = time.monotonic_ns()
    one = make_window(shape, now - SECONDS * 1_000_000_000, 0, threads, rng)
    folded, samples = fold(one, 10.0)
    fold_cpu = cpu_median(lambda: fold(one, 10.0), 5)
    print(f"[{shape}] one {SECONDS} s window, {threads} busy threads at {RATE} Hz: {len(one)} samples, "
          f"{approx_bytes(one) / 1e6:.2f} MB as recorded; folded: {len(folded)} rows, "
          f"{approx_bytes(folded, samples) / 1e6:.2f} MB; fold CPU median {fold_cpu * 1e3:.0f} ms")
    span = windows * SECONDS
    recorder = FlightRecorder(span, 1 << 34, 10.0, start_ns=now - (span + 100) * 1_000_000_000)
    cut = [make_window(shape, now - (span - SECONDS * i) * 1_000_000_000, i, threads, rng) for i in range(windows)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for w in cut:
        recorder.add(w)
    del cut, w
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    print(f"[{shape}] {windows} windows ({span / 60:g} min): estimate {recorder.nbytes / 1e6:.2f} MB, "
          f"measured (tracemalloc) {held / 1e6:.2f} MB")
    chunks, complete_from = recorder.chunks()
    merged = recorder.assemble(span, chunks, complete_from, None)
    merge_cpu = cpu_median(lambda: recorder.assemble(span, chunks, complete_from, None), 3)
    t = time.process_time()
    body = render(merged, "pprof")
    encode_cpu = time.process_time() - t
    print(f"[{shape}] recent({span}): {len(merged)} rows, merge CPU median {merge_cpu * 1e3:.0f} ms, "
          f"pprof encode CPU {encode_cpu * 1e3:.0f} ms ({len(body) / 1e3:.0f} kB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flight_recorder", description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    print(f"Python {sys.version.split()[0]}")
    for shape in ("zipf", "worst"):
        run(shape, args.windows, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
