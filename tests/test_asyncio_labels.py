"""Labels follow asyncio tasks across awaits; every task step carries ``task``/``task_id``.

The profiling runs in child interpreters (see targets/rp_harness.py).  Ground
truth is the CPU time each task burnt, measured with ``time.thread_time()``
around each burst; the assertions compare *weight shares* with it (the
machine may be loaded), and check that no sample of one task's code carries
the other task's labels (the handler reads the stack and the label slot at
the same instant, so that holds exactly).
"""

from __future__ import annotations

import os
import sys
import textwrap
from typing import Any

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "targets"))

import rp_harness as H

import ringprof
from ringprof.model import ProfileData

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")

# Two tasks on one loop, interleaving at every burst: A burns 60 ms per burst,
# B 30 ms on average, each inside its own labels() block that spans all its
# awaits.  CPU timers fire on the kernel tick, so each burst's share is off by
# up to a tick or so: bursts of a few ticks (12/6 ms) put the shares 3 points
# (1 sigma) off on a loaded machine, bursts of 10-20 ticks well under 1.
# Lengths are drawn at random so that they cannot stay in phase with the tick.  A
# creates a child task inside its block (which inherits who=a); main creates
# one outside any block.
TWO_TASKS = """
import asyncio, random, time
from ringprof.model import ProfileData

rng = random.Random(12345)

truth = {"a": 0.0, "b": 0.0, "a_child": 0.0, "free_child": 0.0}

def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass

def burn_a(seconds):
    t0 = time.thread_time(); burn(seconds); truth["a"] += time.thread_time() - t0

def burn_b(seconds):
    t0 = time.thread_time(); burn(seconds); truth["b"] += time.thread_time() - t0

def burn_a_child(seconds):
    t0 = time.thread_time(); burn(seconds); truth["a_child"] += time.thread_time() - t0

def burn_free_child(seconds):
    t0 = time.thread_time(); burn(seconds); truth["free_child"] += time.thread_time() - t0

async def a_child():
    for _ in range(5):
        burn_a_child(0.01)
        await asyncio.sleep(0)

async def free_child():
    for _ in range(5):
        burn_free_child(0.01)
        await asyncio.sleep(0)

async def task_a(rounds):
    with ringprof.labels(who="a", shared="x"):
        child = asyncio.create_task(a_child(), name="a-child")
        for _ in range(rounds):
            burn_a(rng.uniform(0.040, 0.080))
            await asyncio.sleep(0)
        await child

async def task_b(rounds):
    with ringprof.labels(who="b"):
        for _ in range(rounds):
            burn_b(rng.uniform(0.020, 0.040))
            await asyncio.sleep(0)

async def main(rounds):
    ids = {}
    ta = asyncio.create_task(task_a(rounds), name="task-a")
    tb = asyncio.create_task(task_b(rounds), name="task-b")
    fc = asyncio.create_task(free_child(), name="free-child")
    await asyncio.gather(ta, tb, fc)

prof = ringprof.Profile(interval=0.004, mode="cpu")
prof.enable()
installed_while_recording = ringprof.asyncio_tasks.installed()
if LOOP == "uvloop":
    import uvloop
    # Imported after the recording started: the drain thread hooks it within a drain interval.
    deadline = time.monotonic() + 5
    while "call_soon" not in uvloop.Loop.__dict__ and time.monotonic() < deadline:
        time.sleep(0.01)
    uvloop.run(main(ROUNDS))
else:
    asyncio.run(main(ROUNDS))
prof.disable()
extra = {"truth": truth, "installed_while_recording": installed_while_recording,
         "installed_after": ringprof.asyncio_tasks.installed(),
         "handle_run_module": asyncio.Handle._run.__module__,
         "uvloop_call_soon_left": LOOP == "uvloop" and "call_soon" in uvloop.Loop.__dict__}
"""


# uvloop is a [test] dependency: without it the uvloop runs fail, they do not skip.
LOOPS = ["asyncio", "uvloop"]


def _run_two_tasks(tmp_path: Any, loop: str, rounds: int = 30) -> tuple[ProfileData, dict[str, Any]]:
    out = os.path.join(str(tmp_path), "tasks.ringprof")
    code = ("import ringprof.asyncio_tasks\n"
            + textwrap.dedent(TWO_TASKS).replace("ROUNDS", str(rounds)).replace("LOOP", repr(loop))
            + f"\nprof.save({out!r})\nemit(extra)\n")
    extra = H.run_child(code, timeout=180)
    return ringprof.load(out).data, extra


