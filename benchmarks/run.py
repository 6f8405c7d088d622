"""Run the whole benchmark suite: ``python -m benchmarks.run [--quick] [--json out.json]``.

Parts: ``overhead`` (every workload x ringprof configurations and peers),
``micro`` (signal floor, handler body vs depth, drain/resolve, memory, rates)
and ``accuracy`` (known 50/30/20 split, top-10 agreement with py-spy).  Prints
a table per part; ``--json`` keeps everything for ``tools/bench_report.py``.

Full run: ~25 minutes on a 2-core VM; ``--quick``: ~9 minutes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from typing import Any

from . import accuracy, harness, micro, peers, workloads

PARTS = ("overhead", "micro", "accuracy")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), None)
    except OSError:
        model = None
    try:
        hz = os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        hz = None
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": model,
        "cpus": os.cpu_count(),
        "clk_tck": hz,
        "commit": commit,
        "loadavg_start": os.getloadavg(),
        "versions": {name: _version(name) for name in
                     ("ringprof", "numpy", "pyperformance", "pyinstrument", "yappi", "py-spy")},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="3 pairs at half scale, short micro/accuracy runs")
    p.add_argument("--json", metavar="PATH", help="write all results as JSON (input of tools/bench_report.py)")
    p.add_argument("--only", help=f"comma-separated parts: {', '.join(PARTS)}")
    p.add_argument("--workloads", help=f"comma-separated subset of: {', '.join(workloads.ALL_NAMES)}")
    p.add_argument("-n", "--reps", type=int, help="overhead pairs per cell (default 7, quick 3)")
    p.add_argument("--scale", type=float, help="workload scale (default 1.0, quick 0.5)")
    p.add_argument("--no-peers", action="store_true", help="ringprof configurations only")
    ns = p.parse_args(argv)
    parts = [x.strip() for x in ns.only.split(",")] if ns.only else list(PARTS)
    bad = [x for x in parts if x not in PARTS]
    if bad:
        p.error(f"unknown part(s): {', '.join(bad)}")
    reps = ns.reps or (3 if ns.quick else 7)
    scale = ns.scale or (0.5 if ns.quick else 1.0)
    names = [n.strip() for n in ns.workloads.split(",")] if ns.workloads else None
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    out: dict[str, Any] = {"environment": environment(), "quick": ns.quick}
    if "overhead" in parts:
        factories = peers.overhead_configs(peers=not ns.no_peers)
        out["overhead"] = harness.run_overhead(names, factories, reps=reps, scale=scale, log=log)
        print("== overhead (median of per-pair ratios [IQR])")
        print(harness.format_table(harness.row_from_dict(r) for r in out["overhead"]["rows"]))
        for w, why in out["overhead"].get("skipped_workloads", {}).items():
            print(f"skipped {w}: {why}")
        sys.stdout.flush()
    if "micro" in parts:
        out["micro"] = micro.run_micro(quick=ns.quick, log=log)
        print("== micro-benchmarks")
        print(micro.format_micro(out["micro"]))
        sys.stdout.flush()
    if "accuracy" in parts:
        out["accuracy"] = accuracy.run_accuracy(quick=ns.quick, log=log)
        print("== accuracy")
        print(accuracy.format_accuracy(out["accuracy"]))
    out["environment"]["loadavg_end"] = os.getloadavg()
    out["seconds"] = time.monotonic() - t0
    print(f"== done in {out['seconds']:.0f} s (load average {out['environment']['loadavg_start'][0]:.1f} at start, "
          f"{out['environment']['loadavg_end'][0]:.1f} at end, {os.cpu_count()} CPUs)")
    if ns.json:
        tmp = ns.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(out, fh, indent=1, default=str)
        os.replace(tmp, ns.json)
        print(f"wrote {ns.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
