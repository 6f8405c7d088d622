"""Code-object lifetime, part two: which addresses may become references, what
a dead address named, and that deferral never outlives the sampler.

Every scenario runs in a child process: the failures these tests catch are
reads of freed memory and leaks of the host's code objects.
"""

from __future__ import annotations

import sys
from textwrap import dedent
from typing import Any

import pytest
from robust_helpers import run_child

# A template code object and a way to get a new one at a given address: a
# freed pymalloc block is handed out again first (LIFO), so replace() -- one
# code object of the same size -- usually lands on the address just freed.
SAME_ADDRESS = '''
import gc, types
from ringprof import _sampler
from ringprof.model import ProfileData
from ringprof.resolve import Resolver

def template():
    return 1

def code_at(addr, name, keep):
    """A new code object named `name` at address addr (or None)."""
    for _ in range(200):
        co = template.__code__.replace(co_name=name, co_qualname=name)
        if id(co) == addr:
            return co
        keep.append(co)  # not this one: keep it so the next try gets another block
    return None

def last_instr(co):
    return _sampler.code_instr_address(co, len(co.co_code) // 2 - 1)

def resolve(records):
    """records: [(time_ns, [(code_ptr, instr), ...])] -> leaf frame name per record."""
    ring = _sampler.RingHarness(1 << 16)
    for t, frames in records:
        assert ring.push(1, frames, t)
    batch = Resolver().ingest(ring.drain_bytes())
    assert batch is not None
    return [batch.table.stacks[s][-1].name for s in batch.stack]
'''


def test_refused_enable_does_not_defer_code_deaths() -> None:
    """Issue 11.1: a start that fails after deferral was switched on must switch it off."""
    child = run_child('''
        import signal
        signal.signal(signal.SIGPROF, signal.SIG_IGN)
        signal.setitimer(signal.ITIMER_PROF, 10, 10)     # ITIMER_PROF busy: the itimer start is refused
        refused = []
        try:
            ringprof.Profile(timer_kind="itimer").enable()
        except RuntimeError as exc:
            refused.append(str(exc))
        try:
            native.start("cpu", "thread", 0.01, 0, 1 << 20)  # invalid configuration: refused natively
        except native.SamplerError as exc:
            refused.append(str(exc))
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        for i in range(20000):
            exec(compile(f"def g_{i}(): return {i}", "<g>", "exec"), {})
        result(refused=refused, parked=native.stats()["parked_codes"])
    ''')
    r = child.result
    assert len(r["refused"]) == 2, child.describe()
    assert r["parked"] == 0, child.describe()


def test_c_level_fork_child_stops_deferring() -> None:
    """Issue 11.1: fork() from C skips PyOS_AfterFork_Child; the child must not keep every dead code object."""
    child = run_child('''
        import ctypes
        libc_fork = ctypes.PyDLL(None).fork          # PyDLL: the GIL stays held across the call
        libc_fork.restype = ctypes.c_int
        r, w = os.pipe()
        p = ringprof.Profile(interval=0.001)
        p.enable()
        pid = libc_fork()
        if pid == 0:
            os.close(r)
            before = native.stats()["parked_codes"]
            for i in range(20000):
                exec(compile(f"def g_{i}(): return {i}", "<g>", "exec"), {})
            os.write(w, json.dumps([before, native.stats()["parked_codes"]]).encode())
            os._exit(0)
        os.close(w)
        got = b""
        while chunk := os.read(r, 4096):
            got += chunk
        os.waitpid(pid, 0)
        p.disable()
        before, after = json.loads(got)
        result(before=before, after=after)
    ''')
    r = child.result
    assert r["after"] - r["before"] < 100, child.describe()


def test_code_object_never_revives_a_freed_code_object() -> None:
    """Issue 11.3: pymalloc keeps ob_type in a freed block; a type check passes, the registry does not."""
    child = run_child(SAME_ADDRESS + dedent('''
        _sampler.register_codes([template.__code__])     # installs the hooks, as start() does
        live_ok = _sampler.code_object(id(template.__code__)) is template.__code__
        addrs = []
        for i in range(1000):
            ns = {}
            exec(f"def victim_{i}():\\n    return {i}\\n", ns)
            addrs.append(id(ns[f"victim_{i}"].__code__))
            del ns
        gc.collect()                    # the function <-> globals cycles: every victim is freed now
        revived = [a for a in addrs if _sampler.code_object(a) is not None]
        result(revived=len(revived), live_ok=live_ok)
    '''))
    r = child.result
    assert r["live_ok"], child.describe()
    assert r["revived"] == 0, child.describe()


