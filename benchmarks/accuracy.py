"""Accuracy: does each profiler attribute time where it really went?

1. **Known split.**  A driver calls three functions in small interleaved chunks:
   ``part_a`` (call-heavy: a tiny helper per iteration), ``part_b`` (an inline
   arithmetic loop) and ``part_c`` (builtins: sorting and joining), with chunk
   sizes calibrated so that, *unprofiled*, they take 50 / 30 / 20 % of the CPU
   time (random order and +-40 % size jitter per round, so that no chunk
   period can phase-lock with a sampling period).  The truth is re-measured (CPU time of each part, unprofiled, in the
   same process) right before and after the profilers run.  Each profiler's
   share of ``part_x`` is its inclusive time in that function divided by the
   three parts' sum; the error is the largest absolute difference from the
   truth, in percentage points (pp).  Samplers run ~3 s (sampling error at
   100 Hz is then ~2.5 pp), deterministic profilers ~0.6 s of unprofiled work.
2. **Top-10 agreement with py-spy.**  ringprof (cpu, 250 Hz) and py-spy
   (250 Hz, attached from outside) record the *same* run of a pyperformance
   workload at the same time; the top-10 functions by self time are compared
   (Jaccard index of the two sets, and the sum of |self-share differences|
   over their union).  Functions are identified by (file basename, bare name).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from . import peers, workloads

# ---------------------------------------------------------------------- the split workload
_WEIGHTS = {"part_a": 0.5, "part_b": 0.3, "part_c": 0.2}
_KEYS = {name: ("accuracy.py", name) for name in _WEIGHTS}


def _helper(i: int) -> int:
    return (i * 3) & 15


def part_a(n: int) -> int:
    """Call-heavy: one Python call per iteration."""
    s = 0
    for i in range(n):
        s += _helper(i)
    return s


def part_b(n: int) -> int:
    """Inline arithmetic, no calls."""
    s = 0
    for i in range(n):
        s += (i * 3) & 15
    return s


_WORDS = [f"w{(i * 7919) % 10007:05d}" for i in range(400)]


def part_c(n: int) -> int:
    """Builtins: time spent in C called from this frame."""
    s = 0
    for _ in range(n):
        s += len("".join(sorted(_WORDS)))
    return s


_PARTS: dict[str, Callable[[int], int]] = {"part_a": part_a, "part_b": part_b, "part_c": part_c}


def _unit_cost(fn: Callable[[int], int], n: int, reps: int = 5) -> float:
    ts = []
    for _ in range(reps):
        c0 = time.process_time()
        fn(n)
        ts.append(time.process_time() - c0)
    return statistics.median(ts) / n


def calibrate(chunk_s: float = 0.004) -> dict[str, int]:
    """Chunk sizes so that one round (a, b, c) is 50/30/20 % of ``chunk_s`` CPU seconds."""
    probe = {"part_a": 20000, "part_b": 20000, "part_c": 100}
    return {name: max(1, round(_WEIGHTS[name] * chunk_s / _unit_cost(fn, probe[name])))
            for name, fn in _PARTS.items()}


def schedule(sizes: dict[str, int], rounds: int, seed: int = 7) -> list[tuple[str, int]]:
    """The chunks to run: each round runs the three parts in a random order with
    sizes jittered +-40 %.  A fixed 4 ms a/b/c cycle would phase-lock with a
    4 ms (250 Hz) or 10 ms (100 Hz) sampling tick and turn sampling error into
    bias; a random schedule keeps the comparison about the profilers."""
    import random

    rng = random.Random(seed)
    out = []
    names = list(_PARTS)
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            out.append((name, max(1, round(sizes[name] * rng.uniform(0.6, 1.4)))))
    return out


def split_driver(chunks: list[tuple[str, int]]) -> None:
    a, b, c = part_a, part_b, part_c
    for name, n in chunks:
        if name == "part_a":
            a(n)
        elif name == "part_b":
            b(n)
        else:
            c(n)


def truth(chunks: list[tuple[str, int]]) -> dict[str, float]:
    """Measured CPU shares of the three parts, unprofiled (a timer around each chunk)."""
    tot = dict.fromkeys(_PARTS, 0.0)
    clock = time.process_time
    for name, n in chunks:
        fn = _PARTS[name]
        c0 = clock()
        fn(n)
        tot[name] += clock() - c0
    s = sum(tot.values())
    return {k: v / s for k, v in tot.items()}


def _split_config() -> list[tuple[Callable[[], peers.Adapter], float]]:
    """(adapter factory, seconds of unprofiled work) for the known-split test."""
    return [
        (lambda: peers.Ringprof("cpu", 100), 3.0),
        (lambda: peers.Ringprof("cpu", 250), 3.0),
        (lambda: peers.Ringprof("wall", 1000), 3.0),
        (peers.CProfile, 0.6),
        (peers.Pyinstrument, 1.5),
        (peers.Yappi, 0.6),
        (lambda: peers.PySpy(100), 3.0),
    ]


def known_split(quick: bool = False, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    chunk_s = 0.004
    sizes = calibrate(chunk_s)
    t_before = truth(schedule(sizes, 100 if quick else 250, seed=1))
    results = []
    for factory, seconds in _split_config():
        adapter = factory()
        rounds = max(10, int(seconds * (0.4 if quick else 1.0) / chunk_s))
        if log:
            log(f"accuracy: split under {adapter.name}")
        row: dict[str, Any] = {"profiler": adapter.name, "peer": adapter.peer, "rounds": rounds}
        try:
            adapter.start()
            try:
                split_driver(schedule(sizes, rounds))
            finally:
                info = adapter.stop()
            sh = adapter.shares(_KEYS.values())
            cleanup = getattr(adapter, "cleanup", None)
            if cleanup:
                cleanup()
        except peers.Unavailable as exc:
            row["error"] = str(exc)
            results.append(row)
            continue
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
            results.append(row)
            continue
        parts = {name: sh.get(_KEYS[name], 0.0) for name in _PARTS}
        s = sum(parts.values())
        row["shares"] = {k: (v / s if s else 0.0) for k, v in parts.items()}
        row["samples"] = info.get("samples")
        results.append(row)
    t_after = truth(schedule(sizes, 100 if quick else 250, seed=2))
    true = {k: (t_before[k] + t_after[k]) / 2 for k in _PARTS}
    for row in results:
        if "shares" in row:
            errs = {k: 100 * (row["shares"][k] - true[k]) for k in _PARTS}
            row["error_pp"] = errs
            row["max_abs_error_pp"] = max(abs(e) for e in errs.values())
    return {"sizes": sizes, "truth": true, "truth_before": t_before, "truth_after": t_after,
            "target": _WEIGHTS, "rows": results}


# ---------------------------------------------------------------------- top-10 agreement
def _exclude(key: tuple[str, str]) -> bool:
    # The harness and profiler plumbing, not the workload.
    return key[0] in ("threading.py", "profile.py", "resolve.py", "accuracy.py", "peers.py") or key[1] in (
        "<module>", "_bootstrap", "_bootstrap_inner")


def top10(shares: dict[tuple[str, str], float]) -> list[tuple[tuple[str, str], float]]:
    items = [(k, v) for k, v in shares.items() if not _exclude(k)]
    return sorted(items, key=lambda kv: -kv[1])[:10]


def agreement(workload: str, seconds: float = 5.0, hz: int = 250) -> dict[str, Any]:
    avail = workloads.available()
    if workload not in avail:
        return {"workload": workload, "error": workloads.SKIPPED.get(workload, "unknown workload")}
    w = avail[workload]
    # Scale for ~`seconds` of CPU.
    c0 = time.process_time()
    w.fn(0.3)
    per_unit = (time.process_time() - c0) / 0.3
    scale = seconds / per_unit
    spy = peers.PySpy(hz)
    ring = peers.Ringprof("cpu", hz)
    try:
        spy.start()
    except peers.Unavailable as exc:
        return {"workload": workload, "error": str(exc)}
    ring.start()
    try:
        w.fn(scale)
    finally:
        rinfo = ring.stop()
        sinfo = spy.stop()
    # The workload runs on the main thread; py-spy also reports our helper threads
    # (ringprof's drain thread, the py-spy output reader) when it thinks they are busy.
    spy.raw = {st: n for st, n in spy.raw.items() if st and st[0] != ("threading.py", "_bootstrap")}
    a = top10(ring.self_shares())
    b = top10(spy.self_shares())
    sa, sb = {k for k, _ in a}, {k for k, _ in b}
    ra, rb = ring.self_shares(), spy.self_shares()
    union = sa | sb
    return {
        "workload": workload, "hz": hz, "seconds": seconds,
        "ringprof_samples": rinfo.get("samples"), "pyspy_samples": sinfo.get("samples"),
        "jaccard": len(sa & sb) / len(union) if union else 1.0,
        "overlap": len(sa & sb),
        "sum_abs_diff_pp": 100 * sum(abs(ra.get(k, 0.0) - rb.get(k, 0.0)) for k in union),
        "ringprof_top10": [[f"{k[1]} ({k[0]})", round(100 * v, 2)] for k, v in a],
        "pyspy_top10": [[f"{k[1]} ({k[0]})", round(100 * v, 2)] for k, v in b],
    }


def run_accuracy(quick: bool = False, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"split": known_split(quick, log)}
    out["agreement"] = []
    for name in ("pp_raytrace", "pp_richards"):
        if log:
            log(f"accuracy: top-10 agreement on {name}")
        try:
            out["agreement"].append(agreement(name, seconds=2.0 if quick else 5.0))
        except Exception as exc:
            out["agreement"].append({"workload": name, "error": f"{type(exc).__name__}: {exc}"})
    return out


def format_accuracy(acc: dict[str, Any]) -> str:
    sp = acc.get("split", {})
    t = sp.get("truth", {})
    lines = [f"known split: truth a/b/c = {100 * t.get('part_a', 0):.1f} / {100 * t.get('part_b', 0):.1f} / "
             f"{100 * t.get('part_c', 0):.1f} %"]
    for r in sp.get("rows", []):
        if "error" in r:
            lines.append(f"  {r['profiler']:<22} unavailable: {r['error']}")
            continue
        s = r["shares"]
        lines.append(f"  {r['profiler']:<22} {100 * s['part_a']:5.1f} / {100 * s['part_b']:5.1f} / "
                     f"{100 * s['part_c']:5.1f} %   max error {r['max_abs_error_pp']:4.1f} pp")
    for a in acc.get("agreement", []):
        if "error" in a:
            lines.append(f"top-10 agreement {a['workload']}: unavailable: {a['error']}")
            continue
        lines.append(f"top-10 self-time agreement ringprof vs py-spy on {a['workload']}: {a['overlap']}/10 shared, "
                     f"Jaccard {a['jaccard']:.2f}, sum |diff| {a['sum_abs_diff_pp']:.1f} pp "
                     f"({a['ringprof_samples']} vs {a['pyspy_samples']} samples)")
    return "\n".join(lines)


if __name__ == "__main__":
    res = run_accuracy(quick="--quick" in sys.argv, log=lambda s: print(s, file=sys.stderr, flush=True))
    print(format_accuracy(res))
