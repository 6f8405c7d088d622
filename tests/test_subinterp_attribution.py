"""Issue 11.9: time a thread spends inside a sub-interpreter is attributed to
``<subinterpreter>``, never to the main-interpreter line that called it.

On 3.11 the thread's GIL-state thread state stays the main interpreter's
while ``run_string`` runs another interpreter on the same thread; the walk
must notice.  The sub-interpreter burns CPU in a pure-Python loop, so the
share of the thread's samples inside ``run_string`` is the measured quantity.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
from robust_helpers import run_child

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only"),
    pytest.mark.skipif(importlib.util.find_spec("_interpreters") is None
                       and importlib.util.find_spec("_xxsubinterpreters") is None,
                       reason="no _interpreters/_xxsubinterpreters module in this build"),
]


def test_time_inside_run_string_is_subinterpreter_time() -> None:
    child = run_child('''
        try:
            import _interpreters as X
            interp = X.create("legacy")
        except ImportError:
            import _xxsubinterpreters as X
            interp = X.create()
        SRC = ("import time\\n"
               "end = time.thread_time() + 0.8\\n"
               "x = 0\\n"
               "while time.thread_time() < end:\\n"
               "    for _ in range(200):\\n"
               "        x += 1\\n")
        def caller_line():
            X.run_string(interp, SRC)
        with ringprof.Profile(interval=0.004) as p:
            caller_line()
        X.destroy(interp)
        d = p.data
        leaves = [d.frames[d.stacks[s][-1]].name for s in d.stack]
        result(samples=len(leaves), sub=leaves.count("<subinterpreter>"), caller=leaves.count("caller_line"))
    ''', timeout=120)
    r = child.result
    assert r["samples"] >= 40, child.describe()
    assert r["sub"] >= 0.8 * r["samples"], child.describe()
    assert r["caller"] <= 0.1 * r["samples"], child.describe()
