"""The native sampler end to end, on real workloads.

Every profiling run happens in a child interpreter (see targets/rp_harness.py):
a crash of the signal handler then fails one test with the child's output
instead of taking pytest down, and each run starts with clean process state
(no armed timers, no leftover SIGPROF disposition).

Numbers to keep in mind: CPU-time timers fire on the kernel tick (250 Hz on
the reference machine), so CPU-mode tests ask for 4 ms at most; wall mode
(CLOCK_MONOTONIC) goes much higher.  Shares and rates are compared with
tolerances, never exactly.
"""

from __future__ import annotations

import collections
import os
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "targets"))

import rp_harness as H

import ringprof
from ringprof.model import FLAG_BAD_FRAME, FLAG_BLOCKED, FLAG_HOLDS_GIL, FLAG_TRUNCATED, Frame, ProfileData

NO_PYTHON = Frame("<no Python frames>", "", 0, 0)
BAD_FRAME = Frame("<bad frame>", "", 0, 0)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only")


def profile_child(tmp_path: Any, body: str, *, timeout: float = 120) -> tuple[ProfileData, Any]:
    """Run ``body`` in a child; it must leave a disabled Profile in ``prof`` and
    JSON-able data in ``extra``.  Returns (the profile's data, extra)."""
    out = os.path.join(str(tmp_path), "child.ringprof")
    code = textwrap.dedent(body) + f"\nprof.save({out!r})\nemit(extra)\n"
    extra = H.run_child(code, timeout=timeout)
    return ringprof.load(out).data, extra


def same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def stacks_by_sample(data: ProfileData) -> list[list[Frame]]:
    table = [[data.frames[f] for f in st] for st in data.stacks]
    return [table[s] for s in data.stack]


# --------------------------------------------------------------------------- hot line
def test_hot_line_is_attributed_to_the_right_file_and_line(tmp_path: Any) -> None:
    data, _ = profile_child(tmp_path, """
        import hotline
        with ringprof.Profile(interval=0.004) as prof:
            hotline.run(0.7)
        extra = None
    """)
    target = H.target_path("hotline.py")
    hot = H.marker_line("hotline.py", "HOT")
    call = H.marker_line("hotline.py", "CALL")
    stacks = stacks_by_sample(data)
    weights = data.weight.tolist()
    # Weights, not records: a loaded machine folds timer expirations into fewer, heavier samples.
    assert data.total_weight() * 0.004 >= 0.5 * 0.7, f"{data.total_weight()} x 4 ms sampled for 0.7 s of CPU"
    in_hot = [st for st in stacks if st[-1].name == "hot_function"]
    hot_weight = sum(w for st, w in zip(stacks, weights, strict=True) if st[-1].name == "hot_function")
    assert hot_weight >= 0.8 * data.total_weight()
    leaf = in_hot[0][-1]
    assert same_file(leaf.filename, target)
    assert leaf.firstlineno == hot - 3  # the def line
    lines = collections.Counter(st[-1].line for st in in_hot)
    assert set(lines) <= set(range(hot - 3, hot + 2)), lines  # all inside the function
    assert lines.most_common(1)[0][0] == hot, lines
    assert lines[hot] >= 0.6 * len(in_hot), lines
    # The caller's frame points at the call site.
    callers = collections.Counter((st[-2].name, st[-2].line) for st in in_hot if len(st) >= 2)
    assert callers[("run", call)] >= 0.95 * len(in_hot), callers


