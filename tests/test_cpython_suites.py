"""CPython's own regression tests, run with and without ``ringprof-run``.

A profiler that is left on in production must not change what the program
sees: its threads must not show in ``threading.enumerate()`` or
``threading._dangling`` (CPython's test runner reports such a module as "env
changed"), a forked child must look unprofiled right after ``fork()``, and the
program's own interval timers and signals must behave as without it.  CPython's
test suite checks all of these about itself, so a selection of its test cases
(those that broke under ``ringprof-run`` before, and their neighbours) is run
twice here, plainly and under the launcher (``python -m ringprof.auto``, its
defaults: continuous mode, ``follow_fork``), and the outcome of every test id,
plus the modules the runner found the environment changed in, must be the same.
Timings are never compared.

The stdlib ``test`` package must be installed (Debian and Ubuntu ship it
separately: ``libpython3.X-testsuite``); without it these tests fail, they do
not skip.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")

#: CPython test modules and the test cases run from them: globs on the test id after
#: ``test.MODULE.`` (``*`` also crosses dots: 3.15's test_os is a package).  Chosen to
#: take a few seconds on a loaded machine.
SELECTION: dict[str, tuple[str, ...]] = {
    # Fork right after start (follow_fork): the child must have one thread state.
    # Threads counted through threading: enumerate, active_count, _dangling.
    "test_threading": tuple(f"*.{name}" for name in (
        "test_clear_threads_states_after_fork", "test_dummy_thread_after_fork", "test_is_alive_after_fork",
        "test_main_thread_after_fork", "test_enumerate_after_join", "test_various_ops",
        "test_ident_of_no_threading_threads", "test_limbo_cleanup", "test_no_refcycle_through_target",
        "test_finalize_with_trace", "test_join_nondaemon_on_shutdown",
    )),
    # "env changed" (threading._dangling and more) is checked around each module by the runner.
    "test_os": ("*ForkTests.*", "*PidTests.*", "*.test_fexecve"),  # 3.15: test_posix is inside test_os
    # `os.execve in os.supports_fd` with ringprof's exec guards installed.
    **({"test_posix": ("*.test_fexecve",)} if sys.version_info < (3, 15) else {}),
    # The program's own interval timers (ITIMER_REAL/VIRTUAL/PROF) and signal handlers.
    "test_signal": ("*ItimerTest.*", "*.test_sigwait", "*.test_pthread_sigmask*"),
    "test_threading_local": ("*",),
    "test_sys_setprofile": ("*",),
}


def _match_args() -> list[str]:
    return [arg for module, globs in SELECTION.items() for glob in globs for arg in ("-m", f"test.{module}.{glob}")]


JUNIT_STATUS = {"failure": "failure", "error": "error", "skipped": "skipped"}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(f"test.{module}") is not None
    except ImportError:  # no ``test`` package at all
        return False


def _require_test_package() -> None:
    missing = [m for m in SELECTION if not _installed(m)]
    if missing:
        major, minor = sys.version_info[:2]
        pytest.fail(f"CPython's test package is not installed for {sys.executable} (missing test.{missing[0]}); "
                    f"on Debian/Ubuntu: apt-get install libpython{major}.{minor}-testsuite")


def _outcomes(junit: Path) -> dict[str, str]:
    """test id -> ok / failure / error / skipped, from the runner's JUnit XML."""
    out: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        status = "skipped" if case.get("status") == "skipped" else "ok"
        for child in case:
            status = JUNIT_STATUS.get(child.tag, status)
        out[str(case.get("name"))] = status
    return out


def _env_changed(stdout: str) -> set[str]:
    """Test modules the runner reported as having changed the execution environment."""
    names: set[str] = set(re.findall(r"\b(test_\w+(?:\.\w+)*) failed \(env changed\)", stdout))
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        if "altered the execution environment" in line:
            for following in lines[i + 1:]:
                if not following.startswith(" "):
                    break
                names.update(following.split())
    return names


class _SuiteRun:
    """``python -m test`` on the selection, plainly or under ``ringprof-run``, started at once."""

    def __init__(self, tmp: Path, profiled: bool, mode: str = "cpu") -> None:
        self.dir = tmp / ("profiled" if profiled else "plain")
        self.dir.mkdir()
        self.junit = self.dir / "junit.xml"
        self.cmd = [sys.executable, *(["-m", "ringprof.auto"] if profiled else []),
                    "-m", "test", "--timeout", "300", "--junit-xml", str(self.junit), *_match_args(), *SELECTION]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RINGPROF", "PYTHON"))}
        if profiled:
            # The launcher's defaults (continuous, follow_fork), short windows so that
            # windows are written (and the exporter works) while the tests run.
            env.update(RINGPROF_MODE=mode, RINGPROF_WINDOW="1s", RINGPROF_SINKS=f"dir:{self.dir / 'profiles'}")
        self.proc = subprocess.Popen(self.cmd, cwd=self.dir, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)

    def result(self) -> tuple[dict[str, str], set[str], str]:
        try:
            out, _ = self.proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            pytest.fail(f"{' '.join(self.cmd)} did not finish in 600 s:\n{out[-4000:]}")
        assert self.junit.exists(), \
            f"{' '.join(self.cmd)} wrote no JUnit XML (exit {self.proc.returncode}):\n{out[-4000:]}"
        return _outcomes(self.junit), _env_changed(out), out


def _compare(tmp: Path, mode: str) -> None:
    _require_test_package()
    # Both at once: the outcomes, not the timings, are compared.
    plain_run, prof_run = _SuiteRun(tmp, profiled=False), _SuiteRun(tmp, profiled=True, mode=mode)
    plain, plain_env, plain_out = plain_run.result()
    prof, prof_env, prof_out = prof_run.result()
    # The selection really ran (a typo in a pattern, or an empty run, would make
    # the comparison vacuous) ...
    for module in SELECTION:
        ran = [t for t, s in plain.items() if f".{module}." in t and s != "skipped"]
        assert ran, f"no test of {module} ran unprofiled:\n{plain_out[-3000:]}"
    # ... and the profiled run was profiled: the launcher wrote windows.
    profiles = [p for p in (prof_run.dir / "profiles").glob("*") if p.stat().st_size > 0]
    assert profiles, f"ringprof-run wrote no profile:\n{prof_out[-3000:]}"
    differ = {t: (plain.get(t), prof.get(t)) for t in sorted(set(plain) | set(prof)) if plain.get(t) != prof.get(t)}
    assert not differ, ("test outcomes differ (plain, under ringprof-run):\n"
                        + "\n".join(f"  {t}: {a} -> {b}" for t, (a, b) in differ.items())
                        + f"\n--- profiled output ---\n{prof_out[-4000:]}")
    assert prof_env == plain_env, (f"env changed: plain {sorted(plain_env)}, under ringprof-run {sorted(prof_env)}"
                                   f"\n--- profiled output ---\n{prof_out[-4000:]}")


def test_cpython_tests_same_outcome_under_ringprof_run(tmp_path: Path) -> None:
    """cpu mode, the launcher's default."""
    _compare(tmp_path, "cpu")


def test_cpython_tests_same_outcome_under_ringprof_run_in_wall_mode(tmp_path: Path) -> None:
    """wall mode: test_signal's ITIMER_REAL + pause() case failed while wall
    mode signalled blocked threads (a sampling signal ended pause())."""
    _compare(tmp_path, "wall")
