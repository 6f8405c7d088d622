#!/usr/bin/env python3
"""Regenerate benchmarks/RESULTS.md and benchmarks/overhead.png.

    python tools/bench_report.py                      # run the full suite (~25 min), then write the report
    python tools/bench_report.py --quick              # the quick suite (~9 min)
    python tools/bench_report.py --from results.json  # only re-render from a `benchmarks.run --json` file

The suite runs in a child process (``python -m benchmarks.run --json``), so
the report tool's own imports (matplotlib) never share the measured process.
The raw data is kept beside the report as benchmarks/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")
COMMAND = "python3 -m venv .venv && .venv/bin/pip install -e '.[bench]' && .venv/bin/python tools/bench_report.py"

RINGPROF_DEFAULT = "ringprof cpu 100Hz"
RINGPROF_WALL = "ringprof wall 1kHz"


# ---------------------------------------------------------------------- helpers
def pct(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{100 * (ratio - 1):+.1f}%"


def cell(row: dict[str, Any], kind: str) -> str:
    if row.get("error"):
        return "unavailable"
    return (f"{pct(row[f'{kind}_ratio'])} <sub>[{pct(row[f'{kind}_q1'])}, {pct(row[f'{kind}_q3'])}]</sub>")


def md_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or ("l" + "r" * (len(header) - 1))
    sep = ["---:" if a == "r" else ":---" for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def configs_in_order(rows: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for r in rows:
        if r["config"] not in seen:
            seen.append(r["config"])
    return seen


def workloads_in_order(rows: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for r in rows:
        if r["workload"] not in seen:
            seen.append(r["workload"])
    return seen


def floor_ns(res: dict[str, Any]) -> float | None:
    try:
        return float(res["micro"]["floor"]["variants"]["null handler"]["ns_per_signal"])
    except (KeyError, TypeError):
        return None


def body_ns(res: dict[str, Any], mode: str = "cpu", depth: str = "30") -> float | None:
    try:
        return float(res["micro"]["handler"]["modes"][mode]["depths"][depth]["ns_per_sample_median_window"])
    except (KeyError, TypeError):
        return None


def accounted(row: dict[str, Any], fl: float | None, body: float | None) -> float | None:
    """(signals x floor + samples x body + drain thread CPU) / unprofiled CPU."""
    ex = row.get("extra", {})
    if fl is None or body is None or not row.get("base_cpu") or "samples" not in ex:
        return None
    signals = ex.get("samples", 0) + ex.get("unattributed", 0)
    cost = signals * fl * 1e-9 + ex["samples"] * body * 1e-9 + (ex.get("drain_cpu_s") or 0.0)
    return cost / row["base_cpu"]


# ---------------------------------------------------------------------- the report
def render(res: dict[str, Any]) -> str:
    env = res.get("environment", {})
    ov = res.get("overhead", {})
    rows = ov.get("rows", [])
    fl = floor_ns(res)
    body = body_ns(res)
    body_wall = body_ns(res, "wall")
    out: list[str] = []
    w = out.append
    w("# ringprof: overhead and accuracy benchmarks\n")
    w("Regenerate everything (this file, `overhead.png`, `results.json`) from a clean clone:\n")
    w(f"    {COMMAND}\n")
    w("Faster variants: `python tools/bench_report.py --quick`; only the budget gate: "
      "`python -m benchmarks.check --quick`; see [README.md](README.md) for the method.\n")
    la0 = env.get("loadavg_start", [None])[0]
    la1 = env.get("loadavg_end", [None])[0]
    w(f"Run: {env.get('date')}, commit `{env.get('commit')}`, Python {env.get('python')} on {env.get('platform')}, "
      f"{env.get('cpus')} CPUs ({env.get('cpu')}). Load average {la0:.1f} at the start and {la1:.1f} at the end "
      f"of the run: the machine was shared with other work, so single timings vary by +-20 % and only medians of "
      f"interleaved pairs are shown. {'QUICK run (fewer pairs, smaller scale). ' if res.get('quick') else ''}"
      f"Suite time {res.get('seconds', 0) / 60:.0f} min. Versions: "
      + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items() if v) + ".\n")

    # ---- summary against the goals
    w("## Summary against the goals\n")
    summ: list[list[str]] = []

    def ring_rows(config: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["config"] == config and not r.get("error")]

    def projection(mode: str, hz: float) -> str:
        """One thread busy on a dedicated core for a long time: rate x (floor + body) + idle drain thread."""
        b = body_ns(res, mode)
        try:
            drain = float(res["micro"]["drain_idle"][mode]["pct_of_a_core"])
        except (KeyError, TypeError):
            drain = None
        if fl is None or b is None:
            return "n/a"
        sig = 100 * hz * (fl + b) * 1e-9
        txt = f"{sig + (drain or 0):.2f}% = {100 * hz * fl * 1e-9:.2f}% floor + {100 * hz * b * 1e-9:.2f}% body"
        return txt + (f" + {drain:.2f}% drain" if drain is not None else "")

    for config, goal in ((RINGPROF_DEFAULT, 0.5), (RINGPROF_WALL, 3.0)):
        rr = ring_rows(config)
        if not rr:
            continue
        cpu = [100 * (r["cpu_ratio"] - 1) for r in rr]
        acc = [a for a in (accounted(r, fl, body_wall if "wall" in config else body) for r in rr) if a is not None]
        worst = max(rr, key=lambda r: r["cpu_ratio"])
        acc_txt = (f"{100 * statistics.median(acc):.2f}% median, {100 * max(acc):.2f}% max" if acc else "n/a")
        verdict_m = "meets" if statistics.median(cpu) <= goal else "misses"
        verdict_a = "meets" if acc and max(acc) * 100 <= goal else "misses" if acc else "?"
        proj = projection("wall" if "wall" in config else "cpu", 1000.0 if "wall" in config else 100.0)
        verdict_p = "?" if proj == "n/a" else ("meets" if float(proj.split("%")[0]) <= goal else "misses")
        mode, hz = ("wall", 1000.0) if "wall" in config else ("cpu", 100.0)
        summ.append([f"{config}: <= {goal:g}% overhead",
                     f"{statistics.median(cpu):+.1f}% median over {len(rr)} workloads (worst {worst['workload']} "
                     f"{100 * (worst['cpu_ratio'] - 1):+.1f}%)",
                     acc_txt, projection(mode, hz),
                     f"measured: {verdict_m}; accounted: {verdict_a}; projection: {verdict_p}"])
    if body is not None:
        h = res["micro"]["handler"]["modes"]
        depths = ", ".join(f"{d}: {v['ns_per_sample_median_window']:.0f}"
                           for d, v in h["cpu"]["depths"].items())
        summ.append(["handler body <= 2 us on top of the signal floor", f"{depths} ns (depth: cpu-mode body)",
                     f"floor {fl / 1000:.1f} us/signal" if fl else "floor n/a", "",
                     "meets" if max(v["ns_per_sample_median_window"] for v in h["cpu"]["depths"].values()) <= 2000
                     else "misses"])
    w(md_table(["goal", "measured CPU overhead (median of pairs)", "accounted, these runs",
                "steady-state projection", "verdict"], summ, "lllll"))
    w("")
    w("*Measured* is the median over workloads of each workload's median per-pair CPU-time ratio; on this shared "
      "machine its resolution is about +-2-5 %, far coarser than a 0.5 % goal. *Accounted* adds up what the "
      "profiler demonstrably spent, per run: signals x the signal-delivery floor (null handler, below) + samples x "
      "the handler body (cpu-mode, depth 30) + the drain thread's own CPU time (its thread CPU clock), divided by "
      "the unprofiled CPU time. It leaves out second-order effects (cache pollution, GIL hand-offs to the drain "
      "thread) but is precise to well under 0.1 %. In these short runs (a fresh profile every 0.3 s, so every stack "
      "is new to the resolver) the drain thread is the largest part. *Steady-state projection*: one thread busy on "
      "its own core for a long time: rate x (floor + body) + the drain thread's idle cost per second "
      "(micro-benchmarks).\n")

    # ---- overhead tables
    configs = configs_in_order(rows)
    wls = workloads_in_order(rows)
    by = {(r["workload"], r["config"]): r for r in rows}
    for kind, title in (("cpu", "CPU time (process, all threads)"), ("wall", "wall time")):
        w(f"## Overhead: {title}\n")
        w(f"Median of {ov.get('reps')} per-pair ratios (profiled / unprofiled, adjacent runs, order alternating), "
          "<sub>[inter-quartile range]</sub>. Workload scale "
          f"{ov.get('scale')}; unprofiled CPU seconds per run in the second column.\n")
        trs = []
        for wl in wls:
            base = next((by[(wl, c)]["base_cpu"] for c in configs if (wl, c) in by and not by[(wl, c)].get("error")),
                        None)
            trs.append([wl, f"{base:.2f}" if base else "-"]
                       + [cell(by[(wl, c)], kind) if (wl, c) in by else "-" for c in configs])
        w(md_table(["workload", "CPU s", *configs], trs))
        w("")
    skipped = ov.get("skipped_workloads") or {}
    for wl, why in skipped.items():
        w(f"- skipped workload {wl}: {why}")
    errs = sorted({(r["config"], r["error"]) for r in rows if r.get("error")})
    for config, err in errs:
        w(f"- {config} unavailable: {err}")
    if skipped or errs:
        w("")

    # ---- ringprof accounting
    w("## What ringprof's overhead is made of\n")
    w(f"Per run medians. Floor = {fl / 1000:.1f} us of CPU per timer signal (null handler, see micro-benchmarks); "
      f"body = {body or 0:.0f} ns (cpu mode) / {body_wall or 0:.0f} ns (wall mode) per sample at depth 30. "
      "`handler_ns` is ringprof's own accounting (meta stats), which is wall-clock time inside the handler and "
      "includes preemption by other tenants (see notes).\n" if fl else "Floor unavailable.\n")
    trs = []
    for r in rows:
        if r["peer"] != "ringprof" or r.get("error"):
            continue
        ex = r.get("extra", {})
        a = accounted(r, fl, body_wall if "wall" in r["config"] else body)
        trs.append([r["workload"], r["config"], f"{ex.get('samples', 0):.0f}",
                    f"{ex.get('samples_per_cpu_s', 0):.0f}",
                    f"{(ex.get('handler_ns_per_sample') or 0) / 1000:.1f}",
                    f"{ex.get('dropped', 0):.0f}",
                    f"{ex.get('drain_cpu_pct', 0):.2f}%",
                    f"{100 * a:.2f}%" if a is not None else "n/a",
                    pct(r["cpu_ratio"])])
    w(md_table(["workload", "config", "samples", "samples / CPU s", "handler_ns/sample (us, self-reported)",
                "dropped", "drain thread CPU", "accounted", "measured CPU"], trs, "llrrrrrrr"))
    w("")
    spy = [r for r in rows if r["peer"] == "py-spy" and not r.get("error")]
    if spy:
        w("py-spy samples from outside: its own process's CPU (not in the table above) was, per workload, "
          + ", ".join(f"{r['workload']} {r['extra'].get('external_cpu_pct', 0):.1f}%" for r in spy)
          + " of the workload's CPU time; blocking mode (the default) pauses the target for each sample, which "
            "shows in wall time.\n")

    # ---- micro
    m = res.get("micro", {})
    if m:
        w("## Micro-benchmarks\n")
        f = m.get("floor", {})
        if "variants" in f:
            w(f"**Signal cost** at {f['hz']:g} Hz on a pure-Python burn ({f['burn_cpu_s']:.2f} s CPU), "
              f"{f['reps']} adjacent pairs: (CPU with - CPU without) / signals. The null handler is a C "
              "SA_SIGINFO handler that only counts, on the same kind of per-thread `timer_create` timer ringprof "
              "uses: it is the delivery floor (kernel entry/exit, signal frame, TLB/cache disturbance).\n")
            trs = []
            for name, v in f["variants"].items():
                trs.append([name, f"{(v['ns_per_signal'] or 0) / 1000:.1f}",
                            f"[{(v['q1'] or 0) / 1000:.1f}, {(v['q3'] or 0) / 1000:.1f}]",
                            f"{v['signals']:.0f}",
                            f"{v['above_floor_ns'] / 1000:+.1f}" if v.get("above_floor_ns") is not None else "-",
                            f"{v['body_ns'] / 1000:.1f}" if v.get("body_ns") is not None else "-",
                            f"{v['drain_ns_per_sample'] / 1000:.1f}" if v.get("drain_ns_per_sample") else "-"])
            w(md_table(["variant", "us CPU / signal", "IQR", "signals / run", "above floor (us)",
                        "self-reported body (us)", "drain thread (us / sample)"], trs, "lrrrrrr"))
            w("")
        h = m.get("handler", {})
        if "modes" in h:
            w("**Handler body vs stack depth** (ns per sample from ringprof's own accounting, median of "
              f"{h['windows']} windows [IQR], minimum window). The sampled thread burns CPU at that Python depth.\n")
            trs = []
            for mode, r in h["modes"].items():
                for d, v in r["depths"].items():
                    trs.append([f"{mode} {r['hz']} Hz", d, f"{v['python_depth']:.0f}",
                                f"{v['ns_per_sample_median_window']:.0f}", f"[{v['q1']:.0f}, {v['q3']:.0f}]",
                                f"{v['min_window']:.0f}", f"{v['ns_per_sample_mean_all']:.0f}", f"{v['samples']}"])
            w(md_table(["timer", "depth", "python depth seen", "ns / sample", "IQR", "min window", "mean of all",
                        "samples"], trs, "lrrrrrrr"))
            w("")
        d = m.get("drain", {})
        if "parse_samples_per_s" in d:
            dc = d.get("drain_copy", {})
            w(f"**Drain + resolve** (synthetic buffers of real frames, depth {d['depth']}, {d['records']:,} "
              "records):\n")
            trs = [["`_sampler.parse` (split records, index raw stacks)", f"{d['parse_samples_per_s']:,.0f}"],
                   ["`Resolver.ingest`, stacks already known (steady state)", f"{d['ingest_warm_samples_per_s']:,.0f}"],
                   ["`Resolver.ingest`, every stack new (cold)", f"{d['ingest_cold_samples_per_s']:,.0f}"],
                   ["`_sampler.drain()` copy out of 4 live rings", f"{dc.get('records_per_s') or 0:,.0f}"]]
            w(md_table(["step", "samples / s"], trs))
            w("")
            known = d.get("small_ingest_us_vs_known_stacks", {})
            if known:
                w("One steady-state drain of 20 samples, after N unique stacks were seen: "
                  + ", ".join(f"N = {int(k):,}: {v:.0f} us" for k, v in known.items())
                  + " (grows with N: see notes).\n")
        mem = m.get("memory", {})
        if "depths" in mem:
            w("**Memory per unique stack** (tracemalloc around resolving "
              f"{mem['unique_stacks']:,} unique stacks: resolver index + model tables, per-sample columns excluded): "
              + ", ".join(f"depth {k}: {v['bytes_per_unique_stack']:.0f} B" for k, v in mem["depths"].items())
              + f"; plus {next(iter(mem['depths'].values()))['bytes_per_sample_columns']:.0f} B per sample "
                "(numpy columns).\n")
        rates = m.get("rates")
        if isinstance(rates, list) and rates:
            w("**Effective sampling rate** (a thread burning CPU at depth ~25; cpu: per CPU second, wall: per "
              "thread-second). `weighted` counts timer overruns (`weight`), i.e. expirations the kernel merged.\n")
            trs = [[r["mode"], f"{r['requested_hz']:g}", str(r["threads"]), f"{r['samples_per_s']:.0f}",
                    f"{r['weight_per_s']:.0f}", str(r["dropped"])] for r in rates]
            w(md_table(["mode", "requested Hz", "threads", "samples / s", "weighted / s", "dropped"], trs,
                       "lrrrrr"))
            w("")
        di = m.get("drain_idle", {})
        if di.get("cpu", {}).get("us_per_wake") is not None:
            w("**Drain thread, idle process** (profile enabled, main thread sleeping "
              f"{di['seconds']:g} s; the drain thread wakes every 0.1 s): "
              + "; ".join(f"{mode} mode: {di[mode]['us_per_wake']:.0f} us CPU per wake = "
                          f"{di[mode]['pct_of_a_core']:.2f}% of a core ({di[mode]['samples']} samples)"
                          for mode in ("cpu", "wall") if di.get(mode)) + "."
              + (f" ({di['note']})" if di.get("note") else "") + "\n")
        ss = m.get("startstop", {})
        if "enable_disable_wall_ms" in ss:
            w(f"**enable() + disable()** of an idle profile: {ss['enable_disable_wall_ms']:.2f} ms wall, "
              f"{ss['enable_disable_cpu_ms']:.2f} ms CPU (median of {ss['reps']}).\n")
        for k, v in m.items():
            if isinstance(v, dict) and "error" in v:
                w(f"- micro `{k}` failed: {v['error']}")

    # ---- accuracy
    acc = res.get("accuracy", {})
    if acc:
        w("## Accuracy\n")
        sp = acc.get("split", {})
        t = sp.get("truth", {})
        w("**Known split.** `part_a` (call-heavy), `part_b` (inline loop), `part_c` (builtins) run in random "
          "interleaved chunks calibrated to 50/30/20 % of CPU; the truth is re-measured unprofiled (CPU timers "
          f"around every chunk): **{100 * t.get('part_a', 0):.1f} / {100 * t.get('part_b', 0):.1f} / "
          f"{100 * t.get('part_c', 0):.1f} %**. Each profiler's inclusive share of the three; error = largest "
          "absolute difference, in percentage points. Sampling error alone is about 100*sqrt(p(1-p)/n) pp for n "
          "samples.\n")
        trs = []
        for r in sp.get("rows", []):
            if "error" in r:
                trs.append([r["profiler"], "unavailable", "", "", "", r["error"][:80]])
                continue
            s = r["shares"]
            n = r.get("samples")
            sig = f"{100 * (0.25 / n) ** 0.5:.1f}" if isinstance(n, int | float) and n else "-"
            trs.append([r["profiler"], f"{100 * s['part_a']:.1f}", f"{100 * s['part_b']:.1f}",
                        f"{100 * s['part_c']:.1f}", f"**{r['max_abs_error_pp']:.1f}**",
                        f"{n if n is not None else '-'} samples, 1-sigma {sig} pp" if n else "deterministic"])
        w(md_table(["profiler", "part_a %", "part_b %", "part_c %", "max error (pp)", "notes"], trs, "lrrrrl"))
        w("")
        for a in acc.get("agreement", []):
            if "error" in a:
                w(f"- top-10 agreement on {a['workload']}: unavailable: {a['error']}")
                continue
            w(f"**Top-10 self time, ringprof vs py-spy, {a['workload']}** (one run, both sampling it at {a['hz']} Hz "
              f"at the same time; {a['ringprof_samples']} vs {a['pyspy_samples']} samples): {a['overlap']}/10 "
              f"functions shared, Jaccard {a['jaccard']:.2f}, sum of |self-share differences| over the union "
              f"{a['sum_abs_diff_pp']:.1f} pp.\n")
            trs = []
            for i in range(max(len(a["ringprof_top10"]), len(a["pyspy_top10"]))):
                ra = a["ringprof_top10"][i] if i < len(a["ringprof_top10"]) else ["", 0]
                rb = a["pyspy_top10"][i] if i < len(a["pyspy_top10"]) else ["", 0]
                trs.append([str(i + 1), f"`{ra[0]}`", f"{ra[1]:.1f}", f"`{rb[0]}`", f"{rb[1]:.1f}"])
            w(md_table(["#", "ringprof", "self %", "py-spy", "self %"], trs, "rlrlr"))
            w("")
    notes = os.path.join(BENCH, "NOTES.md")
    if os.path.exists(notes):
        with open(notes) as fh:
            w(fh.read().rstrip() + "\n")
    w("![overhead per workload and profiler](overhead.png)\n")
    return "\n".join(out)


KEPT_BEGIN = "<!-- kept:"
KEPT_END = "<!-- /kept -->"


def kept_sections(path: str) -> str:
    """Hand-kept blocks of an existing report (``<!-- kept: NAME -->`` ... ``<!-- /kept -->``).

    Sections measured by other commands (``benchmarks.tachyon``, ``benchmarks.versions``)
    live between these markers; regenerating the report keeps them, at the end.
    """
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError:
        return ""
    blocks = []
    pos = 0
    while (start := text.find(KEPT_BEGIN, pos)) >= 0:
        end = text.find(KEPT_END, start)
        if end < 0:
            break
        end += len(KEPT_END)
        blocks.append(text[start:end])
        pos = end
    return "\n\n".join(blocks) + "\n" if blocks else ""


# ---------------------------------------------------------------------- the chart
def chart(res: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in res.get("overhead", {}).get("rows", []) if not r.get("error")]
    wls = workloads_in_order(rows)
    configs = configs_in_order(rows)
    by = {(r["workload"], r["config"]): r for r in rows}
    ring = [c for c in configs if c.startswith("ringprof")]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(15, 12), gridspec_kw={"height_ratios": [1, 1.1]})
    x = np.arange(len(wls))
    cmap = plt.get_cmap("tab10")
    width = 0.8 / max(1, len(ring))
    top, bottom = 25.0, -5.0  # clip: wall 5 kHz on idle threads reaches +200 %; its value is written instead
    for i, c in enumerate(ring):
        med = [100 * (by[(wl, c)]["cpu_ratio"] - 1) if (wl, c) in by else np.nan for wl in wls]
        lo = [100 * (by[(wl, c)]["cpu_ratio"] - by[(wl, c)]["cpu_q1"]) if (wl, c) in by else 0 for wl in wls]
        hi = [100 * (by[(wl, c)]["cpu_q3"] - by[(wl, c)]["cpu_ratio"]) if (wl, c) in by else 0 for wl in wls]
        xs = x + (i - (len(ring) - 1) / 2) * width
        ax1.bar(xs, np.clip(med, bottom, top), width, yerr=[lo, hi], capsize=2, label=c, color=cmap(i),
                error_kw={"lw": 0.8})
        for xi, v in zip(xs, med, strict=True):
            if v == v and (v > top or v < bottom):
                ax1.text(xi, top - 0.5 if v > top else bottom + 0.5, f"{v:+.0f}%", rotation=90, ha="center",
                         va="top" if v > top else "bottom", fontsize=7,
                         bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    ax1.set_ylim(bottom, top)
    ax1.axhline(0, color="black", lw=0.8)
    ax1.axhline(0.5, color="green", ls="--", lw=1, label="goal 0.5% (cpu 100 Hz)")
    ax1.axhline(3, color="orange", ls="--", lw=1, label="goal 3% (wall 1 kHz)")
    ax1.axhline(10, color="red", ls=":", lw=1, label="gate 10%")
    ax1.set_xticks(x, wls, rotation=0)
    ax1.set_ylabel("CPU-time overhead, % (median, IQR bars)")
    ax1.set_title("ringprof: CPU-time overhead per workload (median of interleaved pairs, IQR bars; "
                  "clipped bars show their value)")
    ax1.legend(fontsize=8, ncol=8, loc="upper center", bbox_to_anchor=(0.5, -0.17), frameon=False)
    ax1.grid(axis="y", alpha=0.3)

    width = 0.8 / max(1, len(configs))
    for i, c in enumerate(configs):
        ratio = [by[(wl, c)]["cpu_ratio"] if (wl, c) in by else np.nan for wl in wls]
        ax2.bar(x + (i - (len(configs) - 1) / 2) * width, ratio, width, label=c, color=cmap(i % 10),
                bottom=0)
    ax2.set_yscale("log")
    ax2.axhline(1, color="black", lw=0.8)
    ymax = max(2.0, 1.3 * max((r["cpu_ratio"] for r in rows), default=2))
    ax2.set_ylim(0.9, ymax)
    ticks = [t for t in (1, 1.1, 1.25, 1.5, 2, 3, 5, 10, 20, 30, 50, 100) if t <= ymax]
    ax2.set_yticks(ticks, [f"{t:g}x" for t in ticks])
    ax2.minorticks_off()
    ax2.set_xticks(x, wls, rotation=0)
    ax2.set_ylabel("CPU time profiled / unprofiled (log)")
    ax2.set_title("All profilers: slowdown factor (CPU time, median); py-spy's own process CPU not included")
    ax2.legend(fontsize=8, ncol=8, loc="upper center", bbox_to_anchor=(0.5, -0.17), frameon=False)
    ax2.grid(axis="y", alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="src", metavar="JSON", help="render from this benchmarks.run --json output")
    p.add_argument("--quick", action="store_true", help="run the quick suite")
    p.add_argument("--out-dir", default=BENCH, help="where RESULTS.md, overhead.png, results.json go")
    p.add_argument("--no-chart", action="store_true")
    ns, rest = p.parse_known_args(argv)
    os.makedirs(ns.out_dir, exist_ok=True)
    data_path = os.path.join(ns.out_dir, "results.json")
    if ns.src:
        with open(ns.src) as fh:
            res = json.load(fh)
        if os.path.abspath(ns.src) != os.path.abspath(data_path):
            with open(data_path, "w") as fh:
                json.dump(res, fh, indent=1)
    else:
        cmd = [sys.executable, "-m", "benchmarks.run", "--json", data_path] + (["--quick"] if ns.quick else []) + rest
        print("running:", " ".join(cmd), file=sys.stderr, flush=True)
        rc = subprocess.run(cmd, cwd=ROOT).returncode
        if rc != 0:
            print(f"bench_report: the suite failed (exit {rc})", file=sys.stderr)
            return rc
        with open(data_path) as fh:
            res = json.load(fh)
    md = os.path.join(ns.out_dir, "RESULTS.md")
    kept = kept_sections(md)
    with open(md, "w") as fh:
        fh.write(render(res))
        if kept:
            fh.write("\n" + kept)
    print(f"wrote {md}")
    if not ns.no_chart:
        try:
            chart(res, os.path.join(ns.out_dir, "overhead.png"))
            print(f"wrote {os.path.join(ns.out_dir, 'overhead.png')}")
        except ImportError as exc:
            print(f"bench_report: no chart ({exc}); pip install matplotlib", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
