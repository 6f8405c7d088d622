"""RINGPROF_* settings, the launcher (ringprof-run / python -m ringprof.auto)
and ``import ringprof.auto``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ringprof import config
from ringprof.config import ConfigError, from_env
from ringprof.model import ProfileData
from ringprof.sinks.directory import DirectorySink
from ringprof.sinks.pyroscope import PyroscopeSink


def test_defaults():
    s = from_env({})
    assert s.enabled is None and s.interval == 0.01 and s.mode == "cpu" and s.window == 60
    assert s.follow_fork and s.max_depth == 128 and s.labels == {} and s.service is None
    (sink,) = s.sinks
    assert isinstance(sink, DirectorySink) and sink.path.endswith("ringprof-profiles") and sink.keep == 60


def test_every_variable():
    s = from_env({"RINGPROF": "yes", "RINGPROF_INTERVAL": "5ms", "RINGPROF_MODE": "WALL",
                  "RINGPROF_WINDOW": "2m", "RINGPROF_SERVICE": "checkout",
                  "RINGPROF_LABELS": "env=prod, region=eu-west-1,,",
                  "RINGPROF_SINKS": "dir:/var/lib/ringprof?format=pprof&keep=100,"
                                    "pyroscope:http://127.0.0.1:4040?token=abc",
                  "RINGPROF_FOLLOW_FORK": "0", "RINGPROF_MAX_DEPTH": "64"})
    assert s.enabled is True and s.interval == 0.005 and s.mode == "wall" and s.window == 120
    assert s.service == "checkout" and s.labels == {"env": "prod", "region": "eu-west-1"}
    assert not s.follow_fork and s.max_depth == 64
    d, p = s.sinks
    assert isinstance(d, DirectorySink) and d.keep == 100 and d.path == "/var/lib/ringprof"
    assert isinstance(p, PyroscopeSink) and p.headers["Authorization"] == "Bearer abc"
    kw = s.start_kwargs()
    assert kw["continuous"] and kw["tags"] == {"env": "prod", "region": "eu-west-1"} and kw["window"] == 120
    assert from_env({"RINGPROF_INTERVAL": "100hz"}).interval == 0.01
    assert from_env({"RINGPROF_INTERVAL": "250us"}).interval == pytest.approx(0.00025)
    assert from_env({"RINGPROF": "off"}).enabled is False
    assert from_env({"RINGPROF": ""}).enabled is None


@pytest.mark.parametrize(("env", "variable", "text"), [
    ({"RINGPROF": "maybe"}, "RINGPROF", "expected 1 or 0"),
    ({"RINGPROF_INTERVAL": "fast"}, "RINGPROF_INTERVAL", "not an interval"),
    ({"RINGPROF_INTERVAL": "0"}, "RINGPROF_INTERVAL", "positive"),
    ({"RINGPROF_INTERVAL": "1us"}, "RINGPROF_INTERVAL", "below the minimum"),
    ({"RINGPROF_INTERVAL": "120"}, "RINGPROF_INTERVAL", "above the maximum"),
    ({"RINGPROF_MODE": "gpu"}, "RINGPROF_MODE", "unknown mode"),
    ({"RINGPROF_MAX_DEPTH": "deep"}, "RINGPROF_MAX_DEPTH", "integer"),
    ({"RINGPROF_MAX_DEPTH": "0"}, "RINGPROF_MAX_DEPTH", "max_depth"),
    ({"RINGPROF_WINDOW": "soon"}, "RINGPROF_WINDOW", "not a duration"),
    ({"RINGPROF_WINDOW": "0.5"}, "RINGPROF_WINDOW", "shorter than 1 s"),
    ({"RINGPROF_SINKS": "s3://b"}, "RINGPROF_SINKS", "unknown sink"),
    ({"RINGPROF_SINKS": "dir:/x?keep=-1"}, "RINGPROF_SINKS", "keep"),
    ({"RINGPROF_LABELS": "env"}, "RINGPROF_LABELS", "not key=value"),
    ({"RINGPROF_LABELS": "1x=y"}, "RINGPROF_LABELS", "label name"),
    ({"RINGPROF_LABELS": "a=1,a=2"}, "RINGPROF_LABELS", "twice"),
    ({"RINGPROF_FOLLOW_FORK": "2"}, "RINGPROF_FOLLOW_FORK", "expected 1 or 0"),
])
def test_bad_values_are_one_line_naming_the_variable(env, variable, text):
    with pytest.raises(ConfigError) as info:
        from_env(env)
    message = str(info.value)
    assert message.startswith(variable) and text in message and "\n" not in message


def test_env_var_table_is_documented():
    for name in config.ENV_VARS:
        assert f"``{name}``" in config.__doc__


# ---------------------------------------------------------------------- the launcher
PROGRAM = '''
import os, sys, time
end = time.perf_counter() + 0.3
while time.perf_counter() < end:
    sum(range(300))
print("argv", sys.argv[1:], "name", __name__, "path0", os.path.basename(sys.path[0]))
sys.exit(int(os.environ.get("EXIT", "0")))
'''


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RINGPROF")}
    base.update({"RINGPROF_SINKS": f"dir:{tmp_path / 'out'}?format=native", **env})
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=base)


def windows(tmp_path: Path) -> list[ProfileData]:
    out = tmp_path / "out"
    return [ProfileData.load(f) for f in sorted(out.iterdir())] if out.exists() else []


@pytest.fixture
def program(tmp_path: Path) -> Path:
    app = tmp_path / "app dir" / "app.py"
    app.parent.mkdir()
    app.write_text(PROGRAM)
    return app


def test_launcher_runs_a_script_profiled(program, tmp_path):
    proc = run([sys.executable, "-m", "ringprof.auto", str(program), "a", "--b"], tmp_path, EXIT="4",
               RINGPROF_SERVICE="", RINGPROF_LABELS="env=test")
    assert proc.returncode == 4, proc.stderr
    assert "argv ['a', '--b'] name __main__ path0 app dir" in proc.stdout
    (w,) = windows(tmp_path)
    assert len(w) > 0 and w.meta["service"] == "app" and w.meta["tags"] == {"env": "test"}
    assert w.meta["argv"][0] == str(program)
    assert any(f.filename == str(program) for f in w.frames)


def test_launcher_runs_a_module(tmp_path):
    (tmp_path / "mymod.py").write_text(PROGRAM)
    proc = run([sys.executable, "-m", "ringprof.auto", "-m", "mymod", "x"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "argv ['x'] name __main__" in proc.stdout
    (w,) = windows(tmp_path)
    assert w.meta["service"] == "mymod"


def test_launcher_execs_the_named_interpreter(program, tmp_path):
    proc = run([sys.executable, "-m", "ringprof.auto", sys.executable, str(program), "z"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "argv ['z']" in proc.stdout and len(windows(tmp_path)) == 1


def test_launcher_runs_a_console_script_with_its_own_interpreter(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "mytool"
    tool.write_text(f"#!{sys.executable}\n" + PROGRAM)
    tool.chmod(0o755)
    proc = run([sys.executable, "-m", "ringprof.auto", "mytool", "q"], tmp_path,
               PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    assert proc.returncode == 0, proc.stderr
    assert "argv ['q']" in proc.stdout
    (w,) = windows(tmp_path)
    assert w.meta["service"] == "mytool"


@pytest.mark.parametrize(("args", "env", "text"), [
    (["app.py"], {"RINGPROF_INTERVAL": "fast"}, "RINGPROF_INTERVAL: 'fast' is not an interval"),
    (["app.py"], {"RINGPROF_SINKS": "nfs://x"}, "RINGPROF_SINKS: unknown sink"),
    (["missing.py"], {}, "missing.py: no such file or command"),
    (["-m"], {}, "-m needs a module name"),
    (["ls"], {}, "is not a Python program"),
    ([], {}, "usage: ringprof-run"),
])
def test_launcher_errors_are_one_line_and_exit_2(program, tmp_path, args, env, text):
    args = [str(program) if a == "app.py" else a for a in args]
    proc = run([sys.executable, "-m", "ringprof.auto", *args], tmp_path, **env)
    assert proc.returncode == 2
    assert text in proc.stderr and "Traceback" not in proc.stderr
    if args:
        assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == "" and windows(tmp_path) == []  # the program did not run


def test_launcher_respects_the_kill_switch(program, tmp_path):
    proc = run([sys.executable, "-m", "ringprof.auto", str(program)], tmp_path, RINGPROF="0")
    assert proc.returncode == 0 and "argv" in proc.stdout and windows(tmp_path) == []


# ---------------------------------------------------------------------- import ringprof.auto
IMPORTING = "import ringprof.auto\n" + PROGRAM


@pytest.mark.parametrize(("env", "profiled"), [({}, False), ({"RINGPROF": "1"}, True), ({"RINGPROF": "0"}, False)])
def test_import_profiles_only_when_asked(tmp_path, env, profiled):
    app = tmp_path / "svc.py"
    app.write_text(IMPORTING)
    proc = run([sys.executable, str(app)], tmp_path, **env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert len(windows(tmp_path)) == (1 if profiled else 0)


def test_import_with_bad_settings_warns_and_runs_unprofiled(tmp_path):
    app = tmp_path / "svc.py"
    app.write_text(IMPORTING)
    proc = run([sys.executable, str(app)], tmp_path, RINGPROF="1", RINGPROF_MODE="gpu")
    assert proc.returncode == 0 and "argv" in proc.stdout
    assert proc.stderr.strip() == "ringprof: not profiling: RINGPROF_MODE: unknown mode 'gpu': expected 'cpu' or 'wall'"
    assert windows(tmp_path) == []


def test_import_under_the_launcher_does_not_start_twice(tmp_path):
    app = tmp_path / "svc.py"
    app.write_text(IMPORTING)
    proc = run([sys.executable, "-m", "ringprof.auto", str(app)], tmp_path, RINGPROF="1")
    assert proc.returncode == 0, proc.stderr
    assert len(windows(tmp_path)) == 1


def test_start_from_env_in_process(tmp_path, monkeypatch):
    import ringprof
    from ringprof.auto import start_from_env

    monkeypatch.setenv("RINGPROF_SINKS", f"dir:{tmp_path}/o?format=native")
    assert start_from_env({"RINGPROF_SINKS": f"dir:{tmp_path}/o"}) is None  # not asked to
    prof = start_from_env({"RINGPROF": "1", "RINGPROF_SINKS": f"dir:{tmp_path}/o?format=native",
                           "RINGPROF_SERVICE": "inproc"})
    try:
        assert prof is not None and prof.continuous.service == "inproc"
        assert start_from_env({"RINGPROF": "1"}) is None  # already running
    finally:
        ringprof.stop()


# ------------------------------------------------------- import ringprof.auto with profiling off is light
# What `import ringprof.auto` may load when profiling is off: the package (whose __init__ binds the
# small `labels` function) and the entry module.  `__future__` comes with `from __future__ import
# annotations` in those modules.  Everything else waits for RINGPROF to be on.
OFF_PATH_MODULES = {"__future__", "ringprof", "ringprof.auto", "ringprof.labels", "ringprof.label_table"}  # label_table: the table labels.py uses
# Modules the on path loads (so the check below can see them) that the off path must not.
HEAVY_MODULES = ("ringprof.launcher", "ringprof.config", "ringprof.sinks", "ringprof.control",
                 "ringprof.sampler", "ringprof._native", "ringprof._sampler", "ringprof.recording",
                 "ringprof.model", "numpy", "logging", "typing", "dataclasses", "runpy", "shutil",
                 "threading", "ctypes", "pickle", "pstats")

_NEW_MODULES = """
import json, os, sys
before = set(sys.modules)
import ringprof.auto
new = sorted(set(sys.modules) - before)
print(json.dumps({"new": new, "threads": len(os.listdir("/proc/self/task"))}))
"""


def _import_auto_in_a_child(tmp_path, **env):
    import json

    clean = {k: v for k, v in os.environ.items() if not k.startswith("RINGPROF")}
    clean.update(env)
    proc = subprocess.run([sys.executable, "-c", _NEW_MODULES], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=clean)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("value", [None, "", "0", "off", " False ", "no"])
def test_import_with_profiling_off_loads_only_the_entry_module(tmp_path, value):
    env = {} if value is None else {"RINGPROF": value}
    got = _import_auto_in_a_child(tmp_path, **env)
    assert set(got["new"]) <= OFF_PATH_MODULES, sorted(set(got["new"]) - OFF_PATH_MODULES)
    assert not set(got["new"]) & set(HEAVY_MODULES)
    assert got["threads"] == 1
    assert not os.listdir(tmp_path)  # built nothing: no profile directory, no file


def test_import_with_profiling_on_does_load_them(tmp_path):
    """The control for the test above: the same child sees the heavy modules when they load."""
    got = _import_auto_in_a_child(tmp_path, RINGPROF="1", RINGPROF_SINKS=f"dir:{tmp_path}/out?format=pprof")
    assert {"ringprof.launcher", "ringprof.config", "ringprof.sinks", "ringprof.sampler"} <= set(got["new"])
