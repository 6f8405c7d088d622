"""Compact storage of per-sample columns: what a recording keeps per sample.

A :class:`~ringprof.model.ProfileData` exposes eight logical columns (stack
id, native thread id, monotonic time, weight, CPU ns, flags, label-set id,
depth; 46 bytes a sample at their full widths).  A recording left on for
hours keeps millions of samples, so they are stored packed, exactly
(every value comes back bit for bit), in **segments** of at most
:data:`SEGMENT_SAMPLES` samples:

* ``time_ns``: the difference to the previous sample of the segment (signed,
  1, 2 or 4 bytes); a difference that does not fit 32 bits (the first sample
  of a segment, a thread idle for seconds) is kept in a side table;
* ``thread``: an index into the segment's list of native thread ids (1 byte;
  2 once the segment has seen 256 threads);
* ``weight`` (timer expirations, nearly always 1-3): 1 byte, larger values in
  the side table;
* ``cpu_ns`` (wall mode only: CPU burned since the thread's previous sample):
  nothing while every value is 0 (CPU mode), else up to 4 bytes, larger
  values in the side table;
* ``stack``, ``labels``, ``flags``, ``depth``: the narrowest unsigned width
  (0, 1, 2 or 4 bytes) that holds every value of the segment so far, widened
  in place when a larger value arrives (8 bytes for values that are negative
  or do not fit 32 bits: hand-made models may hold any int64).

A column whose values are all equal so far takes no bytes per sample (the
labels column of an unlabelled program, ``cpu_ns`` in CPU mode).  Worst case
(wall mode, > 65,535 stacks and label sets, > 255 threads in one segment):
4 + 2 + 1 + 4 + 4 + 1 + 4 + 1 = 21 bytes a sample, plus ``array``'s growth
slack (at most 1/16); a CPU-mode recording of one program with a few
thousand stacks takes about 10.  ``python -m benchmarks.memory`` measures it.

Segments let a recording drop (fold) its oldest samples a segment at a time
(:meth:`SampleStore.pop_oldest`) without rewriting the rest.

Nothing here imports numpy.
"""

from __future__ import annotations

import array
import operator
import sys
from collections.abc import Mapping, Sequence
from itertools import accumulate

__all__ = ["COLUMN_TYPECODES", "SEGMENT_SAMPLES", "SampleStore"]

#: Logical column name -> the typecode a decoded column has (the full width).
COLUMN_TYPECODES: dict[str, str] = {
    "stack": "i",
    "thread": "q",
    "time_ns": "q",
    "weight": "q",
    "cpu_ns": "q",
    "flags": "H",
    "labels": "i",
    "depth": "i",
}

#: Samples per segment (a drained batch is never split, so a segment may hold
#: one batch more).
SEGMENT_SAMPLES = 1 << 14

_RANGE: dict[str, tuple[int, int]] = {
    "B": (0, 0xFF), "H": (0, 0xFFFF), "I": (0, 0xFFFFFFFF), "q": (-(1 << 63), (1 << 63) - 1),
    "b": (-0x80, 0x7F), "h": (-0x8000, 0x7FFF), "i": (-0x80000000, 0x7FFFFFFF),
}
_INT64_MIN = _RANGE["q"][0]
_UNSIGNED = frozenset("BHI")
_BIG_ENDIAN = sys.byteorder != "little"  # the byte-level fast path assumes little-endian
_GROWING = ("B", "H", "I", "q")  # ids: widen as they grow; "q" holds any int64
_SMALL = ("B",)  # weights: one byte, the rest escapes
_UNSIGNED32 = ("B", "H", "I")  # CPU ns: up to 4 bytes, the rest escapes
_SIGNED32 = ("b", "h", "i")  # time differences: up to 4 bytes, the rest escapes


def _as_list(values: Sequence[int]) -> list[int]:
    """Plain ints (from an array, a list or a numpy array)."""
    if type(values) is list:
        return values
    if isinstance(values, array.array):
        return array.array.tolist(values)  # also for array subclasses that act as numpy
    tolist = getattr(values, "tolist", None)
    return list(tolist()) if tolist is not None else [int(v) for v in values]


def _wrap(value: int) -> int:
    """``value`` modulo 2**64, as a signed int64."""
    return ((value - _INT64_MIN) & 0xFFFFFFFFFFFFFFFF) + _INT64_MIN


