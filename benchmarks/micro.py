"""Micro-benchmarks of ringprof's parts.

* ``floor``: what one timer signal costs the profiled process, measured with a
  *null sampler*: a 20-line C library (compiled here with ``cc``, loaded with
  ctypes) that arms the same kind of per-thread POSIX timer ringprof uses
  (``timer_create`` + ``SIGEV_THREAD_ID``, CLOCK_MONOTONIC) with an empty
  SA_SIGINFO handler that only counts.  A fixed CPU burn is run unprofiled,
  under the null sampler and under ringprof (same rate, adjacent pairs,
  alternating order); (CPU with - CPU without) / signals is the cost of one
  signal.  The null sampler's number is the *delivery floor* (kernel + signal
  frame, nothing of ours); ringprof's minus the floor is what our handler body,
  drain and resolve add.
* ``handler``: the handler body in ns per sample vs Python stack depth, from
  ringprof's own accounting (``meta.stats.handler_ns / samples``).  The handler
  times itself with CLOCK_MONOTONIC, so a sample during which the thread was
  preempted counts the preemption too; the run is cut into short windows and
  the median window is reported, which removes those outliers.
* ``drain``: drain + resolve throughput in samples/s: real records captured
  from the sampler, multiplied into large synthetic buffers (valid code
  pointers, synthetic stacks), fed to ``Resolver.ingest`` warm (known stacks)
  and cold (every stack new); plus ``_sampler.drain()`` copy speed.
* ``memory``: bytes per unique stack (tracemalloc around resolving N unique
  stacks, minus the per-sample columns).
* ``rates``: effective sampling rate vs requested, drops, for cpu and wall
  timers on 1 and 4 threads.
* ``startstop``: the fixed cost of ``enable()`` + ``disable()``.
"""

from __future__ import annotations

import ctypes
import gc
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import ringprof

from .harness import quantiles

# ---------------------------------------------------------------------- burn
_BURN_SRC = "\n".join(
    f"def _burn{i}(n):\n    s = 0\n    for j in range(n):\n        s += j * {i + 1} % 7\n    return s\n"
    for i in range(4))
_ns: dict[str, Any] = {}
exec(compile(_BURN_SRC, "<ringprof-bench-burn>", "exec"), _ns)


