"""What ``import ringprof.auto`` costs a program that ships it with profiling off.

    python -m benchmarks.import_auto [--runs 40] [--old-src DIR] [--json FILE]

Every run is a fresh interpreter with ``RINGPROF`` unset.  The variants run
interleaved (``pass``, ``auto``[, ``old``], then the next round in rotated
order) so that load changes on a shared machine hit them alike, and every
figure is a median over the runs, with the inter-quartile range:

* **process**: wall and CPU time (``os.wait4`` rusage, user + system) of
  ``python -c "import ringprof.auto"`` minus those of ``python -c pass`` in the
  same round.  Everything the import costs the process, and every hiccup of
  the machine: the noisiest figure.
* **importtime**: the cumulative time ``python -X importtime`` reports for
  ``ringprof.auto`` (itself and everything it imported).
* **in-process**: ``time.perf_counter`` / ``time.process_time`` around the
  import statement.

Both with bytecode caches (``.pyc``, as ``pip install`` leaves them) and
without (``PYTHONDONTWRITEBYTECODE=1`` and an empty ``PYTHONPYCACHEPREFIX``:
every module not frozen into the interpreter is compiled from source, as in
images that strip ``__pycache__``).  ``--old-src`` puts another checkout's
``src`` directory first on ``PYTHONPATH`` as a third variant.  Prints Markdown
for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

IN_PROCESS = """
import time
t0, c0 = time.perf_counter(), time.process_time()
import ringprof.auto
t1, c1 = time.perf_counter(), time.process_time()
print((t1 - t0) * 1e3, (c1 - c0) * 1e3)
"""


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float, str, str]:
    """(wall ms, CPU ms, stdout, stderr) of one fresh interpreter (``os.wait4`` gives its own rusage)."""
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    t0 = time.perf_counter()
    pid = os.posix_spawn(sys.executable, [sys.executable, *args], env,
                         file_actions=[(os.POSIX_SPAWN_DUP2, w_out, 1), (os.POSIX_SPAWN_DUP2, w_err, 2),
                                       (os.POSIX_SPAWN_CLOSE, r_out), (os.POSIX_SPAWN_CLOSE, r_err)])
    os.close(w_out)
    os.close(w_err)
    with os.fdopen(r_out, "rb") as fo, os.fdopen(r_err, "rb") as fe:
        err = fe.read()  # both outputs are a few KiB at most: no pipe fills while the other is read
        out = fo.read()
    _pid, status, usage = os.wait4(pid, 0)
    wall = (time.perf_counter() - t0) * 1e3
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{args} failed: {err.decode(errors='replace')}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1e3, out.decode(), err.decode()


def importtime_rows(stderr: str) -> tuple[float, list[str]]:
    """(cumulative ms of ``ringprof.auto``, the modules its import loaded) from ``-X importtime`` output."""
    rows: list[tuple[str, int]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _self_us, cumulative, name = line[len("import time:"):].split("|", 2)
        rows.append((name.rstrip(), int(cumulative)))
    names = [name.strip() for name, _ in rows]
    if "ringprof.auto" not in names:
        raise RuntimeError("ringprof.auto is not in the -X importtime output")
    end = names.index("ringprof.auto")
    # A row is printed when its module finishes, nested ones (deeper indent) first: the
    # modules loaded for ringprof.auto are the indented rows right above its own.
    start = end
    while start > 0 and rows[start - 1][0].startswith("  "):
        start -= 1
    return rows[end][1] / 1e3, names[start:end + 1]


def _quartiles(values: list[float]) -> list[float]:
    q = statistics.quantiles(values, n=4, method="inclusive")
    return [statistics.median(values), q[0], q[2]]


def _environments(bytecode: bool, old_src: str | None, cache_dir: str) -> dict[str, dict[str, str]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RINGPROF")}
    for k in ("PYTHONPROFILEIMPORTTIME", "PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE"):
        base.pop(k, None)
    if not bytecode:
        base.update(PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=cache_dir)
    envs = {"pass": base, "auto": base}
    if old_src:
        envs["old"] = {**base, "PYTHONPATH": os.pathsep.join(p for p in (old_src, base.get("PYTHONPATH")) if p)}
    return envs


def measure(runs: int, *, bytecode: bool, old_src: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ringprof-empty-pycache-") as cache_dir:
        envs = _environments(bytecode, old_src, cache_dir)
        if bytecode:  # write the caches once, as an install does
            for name in envs:
                _run(["-c", "import ringprof.auto"], envs[name])
        names = list(envs)
        raw: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": [], "importtime": [], "inproc_wall": [],
                                                      "inproc_cpu": []} for n in names}
        modules: dict[str, list[str]] = {}
        for i in range(runs):
            order = names[i % len(names):] + names[:i % len(names)]
            for name in order:
                code = "pass" if name == "pass" else "import ringprof.auto"
                wall, cpu, _out, _err = _run(["-c", code], envs[name])
                raw[name]["wall"].append(wall)
                raw[name]["cpu"].append(cpu)
            for name in order:
                if name == "pass":
                    continue
                _w, _c, _out, err = _run(["-X", "importtime", "-c", "import ringprof.auto"], envs[name])
                ms, modules[name] = importtime_rows(err)
                raw[name]["importtime"].append(ms)
                out = _run(["-c", IN_PROCESS], envs[name])[2].split()
                raw[name]["inproc_wall"].append(float(out[0]))
                raw[name]["inproc_cpu"].append(float(out[1]))
    result: dict[str, Any] = {"runs": runs, "bytecode": bytecode, "python": sys.version.split()[0],
                              "loadavg": list(os.getloadavg()), "pass_wall_ms": _quartiles(raw["pass"]["wall"]),
                              "pass_cpu_ms": _quartiles(raw["pass"]["cpu"]), "variants": {}}
    for name in names:
        if name == "pass":
            continue
        r = raw[name]
        result["variants"][name] = {
            "process_wall_ms": _quartiles([a - b for a, b in zip(r["wall"], raw["pass"]["wall"], strict=True)]),
            "process_cpu_ms": _quartiles([a - b for a, b in zip(r["cpu"], raw["pass"]["cpu"], strict=True)]),
            "importtime_ms": _quartiles(r["importtime"]),
            "in_process_wall_ms": _quartiles(r["inproc_wall"]),
            "in_process_cpu_ms": _quartiles(r["inproc_cpu"]),
            "modules": modules[name],
        }
    return result


def render(results: list[dict[str, Any]]) -> str:
    def cell(values: list[float]) -> str:
        return f"{values[0]:.2f} [{values[1]:.2f}, {values[2]:.2f}]"

    lines = []
    for r in results:
        caches = "with .pyc caches" if r["bytecode"] else "without .pyc (compiled from source)"
        variants = list(r["variants"])
        lines += [f"**{caches}**: {r['runs']} interleaved rounds, Python {r['python']}, load average "
                  f"{r['loadavg'][0]:.1f} at the end; `python -c pass` took {cell(r['pass_wall_ms'])} ms wall, "
                  f"{cell(r['pass_cpu_ms'])} ms CPU.", "",
                  "| ms, median [IQR] | " + " | ".join(variants) + " |",
                  "| :--- |" + " ---: |" * len(variants)]
        for key, label in (("process_wall_ms", "process wall, minus `python -c pass` of the same round"),
                           ("process_cpu_ms", "process CPU, minus `python -c pass` of the same round"),
                           ("importtime_ms", "`-X importtime`, cumulative for `ringprof.auto`"),
                           ("in_process_wall_ms", "`perf_counter` around the import"),
                           ("in_process_cpu_ms", "`process_time` around the import")):
            lines.append(f"| {label} | " + " | ".join(cell(r["variants"][v][key]) for v in variants) + " |")
        lines += ["", "Modules loaded by the import: " + "; ".join(
            f"{v}: " + ", ".join(f"`{m}`" for m in r["variants"][v]["modules"]) for v in variants), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.import_auto",
                                description="The cost of `import ringprof.auto` with profiling off.")
    p.add_argument("--runs", type=int, default=40, help="interleaved rounds (default 40)")
    p.add_argument("--old-src", help="another checkout's src directory, measured as variant 'old'")
    p.add_argument("--json", help="also write the raw figures here")
    ns = p.parse_args(argv)
    results = [measure(max(ns.runs, 3), bytecode=b, old_src=ns.old_src) for b in (True, False)]
    if ns.json:
        with open(ns.json, "w") as fh:
            json.dump(results, fh, indent=1)
    sys.stdout.write(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
