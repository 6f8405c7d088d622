"""The recorded data of a profile: the one thing exporters, viewers and sinks see.

A :class:`ProfileData` is a small columnar store:

* a **frame table** (``frames``): interned :class:`Frame` records, id = index;
* a **stack table** (``stacks``): interned tuples of frame ids, **root first**,
  id = index;
* **per-sample columns** of equal length: stack id, native thread
  id, monotonic timestamp, weight (timer expirations the sample stands for),
  CPU nanoseconds, flags, label-set id and stack depth (the Python frames the
  walk recorded: at most max_depth, with FLAG_TRUNCATED when the stack was
  deeper -- the walk does not count the rest; 0 when unknown);
* a **label-set table** (``label_sets``): ``label_sets[0]`` is always ``{}``;
* ``threads``: native thread id -> thread name;
* ``meta``: JSON-serialisable metadata (mode, interval, timer kind, sampler
  statistics, ...; see :data:`META_KEYS`).

Time attributed to a sample is ``weight * interval_ns`` (see
:meth:`ProfileData.sample_ns`). Nothing here knows about the sampler: the model
can be built by hand, which is how exporters are tested.

Storage: the columns are 46 bytes a sample at their full widths (int32
stack, int64 thread, time, weight and CPU ns, uint16 flags, int32 labels and
depth) but are kept packed, exactly, in stdlib :mod:`array` arrays (about
10-21 bytes a sample; see :mod:`ringprof.sample_store`), so recording never
imports numpy.  A recording with a sample cap folds its oldest samples into
aggregate rows (:mod:`ringprof.folding`; ``meta["folded"]``).  Reading a
column (``data.stack``, ...) returns a :class:`Column` snapshot: an
``array.array`` (``tolist()``, ``len``, iteration and the buffer protocol need
no numpy) that also behaves as a numpy array for analysis (``col == 3``,
``col[mask]``, ``col * k``, ``col.sum()``, ``np.asarray(col)``), importing
numpy on first such use.
"""

from __future__ import annotations

import array
import base64
import gzip
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from .folding import FLAG_FOLDED as FLAG_FOLDED
from .folding import FoldedSamples
from .sample_store import COLUMN_TYPECODES, SampleStore

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

FORMAT_NAME = "ringprof"
FORMAT_VERSION = 1

# Sample flags (must match csrc/record.h).
FLAG_TRUNCATED = 0x01  #: the stack was deeper than max_depth; leaf side kept
FLAG_HOLDS_GIL = 0x02  #: the thread was running Python (held the GIL) when sampled
FLAG_NO_TSTATE = 0x04  #: the thread had no Python thread state
FLAG_BAD_FRAME = 0x08  #: the frame walk stopped on an implausible frame
FLAG_OTHER_INTERP = 0x10  #: the thread belonged to a sub-interpreter (not walked)
FLAG_FINALIZING = 0x20  #: the interpreter was finalizing (not walked)
# FLAG_FOLDED = 0x40 (Python only, from ringprof.folding): the row is an aggregate of folded samples.
FLAG_BLOCKED = 0x80  #: wall mode: the thread was not running Python; recorded without a signal

#: Documented keys of :attr:`ProfileData.meta`.
META_KEYS = (
    "mode",  # "cpu" or "wall"
    "interval",  # requested sampling interval, seconds (float)
    "timer",  # "thread-perf", "thread-cputime", "thread-tick" (wall), "thread-monotonic" or "itimer-prof"
    "max_depth",  # frames kept per sample
    "start_time",  # wall-clock (unix) time of the first enable(), seconds
    "duration",  # seconds the sampler was enabled, summed over enable/disable
    "python",  # sys.version of the profiled interpreter
    "pid",
    "argv",
    "stats",  # sampler statistics: samples, dropped, handler_ns, rate_per_thread, ...
    "folded",  # present once samples were folded: see ringprof.folding.FoldedSamples.meta
)


