"""The drain's native resolution caches (csrc/stackcache.h, ringprof._sampler.StackCache):
raw frame -> frame id, (flags, frame ids) -> stack id, and the GIL-free split
of a drained buffer into columns."""

from __future__ import annotations

import random
from collections.abc import Iterator
from textwrap import dedent

import pytest
from robust_helpers import run_child
from test_code_registry import SAME_ADDRESS

from ringprof import _native
from ringprof.model import FLAG_BAD_FRAME, FLAG_HOLDS_GIL, FLAG_TRUNCATED

native = _native.load()
StackCache = native.StackCache
RingHarness = native.RingHarness
MAX_DEPTH = native.MAX_DEPTH_LIMIT


@pytest.fixture
def colliding() -> Iterator[None]:
    native._test_stack_hash_constant(True)
    try:
        yield
    finally:
        native._test_stack_hash_constant(False)


def test_frames_learn_lookup_replace_and_grow() -> None:
    cache = StackCache()
    assert cache.lookup_frame(0x1000, 0x1010) is None  # empty map
    rng = random.Random(5)
    entries = {(rng.randrange(1 << 48) & ~7, rng.randrange(1 << 48)): rng.randrange(-1, 1 << 30) for _ in range(50_000)}
    for (code, instr), fid in entries.items():
        cache.learn_frame(code, instr, fid)
    assert cache.frames == len(entries)
    assert all(cache.lookup_frame(code, instr) == fid for (code, instr), fid in entries.items())
    code, instr = next(iter(entries))
    cache.learn_frame(code, instr, 7)  # replaces, does not add
    assert cache.lookup_frame(code, instr) == 7 and cache.frames == len(entries)
    assert cache.lookup_frame(code, instr ^ 1) is None
    with pytest.raises(ValueError):
        cache.learn_frame(1, 2, -2)


def test_forget_codes_drops_every_frame_of_those_codes_only() -> None:
    cache = StackCache()
    for code in range(1, 201):
        for instr in range(30):
            cache.learn_frame(code * 4096, code * 4096 + 2 * instr, code)
    gone = list(range(4096, 201 * 4096, 3 * 4096))  # every third code died
    assert cache.forget_codes(gone + gone[:5]) == len(gone) * 30  # duplicates are harmless
    assert cache.frames == (200 - len(gone)) * 30
    for code in range(1, 201):
        found = cache.lookup_frame(code * 4096, code * 4096 + 58)
        assert found == (None if code * 4096 in gone else code)
    assert cache.forget_codes([]) == 0
    cache.learn_frame(4096, 4096, 3)  # a new code object at a forgotten address is learnt afresh
    assert cache.lookup_frame(4096, 4096) == 3


@pytest.mark.parametrize("hashing", ["normal", "colliding"])
def test_stacks_learn_lookup_with_collisions_and_growth(hashing: str, request: pytest.FixtureRequest) -> None:
    if hashing == "colliding":
        request.getfixturevalue("colliding")
    cache = StackCache()
    rng = random.Random(11)
    n = 3000 if hashing == "normal" else 600  # every lookup walks one chain when all hashes collide
    stacks: dict[tuple[int, tuple[int, ...]], int] = {}
    while len(stacks) < n:
        fids = tuple(rng.randrange(50) for _ in range(rng.randrange(0, 12)))
        stacks.setdefault((rng.choice([0, FLAG_TRUNCATED, FLAG_BAD_FRAME]), fids), len(stacks))
    for (flags, fids), sid in stacks.items():
        cache.learn_stack(flags, fids, sid)
    assert cache.stacks == n
    assert all(cache.lookup_stack(flags, fids) == sid for (flags, fids), sid in stacks.items())
    # Keys that differ only in length, flags or one id are different stacks.
    assert cache.lookup_stack(0, (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)) is None
    flags, fids = next(k for k in stacks if k[1])
    assert cache.lookup_stack(flags, (*fids[:-1], fids[-1] + 100)) is None
    # HOLDS_GIL does not change how a stack reads: it is not part of the key.
    assert cache.lookup_stack(flags | FLAG_HOLDS_GIL, fids) == stacks[(flags, fids)]


def test_stacks_of_max_depth() -> None:
    cache = StackCache()
    deep = list(range(MAX_DEPTH))
    cache.learn_stack(FLAG_TRUNCATED, deep, 1)
    cache.learn_stack(FLAG_TRUNCATED, [*deep[:-1], MAX_DEPTH + 1], 2)
    cache.learn_stack(0, deep, 3)
    assert [cache.lookup_stack(FLAG_TRUNCATED, deep), cache.lookup_stack(0, deep),
            cache.lookup_stack(FLAG_TRUNCATED, [*deep[:-1], MAX_DEPTH + 1])] == [1, 3, 2]
    assert cache.lookup_stack(FLAG_TRUNCATED, deep[:-1]) is None
    cache.clear()
    assert (cache.frames, cache.stacks, cache.lookup_stack(0, deep)) == (0, 0, None)