def burn(iters: int) -> int:
    """A fixed amount of pure-Python CPU work (no allocation, constant stack)."""
    s = 0
    for i in range(4):
        s += _ns[f"_burn{i}"](iters // 4)
    return s


def _calibrate(seconds: float) -> int:
    """Iterations of :func:`burn` that take about ``seconds`` of CPU time."""
    n = 100_000
    while True:
        c0 = time.process_time()
        burn(n)
        dt = time.process_time() - c0
        if dt > 0.05:
            return max(1000, int(n * seconds / dt))
        n *= 4


# ---------------------------------------------------------------------- null sampler
_NULL_C = r"""
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static _Atomic unsigned long g_count;
static timer_t g_timer;
static struct sigaction g_old;

static void null_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)si; (void)uc;
    atomic_fetch_add_explicit(&g_count, 1, memory_order_relaxed);
}

/* Arm a per-thread timer on the calling thread, like ringprof does. */
int null_start(long interval_ns, int cpu_clock)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = null_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPROF, &sa, &g_old) != 0) return -1;
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(cpu_clock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &sev, &g_timer) != 0) return -2;
    struct itimerspec its;
    its.it_interval.tv_sec = its.it_value.tv_sec = interval_ns / 1000000000L;
    its.it_interval.tv_nsec = its.it_value.tv_nsec = interval_ns % 1000000000L;
    atomic_store(&g_count, 0);
    return timer_settime(g_timer, 0, &its, NULL) == 0 ? 0 : -3;
}

unsigned long null_stop(void)
{
    timer_delete(g_timer);
    struct sigaction ign;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPROF, &ign, NULL); /* discard a pending one before SIG_DFL comes back */
    sigaction(SIGPROF, &g_old, NULL);
    return atomic_load(&g_count);
}
"""

_null_lib: Any = None


def null_sampler() -> Any:
    """The compiled null sampler (ctypes CDLL); raises RuntimeError if it cannot be built."""
    global _null_lib
    if _null_lib is not None:
        return _null_lib
    d = tempfile.mkdtemp(prefix="ringprof-null-")
    src, lib = os.path.join(d, "null.c"), os.path.join(d, "libnull.so")
    with open(src, "w") as fh:
        fh.write(_NULL_C)
    cc = os.environ.get("CC", "cc")
    try:
        subprocess.run([cc, "-O2", "-shared", "-fPIC", src, "-o", lib, "-lrt"], check=True,
                       capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"cannot compile the null sampler with {cc!r}: {exc}") from None
    _null_lib = ctypes.CDLL(lib)
    _null_lib.null_start.argtypes = [ctypes.c_long, ctypes.c_int]
    _null_lib.null_stop.restype = ctypes.c_ulong
    return _null_lib


def floor(hz: float = 5000, reps: int = 9, seconds: float = 0.3) -> dict[str, Any]:
    """Per-signal CPU cost: null sampler (delivery floor) vs ringprof, same rate."""
    lib = null_sampler()
    iters = _calibrate(seconds)
    interval_ns = int(1e9 / hz)

    def none() -> tuple[float, int, dict[str, Any]]:
        c0 = time.process_time()
        burn(iters)
        return time.process_time() - c0, 0, {}

    def null() -> tuple[float, int, dict[str, Any]]:
        rc = lib.null_start(interval_ns, 0)
        if rc != 0:
            raise RuntimeError(f"null sampler failed to start ({rc})")
        c0 = time.process_time()
        burn(iters)
        c1 = time.process_time()
        return c1 - c0, int(lib.null_stop()), {}

    def ring(max_depth: int) -> Callable[[], tuple[float, int, dict[str, Any]]]:
        def run() -> tuple[float, int, dict[str, Any]]:
            p = ringprof.Profile(1.0 / hz, "wall", max_depth)
            p.enable()
            c0 = time.process_time()
            burn(iters)
            c1 = time.process_time()
            drain_cpu = _drain_thread_cpu(p)
            p.disable()
            s = p.data.meta["stats"]
            return c1 - c0, int(s["samples"]) + int(s["unattributed"]), {
                "handler_ns": int(s["handler_ns"]), "samples": int(s["samples"]), "drain_cpu": drain_cpu}
        return run

    variants = {"null handler": null, "ringprof max_depth=1": ring(1), "ringprof max_depth=128": ring(128)}
    per: dict[str, list[float]] = {k: [] for k in variants}
    body: dict[str, list[float]] = {k: [] for k in variants}
    drain: dict[str, list[float]] = {k: [] for k in variants}
    signals: dict[str, list[int]] = {k: [] for k in variants}
    base_cpu: list[float] = []
    none()
    for fn in variants.values():
        fn()  # warm-up
    for rep in range(reps):
        for name, fn in variants.items():
            gc.collect()
            pair = [none, fn] if rep % 2 == 0 else [fn, none]
            results = {id(f): f() for f in pair}
            b, (c, n, info) = results[id(none)][0], results[id(fn)]
            base_cpu.append(b)
            if n:
                per[name].append((c - b) / n * 1e9)
                signals[name].append(n)
                if info.get("samples"):
                    body[name].append(info["handler_ns"] / info["samples"])
                    if info.get("drain_cpu") is not None:
                        drain[name].append(info["drain_cpu"] / info["samples"] * 1e9)
    out: dict[str, Any] = {"hz": hz, "reps": reps, "burn_cpu_s": statistics.median(base_cpu),
                           "method": "CPU(with) - CPU(without) per signal, adjacent pairs, alternating order; "
                                     "CLOCK_MONOTONIC per-thread timer on the burning thread", "variants": {}}
    for name in variants:
        q1, med, q3 = quantiles(per[name]) if per[name] else (None, None, None)
        out["variants"][name] = {
            "ns_per_signal": med, "q1": q1, "q3": q3,
            "signals": statistics.median(signals[name]) if signals[name] else 0,
            "body_ns": statistics.median(body[name]) if body[name] else None,
            "drain_ns_per_sample": statistics.median(drain[name]) if drain[name] else None,
        }
    fl = out["variants"]["null handler"]["ns_per_signal"]
    for name, v in out["variants"].items():
        if name != "null handler" and v["ns_per_signal"] is not None and fl is not None:
            v["above_floor_ns"] = v["ns_per_signal"] - fl
    return out


def _drain_thread_cpu(p: Any) -> float | None:
    t = getattr(p, "_thread", None)
    if t is None or t.ident is None or not t.is_alive():
        return None
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(t.ident))
    except OSError:
        return None


