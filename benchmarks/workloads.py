"""Benchmark workloads: each a function ``fn(scale=1.0)`` that takes ~0.3-0.5 s
at the default scale on the reference machine (2 cores, Python 3.11).

Own workloads cover the shapes a sampler sees: deep recursion and many small
calls, numpy (time in C, few Python frames), string/dict churn, eight threads
contending for the GIL, and an I/O-bound program that mostly sleeps.  The
``pyperf_*`` workloads are real pyperformance benchmarks imported in-process:
pyperformance ships each as ``data-files/benchmarks/bm_NAME/run_benchmark.py``
whose core function is called directly (no pyperf runner, no worker
processes).  When pyperformance is not installed they are skipped with the
reason in :data:`SKIPPED`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class Workload:
    name: str
    fn: Callable[[float], Any]
    description: str
    threads: int = 1  # Python threads doing the work
    io_bound: bool = False


# ---------------------------------------------------------------------- own workloads
def _fib(n: int) -> int:
    return n if n < 2 else _fib(n - 1) + _fib(n - 2)


class _Vec:
    __slots__ = ("x", "y")

    def __init__(self, x: float, y: float) -> None:
        self.x = x
        self.y = y

    def add(self, other: _Vec) -> _Vec:
        return _Vec(self.x + other.x, self.y + other.y)

    def dot(self, other: _Vec) -> float:
        return self.x * other.x + self.y * other.y


def _small(i: int) -> int:
    return i & 7


def _tree(depth: int) -> int:
    if depth == 0:
        return 1
    return _tree(depth - 1) + _tree(depth - 1) + _small(depth)


def calls(scale: float = 1.0) -> int:
    """Pure-Python call-heavy: recursion (fib, a binary tree) and many small method calls."""
    total = 0
    for _ in range(max(1, round(24 * scale))):
        total += _fib(22)
        total += _tree(13)
        acc = _Vec(0.0, 0.0)
        step = _Vec(1.0, 0.5)
        for i in range(30_000):
            acc = acc.add(step)
            total += _small(i) + int(acc.dot(step)) % 3
    return total


def numeric(scale: float = 1.0) -> float:
    """numpy: elementwise maths, reductions, sorting and FFTs on 1e6-element arrays."""
    import numpy as np

    rng = np.random.default_rng(42)
    x = rng.standard_normal(1_000_000)
    acc = 0.0
    for _ in range(max(1, round(5 * scale))):
        y = np.sin(x) * np.exp(-(x * x)) + np.sqrt(np.abs(x))
        acc += float(np.sort(y)[len(y) // 2])
        acc += float(np.abs(np.fft.rfft(y[:262_144])).sum())
        m = y[:40_000].reshape(200, 200)
        acc += float((m @ m.T).trace())
        acc += float(np.cumsum(y).max())
    return acc


_WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa")


def strings(scale: float = 1.0) -> int:
    """str/dict churn: formatting, split/join, counting, dict and set building."""
    total = 0
    for r in range(max(1, round(14 * scale))):
        counts: dict[str, int] = {}
        lines = [f"{_WORDS[i % 10]}-{i * 7 % 1000} {_WORDS[(i + r) % 10].upper()} {i:08d}" for i in range(25_000)]
        for line in lines:
            for tok in line.split():
                key = tok.lower().strip("0")
                counts[key] = counts.get(key, 0) + 1
        text = "\n".join(sorted(counts, key=counts.__getitem__))
        total += len(text) + len({w.replace("a", "4") for w in counts})
        index = {k: v for k, v in counts.items() if v > 1}
        total += sum(index.values())
    return total


def _cpu_worker(n: int, out: list[int]) -> None:
    s = 0
    for i in range(n):
        s += (i * i) % 7
        if i % 1000 == 0:
            s += _fib(8)
    out.append(s)


def threads(scale: float = 1.0) -> int:
    """Eight threads of pure-Python CPU work contending for the GIL."""
    out: list[int] = []
    workers = [threading.Thread(target=_cpu_worker, args=(int(600_000 * scale), out), name=f"worker-{i}")
               for i in range(8)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return sum(out)


def _io_worker(rounds: int, path: str, out: list[int]) -> None:
    payload = {"id": 0, "items": [{"k": i, "v": str(i) * 3} for i in range(40)]}
    n = 0
    for i in range(rounds):
        payload["id"] = i
        with open(path, "w") as fh:
            json.dump(payload, fh)
        with open(path) as fh:
            n += len(json.load(fh)["items"])
        time.sleep(0.004)  # waiting on "the network"
    out.append(n)


def io_sleep(scale: float = 1.0) -> int:
    """I/O-bound: four threads alternating file writes/reads, JSON and 4 ms sleeps."""
    out: list[int] = []
    with tempfile.TemporaryDirectory(prefix="ringprof-bench-") as tmp:
        workers = [threading.Thread(target=_io_worker, args=(max(1, int(80 * scale)), os.path.join(tmp, f"f{i}"), out))
                   for i in range(4)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    return sum(out)


# ---------------------------------------------------------------------- pyperformance
SKIPPED: dict[str, str] = {}
_PYPERF_MODULES: dict[str, ModuleType] = {}


def pyperformance_dir() -> str | None:
    spec = importlib.util.find_spec("pyperformance")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(next(iter(spec.submodule_search_locations)), "data-files", "benchmarks")


def load_pyperformance(name: str) -> ModuleType:
    """Import pyperformance's ``bm_<name>/run_benchmark.py`` as a module (cached)."""
    mod = _PYPERF_MODULES.get(name)
    if mod is not None:
        return mod
    root = pyperformance_dir()
    if root is None:
        raise ImportError("pyperformance is not installed (pip install -e '.[bench]')")
    path = os.path.join(root, f"bm_{name}", "run_benchmark.py")
    if not os.path.isfile(path):
        raise ImportError(f"pyperformance has no benchmark {name!r} ({path})")
    spec = importlib.util.spec_from_file_location(f"_pyperformance_bm_{name}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # defines functions only: __main__ guards the runner
    _PYPERF_MODULES[name] = mod
    return mod


def pyperf_richards(scale: float = 1.0) -> Any:
    """pyperformance richards: OS task scheduler simulation (classes, attribute access)."""
    return load_pyperformance("richards").Richards().run(max(1, round(12 * scale)))


def pyperf_nbody(scale: float = 1.0) -> Any:
    """pyperformance nbody: float arithmetic in tight loops, lists of lists."""
    return load_pyperformance("nbody").bench_nbody(1, "sun", max(1, int(110_000 * scale)))


def pyperf_deltablue(scale: float = 1.0) -> Any:
    """pyperformance deltablue: one-way constraint solver (deep object graphs, method calls)."""
    mod = load_pyperformance("deltablue")
    for _ in range(max(1, round(100 * scale))):
        mod.delta_blue(100)  # pyperformance's own n


def pyperf_go(scale: float = 1.0) -> Any:
    """pyperformance go: Monte-Carlo tree search for Go (recursion, lists, random)."""
    mod = load_pyperformance("go")
    result = None
    for _ in range(max(1, round(3 * scale))):
        result = mod.versus_cpu()
    return result


def pyperf_raytrace(scale: float = 1.0) -> Any:
    """pyperformance raytrace: a ray tracer (float maths, many small method calls)."""
    side = max(8, int(110 * scale ** 0.5))  # pyperformance's default is 100x100
    return load_pyperformance("raytrace").bench_raytrace(1, side, side, None)


def pyperf_json_dumps(scale: float = 1.0) -> Any:
    """pyperformance json_dumps: json.dumps on small, nested and large objects (time in C)."""
    mod = load_pyperformance("json_dumps")
    data = [(obj, range(count)) for obj, count in (getattr(mod, case) for case in mod.CASES)]
    for _ in range(max(1, round(32 * scale))):
        mod.bench_json_dumps(data)
    return len(data)


# ---------------------------------------------------------------------- registry
_OWN = [
    Workload("calls", calls, "pure-Python recursion and many small calls"),
    Workload("numeric", numeric, "numpy on 1e6-element arrays (time in C)"),
    Workload("strings", strings, "str formatting/split/join, dict and set churn"),
    Workload("threads", threads, "8 threads of pure-Python CPU work", threads=8),
    Workload("io_sleep", io_sleep, "4 threads: file I/O, JSON, 4 ms sleeps", threads=4, io_bound=True),
]
_PYPERF = [
    Workload("pp_richards", pyperf_richards, "pyperformance richards"),
    Workload("pp_nbody", pyperf_nbody, "pyperformance nbody"),
    Workload("pp_deltablue", pyperf_deltablue, "pyperformance deltablue"),
    Workload("pp_go", pyperf_go, "pyperformance go"),
    Workload("pp_raytrace", pyperf_raytrace, "pyperformance raytrace"),
    Workload("pp_json_dumps", pyperf_json_dumps, "pyperformance json_dumps"),
]


def available() -> dict[str, Workload]:
    """Every workload that can run here, by name (pyperformance ones need the package)."""
    out = {w.name: w for w in _OWN}
    for w in _PYPERF:
        try:
            load_pyperformance(w.name.removeprefix("pp_"))
        except Exception as exc:  # ImportError, or a benchmark that changed shape
            SKIPPED[w.name] = f"{type(exc).__name__}: {exc}"
            continue
        out[w.name] = w
    return out


ALL_NAMES = [w.name for w in _OWN + _PYPERF]
