#!/usr/bin/env python3
"""Signal-safety lint: everything reachable from the SIGPROF handler must be
async-signal-safe.

How: every csrc/*.c file is compiled with ``gcc -fcallgraph-info`` (GCC >= 10)
twice -- at -O0, where every static inline helper (compat getters, ring
producer, ...) is still a call and so is visible, and at -O2, where the
compiler may have introduced calls of its own (memcpy for a struct copy,
say).  The per-file graphs are merged, and a breadth-first walk from
``rp_handler`` follows every call into functions defined in csrc/.  Each call
that leaves csrc/ must be on :data:`ALLOWED`; an indirect call (a function
pointer) is always an error, since the lint cannot see where it goes.

Usage:
    tools/signal_safety_lint.py [--python PYTHON ...] [--entry rp_handler] [-v]

``--python`` selects the interpreter(s) whose headers to compile against
(default: the one running the lint); the compat layer differs per version, so
CI lints every supported version.  Exit status 0 clean, 1 violations, 2 the
lint could not run (no gcc, compile error).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"

#: Calls that may leave csrc/ from inside the handler, and why each is safe.
ALLOWED: dict[str, str] = {
    # POSIX.1-2017 async-signal-safe list
    "clock_gettime": "POSIX async-signal-safe; vDSO, no locks",
    "timer_settime": "POSIX async-signal-safe: the next random period of the thread's own timer",
    "pthread_self": "a TCB register read (glibc/musl); POSIX-safe since 2016 TC",
    "pthread_equal": "pointer compare",
    # raw syscalls with no libc state (not on the POSIX list, which only names
    # POSIX functions; a syscall wrapper that neither allocates nor locks is safe)
    "process_vm_readv": "raw syscall: fault-free copy of our own memory (EFAULT instead of SIGSEGV)",
    "ioctl": "raw syscall: PERF_EVENT_IOC_PERIOD on the thread's own perf event (next random period)",
    # errno lives in TLS; reading its address allocates nothing (static TLS of libc)
    "__errno_location": "errno save/restore (static TLS of libc)",
    # CPython getters documented lock-free in compat/compat.h (plain TSS/TLS or atomic loads)
    "PyGILState_GetThisThreadState": (
        "pthread_getspecific on the gilstate key: array read (3.11-3.14); "
        "a static-TLS load of _Py_tss_gilstate (3.15; checked in Debian's build)"
    ),
    "_PyThreadState_UncheckedGet": "relaxed atomic load of the GIL holder (3.11)",
    "_PyThreadState_GetCurrent": "read of the _Py_tss_tstate thread-local (3.12)",
    "PyThreadState_GetUnchecked": "read of the _Py_tss_tstate thread-local (3.13-3.15)",
    "_Py_IsFinalizing": "atomic load of _PyRuntime._finalizing (<= 3.12)",
    "Py_IsFinalizing": "atomic load of _PyRuntime._finalizing (3.13-3.15)",
}
#: Compiler builtins (atomics etc.) are lock-free instructions, checked by ring.h's static asserts.
ALLOWED_PREFIXES = ("__atomic_", "__sync_", "__builtin_")

EDGE = re.compile(r'edge: \{ sourcename: "(?P<src>[^"]+)" targetname: "(?P<dst>[^"]+)" label: "(?P<at>[^"]*)" \}')
NODE = re.compile(r'node: \{ title: "(?P<title>[^"]+)" label: "(?P<label>[^"]*)"(?P<ext> shape : ellipse)? \}')


@dataclass
class Graph:
    defined: set[str] = field(default_factory=set)  # node titles defined in csrc/
    edges: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: collections.defaultdict(list))
    by_name: dict[str, str] = field(default_factory=dict)  # external-linkage name -> defining title

    def add(self, text: str) -> None:
        for m in NODE.finditer(text):
            title = m.group("title")
            if not m.group("ext"):
                self.defined.add(title)
                if ":" not in title:
                    self.by_name[title] = title
        for m in EDGE.finditer(text):
            self.edges[m.group("src")].append((m.group("dst"), m.group("at")))

    def resolve(self, title: str) -> str | None:
        """The csrc/ definition a call target refers to, or None if it is outside csrc/."""
        if title in self.defined:
            return title
        return self.by_name.get(title)


def python_include(python: str) -> str:
    out = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def build_graph(python: str, work: Path, csrc: Path = CSRC) -> Graph:
    inc = python_include(python)
    graph = Graph()
    for opt in ("-O0", "-O2"):
        for src in sorted(csrc.glob("*.c")):
            obj = work / f"{src.stem}{opt}.o"
            cmd = ["gcc", "-std=gnu11", opt, "-fcallgraph-info", "-fPIC", f"-I{csrc}", f"-I{inc}",
                   "-c", str(src), "-o", str(obj)]
            res = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
            if res.returncode != 0:
                raise RuntimeError(f"compile failed: {' '.join(cmd)}\n{res.stderr}")
            ci = obj.with_suffix(".ci")
            graph.add(ci.read_text())
    return graph


def missing_contracts(csrc: Path = CSRC) -> list[str]:
    """Headers whose opening comment states no signal-safety contract: each
    one says whether (and what of it) the handler may call.  A per-version
    compat header may point to compat.h's contract instead."""
    missing = []
    for header in sorted([*csrc.glob("*.h"), *csrc.glob("compat/*.h")]):
        text = header.read_text(errors="replace")
        opening = text[:text.find("*/")] if text.lstrip().startswith("/*") else ""
        if "SIGNAL-SAFETY CONTRACT" not in opening and "compat.h for the contract" not in opening:
            missing.append(f"{header}: no SIGNAL-SAFETY CONTRACT in its opening comment")
    return missing


