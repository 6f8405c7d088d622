"""Import cost, threads after import, bytes per sample and the cost of N recordings.

    python -m benchmarks.recordings [--reps 21] [--old-src DIR]

Every figure is a median over many repetitions, each in a fresh interpreter,
with the variants interleaved (A B C A B C ...) so that load changes on a
shared machine hit them alike.  ``--old-src`` points at the ``src`` directory
of another checkout (with its compiled ``_sampler``) to print that version
side by side.  Prints a Markdown section for ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

IMPORT_CODE = """
import time, sys
t0, c0 = time.perf_counter(), time.process_time()
import {module}
t1, c1 = time.perf_counter(), time.process_time()
import os
threads = len(os.listdir("/proc/self/task"))
print((t1 - t0) * 1e3, (c1 - c0) * 1e3, threads, int("numpy" in sys.modules))
"""

START_STOP_CODE = """
import time, sys, os
t0, c0 = time.perf_counter(), time.process_time()
import ringprof
prof = ringprof.start(interval=0.01)
ringprof.stop()
t1, c1 = time.perf_counter(), time.process_time()
print((t1 - t0) * 1e3, (c1 - c0) * 1e3, len(os.listdir("/proc/self/task")), int("numpy" in sys.modules))
"""

MEMORY_CODE = """
import sys, time
import ringprof
prof = ringprof.Profile(interval={interval}, drain_interval=0.1)
prof.enable()
end = time.thread_time() + 3.0
while time.thread_time() < end:
    pass
# Read the storage while recording, as a long-running service holds it (the old
# version merged its per-drain chunks only when .data was read).
data = prof._data
if hasattr(data, "_store"):  # packed columns: the store counts its own allocated buffers
    size, n = data.nbytes(), len(data)
else:
    cols = dict(data._cols)
    pending = list(getattr(data, "_pending", []))
    size = sum(sys.getsizeof(c) for c in cols.values())
    size += sum(sys.getsizeof(a) for chunk in pending for a in chunk.values()) + sys.getsizeof(pending)
    n = len(cols["stack"]) + sum(len(chunk["stack"]) for chunk in pending)
prof.disable()
print(size / max(n, 1), n)
"""

DRAIN_CODE = """
import time, json
import ringprof
from ringprof import sampler, _native
native = _native.load()
passes = [0]
spent = [0.0]
real = sampler._SAMPLER._drain_pass
def timed(final=False):
    t = time.thread_time()
    try:
        return real(final)
    finally:
        spent[0] += time.thread_time() - t
        passes[0] += 1
sampler._SAMPLER._drain_pass = timed
profs = [ringprof.Profile(interval=0.001, drain_interval=0.05) for _ in range({n})]
for p in profs:
    p.enable()
end = time.thread_time() + 1.0
while time.thread_time() < end:
    pass
for p in profs:
    p.disable()
samples = [len(p.data) for p in profs]
print(json.dumps({{"passes": passes[0], "drain_cpu_ms": spent[0] * 1e3, "samples": min(samples)}}))
"""


def run(code: str, src: str | None) -> str:
    env = dict(os.environ)
    env.pop("RINGPROF", None)
    if src is not None:
        env["PYTHONPATH"] = src
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd="/")
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return out.stdout.strip()


def med(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return f"{statistics.median(values):.2f} [{q[0]:.2f}, {q[2]:.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--old-src", default=None)
    ns = ap.parse_args()
    variants: dict[str, str | None] = {"this": None}
    if ns.old_src:
        variants["old"] = ns.old_src
    rows: dict[tuple[str, str], list[list[float]]] = {}
    for _ in range(ns.reps):
        for name, src in variants.items():
            for label, code in (("python -c pass", IMPORT_CODE.format(module="sys")),
                                ("import ringprof", IMPORT_CODE.format(module="ringprof")),
                                ("import ringprof.auto (RINGPROF unset)", IMPORT_CODE.format(module="ringprof.auto")),
                                ("import + start() + stop()", START_STOP_CODE)):
                if label == "python -c pass" and name != "this":
                    continue
                rows.setdefault((label, name), []).append([float(x) for x in run(code, src).split()])
    print("| what | version | wall ms (median [IQR]) | CPU ms (median [IQR]) | OS threads after | numpy loaded |")
    print("| :--- | :--- | ---: | ---: | ---: | ---: |")
    for (label, name), values in rows.items():
        print(f"| {label} | {name} | {med([v[0] for v in values])} | {med([v[1] for v in values])} | "
              f"{statistics.median(v[2] for v in values):.0f} | {statistics.median(v[3] for v in values):.0f} |")
    print()
    print("| version | interval | bytes per kept sample (columns, incl. allocation slack) | samples |")
    print("| :--- | ---: | ---: | ---: |")
    mem: dict[tuple[str, float], list[list[str]]] = {}
    for _ in range(3):
        for interval in (0.01, 0.001):
            for name, src in variants.items():
                mem.setdefault((name, interval), []).append(run(MEMORY_CODE.format(interval=interval), src).split())
    for (name, interval), got in mem.items():
        print(f"| {name} | {interval} | {statistics.median(float(g[0]) for g in got):.1f} | "
              f"{statistics.median(int(g[1]) for g in got)} |")
    print()
    print("| recordings enabled | drain passes | drain CPU ms (median [IQR]) | samples per recording |")
    print("| ---: | ---: | ---: | ---: |")
    results: dict[int, list[dict[str, float]]] = {}
    for _ in range(max(ns.reps // 3, 5)):
        for n in (1, 4, 16):
            results.setdefault(n, []).append(json.loads(run(DRAIN_CODE.format(n=n), None)))
    for n, res in results.items():
        print(f"| {n} | {statistics.median(r['passes'] for r in res):.0f} | "
              f"{med([r['drain_cpu_ms'] for r in res])} | {statistics.median(r['samples'] for r in res):.0f} |")


if __name__ == "__main__":
    main()