# --------------------------------------------------------------------------- truncation
def test_recursion_deeper_than_max_depth_is_truncated_leaf_side_kept(tmp_path: Any) -> None:
    data, extra = profile_child(tmp_path, """
        import deep
        with ringprof.Profile(interval=0.004, max_depth=32) as prof:
            deep.recurse(200, 0.6)
            deep.shallow(0.25)
        extra = {"max_depth": prof.data.meta["max_depth"]}
    """)
    assert extra["max_depth"] == 32
    leaf_line = H.marker_line("deep.py", "LEAF")
    bottom = H.marker_line("deep.py", "BOTTOM")
    recurse_line = H.marker_line("deep.py", "RECURSE")
    stacks = stacks_by_sample(data)
    # Samples at the bottom of the recursion (a sample may also land during the
    # brief descent, where the stack is legitimately shallower).
    deep_idx = [i for i, st in enumerate(stacks)
                if any(f.name == "recurse" for f in st) and st[-1].name == "burn_leaf"]
    shallow_idx = [i for i, st in enumerate(stacks) if any(f.name == "shallow" for f in st)]
    # Weights, not records (0.6 s and 0.25 s of CPU at 4 ms: 150 and 62 expected; ask for half).
    deep_weight = int(data.weight[deep_idx].sum()) if deep_idx else 0
    shallow_weight = int(data.weight[shallow_idx].sum()) if shallow_idx else 0
    assert deep_weight >= 75 and shallow_weight >= 31, (deep_weight, shallow_weight)
    truncated = Frame("<truncated>", "", 0, 0)
    for i in deep_idx:
        st = stacks[i]
        assert data.flags[i] & FLAG_TRUNCATED
        assert st[0] == truncated, st[0]  # the synthetic root
        assert len(st) == 32 + 1
        assert data.depth[i] == 32  # capped: deeper than max_depth, the rest is not walked
        # Leaf side kept: burn_leaf, then the innermost recurse frames.
        assert st[-1].name == "burn_leaf"
        assert st[-1].line in range(leaf_line - 7, leaf_line + 3)
        assert [f.name for f in st[1:-1]] == ["recurse"] * 31
        assert st[-2].line == bottom
        assert {f.line for f in st[1:-2]} == {recurse_line}
    for i in shallow_idx:
        st = stacks[i]
        assert not data.flags[i] & FLAG_TRUNCATED
        assert truncated not in st
        assert data.depth[i] == len(st)
        assert [f.name for f in st[-2:]] == ["shallow", "burn_leaf"]


# --------------------------------------------------------------------------- names
NAME_CHAINS = {
    # frames of names.py on the stack, root to leaf
    ("run", "Outer.method", "spin"),
    ("run", "Outer.Inner.static", "spin"),
    ("run", "outer", "outer.<locals>.inner", "spin"),
    ("run", "<lambda>", "spin"),
    ("run", "make_lambda.<locals>.<lambda>", "spin"),
    ("run", "generator", "spin"),
    ("run", "run.<locals>.main", "coroutine", "spin"),
    ("run", "run.<locals>.main", "Service.handle", "spin"),
    ("run", "use_genexpr", "use_genexpr.<locals>.<genexpr>"),
    ("run", "make_class", "make_class.<locals>.Klass"),
}


def test_qualified_names_of_every_kind_of_code(tmp_path: Any) -> None:
    data, _ = profile_child(tmp_path, """
        import names
        with ringprof.Profile(interval=0.004) as prof:
            names.run()
            import classbody
        extra = None
    """)
    target = H.target_path("names.py")
    body_target = H.target_path("classbody.py")
    chains: collections.Counter[tuple[str, ...]] = collections.Counter()
    body = 0
    for frames, weight in data.iter_stacks():
        mine = tuple(f.name for f in frames if same_file(f.filename, target))
        if mine:
            chains[mine] += weight
        if frames[-1].name == "Klass" and same_file(frames[-1].filename, body_target):
            assert frames[-2].name == "<module>" and same_file(frames[-2].filename, body_target)
            body_line = H.marker_line("classbody.py", "BODY")
            # From the deadline's line (a sample inside its time.thread_time()
            # call has the class body as its leaf) to the BODY line.
            assert frames[-1].line in range(body_line - 4, body_line + 1), frames[-1]
            body += weight
    # 0.15 s of CPU per scenario at 250 Hz is ~37 samples.
    for chain in sorted(NAME_CHAINS):
        assert chains[chain] >= 12, f"{' > '.join(chain)}: {chains[chain]} samples; seen {dict(chains)}"
    allowed = NAME_CHAINS | {("run", "use_genexpr"), ("run", "make_class"), ("run",),
                             ("run", "run.<locals>.main")}
    stray = {c: w for c, w in chains.items() if c not in allowed}
    assert sum(stray.values()) <= 3, stray
    assert body >= 12, "module-level class body 'Klass' not seen"


