"""ringprof.pacing: long background work (window encoding, the live-code
scan) pauses every SLICE on ringprof's own threads, and never elsewhere.

Time is simulated (a clock that advances per reading): nothing here depends
on how fast the machine is."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import pytest

from ringprof import pacing, resolve
from ringprof._threads import Background
from ringprof.exporters import pprof
from ringprof.model import Frame, ProfileData


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every clock reading advances 0.1 ms; pauses are recorded, not slept."""
    ticks = itertools.count()
    pauses: list[float] = []
    monkeypatch.setattr(pacing, "_clock", lambda: next(ticks) * 1e-4)
    monkeypatch.setattr(pacing, "_sleep", pauses.append)
    return pauses


def on_background_thread(fn: Callable[[], Any]) -> Any:
    out: list[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            out.append(fn())
        finally:
            done.set()

    Background(run, name="test-pacing")
    assert done.wait(60)
    return out[0]


def big_model(samples: int = 20_000) -> ProfileData:
    data = ProfileData({"mode": "cpu", "interval": 0.01})
    root = Frame("<module>", "app.py", 1, 1)
    for i in range(samples):
        data.add_sample([root, Frame(f"f{i % 500}", "app.py", 10 + i % 500, 11 + i % 7)], 1 + i % 3, i * 1000)
    return data


def test_tick_pauses_only_on_ringprof_threads(fake_time: list[float]) -> None:
    for _ in range(100):
        pacing.tick()
    assert fake_time == []  # the application's thread (this one) is never paced

    def work() -> None:
        pacing.begin()
        for _ in range(100):
            pacing.tick()

    on_background_thread(work)
    # A reading per tick, and two around each pause: one pause per ~SLICE of (simulated) work.
    assert 5 <= len(fake_time) <= 100 * 1e-4 / pacing.SLICE + 1
    assert set(fake_time) == {pacing.PAUSE}


def test_encoding_a_window_pauses_on_the_exporter_thread(fake_time: list[float]) -> None:
    data = big_model()
    inline = pprof.encode(data)
    assert fake_time == []
    paced = on_background_thread(lambda: pprof.encode(data))
    assert paced == inline  # pausing changes nothing in the output
    # The samples are summed and encoded in C without the GIL; the Python part
    # (3,500 frames and stacks, their functions and strings) still pauses.
    assert len(fake_time) >= 3, len(fake_time)


def test_live_code_scan_pauses_on_the_drain_thread(fake_time: list[float]) -> None:
    on_background_thread(lambda: resolve.register_live_code(full=True))
    assert len(fake_time) >= 1
