"""pytest-benchmark entry for the accuracy study (extra_info holds the errors).

    python -m pytest benchmarks/test_accuracy.py --benchmark-only
"""

from __future__ import annotations

from typing import Any

from benchmarks import accuracy


def test_known_split(benchmark: Any) -> None:
    res = benchmark.pedantic(lambda: accuracy.known_split(quick=True), rounds=1, iterations=1)
    benchmark.group = "accuracy"
    benchmark.extra_info["truth"] = res["truth"]
    for row in res["rows"]:
        benchmark.extra_info[row["profiler"]] = row.get("max_abs_error_pp", row.get("error"))
