"""Label sets are released once no thread holds them and no undrained sample
can name them (issue 12): ``ringprof.labels(request_id=...)`` must not grow
the process per request, and samples taken under short-lived labels must
still carry the right labels."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import ringprof
from ringprof import label_table, sampler
from ringprof.labels import current


@pytest.fixture
def idle_table():
    """The table as with no sampler running (restored afterwards)."""
    assert not sampler.is_running()
    yield
    label_table.set_sampling(False)


def test_release_waits_for_a_drain_that_began_after_it(idle_table: None) -> None:
    before = label_table.stats()["released"]
    # No sampler: an unused set goes at once.
    lid = label_table.acquire({"request_id": "a"})
    assert label_table.lookup(lid) == {"request_id": "a"}
    label_table.release(lid)
    # (Other sets may be released meanwhile: a task context's labels are
    # released from a finalizer, applied at the next table call.)
    assert not label_table.contains(lid) and label_table.stats()["released"] >= before + 1
    # Sampling: it waits for a pass that began after the release and ended.
    label_table.set_sampling(True)
    early = label_table.drain_begins()  # a pass already running when the set is released
    lid = label_table.acquire({"request_id": "b"})
    held = label_table.acquire({"request_id": "b"})  # two holders: one release keeps it
    assert held == lid
    label_table.release(lid)
    label_table.release(lid)
    label_table.drain_ends(early)
    assert label_table.lookup(lid) == {"request_id": "b"}  # that pass may have copied samples naming it
    late = label_table.drain_begins()
    assert label_table.lookup(lid) == {"request_id": "b"}
    label_table.drain_ends(late)
    assert not label_table.contains(lid) and label_table.stats()["released"] >= before + 2
    # Released ids are never reused; a set acquired again gets a new id.
    again = label_table.acquire({"request_id": "b"})
    assert again > lid
    label_table.release(again)
    # Pinned sets (intern) stay, also when acquired and released.
    pinned = label_table.intern({"route": "/x"})
    assert label_table.acquire({"route": "/x"}) == pinned
    label_table.release(pinned)
    label_table.set_sampling(False)
    assert label_table.lookup(pinned) == {"route": "/x"}
    assert label_table.stats()["unused"] == 0
    late_before = label_table.stats()["late_lookups"]
    assert label_table.lookup(lid) == {}  # (a released id, looked up: counted)
    assert label_table.stats()["late_lookups"] == late_before + 1


def test_nested_blocks_hold_their_sets(idle_table: None) -> None:
    with ringprof.labels(endpoint="/a") as outer:
        assert outer == {"endpoint": "/a"}
        with ringprof.labels(request_id="1") as inner:
            assert inner == {"endpoint": "/a", "request_id": "1"}
            assert current() == inner
        assert current() == {"endpoint": "/a"}
    assert current() == {}


CHILD = textwrap.dedent("""
    import gc, json, os, time
    import ringprof
    from ringprof import label_table

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def churn(lo, hi):
        for i in range(lo, hi):
            with ringprof.labels(request_id=str(i), user=f"user-{i}"):
                pass

    def burn_odd(seconds):
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    def burn_even(seconds):
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    # 5 ms, not 1: on a loaded machine, sampling at 1 kHz during the churn
    # grew the process by up to 5.4 MiB (5.0 in CI) against 1.4 in other runs;
    # at 5 ms, 0.2-0.5 MiB under the same load.  The bound is about label sets.
    prof = ringprof.Profile(interval=0.005, threads="current")
    prof.enable()
    churn(0, 30_000)  # warm-up: the recording's and the allocator's own start-up
    prof.data
    gc.collect()
    before = rss()
    churn(30_000, 230_000)  # 200,000 distinct label sets
    prof.data
    gc.collect()
    after = rss()
    # The recording keeps the label set of every sample it took (each one a
    # distinct set here): that is data, not a leak, and it grows with the
    # time the churn took (a loaded machine: more samples).
    kept_by_recording = len(prof.data.label_sets)
    released_while_sampling = label_table.stats()["released"]
    # Short-lived labels around known work: each sample must carry its block's labels.
    k = 0
    churned = prof.data.total_weight()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with ringprof.labels(req=str(k), parity=str(k % 2)):
            (burn_odd if k % 2 else burn_even)(0.002)
        k += 1
        if k % 100 == 0 and prof.data.total_weight() - churned >= 600:
            break
    prof.disable()
    data = prof.data
    rows = []
    for sid, lid, w in zip(data.stack.tolist(), data.labels.tolist(), data.weight.tolist()):
        names = [data.frames[f].name for f in data.stacks[sid]]
        rows.append([names[-1] if names else "", data.label_sets[lid], w])
    print(json.dumps({"growth": after - before, "kept_by_recording": kept_by_recording, "stats": label_table.stats(),
                      "released_while_sampling": released_while_sampling, "rows": rows, "blocks": k}))
""")


def test_many_label_sets_do_not_grow_the_process_and_samples_keep_their_labels() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.splitlines()[-1])
    # 200,000 distinct sets: kept forever they take over 100 MiB; released,
    # nothing grows but what the recording itself holds (the label sets of
    # the samples it took, under 2 KiB each with its share of the aggregate)
    # and what the allocator keeps of the sets waiting for a drain (about
    # 4,000 of them at the peak at the default 0.1 s drain interval here;
    # 4.8 MiB of growth was seen once in CI, 1.4 at most otherwise).
    bound = 8 * 2**20 + 2048 * res["kept_by_recording"]
    assert res["growth"] <= bound, (res["growth"] / 2**20, res["kept_by_recording"])
    stats = res["stats"]
    assert res["released_while_sampling"] >= 200_000  # released during the recording, not only at its end
    assert stats["late_lookups"] == 0
    assert stats["live"] <= 5 and stats["unused"] == 0
    odd = even = 0
    for leaf, labels, weight in res["rows"]:
        if leaf in ("burn_odd", "burn_even"):
            parity = 1 if leaf == "burn_odd" else 0
            assert labels.get("parity") == str(parity), (leaf, labels)
            assert int(labels["req"]) % 2 == parity and 0 <= int(labels["req"]) < res["blocks"]
            if parity:
                odd += weight
            else:
                even += weight
        elif "parity" in labels:  # inside a block, outside the burn (entering, leaving)
            assert int(labels["req"]) % 2 == int(labels["parity"]), (leaf, labels)
    # Both kinds of block were sampled, in proportion to the CPU they burned (1:1).
    assert odd + even >= 500
    assert 0.35 <= odd / (odd + even) <= 0.65
