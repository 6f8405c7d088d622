"""``ringprof overhead`` / ``python -m ringprof.bench``: what does profiling cost *your* program?

    python -m ringprof.bench [-n N] [--interval I] [--mode cpu|wall] [--max-overhead PCT] -- python app.py args
    python -m ringprof.bench -n 9 --max-overhead 5 -- python -m mypackage.job --flag

Runs the command N times unprofiled and N times under ``python -m ringprof``
(output to a throw-away file), interleaved in adjacent pairs whose order
alternates so that drift in the machine's load cancels out.  Each child's wall
time and CPU time (user + system of the child and the children it waited for,
from ``os.wait4``) are recorded; the overhead is the **median of the per-pair
ratios**, printed with its min and max.  ``--max-overhead PCT`` exits 1 when
the median overhead (CPU time by default, ``--metric wall`` for wall time)
exceeds PCT percent: the check a team puts in CI.

The command must be a Python program: ``python script.py ...``, ``python -m
module ...`` (interpreter options such as ``-u`` or ``-X dev`` are kept) or an
executable script whose ``#!`` line names a Python; it is rewritten to
``python -m ringprof -o TMP -i I --mode M script.py ...``.  That interpreter
must be able to import ringprof.  A bare ``python`` or ``python3`` means the
interpreter running this tool (``sys.executable``), for both kinds of run.

Exit codes: 0 measured (and within --max-overhead), 1 over --max-overhead,
2 bad input or a run that failed (one line on stderr saying why).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, NoReturn

from .pycommand import is_python, script_interpreter

# Interpreter options that take a separate value ("-W error", "-X dev").
_OPTS_WITH_VALUE = {"-W", "-X", "--check-hash-based-pycs"}


#: Command names that mean "the Python running ringprof" (replaced by sys.executable).
_BARE_PYTHON = ("python", "python3")


class UsageError(Exception):
    """Bad input: one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass
class Run:
    profiled: bool
    wall: float
    cpu: float
    exit_code: int


def _parser(prog: str) -> _Parser:
    p = _Parser(prog=prog, description="Measure ringprof's overhead on a Python command: N unprofiled and "
                "N profiled runs, interleaved; median overhead of wall and CPU time.",
                usage=f"{prog} [-n N] [--interval I] [--mode cpu|wall] [--max-overhead PCT] -- CMD [ARGS...]")
    p.add_argument("-n", "--runs", type=int, default=5, help="runs of each kind (default 5)")
    p.add_argument("-i", "--interval", type=_interval_arg, default=0.01,
                   help="sampling interval: seconds (0.01), 10ms, 500us or a rate (100hz); default 0.01")
    p.add_argument("--mode", default="cpu", help="cpu (default) or wall")
    p.add_argument("--max-overhead", type=float, metavar="PCT",
                   help="exit 1 if the median overhead exceeds PCT percent")
    p.add_argument("--metric", default="cpu", help="what --max-overhead checks: cpu (default) or wall")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured runs of each kind first (default 1)")
    p.add_argument("--show-output", action="store_true", help="let the command's stdout through (default: discarded)")
    p.add_argument("--allow-failure", action="store_true",
                   help="accept a non-zero exit status (it must still be the same with and without profiling)")
    p.add_argument("--json", metavar="PATH", help="also write every run and the summary as JSON")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command to measure (after --)")
    return p


