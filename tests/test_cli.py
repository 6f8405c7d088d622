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
import subprocess
import sys
from typing import Any

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "targets"))

import rp_harness as H
from unwritable import drop_dac_on_exec, read_only_dir

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
    # Time, not records: a loaded machine folds overruns into weights.  The script
    # burns 0.2 s of CPU, so at least that much wall time passed while sampling.
    assert data.total_weight() * 0.002 >= 0.5 * 0.2, data.total_weight()


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
    # Weights, not records: on a loaded machine fewer, heavier samples carry the same CPU time.
    sampled_cpu = data.total_weight() * 0.005
    assert sampled_cpu >= 0.6 * 0.4, f"{sampled_cpu:.3f} s sampled for 0.4 s of CPU burned"
    busy_line = H.marker_line("cli_script.py", "BUSY")
    weights = data.weight.tolist()
    busy = [(f, w) for f, w in zip(H.leaf_frames(data), weights, strict=True) if f is not None and f.name == "busy"]
    leaves = [f for f, _ in busy]
    assert sum(w for _, w in busy) >= 0.7 * data.total_weight()
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
    "interval-zero-rate": ["-i", "0hz", "{script}"],
    "interval-bad-unit": ["-i", "10parsecs", "{script}"],
    "run-verb-nothing-to-run": ["run"],
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


def _run_unwritable(args: list[str], tmp_path: Any) -> Any:
    """Run the CLI held to permission bits even as root (see tests/unwritable.py)."""
    marker = os.path.join(str(tmp_path), "ran.marker")
    env = dict(os.environ, RINGPROF_TEST_MARKER=marker, RINGPROF_TEST_BURN="0.2")
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60, env=env,
                          preexec_fn=drop_dac_on_exec)
    proc.ran = os.path.exists(marker)  # type: ignore[attr-defined]
    return proc


def test_unwritable_output_directory(tmp_path: Any) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    read_only_dir(ro)
    try:
        proc = _run_unwritable([*ringprof_cmd(), "-o", str(ro / "out.prof"), SCRIPT], tmp_path)
    finally:
        ro.chmod(0o700)
    check_usage_error(proc)
    assert "permission denied" in proc.stderr.lower()
    assert os.listdir(ro) == []  # the writability probe left nothing behind


def test_unreadable_script_is_a_usage_error(tmp_path: Any) -> None:
    script = tmp_path / "secret.py"
    script.write_text(open(SCRIPT).read())
    script.chmod(0o000)
    try:
        proc = _run_unwritable([*ringprof_cmd(), str(script)], tmp_path)
    finally:
        script.chmod(0o600)
    check_usage_error(proc)
    assert "cannot read script" in proc.stderr


def test_output_under_a_file_is_a_usage_error(tmp_path: Any) -> None:
    """A file where the output's directory should be: unwritable for root too."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    proc = run([*ringprof_cmd(), "-o", str(blocker / "out.prof"), SCRIPT], tmp_path)
    check_usage_error(proc)
    assert "is not a directory" in proc.stderr


# The target removes the output directory while it runs: the output and its rescue
# copy (OUT.ringprof, beside it) both fail at the end, after the program ran.
VANISHING_DIR_SCRIPT = """
import os, shutil, sys, time
shutil.rmtree(os.environ["RINGPROF_TEST_OUTDIR"])
deadline = time.thread_time() + 0.1
while time.thread_time() < deadline:
    pass
sys.exit(int(os.environ.get("RINGPROF_TEST_EXIT", "0")))
"""


@pytest.mark.parametrize("program_exit", ["0", "5"])
def test_output_and_rescue_both_unwritable(tmp_path: Any, program_exit: str) -> None:
    script = tmp_path / "vanish.py"
    script.write_text(VANISHING_DIR_SCRIPT)
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "profile.pprof"
    proc = run([*ringprof_cmd(), "-o", str(out), str(script)], tmp_path, RINGPROF_TEST_OUTDIR=str(outdir),
               RINGPROF_TEST_EXIT=program_exit)
    # The profile is lost: exit status 2, unless the program's own failure status is there to keep.
    assert proc.returncode == (2 if program_exit == "0" else 5), H.describe(proc)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, H.describe(proc)
    assert lines[0].startswith("ringprof: error: could not write "), lines[0]
    assert str(out) in lines[0] and f"{out}.ringprof" in lines[0] and "samples lost" in lines[0]


RESCUE_SCRIPT = """
import os, time
os.mkdir(os.environ["RINGPROF_TEST_BLOCK"])  # a directory where the output file goes
deadline = time.thread_time() + 0.1
while time.thread_time() < deadline:
    pass