def _weights_by_function(data: ProfileData, names: set[str]) -> dict[str, dict[int, int]]:
    """For each function in ``names``: label-set id -> weight of the samples whose stack holds it."""
    out: dict[str, dict[int, int]] = {n: {} for n in names}
    stack_names = [{data.frames[f].name for f in st} for st in data.stacks]
    for sid, lid, w in zip(data.stack.tolist(), data.labels.tolist(), data.weight.tolist(), strict=True):
        for n in names & stack_names[sid]:
            out[n][lid] = out[n].get(lid, 0) + w
    return out


@pytest.fixture(scope="module", params=LOOPS)
def two_tasks(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[ProfileData, dict[str, Any]]:
    return _run_two_tasks(tmp_path_factory.mktemp("asyncio"), request.param)


def test_each_task_weight_lands_under_its_own_labels(two_tasks: tuple[ProfileData, dict[str, Any]]) -> None:
    data, extra = two_tasks
    truth = extra["truth"]
    by_fn = _weights_by_function(data, {"burn_a", "burn_b"})
    # None of a task's code is labelled with the other's labels (or unlabelled).
    for fn, who in (("burn_a", "a"), ("burn_b", "b")):
        assert by_fn[fn], f"no samples in {fn}"
        wrong = {lid: w for lid, w in by_fn[fn].items() if data.label_sets[lid].get("who") != who}
        assert not wrong, (fn, {str(data.label_sets[k]): w for k, w in wrong.items()})
    # Weight under each task's labels matches the CPU it burnt (shares, ±5 points).
    weight = {"a": 0, "b": 0}
    for lid, w in zip(data.labels.tolist(), data.weight.tolist(), strict=True):
        who = data.label_sets[lid].get("who")
        if who in weight and data.label_sets[lid].get("task") in ("task-a", "task-b"):
            weight[who] += w
    share = weight["a"] / (weight["a"] + weight["b"])
    true_share = truth["a"] / (truth["a"] + truth["b"])
    assert abs(share - true_share) <= 0.05, (share, true_share, weight, truth)


def test_child_tasks_inherit_the_labels_of_the_block_they_were_created_in(
        two_tasks: tuple[ProfileData, dict[str, Any]]) -> None:
    data, _ = two_tasks
    by_fn = _weights_by_function(data, {"burn_a_child", "burn_free_child"})
    assert by_fn["burn_a_child"] and by_fn["burn_free_child"]
    for lid in by_fn["burn_a_child"]:
        ls = data.label_sets[lid]
        assert ls.get("who") == "a" and ls.get("shared") == "x" and ls.get("task") == "a-child", ls
    for lid in by_fn["burn_free_child"]:
        ls = data.label_sets[lid]
        assert "who" not in ls and ls.get("task") == "free-child", ls


def test_task_and_task_id_labels_name_the_running_task(two_tasks: tuple[ProfileData, dict[str, Any]]) -> None:
    data, _ = two_tasks
    by_fn = _weights_by_function(data, {"burn_a", "burn_b", "burn_a_child", "burn_free_child"})
    ids: dict[str, set[str]] = {}
    for fn, name in (("burn_a", "task-a"), ("burn_b", "task-b"), ("burn_a_child", "a-child"),
                     ("burn_free_child", "free-child")):
        for lid in by_fn[fn]:
            ls = data.label_sets[lid]
            assert ls.get("task") == name, (fn, ls)
            ids.setdefault(name, set()).add(ls["task_id"])
    # One stable id per task, a different one for each task.
    assert all(len(v) == 1 for v in ids.values()), ids
    assert len({next(iter(v)) for v in ids.values()}) == 4, ids
    # filter(task=...) selects one task, by name or by id.
    only_a = data.filter(task="task-a")
    assert only_a.total_weight() > 0
    assert {only_a.label_sets[lid].get("task") for lid in set(only_a.labels.tolist())} == {"task-a"}
    by_id = data.filter(task=int(next(iter(ids["task-b"]))))
    assert {by_id.label_sets[lid].get("task") for lid in set(by_id.labels.tolist())} == {"task-b"}
    assert by_id.total_weight() == data.filter(task="task-b").total_weight()


def test_the_hook_is_removed_when_recording_stops(two_tasks: tuple[ProfileData, dict[str, Any]]) -> None:
    _, extra = two_tasks
    assert extra["installed_while_recording"] is True
    assert extra["installed_after"] is False
    assert extra["handle_run_module"] == "asyncio.events"  # the original function is back
    assert extra["uvloop_call_soon_left"] is False  # uvloop.Loop inherits its own call_soon again


def test_hook_lifecycle_follows_recordings() -> None:
    """Not installed on import, nor by labels() alone; installed when asyncio
    is imported after the recording started; kept while any recording runs."""
    res = H.run_child("""
        from ringprof import asyncio_tasks
        out = {"on_import": asyncio_tasks.installed(), "asyncio_imported": "asyncio" in sys.modules}
        with ringprof.labels(x=1):
            pass
        out["after_labels"] = asyncio_tasks.installed()
        first = ringprof.Profile(interval=0.004)
        first.enable()
        out["before_asyncio_import"] = asyncio_tasks.installed()
        import asyncio
        deadline = time.monotonic() + 5
        while not asyncio_tasks.installed() and time.monotonic() < deadline:
            time.sleep(0.01)
        out["after_asyncio_import"] = asyncio_tasks.installed()
        second = ringprof.Profile(interval=0.004)
        second.enable()
        first.disable()
        out["one_of_two_stopped"] = asyncio_tasks.installed()
        second.disable()
        out["all_stopped"] = asyncio_tasks.installed()
        out["handle_run_module"] = asyncio.Handle._run.__module__
        emit(out)
    """)
    assert res == {"on_import": False, "asyncio_imported": False, "after_labels": False,
                   "before_asyncio_import": False, "after_asyncio_import": True, "one_of_two_stopped": True,
                   "all_stopped": False, "handle_run_module": "asyncio.events"}


def test_labels_across_awaits_and_exceptions_restore_the_task_labels() -> None:
    """Nested blocks across awaits, a block left by an exception, and the loop's
    own labels around asyncio.run: what ``current()`` reads at each point."""
    res = H.run_child("""
        import asyncio
        from ringprof.labels import current
        seen = {}

        async def other():
            for _ in range(3):
                seen.setdefault("other", []).append(current())
                await asyncio.sleep(0)

        async def main():
            seen["start"] = current()
            with ringprof.labels(a="1"):
                await asyncio.sleep(0)
                with ringprof.labels(b="2"):
                    await asyncio.sleep(0)
                    seen["inner"] = current()
                await asyncio.sleep(0)
                seen["outer"] = current()
                try:
                    with ringprof.labels(c="3"):
                        await asyncio.sleep(0)
                        raise KeyError
                except KeyError:
                    pass
                await asyncio.sleep(0)
                seen["after_error"] = current()
            await asyncio.sleep(0)
            seen["end"] = current()

        prof = ringprof.Profile(interval=0.004)
        prof.enable()
        with ringprof.labels(service="svc"):
            async def both():
                await asyncio.gather(asyncio.create_task(main(), name="main-task"),
                                     asyncio.create_task(other(), name="other-task"))
            asyncio.run(both())
            seen["loop_thread_after"] = current()
        prof.disable()
        seen["thread_after"] = current()
        emit(seen)
    """)

    def strip(d: dict[str, str]) -> dict[str, str]:
        assert d.get("task_id", "1").isdigit()
        return {k: v for k, v in d.items() if k != "task_id"}

    base = {"service": "svc", "task": "main-task"}
    assert strip(res["start"]) == base
    assert strip(res["inner"]) == {**base, "a": "1", "b": "2"}
    assert strip(res["outer"]) == {**base, "a": "1"}
    assert strip(res["after_error"]) == {**base, "a": "1"}
    assert strip(res["end"]) == base
    assert [strip(d) for d in res["other"]] == [{"service": "svc", "task": "other-task"}] * 3
    assert res["loop_thread_after"] == {"service": "svc"}
    assert res["thread_after"] == {}


def test_span_labels_set_directly_persist_across_the_tasks_awaits() -> None:
    """A label set straight in the thread's slot during a step (as the
    OpenTelemetry span processor does) stays with that task, not the next."""
    res = H.run_child("""
        import asyncio
        from ringprof.integrations import get_label, set_label
        from ringprof.labels import current, intern, lookup
        seen = {}

        async def spanned():
            previous = get_label()
            set_label(intern({**lookup(previous), "span_id": "s1"}))
            await asyncio.sleep(0)
            seen["spanned_after_await"] = current().get("span_id")
            await asyncio.sleep(0)
            set_label(previous)
            await asyncio.sleep(0)
            seen["spanned_after_end"] = current().get("span_id")

        async def bystander():
            for i in range(4):
                seen.setdefault("bystander", []).append(current().get("span_id"))
                await asyncio.sleep(0)

        async def main():
            await asyncio.gather(spanned(), bystander())

        prof = ringprof.Profile(interval=0.004)
        prof.enable()
        asyncio.run(main())
        prof.disable()
        emit(seen)
    """)
    assert res == {"spanned_after_await": "s1", "spanned_after_end": None, "bystander": [None] * 4}


def test_task_labels_reach_pprof(two_tasks: tuple[ProfileData, dict[str, Any]]) -> None:
    """pprof samples of each task's code carry its ``task``/``task_id`` string labels."""
    from ringprof.exporters import pprof

    data, _ = two_tasks
    profile = pprof.decode(pprof.render(data))
    seen: dict[str, set[tuple[str, ...]]] = {"burn_a": set(), "burn_b": set()}
    for sample, (names, _values) in zip(profile["samples"], pprof.sample_stacks(profile), strict=True):
        for fn in seen.keys() & set(names):
            labels = sample["labels"]
            seen[fn].add((*labels.get("task", []), *labels.get("who", [])))
            assert len(labels.get("task_id", [])) == 1, labels
    assert seen == {"burn_a": {("task-a", "a")}, "burn_b": {("task-b", "b")}}


def test_forked_child_has_the_hook_only_if_it_records() -> None:
    res = H.run_child("""
        import asyncio
        from ringprof import asyncio_tasks

        def child_state(follow):
            prof = ringprof.Profile(interval=0.004, follow_fork=follow)
            prof.enable()
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                os.write(w, json.dumps([asyncio_tasks.installed(), asyncio.Handle._run.__module__]).encode())
                os._exit(0)
            os.close(w)
            got = json.loads(os.read(r, 1000))
            os.waitpid(pid, 0)
            prof.disable()
            return got

        emit({"plain": child_state(False), "follow_fork": child_state(True)})
    """)
    assert res == {"plain": [False, "asyncio.events"], "follow_fork": [True, "ringprof.asyncio_tasks"]}


def test_filter_by_task_name_or_id_on_a_hand_made_model() -> None:
    from ringprof.model import Frame

    data = ProfileData({"mode": "cpu", "interval": 0.01})
    frames = [Frame("step", "app.py", 1, 2)]
    for weight, labels in ((3, {"task": "worker", "task_id": "4"}), (5, {"task": "worker", "task_id": "5"}),
                           (7, {"task": "other", "task_id": "6", "route": "/x"}), (11, None)):
        data.add_sample(frames, weight=weight, labels=labels)
    assert data.filter(task="worker").total_weight() == 8  # two tasks share the name
    assert data.filter(task=5).total_weight() == 5
    assert data.filter(task=6, labels={"route": "/x"}).total_weight() == 7
    assert data.filter(task=6, labels={"route": "/y"}).total_weight() == 0
    assert data.filter(task="nobody").total_weight() == 0
    with pytest.raises(TypeError):
        data.filter(task=4.0)  # type: ignore[arg-type]


def test_a_task_keeps_the_labels_of_a_block_it_outlives_until_it_ends() -> None:
    """Label sets are released when unused (issue 12): a task created inside a
    ``labels()`` block holds the block's set (and its own task set) while it
    lives, across drains after the block exited; both go once it is gone, and
    no sample ever names a released set."""
    res = H.run_child("""
        import asyncio, gc
        from ringprof import label_table, sampler
        from ringprof.labels import current

        def burn_late(seconds):
            end = time.thread_time() + seconds
            while time.thread_time() < end:
                pass

        async def late_child(go):
            await go.wait()
            burn_late(0.2)
            return current()

        async def main():
            go = asyncio.Event()
            with ringprof.labels(request_id="r-17"):
                child = asyncio.create_task(late_child(go), name="late")
            await asyncio.sleep(0)
            for _ in range(3):  # drain passes after the block's release
                sampler.flush()
                await asyncio.sleep(0.02)
            live_while_child = label_table.stats()["live"]
            go.set()
            seen = await child
            return seen, live_while_child

        prof = ringprof.Profile(interval=0.004)
        prof.enable()
        live_before = label_table.stats()["live"]
        seen, live_while_child = asyncio.run(main())
        gc.collect()
        label_table.take_deferred()  # the task's and the block's holds, dropped when their contexts went
        for _ in range(3):  # released at the end of a drain pass that began after
            sampler.flush()
        live_after = label_table.stats()["live"]
        prof.disable()
        data = prof.data
        late = [data.label_sets[lid] for sid, lid in zip(data.stack.tolist(), data.labels.tolist())
                if any(data.frames[f].name == "burn_late" for f in data.stacks[sid])]
        emit({"seen": seen, "late": late, "live_before": live_before, "live_while_child": live_while_child,
              "live_after": live_after, "late_lookups": label_table.stats()["late_lookups"]})
    """)
    assert res["seen"]["request_id"] == "r-17" and res["seen"]["task"] == "late", res["seen"]
    assert res["late"] and all(ls.get("request_id") == "r-17" and ls.get("task") == "late" for ls in res["late"])
    assert res["live_while_child"] >= res["live_before"] + 2  # the block's set and the child's task set
    assert res["live_after"] <= res["live_before"], res  # gone with the tasks
    assert res["late_lookups"] == 0