def _interval_arg(text: str) -> float:
    """argparse ``type=`` for ``-i``: the duration parser ``RINGPROF_INTERVAL`` uses."""
    from .config import parse_interval

    try:
        return parse_interval(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ---------------------------------------------------------------------- the command
def with_current_python(command: Sequence[str]) -> list[str]:
    """``python``/``python3`` (bare names) mean the interpreter running this
    tool, not whatever PATH finds first (which may lack ringprof)."""
    cmd = list(command)
    if cmd and cmd[0] in _BARE_PYTHON and sys.executable:
        cmd[0] = sys.executable
    return cmd


def _resolve(exe: str) -> str:
    if os.sep in exe:
        if not os.path.exists(exe):
            raise UsageError(f"command not found: {exe}")
        return exe
    found = shutil.which(exe)
    if found is None:
        raise UsageError(f"command not found: {exe}")
    return found


def profiled_command(command: Sequence[str], ringprof_args: Sequence[str]) -> list[str]:
    """Rewrite a Python command to run under ``python -m ringprof RINGPROF_ARGS``."""
    if not command:
        raise UsageError("no command given: put it after --, e.g. -- python app.py")
    command = with_current_python(command)
    exe = _resolve(command[0])
    args = list(command[1:])
    if not is_python(exe):
        interp = script_interpreter(exe)
        if interp is None:
            raise UsageError(f"{command[0]} is not a Python command: give 'python script.py ...', "
                             "'python -m module ...' or a script with a python #! line")
        return [*interp, "-m", "ringprof", *ringprof_args, exe, *args]
    opts: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-m":
            if i + 1 >= len(args):
                raise UsageError("python -m needs a module name")
            return [command[0], *opts, "-m", "ringprof", *ringprof_args, "-m", args[i + 1], *args[i + 2:]]
        if a == "-c" or (a.startswith("-c") and not a.startswith("--")):
            raise UsageError("cannot profile 'python -c CODE': put the code in a script")
        if a == "-":
            raise UsageError("cannot profile a program read from stdin ('python -')")
        if a == "--":
            i += 1
            break
        if not a.startswith("-"):
            break
        opts.append(a)
        if a in _OPTS_WITH_VALUE:
            if i + 1 >= len(args):
                raise UsageError(f"python option {a} needs a value")
            opts.append(args[i + 1])
            i += 1
        i += 1
    if i >= len(args):
        raise UsageError("no script given to python: expected 'python script.py ...' or 'python -m module ...'")
    script = args[i]
    if not os.path.isfile(script):
        raise UsageError(f"script not found: {script}")
    return [command[0], *opts, "-m", "ringprof", *ringprof_args, script, *args[i + 1:]]


# ---------------------------------------------------------------------- running
def _run(cmd: Sequence[str], profiled: bool, show_output: bool, errfile: str) -> Run:
    with open(errfile, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL,
                                stdout=None if show_output else subprocess.DEVNULL, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: tell Popen
    return Run(profiled, wall, usage.ru_utime + usage.ru_stime, proc.returncode)


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            lines = [ln.strip() for ln in fh.read()[-4000:].decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _quantile_summary(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def _pct(r: float) -> str:
    return f"{100 * (r - 1):+.1f}%"


def measure(command: Sequence[str], runs: int = 5, interval: float = 0.01, mode: str = "cpu", warmup: int = 1,
            show_output: bool = False, allow_failure: bool = False) -> dict[str, Any]:
    """Run the command unprofiled and profiled, interleaved; return runs and summary."""
    tmp = tempfile.mkdtemp(prefix="ringprof-overhead-")
    try:
        out = os.path.join(tmp, "profile.collapsed")
        errfile = os.path.join(tmp, "stderr.txt")
        prof_cmd = profiled_command(command, ["-o", out, "-i", repr(float(interval)), "--mode", mode])
        plain_cmd = with_current_python(command)
        results: list[Run] = []
        expected: int | None = None
        total = warmup + runs
        for k in range(total):
            order = [False, True] if k % 2 == 0 else [True, False]
            for profiled in order:
                run = _run(prof_cmd if profiled else plain_cmd, profiled, show_output, errfile)
                kind = "profiled" if profiled else "unprofiled"
                if run.exit_code != 0 and not allow_failure:
                    why = _tail(errfile)
                    raise UsageError(f"the {kind} run exited with status {run.exit_code}"
                                     + (f": {why}" if why else "")
                                     + ("" if profiled else " (use --allow-failure if that is expected)"))
                if expected is None:
                    expected = run.exit_code
                elif run.exit_code != expected:
                    raise UsageError(f"the {kind} run exited with status {run.exit_code}, another run with "
                                     f"{expected}: {_tail(errfile)}")
                if os.path.exists(out):
                    os.unlink(out)
                if k >= warmup:
                    results.append(run)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    plain = [r for r in results if not r.profiled]
    prof = [r for r in results if r.profiled]
    wall_ratios = [p.wall / u.wall for u, p in zip(plain, prof, strict=True) if u.wall > 0]
    cpu_ratios = [p.cpu / u.cpu for u, p in zip(plain, prof, strict=True) if u.cpu > 0]
    summary: dict[str, Any] = {
        "runs": runs, "interval": interval, "mode": mode, "command": list(command), "profiled_command": prof_cmd,
        "unprofiled": {"wall": statistics.median(r.wall for r in plain),
                       "cpu": statistics.median(r.cpu for r in plain)},
        "profiled": {"wall": statistics.median(r.wall for r in prof), "cpu": statistics.median(r.cpu for r in prof)},
        "wall_ratio": _quantile_summary(wall_ratios) if wall_ratios else None,
        "cpu_ratio": _quantile_summary(cpu_ratios) if cpu_ratios else None,
        "exit_code": expected,
    }
    summary["wall_overhead_pct"] = 100 * (summary["wall_ratio"]["median"] - 1) if wall_ratios else None
    summary["cpu_overhead_pct"] = 100 * (summary["cpu_ratio"]["median"] - 1) if cpu_ratios else None
    return {"summary": summary, "runs": [asdict(r) for r in results]}


def format_summary(s: dict[str, Any]) -> str:
    lines = [f"ringprof overhead of {' '.join(s['command'])}",
             f"  {s['runs']} runs each, interleaved; ringprof {s['mode']} mode, interval {s['interval']:g} s",
             f"  {'':10} {'unprofiled':>11} {'profiled':>11}   overhead: median [min, max] of {s['runs']} pairs"]
    for key, label in (("wall", "wall time"), ("cpu", "CPU time")):
        r = s[f"{key}_ratio"]
        ratio = f"{_pct(r['median'])} [{_pct(r['min'])}, {_pct(r['max'])}]" if r else "n/a (zero time)"
        lines.append(f"  {label:<10} {s['unprofiled'][key]:>10.3f}s {s['profiled'][key]:>10.3f}s   {ratio}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, prog: str = "ringprof overhead") -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            ns = _parser(prog).parse_args(args)
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        command = list(ns.command)
        if command and command[0] == "--":
            command = command[1:]
        if ns.runs < 1:
            raise UsageError(f"-n/--runs must be at least 1, got {ns.runs}")
        if ns.warmup < 0:
            raise UsageError(f"--warmup must be 0 or more, got {ns.warmup}")
        if ns.max_overhead is not None and not ns.max_overhead >= 0:
            raise UsageError(f"--max-overhead must be a percentage >= 0, got {ns.max_overhead}")
        if ns.metric not in ("cpu", "wall"):
            raise UsageError(f"unknown --metric {ns.metric!r}: expected 'cpu' or 'wall'")
        from .sampler import validate_options

        try:
            validate_options(ns.interval, ns.mode, 128, "auto")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        profiled_command(command, [])  # validate the command before running anything
        if ns.json:
            d = os.path.dirname(os.path.abspath(ns.json))
            if not os.path.isdir(d):
                raise UsageError(f"cannot write {ns.json}: directory {d} does not exist")
        res = measure(command, ns.runs, ns.interval, ns.mode, ns.warmup, ns.show_output, ns.allow_failure)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    s = res["summary"]
    print(format_summary(s))
    code = 0
    if ns.max_overhead is not None:
        value = s[f"{ns.metric}_overhead_pct"]
        s["max_overhead_pct"] = ns.max_overhead
        if value is not None and value > ns.max_overhead:
            print(f"FAIL: median {ns.metric} overhead {value:+.1f}% exceeds --max-overhead {ns.max_overhead:g}%")
            code = 1
        else:
            shown = "n/a" if value is None else f"{value:+.1f}%"
            print(f"OK: median {ns.metric} overhead {shown} is within --max-overhead {ns.max_overhead:g}%")
    s["passed"] = code == 0
    if ns.json:
        with open(ns.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(prog="python -m ringprof.bench"))