def lint(graph: Graph, entry: str) -> tuple[list[str], list[str]]:
    """Returns (violations, reached functions)."""
    start = graph.resolve(entry) or next((t for t in graph.defined if t.endswith(":" + entry)), None)
    if start is None:
        return [f"entry point {entry!r} not found in csrc/"], []
    seen = {start}
    queue = collections.deque([start])
    violations: list[str] = []
    while queue:
        fn = queue.popleft()
        for dst, at in graph.edges.get(fn, []):
            target = graph.resolve(dst)
            if target is not None:
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
                continue
            name = dst.rsplit(":", 1)[-1]
            if name == "__indirect_call":
                violations.append(f"{at}: indirect call in {fn.rsplit(':', 1)[-1]} (cannot be checked)")
            elif name not in ALLOWED and not name.startswith(ALLOWED_PREFIXES):
                violations.append(f"{at}: {fn.rsplit(':', 1)[-1]} calls {name}(), "
                                  "which is not on the async-signal-safe allow-list")
    return sorted(set(violations)), sorted(t.rsplit(":", 1)[-1] for t in seen)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", action="append", help="interpreter whose headers to use (repeatable)")
    ap.add_argument("--entry", default="rp_handler", help="the signal handler (default rp_handler)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every function reached")
    ap.add_argument("--csrc", type=Path, default=CSRC, help=argparse.SUPPRESS)  # the lint's own tests
    ns = ap.parse_args(argv)
    if shutil.which("gcc") is None:
        print("signal_safety_lint: gcc not found", file=sys.stderr)
        return 2
    failed = False
    for problem in missing_contracts(ns.csrc):
        failed = True
        print("signal_safety_lint: " + os.path.relpath(problem, ROOT))
    for python in ns.python or [sys.executable]:
        with tempfile.TemporaryDirectory(prefix="rp-lint-") as tmp:
            try:
                graph = build_graph(python, Path(tmp), ns.csrc)
            except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
                print(f"signal_safety_lint: {exc}", file=sys.stderr)
                return 2
        violations, reached = lint(graph, ns.entry)
        version = subprocess.run([python, "-V"], capture_output=True, text=True).stdout.strip()
        if violations:
            failed = True
            print(f"signal_safety_lint: {version}: {len(violations)} violation(s) reachable from {ns.entry}:")
            for v in violations:
                print("  " + os.path.relpath(v, ROOT) if v.startswith("/") else "  " + v)
        else:
            print(f"signal_safety_lint: {version}: {ns.entry} reaches {len(reached)} functions, "
                  "all calls out of csrc/ are async-signal-safe")
        if ns.verbose:
            print("  reached: " + ", ".join(reached))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
