"""pytest-benchmark entry points live in benchmarks/test_*.py.

    python -m pytest benchmarks/ --benchmark-only                       # wall time (perf_counter)
    python -m pytest benchmarks/ --benchmark-only --benchmark-timer time.process_time   # CPU time
    python -m pytest benchmarks/test_overhead.py -k calls --benchmark-only

pytest-benchmark runs each configuration's rounds back to back, so it suits
tracking one machine's history (``--benchmark-autosave``/``--benchmark-compare``);
the interleaved, noise-robust numbers come from ``python -m benchmarks.run``.
ROUNDS: env ``RINGPROF_BENCH_ROUNDS`` (default 5); SCALE: ``RINGPROF_BENCH_SCALE`` (default 1.0).
"""

import os

import pytest

ROUNDS = int(os.environ.get("RINGPROF_BENCH_ROUNDS", "5"))
SCALE = float(os.environ.get("RINGPROF_BENCH_SCALE", "1.0"))


@pytest.fixture
def rounds() -> int:
    return ROUNDS


@pytest.fixture
def scale() -> float:
    return SCALE
