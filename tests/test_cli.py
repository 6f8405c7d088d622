"""``python -m ringprof`` / ``ringprof`` end to end, in subprocesses.

The profiled program must not notice the profiler: same stdout, same
sys.argv, same exit code as a plain run.  Bad input: one line on stderr
starting with ``ringprof: error:``, exit code 2, and the program never runs
(the target scripts append to $RINGPROF_TEST_MARKER when they run).
"""

from __future__ import annotations

import os
import pstats
import shutil
import sys
from typing import Any

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "targets"))

import rp_harness as H

import ringprof

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")

SCRIPT = H.target_path("cli_script.py")
SCRIPT_ARGS = ["a", "-b", "--c=1", "-o", "x", "--", "-m", "json"]


def run(args: list[str], tmp_path: Any, *, cwd: str | None = None, executable: str | None = None,
        **env: str) -> Any:
    marker = os.path.join(str(tmp_path), "ran.marker")
    base = {"RINGPROF_TEST_MARKER": marker, "RINGPROF_TEST_BURN": "0.2"}
    base.update(env)
    proc = H.run_python(args, cwd=cwd, env=base, timeout=60, executable=executable)
    proc.ran = os.path.exists(marker)  # type: ignore[attr-defined]
    if proc.ran:  # type: ignore[attr-defined]
        os.unlink(marker)
    return proc


def ringprof_cmd() -> list[str]:
    return ["-m", "ringprof"]


# --------------------------------------------------------------------------- transparency
@pytest.mark.parametrize("exit_code", ["0", "3"])
@pytest.mark.parametrize("relative", [True, False])
def test_script_sees_same_argv_stdout_and_exit_code(tmp_path: Any, exit_code: str, relative: bool) -> None:
    cwd = os.path.dirname(H.TARGETS) if relative else str(tmp_path)
    script = os.path.relpath(SCRIPT, cwd) if relative else SCRIPT
    plain = run([script, *SCRIPT_ARGS], tmp_path, cwd=cwd, RINGPROF_TEST_EXIT=exit_code)
    prof = run([*ringprof_cmd(), script, *SCRIPT_ARGS], tmp_path, cwd=cwd, RINGPROF_TEST_EXIT=exit_code)
    assert plain.returncode == int(exit_code), H.describe(plain)
    assert prof.returncode == plain.returncode, H.describe(prof)
    assert prof.stdout == plain.stdout, H.describe(prof)
    assert f"argv: {[script, *SCRIPT_ARGS]!r}" in prof.stdout
    # Our report goes to stderr, after the script's own stderr.
    assert "script stderr line" in prof.stderr
    assert "samples" in prof.stderr and "busy" in prof.stderr, prof.stderr


def test_uncaught_exception_exit_code_and_traceback(tmp_path: Any) -> None:
    plain = run([SCRIPT], tmp_path, RINGPROF_TEST_RAISE="1")
    prof = run([*ringprof_cmd(), SCRIPT], tmp_path, RINGPROF_TEST_RAISE="1")
    assert plain.returncode == 1
    assert prof.returncode == 1, H.describe(prof)
    assert prof.stdout == plain.stdout
    assert "ValueError: requested failure" in prof.stderr
    assert "samples" in prof.stderr  # the report is still written


@pytest.mark.parametrize("module_args", [["x", "-y", "--z=1"], ["-o", "out", "--help"], []])
def test_module_mode_is_transparent(tmp_path: Any, module_args: list[str]) -> None:
    plain = run(["-m", "cli_mod", *module_args], tmp_path, cwd=H.TARGETS, RINGPROF_TEST_EXIT="5")
    prof = run([*ringprof_cmd(), "-i", "0.005", "-m", "cli_mod", *module_args], tmp_path, cwd=H.TARGETS,
               RINGPROF_TEST_EXIT="5")
    assert plain.returncode == 5, H.describe(plain)
    assert prof.returncode == 5, H.describe(prof)
    assert prof.stdout == plain.stdout
    assert "name: __main__ cli_mod" in prof.stdout
    assert "spin" in prof.stderr, prof.stderr


