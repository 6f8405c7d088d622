"""Overhead harness: profiled vs unprofiled runs of each workload, in one process.

Method (the machine is noisy: 2 shared cores, single timings vary +-20 %):

* every measured run is preceded by ``gc.collect()``; the profiler is started
  *before* and stopped *after* the timed region, so the numbers are the
  steady-state cost while profiling (start/stop are fixed costs, measured in
  :mod:`benchmarks.micro`);
* each configuration is measured in **adjacent pairs** with an unprofiled run
  (baseline, profiled) and the order flips every repetition (ABBA), so slow
  drift of the neighbours' load cancels; the overhead is the **median of the
  per-pair ratios**, the spread their inter-quartile range and min/max;
* both wall time (``time.perf_counter``) and process CPU time
  (``time.process_time``: every thread of the process, the profiler's own
  threads included) are recorded.  CPU time is the robust one here (other
  tenants steal wall time, not CPU time); an external profiler's (py-spy's)
  own CPU is reported separately as ``external_cpu``;
* one unmeasured warm-up run per workload and configuration comes first.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from . import peers, workloads


def quantiles(xs: Sequence[float]) -> tuple[float, float, float]:
    """(q1, median, q3) with linear interpolation (exact for small samples)."""
    s = sorted(xs)
    if not s:
        return (float("nan"),) * 3  # type: ignore[return-value]

    def q(p: float) -> float:
        pos = p * (len(s) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    return q(0.25), q(0.5), q(0.75)


@dataclass
class Run:
    wall: float
    cpu: float
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    """One (workload, configuration) cell of the overhead table."""

    workload: str
    config: str
    peer: str
    reps: int
    base_wall: float = 0.0  # medians, seconds
    base_cpu: float = 0.0
    wall: float = 0.0
    cpu: float = 0.0
    wall_ratio: float = 0.0  # median of per-pair ratios
    wall_q1: float = 0.0
    wall_q3: float = 0.0
    wall_min: float = 0.0
    wall_max: float = 0.0
    cpu_ratio: float = 0.0
    cpu_q1: float = 0.0
    cpu_q3: float = 0.0
    cpu_min: float = 0.0
    cpu_max: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def cpu_pct(self) -> float:
        return 100.0 * (self.cpu_ratio - 1.0)

    @property
    def wall_pct(self) -> float:
        return 100.0 * (self.wall_ratio - 1.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(fn: Callable[[float], Any], scale: float, adapter: peers.Adapter) -> Run:
    gc.collect()
    adapter.start()
    try:
        w0 = time.perf_counter()
        c0 = time.process_time()
        fn(scale)
        c1 = time.process_time()
        w1 = time.perf_counter()
    finally:
        info = adapter.stop()
        cleanup = getattr(adapter, "cleanup", None)
        if cleanup:
            cleanup()
    return Run(w1 - w0, c1 - c0, info)


def _summarise_extra(runs: list[Run]) -> dict[str, Any]:
    """Medians of the numeric per-run extras (samples, handler ns, external CPU...)."""
    out: dict[str, Any] = {}
    keys = {k for r in runs for k in r.info}
    for k in sorted(keys):
        vals = [r.info[k] for r in runs if isinstance(r.info.get(k), int | float) and r.info.get(k) is not None]
        if vals:
            out[k] = statistics.median(vals)
        else:
            first = next((r.info[k] for r in runs if r.info.get(k) is not None), None)
            if first is not None:
                out[k] = first
    cpus = [r.cpu for r in runs]
    if "samples" in out and cpus:
        out["samples_per_cpu_s"] = out["samples"] / statistics.median(cpus)
    if "external_cpu_s" in out and cpus:
        out["external_cpu_pct"] = 100.0 * out["external_cpu_s"] / statistics.median(cpus)
    if "drain_cpu_s" in out and cpus:
        out["drain_cpu_pct"] = 100.0 * out["drain_cpu_s"] / statistics.median(cpus)
    return out


def compare(workload: workloads.Workload, factories: Sequence[Callable[[], peers.Adapter]], reps: int = 7,
            scale: float = 1.0, log: Callable[[str], None] | None = None) -> list[Row]:
    """Measure every configuration against the baseline for one workload."""
    fn = workload.fn
    names: list[str] = []
    peer_of: dict[str, str] = {}
    base: dict[str, list[Run]] = {}
    prof: dict[str, list[Run]] = {}
    errors: dict[str, str] = {}
    fn(scale)  # warm-up: imports, caches, allocator
    for factory in factories:
        a = factory()
        names.append(a.name)
        peer_of[a.name] = a.peer
        base[a.name], prof[a.name] = [], []
        try:  # warm-up of the profiler itself (and the availability check)
            measure(fn, scale * 0.2, a)
        except peers.Unavailable as exc:
            errors[a.name] = str(exc)
        except Exception as exc:  # a peer that breaks on this workload: report, go on
            errors[a.name] = f"{type(exc).__name__}: {exc}"
    for rep in range(reps):
        for i, factory in enumerate(factories):
            name = names[i]
            if name in errors:
                continue
            pair = [("base", peers.Baseline()), ("prof", factory())]
            if rep % 2:
                pair.reverse()
            for kind, adapter in pair:
                try:
                    run = measure(fn, scale, adapter)
                except Exception as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    break
                (base if kind == "base" else prof)[name].append(run)
        if log:
            log(f"  {workload.name}: rep {rep + 1}/{reps}")
    rows = []
    for name in names:
        if name in errors or not prof[name]:
            rows.append(Row(workload.name, name, peer_of[name], 0, error=errors.get(name, "no runs")))
            continue
        n = min(len(base[name]), len(prof[name]))
        b, p = base[name][:n], prof[name][:n]
        wr = [pp.wall / bb.wall for bb, pp in zip(b, p, strict=True)]
        cr = [pp.cpu / bb.cpu for bb, pp in zip(b, p, strict=True)]
        wq, cq = quantiles(wr), quantiles(cr)
        rows.append(Row(
            workload.name, name, peer_of[name], n,
            base_wall=statistics.median(r.wall for r in b), base_cpu=statistics.median(r.cpu for r in b),
            wall=statistics.median(r.wall for r in p), cpu=statistics.median(r.cpu for r in p),
            wall_ratio=wq[1], wall_q1=wq[0], wall_q3=wq[2], wall_min=min(wr), wall_max=max(wr),
            cpu_ratio=cq[1], cpu_q1=cq[0], cpu_q3=cq[2], cpu_min=min(cr), cpu_max=max(cr),
            extra=_summarise_extra(p),
        ))
    return rows


def run_overhead(names: Iterable[str] | None = None, factories: Sequence[Callable[[], peers.Adapter]] | None = None,
                 reps: int = 7, scale: float = 1.0, quick: bool = False,
                 log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The overhead table for the given workloads (default: every available one)."""
    avail = workloads.available()
    chosen = list(names) if names else list(avail)
    unknown = [n for n in chosen if n not in avail and n not in workloads.SKIPPED]
    if unknown:
        raise ValueError(f"unknown workload(s): {', '.join(unknown)}; known: {', '.join(workloads.ALL_NAMES)}")
    factories = factories or peers.overhead_configs(quick=quick)
    rows: list[Row] = []
    t0 = time.monotonic()
    for name in chosen:
        if name not in avail:
            continue
        if log:
            log(f"overhead: {name}")
        rows.extend(compare(avail[name], factories, reps=reps, scale=scale, log=log))
    return {
        "method": "adjacent pairs (baseline, profiled), order flipped each repetition; median of per-pair ratios",
        "reps": reps,
        "scale": scale,
        "seconds": time.monotonic() - t0,
        "rows": [r.to_dict() for r in rows],
        "skipped_workloads": {k: v for k, v in workloads.SKIPPED.items() if k in chosen},
    }


