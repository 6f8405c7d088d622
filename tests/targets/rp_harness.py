"""Helpers shared by the core tests (not a test module, not a target).

Profiling runs in child interpreters so that a crash of the sampler shows up
as a failed test carrying the child's output instead of killing pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

TARGETS = os.path.dirname(os.path.abspath(__file__))


def target_path(name: str) -> str:
    return os.path.join(TARGETS, name)


def marker_line(name: str, marker: str) -> int:
    """Line number (1-based) of the one line of target ``name`` ending with ``# MARKER``."""
    hits = []
    with open(target_path(name), encoding="utf-8") as fh:
        for no, line in enumerate(fh, 1):
            if line.rstrip().endswith("# " + marker):
                hits.append(no)
    if len(hits) != 1:
        raise AssertionError(f"marker {marker!r} found {len(hits)} times in {name}")
    return hits[0]


def run_python(args: list[str], *, timeout: float = 120, cwd: str | None = None,
               env: dict[str, str] | None = None, executable: str | None = None,
               ) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.pop("PYTHONSTARTUP", None)
    if env:
        full_env.update(env)
    cmd = [executable or sys.executable, *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=full_env)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"child timed out after {timeout}s: {cmd!r}\nstdout:\n{exc.stdout}\n"
                             f"stderr:\n{exc.stderr}") from None


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return (f"exit code {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}\n"
            f"--- stderr ---\n{proc.stderr[-4000:]}")


CHILD_PRELUDE = f"""
import json, os, sys, time
sys.path.insert(0, {TARGETS!r})
import ringprof
def emit(obj):
    sys.stdout.write("\\nRESULT:" + json.dumps(obj) + "\\n")
    sys.stdout.flush()
"""


def run_child(code: str, *, timeout: float = 120, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` (dedented) in a fresh interpreter; return what it ``emit()``-ed.

    A non-zero exit (including death by a signal) fails with the child's output.
    """
    proc = run_python(["-c", CHILD_PRELUDE + textwrap.dedent(code)], timeout=timeout, env=env)
    if proc.returncode != 0:
        raise AssertionError("child failed: " + describe(proc))
    results = [line[len("RESULT:"):] for line in proc.stdout.splitlines() if line.startswith("RESULT:")]
    if len(results) != 1:
        raise AssertionError("child emitted no result: " + describe(proc))
    return json.loads(results[0])


def frames_of(data: Any, sid: int) -> list[Any]:
    """Frames of stack ``sid``, root first."""
    return [data.frames[f] for f in data.stacks[sid]]


def leaf_frames(data: Any) -> list[Any]:
    """The leaf Frame of every sample (in sample order)."""
    leaves = [data.frames[st[-1]] if st else None for st in data.stacks]
    return [leaves[s] for s in data.stack]
