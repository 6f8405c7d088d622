"""Never crash the host: exec() and subprocesses while sampling.

``execve`` keeps ``setitimer`` timers and pending signals and resets caught
signals to ``SIG_DFL`` (terminate, for SIGPROF): without ringprof.lifecycle's
``os.exec*`` wrappers the new program dies of "Profiling timer expired" with
the ITIMER_PROF fallback.  The exec'd program here burns CPU for a while and
exits 7; anything else (notably death by SIGPROF, status -27 / 155) fails.
"""

from __future__ import annotations

import signal
import sys

import pytest
from robust_helpers import run_child

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")

# ~0.3-0.5 s of shell CPU: plenty of ITIMER_PROF ticks at 250 Hz.
SH_BURN = "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done; exit 7"


EXEC_CASES = [(func, "itimer", "cpu", 0.004) for func in ("execv", "execve", "execl", "execlp", "execvp", "execvpe")]
EXEC_CASES += [("execv", "thread", "cpu", 0.004), ("execve", "thread", "wall", 0.0001)]


@pytest.mark.parametrize("func,timer_kind,mode,interval", EXEC_CASES)
def test_exec_while_sampling(func: str, timer_kind: str, mode: str, interval: float) -> None:
    call = {
        "execv": 'os.execv("/bin/sh", ["sh", "-c", SH])',
        "execve": 'os.execve("/bin/sh", ["sh", "-c", SH], dict(os.environ))',
        "execl": 'os.execl("/bin/sh", "sh", "-c", SH)',
        "execlp": 'os.execlp("sh", "sh", "-c", SH)',
        "execvp": 'os.execvp("sh", ["sh", "-c", SH])',
        "execvpe": 'os.execvpe("sh", ["sh", "-c", SH], dict(os.environ))',
    }[func]
    child = run_child(f'''
        SH = {SH_BURN!r}
        prof = ringprof.Profile(interval={interval}, mode={mode!r}, timer_kind={timer_kind!r})
        prof.enable()
        assert prof.data.meta["timer"].startswith({timer_kind!r}), prof.data.meta["timer"]
        # other threads sampling too: their timers must not survive either
        stop = False
        def worker():
            while not stop:
                burn(0.01)
        for _ in range(2):
            threading.Thread(target=worker, daemon=True).start()
        burn(0.1)
        sys.stdout.flush()
        {call}
    ''', expect_rc=7, timeout=60)
    assert child.returncode == 7, child.describe()


@pytest.mark.parametrize("timer_kind", ["thread", "itimer"])
def test_failed_exec_resumes_sampling(timer_kind: str) -> None:
    child = run_child(f'''
        prof = ringprof.Profile(interval=0.004, timer_kind={timer_kind!r})
        prof.enable()
        burn(0.1)
        n0 = prof.data.total_weight()
        errors = []
        for attempt in (lambda: os.execv("/nonexistent/prog", ["prog"]),
                        lambda: os.execvp("no-such-program-ringprof", ["x"]),
                        lambda: os.execl("/etc/passwd", "passwd")):
            try:
                attempt()
            except OSError as exc:
                errors.append(type(exc).__name__)
        still = prof.enabled and rpp.enabled_profiles() == [prof] and native.is_enabled()
        burn(0.3)
        n1 = prof.data.total_weight()
        prof.disable()
        result(errors=errors, still=still, n0=n0, n1=n1, prof_errors=prof.errors)
    ''')
    r = child.result
    assert r["errors"] == ["FileNotFoundError", "FileNotFoundError", "PermissionError"], child.describe()
    assert r["still"], f"sampling did not resume after a failed exec\n{child.describe()}"
    assert r["n1"] - r["n0"] >= 25, child.describe()
    assert r["prof_errors"] == [], child.describe()


def test_exec_from_a_thread_while_sampling() -> None:
    child = run_child(f'''
        SH = {SH_BURN!r}
        prof = ringprof.Profile(interval=0.004, timer_kind="itimer")
        prof.enable()
        def execer():
            burn(0.05)
            os.execv("/bin/sh", ["sh", "-c", SH])
        threading.Thread(target=execer).start()
        burn(5)
        os._exit(3)   # not reached: the exec replaces the whole process
    ''', expect_rc=7)
    assert child.returncode == 7