# --------------------------------------------------------------------------- accuracy
def test_cpu_shares_50_30_20_within_3_points(tmp_path: Any) -> None:
    data, extra = profile_child(tmp_path, """
        import shares
        shares.calibrate(0.004)
        spent = {"alpha": 0.0, "beta": 0.0, "gamma": 0.0}
        with ringprof.Profile(interval=0.004) as prof:
            # 3 s of CPU is ~750 samples at 250 Hz.  On a loaded machine the
            # kernel checks CPU timers less often (expirations then arrive as
            # weight > 1 on fewer records): keep going until >= 650 records.
            total = 0.0
            while total < 3.0 or (len(prof.data) < 650 and total < 8.0):
                for k, v in shares.run(0.5).items():
                    spent[k] += v
                total = sum(spent.values())
        extra = {"spent": spent, "unit": shares.UNIT}
    """)
    assert data.total_weight() >= 600, f"weight {data.total_weight()} in {len(data)} samples"
    weights = {"alpha": 0, "beta": 0, "gamma": 0}
    for frames, weight in data.iter_stacks():
        names = {f.name for f in frames}
        for fn in weights:
            if fn in names:
                weights[fn] += weight
    total = sum(weights.values())
    assert total >= 0.9 * data.total_weight()
    spent = extra["spent"]
    cpu_total = sum(spent.values())
    nominal = {"alpha": 50.0, "beta": 30.0, "gamma": 20.0}
    report = {fn: (round(100 * weights[fn] / total, 1), round(100 * spent[fn] / cpu_total, 1))
              for fn in weights}
    print(f"\nshares (profiled %, measured %): {report}; samples={len(data)} "
          f"weight={data.total_weight()} cpu={cpu_total:.2f}s dropped={data.meta['stats']['dropped']}")
    for fn, want in nominal.items():
        got = 100.0 * weights[fn] / total
        measured = 100.0 * spent[fn] / cpu_total
        # Under ASan (tools/sanitize.sh) instrumentation skews the real CPU split
        # away from the nominal one, and its slow handler loses accuracy on a
        # loaded machine (11.5 points once on 3.14): there the run is for memory
        # safety, and only gross misattribution fails.  The normal suites hold 3.
        sanitized = bool(os.environ.get("RINGPROF_SANITIZED"))
        if not sanitized:
            assert abs(got - want) <= 3.0, f"{fn}: profiled {got:.1f}% vs nominal {want}% ({report})"
        tolerance = 15.0 if sanitized else 3.0
        assert abs(got - measured) <= tolerance, f"{fn}: profiled {got:.1f}% vs measured {measured:.1f}%"


# --------------------------------------------------------------------------- threads
def test_threads_started_after_enable_are_sampled_in_proportion(tmp_path: Any) -> None:
    data, extra = profile_child(tmp_path, """
        import threading, threads_cpu
        with ringprof.Profile(interval=0.004) as prof:
            from ringprof import sampler

            drain_tid = sampler.drain_thread_id()
            assert drain_tid is not None
            burners = threads_cpu.run([0.2, 0.4, 0.6])
            late = threads_cpu.run([0.4], settle=0.0)  # burns at once, armed by the drain
        extra = {"drain": drain_tid, "burners": burners, "late": late,
                 "main": threading.get_native_id()}
    """)
    per_thread = collections.Counter()
    for tid, weight in zip(data.thread.tolist(), data.weight.tolist(), strict=True):
        per_thread[tid] += weight
    assert extra["drain"] not in per_thread, "the drain thread was sampled"
    for frames, _ in data.iter_stacks():
        assert not any(f.name.endswith("_drain_loop") for f in frames)
    burners = extra["burners"]
    cpu_total = sum(b["cpu"] for b in burners.values())
    sampled_total = sum(per_thread[b["tid"]] for b in burners.values())
    assert sampled_total >= 0.6 * cpu_total * 250, (sampled_total, cpu_total)
    shares = []
    for b in burners.values():
        got = 100.0 * per_thread[b["tid"]] / sampled_total
        want = 100.0 * b["cpu"] / cpu_total
        shares.append((round(got, 1), round(want, 1)))
        assert abs(got - want) <= 8.0, f"thread shares (sampled %, measured %): {shares}"
    # Their samples show the thread's own frames.
    burn_line = H.marker_line("threads_cpu.py", "BURN")
    # (A CPU-time sample can also land where the thread runs C with no Python
    # frame -- taking the GIL at its start, its thread state's teardown at its
    # end -- or in threading's own start and teardown code around run()
    # (3.14's _bootstrap_inner names the OS thread, a C call).  That is the
    # truth, and rare: seen once each in CI on a loaded machine, under ASan.)
    outside = 0
    for i, st in enumerate(stacks_by_sample(data)):
        if data.thread[i] == burners["t0"]["tid"]:
            if st[-1].name == "<no Python frames>" or (
                    st[-1].name in ("Thread._bootstrap_inner", "Thread._bootstrap")
                    and all(f.filename.endswith("threading.py") for f in st)):
                outside += int(data.weight[i])
                continue
            assert st[-1].name == "burner"
            assert st[0].name == "Thread._bootstrap"
    assert outside <= max(2, 0.05 * per_thread[burners["t0"]["tid"]]), (outside, per_thread)
    assert any(st[-1].line == burn_line for st in stacks_by_sample(data))
    # A thread that burns from its first instruction is picked up within a
    # drain period or so: most of its CPU second is seen.
    late = extra["late"]["t0"]
    assert per_thread[late["tid"]] >= 0.5 * late["cpu"] * 250, (per_thread[late["tid"]], late)


