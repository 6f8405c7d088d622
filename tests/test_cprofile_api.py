"""cProfile compatibility: the CProfileMethods mixin, run/runctx, print_report.

The first part uses a fake recorder (enable/disable/data over a hand-made
ProfileData), so it runs without the compiled sampler. The second part drives
the real ``ringprof.Profile`` the way cProfile users do
(``import ringprof as cProfile``) and compares its ranking with cProfile's on
the same workload; it skips while ``ringprof.recording`` or the compiled
``ringprof._sampler`` cannot be imported.
"""

from __future__ import annotations

import cProfile
import importlib
import io
import pstats
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cprofile_models import KEY_A, SORT_ORDERS, recursive_model, sort_model

import __main__
from ringprof import cprofile
from ringprof.cprofile import CProfileMethods
from ringprof.exporters import pstats as pstats_export
from ringprof.model import ProfileData

HEADER = "ncalls  tottime  percall  cumtime  percall filename:lineno(function)"


def _stats(*args: Any, **kwargs: Any) -> Any:
    """pstats.Stats, typed loosely: typeshed lacks its ``stats``/``fcn_list``
    attributes and does not know it accepts any object with ``create_stats``."""
    return pstats.Stats(*args, **kwargs)


class FakeRecorder(CProfileMethods):
    """Just enough of a recorder: logs enable/disable, serves a fixed profile."""

    def __init__(self, data: ProfileData | None = None) -> None:
        self._data = data if data is not None else recursive_model()
        self.log: list[str] = []

    def enable(self) -> None:
        self.log.append("enable")

    def disable(self) -> None:
        self.log.append("disable")

    @property
    def data(self) -> ProfileData:
        return self._data


# --------------------------------------------------------------------- mixin
def test_runcall_returns_result_and_brackets_call() -> None:
    rec = FakeRecorder()

    def work(x: int, *, y: int) -> int:
        rec.log.append("work")
        return x + y

    assert rec.runcall(work, 2, y=3) == 5
    assert rec.log == ["enable", "work", "disable"]


def test_runcall_disables_on_exception() -> None:
    rec = FakeRecorder()

    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        rec.runcall(boom)
    assert rec.log == ["enable", "disable"]


def test_run_uses_main_namespace_and_returns_self() -> None:
    rec = FakeRecorder()
    name = "_ringprof_cprofile_test_var"
    try:
        assert rec.run(f"{name} = 6 * 7") is rec
        assert getattr(__main__, name) == 42
    finally:
        __main__.__dict__.pop(name, None)
    assert rec.log == ["enable", "disable"]


def test_runctx_uses_given_namespaces_and_returns_self() -> None:
    rec = FakeRecorder()
    g: dict[str, Any] = {"base": 10}
    loc: dict[str, Any] = {}
    assert rec.runctx("result = base + 1", g, loc) is rec
    assert loc == {"result": 11}
    with pytest.raises(ZeroDivisionError):
        rec.runctx("1 / 0", {}, {})
    assert rec.log == ["enable", "disable", "enable", "disable"]


def test_create_stats_disables_and_sets_stats() -> None:
    rec = FakeRecorder()
    rec.create_stats()
    assert rec.log == ["disable"]
    assert rec.stats == pstats_export.to_stats_dict(rec.data)


def test_pstats_stats_of_profile_object_can_repeat() -> None:
    """pstats empties ``.stats`` after reading; a second Stats() must still work."""
    rec = FakeRecorder()
    first = _stats(rec)
    assert rec.stats == {}
    second = _stats(rec)
    assert first.stats == second.stats
    assert second.stats[KEY_A][:2] == (6, 9)


def test_print_stats_matches_cprofile_style(capsys: pytest.CaptureFixture[str]) -> None:
    FakeRecorder().print_stats()
    out = capsys.readouterr().out
    assert "23 function calls (17 primitive calls) in 0.070 seconds" in out
    assert "Ordered by: standard name" in out  # sort=-1, as cProfile
    assert HEADER in out
    # strip_dirs(), as cProfile.Profile.print_stats does
    assert "mod.py:10(a)" in out and "/app/mod.py" not in out


