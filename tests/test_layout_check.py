"""The frame-layout check against the running interpreter's debug offsets.

From CPython 3.13 on, the interpreter publishes the offsets of its own structs
in ``_PyRuntime.debug_offsets``.  ringprof compares every offset its handler and
drain use with them and refuses to start on any difference (a wheel built for
one patch release running on another, a patched or debug build): one clear
line, never a crash.  These tests feed the check a copy of the real offsets
with one field changed (``_sampler._test_layout_override``) and watch the
refusal, down to ``enable()``, ``start()`` and ``import ringprof.auto``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ringprof import _sampler

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 13), reason="CPython publishes no debug offsets before 3.13 (nothing to compare with)"
)

OUT_OF_RANGE = "field offset out of range"
#: Offsets the walk and the drain depend on; each must be checked.
REQUIRED_FIELDS = {
    "thread_state.current_frame",
    "thread_state.interp",
    "thread_state.native_thread_id",
    "thread_state.datastack_chunk",
    "interpreter_frame.previous",
    "interpreter_frame.executable",
    "interpreter_frame.instr_ptr",
    "interpreter_frame.owner",
    "interpreter_frame.localsplus",
    "code_object.co_code_adaptive",
}


def refusal_at(at: int, value: int) -> str | None:
    try:
        return _sampler._test_layout_override(True, at, value)
    finally:
        _sampler._test_layout_override(False)


def checked_fields() -> dict[str, int]:
    """Field name -> byte position, found by corrupting each 8-byte field in turn."""
    found: dict[str, int] = {}
    for at in range(16, 4096, 8):
        message = refusal_at(at, 0xDEAD_BEEF_0000)
        if message == OUT_OF_RANGE:
            break
        if message and message.startswith("CPython layout mismatch: "):
            found[message.split()[3]] = at
    return found


def test_healthy_interpreter_passes() -> None:
    assert _sampler.LAYOUT_ERROR is None
    assert _sampler._test_layout_override(False) is None


def test_cookie_and_version_are_checked() -> None:
    cookie = refusal_at(0, 0)
    assert cookie is not None and "cookie" in cookie
    version = refusal_at(8, 0x030A00F0)
    assert version is not None and "version mismatch" in version


def test_every_offset_the_walk_uses_is_checked() -> None:
    found = checked_fields()
    missing = REQUIRED_FIELDS - set(found)
    assert not missing, f"not checked against the running interpreter: {sorted(missing)}"
    if sys.version_info >= (3, 15):
        assert "thread_state.base_frame" in found


def test_a_mismatch_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    at = checked_fields()["thread_state.datastack_chunk"]
    script = textwrap.dedent(
        f"""
        import os, sys
        import ringprof
        from ringprof import _sampler
        _sampler._test_layout_override(True, {at}, 0xDEAD_BEEF_0000)
        for attempt in ("Profile", "start"):
            try:
                if attempt == "Profile":
                    ringprof.Profile().enable()
                else:
                    ringprof.start()
            except Exception as exc:
                text = str(exc)
                assert "\\n" not in text, text
                assert "thread_state.datastack_chunk" in text, text
                print(attempt, "refused:", text)
            else:
                print(attempt, "started: WRONG")
                sys.exit(1)
        assert not _sampler.is_enabled()
        # The auto-start path: one line, and the application runs on.
        os.environ["RINGPROF"] = "1"
        import ringprof.auto
        print("application ran")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Profile refused" in proc.stdout and "start refused" in proc.stdout
    assert "application ran" in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ringprof: not profiling:") and "layout mismatch" in lines[0]


def test_override_is_cleared() -> None:
    """The hook leaves no trace: a real start works after it."""
    refusal_at(16, 1)
    import ringprof

    prof = ringprof.Profile(interval=0.005)
    prof.enable()
    prof.disable()
