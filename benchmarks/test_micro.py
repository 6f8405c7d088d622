"""pytest-benchmark: ringprof's parts (see benchmarks/micro.py for the method).

    python -m pytest benchmarks/test_micro.py --benchmark-only
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import micro


@pytest.fixture(scope="module")
def frames() -> list[tuple[int, int]]:
    return micro._capture_frames(0.3)[0]


def test_parse_throughput(benchmark: Any, frames: list[tuple[int, int]]) -> None:
    from ringprof import _sampler as native

    buf = micro.synth_buffer(frames, 20_000, 500, 30)
    index: dict[bytes, int] = {}
    native.parse(buf, index)
    benchmark.group = "drain/resolve (20k samples, depth 30)"
    benchmark(native.parse, buf, index)


def test_ingest_warm(benchmark: Any, frames: list[tuple[int, int]]) -> None:
    from ringprof.model import ProfileData
    from ringprof.resolve import Resolver

    buf = micro.synth_buffer(frames, 20_000, 500, 30)
    r = Resolver(ProfileData())
    r.ingest(buf)
    benchmark.group = "drain/resolve (20k samples, depth 30)"
    benchmark(r.ingest, buf)


def test_ingest_cold(benchmark: Any, frames: list[tuple[int, int]]) -> None:
    from ringprof.model import ProfileData
    from ringprof.resolve import Resolver

    buf = micro.synth_buffer(frames, 2_000, 2_000, 30, seed=5)
    benchmark.group = "drain/resolve: 2k unique stacks, depth 30"
    benchmark.pedantic(lambda: Resolver(ProfileData()).ingest(buf), rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("depth", [10, 30, 100])
def test_handler_body(benchmark: Any, depth: int) -> None:
    """Wall time of a fixed burn at this depth under cpu 250 Hz; extra_info has the handler ns/sample."""
    res = benchmark.pedantic(lambda: micro.handler_cost((depth,), windows=2), rounds=1, iterations=1)
    v = res["modes"]["cpu"]["depths"][str(depth)]
    benchmark.group = "handler body"
    benchmark.extra_info["cpu_ns_per_sample"] = v["ns_per_sample_median_window"]
    benchmark.extra_info["wall_ns_per_sample"] = res["modes"]["wall"]["depths"][str(depth)][
        "ns_per_sample_median_window"]


def test_signal_floor(benchmark: Any) -> None:
    try:
        micro.null_sampler()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    res = benchmark.pedantic(lambda: micro.floor(reps=3, seconds=0.15), rounds=1, iterations=1)
    benchmark.group = "signal floor"
    for name, v in res["variants"].items():
        benchmark.extra_info[f"{name} ns/signal"] = v["ns_per_signal"]