@pytest.mark.parametrize(("sort", "heading"), [
    ("cumulative", "cumulative time"),
    ("tottime", "internal time"),
    ("time", "internal time"),
    ("ncalls", "call count"),
    ("name", "function name"),
    ("filename", "file name"),
    (pstats.SortKey.CUMULATIVE, "cumulative time"),
    (2, "cumulative time"),
    (("tottime", "name"), "internal time, function name"),
])
def test_print_stats_sort_keys(capsys: pytest.CaptureFixture[str], sort: Any, heading: str) -> None:
    FakeRecorder(sort_model()).print_stats(sort)
    out = capsys.readouterr().out
    assert f"Ordered by: {heading}" in out
    if isinstance(sort, str) and sort in SORT_ORDERS:
        rows = [line for line in out.splitlines() if line.rstrip().endswith(")") and ".py:" in line]
        names = [row.rsplit("(", 1)[1].rstrip(")") for row in rows]
        assert names == SORT_ORDERS[sort]


def test_print_stats_rejects_unknown_sort() -> None:
    with pytest.raises(KeyError):
        FakeRecorder().print_stats("no-such-key")


@pytest.mark.parametrize("as_path", [False, True])
def test_dump_stats_loads_in_pstats(tmp_path: Path, as_path: bool) -> None:
    rec = FakeRecorder()
    target = tmp_path / "prof.out"
    rec.dump_stats(target if as_path else str(target))
    assert rec.log == ["disable"]
    st = _stats(str(target))
    assert st.stats == pstats_export.to_stats_dict(rec.data)


def test_print_report_stream_and_strip_dirs() -> None:
    out = io.StringIO()
    cprofile.print_report(recursive_model(), "cumulative", stream=out)
    assert "Ordered by: cumulative time" in out.getvalue()
    assert "mod.py:10(a)" in out.getvalue() and "/app/" not in out.getvalue()
    out = io.StringIO()
    cprofile.print_report(recursive_model(), stream=out, strip_dirs=False)
    assert "/app/mod.py:10(a)" in out.getvalue()


def test_sort_keys_cover_cprofile() -> None:
    cprofile_keys = {"calls", "cumulative", "cumtime", "file", "filename", "module", "ncalls",
                     "pcalls", "line", "name", "nfl", "stdname", "time", "tottime"}
    assert set(cprofile.SORT_KEYS) == set(pstats.Stats.sort_arg_dict_default)
    for key in sorted(cprofile_keys):
        assert cprofile.check_sort(key) == (key,)
    assert cprofile.check_sort(-1) == (-1,)
    assert cprofile.check_sort(pstats.SortKey.TIME) == (pstats.SortKey.TIME,)
    assert cprofile.check_sort(("cumulative", "name")) == ("cumulative", "name")
    for bad in ("bogus", 7, ("name", 1), ()):
        with pytest.raises(ValueError):
            cprofile.check_sort(bad)


# ------------------------------------------------- module-level run / runctx
@pytest.fixture
def fake_profile_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeRecorder]]:
    """Make ``ringprof.Profile`` a FakeRecorder factory for run/runctx."""
    made: list[FakeRecorder] = []

    def factory() -> FakeRecorder:
        made.append(FakeRecorder())
        return made[-1]

    module = types.ModuleType("ringprof.recording")
    setattr(module, "Profile", factory)  # noqa: B010 - a ModuleType has no declared attrs
    monkeypatch.setitem(sys.modules, "ringprof.recording", module)
    yield made