# ---------------------------------------------------------------------- handler vs depth
def _at_depth(depth: int, fn: Callable[[], Any]) -> Any:
    if depth <= 1:
        return fn()
    return _at_depth(depth - 1, fn)


def handler_cost(depths: tuple[int, ...] = (10, 30, 100), windows: int = 8) -> dict[str, Any]:
    """Handler body ns/sample while the sampled thread burns CPU at a given Python depth.

    Measured in both modes.  CPU mode (250 Hz, the tick) is the clean number: its
    signal is raised by the scheduler tick, so the handler starts right after a
    tick and is practically never preempted.  Wall mode (2 kHz) fires at any
    time and its self-timing (CLOCK_MONOTONIC) includes involuntary preemption
    by other tenants; the median and the minimum over short windows are given.
    """
    base_depth = len(_stack_now())
    out: dict[str, Any] = {"windows": windows, "modes": {}}
    for mode, hz, window_s in (("cpu", 250, 0.25), ("wall", 2000, 0.05)):
        iters = _calibrate(window_s)
        res: dict[str, Any] = {"hz": hz, "window_s": window_s, "depths": {}}
        nwin = windows if mode == "cpu" else windows * 3
        for depth in depths:
            extra = max(1, depth - base_depth - 1)
            means: list[float] = []
            samples = 0
            total_ns = 0
            seen_depth: list[int] = []
            for _ in range(nwin):
                p = ringprof.Profile(1.0 / hz, mode, 128)
                p.enable()
                _at_depth(extra, lambda n=iters: burn(n))
                p.disable()
                s = p.data.meta["stats"]
                if s["samples"]:
                    means.append(s["handler_ns"] / s["samples"])
                    samples += int(s["samples"])
                    total_ns += int(s["handler_ns"])
                    seen_depth.extend(int(x) for x in p.data.depth[-20:])
            q1, med, q3 = quantiles(means)
            res["depths"][str(depth)] = {
                "python_depth": statistics.median(seen_depth) if seen_depth else None,
                "ns_per_sample_median_window": med, "q1": q1, "q3": q3, "min_window": min(means, default=None),
                "ns_per_sample_mean_all": total_ns / samples if samples else None,
                "samples": samples,
            }
        out["modes"][mode] = res
    return out


def _stack_now() -> list[Any]:
    f = sys._getframe()
    out = []
    while f is not None:
        out.append(f)
        f = f.f_back  # type: ignore[assignment]
    return out


# ---------------------------------------------------------------------- drain / resolve
_HDR = struct.Struct("<IIHHIQQQQQ")
assert _HDR.size == 56
_REC_MAGIC = 0x52505331


def _gen_functions(n: int) -> list[Callable[[Callable[[], Any]], Any]]:
    src = "\n".join(f"def f{i}(k):\n    return k()\n" for i in range(n))
    ns: dict[str, Any] = {}
    exec(compile(src, "<ringprof-bench-gen>", "exec"), ns)
    return [ns[f"f{i}"] for i in range(n)]


_GEN = _gen_functions(64)


def _capture_frames(seconds: float = 0.6) -> tuple[list[tuple[int, int]], bytes]:
    """Real (code, instr) frames from the sampler: run generated functions at 5 kHz."""
    from ringprof import _sampler as native

    p = ringprof.Profile(0.0002, "wall", 128, drain_interval=10, ring_bytes=1 << 24)
    p.enable()
    iters = _calibrate(0.002)
    t_end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < t_end:
        a, b, c = _GEN[i % 64], _GEN[(i * 7 + 3) % 64], _GEN[(i * 13 + 5) % 64]
        a(lambda b=b, c=c: b(lambda c=c: c(lambda: burn(iters))))
        i += 1
    with p._lock:
        buf, mark = native.drain()
    p.disable()
    native.release_codes(mark)
    frames: set[tuple[int, int]] = set()
    off = 0
    while off + 56 <= len(buf):
        _magic, ln, nframes, _flags, _depth, *_rest = _HDR.unpack_from(buf, off)
        for j in range(nframes):
            frames.add(struct.unpack_from("<QQ", buf, off + 56 + 16 * j))
        off += ln
    return sorted(frames), buf


