"""Never crash the host: threads created and destroyed continuously while sampling.

64 short-lived threads are alive at any time, each replaced as soon as it ends,
while the sampler runs at its highest supported rate: wall mode at 50 us per
thread (20 kHz, CLOCK_MONOTONIC timers) and CPU mode at 4 ms (CPU-time timers
fire on the 250 Hz kernel tick).  Timers target threads that may already be
gone, slots are recycled, the drain retires and re-arms continuously.  The 30 s
runs of the issue are in test_robust_torture.py.
"""

from __future__ import annotations

import sys

import pytest
from robust_helpers import report, run_child, thread_churn_code

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")


@pytest.mark.parametrize("mode,interval,seconds", [("wall", 0.00005, 5.0), ("cpu", 0.004, 2.0)])
def test_thread_churn_at_max_rate(mode: str, interval: float, seconds: float) -> None:
    child = run_child(thread_churn_code(mode, interval, seconds), timeout=seconds + 90)
    r = child.result
    report(f"thread churn {mode}", seconds=seconds, created=r["created"], samples=r["samples"], tids=r["tids"])
    assert r["created"] > 200, child.describe()
    assert r["samples"] > 0 and r["threads_after"] == 0 and r["dfl"], child.describe()
    assert r["errors"] == [], child.describe()
    if mode == "wall":
        assert r["tids"] > 20, f"short-lived threads were never sampled\n{child.describe()}"
