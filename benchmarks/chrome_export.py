"""Chrome-trace export of a large profile: time and peak memory.

    python -m benchmarks.chrome_export [--samples 1000000] [--threads 4] [--exporter FILE]

Builds a synthetic profile (a 25-frame framework prefix, then an application
tree; consecutive samples of a thread keep their stack 70 % of the time, as
real profiles do; some gaps), then writes it with ``exporters.write(...,
"chrome")`` in this process and reports:

* wall and CPU seconds of the export;
* the export's peak RSS above the RSS it started from (the kernel's high-water
  mark is reset just before the export through ``/proc/self/clear_refs``, so
  building the model does not count);
* events and bytes written.

``--exporter FILE`` loads another chrome exporter module from a file (for
example an older version) and writes its ``render()`` output instead, to
compare.  Each measurement should run in a fresh process: run the command
once per configuration.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import sys
import tempfile
import time
from typing import Any

import numpy as np

from ringprof import exporters
from ringprof.model import Frame, ProfileData


def build_model(samples: int, threads: int, seed: int = 0) -> ProfileData:
    rng = np.random.default_rng(seed)
    data = ProfileData({"mode": "cpu", "interval": 0.01, "pid": 4242, "argv": ["app.py"]})
    framework = [data.intern_frame(Frame(f"framework_{i}", f"/site-packages/fw/layer{i % 7}.py", 10 * i + 1,
                                         10 * i + 3)) for i in range(25)]
    # An application tree: 4-way branching, 3 to 10 frames below the framework.
    stacks: list[int] = []
    for _ in range(2000):
        depth = int(rng.integers(3, 11))
        path = [int(x) for x in rng.integers(0, 4, size=depth)]
        app = [data.intern_frame(Frame(f"app_{d}_{'_'.join(map(str, path[:d + 1]))}", f"/srv/app/mod{d}.py",
                                       100 * d + path[d] + 1, 100 * d + path[d] + 2)) for d in range(depth)]
        stacks.append(data.intern_stack([*framework, *app]))
    per_thread = samples // threads
    columns: dict[str, list[np.ndarray]] = {"stack": [], "thread": [], "time": []}
    for t in range(threads):
        change = rng.random(per_thread) < 0.3
        choice = rng.integers(0, len(stacks), size=per_thread)
        idx = np.maximum.accumulate(np.where(change, np.arange(per_thread), 0))
        sids = np.asarray(stacks)[choice[idx]]
        steps = np.where(rng.random(per_thread) < 0.02, 60_000_000, 10_000_000)  # 2 % gaps
        columns["stack"].append(sids)
        columns["thread"].append(np.full(per_thread, 1000 + t))
        columns["time"].append(np.cumsum(steps) + t * 1_000_000)
        data.threads[1000 + t] = f"worker-{t}"
    data.add_samples(np.concatenate(columns["stack"]), np.concatenate(columns["thread"]),
                     np.concatenate(columns["time"]))
    return data


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.chrome_export")
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--exporter", help="a chrome exporter module file to use instead (its render())")
    p.add_argument("--json", help="also write the result here")
    ns = p.parse_args(argv)
    data = build_model(ns.samples, ns.threads)
    _ = data.stack  # merge the sample columns now, not inside the measurement
    out_dir = tempfile.mkdtemp(prefix="ringprof-chrome-")
    out = os.path.join(out_dir, "big.trace.json")
    render: Any = None
    if ns.exporter:
        spec = importlib.util.spec_from_file_location("chrome_under_test", ns.exporter)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        render = module.render
    rss_before = _rss_kib("VmRSS")
    peak_reset = _reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    if render is None:
        exporters.write(data, out, "chrome")
    else:
        with open(out, "wb") as fh:
            fh.write(render(data))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _rss_kib("VmHWM") if peak_reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    size = os.path.getsize(out)
    with open(out, "rb") as fh:
        events = sum(chunk.count(b'"ph":"X"') for chunk in iter(lambda: fh.read(1 << 24), b""))
    os.unlink(out)
    os.rmdir(out_dir)
    result = {"samples": len(data), "threads": ns.threads, "exporter": ns.exporter or "ringprof.exporters.chrome",
              "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "rss_before_mib": round(rss_before / 1024, 1),
              "peak_rss_mib": round(peak / 1024, 1), "peak_above_start_mib": round((peak - rss_before) / 1024, 1),
              "peak_is_export_only": peak_reset, "x_events": events, "bytes": size,
              "python": sys.version.split()[0]}
    print(json.dumps(result, indent=1))
    if ns.json:
        with open(ns.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
