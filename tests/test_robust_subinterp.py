"""Never crash the host: sub-interpreters while sampling.

Objects belong to their interpreter and the drain resolves code objects in the
main one, so frames of another interpreter must never be walked (INTERNALS
§6.4).  A thread of the main interpreter that enters a sub-interpreter shows,
in its samples, its own main-interpreter frames (the ``run_string`` caller),
the synthetic ``<subinterpreter>`` frame (while the sub-interpreter's thread
state is bound), or nothing -- never the sub-interpreter's code.
``import ringprof`` works inside a sub-interpreter (it is pure Python until
used), but recording there fails with ImportError: the sampler belongs to the
main interpreter.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
from robust_helpers import run_child

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sampler is Linux-only"),
    pytest.mark.skipif(sys.version_info < (3, 12), reason="sub-interpreter tests target 3.12+ (per-interpreter GIL)"),
    pytest.mark.skipif(importlib.util.find_spec("_interpreters") is None
                       and importlib.util.find_spec("_xxsubinterpreters") is None,
                       reason="no _interpreters/_xxsubinterpreters module in this build"),
]

SUBINTERP_API = '''
try:
    import _interpreters as _X
    def sub_create(legacy=False):
        return _X.create("legacy" if legacy else "isolated")
    def sub_run(i, src):
        err = _X.run_string(i, src)
        return None if err is None else getattr(err, "formatted", repr(err))
except ImportError:
    import _xxsubinterpreters as _X
    def sub_create(legacy=False):
        return _X.create(isolated=not legacy)
    def sub_run(i, src):
        try:
            _X.run_string(i, src)
        except Exception as exc:
            return repr(exc)
        return None
sub_destroy = _X.destroy
'''

SUB_CODE = '''
import time
def sub_only_burner(n):
    x = 0
    for i in range(n):
        x += i * i
    return x
def sub_only_outer():
    end = time.monotonic() + 0.01
    while time.monotonic() < end:
        sub_only_burner(2000)
sub_only_outer()
'''


@pytest.mark.parametrize("legacy", [False, True])
def test_subinterpreter_code_is_never_walked(legacy: bool) -> None:
    child = run_child(SUBINTERP_API + f'''
SUB_CODE = {SUB_CODE!r}
prof = ringprof.Profile(interval=0.0001, mode="wall")
prof.enable()
errors = []
runner_tid = []
def enter_subinterpreters():
    runner_tid.append(threading.get_native_id())
    for k in range(4):
        i = sub_create(legacy={legacy})
        try:
            for _ in range(25):
                err = sub_run(i, SUB_CODE)
                if err:
                    errors.append(err)
        finally:
            sub_destroy(i)
threads = [threading.Thread(target=enter_subinterpreters) for _ in range(2)]
for t in threads: t.start()
spin(0.2)
for t in threads: t.join()
# from the main thread too
i = sub_create(legacy={legacy})
def main_thread_caller():
    for _ in range(20):
        err = sub_run(i, SUB_CODE)
        if err:
            errors.append(err)
main_thread_caller()
imp = sub_run(i, "import ringprof; ringprof.Profile(interval=0.01).enable()")
sub_destroy(i)
prof.disable()
d = prof.data
names = {{f.name for f in d.frames}}
leaves = set()
for sid, tid in zip(d.stack.tolist(), d.thread.tolist()):
    if tid in runner_tid:
        frames = d.stacks[sid]
        leaves.add(d.frames[frames[-1]].name if frames else "")
result(errors=errors[:3], leaked=sorted(n for n in names if n.startswith("sub_only")), leaves=sorted(leaves),
       runner_samples=int(sum(t in runner_tid for t in d.thread.tolist())), samples=len(d),
       imp=(imp or "")[:300], other_interp=int(((d.flags & 0x10) != 0).sum()))
    ''', timeout=120)
    r = child.result
    assert r["errors"] == [], child.describe()
    assert r["leaked"] == [], f"sub-interpreter frames were walked\n{child.describe()}"
    assert r["runner_samples"] > 0, child.describe()
    # sampled while inside: shown as <subinterpreter> or at the main-interpreter call site
    assert {"<subinterpreter>", "sub_run"} & set(r["leaves"]), child.describe()
    assert "ImportError" in r["imp"], child.describe()


def test_threads_started_inside_a_subinterpreter() -> None:
    """Threads that belong to a sub-interpreter are not in the main interpreter's
    thread list: never armed, never walked, with per-thread and itimer timers."""
    code = '''
import threading, time
def sub_only_thread_body():
    end = time.monotonic() + 0.3
    x = 0
    while time.monotonic() < end:
        x += 1
ts = [threading.Thread(target=sub_only_thread_body) for _ in range(2)]
for t in ts: t.start()
for t in ts: t.join()
'''
    child = run_child(SUBINTERP_API + f'''
CODE = {code!r}
out = {{}}
for kind, mode, interval in (("thread", "wall", 0.0001), ("itimer", "cpu", 0.004)):
    prof = ringprof.Profile(interval=interval, mode=mode, timer_kind=kind)
    prof.enable()
    i = sub_create(legacy=False)
    err = sub_run(i, CODE)
    sub_destroy(i)
    burn(0.05)
    prof.disable()
    out[kind] = dict(err=err, leaked=sorted(f.name for f in prof.data.frames if f.name.startswith("sub_only")),
                     unattributed=prof.data.meta["stats"]["unattributed"])
result(**out)
    ''', timeout=120)
    for kind in ("thread", "itimer"):
        r = child.result[kind]
        assert r["err"] is None and r["leaked"] == [], child.describe()
