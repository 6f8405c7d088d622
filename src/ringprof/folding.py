"""Folding: how a recording left on for days stays bounded.

A recording with a sample cap (``Profile(max_samples=...)``, also
``ringprof.start(max_samples=...)``; default :data:`DEFAULT_MAX_SAMPLES`)
keeps its newest samples as they were taken.  When more than the cap are
kept, the oldest are **folded**: every folded sample is added into one row per
(stack, thread, label set, flags, depth), which keeps the sum of the weights,
the sum of the CPU ns, the number of samples and the time of the newest of
them.  Only the time of each sample is lost; a coarse histogram of the folded
weight over time (at most :data:`HISTOGRAM_BUCKETS` buckets, each a power of
two times one second wide) keeps its shape.

Folded rows read as ordinary samples (``flags`` has :data:`FLAG_FOLDED`,
``time_ns`` is the newest folded time of the row), so every exporter and
reader handles a folded recording, and the weight per stack, thread and
label set is exactly what it was before folding.  ``meta["folded"]`` records
that folding happened, from when and what it holds (:meth:`FoldedSamples.meta`).

Memory: the folded part holds one row per distinct (stack, thread, label set,
flags, depth), about 200 bytes each, however long the recording runs; with
label values that never repeat (a request id) it grows with them.
"""

from __future__ import annotations

import array
import sys
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULT_MAX_SAMPLES", "FLAG_FOLDED", "HISTOGRAM_BUCKETS", "FoldedSamples"]

#: Samples a recording keeps unfolded by default (about 10-21 MiB of columns).
DEFAULT_MAX_SAMPLES = 1_000_000
#: A folded row: the aggregate of older samples, not one sample.
FLAG_FOLDED = 0x40
#: Most buckets of the folded weight's time histogram.
HISTOGRAM_BUCKETS = 256
_FIRST_BUCKET_NS = 1_000_000_000


class FoldedSamples:
    """The folded part of a recording (see the module docstring)."""

    def __init__(self) -> None:
        # (stack, thread, labels, flags | FLAG_FOLDED, depth) -> [weight, cpu_ns, samples, newest time_ns]
        self._rows: dict[tuple[int, int, int, int, int], list[int]] = {}
        self.samples = 0
        self.weight = 0
        self.folds = 0
        self.oldest_ns: int | None = None
        self.newest_ns: int | None = None
        self.first_fold_time: float | None = None
        self._hist_start = 0
        self._bucket_ns = _FIRST_BUCKET_NS
        self._hist: list[int] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, cols: Mapping[str, array.array[int]]) -> None:
        """Fold samples given as decoded columns (see :mod:`ringprof.sample_store`)."""
        times, weights = cols["time_ns"], cols["weight"]
        if not len(times):
            return
        rows = self._rows
        for sid, tid, t, w, cpu, flags, lid, depth in zip(
                cols["stack"], cols["thread"], times, weights, cols["cpu_ns"], cols["flags"], cols["labels"],
                cols["depth"], strict=True):
            key = (sid, tid, lid, flags | FLAG_FOLDED, depth)
            row = rows.get(key)
            if row is None:
                rows[key] = [w, cpu, 1, t]
            else:
                row[0] += w
                row[1] += cpu
                row[2] += 1
                if t > row[3]:
                    row[3] = t
        self._add_histogram(times, weights)
        lo, hi = min(times), max(times)
        self.oldest_ns = lo if self.oldest_ns is None else min(self.oldest_ns, lo)
        self.newest_ns = hi if self.newest_ns is None else max(self.newest_ns, hi)
        self.samples += len(times)
        self.weight += sum(weights)
        self.folds += 1
        if self.first_fold_time is None:
            self.first_fold_time = time.time()

    def _add_histogram(self, times: array.array[int], weights: array.array[int]) -> None:
        hist = self._hist
        if not hist:
            self._hist_start = min(times) // self._bucket_ns * self._bucket_ns
            hist.append(0)
        start = self._hist_start
        while max(times) >= start + self._bucket_ns * HISTOGRAM_BUCKETS:
            # Twice as wide: merge neighbours.
            hist[:] = [sum(hist[i:i + 2]) for i in range(0, len(hist), 2)]
            self._bucket_ns *= 2
        bucket = self._bucket_ns
        for t, w in zip(times, weights, strict=True):
            i = max(0, (t - start) // bucket)  # a late sample older than the first fold: first bucket
            if i >= len(hist):
                hist.extend([0] * (i + 1 - len(hist)))
            hist[i] += w

    def column(self, name: str, typecode: str) -> array.array[int]:
        """The folded rows' column ``name`` (row order: first folded first)."""
        index = {"stack": 0, "thread": 1, "labels": 2, "flags": 3, "depth": 4}.get(name)
        if index is not None:
            return array.array(typecode, [key[index] for key in self._rows])
        slot = {"weight": 0, "cpu_ns": 1, "time_ns": 3}[name]
        return array.array(typecode, [row[slot] for row in self._rows.values()])

    def meta(self, max_samples: int | None) -> dict[str, Any]:
        """What ``meta["folded"]`` says (JSON-serialisable)."""
        return {
            "max_samples": max_samples,
            "samples": self.samples,
            "weight": self.weight,
            "rows": len(self._rows),
            "folds": self.folds,
            "since": self.first_fold_time,  # unix time of the first fold
            "oldest_ns": self.oldest_ns,  # monotonic, as the time_ns column
            "newest_ns": self.newest_ns,  # every sample taken up to here may be folded
            "histogram": {"start_ns": self._hist_start, "bucket_ns": self._bucket_ns, "weight": list(self._hist)},
        }

    def nbytes(self) -> int:
        """Approximate bytes held (rows, their lists and ints, the histogram)."""
        return sys.getsizeof(self._rows) + len(self._rows) * 200 + sys.getsizeof(self._hist)