def test_exec_wrappers_pass_through_when_idle() -> None:
    child = run_child('''
        import ringprof.lifecycle as lc
        prof = ringprof.Profile(interval=0.004)
        prof.enable(); prof.disable()
        wrapped = [n for n in lc.EXEC_FUNCTIONS if hasattr(getattr(os, n), "__ringprof_wrapped__")]
        result(wrapped=wrapped, name=os.execv.__name__)
        os.execv("/bin/sh", ["sh", "-c", "exit 7"])
    ''', expect_rc=7)
    assert sorted(child.result["wrapped"]) == sorted(["execv", "execve", "execl", "execle", "execlp",
                                                      "execlpe", "execvp", "execvpe"]), child.describe()
    assert child.result["name"] == "execv"


def test_exec_wrappers_keep_os_supports_sets() -> None:
    """``os.execve in os.supports_fd`` stays true under the wrappers: CPython's
    test_posix.test_fexecve (and any program asking that way whether execve
    takes a descriptor) was skipped under ringprof-run on 3.15."""
    child = run_child('''
        import ringprof.lifecycle as lc
        before = {name: sorted(n for n in lc.EXEC_FUNCTIONS if getattr(os, n) in getattr(os, name))
                  for name in lc.SUPPORTS_SETS}
        prof = ringprof.Profile(interval=0.004)
        prof.enable(); prof.disable()
        assert hasattr(os.execve, "__ringprof_wrapped__")
        after = {name: sorted(n for n in lc.EXEC_FUNCTIONS if getattr(os, n) in getattr(os, name))
                 for name in lc.SUPPORTS_SETS}
        lc.uninstall()
        restored = {name: sum(1 for f in getattr(os, name) if hasattr(f, "__ringprof_wrapped__"))
                    for name in lc.SUPPORTS_SETS}
        lc.install()
        pid = os.fork()
        if pid == 0:  # execve through the wrapper, with a descriptor as the path
            fd = os.open(sys.executable, os.O_RDONLY)
            os.execve(fd, [sys.executable, "-c", "import sys; sys.exit(5)"], dict(os.environ))
        _, status = os.waitpid(pid, 0)
        result(before=before, after=after, restored=restored, fexecve=os.waitstatus_to_exitcode(status))
    ''')
    r = child.result
    assert "execve" in r["before"]["supports_fd"], child.describe()  # Linux: fexecve
    assert r["after"] == r["before"], child.describe()
    assert set(r["restored"].values()) == {0}, child.describe()
    assert r["fexecve"] == 5, child.describe()


@pytest.mark.parametrize("timer_kind,mode,interval", [("thread", "cpu", 0.004), ("itimer", "cpu", 0.004),
                                                      ("thread", "wall", 0.00005)])
def test_subprocess_children_while_sampling_at_max_rate(timer_kind: str, mode: str, interval: float) -> None:
    child = run_child(f'''
        import subprocess
        SH = {SH_BURN!r}
        prof = ringprof.Profile(interval={interval}, mode={mode!r}, timer_kind={timer_kind!r})
        prof.enable()
        codes = []
        for i in range(2):
            codes.append(subprocess.run(["/bin/sh", "-c", SH]).returncode)
        # a Python child that burns CPU, and one through preexec_fn (fork, not vfork)
        burner = ("import time\\nend = time.process_time() + 0.15\\n"
                  "while time.process_time() < end: pass\\nraise SystemExit(7)")
        codes.append(subprocess.run([sys.executable, "-c", burner]).returncode)
        codes.append(subprocess.run(["/bin/sh", "-c", SH], preexec_fn=lambda: None).returncode)
        procs = [subprocess.Popen(["/bin/sh", "-c", SH]) for _ in range(2)]
        burn(0.1)
        codes += [p.wait() for p in procs]
        armed = native.is_enabled() and prof.data.meta["timer"].startswith({timer_kind!r})
        prof.disable()
        result(codes=codes, armed=armed, samples=len(prof.data))
    ''', timeout=120)
    assert child.result["codes"] == [7] * 6, \
        f"-{int(signal.SIGPROF)} means a child was killed by SIGPROF\n{child.describe()}"
    # the sampler was really running all along (sample counts are the core tests' business:
    # the process-wide itimer can land its few ticks on other threads)
    assert child.result["armed"], child.describe()


def test_posix_spawn_while_sampling() -> None:
    child = run_child(f'''
        SH = {SH_BURN!r}
        prof = ringprof.Profile(interval=0.004, timer_kind="itimer")
        prof.enable()
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", SH], dict(os.environ))
        burn(0.2)
        status = os.waitpid(pid, 0)[1]
        prof.disable()
        result(status=status)
    ''')
    assert child.result["status"] == 7 << 8, child.describe()
