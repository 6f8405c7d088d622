"""Sample labels: ``with ringprof.labels(endpoint="/checkout"):``.

Every sample taken on this thread inside the block carries the labels.  The
cost is set at the boundary, never in the signal handler: entering the block
interns the merged label set into a process-wide table (a dict lookup) and
stores its small integer id in a thread-local slot of the native sampler; the
handler copies that integer into each record.  The drain maps ids back to
label dicts.

Labels are per OS thread.  In asyncio code, set them around code that does
not ``await``, or they apply to whatever task runs on the thread meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# Intern table: append-only, so ids stay valid for the life of the process.
_sets: list[dict[str, str]] = [{}]
_ids: dict[tuple[tuple[str, str], ...], int] = {(): 0}
_lock = threading.Lock()


def intern(labels: Mapping[str, str]) -> int:
    """The id of a label set (0 for the empty set)."""
    key = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
    lid = _ids.get(key)
    if lid is None:
        with _lock:
            lid = _ids.get(key)
            if lid is None:
                lid = len(_sets)
                _sets.append(dict(key))
                _ids[key] = lid
    return lid


def lookup(label_id: int) -> dict[str, str]:
    """The label set of an id; unknown ids read as no labels."""
    return _sets[label_id] if 0 <= label_id < len(_sets) else {}


def current() -> dict[str, str]:
    """Labels active on the calling thread."""
    from . import _native

    return dict(lookup(int(_native.load().get_thread_label())))


@contextmanager
def labels(**values: object) -> Iterator[dict[str, str]]:
    """Attach labels to every sample taken on this thread inside the block.

    Nested blocks merge, the inner value winning; the outer set is restored on
    exit, also when the block raises.
    """
    from . import _native

    native = _native.load()
    previous = int(native.get_thread_label())
    merged = {**lookup(previous), **{str(k): str(v) for k, v in values.items()}}
    native.set_thread_label(intern(merged))
    try:
        yield merged
    finally:
        native.set_thread_label(previous)
