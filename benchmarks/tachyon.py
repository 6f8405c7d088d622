"""ringprof vs CPython 3.15's ``profiling.sampling`` ("Tachyon", PEP 799), side by side.

``python -m benchmarks.tachyon [--workloads a,b] [-n 5] [--scale 2] [--json out.json]``
(run with a CPython >= 3.15 that has ringprof installed; Tachyon needs ptrace
rights over its child: root, CAP_SYS_PTRACE or Yama ``ptrace_scope`` <= 1).
``python -m benchmarks.tachyon --render out.json`` prints the Markdown tables.

Every run is its own process of :mod:`benchmarks.tachyon_target`, launched
three ways with the same interpreter, working directory and environment:

* **baseline**: ``python -m benchmarks.tachyon_target ...`` (nothing profiles it);
* **Tachyon**: ``python -m profiling.sampling run --mode M -r HZ -a --collapsed
  -o OUT -m benchmarks.tachyon_target ...``: run mode starts the target as its
  child and samples it from outside (``process_vm_readv``) until it exits;
  ``-a`` samples every thread, as ringprof does;
* **ringprof**: ``python -m benchmarks.tachyon_target --ringprof M:HZ ...``:
  enabled in-process just around the timed window, as in
  :mod:`benchmarks.harness`.

Measured, per run:

(a) **in-workload slowdown**: the target's own ``process_time`` and
    ``perf_counter`` around the workload (one call of ``fn(scale)`` after a
    warm-up), profiled / unprofiled in adjacent pairs whose order flips every
    repetition (ABBA); median of the per-pair ratios, with min and max;
(b) **whole-tree CPU**: *window*: the target's CPU in the window plus the CPU
    its profiler used during the same window (Tachyon: its process, read by the
    target from ``/proc/<ppid>/task/*/schedstat`` at the window's edges;
    ringprof: already in the target's ``process_time``), over the unprofiled
    window; *launch*: ``os.wait4`` rusage of the whole launched tree (the
    profiler's process and the target it waited for, start-up and writing the
    output included) over the unprofiled launch;
(c) **samples per second achieved**: Tachyon's own summary ("Captured N
    samples in T seconds": sampling passes, one stack per thread each) and the
    thread-stacks in its output per second; ringprof: samples recorded per
    wall-second of the window (per thread);
(d) **error on the 50/30/20 split** of :mod:`benchmarks.accuracy`: one run per
    configuration (``--split``), the truth measured unprofiled in the same
    process; Tachyon's inclusive counts are taken from stacks that contain
    ``split_driver`` only (it also samples the calibration and truth phases).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .report import ROOT, check_writable, count, ratio_pct, read_json_files, table

TARGET = "benchmarks.tachyon_target"
DEFAULT_WORKLOADS = ("calls", "threads", "io_sleep", "pp_raytrace")


@dataclass(frozen=True)
class Config:
    profiler: str  # "tachyon" | "ringprof"
    mode: str  # "wall" | "cpu"
    hz: int

    @property
    def name(self) -> str:
        rate = f"{self.hz / 1000:g}kHz" if self.hz >= 1000 else f"{self.hz}Hz"
        label = "Tachyon" if self.profiler == "tachyon" else "ringprof"
        return f"{label} {self.mode} {rate}"


def configs(rates: tuple[int, ...] = (1000, 100)) -> list[Config]:
    """Tachyon's default rate is 1 kHz (``-r`` default "1khz" in 3.15's cli.py), so 1 kHz is also "default"."""
    return [Config(p, m, hz) for p in ("tachyon", "ringprof") for m in ("wall", "cpu") for hz in rates]


def tachyon_available(python: str) -> str | None:
    """None when ``python -m profiling.sampling`` exists, else the reason it does not."""
    r = subprocess.run([python, "-c", "import profiling.sampling"], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{python} has no profiling.sampling (CPython 3.15+ only): {last}"
    return None


def _cmd(python: str, cfg: Config | None, target_args: list[str], out_prefix: str) -> list[str]:
    if cfg is None:
        return [python, "-m", TARGET, *target_args]
    if cfg.profiler == "ringprof":
        return [python, "-m", TARGET, "--ringprof", f"{cfg.mode}:{cfg.hz}", *target_args]
    return [python, "-m", "profiling.sampling", "run", "--mode", cfg.mode, "-r", str(cfg.hz), "-a",
            "--collapsed", "-o", out_prefix + ".collapsed", "-m", TARGET, *target_args]


_CAPTURED = re.compile(r"Captured ([\d,.\s]+) samples? in ([\d.,]+) seconds")
_MISSED = re.compile(r"missed ([\d,]+) samples from the expected total of ([\d,]+)")
_ERROR_RATE = re.compile(r"Error rate: ([\d.,]+)")


def _num(s: str) -> float:
    return float(s.replace(",", "").replace(" ", ""))


def parse_tachyon_summary(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    m = _CAPTURED.search(text)
    if m:
        out["passes"] = _num(m.group(1))
        out["seconds"] = _num(m.group(2))
        out["passes_per_s"] = out["passes"] / out["seconds"] if out["seconds"] else None
    m = _MISSED.search(text)
    if m:
        out["missed"] = _num(m.group(1))
        out["expected"] = _num(m.group(2))
    m = _ERROR_RATE.search(text)
    if m:
        out["error_rate_pct"] = _num(m.group(1))
    return out


def parse_collapsed(path: str) -> list[tuple[list[str], int]]:
    """Tachyon's collapsed output: ``tid:N;file.py:func:line;... COUNT`` -> [(frames, count)]."""
    out: list[tuple[list[str], int]] = []
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if stack and count.isdigit():
                out.append((stack.split(";"), int(count)))
    return out