def drained(records: list[tuple[int, list[tuple[int, int]], int]]) -> bytes:
    ring = RingHarness(1 << 22)
    for tid, frames, t in records:
        assert ring.push(tid, frames, t)
    return bytes(ring.drain_bytes())


def test_resolve_splits_columns_and_resolves_known_stacks_only() -> None:
    a, b, c = (0x10000, 0x10010), (0x20000, 0x20020), (0x30000, 0x30004)
    deep = [(0x40000 + 64 * i, 0x40000 + 64 * i + 2) for i in range(MAX_DEPTH)]
    buf = drained([(11, [a, b], 100), (12, [a, c], 200), (13, [c, b], 300), (14, [], 400), (15, deep, 500),
                   (16, [a, b], 600)])
    cache = StackCache()
    stack, tid, tns, weight, cpu, flags, label, depth, offset, unresolved = cache.resolve(buf)
    assert list(stack) == [-1] * 6 and unresolved == 6  # nothing learnt yet
    assert list(tid) == [11, 12, 13, 14, 15, 16] and list(tns) == [100, 200, 300, 400, 500, 600]
    assert list(weight) == [1] * 6 and list(cpu) == [0] * 6 and list(label) == [0] * 6 and list(flags) == [0] * 6
    assert list(depth) == [2, 2, 2, 0, MAX_DEPTH, 2]
    # raw_key is the flags byte and the raw frames, leaf first.
    key = native.raw_key(buf, offset[0])
    assert key[0] == 0 and len(key) == 1 + 2 * 16
    assert native.raw_key(buf, offset[4])[1:] == b"".join(p.to_bytes(8, "little") + i.to_bytes(8, "little")
                                                           for p, i in deep)
    with pytest.raises(IndexError):
        native.raw_key(buf, len(buf))

    cache.learn_frame(*a, 0)
    cache.learn_frame(*b, 1)
    cache.learn_frame(*c, -1)  # an incomplete frame: skipped
    cache.learn_stack(0, [0, 1], 70)
    cache.learn_stack(0, [0], 71)  # a, c: c is skipped
    cache.learn_stack(0, [], 72)
    for i, (code, instr) in enumerate(deep):
        cache.learn_frame(code, instr, 100 + i)
    cache.learn_stack(0, [100 + i for i in range(MAX_DEPTH)], 73)
    stack, *_, unresolved = cache.resolve(buf)
    assert list(stack) == [70, 71, -1, 72, 73, 70] and unresolved == 1  # (c, b) -> [1] was never learnt
    # A code pointer in the dead set sends its samples to Python, whatever the cache knows.
    stack, *_, unresolved = cache.resolve(buf, dead=[b[0], 0x99])
    assert list(stack) == [-1, 71, -1, 72, 73, -1] and unresolved == 3
    cache.forget_codes([a[0]])
    assert list(cache.resolve(buf)[0]) == [-1, -1, -1, 72, 73, -1]


def test_resolve_empty_and_truncated_buffers() -> None:
    cache = StackCache()
    out = cache.resolve(b"")
    assert [len(col) for col in out[:9]] == [0] * 9 and out[9] == 0
    buf = drained([(1, [(0x1000, 0x1002)], 5), (2, [(0x1000, 0x1002)], 6)])
    assert len(cache.resolve(buf[:-8])[0]) == 1  # a torn last record is not read


def test_resolver_learns_and_forgets_a_code_object_that_died() -> None:
    """The native cache must not name a dead code object for a sample taken
    after a new one took its address (cached, then died, then reused)."""
    child = run_child(SAME_ADDRESS + dedent('''
        import time
        _sampler.register_codes([])
        native.set_codes_active(True)   # as while sampling
        keep = []
        victim = template.__code__.replace(co_name="victim", co_qualname="victim")
        fv = types.FunctionType(victim, {})
        _sampler.register_codes([victim])
        addr, instr_of = id(victim), last_instr(victim) - id(victim)
        res = Resolver()

        def ingest(t):
            ring = _sampler.RingHarness(1 << 16)
            ring.push(1, [(addr, addr + instr_of)], t)
            buf = ring.drain_bytes()
            mark = native.codes_mark()
            batch = res.ingest(buf)
            native.release_codes(mark)
            # What the native cache alone resolves now (1: the sample goes to Python).
            return batch.table.stacks[batch.stack[0]][-1].name, res._cache.resolve(buf)[-1]

        first = ingest(time.monotonic_ns())
        second = ingest(time.monotonic_ns())   # now from the native cache
        del fv, victim                         # dies while deferral is on
        gc.collect()
        newcomer = code_at(addr, "newcomer", keep)
        fn = types.FunctionType(newcomer, {}) if newcomer is not None else None
        third = ingest(time.monotonic_ns())
        fourth = ingest(time.monotonic_ns())
        native.set_codes_active(False)
        native.release_codes(native.codes_mark())
        result(reused=newcomer is not None, names=[first, second, third, fourth],
               sanitized=bool(os.environ.get("RINGPROF_SANITIZED")))
    '''))
    r = child.result
    names = r["names"]
    assert names[:2] == [["victim", 0], ["victim", 0]], child.describe()  # learnt at once
    if r["sanitized"] and not r["reused"]:
        return  # ASan's quarantine never reuses an address
    assert r["reused"], f"the scenario needs address reuse\n{child.describe()}"
    # The death made the cache forget the address; then it learns the newcomer.
    assert names[2:] == [["newcomer", 1], ["newcomer", 0]], child.describe()