# --------------------------------------------------------------------------- wall mode
def test_wall_mode_samples_a_sleeping_thread_at_the_requested_rate(tmp_path: Any) -> None:
    data, extra = profile_child(tmp_path, """
        import wall_sleep
        with ringprof.Profile(interval=0.001, mode="wall") as prof:
            info = wall_sleep.run(1.0)
        extra = info
    """)
    assert data.meta["mode"] == "wall"
    assert data.meta["timer"] == "thread-tick"
    sleep_line = H.marker_line("wall_sleep.py", "SLEEP")
    mask = data.thread == extra["tid"]
    weights = data.weight[mask]
    total = int(weights.sum())
    assert total >= 300, f"sleeping thread sampled for {total} intervals in 1 s at 1 kHz"
    stacks = stacks_by_sample(data)
    idx = np.flatnonzero(mask)
    at_sleep = sum(int(data.weight[i]) for i in idx
                   if stacks[i][-1].name == "sleeper" and stacks[i][-1].line == sleep_line)
    assert at_sleep >= 0.95 * total, f"{at_sleep}/{total} intervals at the sleep line"
    holding = int(weights[(data.flags[mask] & FLAG_HOLDS_GIL) != 0].sum())
    assert holding <= 0.05 * total, f"{holding}/{total} intervals of a sleeping thread claim the GIL"
    # Blocked the whole time: recorded from outside, never signalled.
    blocked = int(weights[(data.flags[mask] & FLAG_BLOCKED) != 0].sum())
    assert blocked >= 0.9 * total, f"{blocked}/{total} intervals recorded without a signal"
    # Rate: from the thread's first sample (it is armed by its start hook or
    # the drain's sweep) to the end of its sleep.  Blocked intervals are
    # written as one record per ~100 ms, stamped with the first of them.
    times = np.sort(data.time_ns[mask])
    assert times[0] - extra["start_ns"] <= 0.5e9, "thread armed too late"
    window = (extra["end_ns"] - int(times[0])) / 1e9
    weighted = total / window
    print(f"\nwall mode 1 kHz: {weighted:.0f} weighted/s, window {window:.3f}s")
    assert 800 <= weighted <= 1150, weighted
    # The main thread, blocked in join(), is sampled too in wall mode.
    assert len(set(data.thread.tolist())) >= 2


# --------------------------------------------------------------------------- itimer
def test_itimer_fallback(tmp_path: Any) -> None:
    data, _ = profile_child(tmp_path, """
        import hotline
        with ringprof.Profile(interval=0.004, timer_kind="itimer") as prof:
            hotline.run(0.5)
        extra = None
    """)
    assert data.meta["timer"] == "itimer-prof"
    stacks = stacks_by_sample(data)
    # ITIMER_PROF raises SIGPROF, a standard signal: expirations while one is
    # still pending merge into it and carry no overrun count, which a loaded
    # machine does often (49 of ~125 on 3.13 once).  The per-thread timers
    # keep their overruns as weights (see the hot-line test).
    assert data.total_weight() >= 0.3 * 0.5 * 250, data.total_weight()
    hot = sum(w for st, w in zip(stacks, data.weight.tolist(), strict=True) if st[-1].name == "hot_function")
    assert hot >= 0.8 * data.total_weight()
    assert data.meta["stats"]["dropped"] == 0