def test_unknown_address_is_not_cached() -> None:
    """Issue 11.3: an address that named no code object may name a valid one at the next drain."""
    child = run_child(SAME_ADDRESS + dedent('''
        _sampler.register_codes([])
        keep = []
        size = type(template.__code__).__basicsize__ + len(template.__code__.co_code)
        blob = bytes(size - 33)          # not a code object, in the code object's size class
        addr = id(blob)
        instr = _sampler.code_instr_address(blob, 0)
        ring = _sampler.RingHarness(1 << 16)
        res = Resolver()
        ring.push(1, [(addr, instr)])
        batch = res.ingest(ring.drain_bytes())
        first = batch.table.stacks[batch.stack[-1]][-1].name
        del blob
        newcomer = code_at(addr, "newcomer", keep)
        fn = types.FunctionType(newcomer, {}) if newcomer is not None else None  # reachable, as live code is
        if newcomer is not None:
            instr = last_instr(newcomer)
        ring.push(1, [(addr, instr)])
        batch = res.ingest(ring.drain_bytes())
        second = batch.table.stacks[batch.stack[-1]][-1].name
        result(reused=newcomer is not None, first=first, second=second,
               sanitized=bool(os.environ.get("RINGPROF_SANITIZED")))
    '''))
    r = child.result
    assert r["first"] == "<unknown>", child.describe()
    if r["sanitized"] and not r["reused"]:
        return  # ASan's quarantine never reuses an address; the first half still ran
    assert r["reused"], f"the scenario needs address reuse\n{child.describe()}"
    assert r["second"] == "newcomer", child.describe()


def test_dead_address_resolves_by_sample_time() -> None:
    """A sample taken before a death names the dead code; one taken after names the code now at that address."""
    child = run_child(SAME_ADDRESS + dedent('''
        import time
        _sampler.register_codes([])
        native.set_codes_active(True)   # as while sampling
        keep = []
        victim = template.__code__.replace(co_name="victim", co_qualname="victim")
        addr, instr_of = id(victim), last_instr(victim) - id(victim)
        t_alive = time.monotonic_ns()
        del victim                      # dies while deferral is on: a snapshot is taken
        newcomer = code_at(addr, "newcomer", keep)
        fn = types.FunctionType(newcomer, {}) if newcomer is not None else None  # reachable, as live code is
        t_after = time.monotonic_ns()
        names = resolve([(t_alive, [(addr, addr + instr_of)]), (t_after, [(addr, addr + instr_of)])])
        native.set_codes_active(False)
        native.release_codes(native.codes_mark())
        result(reused=newcomer is not None, names=names, parked=native.stats()["parked_codes"],
               sanitized=bool(os.environ.get("RINGPROF_SANITIZED")))
    '''))
    r = child.result
    if r["sanitized"] and not r["reused"]:
        assert r["names"][0] == "victim", child.describe()
        return  # ASan's quarantine never reuses an address
    assert r["reused"], f"the scenario needs address reuse\n{child.describe()}"
    assert r["names"] == ["victim", "newcomer"], child.describe()
    assert r["parked"] == 0, child.describe()


def test_resolver_keeps_no_code_object_alive() -> None:
    """Issue 11.7: after disable() the profile keeps names and lines, not code objects."""
    child = run_child('''
        import gc, weakref
        ns = {}
        exec(compile("def hot_fn():\\n    burn(0.3)\\n", "<hot>", "exec"), {"burn": burn} | ns, ns)
        p = ringprof.Profile(interval=0.002)
        with p:
            ns["hot_fn"]()
        ref = weakref.ref(ns["hot_fn"].__code__)
        del ns
        gc.collect()
        result(alive=ref() is not None, names=frame_names(p))
    ''')
    r = child.result
    assert "hot_fn" in r["names"], child.describe()
    assert not r["alive"], child.describe()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="code watchers exist from CPython 3.12")
def test_other_code_watchers_see_one_destroy_per_death() -> None:
    """Issue 11.10: deferring a death must not resurrect the code object (a second DESTROY)."""
    child = run_child('''
        import ctypes, gc
        counts = [0, 0]            # CREATE, DESTROY
        CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
        def on_event(event, co):
            if event <= 1:
                counts[event] += 1
            return 0
        cb = CB(on_event)
        wid = ctypes.pythonapi.PyCode_AddWatcher(cb)
        with ringprof.Profile(interval=0.0005, mode="wall"):
            for i in range(2000):
                exec(compile(f"def g_{i}(): return {i}", "<g>", "exec"), {})
            gc.collect()
        gc.collect()
        created, destroyed = counts
        ctypes.pythonapi.PyCode_ClearWatcher(wid)
        result(created=created, destroyed=destroyed)
    ''')
    r = child.result
    assert r["created"] >= 4000, child.describe()  # module + function per round
    assert r["destroyed"] <= r["created"] + 50, child.describe()