"""


def test_unwritable_output_is_rescued_beside_it(tmp_path: Any) -> None:
    script = tmp_path / "block.py"
    script.write_text(RESCUE_SCRIPT)
    out = tmp_path / "profile.pprof"
    proc = run([*ringprof_cmd(), "-o", str(out), str(script)], tmp_path, RINGPROF_TEST_BLOCK=str(out))
    assert proc.returncode == 0, H.describe(proc)
    assert f"the profile was saved to {out}.ringprof" in proc.stderr
    assert ringprof.load(f"{out}.ringprof").data.total_weight() > 0


def test_convert_of_a_non_profile_is_a_usage_error(tmp_path: Any) -> None:
    junk = tmp_path / "junk.ringprof"
    junk.write_bytes(b"not a profile at all")
    proc = run([*ringprof_cmd(), "convert", str(junk), str(tmp_path / "x.prof")], tmp_path)
    check_usage_error(proc)


# --------------------------------------------------------------------------- console script
def console_script() -> str:
    """The installed ``ringprof`` console script (a missing one fails: it is what users run)."""
    path = os.path.join(os.path.dirname(sys.executable), "ringprof")
    if not os.path.exists(path):
        found = shutil.which("ringprof")
        assert found is not None, "no 'ringprof' console script installed next to this Python or on PATH"
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


# --------------------------------------------------------------------------- launcher frames
def _launcher_frames(data: Any, launcher_script: str | None) -> list[str]:
    """Frames of the launcher found in any stack that carries weight."""
    package_dir = os.path.dirname(os.path.abspath(ringprof.__file__)) + os.sep
    weights = data.stack_weights().tolist()
    found = set()
    for sid, stack in enumerate(data.stacks):
        if not weights[sid]:
            continue
        for f in (data.frames[i] for i in stack):
            if (f.filename.startswith(package_dir) or f.filename in ("<frozen runpy>",)
                    or os.path.basename(f.filename) == "runpy.py"
                    or (launcher_script is not None and f.filename
                        and os.path.abspath(f.filename) == os.path.abspath(launcher_script))
                    or f.name in ("_run_target", "_run_script", "run_profiled")):
                found.add(f"{f.name} ({f.filename})")
    return sorted(found)


@pytest.mark.parametrize("how", ["console-script", "python-m", "console-script-run-verb"])
@pytest.mark.parametrize("target", ["script", "module"])
def test_no_launcher_frame_in_the_profile(tmp_path: Any, how: str, target: str) -> None:
    """However ringprof is started, the profile starts at the user's program."""
    out = os.path.join(str(tmp_path), "out.ringprof")
    what = [SCRIPT, "x"] if target == "script" else ["-m", "cli_mod", "x"]
    cwd = H.TARGETS if target == "module" else None
    opts = ["-i", "0.002", "-o", out]
    if how == "python-m":
        proc = run([*ringprof_cmd(), *opts, *what], tmp_path, cwd=cwd, RINGPROF_TEST_BURN="0.3")
        launcher = None
    else:
        launcher = console_script()
        verb = ["run"] if how == "console-script-run-verb" else []
        proc = run([*verb, *opts, *what], tmp_path, cwd=cwd, executable=launcher, RINGPROF_TEST_BURN="0.3")
    assert proc.returncode == 0, H.describe(proc)
    data = ringprof.load(out).data
    assert data.total_weight() > 0
    assert _launcher_frames(data, launcher) == []
    hot = "busy" if target == "script" else "spin"
    stats = {st.key[2]: st for st in data.function_stats()}
    assert stats[hot].total_weight >= 0.7 * data.total_weight()  # the program, not the launcher
    # Every stack starts at the program's own module code, the import system loading it
    # (-m, as under `python -m`), or the stand-in for samples taken only in the launcher.
    roots = {data.frames[st[0]] for st, w in zip(data.stacks, data.stack_weights().tolist(), strict=True) if w}
    assert all(f.name in ("<module>", "<launcher>") or f.filename.startswith("<frozen importlib")
               for f in roots), roots


def test_text_report_of_the_console_script_has_no_launcher_rows(tmp_path: Any) -> None:
    exe = console_script()
    proc = run(["-n", "30", SCRIPT], tmp_path, executable=exe)
    assert proc.returncode == 0, H.describe(proc)
    report = proc.stderr[proc.stderr.index("ringprof: "):]
    assert "busy" in report
    for launcher in (exe, "cli.py", "_run_target", "runpy"):
        assert launcher not in report, report


# --------------------------------------------------------------------------- CLI habits
@pytest.mark.parametrize("entry", ["python-m", "console-script"])
def test_version(tmp_path: Any, entry: str) -> None:
    args = ["--version"]
    proc = (run([*ringprof_cmd(), *args], tmp_path) if entry == "python-m"
            else run(args, tmp_path, executable=console_script()))
    assert proc.returncode == 0, H.describe(proc)
    assert proc.stdout.strip().startswith(f"ringprof {ringprof.__version__}"), proc.stdout
    assert not proc.ran  # type: ignore[attr-defined]


