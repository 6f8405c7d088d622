"""Never crash the host: code objects created and destroyed continuously.

100,000 short-lived functions here (the 1,000,000 run is in
test_robust_torture.py).  Code-object deaths are deferred while sampling
(csrc/codes.c), so a sampled code pointer always names the function that was
running; the check in robust_helpers.code_churn_code proves it from the
resolved frames and the shape of their stacks.
"""

from __future__ import annotations

import os
import sys

import pytest
from robust_helpers import code_churn_code, report, run_child

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")


def test_code_churn_100k() -> None:
    # Under ASan (PYTHONMALLOC=malloc through the sanitizer's allocator) every
    # allocation is several times slower: a quarter of the churn still makes
    # ~400 dataclasses and namedtuples and 25,000 code deaths.
    count = 25_000 if os.environ.get("RINGPROF_SANITIZED") else 100_000
    child = run_child(code_churn_code(count), timeout=300)
    r = child.result
    report("code churn", count=r["count"], seconds=round(r["seconds"], 1), samples=r["samples"],
           generated_frames=r["gen_frames"], unknown=r["unknown"], parked_after=r["parked"])
    assert r["nproblems"] == 0, f"{r['problems']}\n{child.describe()}"
    assert r["gen_frames"] > 50, f"the churned code was hardly sampled\n{child.describe()}"
    assert r["made"]["dataclass"] > 100 and r["made"]["namedtuple"] > 100, child.describe()
    assert r["parked"] == 0, f"deferred code deaths not released after disable\n{child.describe()}"
