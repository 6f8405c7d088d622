"""Target: code objects created and dropped continuously while sampling.

Each round compiles a fresh function ``f_<tag>_<i>`` (its own filename
``<churn-<tag>_<i>>``), calls it for a little CPU, records the monotonic window
it ran in, then drops every reference so the code object dies."""

import gc
import time

SOURCE = """
def f_{tag}_{i}(n):
    acc = 0
    for k in range(n):
        acc += k * {i} % 7
    return acc
"""


def run(seconds, tag=0, calls=3, n=3000, at_least=0, cap=60.0):
    """Churn for ``seconds`` of this thread's CPU time, and on until at least
    ``at_least`` functions were made (a slow build -- ASan -- makes fewer per
    CPU second), but no longer than ``cap`` seconds of wall time.

    Returns {function name: (start_ns, end_ns)} on the monotonic clock."""
    windows = {}
    deadline = time.thread_time() + seconds
    wall_cap = time.monotonic() + cap
    i = 0
    while time.thread_time() < deadline or (i < at_least and time.monotonic() < wall_cap):
        start = time.monotonic_ns()  # before the exec: its <module> frame counts too
        ns = {}
        code = compile(SOURCE.format(tag=tag, i=i), f"<churn-{tag}_{i}>", "exec")
        exec(code, ns)
        fn = ns[f"f_{tag}_{i}"]
        for _ in range(calls):
            fn(n)
        windows[f"f_{tag}_{i}"] = (start, time.monotonic_ns())
        del fn, ns, code
        if i % 50 == 0:
            gc.collect()
        i += 1
    return windows
