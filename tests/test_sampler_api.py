"""The Profile / start / stop / decorator API around the native sampler.

These run in the test process with tiny workloads (the sampler must coexist
with pytest); whatever could take the process down (foreign C handlers) runs
in a child.  Every test leaves no profile enabled behind (checked by the
``clean_sampler`` fixture).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

import common_helpers
import numpy as np
import pytest
from common_helpers import burn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "targets"))

import rp_harness as H

import ringprof
from ringprof import control, recording, sampler

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")


@pytest.fixture(autouse=True)
def clean_sampler() -> Iterator[None]:
    before = signal.getsignal(signal.SIGPROF)
    yield
    leaked = []
    if control.started() is not None:
        leaked.append("ringprof.start() profile")
        ringprof.stop()
    for prof in recording.enabled_profiles():
        leaked.append("an enabled Profile")
        prof.disable()
    from ringprof import _sampler

    assert not _sampler.is_enabled(), "native sampler still enabled"
    assert signal.getsignal(signal.SIGPROF) == before, "SIGPROF disposition not restored"
    assert not leaked, f"test leaked {leaked}"


def test_start_twice_raises_and_stop_returns_the_profile() -> None:
    prof = ringprof.start(interval=0.004)
    try:
        assert prof.enabled
        with pytest.raises(RuntimeError, match=r"start\(\) was already called"):
            ringprof.start(interval=0.004)
        burn(0.1)
    finally:
        stopped = ringprof.stop()
    assert stopped is prof
    assert not prof.enabled
    assert len(prof.data) > 0
    # A new start after a stop is fine.
    again = ringprof.start()
    assert ringprof.stop() is again


def test_stop_without_start_raises() -> None:
    with pytest.raises(RuntimeError, match="start"):
        ringprof.stop()
    prof = ringprof.start()
    ringprof.stop()
    assert not prof.enabled
    with pytest.raises(RuntimeError):
        ringprof.stop()


def test_enable_twice_is_a_noop_and_disable_without_enable_too() -> None:
    idle = ringprof.Profile()
    idle.disable()  # never enabled: no-op
    idle.disable()
    assert not idle.enabled and len(idle.data) == 0
    prof = ringprof.Profile(interval=0.004)
    prof.enable()
    try:
        drain = sampler.drain_thread_id()
        prof.enable()  # no-op: same drain thread, still one sampler
        assert prof.enabled and drain is not None and sampler.drain_thread_id() == drain
        assert sampler.open_subscriptions() == 1
        burn(0.1)
    finally:
        prof.disable()
    assert not prof.enabled
    prof.disable()  # second disable: no-op
    n = len(prof.data)
    assert n > 0
    assert prof.data.meta["stats"]["samples"] == n


def test_two_profiles_at_once_each_get_the_samples_of_their_interval() -> None:
    first = ringprof.Profile(interval=0.004)
    second = ringprof.Profile(interval=0.004)
    with first:
        burn(0.15)  # only in first
        with second:  # no RuntimeError: both record
            assert first.enabled and second.enabled
            started = ringprof.start(interval=0.004)  # and start() too
            burn(0.15)  # in all three
            assert ringprof.stop() is started
        burn(0.15)  # only in first
    assert not first.enabled and not second.enabled
    w1, w2, w3 = first.data.total_weight(), second.data.total_weight(), started.data.total_weight()
    # first saw ~0.45 s of CPU, second ~0.15 s (loaded machine: compare shares, loosely)
    assert w2 > 0 and w3 > 0
    assert 0.15 < w2 / w1 < 0.6, (w1, w2)
    assert w3 <= w2 * 1.3 + 3
    for prof in (first, second):
        assert any(r.name == "burn" for r in prof.top(50))
        assert prof.data.meta["stats"]["samples"] == len(prof.data)


def test_context_manager_disables_on_exception() -> None:
    prof = ringprof.Profile(interval=0.004)
    with pytest.raises(ZeroDivisionError), prof:
        burn(0.05)
        1 / 0  # noqa: B018
    assert not prof.enabled


def test_enable_disable_accumulates_into_one_profile() -> None:
    prof = ringprof.Profile(interval=0.004)
    with prof:
        burn(0.15)
    n1, d1 = len(prof.data), prof.data.meta["duration"]
    start_time = prof.data.meta["start_time"]
    with prof:
        burn(0.15)
    assert len(prof.data) > n1 > 0
    assert prof.data.meta["duration"] > d1
    assert prof.data.meta["start_time"] == start_time  # the first enable()
    assert prof.data.meta["stats"]["samples"] == len(prof.data)


def test_data_while_enabled_drains_pending_samples() -> None:
    with ringprof.Profile(interval=0.004, drain_interval=5) as prof:
        burn(0.2)
        # The drain thread sleeps 5 s: only .data's own drain can see these
        # (0.2 s of CPU at 4 ms is ~50 expirations; weights, not records).
        assert prof.data.total_weight() >= 20


def test_save_load_roundtrip(tmp_path: Any) -> None:
    with ringprof.Profile(interval=0.004) as prof:
        burn(0.2)
    path = tmp_path / "p.ringprof"
    prof.save(path)
    loaded = ringprof.load(path)
    a, b = prof.data, loaded.data
    assert len(b) == len(a) > 0
    assert b.frames == a.frames
    assert b.stacks == a.stacks
    for col in ("stack", "thread", "time_ns", "weight", "cpu_ns", "flags", "labels", "depth"):
        np.testing.assert_array_equal(getattr(b, col), getattr(a, col), err_msg=col)
    assert b.meta == a.meta
    assert loaded.interval == prof.interval and loaded.mode == prof.mode
    assert [r.name for r in loaded.top(5)] == [r.name for r in prof.top(5)]
    # burn has the self time (the frames above it may rank first on total:
    # a sample taken in enable/disable's own code is outside burn).
    assert max(loaded.top(1000), key=lambda r: r.self_ns).name == "burn"


def test_decorator_accumulates_over_calls(tmp_path: Any) -> None:
    @ringprof.profile
    def plain() -> int:
        return burn(0.1)

    out = tmp_path / "deco.ringprof"

    @ringprof.profile(interval=0.004, output=str(out))
    def work(depth: int = 0) -> int:
        if depth < 2:
            work(depth + 1)  # nested calls: recorded by the outermost only
        return burn(0.05)

    plain()
    assert isinstance(plain.profile, ringprof.Profile)  # type: ignore[attr-defined]
    assert plain.profile.interval == 0.01  # type: ignore[attr-defined]
    assert not plain.profile.enabled  # type: ignore[attr-defined]

    work()
    prof = work.profile  # type: ignore[attr-defined]
    assert not prof.enabled
    n1 = len(prof.data)
    w1 = prof.data.total_weight()
    d1 = prof.data.meta["duration"]
    assert w1 >= 7  # 0.15 s of CPU at 10 ms is ~15 expirations; weights, not records
    assert len(ringprof.load(out).data) == n1  # written after the outermost call
    work()
    assert prof.data.total_weight() >= w1 + 7
    assert prof.data.meta["duration"] > d1
    assert len(ringprof.load(out).data) == len(prof.data)
    assert work.__name__ == "work"


def _python_sigprof_handler(signum: int, frame: Any) -> None:  # pragma: no cover - never fires
    pass


def test_python_sigprof_handler_makes_enable_raise_naming_it() -> None:
    """Only the ITIMER_PROF fallback needs SIGPROF (per-thread sampling uses a
    real-time signal: tests/test_robust_signals.py)."""
    old = signal.signal(signal.SIGPROF, _python_sigprof_handler)
    try:
        prof = ringprof.Profile(timer_kind="itimer")
        with pytest.raises(RuntimeError, match="_python_sigprof_handler") as info:
            prof.enable()
        assert "SIGPROF" in str(info.value)
        assert not prof.enabled
        assert not recording.enabled_profiles()
        assert signal.getsignal(signal.SIGPROF) is _python_sigprof_handler  # left alone
    finally:
        signal.signal(signal.SIGPROF, old)
    with ringprof.Profile(interval=0.004) as prof:  # fine again once restored
        burn(0.02)


def test_c_level_sigprof_handler_makes_enable_raise(tmp_path: Any) -> None:
    # A handler installed from C (here: ctypes + libc's getpid as a harmless
    # handler) is invisible to the signal module; the native check names it.
    result = H.run_child("""
        import ctypes, signal
        libc = ctypes.CDLL(None)
        libc.signal.restype = ctypes.c_void_p
        libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.signal(signal.SIGPROF, ctypes.cast(libc.getpid, ctypes.c_void_p))
        try:
            ringprof.Profile(timer_kind="itimer").enable()
        except RuntimeError as exc:
            emit({"error": str(exc)})
        else:
            emit({"error": None})
    """)
    assert result["error"] is not None, "the itimer fallback took over a foreign SIGPROF handler"
    assert "SIGPROF is already handled" in result["error"]
    assert "getpid" in result["error"]


def test_wall_mode_with_itimer_is_refused() -> None:
    prof = ringprof.Profile(mode="wall", timer_kind="itimer")
    with pytest.raises(RuntimeError, match="wall mode"):
        prof.enable()
    assert not prof.enabled


@pytest.mark.parametrize("kwargs", [
    {"interval": 0}, {"interval": -1}, {"interval": 1e-6}, {"interval": float("nan")},
    {"mode": "gpu"}, {"max_depth": 0}, {"max_depth": 100000}, {"timer_kind": "hpet"},
    {"ring_bytes": 1000},
])
def test_bad_options_raise_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ringprof.Profile(**kwargs)


def test_top_and_collapsed_name_the_hot_function() -> None:
    with ringprof.Profile(interval=0.004) as prof:
        burn(0.2)
    # Callers of burn (pytest's own frames) tie with it on total time, so look
    # it up among all rows rather than assume it is in the first three.
    top = prof.top(100)
    assert top and top[0].total_pct >= 90
    assert "burn" in [r.name for r in top]
    burn_row = next(r for r in top if r.name == "burn")
    assert burn_row.filename == common_helpers.__file__ and burn_row.self_pct >= 80
    text = prof.format_top(5, sort="self")  # (by total, any sample outside burn puts it behind its callers)
    assert "burn" in text and "samples" in text
    collapsed = prof.to_collapsed()
    total = sum(int(line.rsplit(" ", 1)[1]) for line in collapsed.splitlines())
    assert total == prof.data.total_weight()
    assert any(line.split(" ")[0].endswith("burn") or ";burn" in line for line in collapsed.splitlines())