class _Packed:
    """One packed integer column (see the module docstring).

    Constant (no array) while every value is equal.  Then an array of the
    narrowest typecode of ``ladder`` that holds every value so far.  If
    ``escapes`` is set, values beyond the last rung are stored as a marker
    (any value) with the real value in a side table, by index; without
    it the ladder ends in ``"q"``, which holds every int64.
    """

    __slots__ = ("_arr", "_const", "_escapes", "_ladder", "_n")

    def __init__(self, ladder: tuple[str, ...], escapes: bool) -> None:
        self._ladder = ladder
        self._escapes: dict[int, int] | None = {} if escapes else None
        self._arr: array.array[int] | None = None
        self._const = 0
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def extend(self, values: Sequence[int]) -> None:
        if isinstance(values, array.array) and self._extend_bytes(values):
            return
        vals = _as_list(values)
        n = len(vals)
        if not n:
            return
        if self._arr is None:
            first = vals[0]
            if (self._n == 0 or self._const == first) and vals.count(first) == n:
                self._const = first
                self._n += n
                return
            self._arr = array.array(self._ladder[0])
            if self._n:
                count, self._n = self._n, 0
                self._append([self._const] * count)
        self._append(vals)

    def _extend_bytes(self, values: array.array[int]) -> bool:
        """The fast path for a typed array (the recording's): constant, or every
        value fits the current unsigned width, checked and narrowed on the raw
        bytes.  False: take the general path."""
        n = len(values)
        if not n or _BIG_ENDIAN:
            return not n
        raw = values.tobytes()
        size = values.itemsize
        if self._arr is None:
            first = raw[:size]
            if raw == first * n and (self._n == 0 or int.from_bytes(first, "little", signed=values.typecode.islower())
                                     == self._const):
                self._const = values[0]
                self._n += n
                return True
            return False
        width = self._arr.itemsize
        if self._arr.typecode not in _UNSIGNED or width >= size:
            return False
        out = bytearray(width * n)
        low_zeros = 0
        for k in range(width):
            part = raw[k::size]
            out[k::width] = part
            low_zeros += part.count(0)
        if raw.count(0) - low_zeros != (size - width) * n:  # some value has a high byte set
            return False
        self._arr.frombytes(out)
        self._n += n
        return True

    def _append(self, vals: list[int]) -> None:
        arr = self._arr
        assert arr is not None
        try:
            arr.fromlist(vals)  # all or nothing
        except OverflowError:
            self._append_wide(vals)
        else:
            self._n += len(vals)

    def _append_wide(self, vals: list[int]) -> None:
        """Some value does not fit: widen, or escape what the last rung cannot hold."""
        arr = self._arr
        assert arr is not None
        lo, hi = min(vals), max(vals)
        rungs = self._ladder[self._ladder.index(arr.typecode):]
        tc = rungs[0]
        for tc in rungs:
            rmin, rmax = _RANGE[tc]
            if rmin <= lo and hi <= rmax:
                break
        if tc != arr.typecode:
            arr = self._arr = array.array(tc, arr.tolist())
        if rmin <= lo and hi <= rmax:
            arr.fromlist(vals)
        else:  # beyond the last rung: escapes (only ladders with a side table get here)
            escapes = self._escapes
            if escapes is None:
                raise OverflowError(f"value out of range: {lo}..{hi}")
            base = self._n
            packed = []
            for i, v in enumerate(vals):
                if rmin <= v <= rmax:
                    packed.append(v)
                else:
                    packed.append(0)  # any value: decoding takes the side table's for this index
                    escapes[base + i] = v
            arr.fromlist(packed)
        self._n += len(vals)

    def decode(self, typecode: str) -> array.array[int]:
        """Every value, as an array of ``typecode``."""
        if self._arr is None:
            return array.array(typecode, [self._const]) * self._n
        out = array.array(typecode, self._arr)
        if self._escapes:
            for i, v in self._escapes.items():
                out[i] = _wrap(v)  # identity but for time differences of hand-made times
        return out

    def seal(self) -> None:
        """No more appends: give back the array's growth slack."""
        if self._arr is not None:
            self._arr = self._arr[:]  # a slice is allocated at its exact size

    def nbytes(self) -> int:
        size = sys.getsizeof(self._arr) if self._arr is not None else 0
        if self._escapes:
            size += sys.getsizeof(self._escapes) + 64 * len(self._escapes)  # plus two int objects each
        return size