@pytest.mark.parametrize(("given", "seconds"), [("10ms", 0.01), ("0.004", 0.004), ("500us", 0.0005),
                                                ("200hz", 0.005), ("2MS", 0.002)])
def test_interval_takes_the_units_of_RINGPROF_INTERVAL(tmp_path: Any, given: str, seconds: float) -> None:
    from ringprof.config import from_env

    assert from_env({"RINGPROF_INTERVAL": given, "RINGPROF_SINKS": f"dir:{tmp_path}"}).interval == seconds
    out = os.path.join(str(tmp_path), "out.ringprof")
    proc = run([*ringprof_cmd(), "-i", given, "-o", out, SCRIPT], tmp_path, RINGPROF_TEST_BURN="0.05")
    assert proc.returncode == 0, H.describe(proc)
    assert ringprof.load(out).data.meta["interval"] == seconds


def test_run_verb_runs_a_script_named_like_a_subcommand(tmp_path: Any) -> None:
    view = tmp_path / "view"
    view.write_text(open(SCRIPT).read())
    # `ringprof view` is always the subcommand: the script does not run, and view says what is missing.
    proc = run([*ringprof_cmd(), "view"], tmp_path, cwd=str(tmp_path))
    check_usage_error(proc)
    assert "input" in proc.stderr
    # `ringprof run view ARGS` runs it, with its own argv and exit code.
    proc = run([*ringprof_cmd(), "run", "view", "a", "-o", "b"], tmp_path, cwd=str(tmp_path),
               RINGPROF_TEST_EXIT="4")
    assert proc.returncode == 4, H.describe(proc)
    assert proc.ran  # type: ignore[attr-defined]
    assert "argv: ['view', 'a', '-o', 'b']" in proc.stdout
    assert "busy" in proc.stderr
    # Options of the run verb are the bare form's.
    proc = run([*ringprof_cmd(), "run", "-i", "1e-6", "view"], tmp_path, cwd=str(tmp_path))
    check_usage_error(proc)


def test_run_verb_and_bare_form_are_the_same(tmp_path: Any) -> None:
    bare = run([*ringprof_cmd(), "-m", "cli_mod", "q"], tmp_path, cwd=H.TARGETS, RINGPROF_TEST_EXIT="3")
    verb = run([*ringprof_cmd(), "run", "-m", "cli_mod", "q"], tmp_path, cwd=H.TARGETS, RINGPROF_TEST_EXIT="3")
    assert bare.returncode == verb.returncode == 3, H.describe(verb)
    assert bare.stdout == verb.stdout
    assert "spin" in verb.stderr


def test_without_launcher_on_a_hand_made_model() -> None:
    """What is cut: exact stacks for each way a sample can meet the launcher."""
    from ringprof import cli
    from ringprof.model import Frame, ProfileData

    bin_script = "/venv/bin/ringprof"
    pkg = os.path.dirname(cli.__file__) + os.sep

    def f(name: str, filename: str) -> Frame:
        return Frame(name, filename, 1, 2)

    entry = [f("<module>", bin_script), f("main", cli.__file__), f("run_profiled", cli.__file__),
             f("_prepare_target.<locals>.run_script", cli.__file__)]
    user = [f("<module>", "/app/app.py"), f("busy", "/app/app.py")]
    data = ProfileData({"mode": "cpu", "interval": 0.01})
    data.add_sample([*entry, f("_exec_script", cli.__file__), *user], thread=1, weight=5, labels={"k": "v"})
    # the profiler's own start/stop, whatever it calls (here functools)
    data.add_sample([*entry[:3], f("disable", pkg + "profile.py"), f("update_wrapper", "/py/functools.py")],
                    thread=1, weight=2)
    data.add_sample(entry[:3], thread=1, weight=1)  # only launcher frames
    runpy = [f("_run_module_as_main", "<frozen runpy>"), f("_run_code", "<frozen runpy>"),
             f("<module>", pkg + "__main__.py"), f("main", cli.__file__), f("run_module", "/py/runpy.py"),
             f("_run_code", "/py/runpy.py")]
    data.add_sample([*runpy, f("<module>", "/app/mod.py")], thread=1, weight=3)
    data.add_sample([f("_bootstrap", "/py/threading.py"), f("worker", "/app/app.py")], thread=2, weight=4)
    out = cli.without_launcher(data, cli.launcher_predicate(frozenset({bin_script})))
    got = sorted(([fr.name for fr in frames], w) for frames, w in out.iter_stacks())
    assert got == sorted([
        (["<module>", "busy"], 5),
        (["<launcher>"], 3),
        (["<module>"], 3),
        (["_bootstrap", "worker"], 4),
    ])
    assert out.total_weight() == data.total_weight() and len(out) == len(data)
    assert out.label_sets[int(out.labels[0])] == {"k": "v"}
    assert sorted(set(out.thread.tolist())) == [1, 2]
