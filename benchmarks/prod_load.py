"""Production-style load test: a Flask app under gunicorn, with and without
continuous profiling, driven by wrk on 127.0.0.1.

    python -m benchmarks.prod_load                 # 60 s per configuration, 1 round
    python -m benchmarks.prod_load --duration 20 --rounds 2 --json out.json

Configurations (each a fresh gunicorn, ``-w 2`` sync workers, the default
production shape of a small service):

``off``         no profiler
``continuous``  ``ringprof-run`` (``python -m ringprof.auto``) at 100 Hz,
                cpu mode, 10 s windows to a directory sink (pprof, keep=100),
                i.e. what ``RINGPROF=1`` does, with windows cut 6x more often
                than the default to include export costs
``middleware``  ``continuous`` plus the WSGI middleware (route/method labels
                on every request, slow-request capture armed at 250 ms)
``launcher-off``  (control, ``--configs`` only) the launcher with ``RINGPROF=0``:
                the same process tree as ``continuous``, no profiler
``continuous-posix``  (``--configs`` only) ``continuous`` on POSIX CPU-time
                timers (``RINGPROF_PERF=0``) instead of perf task-clock events,
                which the kernel switches in and out with the thread

``--toggle PAIRS`` measures ``continuous`` against ``off`` inside one warm
server instead: the workers switch continuous profiling on and off on
SIGUSR2 (what ``RINGPROF=1`` starts, through ``ringprof.auto.start_from_env``),
and load bursts alternate on/off in ABBA order.  Fresh servers differ from
each other (memory layout, hash seeds, which core they land on) by more than
the profiler costs; two bursts of the same processes a few seconds apart
differ mostly by the profiler.  Each burst lasts two windows, so a burst with
profiling on pays the window cuts of steady state; the warm-up runs with
profiling on, so the drain has met the service's stacks, as in a service
that has run for a while.

``--toggle PAIRS --control`` runs the same bursts in the same order, but never
switches profiling on: an A/A run.  Its "continuous" bursts are "off" bursts
too, so the spread of its paired differences is what this machine's noise
alone makes of the statistic; a difference a real ``--toggle`` run reports
means something only where it falls outside that spread.

The load generator is ``wrk`` (Debian package ``wrk``) with ``--latency``:
closed loop, ``--connections`` connections, so throughput is the server's
capacity and p99 its latency at saturation.  Without wrk a small threaded
Python load generator in another process is used instead (and said so).
On a 2-core machine wrk and the workers share the cores: compare the
configurations with each other, not with other machines.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ("off", "continuous", "middleware")
ALL_CONFIGS = (*CONFIGS, "launcher-off", "continuous-posix")
WINDOW_SECONDS = 10  # continuous windows: 6x the default, so export costs show


# ---------------------------------------------------------------------- the application
def create_app() -> Any:
    """The service under test: a small JSON API with realistic per-request work."""
    import hashlib
    import json as _json

    from flask import Flask, Response

    app = Flask("prod_load")
    catalogue = [{"id": i, "name": f"item-{i}", "price": i * 1.25, "tags": ["a", "b", str(i % 7)]}
                 for i in range(500)]

    def score(item: dict[str, Any], query: int) -> float:
        return float((item["price"] * 31 + query) % 97 + len(item["name"]) / 10)

    @app.route("/api/items/<int:item_id>")
    def item(item_id: int) -> Response:
        ranked = sorted(catalogue, key=lambda it: score(it, item_id))[:20]
        body = _json.dumps({"item": catalogue[item_id % len(catalogue)], "related": ranked,
                            "etag": hashlib.sha256(str(ranked).encode()).hexdigest()})
        return Response(body, mimetype="application/json")

    @app.route("/health")
    def health() -> str:
        return "ok"

    if os.environ.get("PROD_LOAD_TOGGLE"):
        import signal as _signal

        _signal.signal(_signal.SIGUSR2, _toggle_profiling)
        (Path(os.environ["PROD_LOAD_TOGGLE"]) / f"ready-{os.getpid()}").touch()  # may be signalled now
    if os.environ.get("PROD_LOAD_MIDDLEWARE") == "1":
        from ringprof.integrations.wsgi import RingprofMiddleware

        app.wsgi_app = RingprofMiddleware(app.wsgi_app, slow_threshold=0.25,  # type: ignore[method-assign]
                                          slow_dir=os.environ.get("PROD_LOAD_SLOW_DIR") or None)
    return app


def continuous_env(workdir: Path, window: float) -> dict[str, str]:
    """The launcher's environment of the ``continuous`` configuration."""
    return {"RINGPROF": "1", "RINGPROF_INTERVAL": "0.01", "RINGPROF_MODE": "cpu",
            "RINGPROF_WINDOW": f"{window:g}", "RINGPROF_SERVICE": "prodload",
            "RINGPROF_SINKS": f"dir:{workdir / 'windows'}?format=pprof&keep=100"}