def test_module_run_prints_report(fake_profile_module: list[FakeRecorder],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    cprofile.run("1 + 1", sort="cumulative")
    out = capsys.readouterr().out
    assert "Ordered by: cumulative time" in out and HEADER in out
    assert fake_profile_module[0].log == ["enable", "disable", "disable"]


def test_module_runctx_writes_file_and_swallows_systemexit(
        fake_profile_module: list[FakeRecorder], tmp_path: Path) -> None:
    target = tmp_path / "out.prof"
    ns: dict[str, Any] = {}
    cprofile.runctx("import sys; x = 5; sys.exit(3)", ns, ns, filename=str(target))
    assert ns["x"] == 5
    assert _stats(str(target)).stats[KEY_A][:2] == (6, 9)


# ------------------------------------------------- the real sampler (skips)
def _real_profile_module() -> types.ModuleType:
    """ringprof.profile, or skip while it (or the compiled sampler) is missing."""
    for name in ("ringprof._sampler", "ringprof.recording"):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            pytest.skip(f"{name} not importable yet: {exc}")
    return importlib.import_module("ringprof.recording")


def _spin(seconds: float) -> int:
    """Burn CPU in this frame for about ``seconds`` of CPU time."""
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        for i in range(2000):
            x += i * i
    return x


def test_drop_in_import_ringprof_as_cprofile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _real_profile_module()
    import ringprof as cProfile  # the point: code written for cProfile

    pr = cProfile.Profile()
    pr.enable()
    _spin(0.3)
    pr.disable()
    st = _stats(pr).sort_stats("cumulative")
    assert any(key[2] == "_spin" for key in st.stats)
    st.print_stats(5)

    assert pr.runcall(_spin, 0.2) >= 0

    with cProfile.Profile() as pr2:
        _spin(0.3)
    _stats(pr2).sort_stats("cumulative").print_stats(5)
    pr2.print_stats("tottime")
    out = capsys.readouterr().out
    assert "_spin" in out and HEADER in out

    path = tmp_path / "real.prof"
    pr2.dump_stats(str(path))
    assert any(key[2] == "_spin" for key in _stats(str(path)).stats)


def test_real_profile_runctx_and_module_run(capsys: pytest.CaptureFixture[str]) -> None:
    module = _real_profile_module()
    pr = module.Profile()
    assert pr.runctx("_spin(0.2)", {"_spin": _spin}, None) is pr
    assert any(key[2] == "_spin" for key in _stats(pr).stats)
    cprofile.runctx("_spin(0.2)", {"_spin": _spin}, None, sort="cumulative")
    assert HEADER in capsys.readouterr().out


# Workload for the side-by-side test: 60 / 30 / 10 % of the work in three
# functions under one driver; the loops make no calls, so cProfile's per-call
# overhead does not distort its numbers.
def wl_main(n: int) -> int:
    return wl_hot(n) + wl_warm(n) + wl_cool(n)


def wl_hot(n: int) -> int:
    x = 0
    for i in range(6 * n):
        x += i * i
    return x


def wl_warm(n: int) -> int:
    x = 0
    for i in range(3 * n):
        x += i * i
    return x


def wl_cool(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


WORKLOAD = {"wl_main", "wl_hot", "wl_warm", "wl_cool"}


def _top3_cumulative(st: Any) -> list[str]:
    own = [(v[3], k[2]) for k, v in st.stats.items()
           if k[2] in WORKLOAD and Path(k[0]).resolve() == Path(__file__).resolve()]
    return [name for _ct, name in sorted(own, reverse=True)[:3]]


def test_same_top3_as_cprofile() -> None:
    module = _real_profile_module()
    # Size the workload to ~0.6 s CPU so the sampler gets ~120 samples at 5 ms.
    t0 = time.process_time()
    wl_cool(200_000)
    per_unit = max(time.process_time() - t0, 1e-4) / 200_000
    n = max(int(0.06 / per_unit), 10_000)

    ref = cProfile.Profile()
    ref.runcall(wl_main, n)
    expected = _top3_cumulative(_stats(ref))
    assert expected == ["wl_main", "wl_hot", "wl_warm"]

    ours = module.Profile(interval=0.005)
    ours.runcall(wl_main, n)
    assert _top3_cumulative(_stats(ours)) == expected
