"""pytest-benchmark: each workload unprofiled and under each profiler (group = workload).

    python -m pytest benchmarks/test_overhead.py --benchmark-only [--benchmark-timer time.process_time]

The profiler is started before and stopped after every round (setup/teardown),
so a round times the workload while profiled, as ``benchmarks.harness`` does.
Exception: cProfile and pyinstrument (``sys.setprofile`` hooks) cannot stay
active across pytest-benchmark's own bookkeeping (its PauseInstrumentation
calls the active profile hook), so for them the timed target starts and stops
the profiler itself; their start/stop is cheap next to their overhead.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from benchmarks import peers, workloads

CONFIGS: dict[str, Any] = {"baseline": peers.Baseline}
for _f in peers.overhead_configs():
    CONFIGS[_f().name] = _f

AVAILABLE = workloads.available()


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("workload", workloads.ALL_NAMES)
def test_overhead(benchmark: Any, workload: str, config: str, rounds: int, scale: float) -> None:
    if workload not in AVAILABLE:
        pytest.skip(workloads.SKIPPED.get(workload, "unavailable"))
    fn = functools.partial(AVAILABLE[workload].fn, scale)
    factory = CONFIGS[config]
    try:  # availability check (py-spy needs ptrace) and warm-up
        a = factory()
        a.start()
        a.stop()
    except peers.Unavailable as exc:
        pytest.skip(str(exc))
    state: dict[str, Any] = {}
    infos: list[dict[str, Any]] = []

    def setup() -> None:
        adapter = factory()
        adapter.start()
        state["adapter"] = adapter

    def teardown(*_: Any) -> None:
        adapter = state.pop("adapter")
        infos.append(adapter.stop())
        cleanup = getattr(adapter, "cleanup", None)
        if cleanup:
            cleanup()

    def inside() -> None:
        setup()
        try:
            fn()
        finally:
            teardown()

    benchmark.group = f"overhead {workload}"
    benchmark.extra_info["config"] = config
    if a.peer in ("cProfile", "pyinstrument"):
        benchmark.pedantic(inside, rounds=rounds, warmup_rounds=1)
    else:
        benchmark.pedantic(fn, setup=setup, teardown=teardown, rounds=rounds, warmup_rounds=1)
    for key in ("samples", "dropped", "handler_ns_per_sample", "external_cpu_s"):
        vals = [i[key] for i in infos if isinstance(i.get(key), int | float)]
        if vals:
            benchmark.extra_info[key] = sorted(vals)[len(vals) // 2]
