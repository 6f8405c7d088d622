"""Bytes per kept sample of a long recording, in steady state.

    python -m benchmarks.memory [--samples 2000000] [--mode cpu|wall] [--threads 8] [--labels]
    python -m benchmarks.memory --label-sets 200000

A synthetic recording fed through the real recording path: a
:class:`ringprof.Profile` receives drained batches (:class:`ringprof.resolve.Batch`,
as the sampler delivers them every 0.1 s) of ``--threads`` threads sampled at
100 Hz, over a pool of 5,000 resolved stacks (20 frames each), with the
columns a real drain carries: weights (2 % overruns), flags (the GIL bit
varies), label ids (``--labels``: 30 % of the samples under one of 50 label
sets), depth and, in wall mode, CPU ns.  No sampler runs, so the figure does
not depend on the machine's load.

Steady state: the first ``--warmup`` samples fill the stack and label tables;
the figure is the growth of Python's traced memory (``tracemalloc``: every
allocation, tables and slack included) from then to the end, divided by the
samples added.  The store's own count (:meth:`ProfileData.nbytes`, allocated
buffers) is printed beside it.  The recording is given no sample cap
(``max_samples=None``), so nothing is folded away.

``--label-sets N``: a child process records (1 kHz, its main thread) while it
enters N ``ringprof.labels(request_id=..., user=...)`` blocks with distinct
values, after a warm-up of 30,000; prints the growth of its resident set
(``/proc/self/statm``) over the N blocks, and the label table's counters.
"""

from __future__ import annotations

import argparse
import array
import importlib
import inspect
import json
import random
import subprocess
import sys
import textwrap
import time
import tracemalloc

from ringprof.model import FLAG_HOLDS_GIL, Frame
from ringprof.recording import Profile
from ringprof.resolve import Batch, StackTable

INTERVAL_NS = 10_000_000
DRAIN_NS = 100_000_000


def _table(n_stacks: int, depth: int, rng: random.Random) -> StackTable:
    table = StackTable(0)
    frames = [Frame(f"f{i}", f"/app/mod{i % 40}.py", i, i + 3) for i in range(2000)]
    for _ in range(n_stacks):
        table.intern(tuple(table.frame(rng.choice(frames)) for _ in range(depth)))
    return table


def _batches(table: StackTable, threads: int, mode: str, labels: bool, rng: random.Random,
             templates: int = 64) -> list[tuple[list[int], ...]]:
    """Drain-sized batch templates (times relative to the drain's start)."""
    per_thread = DRAIN_NS // INTERVAL_NS
    out = []
    n_stacks = len(table)
    for _ in range(templates):
        stack, thread, time_ns, weight, cpu, flags, label, depth = [], [], [], [], [], [], [], []
        for t in range(threads):
            now = rng.randrange(INTERVAL_NS)
            for _ in range(per_thread):
                w = 1 if rng.random() > 0.02 else rng.randint(2, 3)
                stack.append(rng.randrange(n_stacks))
                thread.append(4000 + t)
                time_ns.append(now)
                weight.append(w)
                cpu.append(rng.randrange(INTERVAL_NS * w) if mode == "wall" else 0)
                flags.append(FLAG_HOLDS_GIL if rng.random() < 0.5 else 0)
                label.append(rng.randint(1, 50) if labels and rng.random() < 0.3 else 0)
                depth.append(20)
                now += INTERVAL_NS * w + rng.randrange(50_000)
        out.append((stack, thread, time_ns, weight, cpu, flags, label, depth))
    return out


