"""Profiler adapters with one shape: ``start()``, ``stop() -> dict`` and, for
accuracy, ``shares(functions)``.

Every adapter profiles the *current* process.  In-process profilers (ringprof,
cProfile, pyinstrument, yappi) are started and stopped around the measured
region; py-spy samples from outside: ``start()`` spawns ``py-spy record --pid
<this pid>`` and returns once py-spy says it is sampling, ``stop()`` reads its
CPU time from /proc, stops it with SIGINT and parses its raw output.  If
py-spy cannot attach (no ptrace permission, not installed) the adapter is
reported unavailable with py-spy's own message.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


class Unavailable(RuntimeError):
    """The peer cannot run here (the message says why)."""


def _key(name: str, filename: str) -> tuple[str, str]:
    """Function identity that every profiler can produce: (file basename, bare name)."""
    return os.path.basename(filename), name.rsplit(".", 1)[-1]


class Adapter:
    name = "?"
    peer = "?"

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> dict[str, Any]:
        raise NotImplementedError

    def shares(self, keys: Iterable[tuple[str, str]], inclusive: bool = True) -> dict[tuple[str, str], float]:
        """Share (0..1) of the profiled time spent in each function (inclusive by default)."""
        raise NotImplementedError

    def self_shares(self) -> dict[tuple[str, str], float]:
        """Self-time share of every function seen."""
        raise NotImplementedError


class Baseline(Adapter):
    name = "baseline"
    peer = "none"

    def start(self) -> None:
        pass

    def stop(self) -> dict[str, Any]:
        return {}


# ---------------------------------------------------------------------- ringprof
class Ringprof(Adapter):
    peer = "ringprof"

    def __init__(self, mode: str = "cpu", hz: float = 100, max_depth: int = 128, **options: Any) -> None:
        self.mode = mode
        self.hz = hz
        self.max_depth = max_depth
        self.options = options
        label = f"{hz / 1000:g}kHz" if hz >= 1000 else f"{hz:g}Hz"
        self.name = f"ringprof {mode} {label}"
        self.prof: Any = None

    def start(self) -> None:
        import ringprof

        self.prof = ringprof.Profile(1.0 / self.hz, self.mode, self.max_depth, **self.options)
        self.prof.enable()

    def stop(self) -> dict[str, Any]:
        prof = self.prof
        drain_cpu = _thread_cpu(getattr(prof, "_thread", None))
        prof.disable()
        s = prof.data.meta["stats"]
        samples = int(s.get("samples", 0))
        return {
            "samples": samples,
            "dropped": int(s.get("dropped", 0)),
            "unattributed": int(s.get("unattributed", 0)),
            "handler_ns": int(s.get("handler_ns", 0)),
            "handler_ns_per_sample": s.get("handler_ns", 0) / samples if samples else None,
            "drain_cpu_s": drain_cpu,
            "weight": int(prof.data.total_weight()),
            "timer": prof.data.meta.get("timer"),
        }

    def _stats(self) -> list[Any]:
        return self.prof.data.function_stats()

    def shares(self, keys: Iterable[tuple[str, str]], inclusive: bool = True) -> dict[tuple[str, str], float]:
        stats = self._stats()
        total = self.prof.data.total_weight() or 1
        want = set(keys)
        out = dict.fromkeys(want, 0.0)
        for st in stats:
            filename, _first, name = st.key
            k = _key(name, filename)
            if k in want:
                out[k] += (st.total_weight if inclusive else st.self_weight) / total
        return out

    def self_shares(self) -> dict[tuple[str, str], float]:
        total = self.prof.data.total_weight() or 1
        out: dict[tuple[str, str], float] = {}
        for st in self._stats():
            filename, _first, name = st.key
            k = _key(name, filename)
            out[k] = out.get(k, 0.0) + st.self_weight / total
        return out


def _thread_cpu(thread: threading.Thread | None) -> float | None:
    """CPU seconds used so far by a live thread (None if unknown)."""
    if thread is None or thread.ident is None or not thread.is_alive():
        return None
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (OSError, AttributeError):
        return None


# ---------------------------------------------------------------------- cProfile
class CProfile(Adapter):
    name = "cProfile"
    peer = "cProfile"

    def start(self) -> None:
        import cProfile

        self.prof = cProfile.Profile()
        self.prof.enable()

    def stop(self) -> dict[str, Any]:
        self.prof.disable()
        return {}

    def _rows(self) -> dict[tuple[str, int, str], tuple[float, float]]:
        import pstats

        st = pstats.Stats(self.prof).stats  # type: ignore[attr-defined]
        return {k: (v[2], v[3]) for k, v in st.items()}  # (tottime, cumtime)

    def shares(self, keys: Iterable[tuple[str, str]], inclusive: bool = True) -> dict[tuple[str, str], float]:
        rows = self._rows()
        total = sum(tt for tt, _ in rows.values()) or 1.0
        want = set(keys)
        out = dict.fromkeys(want, 0.0)
        for (filename, _line, name), (tt, ct) in rows.items():
            k = _key(name, filename)
            if k in want:
                out[k] += (ct if inclusive else tt) / total
        return out

    def self_shares(self) -> dict[tuple[str, str], float]:
        rows = self._rows()
        total = sum(tt for tt, _ in rows.values()) or 1.0
        out: dict[tuple[str, str], float] = {}
        for (filename, _line, name), (tt, _ct) in rows.items():
            k = _key(name, filename)
            out[k] = out.get(k, 0.0) + tt / total
        return out


# ---------------------------------------------------------------------- pyinstrument
class Pyinstrument(Adapter):
    peer = "pyinstrument"

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.name = f"pyinstrument {1 / interval / 1000:g}kHz" if interval <= 0.001 else \
            f"pyinstrument {1 / interval:g}Hz"

    def start(self) -> None:
        try:
            from pyinstrument import Profiler
        except ImportError as exc:
            raise Unavailable(f"pyinstrument not installed: {exc}") from None
        self.prof = Profiler(interval=self.interval)
        self.prof.start()

    def stop(self) -> dict[str, Any]:
        self.session = self.prof.stop()
        return {"samples": getattr(self.session, "sample_count", None)}

    def _walk(self) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float], float]:
        root = self.prof.last_session.root_frame() if hasattr(self.prof, "last_session") else None
        if root is None:
            root = self.session.root_frame()
        incl: dict[tuple[str, str], float] = {}
        selft: dict[tuple[str, str], float] = {}

        def visit(frame: Any, active: frozenset[tuple[str, str]]) -> None:
            k = _key(frame.function or "", frame.file_path or "")
            if k not in active:
                incl[k] = incl.get(k, 0.0) + frame.time
            selft[k] = selft.get(k, 0.0) + frame.time - sum(c.time for c in frame.children)
            for child in frame.children:
                visit(child, active | {k})

        visit(root, frozenset())
        return incl, selft, root.time or 1.0

    def shares(self, keys: Iterable[tuple[str, str]], inclusive: bool = True) -> dict[tuple[str, str], float]:
        incl, selft, total = self._walk()
        src = incl if inclusive else selft
        return {k: src.get(k, 0.0) / total for k in keys}

    def self_shares(self) -> dict[tuple[str, str], float]:
        _incl, selft, total = self._walk()
        return {k: v / total for k, v in selft.items()}


# ---------------------------------------------------------------------- yappi
class Yappi(Adapter):
    peer = "yappi"

    def __init__(self, clock: str = "cpu") -> None:
        self.clock = clock
        self.name = f"yappi {clock}"

    def start(self) -> None:
        try:
            import yappi
        except ImportError as exc:
            raise Unavailable(f"yappi not installed: {exc}") from None
        self.yappi = yappi
        yappi.clear_stats()
        yappi.set_clock_type(self.clock)
        yappi.start(builtins=False, profile_threads=True)

    def stop(self) -> dict[str, Any]:
        self.yappi.stop()
        return {}

    def _rows(self) -> list[Any]:
        return list(self.yappi.get_func_stats())

    def shares(self, keys: Iterable[tuple[str, str]], inclusive: bool = True) -> dict[tuple[str, str], float]:
        rows = self._rows()
        total = sum(r.tsub for r in rows) or 1.0
        want = set(keys)
        out = dict.fromkeys(want, 0.0)
        for r in rows:
            k = _key(r.name, r.module)
            if k in want:
                out[k] += (r.ttot if inclusive else r.tsub) / total
        return out

    def self_shares(self) -> dict[tuple[str, str], float]:
        rows = self._rows()
        total = sum(r.tsub for r in rows) or 1.0
        out: dict[tuple[str, str], float] = {}
        for r in rows:
            k = _key(r.name, r.module)
            out[k] = out.get(k, 0.0) + r.tsub / total
        return out

    def cleanup(self) -> None:
        self.yappi.clear_stats()


# ---------------------------------------------------------------------- py-spy
def pyspy_path() -> str | None:
    exe = shutil.which("py-spy")
    if exe:
        return exe
    cand = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return cand if os.path.exists(cand) else None


def _proc_cpu(pid: int) -> float:
    """user+system CPU seconds of a live process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class PySpy(Adapter):
    """py-spy attached to this process from outside (``py-spy record --pid``)."""

    hz: int = 100
    nonblocking: bool = False
    name: str = field(init=False)
    peer: str = "py-spy"

    def __post_init__(self) -> None:
        self.name = f"py-spy {self.hz}Hz" + (" nonblocking" if self.nonblocking else "")
        self.proc: subprocess.Popen[bytes] | None = None
        self.raw: dict[tuple[tuple[str, str], ...], int] = {}

    def start(self) -> None:
        exe = pyspy_path()
        if exe is None:
            raise Unavailable("py-spy is not installed (pip install py-spy)")
        errors: list[str] = []
        for _attempt in range(3):  # attaching is occasionally flaky ("Failed to find python version")
            err = self._try_start(exe)
            if err is None:
                return
            errors.append(err)
        raise Unavailable("py-spy could not attach: " + errors[-1])

    def _try_start(self, exe: str) -> str | None:
        self.tmp = tempfile.mkdtemp(prefix="ringprof-pyspy-")
        self.out = os.path.join(self.tmp, "raw.txt")
        # --duration makes py-spy announce "Sampling process" once attached (it says nothing
        # without one when stderr is not a terminal); stop() ends it early with SIGINT.
        cmd = [exe, "record", "--pid", str(os.getpid()), "--rate", str(self.hz), "--format", "raw",
               "--function", "--full-filenames", "--duration", "100000", "--output", self.out]
        if self.nonblocking:
            cmd.append("--nonblocking")
        # py-spy's progress messages go to stdout, its errors to stderr: read both.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self._lines: list[str] = []
        self._attached = threading.Event()
        self._drainer = threading.Thread(target=self._read_stderr, daemon=True)
        self._drainer.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None and not self._attached.is_set():
            self._attached.wait(0.01)
        if self._attached.is_set():
            self.cpu0 = _proc_cpu(self.proc.pid)
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._drainer.join(timeout=5)
        shutil.rmtree(self.tmp, ignore_errors=True)
        useful = [ln for ln in self._lines if ln and not ln.lstrip()[:1].isdigit() and "backtrace" not in ln]
        return " | ".join(useful[:2]) or f"py-spy exited with {self.proc.returncode} and no message"

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:  # keeps reading so py-spy never blocks on a full pipe
            line = raw.decode(errors="replace").strip()
            self._lines.append(line)
            if "Sampling process" in line:
                self._attached.set()

    def stop(self) -> dict[str, Any]:
        assert self.proc is not None
        ext_cpu = _proc_cpu(self.proc.pid) - self.cpu0
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._drainer.join(timeout=5)
        self.raw = self._parse()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return {"external_cpu_s": ext_cpu, "samples": sum(self.raw.values())}

    def _parse(self) -> dict[tuple[tuple[str, str], ...], int]:
        out: dict[tuple[tuple[str, str], ...], int] = {}
        if not os.path.exists(self.out):
            return out
        with open(self.out) as fh:
            for line in fh:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if not stack or not count.isdigit():
                    continue
                frames = []
                for fr in stack.split(";"):
                    # "name (path:line)"; names may contain spaces, paths rarely do.
                    name, _, where = fr.rpartition(" (")
                    path = where.rsplit(":", 1)[0] if where else ""
                    frames.append(_key(name or fr, path))
                key = tuple(frames)
                out[key] = out.get(key, 0) + int(count)
        return out

    def shares(self, keys: Iterable[tuple[str, str]], inclusive: bool = True) -> dict[tuple[str, str], float]:
        total = sum(self.raw.values()) or 1
        want = set(keys)
        out = dict.fromkeys(want, 0.0)
        for stack, n in self.raw.items():
            if inclusive:
                for k in set(stack) & want:
                    out[k] += n / total
            elif stack and stack[-1] in want:
                out[stack[-1]] += n / total
        return out

    def self_shares(self) -> dict[tuple[str, str], float]:
        total = sum(self.raw.values()) or 1
        out: dict[tuple[str, str], float] = {}
        for stack, n in self.raw.items():
            if stack:
                out[stack[-1]] = out.get(stack[-1], 0.0) + n / total
        return out


# ---------------------------------------------------------------------- the line-up
def overhead_configs(quick: bool = False, peers: bool = True) -> list[Callable[[], Adapter]]:
    """The configurations of the overhead table, as factories (a fresh adapter per run)."""
    out: list[Callable[[], Adapter]] = [
        lambda: Ringprof("cpu", 100),
        lambda: Ringprof("wall", 1000),
    ]
    if quick:
        return out
    out += [
        lambda: Ringprof("cpu", 250),  # the kernel tick: the highest CPU-time rate here
        lambda: Ringprof("wall", 5000),
    ]
    if peers:
        out += [CProfile, Pyinstrument, Yappi, PySpy]
    return out