class Frame(NamedTuple):
    """One frame of a stack: a function and the line that was executing in it.

    Synthetic frames (``<truncated>``, ``<dropped>``, ``<subinterpreter>``,
    ``<unknown>``) have an empty ``filename`` and zero line numbers.

    A named tuple, so that hashing and comparing frames runs in C: the drain
    interns every new stack (tuples of up to ``max_depth`` frames), and a
    dataclass's generated ``__hash__``/``__eq__`` made that Python calls per frame.
    """

    name: str  #: qualified name, e.g. ``Outer.method`` or ``<module>``
    filename: str  #: ``co_filename``
    firstlineno: int  #: first line of the function (0 if unknown)
    line: int  #: line of the sampled instruction (0 if unknown)

    @property
    def function_key(self) -> tuple[str, int, str]:
        """Identity of the function, ignoring the line: cProfile's key order."""
        return (self.filename, self.firstlineno, self.name)

    def label(self, lines: bool = False) -> str:
        """Human label: ``name (file:line)``; synthetic frames are just their name."""
        if not self.filename:
            return self.name
        return f"{self.name} ({self.filename}:{self.line if lines else self.firstlineno})"


#: Column name -> array typecode; the numpy dtypes of the columns follow from
#: these (int32, int64, int64, int64, int64, uint16, int32, int32).
_COLUMNS: dict[str, str] = COLUMN_TYPECODES
_NP_DTYPES = {"i": "int32", "q": "int64", "H": "uint16"}
_DEFAULTS = {"weight": 1, "cpu_ns": 0, "flags": 0, "labels": 0, "depth": 0}
#: Bytes one sample takes in the columns at their full widths (as read, and in the saved format).
BYTES_PER_SAMPLE = sum(array.array(tc).itemsize for tc in _COLUMNS.values())


def _numpy() -> Any:
    import numpy

    return numpy


class Column(array.array):  # type: ignore[type-arg]
    """A read-only snapshot of one sample column.

    An ``array.array``, so ``tolist()``, ``len()``, iteration, integer indexing
    and the buffer protocol work without numpy; everything else (comparisons,
    arithmetic, fancy or boolean indexing, ``sum``/``shape``/``astype``/...)
    acts on the equivalent numpy array, imported on first use.
    """

    def numpy(self) -> np.ndarray:
        """The column as a numpy array (a view of this snapshot)."""
        cached: np.ndarray | None = self.__dict__.get("_np")
        if cached is None:
            cached = _numpy().frombuffer(self, dtype=_NP_DTYPES[self.typecode]) if len(self) else \
                _numpy().zeros(0, dtype=_NP_DTYPES[self.typecode])
            self.__dict__["_np"] = cached
        return cached

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    @overload  # type: ignore[override]
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: Any) -> np.ndarray: ...
    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int):
            return array.array.__getitem__(self, index)
        return self.numpy()[index]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.numpy(), name)

    __hash__ = None

    def __eq__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return self.numpy() == other  # type: ignore[no-any-return]

    def __ne__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return self.numpy() != other  # type: ignore[no-any-return]

    def __lt__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return self.numpy() < other  # type: ignore[no-any-return]

    def __le__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return self.numpy() <= other  # type: ignore[no-any-return]

    def __gt__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return self.numpy() > other  # type: ignore[no-any-return]

    def __ge__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return self.numpy() >= other  # type: ignore[no-any-return]

    def __add__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return self.numpy() + other  # type: ignore[no-any-return]

    def __radd__(self, other: Any) -> np.ndarray:
        return other + self.numpy()  # type: ignore[no-any-return]

    def __sub__(self, other: Any) -> np.ndarray:
        return self.numpy() - other  # type: ignore[no-any-return]

    def __rsub__(self, other: Any) -> np.ndarray:
        return other - self.numpy()  # type: ignore[no-any-return]

    def __mul__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return self.numpy() * other  # type: ignore[no-any-return]

    def __rmul__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return other * self.numpy()  # type: ignore[no-any-return]

    def __floordiv__(self, other: Any) -> np.ndarray:
        return self.numpy() // other  # type: ignore[no-any-return]

    def __truediv__(self, other: Any) -> np.ndarray:
        return self.numpy() / other  # type: ignore[no-any-return]

    def __and__(self, other: Any) -> np.ndarray:
        return self.numpy() & other  # type: ignore[no-any-return]

    def __or__(self, other: Any) -> np.ndarray:
        return self.numpy() | other  # type: ignore[no-any-return]