def _frame_func(frame: str) -> tuple[str, str]:
    """(file basename, function) of a ``file.py:func:line`` frame (special frames: ("", frame))."""
    parts = frame.rsplit(":", 2)
    if len(parts) == 3:
        return parts[0], parts[1].rsplit(".", 1)[-1]
    return "", frame


def split_shares(stacks: list[tuple[list[str], int]]) -> tuple[dict[str, float], int]:
    """Inclusive shares of part_a/b/c among stacks inside ``split_driver``; and how many such samples."""
    counts = {"part_a": 0, "part_b": 0, "part_c": 0}
    n = 0
    for frames, c in stacks:
        funcs = {_frame_func(f) for f in frames}
        if ("accuracy.py", "split_driver") not in funcs:
            continue
        n += c
        for part in counts:
            if ("accuracy.py", part) in funcs:
                counts[part] += c
    s = sum(counts.values())
    return {k: (v / s if s else 0.0) for k, v in counts.items()}, n


def launch(cmd: list[str], tmp: str, tag: str) -> dict[str, Any]:
    """Run one process tree to completion; its own JSON result plus wait4 rusage of the tree."""
    out_json = os.path.join(tmp, tag + ".json")
    full = [*cmd, "--out", out_json]  # the target's arguments come last in every command
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    log_path = os.path.join(tmp, tag + ".log")
    w0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(full, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
        _pid, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - w0
    with open(log_path, errors="replace") as fh:
        text = fh.read()
    res: dict[str, Any] = {"rc": proc.returncode, "tree_cpu": ru.ru_utime + ru.ru_stime, "tree_wall": wall}
    if proc.returncode != 0 or not os.path.exists(out_json):
        res["error"] = (text.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:300]
        return res
    with open(out_json) as fh:
        res.update(json.load(fh))
    res["stdout"] = text[-2000:]
    return res


def _one(python: str, cfg: Config | None, target_args: list[str], tmp: str, tag: str) -> dict[str, Any]:
    prefix = os.path.join(tmp, tag)
    res = launch(_cmd(python, cfg, target_args, prefix), tmp, tag)
    if cfg is not None and "error" not in res:
        collapsed = parse_collapsed(prefix + ".collapsed")
        res["stacks"] = sum(c for _, c in collapsed)
        if cfg.profiler == "tachyon":
            res.update(parse_tachyon_summary(res.get("stdout", "")))
            if "--split" in target_args:
                res["shares"], res["split_samples"] = split_shares(collapsed)
    for ext in (".json", ".log", ".collapsed"):
        try:
            os.unlink(prefix + ext)
        except FileNotFoundError:
            pass
    res.pop("stdout", None)
    return res


def _q(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)} if xs else {}


