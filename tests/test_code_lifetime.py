"""Code-object lifetime: a sample names the code object that was running,
even when that code object died before the drain and its address was reused.

Each churned function runs alone inside a known monotonic time window, so the
function a sample must resolve to is known from its timestamp alone.  The
handler stamps samples with CLOCK_MONOTONIC, the clock of time.monotonic_ns().
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def test_dead_code_with_reused_address_resolves_to_the_right_function() -> None:
    # In a subprocess: a bug here could touch freed memory.
    code = textwrap.dedent(
        """
        import gc, time, json
        import ringprof

        windows, addresses = [], []
        with ringprof.Profile(interval=0.0005, mode="wall", drain_interval=0.005) as p:
            for i in range(400):
                src = f"def f_{i}(n):\\n    s = 0\\n    for k in range(n):\\n        s += k\\n    return s\\n"
                ns = {}
                exec(compile(src, f"<churn{i}>", "exec"), ns)
                fn = ns[f"f_{i}"]
                addresses.append(id(fn.__code__))
                t0 = time.monotonic_ns()
                fn(8000)
                t1 = time.monotonic_ns()
                windows.append((t0, t1, i))
                del fn, ns
                gc.collect()
        data = p.data
        checked = mismatched = 0
        for sid, t in zip(data.stack, data.time_ns):
            leaf = data.frames[data.stacks[sid][-1]]
            if not leaf.filename.startswith("<churn"):
                continue
            for t0, t1, i in windows:
                if t0 <= t < t1:
                    checked += 1
                    if leaf.name != f"f_{i}" or leaf.filename != f"<churn{i}>":
                        mismatched += 1
                    break
        print(json.dumps({"checked": checked, "mismatched": mismatched,
                          "distinct_addresses": len(set(addresses)), "functions": len(addresses),
                          "unknown": sum(f.name == "<unknown>" for f in data.frames)}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    import json

    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # The scenario must really reuse addresses, or the test proves nothing --
    # except under ASan (tools/sanitize.sh), whose quarantine never reuses
    # freed memory; there ASan itself catches any use of a freed code object.
    if not os.environ.get("RINGPROF_SANITIZED"):
        assert result["distinct_addresses"] < result["functions"], result
    assert result["checked"] >= 100, result
    assert result["mismatched"] == 0, result
    assert result["unknown"] == 0, result


def test_code_deaths_are_released_after_sampling() -> None:
    """Deferred deaths do not leak: after disable() nothing stays parked."""
    code = textwrap.dedent(
        """
        import ringprof
        from ringprof import _sampler
        with ringprof.Profile(interval=0.001, mode="wall"):
            for i in range(2000):
                exec(compile(f"def g_{i}(): return {i}", "<g>", "exec"), {})
        print(_sampler.stats()["parked_codes"])
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"


@pytest.mark.skipif(bool(os.environ.get("RINGPROF_SANITIZED")),
                    reason="ASan's quarantine keeps freed memory out of reuse, so CPython cannot be made to put "
                           "a new code object at a dead one's address (the plain runs on every version test it)")
def test_an_address_reused_between_sessions_names_the_new_code() -> None:
    """Deaths are recorded only while sampling: a code object that dies between
    two sessions leaves no record, and the next one at its address must not be
    named after it (the resolver forgets what it knew by address at each start)."""
    from robust_helpers import run_child

    r = run_child('''
        import gc
        body = "def work():\\n    t = 0\\n    for i in range(%d):\\n        t += i\\n    return t\\n"
        def run(filename, seconds):
            ns = {}
            exec(compile(body % 10**7, filename, "exec"), ns)
            prof = ringprof.Profile(interval=0.001, mode="cpu")
            prof.enable()
            end = time.thread_time() + seconds
            while time.thread_time() < end:
                ns["work"]()
            prof.disable()
            files = {f.filename for f in prof.data.frames}
            return ns, files
        ns, first = run("<first>", 0.2)
        addr = id(ns["work"].__code__)
        del ns
        gc.collect()
        # Compile copies until one lands at the dead code object's address.
        keep, reused = [], False
        for attempt in range(20000):
            code = compile(body % 10**7, "<second>", "exec")
            fn_code = [c for c in code.co_consts if hasattr(c, "co_code")][0]
            if id(fn_code) == addr:
                reused = True
                break
            keep.append(code)
        ns2 = {}
        exec(code, ns2)
        prof = ringprof.Profile(interval=0.001, mode="cpu")
        prof.enable()
        end = time.thread_time() + 0.2
        while time.thread_time() < end:
            ns2["work"]()
        prof.disable()
        second = {f.filename for f in prof.data.frames}
        result(first=sorted(first), second=sorted(second), reused=reused, same=id(ns2["work"].__code__) == addr)
    ''').result
    assert "<first>" in r["first"], r
    assert r["reused"] and r["same"], f"could not make CPython reuse the address: {r}"
    assert "<second>" in r["second"] and "<first>" not in r["second"], r
