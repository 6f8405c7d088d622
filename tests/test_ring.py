"""The SPSC byte ring (csrc/ring.h) through ringprof._sampler.RingHarness.

The harness pushes records exactly as the signal handler does (reserve,
fill, commit) and pops them as the drain does (copy_out, PADs skipped).
A small pure-Python model of the ring's space accounting predicts, for every
push, whether it must succeed, so ``dropped`` is checked exactly.
"""

from __future__ import annotations

import random
import sys
import threading
import time

import pytest

from ringprof import _sampler

RingHarness = _sampler.RingHarness
HDR = _sampler.RECORD_HEADER_BYTES
FRAME = 16


def rec_len(nframes: int) -> int:
    return HDR + nframes * FRAME


class RingModel:
    """What ring.h promises: free-running head/tail byte counters, records
    contiguous (a PAD fills the end of the buffer when one would straddle it),
    and a push that does not fit is dropped, never overwriting."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.head = 0
        self.tail = 0
        self.dropped = 0
        self.records: list[tuple[int, list[tuple[int, int]]]] = []

    def push(self, tid: int, frames: list[tuple[int, int]]) -> bool:
        length = rec_len(len(frames))
        off = self.head % self.cap
        pad = self.cap - off if off + length > self.cap else 0
        if length > self.cap or self.cap - (self.head - self.tail) < pad + length:
            self.dropped += 1
            return False
        self.head += pad + length
        self.records.append((tid, frames))
        return True

    def pop_all(self) -> list[tuple[int, list[tuple[int, int]]]]:
        out, self.records = self.records, []
        self.tail = self.head
        return out


def make_frames(seq: int, n: int) -> list[tuple[int, int]]:
    # Every field derived from seq: a torn or shifted record cannot match.
    return [((seq << 8) | j, (seq * 2654435761 + j) & 0xFFFF_FFFF_FFFF_FFFF) for j in range(n)]


def check_record(tid: int, frames: list[tuple[int, int]]) -> None:
    assert frames == make_frames(tid, len(frames)), f"record {tid} is torn or corrupt"


def test_header_size_is_8_aligned() -> None:
    assert HDR % 8 == 0
    assert HDR >= 56


def test_push_pop_roundtrip() -> None:
    ring = RingHarness(1 << 16)
    assert ring.capacity == 1 << 16
    assert ring.pop_all() == []
    pushed = []
    for seq in range(50):
        frames = make_frames(seq, seq % 7)
        assert ring.push(seq, frames) is True
        pushed.append((seq, frames))
    got = ring.pop_all()
    assert got == pushed
    assert ring.pop_all() == []
    assert ring.dropped == 0


def test_zero_frame_record_and_large_values() -> None:
    ring = RingHarness(4096)
    big = (1 << 64) - 1
    assert ring.push(big, [])
    assert ring.push(7, [(big, big - 1)])
    assert ring.pop_all() == [(big, []), (7, [(big, big - 1)])]


def test_wraparound_many_times_matches_model() -> None:
    cap = 4096
    ring = RingHarness(cap)
    model = RingModel(cap)
    rng = random.Random(1234)
    seq = 0
    pops = 0
    while model.head < 200 * cap:
        # Push a burst of variable-size records, then pop everything.
        for _ in range(rng.randint(1, 12)):
            frames = make_frames(seq, rng.randint(0, 20))
            expect = model.push(seq, frames)
            assert ring.push(seq, frames) is expect, f"push {seq} at head={model.head}"
            seq += 1
        got = ring.pop_all()
        assert got == model.pop_all()
        for tid, frames in got:
            check_record(tid, frames)
        pops += 1
        assert ring.dropped == model.dropped
    assert model.head // cap >= 200  # wrapped the buffer at least 200 times
    assert pops > 100


def test_partial_pops_interleaved_with_pushes_match_model() -> None:
    """Pops happen while the ring is partly full and the head is anywhere:
    every offset relative to the buffer end is exercised, PADs included."""
    cap = 8192
    ring = RingHarness(cap)
    model = RingModel(cap)
    rng = random.Random(99)
    offsets = set()
    for seq in range(20000):
        frames = make_frames(seq, rng.choice([0, 1, 2, 3, 5, 8, 13, 31]))
        offsets.add(model.head % cap)
        assert ring.push(seq, frames) is model.push(seq, frames)
        if rng.random() < 0.15:
            got = ring.pop_all()
            assert got == model.pop_all()
    assert ring.pop_all() == model.pop_all()
    assert ring.dropped == model.dropped
    assert model.dropped > 0  # the ring did fill up at times
    assert len(offsets) > cap // 8 // 2  # most 8-byte offsets were a record start


def test_full_ring_drops_and_counts_exactly() -> None:
    cap = 4096
    ring = RingHarness(cap)
    size = rec_len(6)  # 26 records fill 3952 bytes; 144 stay free at the end
    accepted = []
    seq = 0
    while ring.push(seq, make_frames(seq, 6)):
        accepted.append(seq)
        seq += 1
    # The fill stopped exactly when the next record no longer fit.
    assert len(accepted) == cap // size
    assert ring.dropped == 1
    for extra in range(25):
        assert ring.push(10_000 + extra, make_frames(10_000 + extra, 6)) is False
    assert ring.dropped == 26
    # A smaller record that still fits in the leftover space is accepted.
    left = cap - len(accepted) * size
    assert left >= HDR
    assert ring.push(77, make_frames(77, (left - HDR) // FRAME))
    accepted.append(77)
    assert ring.push(78, []) is False  # now truly full
    assert ring.dropped == 27
    got = ring.pop_all()
    assert [t for t, _ in got] == accepted  # nothing overwritten, order kept
    for tid, frames in got:
        check_record(tid, frames)
    # Room again after the consumer caught up; the drop counter stays.
    assert ring.push(5, make_frames(5, 3))
    assert ring.pop_all() == [(5, make_frames(5, 3))]
    assert ring.dropped == 27


def test_record_larger_than_ring_is_dropped() -> None:
    ring = RingHarness(4096)
    assert ring.push(1, make_frames(1, 4096 // FRAME)) is False
    assert ring.dropped == 1
    assert ring.pop_all() == []
    assert ring.push(2, make_frames(2, 1))
    assert ring.pop_all() == [(2, make_frames(2, 1))]


def test_record_that_would_straddle_the_end_is_padded() -> None:
    cap = 4096
    ring = RingHarness(cap)
    model = RingModel(cap)
    # Leave the head 40 bytes before the end, with the ring empty.
    n_fill = (cap - 40 - HDR) // FRAME
    assert (cap - 40 - HDR) % FRAME == 0
    assert ring.push(1, make_frames(1, n_fill)) and model.push(1, make_frames(1, n_fill))
    assert ring.pop_all() == model.pop_all()
    assert model.head % cap == cap - 40
    # The next record does not fit in 40 bytes: a PAD covers them, it starts at 0.
    assert ring.push(2, make_frames(2, 2)) and model.push(2, make_frames(2, 2))
    assert model.head == cap + rec_len(2)
    assert ring.pop_all() == [(2, make_frames(2, 2))]
    # With data pending, padding counts against the free space: a record that
    # fits only if the 40 pad bytes were free is dropped.
    ring2, model2 = RingHarness(cap), RingModel(cap)
    for r, m in ((ring2, model2),):
        assert r.push(1, make_frames(1, n_fill)) and m.push(1, make_frames(1, n_fill))
        assert r.pop_all() == m.pop_all()
        small = make_frames(3, 0)  # HDR bytes: does not fit in 40 either -> pad
        assert r.push(3, small) is m.push(3, small) is True
        big_n = (cap - rec_len(0) - HDR) // FRAME  # exactly fills the rest
        assert r.push(4, make_frames(4, big_n)) is m.push(4, make_frames(4, big_n))
        assert r.dropped == m.dropped
        assert r.pop_all() == m.pop_all()


@pytest.mark.parametrize("cap", [4096, 1 << 16])
def test_two_thread_stress_in_order_and_no_silent_loss(cap: int) -> None:
    """One producer thread and one consumer thread hammer one ring.

    Every accepted record arrives exactly once, in order, untorn; every
    rejected push is counted in ``dropped``."""
    ring = RingHarness(cap)
    accepted: list[int] = []
    rejected = 0
    received: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()
    duration = 1.0

    def producer() -> None:
        nonlocal rejected
        try:
            seq = 0
            end = time.monotonic() + duration
            give_up = end + 30  # a loaded machine pushes less per second: run on (bounded) until enough got in
            while (time.monotonic() < end or len(accepted) <= 10_000) and time.monotonic() < give_up:
                for _ in range(64):
                    if ring.push(seq, make_frames(seq, seq % 9)):
                        accepted.append(seq)
                    else:
                        rejected += 1
                    seq += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    def consumer() -> None:
        try:
            while True:
                finished = done.is_set()
                for tid, frames in ring.pop_all():
                    check_record(tid, frames)
                    received.append(tid)
                if finished:
                    break
                time.sleep(0)  # yield: let the producer fill the ring up
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors
    received.extend(tid for tid, _ in ring.pop_all())
    print(f"accepted={len(accepted)} rejected={rejected} cap={cap}")
    assert received == accepted  # in order, nothing lost or duplicated
    assert ring.dropped == rejected
    assert len(accepted) > 10_000
    if cap == 4096:
        assert rejected > 0, "a 4 KiB ring should have filled up under this load"
