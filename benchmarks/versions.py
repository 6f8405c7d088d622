"""The same overhead and accuracy benchmarks on every supported CPython, one table.

Run once per interpreter (each with ringprof and pyperformance installed):

    python -m benchmarks.versions --json versions-3.15.json

which runs, in this interpreter:

1. the quick overhead gate, unchanged, as a child process:
   ``python -m benchmarks.check --quick --json TMP`` (ringprof cpu 100 Hz,
   process CPU time, 5 interleaved pairs per workload at scale 0.7);
2. the known 50/30/20 split of :mod:`benchmarks.accuracy` for ringprof's
   configurations (cpu 100 Hz, cpu 250 Hz, wall 1 kHz; ~3 s each, the truth
   measured unprofiled before and after, as ``known_split`` does);
3. the handler body per sample vs stack depth (:func:`benchmarks.micro.handler_cost`),
   to tell a per-sample cost change from noise when the gate's numbers differ.

Then ``python -m benchmarks.versions --render versions-*.json`` prints the
per-version Markdown tables (one column per interpreter).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from .report import ROOT, check_writable, count, ratio_pct, read_json_files, table

SPLIT_CONFIGS = (("cpu", 100), ("cpu", 250), ("wall", 1000))


def _shown(path: str) -> str:
    """A path as it may appear in results kept in the repository (relative to the checkout when inside it)."""
    rel = os.path.relpath(path, ROOT)
    return rel if not rel.startswith("..") else os.path.basename(path)


def run_gate(extra: list[str]) -> dict[str, Any]:
    fd, path = tempfile.mkstemp(prefix="ringprof-gate-", suffix=".json")
    os.close(fd)
    try:
        cmd = [sys.executable, "-m", "benchmarks.check", "--quick", "--json", path, *extra]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        out: dict[str, Any] = {"command": "python -m benchmarks.check --quick " + " ".join(extra), "rc": r.returncode,
                               "stdout": r.stdout[-3000:]}
        try:
            with open(path) as fh:
                out.update(json.load(fh))
        except (OSError, ValueError):
            out["error"] = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return out
    finally:
        os.unlink(path)


def run_split(seconds: float = 3.0) -> dict[str, Any]:
    from . import accuracy, peers

    chunk_s = 0.004
    sizes = accuracy.calibrate(chunk_s)
    before = accuracy.truth(accuracy.schedule(sizes, 250, seed=1))
    rows: list[dict[str, Any]] = []
    for mode, hz in SPLIT_CONFIGS:
        adapter = peers.Ringprof(mode, hz)
        adapter.start()
        try:
            accuracy.split_driver(accuracy.schedule(sizes, max(10, int(seconds / chunk_s))))
        finally:
            info = adapter.stop()
        keys = {name: ("accuracy.py", name) for name in ("part_a", "part_b", "part_c")}
        sh = adapter.shares(keys.values())
        parts = {name: sh.get(k, 0.0) for name, k in keys.items()}
        s = sum(parts.values())
        rows.append({"profiler": adapter.name, "samples": info.get("samples"),
                     "shares": {k: (v / s if s else 0.0) for k, v in parts.items()}})
    after = accuracy.truth(accuracy.schedule(sizes, 250, seed=2))
    truth = {k: (before[k] + after[k]) / 2 for k in before}
    for row in rows:
        row["error_pp"] = {k: 100 * (row["shares"][k] - truth[k]) for k in truth}
        row["max_abs_error_pp"] = max(abs(e) for e in row["error_pp"].values())
    return {"truth": truth, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.versions", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", metavar="PATH", help="where to write this interpreter's results")
    p.add_argument("--render", nargs="+", metavar="JSON", help="print the per-version tables of these files")
    p.add_argument("--no-micro", action="store_true", help="skip the handler-cost micro-benchmark")
    ns = p.parse_args(argv)
    if ns.render:
        data = read_json_files(ns.render, "benchmarks.versions")
        if data is None:
            return 2
        print(render(data))
        return 0
    if not ns.json:
        p.error("give --json PATH (or --render FILES)")
    if not check_writable(ns.json, "benchmarks.versions"):  # fail now, not after ten minutes of runs
        return 2
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:5.0f}s] {msg}", file=sys.stderr, flush=True)

    res: dict[str, Any] = {"python": sys.version.split()[0], "implementation": platform.python_implementation(),
                           "executable": _shown(sys.executable), "load_start": os.getloadavg()}
    log("gate: python -m benchmarks.check --quick")
    res["gate"] = run_gate([])
    log("split (ringprof)")
    res["split"] = run_split()
    if not ns.no_micro:
        from . import micro

        log("handler cost")
        res["handler"] = micro.handler_cost()
    res["load_end"] = os.getloadavg()
    res["seconds"] = time.monotonic() - t0
    with open(ns.json, "w") as fh:
        json.dump(res, fh, indent=1)
    print(render([res]))
    return 0


# ---------------------------------------------------------------------- rendering
def _cell(row: dict[str, Any]) -> str:
    return "error" if row.get("error") else ratio_pct(row["cpu_ratio"], row["cpu_min"], row["cpu_max"])


def render(data: list[dict[str, Any]]) -> str:
    rows: list[list[str]] = []
    workloads: list[str] = []
    for d in data:
        for r in d["gate"].get("rows", []):
            if r["workload"] not in workloads:
                workloads.append(r["workload"])
    by = [{r["workload"]: r for r in d["gate"].get("rows", [])} for d in data]
    for wl in workloads:
        rows.append([wl, *(_cell(b[wl]) if wl in b else "-" for b in by)])
    meds = []
    for b in by:
        vals = [r["cpu_ratio"] for r in b.values() if not r.get("error")]
        meds.append(f"**{ratio_pct(statistics.median(vals))}**" if vals else "-")
    rows.append(["*median over workloads*", *meds])
    rows.append(["*gate verdict*", *("OK" if d["gate"].get("rc") == 0 else f"exit {d['gate'].get('rc')}"
                                     for d in data)])
    for i, (mode, hz) in enumerate(SPLIT_CONFIGS):
        cells = []
        for d in data:
            split_rows = d.get("split", {}).get("rows", [])
            if i < len(split_rows):
                r = split_rows[i]
                cells.append(f"{r['max_abs_error_pp']:.1f} pp <sub>({r['samples']} samples)</sub>")
            else:
                cells.append("-")
        label = f"{hz / 1000:g}kHz" if hz >= 1000 else f"{hz}Hz"
        rows.append([f"50/30/20 worst error, ringprof {mode} {label}", *cells])
    rows.append(["truth a/b/c % (unprofiled, same process)", *(
        "/".join(f"{100 * d['split']['truth'][k]:.1f}" for k in ("part_a", "part_b", "part_c")) if d.get("split")
        else "-" for d in data)])
    # wall mode's self-timing includes preemption by other tenants (RESULTS.md, findings): kept in the JSON only
    for mode in ("cpu",):
        for depth in ("10", "30", "100"):
            cells = []
            for d in data:
                h = d.get("handler", {}).get("modes", {}).get(mode, {}).get("depths", {}).get(depth)
                if h and h.get("ns_per_sample_median_window") is not None:
                    cells.append(f"{count(h['ns_per_sample_median_window'])} <sub>(min window "
                                 f"{count(h['min_window'])})</sub>")
                else:
                    cells.append("-")
            rows.append([f"handler body ns/sample, {mode} mode, depth {depth}", *cells])
    rows.append(["load average start / end", *(f"{d['load_start'][0]:.1f} / {d['load_end'][0]:.1f}" for d in data)])
    return "\n".join(table(["workload", *(d["python"] for d in data)], rows))


if __name__ == "__main__":
    sys.exit(main())