def synth_buffer(frames: list[tuple[int, int]], n_records: int, n_unique: int, depth: int,
                 seed: int = 1) -> bytes:
    """n_records records cycling over n_unique distinct stacks of `depth` real frames."""
    import random

    rng = random.Random(seed)
    stacks = []
    seen = set()
    while len(stacks) < n_unique:
        st = tuple(rng.randrange(len(frames)) for _ in range(depth))
        if st not in seen:
            seen.add(st)
            stacks.append(b"".join(struct.pack("<QQ", *frames[k]) for k in st))
    ln = 56 + 16 * depth
    parts = []
    for i in range(n_records):
        parts.append(_HDR.pack(_REC_MAGIC, ln, depth, 0, depth, 1000 + i % 4, i * 1000, 1, 0, 0))
        parts.append(stacks[i % n_unique])
    return b"".join(parts)


def drain_throughput(depth: int = 30, n_records: int = 50_000, reps: int = 5) -> dict[str, Any]:
    from ringprof import _sampler as native
    from ringprof.model import ProfileData
    from ringprof.resolve import Resolver

    frames, _real = _capture_frames()
    out: dict[str, Any] = {"depth": depth, "records": n_records, "real_frames": len(frames)}
    # Keep the captured code objects alive: they are module-level generated functions.
    warm_buf = synth_buffer(frames, n_records, 500, depth)
    cold_buf = synth_buffer(frames, n_records, n_records, depth, seed=2)

    def timed(fn: Callable[[], Any]) -> float:
        ts = []
        for _ in range(reps):
            gc.collect()
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    idx: dict[bytes, int] = {}
    native.parse(warm_buf, idx)
    out["parse_samples_per_s"] = n_records / timed(lambda: native.parse(warm_buf, idx))
    r = Resolver(ProfileData())
    r.ingest(warm_buf)
    out["ingest_warm_samples_per_s"] = n_records / timed(lambda: r.ingest(warm_buf))
    out["ingest_cold_samples_per_s"] = n_records / timed(lambda: Resolver(ProfileData()).ingest(cold_buf))
    out["invalid_frames"] = r.invalid_frames
    # Steady state: one small drain (20 samples of known stacks) after N unique stacks were seen.
    small = synth_buffer(frames, 20, 5, depth, seed=9)
    out["small_ingest_us_vs_known_stacks"] = {}
    for known in (0, 10_000, 100_000):
        r = Resolver(ProfileData())
        if known:
            r.ingest(synth_buffer(frames, known, known, depth, seed=3))
        r.ingest(small)
        ts = []
        for _ in range(21):
            t0 = time.perf_counter()
            r.ingest(small)
            ts.append(time.perf_counter() - t0)
        out["small_ingest_us_vs_known_stacks"][str(known)] = 1e6 * statistics.median(ts)
    # The real copy out of the rings: a live sampler filling 4 threads' rings.
    out["drain_copy"] = _drain_copy_speed()
    return out


def _drain_copy_speed(threads: int = 4, seconds: float = 0.5) -> dict[str, Any]:
    from ringprof import _sampler as native

    p = ringprof.Profile(0.0002, "wall", 128, drain_interval=10, ring_bytes=1 << 22)
    stop = threading.Event()
    iters = _calibrate(0.001)

    def work() -> None:
        while not stop.is_set():
            _at_depth(20, lambda: burn(iters))

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    p.enable()
    time.sleep(seconds)
    with p._lock:
        t0 = time.perf_counter()
        buf, mark = native.drain()
        dt = time.perf_counter() - t0
    stop.set()
    for t in ts:
        t.join()
    p.disable()
    native.release_codes(mark)
    n = 0
    off = 0
    while off + 56 <= len(buf):
        off += _HDR.unpack_from(buf, off)[1]
        n += 1
    return {"bytes": len(buf), "records": n, "seconds": dt,
            "mb_per_s": len(buf) / dt / 1e6 if dt else None, "records_per_s": n / dt if dt else None}


