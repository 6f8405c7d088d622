"""The drain paces itself by how fast the rings fill (sampler.next_drain_wait):
fewer passes while they fill slowly, never a wait in which a ring could overflow."""

from __future__ import annotations

import time

import pytest

import ringprof
from ringprof import sampler
from ringprof.sampler import DRAIN_WAIT_MAX, Settings, next_drain_wait

HEADER, FRAME = sampler.RECORD_HEADER_BYTES, sampler.FRAME_BYTES


def test_record_sizes_are_the_native_ones() -> None:
    """The pacing bound is computed without loading the native module: its sizes must
    be those of csrc/ring.h."""
    from ringprof import _sampler

    assert (HEADER, FRAME) == (_sampler.RECORD_HEADER_BYTES, _sampler.FRAME_BYTES)


def worst_fill(s: Settings, wait: float) -> float:
    """The fraction of a ring that a thread sampled at every interval, each sample
    max_depth frames deep, fills in ``wait`` seconds."""
    return (HEADER + FRAME * s.max_depth) / s.interval * wait / s.ring_bytes


@pytest.mark.parametrize("settings", [
    Settings(),
    Settings(interval=0.001, mode="wall"),
    Settings(interval=0.004, max_depth=32),
    Settings(interval=0.05, max_depth=8, ring_bytes=1 << 20),
    Settings(drain_interval=5.0),
    Settings(drain_interval=0.01, interval=0.0005, max_depth=2048),
])
def test_wait_is_bounded_below_by_drain_interval_and_above_by_ring_safety(settings: Settings) -> None:
    for waited in (0.001, 0.01, 0.1, 0.5, 1.0, 5.0):
        for fill in (0.0, 1e-6, 0.001, 0.01, 0.1, 0.25, 0.5, 1.0):
            wait = next_drain_wait(settings, waited, fill)
            assert wait >= settings.drain_interval
            if wait > settings.drain_interval:
                assert wait <= DRAIN_WAIT_MAX
                assert worst_fill(settings, wait) <= 0.5 + 1e-9, (waited, fill, wait)


def test_slow_fill_stretches_the_wait_and_fast_fill_shrinks_it() -> None:
    s = Settings()  # 100 Hz, depth 128, 256 KiB: the longest safe wait is about 0.62 s
    longest = 0.5 * s.ring_bytes / ((HEADER + FRAME * s.max_depth) / s.interval)
    assert next_drain_wait(s, 0.1, 0.0) == pytest.approx(0.2)  # nothing drained: double
    assert next_drain_wait(s, 0.4, 0.0) == pytest.approx(longest)
    assert next_drain_wait(s, 0.1, 0.01) == pytest.approx(longest)  # 1 % in 0.1 s: 25 % takes 2.5 s
    assert next_drain_wait(s, 0.2, 0.1) == pytest.approx(0.5)  # a quarter full at this rate
    assert next_drain_wait(s, 0.5, 0.5) == pytest.approx(0.25)
    assert next_drain_wait(s, 0.25, 0.9) == pytest.approx(s.drain_interval)  # filling fast: back to the base
    # At 1 kHz with deep stacks a ring can fill in a quarter second: the base interval always.
    fast = Settings(interval=0.001, mode="wall")
    assert next_drain_wait(fast, 0.1, 0.0) == fast.drain_interval


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for i in range(500):
            x += i


def test_a_busy_thread_is_drained_less_often_and_loses_nothing() -> None:
    """At the defaults one busy thread fills its ring by ~1 % per 0.1 s: passes
    come up to ~0.6 s apart instead of every 0.1 s, and every sample arrives."""
    before = sampler.counters()["drains"]
    t0 = time.monotonic()
    with ringprof.Profile() as prof:
        _burn(2.0)
    elapsed = time.monotonic() - t0
    passes = sampler.counters()["drains"] - before
    data = prof.data
    cpu_ns = data.total_weight() * data.interval_ns
    assert cpu_ns >= 0.8 * 2e9, f"{cpu_ns / 1e9:.2f} s of 2.0 s CPU sampled"
    assert data.meta["stats"]["dropped"] == 0
    # Every 0.1 s would be elapsed/0.1 passes (20+ on a quiet machine); paced: about a third of that.
    assert passes <= elapsed / 0.1 / 2, f"{passes} drain passes in {elapsed:.1f} s"


def test_label_sets_waiting_for_a_drain_bring_it_forward() -> None:
    """Sets released while sampling wait for a drain pass; past label_table.BACKLOG
    of them the drain runs at once instead of after its (here 5 s) wait."""
    from ringprof import label_table

    with ringprof.Profile(drain_interval=5):
        time.sleep(0.2)  # the drain thread is in its first wait
        before = sampler.counters()["drains"]
        for i in range(label_table.BACKLOG + 10):
            with ringprof.labels(request_id=str(i)):
                pass
        deadline = time.monotonic() + 4
        while sampler.counters()["drains"] == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sampler.counters()["drains"] > before, "no drain within 4 s of the backlog"
        assert label_table.stats()["unused"] < label_table.BACKLOG