def summarise(cfg: Config, pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    ok = [(b, p) for b, p in pairs if "error" not in b and "error" not in p]
    row: dict[str, Any] = {"config": cfg.name, "profiler": cfg.profiler, "mode": cfg.mode, "hz": cfg.hz,
                           "pairs": len(ok), "errors": [p.get("error") or b.get("error") for b, p in pairs
                                                         if "error" in b or "error" in p][:3]}
    if not ok:
        return row

    def prof_cpu_window(p: dict[str, Any]) -> float:
        extra = (p.get("parent_cpu") or 0.0) if cfg.profiler == "tachyon" else 0.0
        return float(p["cpu"]) + float(extra)

    row["cpu"] = _q([p["cpu"] / b["cpu"] for b, p in ok])
    row["wall"] = _q([p["wall"] / b["wall"] for b, p in ok])
    row["tree_window"] = _q([prof_cpu_window(p) / b["cpu"] for b, p in ok])
    row["tree_launch"] = _q([p["tree_cpu"] / b["tree_cpu"] for b, p in ok])
    row["base_cpu"] = statistics.median(b["cpu"] for b, _ in ok)
    row["base_tree_cpu"] = statistics.median(b["tree_cpu"] for b, _ in ok)
    row["runs"] = [{k: p.get(k) for k in ("cpu", "wall", "parent_cpu", "tree_cpu", "samples", "stacks", "passes",
                                          "seconds", "passes_per_s")} for _, p in ok]
    row["on_cpu_fraction"] = _q([p["cpu"] / p["wall"] for _, p in ok if p.get("wall")])
    if cfg.profiler == "tachyon":
        # The profiler's CPU per sampling pass during the window (one pass reads every thread's stack).
        row["profiler_us_per_pass"] = _q([1e6 * p["parent_cpu"] / (p["wall"] * p["passes_per_s"]) for _, p in ok
                                          if p.get("parent_cpu") and p.get("passes_per_s") and p.get("wall")])
        row["profiler_cpu_pct"] = _q([100 * (p.get("parent_cpu") or 0.0) / b["cpu"] for b, p in ok])
        rates = [p["passes_per_s"] for _, p in ok if p.get("passes_per_s")]
        row["passes_per_s"] = _q(rates)
        row["stacks_per_s"] = _q([p["stacks"] / p["seconds"] for _, p in ok if p.get("seconds")])
        row["missed_pct"] = _q([100 * p["missed"] / p["expected"] for _, p in ok if p.get("expected")])
    else:
        row["stacks_per_s"] = _q([p["samples"] / p["wall"] for _, p in ok if p.get("wall")])
        row["samples_per_cpu_s"] = _q([p["samples"] / p["cpu"] for _, p in ok if p.get("cpu")])
        row["dropped"] = max(p.get("dropped", 0) for _, p in ok)
    return row


def run(python: str, names: list[str], cfgs: list[Config], reps: int, scale: float, split_s: float,
        log: Callable[[str], None]) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="ringprof-tachyon-")
    t0 = time.monotonic()
    rel = os.path.relpath(python, ROOT)
    shown = rel if not rel.startswith("..") else os.path.basename(python)
    out: dict[str, Any] = {"python": shown, "reps": reps, "scale": scale, "split_seconds": split_s,
                           "workloads": names, "load_start": os.getloadavg(), "rows": [], "split": []}
    ver = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                         text=True).stdout.strip()
    out["python_version"] = ver
    try:
        for wl in names:
            args = ["--workload", wl, "--scale", str(scale)]
            log(f"[{time.monotonic() - t0:5.0f}s] {wl}: warm-up")
            _one(python, None, args, tmp, "warm-b")
            _one(python, cfgs[0], args, tmp, "warm-t")
            pairs: dict[Config, list[tuple[dict[str, Any], dict[str, Any]]]] = {c: [] for c in cfgs}
            for rep in range(reps):
                for i, cfg in enumerate(cfgs):
                    order: list[Config | None] = [None, cfg] if rep % 2 == 0 else [cfg, None]
                    got = {}
                    for j, c in enumerate(order):
                        got[c] = _one(python, c, args, tmp, f"{wl}-{rep}-{i}-{j}")
                    pairs[cfg].append((got[None], got[cfg]))
                log(f"[{time.monotonic() - t0:5.0f}s] {wl}: rep {rep + 1}/{reps}")
            for cfg in cfgs:
                row = summarise(cfg, pairs[cfg])
                row["workload"] = wl
                out["rows"].append(row)
        if split_s > 0:
            for cfg in cfgs:
                log(f"[{time.monotonic() - t0:5.0f}s] split: {cfg.name}")
                r = _one(python, cfg, ["--split", str(split_s)], tmp, "split")
                row = {"config": cfg.name, "profiler": cfg.profiler, "mode": cfg.mode, "hz": cfg.hz}
                if "error" in r or "shares" not in r:
                    row["error"] = r.get("error", "no shares")
                else:
                    row["truth"] = r["truth"]
                    row["shares"] = r["shares"]
                    row["samples"] = r.get("split_samples", r.get("samples"))
                    row["error_pp"] = {k: 100 * (r["shares"][k] - r["truth"][k]) for k in r["truth"]}
                    row["max_abs_error_pp"] = max(abs(e) for e in row["error_pp"].values())
                out["split"].append(row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["load_end"] = os.getloadavg()
    out["seconds"] = time.monotonic() - t0
    return out


# ---------------------------------------------------------------------- rendering
def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several runs (e.g. ``--only tachyon`` and ``--only ringprof`` run side by side)."""
    if len(parts) == 1:
        return parts[0]
    order = [wl for p in parts for wl in p["workloads"]]
    rows = sorted((r for p in parts for r in p["rows"]), key=lambda r: order.index(r["workload"]))
    out = dict(parts[0])
    out["rows"] = rows
    out["split"] = [s for p in parts for s in p.get("split", [])]
    out["seconds"] = max(p["seconds"] for p in parts)
    return out


def _pct(q: dict[str, float], spread: bool = True) -> str:
    if not q:
        return "-"
    return ratio_pct(q["median"], q["min"], q["max"]) if spread else ratio_pct(q["median"])


def _rate(q: dict[str, float]) -> str:
    return count(q["median"]) if q else "-"


def render(res: dict[str, Any]) -> str:
    rows = []
    for r in res["rows"]:
        if not r.get("pairs"):
            rows.append([r["workload"], r["config"], f"unavailable: {'; '.join(e for e in r['errors'] if e)}",
                         *[""] * 5])
            continue
        own = f"{r['profiler_cpu_pct']['median']:.1f}%" if r.get("profiler_cpu_pct") else "in (a)"
        if r["profiler"] == "tachyon":
            rate = f"{_rate(r.get('stacks_per_s', {}))} ({_rate(r.get('passes_per_s', {}))} passes)"
        else:
            rate = f"{_rate(r.get('stacks_per_s', {}))} ({_rate(r.get('samples_per_cpu_s', {}))} per CPU-s)"
        rows.append([r["workload"], r["config"], _pct(r["cpu"]), _pct(r["wall"]), _pct(r["tree_window"]),
                     _pct(r["tree_launch"], spread=False), own, rate])
    lines = table(["workload", "profiler", "(a) CPU in workload", "(a) wall in workload",
                   "(b) whole-tree CPU, window", "(b) whole-tree CPU, launch", "profiler's own CPU",
                   "(c) samples/s"], rows, "ll" + "r" * 6)
    per_pass = [r for r in res["rows"] if r.get("profiler_us_per_pass")]
    if per_pass:
        rows = []
        for r in per_pass:
            q = r["profiler_us_per_pass"]
            f = r.get("on_cpu_fraction", {})
            rows.append([r["workload"], r["config"], f"{count(q['median'])} <sub>[{count(q['min'])}, "
                         f"{count(q['max'])}]</sub>", _rate(r.get("passes_per_s", {})),
                         f"{f.get('median', float('nan')):.2f}"])
        lines += ["", *table(["workload", "Tachyon", "its CPU per sampling pass (us)", "passes/s",
                              "target's CPU / wall in the window"], rows, "llrrr")]
    if res.get("split"):
        rows = []
        for s in res["split"]:
            if "error" in s:
                rows.append([s["config"], f"unavailable: {s['error']}", *[""] * 5])
                continue
            sh, tr = s["shares"], s["truth"]
            rows.append([s["config"], *(f"{100 * sh[k]:.1f}" for k in ("part_a", "part_b", "part_c")),
                         " / ".join(f"{100 * tr[k]:.1f}" for k in ("part_a", "part_b", "part_c")),
                         f"**{s['max_abs_error_pp']:.1f}**", str(s["samples"])])
        lines += ["", *table(["profiler", "part_a %", "part_b %", "part_c %", "truth (same run)", "max error (pp)",
                              "samples"], rows, "lrrrlrr")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tachyon", description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS), help="comma-separated workload names")
    p.add_argument("-n", "--reps", type=int, default=5, help="ABBA pairs per workload and configuration")
    p.add_argument("--scale", type=float, default=2.0, help="workload scale (1.0 is ~0.3 s of CPU)")
    p.add_argument("--rates", default="1000,100", help="sampling rates in Hz (Tachyon's default is 1000)")
    p.add_argument("--split", type=float, default=3.0, help="seconds of the 50/30/20 split per configuration "
                                                            "(0: skip)")
    p.add_argument("--only", choices=("tachyon", "ringprof"), help="one profiler's configurations only")
    p.add_argument("--python", default=sys.executable, help="interpreter for every process (default: this one)")
    p.add_argument("--json", metavar="PATH", help="write everything measured as JSON")
    p.add_argument("--render", nargs="+", metavar="JSON",
                   help="print the Markdown tables of earlier --json files (e.g. the two --only halves) and exit")
    ns = p.parse_args(argv)
    if ns.render:
        parts = read_json_files(ns.render, "benchmarks.tachyon")
        if parts is None:
            return 2
        try:
            print(render(merge(parts)))
        except (ValueError, KeyError) as exc:
            print(f"benchmarks.tachyon: cannot render {' '.join(ns.render)}: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        rates = tuple(int(x) for x in ns.rates.split(",") if x.strip())
    except ValueError:
        p.error(f"--rates must be integers in Hz: {ns.rates!r}")
    if ns.reps < 3 or ns.scale <= 0 or not rates or min(rates) <= 0:
        p.error("need --reps >= 3, a positive --scale and positive --rates")
    if ns.json and not check_writable(ns.json, "benchmarks.tachyon"):  # fail now, not after half an hour
        return 2
    why = tachyon_available(ns.python)
    if why:
        print(f"benchmarks.tachyon: {why}", file=sys.stderr)
        return 2
    cfgs = [c for c in configs(rates) if ns.only in (None, c.profiler)]
    names = [n.strip() for n in ns.workloads.split(",") if n.strip()]
    res = run(ns.python, names, cfgs, ns.reps, ns.scale, ns.split,
              log=lambda m: print(m, file=sys.stderr, flush=True))
    if ns.json:
        with open(ns.json, "w") as fh:
            json.dump(res, fh, indent=1)
    print(render(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
