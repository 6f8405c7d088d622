"""Shared plumbing for the "never crash the host" tests (tests/test_robust_*.py).

Every scenario runs in a fresh interpreter (``sys.executable -c CODE``) so that a
crash, a hang or a stray SIGPROF shows up as a failed test carrying the child's
output instead of taking pytest down.  The child gets :data:`PRELUDE` (helpers
such as :func:`burn`) and reports structured results by printing one
``RESULT {json}`` line, which :func:`run_child` parses.

On a timeout the child first gets SIGABRT; it runs with ``-X faulthandler`` so
the failure message shows every thread's Python stack at the moment it hung.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Any

import pytest

PRELUDE = '''
import importlib, json, os, sys, threading, time
import ringprof
rpp = importlib.import_module("ringprof.recording")   # Profile, enabled_profiles(), child_profile()
rpc = importlib.import_module("ringprof.control")     # start(), stop(), started()
rph = importlib.import_module("ringprof.process_hooks")   # at_exit()
native = importlib.import_module("ringprof._sampler")

def burn(seconds):
    """Burn this thread's CPU for `seconds` of its own CPU time."""
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for _ in range(200):
            x += 1
    return x

def spin(seconds):
    """Busy-loop for `seconds` of wall time."""
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += 1
    return x

def result(**kw):
    sys.stdout.write("RESULT " + json.dumps(kw) + "\\n")
    sys.stdout.flush()

def daemon_burner():
    while True:
        burn(0.05)

def daemon_sleeper():
    while True:
        time.sleep(0.001)

def daemon_waiter():
    threading.Event().wait()

def start_daemons():
    """Daemon threads that are still running (2 burning, 2 blocked) at exit."""
    for target in (daemon_burner, daemon_burner, daemon_sleeper, daemon_waiter):
        threading.Thread(target=target, daemon=True).start()

def frame_names(prof):
    return sorted({f.name for f in prof.data.frames})
'''


@dataclass
class Child:
    returncode: int
    stdout: str
    stderr: str
    results: list[dict[str, Any]]
    seconds: float

    @property
    def result(self) -> dict[str, Any]:
        assert self.results, f"child printed no RESULT line\n{self.describe()}"
        return self.results[-1]

    def describe(self) -> str:
        return (f"returncode {describe_rc(self.returncode)} after {self.seconds:.1f}s\n"
                f"--- stdout (tail) ---\n{self.stdout[-4000:]}\n--- stderr (tail) ---\n{self.stderr[-6000:]}")


def describe_rc(rc: int | None) -> str:
    if rc is None:
        return "None"
    if rc < 0:
        try:
            return f"{rc} (killed by {signal.Signals(-rc).name})"
        except ValueError:
            return f"{rc} (killed by signal {-rc})"
    return str(rc)


def run_child(code: str, *, timeout: float = 60, expect_rc: int | None = 0, args: tuple[str, ...] = (),
              env: dict[str, str] | None = None, cwd: str | None = None, prelude: bool = True,
              argv: list[str] | None = None) -> Child:
    """Run ``PRELUDE + code`` in a new interpreter and check its exit status.

    ``argv`` replaces the whole ``python -c CODE`` command (e.g. to run
    ``python -m ringprof``).  ``expect_rc=None`` skips the exit-status check.
    """
    import time

    source = (PRELUDE if prelude else "") + textwrap.dedent(code)
    cmd = argv if argv is not None else [sys.executable, "-X", "faulthandler", "-W", "ignore::DeprecationWarning",
                                         "-c", source, *args]
    full_env = dict(os.environ)
    full_env.pop("PYTHONWARNINGS", None)
    if env:
        full_env.update(env)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env,
                            cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Ask faulthandler for every thread's stack, then make sure it is gone.
        try:
            os.killpg(proc.pid, signal.SIGABRT)
            out, err = proc.communicate(timeout=10)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        child = Child(proc.returncode, out or "", err or "", [], time.monotonic() - t0)
        pytest.fail(f"child hung (no exit within {timeout}s)\n{child.describe()}")
    finally:
        # Nothing the child started may outlive the test.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    results = [json.loads(line[len("RESULT "):]) for line in out.splitlines() if line.startswith("RESULT ")]
    child = Child(proc.returncode, out, err, results, time.monotonic() - t0)
    if expect_rc is not None:
        assert proc.returncode == expect_rc, f"expected exit status {expect_rc}\n{child.describe()}"
    return child


def report(name: str, **values: Any) -> None:
    """Print a measurement so that ``pytest -s`` / ``-rP`` shows it (e.g. torture timings)."""
    print(f"[robust] {name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


def thread_churn_code(mode: str, interval: float, seconds: float, live: int = 64) -> str:
    """Child code: keep ``live`` short-lived threads running (each replaced as soon
    as it ends) for ``seconds`` while sampling, then report what happened."""
    return f'''
import signal, random
prof = ringprof.Profile(interval={interval}, mode={mode!r})
prof.enable()
def leafy(n):
    return sum(i * i for i in range(n))
def short_life(kind):
    if kind == 0:
        leafy(3000)
    elif kind == 1:
        time.sleep(0.0005)
    elif kind == 2:
        ev = threading.Event(); ev.wait(0.001)
    elif kind == 3:
        t = threading.Thread(target=leafy, args=(500,)); t.start(); t.join()   # a thread that makes a thread
    else:
        spin(0.15)    # lives across a few drains: gets armed, then dies with its timer armed
