"""A Starlette app for the async-view tests: endpoints that wait on
``asyncio.sleep``, on a lock, on a ``gather`` of two waits, and on CPU work.

Every await line the tests check carries a ``# AWAIT:<name>`` marker; the
time spent at it (from just before the await until the task resumes after
it) is measured into :data:`MEASURED` as (name, start, end) monotonic_ns
intervals, the ground truth the sampled split is compared with.  CPU work is
measured in thread CPU time into :data:`CPU_NS`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

SLEEP_S = 0.040
LOCK_HOLD_S = 0.012
GATHER_A_S = 0.020
GATHER_B_S = 0.060
CPU_S = 0.008

MEASURED: list[tuple[str, int, int]] = []
CPU_NS: list[int] = [0]
_lock: asyncio.Lock | None = None


def lines() -> dict[str, int]:
    """Marker name -> line number in this file."""
    out = {}
    with open(__file__, encoding="utf-8") as fh:
        for no, text in enumerate(fh, 1):
            if "# AWAIT:" in text and "out[" not in text:
                out[text.split("# AWAIT:")[1].strip()] = no
    return out


async def sleep_endpoint(request: Request) -> PlainTextResponse:
    t0 = time.monotonic_ns()
    await asyncio.sleep(SLEEP_S)  # AWAIT:sleep
    MEASURED.append(("sleep", t0, time.monotonic_ns()))
    return PlainTextResponse("slept")


async def lock_endpoint(request: Request) -> PlainTextResponse:
    global _lock
    if _lock is None:
        _lock = asyncio.Lock()
    t0 = time.monotonic_ns()
    async with _lock:  # AWAIT:lock_acquire
        t1 = time.monotonic_ns()
        MEASURED.append(("lock_acquire", t0, t1))
        await asyncio.sleep(LOCK_HOLD_S)  # AWAIT:lock_held
        MEASURED.append(("lock_held", t1, time.monotonic_ns()))
    return PlainTextResponse("locked")


async def wait_a() -> None:
    t0 = time.monotonic_ns()
    await asyncio.sleep(GATHER_A_S)  # AWAIT:gather_a
    MEASURED.append(("gather_a", t0, time.monotonic_ns()))


async def wait_b() -> None:
    t0 = time.monotonic_ns()
    await asyncio.sleep(GATHER_B_S)  # AWAIT:gather_b
    MEASURED.append(("gather_b", t0, time.monotonic_ns()))


async def gather_endpoint(request: Request) -> PlainTextResponse:
    await asyncio.gather(wait_a(), wait_b())  # AWAIT:gather
    return PlainTextResponse("gathered")


def burn(seconds: float) -> int:
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        n += 1
    return n


async def cpu_endpoint(request: Request) -> PlainTextResponse:
    t0 = time.thread_time_ns()
    n = burn(CPU_S)
    CPU_NS[0] += time.thread_time_ns() - t0
    return PlainTextResponse(str(n))


def make_app() -> Any:
    global _lock
    _lock = None  # a new app may run on a new loop
    return Starlette(routes=[Route("/sleep", sleep_endpoint), Route("/lock", lock_endpoint),
                             Route("/gather", gather_endpoint), Route("/cpu", cpu_endpoint)])