def test_sort_report_goes_to_stderr(tmp_path: Any) -> None:
    plain = run([SCRIPT, "q"], tmp_path)
    prof = run([*ringprof_cmd(), "-s", "cumtime", SCRIPT, "q"], tmp_path)
    assert prof.returncode == 0, H.describe(prof)
    assert prof.stdout == plain.stdout
    assert "cumtime" in prof.stderr or "cumulative" in prof.stderr
    assert "busy" in prof.stderr


def test_wall_mode_from_the_command_line(tmp_path: Any) -> None:
    out = os.path.join(str(tmp_path), "wall.ringprof")
    proc = run([*ringprof_cmd(), "--mode", "wall", "-i", "0.002", "-o", out, SCRIPT], tmp_path)
    assert proc.returncode == 0, H.describe(proc)
    data = ringprof.load(out).data
    assert data.meta["mode"] == "wall" and data.meta["interval"] == 0.002
    assert len(data) >= 50


# --------------------------------------------------------------------------- output files
def test_pstats_output_loads_with_pstats(tmp_path: Any) -> None:
    out = os.path.join(str(tmp_path), "out.prof")
    plain = run([SCRIPT, "1"], tmp_path, RINGPROF_TEST_BURN="0.4")
    proc = run([*ringprof_cmd(), "-o", out, "-i", "0.005", SCRIPT, "1"], tmp_path, RINGPROF_TEST_BURN="0.4")
    assert proc.returncode == 0, H.describe(proc)
    assert proc.stdout == plain.stdout
    stats = pstats.Stats(out)
    keys = [k for k in stats.stats if k[2] == "busy"]  # type: ignore[attr-defined]
    assert keys, list(stats.stats)  # type: ignore[attr-defined]
    filename, lineno, _ = keys[0]
    assert os.path.samefile(filename, SCRIPT)
    assert lineno == H.marker_line("cli_script.py", "BUSY") - 5  # def busy(...)
    assert stats.total_tt > 0.2  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def native_profile(tmp_path_factory: Any) -> str:
    tmp = tmp_path_factory.mktemp("native")
    out = os.path.join(str(tmp), "out.ringprof")
    proc = run([*ringprof_cmd(), "-o", out, "-i", "0.005", SCRIPT, "z"], tmp, RINGPROF_TEST_BURN="0.4")
    assert proc.returncode == 0, H.describe(proc)
    assert proc.ran  # type: ignore[attr-defined]
    return out


def test_native_output_loads(native_profile: str) -> None:
    prof = ringprof.load(native_profile)
    data = prof.data
    assert data.meta["interval"] == 0.005 and data.meta["mode"] == "cpu"
    assert len(data) >= 40
    busy_line = H.marker_line("cli_script.py", "BUSY")
    leaves = [f for f in H.leaf_frames(data) if f is not None and f.name == "busy"]
    assert len(leaves) >= 0.7 * len(data)
    assert all(os.path.samefile(f.filename, SCRIPT) for f in leaves)
    assert any(f.line == busy_line for f in leaves)
    # The launcher (runpy, ringprof.cli) is not part of the program's stacks.
    assert any(r.name == "busy" for r in prof.top(5))


def test_convert_to_pstats_and_collapsed(native_profile: str, tmp_path: Any) -> None:
    n = ringprof.load(native_profile).data.total_weight()
    out = os.path.join(str(tmp_path), "conv.prof")
    proc = run([*ringprof_cmd(), "convert", native_profile, out], tmp_path)
    assert proc.returncode == 0, H.describe(proc)
    assert proc.stdout == ""
    assert any(k[2] == "busy" for k in pstats.Stats(out).stats)  # type: ignore[attr-defined]
    folded = os.path.join(str(tmp_path), "conv.collapsed")
    proc = run([*ringprof_cmd(), "convert", native_profile, folded], tmp_path)
    assert proc.returncode == 0, H.describe(proc)
    with open(folded) as fh:
        lines = [ln for ln in fh.read().splitlines() if ln.strip()]
    assert sum(int(ln.rsplit(" ", 1)[1]) for ln in lines) == n
    assert any("busy" in ln for ln in lines)


