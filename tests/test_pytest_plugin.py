"""The pytest plugin, through real pytest sessions (``pytester``, in subprocesses):
plain, under pytest-xdist (``-n 2``) and with pytest-benchmark.

Each inner test burns CPU in its own uniquely named function, so a flame
graph cut for one test must show that function and not the others'.
"""

from __future__ import annotations

import json
import re

import numpy  # noqa: F401 - loaded before pytester snapshots sys.modules: numpy cannot be imported twice per process
import pytest

from ringprof.model import ProfileData

pytest_plugins = ("pytester",)

_TESTS = """
import time

def _burn(seconds):
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1
    return x

def alpha_burn():
    return _burn(0.6)

def beta_burn():
    return _burn(0.3)

def gamma_burn():
    return _burn(0.1)

def test_alpha():
    alpha_burn()

def test_beta():
    beta_burn()

def test_gamma():
    gamma_burn()

def test_quick():
    assert True
"""

_BURNERS = ("alpha_burn", "beta_burn", "gamma_burn")


def function_names(data: ProfileData) -> dict[str, int]:
    """Total weight per function name."""
    return {stat.key[2]: stat.total_weight for stat in data.function_stats()}


def test_off_unless_asked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sample=_TESTS)
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=4)
    assert "ringprof" not in result.stdout.str()
    assert not (pytester.path / "ringprof-pytest").exists()


def test_session_and_slowest_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sample=_TESTS)
    result = pytester.runpytest_subprocess("--ringprof=out", "--ringprof-top", "2", "-q")
    result.assert_outcomes(passed=4)
    out = pytester.path / "out"
    text = result.stdout.str()
    assert "= ringprof =" in text
    assert re.search(r"^session: out/session\.html$", text, re.M), text

    session = ProfileData.load(out / "session.ringprof")
    names = function_names(session)
    assert all(name in names for name in _BURNERS)
    # 0.6 : 0.3 : 0.1 s of CPU, within sampling noise.
    assert names["alpha_burn"] > names["beta_burn"] > names["gamma_burn"]
    html = (out / "session.html").read_text()
    assert all(name in html for name in _BURNERS)

    tests = sorted(p.name for p in (out / "tests").iterdir())
    assert tests == ["01-test_sample.py-test_alpha.html", "02-test_sample.py-test_beta.html"]
    (out / "tests" / "03-from-an-earlier-run.html").write_text("old")
    alpha = (out / "tests" / tests[0]).read_text()
    beta = (out / "tests" / tests[1]).read_text()
    assert "alpha_burn" in alpha and "beta_burn" not in alpha and "gamma_burn" not in alpha
    assert "beta_burn" in beta and "alpha_burn" not in beta
    assert "tests/01-test_sample.py-test_alpha.html" in text

    # A second run replaces the slowest-test graphs of the first.
    result = pytester.runpytest_subprocess("--ringprof=out", "--ringprof-top", "1", "-q", "-k", "beta or quick")
    result.assert_outcomes(passed=2, deselected=2)
    assert sorted(p.name for p in (out / "tests").iterdir()) == ["01-test_sample.py-test_beta.html"]


def test_bad_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sample="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--ringprof=out", "--ringprof-top", "-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--ringprof-top must be >= 0" in result.stderr.str()


def test_xdist_one_profile_per_worker_merged(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_sample=_TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "--ringprof=out", "--ringprof-top", "3", "-q")
    result.assert_outcomes(passed=4)
    out = pytester.path / "out"
    workers = sorted(p.name for p in (out / "workers").iterdir())
    assert workers == ["gw0.ringprof", "gw1.ringprof"]
    per_worker = [function_names(ProfileData.load(out / "workers" / w)) for w in workers]
    merged = function_names(ProfileData.load(out / "session.ringprof"))
    for name in _BURNERS:
        # Each burner ran on exactly one worker, and the merged profile has all of its weight.
        owners = [names[name] for names in per_worker if name in names]
        assert len(owners) == 1, (name, per_worker)
        assert merged[name] == owners[0]
    tests = sorted(p.name for p in (out / "tests").iterdir())
    # The three slowest, ranked by wall duration: on a loaded machine two
    # workers' tests can swap places (0.3 s and 0.1 s of CPU did), so the
    # ranks are not checked here, only which tests and their own flame graphs.
    assert [t[:3] for t in tests] == ["01-", "02-", "03-"], tests
    assert sorted(t[3:] for t in tests) == ["test_sample.py-test_alpha.html", "test_sample.py-test_beta.html",
                                            "test_sample.py-test_gamma.html"]
    for t in tests:
        burner = t.rsplit("-test_", 1)[1].removesuffix(".html") + "_burn"
        assert burner in (out / "tests" / t).read_text(), t
    text = result.stdout.str()
    assert "worker gw0: out/workers/gw0.ringprof" in text and "session: out/session.html" in text


def test_benchmark_gets_a_profile_of_the_benchmarked_function(pytester: pytest.Pytester,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pytest_benchmark")
    # Under pytest -n, the inner run would inherit PYTEST_XDIST_WORKER, and
    # pytest-benchmark then takes itself to be on an xdist worker and calls the
    # benchmarked function once instead of 150 times (2 ms: no sample).
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_bench="""
import time

def bench_target():
    end = time.thread_time() + 0.002
    while time.thread_time() < end:
        pass

def other_work():
    end = time.thread_time() + 0.3
    while time.thread_time() < end:
        pass

def test_target(benchmark):
    benchmark.pedantic(bench_target, rounds=150, iterations=1)

def test_other():
    other_work()
""")
    result = pytester.runpytest_subprocess("--ringprof=out", "--benchmark-json=bench.json", "-q", "-p", "no:xdist")
    result.assert_outcomes(passed=2)
    out = pytester.path / "out"
    path = out / "benchmarks" / "test_bench.py-test_target.html"
    html = path.read_text()
    assert "bench_target" in html and "other_work" not in html
    report = json.loads((pytester.path / "bench.json").read_text())
    (bench,) = report["benchmarks"]
    assert bench["extra_info"]["ringprof"] == str(path)
    assert "benchmark test_bench.py::test_target: out/benchmarks/test_bench.py-test_target.html" in result.stdout.str()


# needs many recordings: the session profile runs beside a recording the tests' process already has.
def test_profiles_while_another_recording_runs(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("import ringprof\n\ndef pytest_configure(config):\n    ringprof.start()\n")
    pytester.makepyfile(test_sample=_TESTS)
    result = pytester.runpytest_subprocess("--ringprof=out", "-q")
    result.assert_outcomes(passed=4)
    assert "not profiling" not in result.stdout.str()
    names = function_names(ProfileData.load(pytester.path / "out" / "session.ringprof"))
    assert all(name in names for name in _BURNERS)
