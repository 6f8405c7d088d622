"""Never crash the host: interpreter shutdown while sampling.

Nobody calls disable(); daemon threads are still burning CPU (or blocked) when
the main thread finishes.  ringprof's atexit hook must stop the sampler before
finalization (daemon threads' thread states are freed by then), flush the
profile and run the ``at_exit`` callbacks; the process must exit with exactly
the status the program asked for.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from robust_helpers import run_child

import ringprof

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")

DAEMONS = "start_daemons()"  # from robust_helpers.PRELUDE


@pytest.mark.parametrize("mode,interval", [("cpu", 0.004), ("wall", 0.0002)])
@pytest.mark.parametrize("ending,rc", [("pass", 0), ("sys.exit(3)", 3), ("raise KeyError('boom')", 1)])
def test_exit_with_daemon_threads_flushes_profile(tmp_path: Path, mode: str, interval: float,
                                                   ending: str, rc: int) -> None:
    out = tmp_path / "exit.ringprof"
    child = run_child(f'''
        prof = ringprof.Profile(interval={interval}, mode={mode!r})
        prof.enable()
        def flush():
            prof.save({str(out)!r})
            sys.stderr.write("flushed enabled=%s native=%s\\n" % (prof.enabled, native.is_enabled()))
        rph.at_exit(flush)
        {DAEMONS}
        def main_work():
            burn(0.15)
        main_work()
        {ending}
    ''', expect_rc=rc, timeout=60)
    assert "flushed enabled=False native=False" in child.stderr, child.describe()
    data = ringprof.load(out).data
    assert len(data) > 0, child.describe()
    names = {f.name for f in data.frames}
    assert "main_work" in names, child.describe()
    assert "daemon_burner" in names, child.describe()


def test_sys_exit_from_a_thread(tmp_path: Path) -> None:
    """sys.exit() in a thread only ends that thread; the program carries on and
    exits normally, flushing the profile."""
    out = tmp_path / "thread_exit.ringprof"
    child = run_child(f'''
        prof = ringprof.Profile(interval=0.0002, mode="wall")
        prof.enable()
        rph.at_exit(lambda: prof.save({str(out)!r}))
        {DAEMONS}
        def quitter():
            burn(0.03)
            sys.exit(5)
        threads = [threading.Thread(target=quitter) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        burn(0.05)
        print("main done")
    ''', expect_rc=0)
    assert "main done" in child.stdout
    assert len(ringprof.load(out).data) > 0


def test_os_exit_from_a_thread_while_sampling() -> None:
    child = run_child(f'''
        prof = ringprof.Profile(interval=0.0001, mode="wall")
        prof.enable()
        {DAEMONS}
        def quitter():
            burn(0.1)
            os._exit(6)
        threading.Thread(target=quitter).start()
        while True:
            burn(0.05)
    ''', expect_rc=6)
    assert child.returncode == 6


def test_exit_while_non_daemon_threads_are_joined() -> None:
    """threading._shutdown joins non-daemon threads before atexit runs: sampling
    continues meanwhile and stops cleanly afterwards."""
    child = run_child('''
        prof = ringprof.Profile(interval=0.0002, mode="wall")
        prof.enable()
        rph.at_exit(lambda: print("RESULT " + json.dumps({"n": len(prof.data), "on": native.is_enabled()})))
        def worker():
            burn(0.2)
        for _ in range(3):
            threading.Thread(target=worker).start()
    ''')
    assert child.result["n"] > 0 and child.result["on"] is False, child.describe()


def test_enable_inside_a_late_atexit_handler() -> None:
    """A profile enabled from an atexit callback that runs *after* ringprof's
    own shutdown hook keeps sampling into finalization, with daemon threads
    alive: the handler's finalizing check and the native exit hook must keep
    the process alive until it exits."""
    child = run_child(f'''
        import atexit
        def late():
            # registered first => runs last (atexit is LIFO), after ringprof's hook
            p = ringprof.Profile(interval=0.00005, mode="wall")
            p.enable()
            burn(0.05)
        atexit.register(late)
        first = ringprof.Profile(interval=0.0001, mode="wall")
        first.enable()
        {DAEMONS}
        burn(0.1)
    ''', expect_rc=0)
    assert child.returncode == 0


@pytest.mark.parametrize("ending,rc", [("", 0), ("sys.exit(4)", 4)])
def test_cli_output_written_with_daemon_threads_left_running(tmp_path: Path, ending: str, rc: int) -> None:
    script = tmp_path / "leaves_daemons.py"
    script.write_text(f'''
import threading, time, sys
def spinner():
    x = 0
    while True:
        x += 1
def sleeper():
    while True:
        time.sleep(0.001)
for t in (spinner, spinner, sleeper):
    threading.Thread(target=t, daemon=True).start()
def main_hot():
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
main_hot()
print("script done")
{ending}
''')
    out = tmp_path / "cli.ringprof"
    child = run_child("", argv=[sys.executable, "-X", "faulthandler", "-m", "ringprof", "-o", str(out),
                                "--mode", "wall", "-i", "0.0005", str(script)], expect_rc=rc, timeout=60)
    assert "script done" in child.stdout, child.describe()
    data = ringprof.load(out).data
    names = {f.name for f in data.frames}
    assert "main_hot" in names and "spinner" in names, child.describe()
    assert os.path.getsize(out) > 0