def _toggle_profiling(signum: int, frame: object) -> None:
    """SIGUSR2 in a ``--toggle`` worker: start continuous profiling as
    ``RINGPROF=1`` would, or stop it (exporting the last window)."""
    from ringprof import control
    from ringprof.auto import start_from_env

    if control.launched() is None:
        start_from_env(continuous_env(Path(os.environ["PROD_LOAD_TOGGLE"]), float(os.environ["PROD_LOAD_WINDOW"])))
    else:
        control.stop_launched()


# ---------------------------------------------------------------------- running
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not become ready")


def start_server(config: str, port: int, workdir: Path, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGPROF")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    gunicorn = ["-m", "gunicorn", "-w", str(args.workers), "-k", "sync", "-b", f"127.0.0.1:{port}",
                "--log-level", "warning", "benchmarks.prod_load:create_app()"]
    if config == "off":
        cmd = [sys.executable, *gunicorn]
    elif config == "toggle":  # off until SIGUSR2 (see _toggle_profiling)
        cmd = [sys.executable, *gunicorn]
        env["PROD_LOAD_TOGGLE"] = str(workdir)
        env["PROD_LOAD_WINDOW"] = f"{args.window:g}"
    elif config == "launcher-off":
        cmd = [sys.executable, "-m", "ringprof.auto", *gunicorn]
        env["RINGPROF"] = "0"
    else:
        cmd = [sys.executable, "-m", "ringprof.auto", *gunicorn]
        env.update(continuous_env(workdir, args.window))
        if config == "continuous-posix":
            env["RINGPROF_PERF"] = "0"
        if config == "middleware":
            env["PROD_LOAD_MIDDLEWARE"] = "1"
            env["PROD_LOAD_SLOW_DIR"] = str(workdir / "slow")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def server_pids(master: int) -> list[int]:
    """The gunicorn master and its workers."""
    pids = [master]
    try:
        for task in os.listdir(f"/proc/{master}/task"):
            with open(f"/proc/{master}/task/{task}/children") as fh:
                pids += [int(p) for p in fh.read().split()]
    except OSError:
        pass
    return pids


def thread_names(pid: int) -> dict[str, str]:
    """Each thread of a process (task id -> its name for the OS); empty if it is gone."""
    names = {}
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/comm") as fh:
                names[task] = fh.read().strip()
    except OSError:
        pass
    return names


def profiler_thread_seconds(master: int) -> dict[str, float]:
    """CPU seconds so far of ringprof's own threads in the server's processes, by
    thread name (drain, window, export, tick: they carry their names for the OS),
    from each thread's ``schedstat`` (nanoseconds on CPU)."""
    total: dict[str, float] = {}
    for pid in server_pids(master):
        for task, name in thread_names(pid).items():
            if not name.startswith("ringprof"):
                continue
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                    total[name] = total.get(name, 0.0) + int(fh.read().split()[0]) / 1e9
            except (OSError, IndexError, ValueError):
                pass
    return total


def server_cpu_seconds(master: int) -> float:
    """user+system CPU seconds of the gunicorn master and its workers so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in server_pids(master):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def worker_switches(master: int) -> int:
    """Context switches so far (voluntary and not) of the workers' main threads,
    which serve the requests: each time a ringprof thread takes the GIL from a
    running request, the request's thread blocks on the GIL and is woken again."""
    total = 0
    for pid in server_pids(master)[1:]:
        try:
            with open(f"/proc/{pid}/task/{pid}/status") as fh:
                for line in fh:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"cannot parse latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(port: int, duration: float, connections: int, threads: int) -> dict[str, float]:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s", "--latency",
                          "--timeout", "10s", f"http://127.0.0.1:{port}/api/items/42"],
                         capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "requests": total, "p50_ms": _ms(pct["50"]), "p90_ms": _ms(pct["90"]), "p99_ms": _ms(pct["99"]),
            "non2xx": float(errors.group(1)) if errors else 0.0,
            "socket_errors": sock.group(1).strip() if sock else ""}  # type: ignore[dict-item]