# --------------------------------------------------------------------------- code churn
@pytest.mark.parametrize("mode,interval,nthreads", [("cpu", 0.004, 1), ("wall", 0.0005, 2)])
def test_code_churn_resolves_only_live_names(tmp_path: Any, mode: str, interval: float, nthreads: int) -> None:
    data, extra = profile_child(tmp_path, f"""
        import threading, churn
        windows, tids = {{}}, {{}}
        def worker(k):
            tids[k] = threading.get_native_id()
            windows.update(churn.run(1.0, tag=k, at_least=320))
        with ringprof.Profile(interval={interval}, mode={mode!r}) as prof:
            threads = [threading.Thread(target=worker, args=(k,)) for k in range(1, {nthreads})]
            for t in threads:
                t.start()
            worker(0)
            for t in threads:
                t.join()
        extra = {{"windows": windows, "tids": tids, "invalid": prof.data.meta["stats"]["invalid_frames"]}}
    """)
    windows = extra["windows"]
    tids = {int(k): tid for k, tid in extra["tids"].items()}
    assert len(windows) >= 300 * nthreads, "the churn loop should create hundreds of functions"
    slack = 5_000_000  # ns
    total = len(data)
    # 1 s of churn CPU per thread: ~250 expirations at the 4 ms tick in cpu mode.  Count weight, not
    # records: on a loaded machine several expirations fold into one heavier record (170 records seen).
    assert data.total_weight() >= 150 * nthreads, data.total_weight()
    unknown = no_python = bad_walks = 0
    for i, st in enumerate(stacks_by_sample(data)):
        t = int(data.time_ns[i])
        for f in st:
            if f.name == "<unknown>":
                unknown += 1
                continue
            if f == NO_PYTHON:  # wall mode: a thread starting up or exiting
                no_python += 1
                continue
            if f == BAD_FRAME:  # see test_reentry_from_c_walks_are_consistent
                bad_walks += 1
                continue
            if f.name.startswith("f_") or f.filename.startswith("<churn-"):
                # f_<tag>_<i> of file <churn-<tag>_<i>>, or that file's module code (the exec).
                fn = f.name if f.name != "<module>" else "f_" + f.filename[len("<churn-"):-1]
                assert fn in windows, f"resolved a name that never existed: {f}"
                assert f.filename == f"<churn-{fn[2:]}>", f
                # It ran on that thread, at that time: a stale code pointer
                # resolved to a newer code object at the same address would not.
                assert int(data.thread[i]) == tids[int(fn.split("_")[1])], (f, int(data.thread[i]), tids)
                start, end = windows[fn]
                assert start - slack <= t <= end + slack, (f, t, windows[fn])
            else:  # the harness, threading, ringprof itself: real code only
                assert (f.filename == "<string>" or f.filename.startswith("<frozen ")
                        or os.path.isfile(f.filename)), f"unexpected frame {f}"
                assert f.name in {"<module>", "worker", "run"} or not f.filename.endswith("churn.py"), f
    assert unknown <= max(2, 0.005 * total), f"{unknown} <unknown> frames in {total} samples"
    assert no_python <= max(5, 0.02 * total), f"{no_python} samples without Python frames"
    assert bad_walks <= max(5, 0.02 * total), f"{bad_walks} samples with a <bad frame> walk"
    assert extra["invalid"] <= max(2, 0.005 * total)
    f_samples = sum(1 for st in stacks_by_sample(data) if st[-1].name.startswith("f_"))
    assert f_samples >= 0.3 * total


