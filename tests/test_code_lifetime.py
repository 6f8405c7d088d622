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
