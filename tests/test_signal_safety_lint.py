"""The signal-safety lint (tools/signal_safety_lint.py): csrc/ passes it, and it
catches what it is there to catch (a disallowed call reached directly, through
a static helper or through another file, and indirect calls)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = ROOT / "tools" / "signal_safety_lint.py"

pytestmark = [
    pytest.mark.skipif(shutil.which("gcc") is None, reason="the lint needs gcc (-fcallgraph-info)"),
    pytest.mark.skipif(not LINT.exists(), reason="tools/ is not beside the tests (installed-package run)"),
]


def run_lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(LINT), "--python", sys.executable, *args],
                          capture_output=True, text=True, timeout=300)


def test_csrc_handler_is_async_signal_safe() -> None:
    res = run_lint("-v")
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    assert "all calls out of csrc/ are async-signal-safe" in res.stdout
    # sanity: the walk really went through the handler's helpers
    for fn in ("rp_handler", "walk", "rp_ring_reserve", "rpc_this_tstate"):
        assert fn in res.stdout, res.stdout


def test_lint_catches_unsafe_calls(tmp_path: Path) -> None:
    (tmp_path / "other.c").write_text(textwrap.dedent('''
        #include <stdio.h>
        void helper_in_other_file(void) { puts("hi"); }
    '''))
    (tmp_path / "handler.c").write_text(textwrap.dedent('''
        #include <stdlib.h>
        #include <time.h>
        #include <Python.h>
        void helper_in_other_file(void);
        typedef void (*hook_t)(void);
        hook_t hook;
        static inline void *deep(size_t n) { return malloc(n); }
        static void middle(void) { free(deep(8)); }
        void rp_handler(int sig)
        {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);     /* allowed */
            middle();                                 /* malloc + free through helpers */
            helper_in_other_file();                   /* puts, in another file */
            hook();                                   /* indirect */
            Py_INCREF(Py_None);                       /* fine: an inline refcount op, but... */
            PyObject_Repr(Py_None);                   /* ...the C-API is not */
            (void)sig;
        }
    '''))
    res = run_lint("--csrc", str(tmp_path))
    assert res.returncode == 1, f"{res.stdout}\n{res.stderr}"
    out = res.stdout
    for name in ("malloc()", "free()", "puts()", "PyObject_Repr()", "indirect call"):
        assert name in out, out
    assert "clock_gettime" not in out, out


def test_lint_reports_a_missing_entry_point(tmp_path: Path) -> None:
    (tmp_path / "x.c").write_text("int nothing_here(void) { return 0; }\n")
    res = run_lint("--csrc", str(tmp_path))
    assert res.returncode == 1 and "entry point 'rp_handler' not found" in res.stdout, res.stdout


def test_lint_wants_a_contract_at_the_top_of_each_header(tmp_path: Path) -> None:
    (tmp_path / "handler.c").write_text("void rp_handler(int sig) { (void)sig; }\n")
    (tmp_path / "helper.h").write_text("/* helper.h -- a helper, with no word on signals. */\nint f(void);\n")
    res = run_lint("--csrc", str(tmp_path))
    assert res.returncode == 1 and "helper.h: no SIGNAL-SAFETY CONTRACT" in res.stdout, res.stdout
    (tmp_path / "helper.h").write_text("/* helper.h\n * SIGNAL-SAFETY CONTRACT\n * Not called from the handler.\n */\n")
    res = run_lint("--csrc", str(tmp_path))
    assert res.returncode == 0, res.stdout