def row_from_dict(d: dict[str, Any]) -> Row:
    return Row(**d)


def fmt_ratio(ratio: float, lo: float, hi: float) -> str:
    return f"{100 * (ratio - 1):+6.1f}% [{100 * (lo - 1):+.1f}, {100 * (hi - 1):+.1f}]"


def format_table(rows: Iterable[Row], spread: str = "iqr") -> str:
    """Plain-text overhead table (one line per workload and configuration)."""
    lines = [f"{'workload':<14} {'profiler':<22} {'n':>2} {'base cpu s':>10} "
             f"{'CPU overhead (median [' + spread.upper() + '])':>30} {'wall overhead':>28}  notes"]
    for r in rows:
        if r.error:
            lines.append(f"{r.workload:<14} {r.config:<22}  -  unavailable: {r.error}")
            continue
        if spread == "iqr":
            c = fmt_ratio(r.cpu_ratio, r.cpu_q1, r.cpu_q3)
            w = fmt_ratio(r.wall_ratio, r.wall_q1, r.wall_q3)
        else:
            c = fmt_ratio(r.cpu_ratio, r.cpu_min, r.cpu_max)
            w = fmt_ratio(r.wall_ratio, r.wall_min, r.wall_max)
        notes = []
        ex = r.extra
        if "samples" in ex and ex["samples"] is not None:
            notes.append(f"{ex['samples']:.0f} samples")
        if ex.get("handler_ns_per_sample"):
            notes.append(f"body {ex['handler_ns_per_sample'] / 1000:.1f} us/sample")
        if ex.get("dropped"):
            notes.append(f"dropped {ex['dropped']:.0f}")
        if "external_cpu_pct" in ex:
            notes.append(f"+{ex['external_cpu_pct']:.1f}% CPU in py-spy")
        lines.append(f"{r.workload:<14} {r.config:<22} {r.reps:>2} {r.base_cpu:>10.3f} {c:>30} {w:>28}  "
                     + ", ".join(notes))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks.harness", description=__doc__.split("\n\n")[0])
    p.add_argument("workloads", nargs="*", help=f"workloads (default all): {', '.join(workloads.ALL_NAMES)}")
    p.add_argument("-n", "--reps", type=int, default=7)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--quick", action="store_true", help="ringprof configurations only")
    ns = p.parse_args(argv)
    res = run_overhead(ns.workloads or None, reps=ns.reps, scale=ns.scale, quick=ns.quick,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
    print(format_table(row_from_dict(r) for r in res["rows"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
