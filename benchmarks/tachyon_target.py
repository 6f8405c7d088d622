"""The measured program of :mod:`benchmarks.tachyon` (one process per run).

``python -m benchmarks.tachyon_target --workload NAME --scale S --out R.json [--ringprof MODE:HZ]``
runs a warm-up, then the workload once inside a timed window, and writes what
it saw to ``R.json``:

* ``wall``, ``cpu``: ``perf_counter`` and ``process_time`` around the window
  (every thread of this process: ringprof's drain thread included);
* ``parent_cpu``: CPU seconds the *parent* process used during the window,
  from ``/proc/<ppid>/task/*/schedstat`` (ns resolution).  Under
  ``python -m profiling.sampling run`` the parent is the sampling profiler
  itself, so this is its own cost while the workload ran;
* for ringprof (started just before and stopped just after the window, as in
  :mod:`benchmarks.harness`): samples, dropped, and the collapsed profile is
  written next to ``R.json`` (outside the window), as an out-of-process
  profiler writes its output file after the run.

``--split SECONDS`` runs the known 50/30/20 split of :mod:`benchmarks.accuracy`
instead: calibrate, measure the truth unprofiled (CPU timers around every
chunk), run ``split_driver`` (the only frame that marks the profiled part, so
an out-of-process profiler's samples of the calibration and truth phases can
be told apart), measure the truth again.  With ``--ringprof`` the inclusive
shares ringprof recorded are written too.

Kept small on purpose: the same imports happen in every configuration.
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import resource
import sys
import time
from typing import Any, Literal, cast


def _parent_cpu_s() -> float | None:
    """CPU seconds (all threads) of the parent process so far, or None when unreadable."""
    total = 0
    try:
        for path in glob.glob(f"/proc/{os.getppid()}/task/*/schedstat"):
            with open(path) as fh:
                total += int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def _ringprof(spec: str | None) -> tuple[Literal["cpu", "wall"], float] | None:
    if not spec:
        return None
    mode, _, hz = spec.partition(":")
    if mode not in ("cpu", "wall"):
        raise ValueError(f"--ringprof MODE must be cpu or wall, not {mode!r}")
    return cast(Literal["cpu", "wall"], mode), float(hz)


Mode = Literal["cpu", "wall"]


def run_workload(name: str, scale: float, ring: tuple[Mode, float] | None, out: str) -> dict[str, Any]:
    from . import workloads

    w = workloads.available()[name]
    w.fn(0.2 * scale)  # warm-up: imports, caches, allocator (outside the window)
    prof = None
    if ring is not None:
        import ringprof

        prof = ringprof.Profile(1.0 / ring[1], ring[0], 128)
    gc.collect()
    if prof is not None:
        prof.enable()
    p0 = _parent_cpu_s()
    w0 = time.perf_counter()
    c0 = time.process_time()
    w.fn(scale)
    c1 = time.process_time()
    w1 = time.perf_counter()
    p1 = _parent_cpu_s()
    res: dict[str, Any] = {"workload": name, "scale": scale, "wall": w1 - w0, "cpu": c1 - c0,
                           "parent_cpu": (p1 - p0) if p0 is not None and p1 is not None else None}
    if prof is not None:
        prof.disable()
        st = prof.data.meta["stats"]
        res["samples"] = int(st.get("samples", 0))
        res["dropped"] = int(st.get("dropped", 0))
        res["weight"] = int(prof.data.total_weight())
        with open(os.path.splitext(out)[0] + ".collapsed", "w") as fh:
            fh.write(prof.to_collapsed())
    return res


def run_split(seconds: float, ring: tuple[Literal["cpu", "wall"], float] | None) -> dict[str, Any]:
    from . import accuracy

    chunk_s = 0.004
    sizes = accuracy.calibrate(chunk_s)
    before = accuracy.truth(accuracy.schedule(sizes, 250, seed=1))
    adapter = None
    if ring is not None:
        from . import peers

        adapter = peers.Ringprof(ring[0], ring[1])
    rounds = max(10, int(seconds / chunk_s))
    if adapter is not None:
        adapter.start()
    w0 = time.perf_counter()
    accuracy.split_driver(accuracy.schedule(sizes, rounds))
    wall = time.perf_counter() - w0
    res: dict[str, Any] = {"rounds": rounds, "wall": wall}
    if adapter is not None:
        info = adapter.stop()
        keys = {name: ("accuracy.py", name) for name in ("part_a", "part_b", "part_c")}
        sh = adapter.shares(keys.values())
        parts = {name: sh.get(k, 0.0) for name, k in keys.items()}
        s = sum(parts.values())
        res["shares"] = {k: (v / s if s else 0.0) for k, v in parts.items()}
        res["samples"] = info.get("samples")
    after = accuracy.truth(accuracy.schedule(sizes, 250, seed=2))
    res["truth"] = {k: (before[k] + after[k]) / 2 for k in before}
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tachyon_target", description=__doc__.split("\n\n")[0])
    p.add_argument("--workload")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--split", type=float, metavar="SECONDS", help="run the 50/30/20 split for this long instead")
    p.add_argument("--ringprof", metavar="MODE:HZ", help="profile the window in-process with ringprof")
    p.add_argument("--out", required=True, help="JSON result file")
    ns = p.parse_args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        ring = _ringprof(ns.ringprof)
    except ValueError as exc:
        p.error(str(exc))
    if ns.split:
        res = run_split(ns.split, ring)
    elif ns.workload:
        res = run_workload(ns.workload, ns.scale, ring, ns.out)
    else:
        p.error("give --workload or --split")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    res["self_cpu_total"] = ru.ru_utime + ru.ru_stime
    with open(ns.out, "w") as fh:
        json.dump(res, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
