"""The recorded data of a profile: the one thing exporters, viewers and sinks see.

A :class:`ProfileData` is a small columnar store:

* a **frame table** (``frames``): interned :class:`Frame` records, id = index;
* a **stack table** (``stacks``): interned tuples of frame ids, **root first**,
  id = index;
* **per-sample columns** (numpy arrays of equal length): stack id, native thread
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
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

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

#: Documented keys of :attr:`ProfileData.meta`.
META_KEYS = (
    "mode",  # "cpu" or "wall"
    "interval",  # requested sampling interval, seconds (float)
    "timer",  # "thread-cputime", "thread-monotonic" or "itimer-prof"
    "max_depth",  # frames kept per sample
    "start_time",  # wall-clock (unix) time of the first enable(), seconds
    "duration",  # seconds the sampler was enabled, summed over enable/disable
    "python",  # sys.version of the profiled interpreter
    "pid",
    "argv",
    "stats",  # sampler statistics: samples, dropped, handler_ns, rate_per_thread, ...
)


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a stack: a function and the line that was executing in it.

    Synthetic frames (``<truncated>``, ``<dropped>``, ``<subinterpreter>``,
    ``<unknown>``) have an empty ``filename`` and zero line numbers.
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


_COLUMNS: dict[str, npt.DTypeLike] = {
    "stack": np.int32,
    "thread": np.int64,
    "time_ns": np.int64,
    "weight": np.int64,
    "cpu_ns": np.int64,
    "flags": np.uint16,
    "labels": np.int32,
    "depth": np.int32,
}


@dataclass
class FunctionStats:
    """Self and total (inclusive) weight of one function."""

    key: tuple[str, int, str]  # (filename, firstlineno, name)
    self_weight: int = 0
    total_weight: int = 0


class ProfileData:
    """Interned frames and stacks, per-sample numpy columns, metadata."""

    def __init__(self, meta: Mapping[str, Any] | None = None) -> None:
        self.frames: list[Frame] = []
        self.stacks: list[tuple[int, ...]] = []
        self.label_sets: list[dict[str, str]] = [{}]
        self.threads: dict[int, str] = {}
        self.meta: dict[str, Any] = dict(meta or {})
        self._frame_ids: dict[Frame, int] = {}
        self._stack_ids: dict[tuple[int, ...], int] = {}
        self._label_ids: dict[tuple[tuple[str, str], ...], int] = {(): 0}
        self._cols: dict[str, np.ndarray] = {k: np.zeros(0, dt) for k, dt in _COLUMNS.items()}
        self._pending: list[dict[str, np.ndarray]] = []

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
        stack: npt.ArrayLike,
        thread: npt.ArrayLike,
        time_ns: npt.ArrayLike,
        weight: npt.ArrayLike | None = None,
        cpu_ns: npt.ArrayLike | None = None,
        flags: npt.ArrayLike | None = None,
        labels: npt.ArrayLike | None = None,
        depth: npt.ArrayLike | None = None,
    ) -> None:
        """Append samples (columns of equal length; scalars broadcast)."""
        n = int(np.size(stack))
        given = {"stack": stack, "thread": thread, "time_ns": time_ns, "weight": weight,
                 "cpu_ns": cpu_ns, "flags": flags, "labels": labels, "depth": depth}
        defaults = {"weight": 1, "cpu_ns": 0, "flags": 0, "labels": 0, "depth": 0}
        chunk: dict[str, np.ndarray] = {}
        for name, dtype in _COLUMNS.items():
            value = given[name]
            if value is None:
                value = defaults[name]
            arr = np.asarray(value, dtype=dtype)
            if arr.ndim == 0:
                arr = np.full(n, arr, dtype=dtype)
            if arr.shape != (n,):
                raise ValueError(f"column {name!r} has shape {arr.shape}, expected ({n},)")
            chunk[name] = arr
        if n and (chunk["stack"].min() < 0 or chunk["stack"].max() >= len(self.stacks)):
            raise ValueError("stack id out of range")
        if n:
            self._pending.append(chunk)

    def add_sample(self, frames_root_first: Iterable[Frame], thread: int = 0, time_ns: int = 0,
                   weight: int = 1, cpu_ns: int = 0, flags: int = 0,
                   labels: Mapping[str, str] | None = None) -> None:
        """Convenience for hand-made models and tests: one sample from Frame objects."""
        sid = self.intern_stack(self.intern_frame(f) for f in frames_root_first)
        lid = self.intern_labels(labels) if labels else 0
        self.add_samples([sid], [thread], [time_ns], [weight], [cpu_ns], [flags], [lid])

    def _column(self, name: str) -> np.ndarray:
        if self._pending:
            for k in _COLUMNS:
                self._cols[k] = np.concatenate([self._cols[k]] + [c[k] for c in self._pending])
            self._pending.clear()
        return self._cols[name]

    @property
    def stack(self) -> np.ndarray:
        return self._column("stack")

    @property
    def thread(self) -> np.ndarray:
        return self._column("thread")

    @property
    def time_ns(self) -> np.ndarray:
        return self._column("time_ns")

    @property
    def weight(self) -> np.ndarray:
        return self._column("weight")

    @property
    def cpu_ns(self) -> np.ndarray:
        return self._column("cpu_ns")

    @property
    def flags(self) -> np.ndarray:
        return self._column("flags")

    @property
    def labels(self) -> np.ndarray:
        return self._column("labels")

    @property
    def depth(self) -> np.ndarray:
        return self._column("depth")

    def __len__(self) -> int:
        return int(self.stack.shape[0])

    # ------------------------------------------------------------------ views
    @property
    def interval_ns(self) -> int:
        return round(float(self.meta.get("interval", 0.01)) * 1e9)

    def sample_ns(self) -> np.ndarray:
        """Nanoseconds each sample stands for: ``weight * interval``."""
        return self.weight * self.interval_ns

    def stack_weights(self) -> np.ndarray:
        """Total weight per stack id (length ``len(stacks)``)."""
        return np.bincount(self.stack, weights=self.weight, minlength=len(self.stacks)).astype(np.int64)

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
        return int(self.weight.sum())

    # ------------------------------------------------------------------ transforms
    def filter(self, mask: npt.ArrayLike | None = None, *, thread: int | None = None,
               labels: Mapping[str, str] | None = None, start_ns: int | None = None,
               end_ns: int | None = None) -> ProfileData:
        """A new ProfileData with only the selected samples (tables are shared copies)."""
        keep = self.select_mask(thread=thread, labels=labels, start_ns=start_ns, end_ns=end_ns)
        if mask is not None:
            keep &= np.asarray(mask, dtype=bool)
        out = self._copy_tables()
        out._cols = {k: self._column(k)[keep].copy() for k in _COLUMNS}
        return out

    def select_mask(self, *, thread: int | None = None, labels: Mapping[str, str] | None = None,
                    start_ns: int | None = None, end_ns: int | None = None) -> np.ndarray:
        """Boolean mask of the samples of ``thread``, carrying all of ``labels``,
        taken in ``[start_ns, end_ns)``.  Only label sets that selected samples
        use are examined, so it stays cheap when label sets number in the
        thousands (one per span, say)."""
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
            for lid in np.unique(self.labels[keep]).tolist():
                ls = self.label_sets[lid]
                ok[lid] = all(ls.get(k) == v for k, v in want.items())
            keep &= ok[self.labels]
        return keep

    def trim_roots(self, is_wrapper: Callable[[Frame], bool]) -> ProfileData:
        """A copy where leading (root-side) frames matching ``is_wrapper`` are
        removed from every stack, e.g. the profiler's own launcher frames.
        A stack made only of wrapper frames keeps its leaf."""
        out = self._copy_tables()
        out.stacks, out._stack_ids = [], {}
        remap = np.zeros(max(len(self.stacks), 1), dtype=np.int64)
        for sid, stack in enumerate(self.stacks):
            i = 0
            while i < len(stack) - 1 and is_wrapper(self.frames[stack[i]]):
                i += 1
            remap[sid] = out.intern_stack(stack[i:])
        out._cols = {k: self._column(k).copy() for k in _COLUMNS}
        out._cols["stack"] = remap[self._column("stack")].astype(np.int32)
        return out

    def _copy_tables(self) -> ProfileData:
        out = ProfileData(json.loads(json.dumps(self.meta)))
        out.frames = list(self.frames)
        out.stacks = list(self.stacks)
        out.label_sets = [dict(d) for d in self.label_sets]
        out.threads = dict(self.threads)
        out._frame_ids = dict(self._frame_ids)
        out._stack_ids = dict(self._stack_ids)
        out._label_ids = dict(self._label_ids)
        return out

    def copy(self) -> ProfileData:
        return self.filter()

    def merge(self, other: ProfileData) -> None:
        """Append another profile's samples into this one (re-interning its tables)."""
        fmap = np.array([self.intern_frame(f) for f in other.frames] or [0], dtype=np.int64)
        smap = np.array([self.intern_stack(int(fmap[f]) for f in st) for st in other.stacks] or [0],
                        dtype=np.int64)
        lmap = np.array([self.intern_labels(ls) for ls in other.label_sets], dtype=np.int64)
        self.threads.update(other.threads)
        if len(other):
            self.add_samples(smap[other.stack], other.thread, other.time_ns, other.weight,
                             other.cpu_ns, other.flags, lmap[other.labels], other.depth)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        def enc(a: np.ndarray) -> str:
            return base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).decode()

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
        cols = {}
        for k, dt in _COLUMNS.items():
            if k not in d["columns"] and k == "depth":  # optional column
                cols[k] = np.zeros(len(base64.b64decode(d["columns"]["stack"])) // 4, dtype=dt)
                continue
            cols[k] = np.frombuffer(base64.b64decode(d["columns"][k]), dtype=np.dtype(dt).newbyteorder("<")).astype(dt)
        n = len(cols["stack"])
        if any(len(c) != n for c in cols.values()):
            raise ValueError("corrupt ringprof profile: columns differ in length")
        if n and (cols["stack"].min() < 0 or cols["stack"].max() >= len(out.stacks)):
            raise ValueError("corrupt ringprof profile: stack id out of range")
        out._cols = cols
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
        with open(path, "rb") as fh:
            raw = fh.read()
        try:
            d = json.loads(gzip.decompress(raw))
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"{os.fspath(path)}: not a ringprof profile ({exc})") from None
        return cls.from_dict(d)


@dataclass
class SamplerStats:
    """Statistics the sampler reports; stored in ``meta['stats']`` as a dict."""

    samples: int = 0
    dropped: int = 0
    handler_ns: int = 0
    rate_per_thread: dict[str, float] = field(default_factory=dict)