def run_python_load(port: int, duration: float, connections: int) -> dict[str, float]:
    """Fallback load generator: ``connections`` threads in a child process."""
    code = f"""
import http.client, json, threading, time
lat = []; lock = threading.Lock(); stop = time.monotonic() + {duration}
def worker():
    mine = []
    while time.monotonic() < stop:
        t0 = time.perf_counter()
        c = http.client.HTTPConnection("127.0.0.1", {port}, timeout=10)
        c.request("GET", "/api/items/42"); c.getresponse().read(); c.close()
        mine.append((time.perf_counter() - t0) * 1e3)
    with lock: lat.extend(mine)
ts = [threading.Thread(target=worker) for _ in range({connections})]
[t.start() for t in ts]; [t.join() for t in ts]
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(json.dumps({{"rps": len(lat) / {duration}, "requests": len(lat),
                  "p50_ms": q(.5), "p90_ms": q(.9), "p99_ms": q(.99),
                  "non2xx": 0.0, "socket_errors": ""}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=duration + 60).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def load(port: int, duration: float, args: argparse.Namespace) -> dict[str, Any]:
    """Drive the server for ``duration`` seconds with wrk (or the Python fallback)."""
    if shutil.which("wrk") and not args.python_load:
        result: dict[str, Any] = dict(run_wrk(port, duration, args.connections, args.threads))
        result["loadgen"] = "wrk"
    else:
        result = dict(run_python_load(port, duration, args.connections))
        result["loadgen"] = "python"
    return result


def warm_up(port: int, args: argparse.Namespace) -> None:
    import urllib.request

    for _ in range(50):  # imports, first requests
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/items/1", timeout=10).read()
    if args.warmup > 0:  # a service runs for hours: leave the first stacks' resolution out
        load(port, args.warmup, args)


def burst(proc: subprocess.Popen[bytes], port: int, duration: float, args: argparse.Namespace) -> dict[str, Any]:
    """One measured stretch of load on a running server."""
    load0 = os.getloadavg()[0]
    cpu0 = server_cpu_seconds(proc.pid)
    own0 = profiler_thread_seconds(proc.pid)
    switches0 = worker_switches(proc.pid)
    result = load(port, duration, args)
    result["switches_per_req"] = (worker_switches(proc.pid) - switches0) / max(result["requests"], 1)
    # Server CPU per request: robust to other load on the machine, which
    # moves throughput and latency far more than it moves this.
    result["cpu_us_per_req"] = (server_cpu_seconds(proc.pid) - cpu0) / max(result["requests"], 1) * 1e6
    # The part of it that ringprof's own threads used (the rest ran in the
    # program's threads: requests, plus signal delivery and the handler).
    own1 = profiler_thread_seconds(proc.pid)
    per_req = {name: (own1[name] - own0.get(name, 0.0)) / max(result["requests"], 1) * 1e6 for name in own1}
    result["profiler_us_per_req"] = sum(per_req.values())
    result["profiler_us_per_req_by_thread"] = per_req
    # The machine may be shared: the 1-minute load average before and after the run.
    result["load_before"] = load0
    result["load_after"] = os.getloadavg()[0]
    return result


def stop_server(proc: subprocess.Popen[bytes]) -> bytes:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def measure(config: str, args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"prod_load_{config}_"))
    port = free_port()
    proc = start_server(config, port, workdir, args)
    try:
        wait_ready(port, proc)
        warm_up(port, args)
        result = burst(proc, port, args.duration, args)
    finally:
        err = stop_server(proc)
    result["exit_code"] = proc.returncode
    windows = sorted((workdir / "windows").glob("*.pprof")) if (workdir / "windows").exists() else []
    result["windows"] = len(windows)
    result["window_kb_median"] = (round(statistics.median(f.stat().st_size for f in windows) / 1024, 1)
                                  if windows else 0.0)
    result["slow_captures"] = len(list((workdir / "slow").glob("*"))) if (workdir / "slow").exists() else 0
    if err.strip():
        result["stderr_tail"] = err.decode(errors="replace").strip().splitlines()[-3:]
    shutil.rmtree(workdir, ignore_errors=True)
    return result


# ---------------------------------------------------------------------- one warm server, toggled
def profiling_in_workers(master: int) -> list[bool]:
    """For each worker: does it run ringprof's drain thread (is profiling on)?"""
    return ["ringprof-drain" in thread_names(pid).values() for pid in server_pids(master)[1:]]