def _as_column(name: str, value: Any, n: int) -> array.array[int]:
    """``value`` (None, a scalar, a sequence or a numpy array) as a typed array of length ``n``."""
    tc = _COLUMNS[name]
    if value is None:
        value = _DEFAULTS[name]
    if hasattr(value, "dtype") and getattr(value, "ndim", 1) == 1:  # numpy: convert in C
        out = array.array(tc)
        raw = value.astype(_NP_DTYPES[tc], copy=False)
        if sys.byteorder != "little" and raw.dtype.byteorder == "<":  # pragma: no cover - big-endian hosts
            raw = raw.astype(raw.dtype.newbyteorder("="))
        out.frombytes(raw.tobytes())
    elif not hasattr(value, "__len__"):  # a scalar broadcasts
        out = array.array(tc, [int(value)]) * n
    else:
        try:
            out = array.array(tc, value)
        except (OverflowError, TypeError) as exc:
            raise ValueError(f"column {name!r}: {exc}") from None
    if len(out) != n:
        raise ValueError(f"column {name!r} has length {len(out)}, expected {n}")
    return out


@dataclass
class FunctionStats:
    """Self and total (inclusive) weight of one function."""

    key: tuple[str, int, str]  # (filename, firstlineno, name)
    self_weight: int = 0
    total_weight: int = 0


