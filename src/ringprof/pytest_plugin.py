"""pytest plugin: profile a test session with ringprof (off unless asked).

    pytest --ringprof                 # writes ./ringprof-pytest/
    pytest --ringprof=DIR --ringprof-top 10 --ringprof-interval 0.002 --ringprof-mode wall

Registered through the ``pytest11`` entry point, so installing ringprof is
enough; without ``--ringprof`` it only adds its options.  With it, one
:class:`ringprof.Profile` records the whole session and, at the end, DIR holds:

* ``session.html``: the flame graph of the whole run, and ``session.ringprof``
  (the native format, for ``ringprof view``/``convert``);
* ``tests/NN-<test>.html``: one flame graph for each of the ``--ringprof-top``
  slowest tests (default 5; setup, call and teardown), cut out of the session
  profile by the test's time range (all threads);
* ``benchmarks/<test>.html``: with pytest-benchmark, one flame graph per test
  that uses the ``benchmark`` fixture (its call phase: calibration and every
  round of the benchmarked function); the path is also stored in the
  benchmark's ``extra_info["ringprof"]``, so it is in ``--benchmark-json``;
* with pytest-xdist, ``workers/<id>.ringprof``: each worker records its own
  profile and sends it to the controller, which merges them into
  ``session.*`` and picks the slowest tests across all workers.

The terminal summary says where the files are.  This module is deliberately
outside :mod:`ringprof.integrations` (whose package imports numpy): loading
the plugin must cost next to nothing when it is not used.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import pytest

DEFAULT_DIR = "ringprof-pytest"
_KEY = "ringprof"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ringprof", "ringprof sampling profiler")
    group.addoption("--ringprof", dest="ringprof_dir", nargs="?", const=DEFAULT_DIR, default=None, metavar="DIR",
                    help=f"profile the session; write flame graphs to DIR (default ./{DEFAULT_DIR}). "
                         "Write --ringprof=DIR: a bare --ringprof followed by a path takes it as DIR.")
    group.addoption("--ringprof-top", dest="ringprof_top", type=int, default=5, metavar="N",
                    help="with --ringprof: one flame graph for each of the N slowest tests (default 5; 0: none)")
    group.addoption("--ringprof-interval", dest="ringprof_interval", type=float, default=0.005, metavar="SECONDS",
                    help="with --ringprof: sampling interval in seconds (default 0.005)")
    group.addoption("--ringprof-mode", dest="ringprof_mode", choices=("cpu", "wall"), default="cpu",
                    help="with --ringprof: cpu (default) or wall")


def pytest_configure(config: pytest.Config) -> None:
    directory = config.getoption("ringprof_dir")
    if directory is None:
        return
    top = config.getoption("ringprof_top")
    if top < 0:
        raise pytest.UsageError(f"--ringprof-top must be >= 0, got {top}")
    interval = config.getoption("ringprof_interval")
    if not 50e-6 <= interval <= 1:
        raise pytest.UsageError(f"--ringprof-interval must be from 0.00005 to 1 second, got {interval}")
    base = os.path.join(str(config.invocation_params.dir), directory)
    config.pluginmanager.register(SessionProfiler(config, base, top, interval, config.getoption("ringprof_mode")),
                                  "ringprof-session")


@dataclass(frozen=True)
class TestWindow:
    """When a test ran, on the clock of the samples (CLOCK_MONOTONIC ns)."""

    nodeid: str
    start_ns: int
    end_ns: int
    benchmark: bool = False  #: the call phase of a test using pytest-benchmark's fixture

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


def _safe_name(nodeid: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.replace("::", "-")).strip("_.")
    return name[:120] or "test"


def benchmark_path(base: str, nodeid: str) -> str:
    return os.path.join(base, "benchmarks", _safe_name(nodeid) + ".html")


class SessionProfiler:
    def __init__(self, config: pytest.Config, base: str, top: int, interval: float, mode: str) -> None:
        self.config = config
        self.base = base
        self.top = top
        self.interval = interval
        self.mode = mode
        self.worker_id: str | None = getattr(config, "workerinput", {}).get("workerid")
        self.profile: Any = None
        self.windows: list[TestWindow] = []
        self.worker_data: dict[str, tuple[Any, list[TestWindow]]] = {}
        self.written: list[tuple[str, str]] = []  # (what, path)
        self.problem: str | None = None

    # ------------------------------------------------------------------ recording
    def _is_controller(self) -> bool:
        return self.worker_id is None and self.config.pluginmanager.has_plugin("dsession")

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.worker_id is None:  # slowest-test graphs of an earlier run would mix with this run's
            with contextlib.suppress(OSError):
                for name in os.listdir(os.path.join(self.base, "tests")):
                    if re.match(r"^\d{2}-.*\.html$", name):
                        os.unlink(os.path.join(self.base, "tests", name))
        if self._is_controller():
            return  # the workers record; the controller merges
        import ringprof

        profile = ringprof.Profile(interval=self.interval, mode=self.mode)  # type: ignore[arg-type]
        try:
            profile.enable()
        except RuntimeError as exc:
            self.problem = f"not profiling: {exc}"
            return
        self.profile = profile

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, None, None]:
        start = time.monotonic_ns()
        yield
        self.windows.append(TestWindow(item.nodeid, start, time.monotonic_ns()))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        bench = getattr(item, "funcargs", {}).get("benchmark") if "benchmark" in getattr(item, "fixturenames", ()) \
            else None
        if bench is not None and isinstance(getattr(bench, "extra_info", None), dict):
            bench.extra_info["ringprof"] = benchmark_path(self.base, item.nodeid)
        start = time.monotonic_ns()
        yield
        if bench is not None:
            self.windows.append(TestWindow(item.nodeid, start, time.monotonic_ns(), benchmark=True))

    # ------------------------------------------------------------------ xdist
    @pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown without xdist
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        out = getattr(node, "workeroutput", {}).get(_KEY)
        if not out:
            return
        from ringprof.model import ProfileData

        windows = [TestWindow(*w) for w in out["windows"]]
        self.worker_data[str(node.gateway.id)] = (ProfileData.load(out["path"]), windows)

    # ------------------------------------------------------------------ results
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        try:
            self._finish()
        except Exception as exc:  # a profiler must not fail the test run
            self.problem = f"could not write the profiles: {exc!r}"

    def _finish(self) -> None:
        if self.profile is not None:
            self.profile.disable()
        if self.worker_id is not None:  # one profile per worker; the controller merges them
            if self.profile is not None:
                path = os.path.join(self.base, "workers", f"{self.worker_id}.ringprof")
                self._write(self.profile.data, path, "native", f"worker {self.worker_id}")
                self.config.workeroutput[_KEY] = {  # type: ignore[attr-defined]
                    "path": path, "windows": [(w.nodeid, w.start_ns, w.end_ns, w.benchmark) for w in self.windows]}
            return
        parts: dict[str, tuple[Any, list[TestWindow]]]
        if self._is_controller():
            parts = dict(sorted(self.worker_data.items()))
            if not parts:
                self.problem = self.problem or "no worker sent a profile"
                return
        elif self.profile is not None:
            parts = {"": (self.profile.data, self.windows)}
        else:
            return
        os.makedirs(self.base, exist_ok=True)
        merged: Any = None
        for worker, (data, _) in parts.items():
            if worker:
                self.written.append((f"worker {worker}", os.path.join(self.base, "workers", f"{worker}.ringprof")))
            if merged is None:
                merged = data.copy()
            else:
                merged.merge(data)
        title = "pytest " + " ".join(self.config.invocation_params.args)
        self._write(merged, os.path.join(self.base, "session.html"), "html", "session", title=title)
        self._write(merged, os.path.join(self.base, "session.ringprof"), "native", "session (native)")
        tests = sorted(((w, data) for data, windows in parts.values() for w in windows if not w.benchmark),
                       key=lambda wd: -wd[0].seconds)
        for rank, (window, data) in enumerate(tests[:self.top], 1):
            path = os.path.join(self.base, "tests", f"{rank:02d}-{_safe_name(window.nodeid)}.html")
            self._write(data.filter(start_ns=window.start_ns, end_ns=window.end_ns), path, "html",
                        f"{window.seconds:.2f}s {window.nodeid}", title=window.nodeid)
        for data, windows in parts.values():
            for window in windows:
                if window.benchmark:
                    self._write(data.filter(start_ns=window.start_ns, end_ns=window.end_ns),
                                benchmark_path(self.base, window.nodeid), "html",
                                f"benchmark {window.nodeid}", title=window.nodeid)

    def _write(self, data: Any, path: str, fmt: str, what: str, **options: Any) -> None:
        from ringprof.exporters import write

        os.makedirs(os.path.dirname(path), exist_ok=True)
        write(data, path, fmt, **options)
        self.written.append((what, path))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.worker_id is not None:
            return
        terminalreporter.section("ringprof")
        if self.problem is not None:
            terminalreporter.write_line(f"ringprof: {self.problem}")
        cwd = str(self.config.invocation_params.dir)
        for what, path in self.written:
            shown = os.path.relpath(path, cwd) if path.startswith(cwd + os.sep) else path
            terminalreporter.write_line(f"{what}: {shown}")