def set_profiling(master: int, workdir: Path, on: bool, timeout: float = 60) -> None:
    """Switch continuous profiling on or off in every worker (SIGUSR2) and wait
    until each has started or stopped it."""
    deadline = time.monotonic() + timeout
    workers = server_pids(master)[1:]
    while not all((workdir / f"ready-{pid}").exists() for pid in workers):  # SIGUSR2 would kill it
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not load the application")
        time.sleep(0.05)
        workers = server_pids(master)[1:]
    for pid, state in zip(workers, profiling_in_workers(master), strict=False):
        if state != on:
            os.kill(pid, signal.SIGUSR2)
    while time.monotonic() < deadline:
        states = profiling_in_workers(master)
        if states and all(s == on for s in states):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the workers did not switch profiling {'on' if on else 'off'} in {timeout:.0f} s")


def measure_toggled(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """``--toggle``: ABBA bursts with continuous profiling on and off in one warm server."""
    workdir = Path(tempfile.mkdtemp(prefix="prod_load_toggle_"))
    port = free_port()
    proc = start_server("toggle", port, workdir, args)
    results: dict[str, list[dict[str, Any]]] = {"off": [], "continuous": []}
    try:
        wait_ready(port, proc)
        set_profiling(proc.pid, workdir, not args.control)
        warm_up(port, args)
        for i in range(args.toggle):
            for on in (True, False) if i % 2 == 0 else (False, True):
                set_profiling(proc.pid, workdir, on and not args.control)
                time.sleep(0.5)  # the switch's own work (start-up, last window) is not the steady state
                res = burst(proc, port, args.duration, args)
                res["exit_code"] = 0
                results["continuous" if on else "off"].append(res)
                print(f"pair {i + 1} {'on ' if on else 'off'}: {res['rps']:8.1f} req/s  p99 {res['p99_ms']:.2f} ms  "
                      f"cpu/req {res['cpu_us_per_req']:.0f} us (ringprof threads "
                      f"{res['profiler_us_per_req']:.1f})  switches/req {res['switches_per_req']:.3f}  "
                      f"load {res['load_before']:.2f}",
                      file=sys.stderr, flush=True)
    finally:
        err = stop_server(proc)
    windows = list((workdir / "windows").glob("*.pprof")) if (workdir / "windows").exists() else []
    print(f"server exit {proc.returncode}, {len(windows)} windows written"
          + (f"; stderr: {err.decode(errors='replace').strip().splitlines()[-3:]}" if err.strip() else ""),
          file=sys.stderr)
    shutil.rmtree(workdir, ignore_errors=True)
    return results


def ratio_summary(ratios: list[float]) -> str:
    """Quartiles and mean +- 2 standard errors of paired differences (in %)."""
    if len(ratios) < 4:
        return ""
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    se = statistics.stdev(ratios) / len(ratios) ** 0.5
    return (f", IQR [{q1:+.1f}, {q3:+.1f}]%, mean {statistics.fmean(ratios):+.1f}% +- {2 * se:.1f} "
            f"(2 standard errors)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of load per run (default 60; with --toggle two windows)")
    p.add_argument("--window", type=float, default=WINDOW_SECONDS,
                   help=f"continuous profiling's window in seconds (default {WINDOW_SECONDS})")
    p.add_argument("--rounds", type=int, default=1, help="rounds of all configurations, interleaved")
    p.add_argument("--warmup", type=float, default=0.0,
                   help="seconds of load before each measurement, left out of it (default 0): the "
                        "profiler resolves most new stacks in a process's first minute")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: 2 cores are shared)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--python-load", action="store_true", help="use the Python load generator, not wrk")
    p.add_argument("--toggle", type=int, default=0, metavar="PAIRS",
                   help="measure continuous against off in one warm server, PAIRS ABBA pairs of bursts "
                        "(see the module's docstring); --rounds and --configs do not apply")
    p.add_argument("--control", action="store_true",
                   help="with --toggle: an A/A run that never switches profiling on, to measure the noise")
    p.add_argument("--json", help="also write the raw results here")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 2 * args.window if args.toggle else 60.0
    configs = [c for c in args.configs.split(",") if c]
    for c in configs:
        if c not in ALL_CONFIGS:
            p.error(f"unknown configuration {c!r}; known: {', '.join(ALL_CONFIGS)}")
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    rounds = args.toggle or args.rounds
    if args.control and not args.toggle:
        p.error("--control needs --toggle")
    if args.toggle > 0:
        results = measure_toggled(args)
        configs = list(results)
    for r in range(0 if args.toggle else args.rounds):
        # Alternate the order: a configuration never always runs first (or after another).
        for config in configs if r % 2 == 0 else configs[::-1]:
            res = measure(config, args)
            results[config].append(res)
            own = ", ".join(f"{k.removeprefix('ringprof-')} {v:.1f}"
                            for k, v in sorted(res["profiler_us_per_req_by_thread"].items()))
            print(f"round {r + 1} {config:>11}: {res['rps']:8.1f} req/s  p50 {res['p50_ms']:.2f} ms  "
                  f"p99 {res['p99_ms']:.2f} ms  cpu/req {res['cpu_us_per_req']:.0f} us "
                  f"(ringprof threads {res['profiler_us_per_req']:.1f}: {own or '-'})  "
                  f"windows {res['windows']}  exit {res['exit_code']}  "
                  f"load {res['load_before']:.2f}->{res['load_after']:.2f}",
                  file=sys.stderr, flush=True)
    base = results.get("off")
    if args.control:
        print("\ncontrol (A/A) run: profiling was never switched on; 'continuous' rows are off bursts too")
    print(f"\nmedians of {rounds} interleaved round(s); [min, max] across rounds\n")
    print("| configuration | req/s | p50 ms | p90 ms | p99 ms | server CPU us/req | of it, ringprof's threads "
          "| vs off (req/s) | vs off (p99) | vs off (CPU/req) | load avg |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def spread(runs: list[dict[str, Any]], key: str, fmt: str) -> str:
        values = [x[key] for x in runs]
        text = format(statistics.median(values), fmt)
        return text if len(values) < 2 else f"{text} [{format(min(values), fmt)}, {format(max(values), fmt)}]"

    for config in configs:
        runs = results[config]
        rps = statistics.median(x["rps"] for x in runs)
        p99 = statistics.median(x["p99_ms"] for x in runs)
        cpu = statistics.median(x["cpu_us_per_req"] for x in runs)
        if base and config != "off":
            brps = statistics.median(x["rps"] for x in base)
            bp99 = statistics.median(x["p99_ms"] for x in base)
            bcpu = statistics.median(x["cpu_us_per_req"] for x in base)
            d_rps, d_p99 = f"{(rps / brps - 1) * 100:+.1f}%", f"{(p99 / bp99 - 1) * 100:+.1f}%"
            d_cpu = f"{(cpu / bcpu - 1) * 100:+.1f}%"
        else:
            d_rps = d_p99 = d_cpu = "-"
        loads = [x["load_before"] for x in runs] + [x["load_after"] for x in runs]
        print(f"| {config} | {spread(runs, 'rps', '.1f')} | {spread(runs, 'p50_ms', '.2f')} "
              f"| {spread(runs, 'p90_ms', '.2f')} | {spread(runs, 'p99_ms', '.2f')} "
              f"| {spread(runs, 'cpu_us_per_req', '.0f')} | {spread(runs, 'profiler_us_per_req', '.1f')} "
              f"| {d_rps} | {d_p99} | {d_cpu} "
              f"| {min(loads):.2f}-{max(loads):.2f} |")
    for config in configs:
        switches = [x["switches_per_req"] for x in results[config] if "switches_per_req" in x]
        if switches:
            print(f"{config}: context switches of the workers' main threads per request, median "
                  f"{statistics.median(switches):.3f} [{min(switches):.3f}, {max(switches):.3f}]")
    if base:
        # Paired per round (off and the configuration ran back to back): the
        # spread of the ratios says how much of a difference is noise.
        for config in configs:
            if config == "off":
                continue
            pairs = list(zip(base, results[config], strict=False))
            for key in ("p99_ms", "cpu_us_per_req", "rps"):
                ratios = sorted((b[key] and x[key] / b[key] - 1) * 100 for b, x in pairs)
                print(f"{config} vs off, {key} per round: " + ", ".join(f"{r:+.1f}%" for r in ratios)
                      + f" (median {statistics.median(ratios):+.1f}%{ratio_summary(ratios)})")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