rng = random.Random(1)
deadline = time.monotonic() + {seconds}
running = []
created = 0
while time.monotonic() < deadline:
    while len(running) < {live}:
        k = rng.randrange(60)
        t = threading.Thread(target=short_life, args=(4 if k == 0 else k % 4,))
        t.start()
        running.append(t)
        created += 1
    running[0].join(0.002)
    running = [t for t in running if t.is_alive()]
for t in running:
    t.join()
n = len(prof.data)
tids = len(set(prof.data.thread.tolist()))
prof.disable()
after = native.stats()
spin(0.3)     # nothing may still be armed or pending (SIGPROF is SIG_DFL again)
result(created=created, samples=len(prof.data), tids=tids, threads_after=after["threads"],
       timer_errors=after["timer_errors"], errors=prof.errors,
       dfl=signal.getsignal(signal.SIGPROF) is signal.SIG_DFL, stats=prof.data.meta["stats"]["samples"])
'''


def code_churn_code(count: int, interval: float = 0.0001) -> str:
    """Child code: create and run ``count`` short-lived functions (compile/exec,
    eval'd lambdas, closures and lambdas in loops, dataclasses, namedtuples)
    while sampling in wall mode, then check every resolved frame.

    Code objects die continuously, so their addresses are reused at once: a
    sample whose code pointer were resolved after the object died would name
    a *different* function.  Each generated function therefore carries its
    number in both its name and its filename, and the check verifies (a) names
    match their files, and (b) the caller recorded above every generated frame
    is the module code of the *same* generation.
    """
    return f'''
import collections, dataclasses, inspect, re
prof = ringprof.Profile(interval={interval}, mode="wall")
prof.enable()
import types
def all_qualnames(co):
    yield co.co_qualname
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            yield from all_qualnames(c)
# "<string>" is also the filename of this -c program and of the helper prelude
string_names = {{"<module>", "<lambda>", "__create_fn__", *all_qualnames(sys._getframe().f_code)}}
made = collections.Counter()
t0 = time.perf_counter()
def churn_driver(count):
    i = 0
    while i < count:
        k = i % 8
        if k in (0, 4):
            ns = {{}}
            src = ("def f_%d(x):\\n    return [x * j for j in range(30)]\\n"
                   "def g_%d():\\n    return f_%d(2)\\n"
                   "r = g_%d()\\n") % (i, i, i, i)
            exec(compile(src, "<churn-%d>" % i, "exec"), ns)
            made["exec"] += 2
        elif k in (1, 5):
            fn = eval(compile("lambda y: [y + %d for _ in range(20)]" % i, "<churnl-%d>" % i, "eval"))
            fn(1)
            made["eval"] += 1
        elif k in (2, 6):
            adders = [(lambda v, j=j: v + j) for j in range(5)]       # lambdas in a loop
            def make_closure(c):
                def closure(z):
                    return z * c
                return closure
            sum(a(1) for a in adders) + make_closure(i)(2)
            made["lambda"] += 6
        elif k == 3 and i % 64 == 3:
            C = dataclasses.make_dataclass("D%d" % i, [("a", int), ("b", int)], order=True)
            C(1, 2) == C(1, 2); C(1, 2) < C(2, 1); repr(C(1, 2))
            for v in vars(C).values():
                v = inspect.unwrap(v) if callable(v) else v
                if hasattr(v, "__code__"):
                    string_names.add(v.__code__.co_qualname)
            made["dataclass"] += 1
        elif k == 7 and i % 64 == 7:
            T = collections.namedtuple("T%d" % i, "a b c")
            T(1, 2, 3)._replace(a=5)
            made["namedtuple"] += 1
        i += 1
churn_driver({count})
elapsed = time.perf_counter() - t0
prof.disable()
d = prof.data
problems = []
gen_frames = 0
for fid, f in enumerate(d.frames):
    m = re.fullmatch(r"<churn(l?)-(\\d+)>", f.filename)
    if m:
        gen_frames += 1
        n = m.group(2)
        allowed = ({{"<module>", "<lambda>", "<lambda>.<locals>.<listcomp>", "<listcomp>"}} if m.group(1) else
                   {{"<module>", "f_" + n, "g_" + n, "f_" + n + ".<locals>.<listcomp>", "<listcomp>"}})
        if f.name not in allowed:
            problems.append(("name/file mismatch", f.name, f.filename))
    elif f.filename == "<string>":
        if f.name not in string_names and not f.name.startswith("__create_fn__.<locals>."):
            problems.append(("unknown <string> code", f.name))
# Stack structure: a generated frame's caller is code from the same generation
# (or the driver, for <module>/<lambda>).
for stack in d.stacks:
    frames = [d.frames[i] for i in stack]
    for parent, f in zip(frames, frames[1:]):
        m = re.fullmatch(r"<churn(l?)-(\\d+)>", f.filename)
        if not m or f.name in ("<module>",) or (m.group(1) and f.name == "<lambda>"):
            if m and parent.name != "churn_driver":
                problems.append(("unexpected caller", parent.name, parent.filename, f.name, f.filename))
            continue
        if parent.filename != f.filename:
            problems.append(("caller from another generation", parent.name, parent.filename, f.name, f.filename))
result(count={count}, seconds=elapsed, samples=len(d), frames=len(d.frames), gen_frames=gen_frames,
       made=dict(made), problems=problems[:20], nproblems=len(problems),
       unknown=sum(1 for f in d.frames if f.name == "<unknown>"), invalid=d.meta["stats"]["invalid_frames"],
       parked=native.stats()["parked_codes"])
'''