def memory_per_stack(n_unique: int = 20_000, depths: tuple[int, ...] = (10, 30)) -> dict[str, Any]:
    from ringprof.model import ProfileData
    from ringprof.resolve import Resolver

    frames, _ = _capture_frames(0.3)
    out: dict[str, Any] = {"unique_stacks": n_unique, "depths": {}}
    for depth in depths:
        buf = synth_buffer(frames, n_unique, n_unique, depth, seed=depth)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        data = ProfileData()
        r = Resolver(data)
        r.ingest(buf)
        _ = data.stack  # materialise the columns
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        columns = sum(data._column(k).nbytes for k in ("stack", "thread", "time_ns", "weight", "cpu_ns",
                                                      "flags", "labels", "depth"))
        total = after - before
        out["depths"][str(depth)] = {
            "bytes_total": total, "bytes_columns": columns,
            "bytes_per_unique_stack": (total - columns) / n_unique,
            "bytes_per_sample_columns": columns / n_unique,
            "stacks": len(data.stacks),
        }
        del data, r, buf
    return out


# ---------------------------------------------------------------------- rates
def rates(seconds: float = 1.0) -> list[dict[str, Any]]:
    configs = [("cpu", 100), ("cpu", 250), ("cpu", 1000), ("wall", 1000), ("wall", 5000), ("wall", 10000),
               ("wall", 20000)]
    iters = _calibrate(0.005)
    out = []
    for nthreads in (1, 4):
        for mode, hz in configs:
            stop = threading.Event()

            def work(stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    _at_depth(20, lambda: burn(iters))

            p = ringprof.Profile(1.0 / hz, mode, 128)
            helpers = [threading.Thread(target=work) for _ in range(nthreads - 1)]
            for t in helpers:
                t.start()
            p.enable()
            w0, c0 = time.perf_counter(), time.process_time()
            t_end = time.monotonic() + seconds
            while time.monotonic() < t_end:
                _at_depth(20, lambda: burn(iters))
            w1, c1 = time.perf_counter(), time.process_time()
            stop.set()
            for t in helpers:
                t.join()
            p.disable()
            s = p.data.meta["stats"]
            wall, cpu = w1 - w0, c1 - c0
            clock = cpu if mode == "cpu" else wall * nthreads
            out.append({"mode": mode, "requested_hz": hz, "threads": nthreads, "samples": int(s["samples"]),
                        "weight": int(p.data.total_weight()), "dropped": int(s["dropped"]),
                        "clock_s": clock, "samples_per_s": s["samples"] / clock,
                        "weight_per_s": p.data.total_weight() / clock, "timer": p.data.meta.get("timer")})
    return out


def drain_idle(seconds: float = 3.0) -> dict[str, Any]:
    """The drain thread's fixed cost: an enabled profile on an otherwise idle process.

    The main thread sleeps, so (cpu mode) there are no samples at all: what is
    left is the drain thread waking every ``drain_interval`` (0.1 s).
    """
    out: dict[str, Any] = {"seconds": seconds}
    for mode in ("cpu", "wall"):
        p = ringprof.Profile(0.01, mode)
        p.enable()
        c0 = time.process_time()
        time.sleep(seconds)
        cpu = time.process_time() - c0
        drain = _drain_thread_cpu(p)
        p.disable()
        wakes = seconds / p.drain_interval
        out[mode] = {"process_cpu_s": cpu, "drain_thread_cpu_s": drain,
                     "us_per_wake": 1e6 * drain / wakes if drain is not None else None,
                     "pct_of_a_core": 100 * drain / seconds if drain is not None else None,
                     "samples": int(p.data.meta["stats"]["samples"])}
    return out


def startstop(reps: int = 30) -> dict[str, Any]:
    walls, cpus = [], []
    for _ in range(reps):
        p = ringprof.Profile(0.01, "cpu")
        w0, c0 = time.perf_counter(), time.process_time()
        p.enable()
        p.disable()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return {"enable_disable_wall_ms": 1000 * statistics.median(walls),
            "enable_disable_cpu_ms": 1000 * statistics.median(cpus), "reps": reps}


def run_micro(quick: bool = False, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("floor", lambda: floor(reps=5 if quick else 9, seconds=0.2 if quick else 0.3)),
        ("handler", lambda: handler_cost(windows=4 if quick else 8)),
        ("drain", lambda: drain_throughput(n_records=20_000 if quick else 50_000, reps=3 if quick else 5)),
        ("memory", lambda: memory_per_stack(5_000 if quick else 20_000)),
        ("rates", lambda: rates(0.4 if quick else 1.0)),
        ("startstop", lambda: startstop(10 if quick else 30)),
        ("drain_idle", lambda: drain_idle(1.5 if quick else 3.0)),
    ]
    for name, fn in steps:
        if log:
            log(f"micro: {name}")
        try:
            out[name] = fn()
        except Exception as exc:  # report and go on: one broken part must not hide the rest
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def format_micro(m: dict[str, Any]) -> str:
    lines = []
    f = m.get("floor", {})
    if "variants" in f:
        lines.append(f"signal cost at {f['hz']:g} Hz (CPU ns per signal, median [IQR], {f['reps']} pairs):")
        for name, v in f["variants"].items():
            if v["ns_per_signal"] is None:
                lines.append(f"  {name:<24} no signals")
                continue
            extra = ""
            if v.get("body_ns") is not None:
                extra = f"  body {v['body_ns']:.0f} ns"
            if v.get("drain_ns_per_sample") is not None:
                extra += f", drain+resolve {v['drain_ns_per_sample']:.0f} ns/sample"
            if v.get("above_floor_ns") is not None:
                extra += f", above floor {v['above_floor_ns']:+.0f} ns"
            lines.append(f"  {name:<24} {v['ns_per_signal']:8.0f} [{v['q1']:.0f}, {v['q3']:.0f}]{extra}")
    elif f:
        lines.append(f"signal cost: {f.get('error')}")
    h = m.get("handler", {})
    for mode, res in h.get("modes", {}).items():
        lines.append(f"handler body vs depth, {mode} mode {res['hz']} Hz (ns/sample: median of windows [IQR], "
                     f"min window; mean of all):")
        for d, v in res["depths"].items():
            lines.append(f"  depth {d:>4} (python depth {v['python_depth']}): "
                         f"{v['ns_per_sample_median_window']:.0f} [{v['q1']:.0f}, {v['q3']:.0f}], "
                         f"min {v['min_window']:.0f}; mean {v['ns_per_sample_mean_all']:.0f}")
    d = m.get("drain", {})
    if "parse_samples_per_s" in d:
        lines.append(f"drain/resolve (depth {d['depth']}): parse {d['parse_samples_per_s']:,.0f}/s, ingest warm "
                     f"{d['ingest_warm_samples_per_s']:,.0f}/s, cold {d['ingest_cold_samples_per_s']:,.0f}/s; "
                     f"copy {d['drain_copy'].get('records_per_s') or 0:,.0f} records/s")
        known = d.get("small_ingest_us_vs_known_stacks", {})
        if known:
            lines.append("  one 20-sample drain after N unique stacks: "
                         + ", ".join(f"N={int(k):,}: {v:.0f} us" for k, v in known.items()))
    mem = m.get("memory", {})
    if "depths" in mem:
        for dep, v in mem["depths"].items():
            lines.append(f"memory: depth {dep}: {v['bytes_per_unique_stack']:.0f} B per unique stack "
                         f"(+{v['bytes_per_sample_columns']:.0f} B per sample)")
    for r in m.get("rates", []) if isinstance(m.get("rates"), list) else []:
        lines.append(f"rate: {r['mode']} {r['requested_hz']:>6} Hz x{r['threads']} threads -> "
                     f"{r['samples_per_s']:8.0f} samples/s ({r['weight_per_s']:.0f} weighted), dropped {r['dropped']}")
    di = m.get("drain_idle", {})
    for mode in ("cpu", "wall"):
        v = di.get(mode)
        if v and v.get("us_per_wake") is not None:
            lines.append(f"idle process, {mode} mode 100 Hz: drain thread {v['us_per_wake']:.0f} us per wake "
                         f"({v['pct_of_a_core']:.2f}% of a core), {v['samples']} samples")
    ss = m.get("startstop", {})
    if "enable_disable_wall_ms" in ss:
        lines.append(f"enable+disable: {ss['enable_disable_wall_ms']:.2f} ms wall, "
                     f"{ss['enable_disable_cpu_ms']:.2f} ms CPU")
    return "\n".join(lines)


if __name__ == "__main__":
    res = run_micro(quick="--quick" in sys.argv, log=lambda s: print(s, file=sys.stderr, flush=True))
    print(format_micro(res))