class ProfileData:
    """Interned frames and stacks, per-sample columns, metadata."""

    def __init__(self, meta: Mapping[str, Any] | None = None) -> None:
        self.frames: list[Frame] = []
        self.stacks: list[tuple[int, ...]] = []
        self.label_sets: list[dict[str, str]] = [{}]
        self.threads: dict[int, str] = {}
        self.meta: dict[str, Any] = dict(meta or {})
        self._frame_ids: dict[Frame, int] = {}
        self._stack_ids: dict[tuple[int, ...], int] = {}
        self._label_ids: dict[tuple[tuple[str, str], ...], int] = {(): 0}
        self._store = SampleStore()
        self._folded: FoldedSamples | None = None
        self._max_samples: int | None = None
        self._snapshots: dict[str, Column] = {}

    @property
    def max_samples(self) -> int | None:
        """Samples kept unfolded (None: no cap); older ones are folded (see
        :mod:`ringprof.folding`).  Set by the recording that owns the data."""
        return self._max_samples

    @max_samples.setter
    def max_samples(self, value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError(f"max_samples must be None or >= 1, got {value}")
        self._max_samples = value
        if value is not None:
            # Fold a segment at a time, at most a quarter of the cap: 3/4 of it or more stay unfolded.
            self._store.segment_samples = max(1, min(value // 4, SampleStore().segment_samples))
            self._fold()

    # ------------------------------------------------------------------ interning
    def intern_frame(self, frame: Frame) -> int:
        fid = self._frame_ids.get(frame)
        if fid is None:
            fid = self._frame_ids[frame] = len(self.frames)
            self.frames.append(frame)
        return fid

    def intern_stack(self, frame_ids: Iterable[int]) -> int:
        """Intern a stack given as frame ids, **root first**."""
        key = tuple(frame_ids)
        sid = self._stack_ids.get(key)
        if sid is None:
            sid = self._stack_ids[key] = len(self.stacks)
            self.stacks.append(key)
        return sid

    def intern_labels(self, labels: Mapping[str, str]) -> int:
        key = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
        lid = self._label_ids.get(key)
        if lid is None:
            lid = self._label_ids[key] = len(self.label_sets)
            self.label_sets.append(dict(key))
        return lid

    # ------------------------------------------------------------------ samples
    def add_samples(
        self,
        stack: Any,
        thread: Any,
        time_ns: Any,
        weight: Any = None,
        cpu_ns: Any = None,
        flags: Any = None,
        labels: Any = None,
        depth: Any = None,
    ) -> None:
        """Append samples: columns of equal length (sequences, ``array``\\ s or
        numpy arrays); scalars and None (the default) broadcast."""
        given = {"stack": stack, "thread": thread, "time_ns": time_ns, "weight": weight,
                 "cpu_ns": cpu_ns, "flags": flags, "labels": labels, "depth": depth}
        n = len(stack) if hasattr(stack, "__len__") else 1
        chunk = {name: _as_column(name, given[name], n) for name in _COLUMNS}
        if n and (min(chunk["stack"]) < 0 or max(chunk["stack"]) >= len(self.stacks)):
            raise ValueError("stack id out of range")
        self.append_columns(chunk)

    def append_columns(self, chunk: Mapping[str, array.array[int]]) -> None:
        """Append typed columns as they are (the recording path: no checks, no
        conversion; each ``chunk[name]`` has the typecode of the column)."""
        if not len(chunk["stack"]):
            return
        self._store.append(chunk)
        self._snapshots.clear()
        if self._max_samples is not None and len(self._store) > self._max_samples:
            self._fold()

    def _fold(self) -> None:
        cap = self._max_samples
        store = self._store
        if cap is None or len(store) <= cap or store.segments < 2:
            return
        folded = self._folded
        if folded is None:
            folded = self._folded = FoldedSamples()
        while len(store) > cap and store.segments > 1:
            folded.add(store.pop_oldest())
        self.meta["folded"] = folded.meta(cap)
        self._snapshots.clear()

    @property
    def folded(self) -> bool:
        """True if some samples are folded rows (``flags & FLAG_FOLDED``)."""
        return self._folded is not None or "folded" in self.meta

    def add_sample(self, frames_root_first: Iterable[Frame], thread: int = 0, time_ns: int = 0,
                   weight: int = 1, cpu_ns: int = 0, flags: int = 0,
                   labels: Mapping[str, str] | None = None) -> None:
        """Convenience for hand-made models and tests: one sample from Frame objects."""
        sid = self.intern_stack(self.intern_frame(f) for f in frames_root_first)
        lid = self.intern_labels(labels) if labels else 0
        self.add_samples([sid], [thread], [time_ns], [weight], [cpu_ns], [flags], [lid])

    def _column(self, name: str) -> Column:
        snap = self._snapshots.get(name)
        if snap is None:
            tc = _COLUMNS[name]
            snap = Column(tc)
            if self._folded is not None:
                snap.extend(self._folded.column(name, tc))
            snap.extend(self._store.column(name))
            self._snapshots[name] = snap
        return snap

    @property
    def stack(self) -> Column:
        return self._column("stack")

    @property
    def thread(self) -> Column:
        return self._column("thread")

    @property
    def time_ns(self) -> Column:
        return self._column("time_ns")

    @property
    def weight(self) -> Column:
        return self._column("weight")

    @property
    def cpu_ns(self) -> Column:
        return self._column("cpu_ns")

    @property
    def flags(self) -> Column:
        return self._column("flags")

    @property
    def labels(self) -> Column:
        return self._column("labels")

    @property
    def depth(self) -> Column:
        return self._column("depth")

    def nbytes(self) -> int:
        """Bytes held by the samples: packed columns with their allocation slack
        and side tables, and folded rows (the frame/stack/label tables and read
        snapshots not included)."""
        return self._store.nbytes() + (self._folded.nbytes() if self._folded is not None else 0)

    def __len__(self) -> int:
        """Samples held: kept samples plus folded rows."""
        return len(self._store) + (len(self._folded) if self._folded is not None else 0)

    # ------------------------------------------------------------------ views
    @property
    def interval_ns(self) -> int:
        return round(float(self.meta.get("interval", 0.01)) * 1e9)

    def sample_ns(self) -> Column:
        """Nanoseconds each sample stands for: ``weight * interval``."""
        unit = self.interval_ns
        return Column("q", [w * unit for w in self._column("weight")])

    def stack_weights(self) -> np.ndarray:
        """Total weight per stack id (length ``len(stacks)``)."""
        np = _numpy()
        return np.bincount(self.stack.numpy(), weights=self.weight.numpy(),  # type: ignore[no-any-return]
                           minlength=len(self.stacks)).astype(np.int64)

    def iter_stacks(self) -> Iterator[tuple[tuple[Frame, ...], int]]:
        """(frames root first, total weight) for every stack with weight > 0, by stack id."""
        for sid, w in enumerate(self.stack_weights()):
            if w:
                yield tuple(self.frames[f] for f in self.stacks[sid]), int(w)

    def function_stats(self) -> list[FunctionStats]:
        """Self and total weight per function; recursion counted once per sample.

        Sorted by total weight, then self weight, descending; ties by key.
        """
        stats: dict[tuple[str, int, str], FunctionStats] = {}
        for sid, w in enumerate(self.stack_weights()):
            if not w:
                continue
            stack = self.stacks[sid]
            seen: set[tuple[str, int, str]] = set()
            for depth, fid in enumerate(stack):
                key = self.frames[fid].function_key
                st = stats.get(key)
                if st is None:
                    st = stats[key] = FunctionStats(key)
                if key not in seen:
                    seen.add(key)
                    st.total_weight += int(w)
                if depth == len(stack) - 1:
                    st.self_weight += int(w)
        return sorted(stats.values(), key=lambda s: (-s.total_weight, -s.self_weight, s.key))

    def total_weight(self) -> int:
        return sum(self._column("weight"))

    # ------------------------------------------------------------------ transforms
    def filter(self, mask: npt.ArrayLike | None = None, *, thread: int | None = None,
               labels: Mapping[str, str] | None = None, start_ns: int | None = None,
               end_ns: int | None = None, task: str | int | None = None) -> ProfileData:
        """A new ProfileData with only the selected samples (tables are shared copies).

        ``task``: the samples of one asyncio task -- an ``int`` is its
        ``task_id`` label, a ``str`` its name (``task`` label; names need not be
        unique: use the id to pick one of several tasks of the same name).
        """
        out = self._copy_tables()
        if (mask is None and thread is None and labels is None and start_ns is None and end_ns is None
                and task is None):
            out._store = SampleStore.from_columns({k: self._column(k) for k in _COLUMNS})
            return out
        np = _numpy()
        if task is not None:
            labels = {**(labels or {}), **task_labels(task)}
        keep = self.select_mask(thread=thread, labels=labels, start_ns=start_ns, end_ns=end_ns)
        if mask is not None:
            keep &= np.asarray(mask, dtype=bool)
        out.append_columns({k: _as_column(k, self._column(k)[keep], int(keep.sum())) for k in _COLUMNS})
        return out

    def select_mask(self, *, thread: int | None = None, labels: Mapping[str, str] | None = None,
                    start_ns: int | None = None, end_ns: int | None = None) -> np.ndarray:
        """Boolean mask of the samples of ``thread``, carrying all of ``labels``,
        taken in ``[start_ns, end_ns)``.  Only label sets that selected samples
        use are examined, so it stays cheap when label sets number in the
        thousands (one per span, say)."""
        np = _numpy()
        keep = np.ones(len(self), dtype=bool)
        if thread is not None:
            keep &= self.thread == thread
        if start_ns is not None:
            keep &= self.time_ns >= start_ns
        if end_ns is not None:
            keep &= self.time_ns < end_ns
        if labels:
            want = {str(k): str(v) for k, v in labels.items()}
            ok = np.zeros(len(self.label_sets), dtype=bool)
            for lid in np.unique(self.labels.numpy()[keep]).tolist():
                ls = self.label_sets[lid]
                ok[lid] = all(ls.get(k) == v for k, v in want.items())
            keep &= ok[self.labels.numpy()]
        return keep  # type: ignore[no-any-return]

    def trim_roots(self, is_wrapper: Callable[[Frame], bool]) -> ProfileData:
        """A copy where leading (root-side) frames matching ``is_wrapper`` are
        removed from every stack, e.g. the profiler's own launcher frames.
        A stack made only of wrapper frames keeps its leaf."""
        out = self._copy_tables()
        out.stacks, out._stack_ids = [], {}
        remap: list[int] = []
        for stack in self.stacks:
            i = 0
            while i < len(stack) - 1 and is_wrapper(self.frames[stack[i]]):
                i += 1
            remap.append(out.intern_stack(stack[i:]))
        cols: dict[str, array.array[int]] = {k: self._column(k) for k in _COLUMNS}
        cols["stack"] = array.array("i", [remap[s] for s in cols["stack"]])
        out._store = SampleStore.from_columns(cols)
        return out

    def empty_like(self) -> ProfileData:
        """No samples and no metadata, but copies of this profile's frame, stack,
        label-set and thread tables: its frame, stack and label ids mean the
        same in the result."""
        out = ProfileData()
        out.frames = list(self.frames)
        out.stacks = list(self.stacks)
        out.label_sets = [dict(d) for d in self.label_sets]
        out.threads = dict(self.threads)
        out._frame_ids = dict(self._frame_ids)
        out._stack_ids = dict(self._stack_ids)
        out._label_ids = dict(self._label_ids)
        return out

    def _copy_tables(self) -> ProfileData:
        out = self.empty_like()
        out.meta = json.loads(json.dumps(self.meta))
        return out

    def copy(self) -> ProfileData:
        return self.filter()

    def merge(self, other: ProfileData) -> None:
        """Append another profile's samples into this one (re-interning its tables)."""
        fmap = [self.intern_frame(f) for f in other.frames]
        smap = [self.intern_stack(fmap[f] for f in st) for st in other.stacks]
        lmap = [self.intern_labels(ls) for ls in other.label_sets]
        self.threads.update(other.threads)
        if len(other):
            cols: dict[str, array.array[int]] = {k: other._column(k) for k in _COLUMNS}
            cols["stack"] = array.array("i", [smap[s] for s in cols["stack"]])
            cols["labels"] = array.array("i", [lmap[x] for x in cols["labels"]])
            self.append_columns(cols)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        def enc(a: array.array[int]) -> str:
            if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
                a = array.array(a.typecode, a)
                a.byteswap()
            return base64.b64encode(a.tobytes()).decode()

        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "meta": self.meta,
            "frames": [[f.name, f.filename, f.firstlineno, f.line] for f in self.frames],
            "stacks": [list(s) for s in self.stacks],
            "label_sets": self.label_sets,
            "threads": {str(k): v for k, v in self.threads.items()},
            "columns": {k: enc(self._column(k)) for k in _COLUMNS},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ProfileData:
        if d.get("format") != FORMAT_NAME:
            raise ValueError("not a ringprof profile")
        version = d.get("version")
        if version != FORMAT_VERSION:
            raise ValueError(f"unsupported ringprof format version {version!r} (this build reads {FORMAT_VERSION})")
        out = cls(d.get("meta", {}))
        for name, filename, first, line in d["frames"]:
            out.intern_frame(Frame(str(name), str(filename), int(first), int(line)))
        for st in d["stacks"]:
            out.intern_stack(int(x) for x in st)
        for ls in d["label_sets"][1:]:
            out.intern_labels(ls)
        out.threads = {int(k): str(v) for k, v in d.get("threads", {}).items()}
        cols: dict[str, array.array[int]] = {}
        for k, tc in _COLUMNS.items():
            col = cols[k] = array.array(tc)
            if k not in d["columns"] and k == "depth":  # optional column
                col.extend([0] * len(cols["stack"]))
                continue
            try:
                col.frombytes(base64.b64decode(d["columns"][k]))
            except ValueError as exc:
                raise ValueError(f"corrupt ringprof profile: column {k!r}: {exc}") from None
            if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
                col.byteswap()
        n = len(cols["stack"])
        if any(len(c) != n for c in cols.values()):
            raise ValueError("corrupt ringprof profile: columns differ in length")
        if n and (min(cols["stack"]) < 0 or max(cols["stack"]) >= len(out.stacks)):
            raise ValueError("corrupt ringprof profile: stack id out of range")
        out._store = SampleStore.from_columns(cols)
        out._snapshots.clear()
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the native format (gzip-compressed JSON, versioned) atomically."""
        data = gzip.compress(json.dumps(self.to_dict(), separators=(",", ":")).encode(), mtime=0)
        tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ProfileData:
        """Read a saved profile: the native format, or any format :mod:`ringprof.readers` reads.

        Malformed content raises :class:`ringprof.readers.ProfileFormatError`
        (a ValueError) with a one-line message naming the file; a file that
        cannot be opened raises OSError.
        """
        from .readers import read

        return read(path)


def task_labels(task: str | int) -> dict[str, str]:
    """The labels selecting one asyncio task: ``task_id`` for an int, ``task`` (the name) for a str."""
    if isinstance(task, bool) or not isinstance(task, int | str):
        raise TypeError(f"task must be a task name (str) or a task_id (int), got {task!r}")
    return {"task_id": str(task)} if isinstance(task, int) else {"task": task}


def top_functions(data: ProfileData, n: int, sort: str = "total") -> list[FunctionStats]:
    """The ``n`` functions with the most total (inclusive) or self weight.

    Each ranking is computed over every function (a leaf with most of the self
    time ranks first under ``sort="self"`` however deep the stack above it);
    ties break by the other weight, then by function key.
    """
    if sort not in ("total", "self"):
        raise ValueError(f"unknown sort {sort!r}: expected 'total' or 'self'")
    stats = data.function_stats()  # by total weight
    if sort == "self":
        stats = sorted(stats, key=lambda s: (-s.self_weight, -s.total_weight, s.key))
    return stats[:max(n, 0)]


def format_top(data: ProfileData, n: int = 20, *, sort: str = "total") -> str:
    """The top-N table as text: a header line, then self %, total % and function (file:line)."""
    total = data.total_weight() or 1
    meta = data.meta
    raw_stats = meta.get("stats")
    stats: dict[str, Any] = raw_stats if isinstance(raw_stats, dict) else {}
    # A folded profile (the flight recorder's) has fewer rows than the samples it holds.
    samples = max(len(data), int(stats.get("samples") or 0))
    lines = [f"ringprof: {samples} samples, {meta.get('mode')} mode, "
             f"interval {meta.get('interval')} s, {meta.get('duration', 0.0):.2f} s sampled, "
             f"dropped {stats.get('dropped', 0)}",
             f"{'self %':>7} {'total %':>7}  function (file:line)"]
    for st in top_functions(data, max(n, 1), sort):
        filename, firstlineno, name = st.key
        where = f" ({filename}:{firstlineno})" if filename else ""
        lines.append(f"{100.0 * st.self_weight / total:7.2f} {100.0 * st.total_weight / total:7.2f}  {name}{where}")
    return "\n".join(lines) + "\n"


@dataclass
class SamplerStats:
    """Statistics the sampler reports; stored in ``meta['stats']`` as a dict."""

    samples: int = 0
    dropped: int = 0
    handler_ns: int = 0
    rate_per_thread: dict[str, float] = field(default_factory=dict)