def test_linetable_parser_matches_co_lines() -> None:
    """The dead-code line lookup agrees with the interpreter on every instruction of the stdlib we load."""
    child = run_child('''
        import gc, types, email.message, json.decoder, asyncio
        checked = wrong = 0
        for obj in gc.get_objects():
            if type(obj) is not types.FunctionType:
                continue
            co = obj.__code__
            for start, end, line in co.co_lines():
                for off in range(start, end, 2):
                    checked += 1
                    got = native.linetable_line(co.co_linetable, co.co_firstlineno, off // 2)
                    wrong += got != (line if line is not None else -1)
        result(checked=checked, wrong=wrong)
    ''')
    r = child.result
    assert r["checked"] > 10000, child.describe()
    assert r["wrong"] == 0, child.describe()


EMBED_C = r"""
#include <Python.h>
#include <dlfcn.h>
#include <stdint.h>
/* argv: sampler .so, code run first in round 1, churn code run in each round.
 * The native layer is reached through dlsym: numpy (imported by
 * ringprof._sampler) and, on 3.12, ctypes cannot be loaded twice per process. */
int main(int argc, char **argv)
{
    if (argc != 4) return 2;
    void *so = NULL;
    for (int round = 1; round <= 2; round++) {
        Py_Initialize();
        if (round == 1 && PyRun_SimpleString(argv[2]) != 0) return 11;
        if (so == NULL && (so = dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD)) == NULL) return 12;
        int (*install)(void) = (int (*)(void))dlsym(so, "rp_codes_install");
        void (*set_active)(int) = (void (*)(int))dlsym(so, "rp_codes_set_active");
        uint64_t (*parked)(void) = (uint64_t (*)(void))dlsym(so, "rp_codes_parked");
        uint64_t (*mark)(void) = (uint64_t (*)(void))dlsym(so, "rp_codes_mark");
        void (*release)(uint64_t) = (void (*)(uint64_t))dlsym(so, "rp_codes_release");
        if (!install || !set_active || !parked || !mark || !release || install() != 0) return 13;
        set_active(1);
        uint64_t before = parked();
        if (PyRun_SimpleString(argv[3]) != 0) return 14;
        uint64_t after = parked();
        set_active(0);
        release(mark());
        printf("ROUND %d %llu %llu\n", round, (unsigned long long)(after - before), (unsigned long long)parked());
        fflush(stdout);
        if (Py_FinalizeEx() != 0) return 15;
    }
    return 0;
}
"""

CHURN = """
import gc
for i in range(1000):
    exec(f"def g_{i}(): return {i}", {})
gc.collect()
"""


def test_deferral_survives_finalize_and_initialize(tmp_path: Any) -> None:
    """Issue 11.10: hooks live in an interpreter; after Py_Finalize()/Py_Initialize() they are installed afresh."""
    import os
    import subprocess
    import sysconfig

    from ringprof import _sampler

    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        pytest.skip("needs a shared libpython to embed")
    src = tmp_path / "embed.c"
    src.write_text(EMBED_C)
    exe = tmp_path / "embed"
    libdir = sysconfig.get_config_var("LIBDIR")
    ver = sysconfig.get_config_var("LDVERSION") or f"{sys.version_info[0]}.{sys.version_info[1]}"
    subprocess.run(["cc", str(src), "-I", sysconfig.get_paths()["include"], "-L", libdir, f"-lpython{ver}",
                    f"-Wl,-rpath,{libdir}", "-Xlinker", "-export-dynamic", "-ldl", "-o", str(exe)], check=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([str(exe), _sampler.__file__, "import ringprof._sampler", CHURN], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rounds = {int(parts[1]): (int(parts[2]), int(parts[3]))
              for parts in (line.split() for line in proc.stdout.splitlines() if line.startswith("ROUND"))}
    assert set(rounds) == {1, 2}, proc.stdout + proc.stderr
    for deferred, left in rounds.values():
        assert deferred >= 2000, proc.stdout      # module + function per round, all snapshotted
        assert left == 0, proc.stdout
