"""The async view (ringprof.async_wait): chains, awaiters, weights, labels, budget."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import ringprof
from ringprof import async_wait
from ringprof.model import ProfileData

HOLD = 1.0  # seconds every scenario task stays suspended


def stacks_by_leaf(data: ProfileData) -> dict[str, list[tuple[str, ...]]]:
    """Waiting stacks as function-name tuples (root first), grouped by their innermost test function."""
    out: dict[str, list[tuple[str, ...]]] = {}
    waiting = data.filter(labels={"state": "waiting"})
    for frames, _w in waiting.iter_stacks():
        names = tuple(f.name for f in frames)
        mine = [f.name for f in frames if f.filename == __file__]
        if mine:
            out.setdefault(mine[-1], []).append(names)
    return out


def weight_by_leaf(data: ProfileData) -> Counter[str]:
    out: Counter[str] = Counter()
    waiting = data.filter(labels={"state": "waiting"})
    for frames, w in waiting.iter_stacks():
        mine = [f.name for f in frames if f.filename == __file__]
        if mine:
            out[mine[-1]] += w
    return out


def record(scenario: Callable[[], Awaitable[Any]], **options: Any) -> ringprof.Profile:
    async def main() -> ringprof.Profile:
        options.setdefault("async_budget", 0.1)  # attribution tests: do not let the 1 % budget thin the snapshots
        prof = ringprof.Profile(mode="cpu", async_tasks=True, async_interval=0.02, **options)
        prof.enable()  # inside the loop: watches it
        try:
            await scenario()
        finally:
            prof.disable()
        return prof

    return asyncio.run(main())


async def hold() -> None:
    await asyncio.sleep(HOLD)


async def handler_sleep() -> None:
    await fetch_user()


async def fetch_user() -> None:
    await hold()


async def child_a() -> None:
    await asyncio.sleep(HOLD)


async def child_b() -> None:
    await asyncio.sleep(HOLD)


async def handler_gather() -> None:
    await asyncio.gather(child_a(), child_b())


async def tg_child() -> None:
    await asyncio.sleep(HOLD)


async def handler_taskgroup() -> None:
    async with asyncio.TaskGroup() as group:
        group.create_task(tg_child())


async def wf_child() -> None:
    await asyncio.sleep(HOLD)


async def handler_wait_for() -> None:
    await asyncio.wait_for(wf_child(), 5)


async def shielded() -> None:
    await asyncio.sleep(HOLD)


async def handler_shield() -> None:
    await asyncio.shield(shielded())


async def awaited_task() -> None:
    await asyncio.sleep(HOLD)


async def handler_await_task() -> None:
    await asyncio.create_task(awaited_task())


async def waited_in_wait() -> None:
    await asyncio.sleep(HOLD)


async def handler_wait() -> None:
    await asyncio.wait([asyncio.create_task(waited_in_wait())])


async def ticker() -> Any:
    for i in range(2):
        await asyncio.sleep(HOLD / 2)
        yield i


async def handler_async_for() -> None:
    async for _ in ticker():
        pass


async def lock_waiter(lock: asyncio.Lock) -> None:
    async with lock:
        pass


async def lock_holder(lock: asyncio.Lock) -> None:
    async with lock:
        await asyncio.sleep(HOLD)


async def handler_lock() -> None:
    lock = asyncio.Lock()
    holder = asyncio.create_task(lock_holder(lock))
    await asyncio.sleep(0)
    await asyncio.gather(holder, lock_waiter(lock))


SCENARIOS = [handler_sleep, handler_gather, handler_taskgroup, handler_wait_for, handler_shield,
             handler_await_task, handler_wait, handler_async_for, handler_lock]


async def all_scenarios() -> None:
    await asyncio.gather(*(s() for s in SCENARIOS))


@pytest.fixture(scope="module")
def scenario_profile() -> ringprof.Profile:
    return record(all_scenarios)


def test_chains_read_from_handler_to_innermost_await(scenario_profile: ringprof.Profile) -> None:
    by_leaf = stacks_by_leaf(scenario_profile.data)

    def has(leaf: str, *path: str) -> bool:
        """Some stack of ``leaf`` contains ``path`` in order (not necessarily adjacent)."""
        for names in by_leaf.get(leaf, []):
            it = iter(names)
            if all(any(n == p for n in it) for p in path):
                return True
        return False

    assert has("hold", "handler_sleep", "fetch_user", "hold", "sleep"), by_leaf.get("hold")
    # children under the task that awaits them
    assert has("child_a", "handler_gather", "child_a", "sleep")
    assert has("child_b", "handler_gather", "child_b", "sleep")
    assert has("tg_child", "handler_taskgroup", "TaskGroup.__aexit__", "tg_child", "sleep")
    assert has("wf_child", "handler_wait_for", "wf_child", "sleep")
    assert has("shielded", "handler_shield", "shielded", "sleep")
    assert has("awaited_task", "handler_await_task", "awaited_task", "sleep")
    assert has("waited_in_wait", "handler_wait", "wait", "waited_in_wait", "sleep")
    # through an async generator driven by `async for`
    assert has("ticker", "handler_async_for", "ticker", "sleep")
    # a lock: the waiter at Lock.acquire, the holder at its sleep, both under the gathering handler
    assert has("lock_waiter", "handler_lock", "lock_waiter", "Lock.acquire")
    assert has("lock_holder", "handler_lock", "lock_holder", "sleep")
    # everything hangs below the scenario's root task
    assert all(names[0] in ("all_scenarios", "<task not started>") or "all_scenarios" in names
               for stacks in by_leaf.values() for names in stacks)


def test_every_waiting_task_weighs_its_wall_time(scenario_profile: ringprof.Profile) -> None:
    weights = weight_by_leaf(scenario_profile.data)
    full = [weights[n] for n in ("hold", "child_a", "child_b", "tg_child", "wf_child", "shielded", "awaited_task",
                                 "waited_in_wait", "ticker", "lock_holder")]
    # Each of these tasks was suspended for HOLD seconds: equal weights, HOLD worth each.
    unit = scenario_profile.data.interval_ns / 1e9
    for w in full:
        assert abs(w * unit - HOLD) <= 0.3 * HOLD, (weights, unit)
    # the lock waiter waited as long as the holder held the lock
    assert abs(weights["lock_waiter"] - weights["lock_holder"]) <= 0.25 * weights["lock_holder"], weights


def test_labels_and_metadata(scenario_profile: ringprof.Profile) -> None:
    data = scenario_profile.data
    waiting = data.filter(labels={"state": "waiting"})
    assert waiting.total_weight() > 0
    sets = [waiting.label_sets[i] for i in set(waiting.labels.tolist())]
    assert all(s["state"] == "waiting" and s["task"].startswith("Task-") and s["task_id"].isdigit()
               for s in sets)
    assert len({s["task_id"] for s in sets}) >= 12
    assert (waiting.cpu_ns == 0).all()
    meta = data.meta["async"]
    assert meta["snapshots"] >= 10 and meta["errors"] == 0 and meta["interval"] == 0.02
    assert meta["cost_ns"] > 0 and meta["budget"] == 0.1


def test_named_tasks_and_running_task_is_not_waiting() -> None:
    async def named() -> None:
        await asyncio.sleep(HOLD)

    async def burner() -> None:
        end = time.monotonic() + HOLD
        while time.monotonic() < end:
            sum(range(1000))

    async def scenario() -> None:
        waiter = asyncio.create_task(named(), name="db-call")
        await asyncio.sleep(0)
        await asyncio.create_task(burner(), name="burner")
        await waiter

    prof = record(scenario)
    data = prof.data
    names = {data.label_sets[i].get("task") for i in set(data.filter(labels={"state": "waiting"}).labels.tolist())}
    assert "db-call" in names
    burning = data.filter(labels={"state": "waiting", "task": "burner"})
    assert burning.total_weight() == 0, "the running task was sampled as waiting"


def test_no_async_view_unless_asked() -> None:
    async def main() -> ProfileData:
        prof = ringprof.Profile(mode="cpu")
        with prof:
            await asyncio.sleep(0.2)
        return prof.data

    data = asyncio.run(main())
    assert "async" not in data.meta
    assert not data.filter(labels={"state": "waiting"}).total_weight()
    with pytest.raises(ValueError, match="async_tasks=True"):
        ringprof.Profile().watch_loop(asyncio.new_event_loop())


@pytest.mark.parametrize("kwargs", [{"async_interval": 0.001}, {"async_interval": 11}, {"async_budget": 0},
                                    {"async_budget": 0.9}, {"async_interval": "fast"}])
def test_bad_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="async_"):
        ringprof.Profile(async_tasks=True, **kwargs)


def test_enable_outside_a_loop_warns_and_watch_loop_attaches(caplog: pytest.LogCaptureFixture) -> None:
    prof = ringprof.Profile(mode="cpu", async_tasks=True, async_interval=0.02)
    with caplog.at_level(logging.WARNING, logger="ringprof"):
        prof.enable()
    assert any("watch_loop" in r.getMessage() for r in caplog.records)

    async def main() -> None:
        prof.watch_loop(asyncio.get_running_loop())
        prof.watch_loop(asyncio.get_running_loop())  # twice: one sampler
        await fetch_user()

    try:
        asyncio.run(main())
    finally:
        prof.disable()
    assert weight_by_leaf(prof.data)["hold"] > 0
    assert prof.data.meta["async"]["snapshots"] > 0


def test_budget_backs_off_and_holds() -> None:
    """2,000 pending tasks against a budget of 0.05 % of a core: the snapshots back
    off, and their CPU time stays within the budget plus the bucket's burst."""
    durations: list[float] = []

    async def scenario() -> None:
        tasks = [asyncio.create_task(hold()) for _ in range(2000)]
        t0 = time.monotonic()
        await asyncio.gather(*tasks)
        durations.append(time.monotonic() - t0)

    prof = record(scenario, async_budget=0.0005)
    meta = prof.data.meta["async"]
    assert meta["backoffs"] >= 1, meta
    allowed = 0.0005 * (durations[0] + async_wait.BURST_S) * 1e9 + meta["max_cost_ns"]
    assert meta["cost_ns"] <= allowed, (meta, allowed)