# --------------------------------------------------------------------------- metadata
def test_metadata_and_cpu_rate_at_100_hz(tmp_path: Any) -> None:
    data, extra = profile_child(tmp_path, """
        import hotline, threading
        before = time.time()
        t0 = time.monotonic()
        with ringprof.Profile(interval=0.01) as prof:
            c0 = time.thread_time()
            hotline.run(1.0)
            cpu = time.thread_time() - c0
        extra = {"before": before, "after": time.time(), "elapsed": time.monotonic() - t0,
                 "pid": os.getpid(), "argv": sys.argv, "python": sys.version,
                 "tid": threading.get_native_id(), "cpu": cpu}
    """)
    meta = data.meta
    for key in ("mode", "interval", "timer", "start_time", "duration", "python", "pid", "argv", "stats"):
        assert key in meta, key
    assert meta["mode"] == "cpu"
    assert meta["interval"] == 0.01
    assert meta["timer"] in ("thread-perf", "thread-cputime")
    assert meta["max_depth"] == 128
    assert extra["before"] <= meta["start_time"] <= extra["after"]
    assert extra["cpu"] - 0.05 <= meta["duration"] <= extra["elapsed"] + 0.05
    assert meta["python"] == extra["python"]
    assert meta["pid"] == extra["pid"]
    assert meta["argv"] == extra["argv"]
    stats = meta["stats"]
    for key in ("samples", "dropped", "handler_ns", "rate_per_thread"):
        assert key in stats, key
    assert stats["samples"] == len(data)
    assert stats["dropped"] == 0
    assert stats["handler_ns"] > 0
    # record_ns is the walk and the record alone (not re-arming the timer):
    # part of handler_ns, never more.
    assert 0 < stats["record_ns"] <= stats["handler_ns"]
    # handler_ns is wall time inside the handler, so a preemption there counts:
    # only a gross bound holds on a loaded machine.
    per_sample_us = stats["handler_ns"] / stats["samples"] / 1000
    assert stats["handler_ns"] < 0.25 * meta["duration"] * 1e9, f"{per_sample_us:.1f} us per sample"
    rates = stats["rate_per_thread"]
    tid = str(extra["tid"])
    assert tid in rates
    mine = int((data.thread == extra["tid"]).sum())
    assert rates[tid] == pytest.approx(mine / meta["duration"], rel=0.02)
    # CPU mode counts the thread's CPU time: at 100 Hz a thread that burned
    # `cpu` seconds is sampled ~100 * cpu times (however busy the machine is).
    cpu_rate = mine / extra["cpu"]
    weighted = int(data.weight[data.thread == extra["tid"]].sum()) / extra["cpu"]
    print(f"\ncpu mode 100 Hz: {cpu_rate:.1f} samples per CPU second ({weighted:.1f} weighted), "
          f"{rates[tid]:.1f} per wall second, handler {per_sample_us:.1f} us/sample")
    # Periods are random (uniform in [interval/2, 3*interval/2), redrawn every
    # 4th sample), so the count over ~1 s of CPU has a spread of ~+-10 %.
    assert cpu_rate >= 70, cpu_rate
    assert weighted <= 125, weighted


# --------------------------------------------------------------------------- C -> Python re-entry
@pytest.fixture(scope="module")
def reentry_data(tmp_path_factory: Any) -> ProfileData:
    """One wall-mode run at 5 kHz over C->Python re-entry, shared by the tests below."""
    data, _ = profile_child(tmp_path_factory.mktemp("reentry"), """
        import reentry
        with ringprof.Profile(interval=0.0002, mode="wall") as prof:
            reentry.run(0.8)
        extra = None
    """)
    assert data.total_weight() >= 1000  # 0.8 s at 5 kHz is ~4000; weights, not records
    return data


def test_reentry_from_c_never_shows_garbage_frames(reentry_data: ProfileData) -> None:
    """Every resolved frame is real code of the workload (or the harness)."""
    data = reentry_data
    target = H.target_path("reentry.py")
    names = collections.Counter()
    for frames, weight in data.iter_stacks():
        for f in frames:
            assert f.name != "<unknown>", f"a garbage code pointer was resolved: {frames}"
            if same_file(f.filename, target):
                names[f.name] += weight
    assert set(names) <= {"run", "ident", "add", "<module>"}, names
    # Samples taken while ident is still being entered (its frame not started
    # yet, which CPython itself calls incomplete) go to the caller, so ident's
    # share is lower than its wall time; it must still be clearly present.
    if not os.environ.get("RINGPROF_SANITIZED"):  # ASan skews where time goes
        assert names["ident"] > 0.02 * data.total_weight()


def test_reentry_from_c_walks_are_consistent(reentry_data: ProfileData) -> None:
    """CPython 3.11/3.12 publish tstate->cframe before initialising its
    current_frame on entry to the eval loop; a sample in that window used to
    walk stale C-stack memory (1-2% of these samples ended as <bad frame>)."""
    data = reentry_data
    bad = int(((data.flags & FLAG_BAD_FRAME) != 0).sum())
    print(f"\nre-entry: {bad} of {len(data)} samples flagged BAD_FRAME")
    assert bad <= 0.001 * len(data), f"{bad} of {len(data)} samples walked an implausible frame"