# --------------------------------------------------------------------------- line map
def _code_objects(*modules: object) -> list[object]:
    """Every code object of the modules' functions and classes, nested ones included."""
    import inspect
    import types

    found: list[types.CodeType] = []
    todo = [obj.__code__ for m in modules for _, obj in inspect.getmembers(m)
            if isinstance(obj, types.FunctionType)]
    todo += [f.__code__ for m in modules for _, cls in inspect.getmembers(m, inspect.isclass)
             for f in vars(cls).values() if isinstance(f, types.FunctionType)]
    while todo:
        code = todo.pop()
        found.append(code)
        todo += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return found


def test_line_map_finds_the_line_of_every_instruction_as_cpython_does() -> None:
    """The line map reads the location table in C; it must agree with
    PyCode_Addr2Line (what the Python resolver uses) on every instruction, and
    leave prologue and out-of-range instructions to the resolver."""
    import json.decoder
    import threading

    from ringprof import model, resolve

    codes = _code_objects(json.decoder, threading, model, resolve)
    assert len(codes) > 300
    cache = StackCache()
    checked = 0
    for code in codes:
        ptr = id(code)
        cache.learn_code(ptr, code)
        units = len(code.co_code) // 2  # type: ignore[attr-defined]
        for lasti in range(units):
            instr = native.code_instr_address(code, lasti)
            expected = native.code_line(code, instr)
            got = cache.code_line(ptr, instr)
            assert got == (None if expected < 0 else expected), (code, lasti, expected, got)
            checked += 1
        assert cache.code_line(ptr, native.code_instr_address(code, units)) is None  # past the end
        assert cache.code_line(ptr, native.code_instr_address(code, units - 1) + 1) is None  # misaligned
    assert cache.codes == len({id(c) for c in codes}) and checked > 10_000
    cache.forget_codes([id(codes[0])])
    assert cache.code_line(id(codes[0]), native.code_instr_address(codes[0], 1)) is None
    cache.clear()
    assert cache.codes == 0


def _same_line_pair() -> tuple[object, int, int, int]:
    """A code object, and two instructions of one line of it plus one of another line."""
    def sample(a: int, b: int) -> int:
        c = a * b + a - b
        return c // 3

    code = sample.__code__
    by_line: dict[int, list[int]] = {}
    for lasti in range(len(code.co_code) // 2):
        instr = native.code_instr_address(code, lasti)
        line = native.code_line(code, instr)
        if line > 0:
            by_line.setdefault(line, []).append(instr)
    first = max(by_line, key=lambda line: len(by_line[line]))  # c = a * b + a - b
    second = next(line for line in by_line if line != first)
    assert len(by_line[first]) >= 2
    return code, by_line[first][0], by_line[first][1], by_line[second][0]


def test_a_new_instruction_of_a_known_code_object_resolves_in_c() -> None:
    code, one, same_line, other_line = _same_line_pair()
    ptr = id(code)
    buf = drained([(1, [(ptr, one)], 10), (2, [(ptr, same_line)], 20), (3, [(ptr, other_line)], 30)])
    cache = StackCache()
    cache.learn_frame(ptr, one, 5)
    cache.learn_stack(0, [5], 50)
    stack, *_, unresolved = cache.resolve(buf)
    assert list(stack) == [50, -1, -1] and unresolved == 2  # the raw frame map alone
    cache.learn_code(ptr, code)
    cache.learn_line(ptr, native.code_line(code, one), 5)
    stack, *_, unresolved = cache.resolve(buf)
    assert list(stack) == [50, 50, -1] and unresolved == 1  # same line: frame 5; the other line is unknown
    assert cache.lookup_frame(ptr, same_line) == 5  # entered into the raw frame map
    assert list(cache.resolve(buf, dead=[ptr])[0]) == [-1, -1, -1]
    cache.forget_codes([ptr])
    assert list(cache.resolve(buf)[0]) == [-1, -1, -1] and cache.code_line(ptr, same_line) is None
    cache.learn_code(ptr, code)  # learnt again (a new object at the address): a new entry
    assert cache.codes == 2 and cache.code_line(ptr, same_line) == native.code_line(code, same_line)
    cache.clear()
    assert cache.codes == 0


def test_line_map_entries_of_forgotten_codes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Code churn (a code object dies, another is learnt at its address) adds entries
    without growing the tables: the resolver clears the cache on the entry count."""
    from ringprof import resolve

    code = _same_line_pair()[0]
    res = resolve.Resolver()
    res._cache = cache = StackCache()
    monkeypatch.setattr(resolve, "_CODE_CACHE_LIMIT", 3)
    for _ in range(4):
        cache.learn_code(id(code), code)
        cache.forget_codes([id(code)])
    assert cache.codes == 4
    res._evict()
    assert cache.codes == 0