def test_waiting_samples_survive_cut_and_save(tmp_path: Any) -> None:
    async def main() -> tuple[ProfileData, ProfileData]:
        prof = ringprof.Profile(mode="cpu", async_tasks=True, async_interval=0.02)
        prof.enable()
        await hold()
        first = prof.cut()
        await hold()
        prof.disable()
        return first, prof.data

    first, second = asyncio.run(main())
    for data in (first, second):
        assert weight_by_leaf(data)["hold"] > 0
    path = tmp_path / "p.ringprof"
    second.save(path)
    again = ProfileData.load(path)
    assert weight_by_leaf(again) == weight_by_leaf(second)


def test_thread_stops_with_the_profile_and_the_loop() -> None:
    loop = asyncio.new_event_loop()
    rows: list[Any] = []
    sampler = async_wait.TaskWaitSampler(loop, rows.extend, 10_000_000, interval=0.02)
    sampler.attach()
    worker = sampler._worker
    assert worker is not None
    task = loop.create_task(hold())
    loop.run_until_complete(asyncio.sleep(0.3))
    task.cancel()
    loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
    loop.close()
    assert worker.join(2.0), "the snapshot thread did not notice the closed loop"
    sampler.close()  # after the thread ended on its own: still delivers what it saw
    assert sampler.closed
    assert sum(row[5] for row in rows) * 0.01 >= 0.1, rows