class _Segment:
    """Up to :data:`SEGMENT_SAMPLES` samples, packed."""

    __slots__ = ("_cols", "_last_time", "_thread_ids", "_thread_index", "_threads", "_time")

    def __init__(self) -> None:
        self._time = _Packed(_SIGNED32, escapes=True)  # differences; the first is absolute
        self._last_time = 0
        self._threads = _Packed(_GROWING, escapes=False)  # index into _thread_ids
        self._thread_ids: list[int] = []
        self._thread_index: dict[int, int] = {}
        self._cols = {
            "stack": _Packed(_GROWING, escapes=False),
            "weight": _Packed(_SMALL, escapes=True),
            "cpu_ns": _Packed(_UNSIGNED32, escapes=True),
            "flags": _Packed(_GROWING, escapes=False),
            "labels": _Packed(_GROWING, escapes=False),
            "depth": _Packed(_GROWING, escapes=False),
        }

    def __len__(self) -> int:
        return len(self._time)

    def append(self, chunk: Mapping[str, Sequence[int]]) -> None:
        times = _as_list(chunk["time_ns"])
        # A difference beyond 32 bits goes to the side table (beyond int64: wrapped when decoded).
        deltas = list(map(operator.sub, times, [self._last_time, *times[:-1]]))
        index = self._thread_index
        threads = _as_list(chunk["thread"])
        for tid in set(threads):
            if tid not in index:
                index[tid] = len(self._thread_ids)
                self._thread_ids.append(tid)
        thread_idx = list(map(index.__getitem__, threads))
        for name, col in self._cols.items():
            col.extend(chunk[name])
        self._threads.extend(thread_idx)
        self._time.extend(deltas)  # last: len(self) counts complete samples only
        self._last_time = times[-1]

    def seal(self) -> None:
        """The segment is full: drop what only appending needs."""
        self._thread_index = {}
        self._time.seal()
        self._threads.seal()
        for col in self._cols.values():
            col.seal()

    def decode(self, name: str) -> array.array[int]:
        tc = COLUMN_TYPECODES[name]
        if name == "time_ns":
            try:
                return array.array(tc, accumulate(self._time.decode("q")))
            except OverflowError:  # a difference wrapped: so does the sum
                return array.array(tc, map(_wrap, accumulate(self._time.decode("q"))))
        if name == "thread":
            ids = self._thread_ids
            return array.array(tc, map(ids.__getitem__, self._threads.decode("q")))
        return self._cols[name].decode(tc)

    def nbytes(self) -> int:
        size = self._time.nbytes() + self._threads.nbytes() + sum(c.nbytes() for c in self._cols.values())
        return size + sys.getsizeof(self._thread_ids) + sys.getsizeof(self._thread_index)


class SampleStore:
    """Packed sample columns in segments (see the module docstring)."""

    def __init__(self, segment_samples: int = SEGMENT_SAMPLES) -> None:
        self.segment_samples = max(1, segment_samples)
        self._segments: list[_Segment] = []
        self._len = 0

    @classmethod
    def from_columns(cls, columns: Mapping[str, Sequence[int]]) -> SampleStore:
        store = cls()
        lists = {name: _as_list(columns[name]) for name in COLUMN_TYPECODES}
        step = store.segment_samples
        for lo in range(0, len(lists["stack"]), step):
            store.append({name: col[lo:lo + step] for name, col in lists.items()})
        return store

    def __len__(self) -> int:
        return self._len

    @property
    def segments(self) -> int:
        return len(self._segments)

    def append(self, chunk: Mapping[str, Sequence[int]]) -> None:
        """Append samples: every logical column, of equal length."""
        n = len(chunk["stack"])
        if not n:
            return
        if not self._segments or len(self._segments[-1]) >= self.segment_samples:
            if self._segments:
                self._segments[-1].seal()
            self._segments.append(_Segment())
        self._segments[-1].append(chunk)
        self._len += n

    def column(self, name: str) -> array.array[int]:
        """The whole column ``name``, decoded (a new array of its full typecode)."""
        out = array.array(COLUMN_TYPECODES[name])
        for seg in self._segments:
            out.extend(seg.decode(name))
        return out

    def pop_oldest(self) -> dict[str, array.array[int]]:
        """Remove the oldest segment and return its decoded columns."""
        seg = self._segments.pop(0)
        self._len -= len(seg)
        return {name: seg.decode(name) for name in COLUMN_TYPECODES}

    def nbytes(self) -> int:
        """Bytes held (allocated buffers, side tables and per-segment objects)."""
        return sum(seg.nbytes() for seg in self._segments) + sys.getsizeof(self._segments)