def run(samples: int, warmup: int, mode: str, threads: int, labels: bool, seed: int = 1,
        trace: bool = True) -> dict[str, float]:
    rng = random.Random(seed)
    table = _table(5000, 20, rng)
    templates = _batches(table, threads, mode, labels, rng)
    kwargs = {"max_samples": None} if "max_samples" in inspect.signature(Profile).parameters else {}
    prof = Profile(interval=INTERVAL_NS / 1e9, mode=mode, **kwargs)  # type: ignore[arg-type]
    receive = prof._receive  # what the sampler calls with each drained batch
    if labels:
        label_module = importlib.import_module("ringprof.labels")  # the module, not ringprof.labels()

        for i in range(1, 51):  # process label ids 1..50 (ids the batches carry)
            assert label_module.intern({"endpoint": f"/e{i}"}) >= 1

    base = 1_000_000_000_000
    fed = 0
    drain = 0
    measured_from = None
    traced0 = 0
    receive_s = 0.0
    while fed < samples:
        if measured_from is None and fed >= warmup:
            if trace:
                tracemalloc.start()
            traced0 = tracemalloc.get_traced_memory()[0]
            measured_from = fed
        stack, thread, time_ns, weight, cpu, flags, label, depth = templates[drain % len(templates)]
        off = base + drain * DRAIN_NS
        batch = Batch(table, array.array("i", stack), array.array("q", thread),
                      array.array("q", [t + off for t in time_ns]), array.array("q", weight),
                      array.array("q", cpu), array.array("H", flags), array.array("q", label),
                      array.array("i", depth))
        t0 = time.process_time()
        receive(batch, None)
        if measured_from is not None:
            receive_s += time.process_time() - t0
        fed += len(stack)
        drain += 1
    traced1 = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    data = prof._data  # the store as the recording holds it (reading .data would settle with the sampler)
    assert measured_from is not None
    return {"samples": fed, "measured": fed - measured_from, "receive_us": receive_s / (fed - measured_from) * 1e6,
            "traced_per_sample": (traced1 - traced0) / (fed - measured_from),
            "store_per_sample": data.nbytes() / len(data)}


LABEL_CHILD = textwrap.dedent("""
    import gc, json, os, sys
    import ringprof
    import importlib

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def churn(lo, hi):
        for i in range(lo, hi):
            with ringprof.labels(request_id=str(i), user=f"user-{i}"):
                pass

    n = int(sys.argv[1])
    prof = ringprof.Profile(interval=0.001, threads="current")
    prof.enable()
    churn(0, 30_000)
    prof.data
    gc.collect()
    before = rss()
    churn(30_000, 30_000 + n)
    prof.data
    gc.collect()
    after = rss()
    prof.disable()
    try:
        stats = importlib.import_module("ringprof.label_table").stats()
    except ImportError:  # before label sets were released
        stats = {"live": len(importlib.import_module("ringprof.labels")._sets)}
    print(json.dumps({"growth_mib": (after - before) / 2**20, "stats": stats}))
""")


def label_sets(n: int) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", LABEL_CHILD, str(n)], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=2_000_000)
    ap.add_argument("--warmup", type=int, default=200_000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--mode", choices=("cpu", "wall", "both"), default="both")
    ap.add_argument("--labels", action="store_true", help="30 %% of the samples carry one of 50 label sets")
    ap.add_argument("--label-sets", type=int, default=0, metavar="N",
                    help="measure RSS growth over N distinct label sets instead")
    ap.add_argument("--cost", action="store_true",
                    help="CPU time of the recording path per sample (no tracemalloc) instead")
    ns = ap.parse_args()
    if ns.label_sets:
        r = label_sets(ns.label_sets)
        print(f"{ns.label_sets:,} distinct label sets: RSS growth {r['growth_mib']:.2f} MiB; table {r['stats']}")
        return
    modes = ("cpu", "wall") if ns.mode == "both" else (ns.mode,)
    if ns.cost:
        for mode in modes:
            r = run(ns.samples, ns.warmup, mode, ns.threads, ns.labels, trace=False)
            print(f"{mode}: {r['receive_us']:.3f} us of CPU per sample delivered to the recording")
        return
    print("| mode | threads | labels | samples | measured | bytes/sample (tracemalloc) | bytes/sample (store) |")
    print("| :--- | ---: | :--- | ---: | ---: | ---: | ---: |")
    for mode in modes:
        r = run(ns.samples, ns.warmup, mode, ns.threads, ns.labels)
        print(f"| {mode} | {ns.threads} | {'yes' if ns.labels else 'no'} | {r['samples']:,} | {r['measured']:,} "
              f"| {r['traced_per_sample']:.2f} | {r['store_per_sample']:.2f} |")


if __name__ == "__main__":
    main()