@pytest.mark.skipif(sys.version_info < (3, 14), reason="asyncio.graph is new in CPython 3.14")
def test_frames_agree_with_asyncio_graph() -> None:
    from asyncio import graph

    async def main() -> None:
        tasks = [asyncio.create_task(s()) for s in (handler_sleep, handler_gather, handler_taskgroup)]
        await asyncio.sleep(0.05)
        sampler = async_wait.TaskWaitSampler(asyncio.get_running_loop(), lambda rows: None, 10_000_000)
        checked = 0
        for task in asyncio.all_tasks():
            if task is asyncio.current_task():
                continue
            ours = sampler._chain_frames[sampler._own_chain(task)]
            captured = graph.capture_call_graph(task)
            assert captured is not None
            theirs = [e.frame for e in reversed(captured.call_stack)]
            assert [(f.name, f.line) for f in ours] == [(f.f_code.co_qualname, f.f_lineno) for f in theirs]
            checked += 1
        assert checked >= 5
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def test_disable_stops_the_snapshot_thread_and_releases_tasks() -> None:
    import gc
    import weakref

    async def main() -> tuple[Any, Any]:
        prof = ringprof.Profile(mode="cpu", async_tasks=True, async_interval=0.02)
        prof.enable()
        task = asyncio.create_task(hold())
        await asyncio.sleep(0.1)
        sampler = prof._waiters[0]
        worker = sampler._worker
        prof.disable()
        await task
        return worker, weakref.ref(task)

    worker, task_ref = asyncio.run(main())
    assert worker is not None and not worker.is_alive()
    gc.collect()
    assert task_ref() is None, "the async view kept a finished task alive"


def test_waiting_and_cpu_samples_name_a_task_with_the_same_id() -> None:
    """The async view and the task-step hook label one task with one task_id,
    so filter(task=...) selects both its waiting and its on-CPU time."""
    import asyncio

    from ringprof.asyncio_tasks import task_id

    async def main() -> tuple[int, int]:
        task = asyncio.current_task()
        return task_id(task), task_id(task)

    first, again = asyncio.run(main())
    assert first == again and first > 0