# --------------------------------------------------------------------------- bad input
BAD_INPUTS = {
    "interval-zero": ["-i", "0", "{script}"],
    "interval-negative": ["-i", "-1", "{script}"],
    "interval-too-small": ["-i", "1e-6", "{script}"],
    "interval-not-a-number": ["-i", "abc", "{script}"],
    "unknown-mode": ["--mode", "gpu", "{script}"],
    "unknown-format": ["--format", "bogus", "{script}"],
    "unknown-format-with-output": ["-o", "{tmp}/out.prof", "--format", "bogus", "{script}"],
    "unknown-extension": ["-o", "{tmp}/out.bogus", "{script}"],
    "missing-script": ["{tmp}/no_such_script.py"],
    "nothing-to-run": [],
    "output-dir-missing": ["-o", "{tmp}/no/such/dir/out.prof", "{script}"],
    "output-is-a-directory": ["-o", "{tmp}", "{script}"],
    "unknown-sort-key": ["-s", "nosuchkey", "{script}"],
    "bad-max-depth": ["--max-depth", "0", "{script}"],
    "bad-top": ["-n", "0", "{script}"],
    "unknown-option": ["--no-such-option", "{script}"],
    "module-missing-name": ["-m"],
    "unknown-module": ["-m", "no_such_module_for_ringprof_tests"],
    "convert-missing-input": ["convert", "{tmp}/none.ringprof", "{tmp}/x.prof"],
    "convert-missing-output": ["convert", "{tmp}/none.ringprof"],
}


def check_usage_error(proc: Any) -> None:
    assert proc.returncode == 2, H.describe(proc)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, H.describe(proc)
    assert lines[0].startswith("ringprof: error: "), lines[0]
    assert proc.stdout == ""
    assert not proc.ran, "the script ran despite the bad input"  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_nothing_runs(tmp_path: Any, case: str) -> None:
    args = [a.format(script=SCRIPT, tmp=str(tmp_path)) for a in BAD_INPUTS[case]]
    proc = run([*ringprof_cmd(), *args], tmp_path, cwd=str(tmp_path))
    check_usage_error(proc)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_directory(tmp_path: Any) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        proc = run([*ringprof_cmd(), "-o", str(ro / "out.prof"), SCRIPT], tmp_path)
    finally:
        ro.chmod(0o700)
    check_usage_error(proc)


def test_convert_of_a_non_profile_is_a_usage_error(tmp_path: Any) -> None:
    junk = tmp_path / "junk.ringprof"
    junk.write_bytes(b"not a profile at all")
    proc = run([*ringprof_cmd(), "convert", str(junk), str(tmp_path / "x.prof")], tmp_path)
    check_usage_error(proc)


# --------------------------------------------------------------------------- console script
def console_script() -> str:
    path = os.path.join(os.path.dirname(sys.executable), "ringprof")
    if not os.path.exists(path):
        found = shutil.which("ringprof")
        if found is None:
            pytest.skip("no 'ringprof' console script installed next to this Python")
        path = found
    return path


def test_console_script_is_the_same_command(tmp_path: Any) -> None:
    exe = console_script()
    via_m = run([*ringprof_cmd(), SCRIPT, *SCRIPT_ARGS], tmp_path, RINGPROF_TEST_EXIT="7")
    via_script = H.run_python([SCRIPT, *SCRIPT_ARGS], executable=exe, timeout=60,
                              env={"RINGPROF_TEST_EXIT": "7", "RINGPROF_TEST_BURN": "0.2"})
    assert via_script.returncode == via_m.returncode == 7, H.describe(via_script)
    assert via_script.stdout == via_m.stdout
    assert "busy" in via_script.stderr
    # Same validation, same message.
    bad_m = run([*ringprof_cmd(), "-i", "0", SCRIPT], tmp_path)
    bad_s = H.run_python(["-i", "0", SCRIPT], executable=exe, timeout=60)
    assert bad_s.returncode == 2 and bad_s.stderr == bad_m.stderr
    # -m finds modules in the working directory, as `python -m` does.
    plain = run(["-m", "cli_mod", "k"], tmp_path, cwd=H.TARGETS)
    mod = H.run_python(["-m", "cli_mod", "k"], executable=exe, cwd=H.TARGETS, timeout=60)
    assert mod.returncode == plain.returncode == 0, H.describe(mod)
    assert mod.stdout == plain.stdout
