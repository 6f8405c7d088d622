"""``ringprof.bench`` (``ringprof overhead`` / ``python -m ringprof.bench``).

Structure and exit codes only: the machine is noisy, so no assertion here
depends on how long anything took.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ringprof import bench

PY = sys.executable


@pytest.fixture
def app(tmp_path: Path) -> Path:
    p = tmp_path / "app.py"
    p.write_text("import sys\nprint(sum(range(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)))\n")
    return p


# ---------------------------------------------------------------------- command rewriting
def test_rewrites_a_script_command(app: Path) -> None:
    cmd = bench.profiled_command([PY, str(app), "7"], ["-i", "0.01"])
    assert cmd == [PY, "-m", "ringprof", "-i", "0.01", str(app), "7"]


def test_keeps_interpreter_options(app: Path) -> None:
    cmd = bench.profiled_command([PY, "-u", "-X", "dev", "-W", "error", str(app)], ["-i", "0.01"])
    assert cmd == [PY, "-u", "-X", "dev", "-W", "error", "-m", "ringprof", "-i", "0.01", str(app)]


def test_rewrites_a_module_command() -> None:
    cmd = bench.profiled_command([PY, "-O", "-m", "json.tool", "--sort-keys"], ["--mode", "wall"])
    assert cmd == [PY, "-O", "-m", "ringprof", "--mode", "wall", "-m", "json.tool", "--sort-keys"]


def test_rewrites_a_python_shebang_script(tmp_path: Path) -> None:
    script = tmp_path / "tool"
    script.write_text(f"#!{PY}\nprint('hi')\n")
    script.chmod(0o755)
    assert bench.profiled_command([str(script), "a"], ["-i", "0.01"]) == [
        PY, "-m", "ringprof", "-i", "0.01", str(script), "a"]


@pytest.mark.parametrize(("command", "message"), [
    ([], "no command"),
    (["ls"], "not a Python command"),
    (["definitely-not-a-command-xyz"], "command not found"),
    ([PY, "-c", "pass"], "python -c"),
    ([PY, "-cpass"], "python -c"),
    ([PY], "no script"),
    ([PY, "-m"], "module name"),
    ([PY, "missing_script_xyz.py"], "script not found"),
])
def test_rejects_what_it_cannot_profile(command: list[str], message: str) -> None:
    if command == ["ls"] and not any(os.access(os.path.join(d, "ls"), os.X_OK)
                                     for d in os.environ.get("PATH", "").split(os.pathsep)):
        pytest.skip("no ls on PATH")
    with pytest.raises(bench.UsageError, match=message):
        bench.profiled_command(command, [])


# ---------------------------------------------------------------------- main(): exit codes and output
@pytest.mark.parametrize("argv", [
    ["--", "ls"],
    ["-n", "0", "--", PY, "x.py"],
    ["--mode", "sideways", "--", PY, "x.py"],
    ["-i", "-1", "--", PY, "x.py"],
    ["--metric", "bogus", "--", PY, "x.py"],
    ["--max-overhead", "-5", "--", PY, "x.py"],
    ["--no-such-flag", "--", PY, "x.py"],
    [],
    ["--"],
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], app: Path) -> None:
    argv = [str(app) if a == "x.py" else a for a in argv]
    assert bench.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("ringprof overhead: error: ")


def test_measures_a_tiny_command(app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "res.json"
    rc = bench.main(["-n", "2", "--warmup", "0", "--max-overhead", "1e9", "--json", str(out_json),
                     "--", PY, str(app), "500"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "wall time" in out and "CPU time" in out and "OK:" in out
    res = json.loads(out_json.read_text())
    s = res["summary"]
    assert s["runs"] == 2 and s["mode"] == "cpu" and s["exit_code"] == 0
    assert s["profiled_command"][1:3] == ["-m", "ringprof"]
    assert [r["profiled"] for r in res["runs"]] == [False, True, True, False]  # interleaved, order flips
    for r in res["runs"]:
        assert r["wall"] > 0 and r["cpu"] >= 0 and r["exit_code"] == 0
    for key in ("wall_ratio", "cpu_ratio"):
        if s[key] is not None:
            assert s[key]["min"] <= s[key]["median"] <= s[key]["max"]
    assert s["passed"] is True


def test_module_command_and_wall_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tinymod.py").write_text("print('ok')\n")
    monkeypatch.chdir(tmp_path)
    res = bench.measure([PY, "-m", "tinymod"], runs=1, interval=0.001, mode="wall", warmup=0)
    assert res["summary"]["profiled_command"][-2:] == ["-m", "tinymod"]
    assert len(res["runs"]) == 2


def test_max_overhead_exceeded_exits_1(monkeypatch: pytest.MonkeyPatch, app: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    def fake_measure(command: list[str], *args: Any, **kwargs: Any) -> dict[str, Any]:
        ratio = {"median": 1.2, "min": 1.1, "max": 1.3}
        return {"runs": [], "summary": {
            "runs": 3, "interval": 0.01, "mode": "cpu", "command": command, "profiled_command": command,
            "unprofiled": {"wall": 1.0, "cpu": 1.0}, "profiled": {"wall": 1.2, "cpu": 1.2},
            "wall_ratio": ratio, "cpu_ratio": ratio, "wall_overhead_pct": 20.0, "cpu_overhead_pct": 20.0,
            "exit_code": 0}}

    monkeypatch.setattr(bench, "measure", fake_measure)
    assert bench.main(["--max-overhead", "10", "--", PY, str(app)]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert bench.main(["--max-overhead", "25", "--metric", "wall", "--", PY, str(app)]) == 0
    assert bench.main(["--", PY, str(app)]) == 0  # no budget: report only


def test_failing_command_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("raise SystemExit('boom')\n")
    assert bench.main(["-n", "1", "--warmup", "0", "--", PY, str(bad)]) == 2
    err = capsys.readouterr().err
    assert "exited with status 1" in err and "boom" in err
    assert bench.main(["-n", "1", "--warmup", "0", "--allow-failure", "--", PY, str(bad)]) == 0


def test_standalone_module_entry_point(app: Path) -> None:
    proc = subprocess.run([PY, "-m", "ringprof.bench", "-n", "1", "--warmup", "0", "--", PY, str(app)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "ringprof overhead of" in proc.stdout
    bad = subprocess.run([PY, "-m", "ringprof.bench", "-n", "x"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_bare_python_is_this_interpreter_and_interval_takes_units(
        app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`ringprof overhead -i 10ms -- python app.py`: `python` is sys.executable, not PATH's first
    python (here a decoy that would fail and leave a mark), and -i takes RINGPROF_INTERVAL's units."""
    decoys = tmp_path / "decoys"
    decoys.mkdir()
    mark = tmp_path / "decoy-ran"
    for name in ("python", "python3"):
        decoy = decoys / name
        decoy.write_text(f"#!/bin/sh\ntouch {mark}\nexit 9\n")
        decoy.chmod(0o755)
    monkeypatch.setenv("PATH", f"{decoys}{os.pathsep}{os.environ.get('PATH', '')}")
    for python in ("python", "python3"):
        assert bench.profiled_command([python, str(app)], [])[0] == PY
        out_json = tmp_path / f"{python}.json"
        rc = bench.main(["-n", "1", "--warmup", "0", "-i", "10ms", "--json", str(out_json), "--", python, str(app)])
        assert rc == 0, capsys.readouterr().err
        s = json.loads(out_json.read_text())["summary"]
        assert s["interval"] == 0.01 and s["exit_code"] == 0
        assert s["profiled_command"][:5] == [PY, "-m", "ringprof", "-o", s["profiled_command"][4]]
        assert s["profiled_command"][5:7] == ["-i", "0.01"]
    assert not mark.exists(), "the PATH python ran instead of this interpreter"
    # An explicit path is kept as given.
    assert bench.profiled_command([str(decoys / "python"), str(app)], [])[0] == str(decoys / "python")


@pytest.mark.parametrize(("text", "seconds"), [("10ms", 0.01), ("0.02", 0.02), ("250hz", 0.004), ("500us", 0.0005)])
def test_interval_parser_is_the_config_one(text: str, seconds: float) -> None:
    from ringprof.config import parse_interval

    ns = bench._parser("ringprof overhead").parse_args(["-i", text, "--", PY, "x.py"])
    assert ns.interval == parse_interval(text) == seconds
