"""Sample labels: ``with ringprof.labels(endpoint="/checkout"):``.

Every sample taken on this thread inside the block carries the labels.  The
cost is set at the boundary, never in the signal handler: entering the block
interns the merged label set into a process-wide table (a dict lookup) and
stores its small integer id in a thread-local slot of the native sampler; the
handler copies that integer into each record.  The drain maps ids back to
label dicts.

Labels are per OS thread.  In asyncio code, set them around code that does
not ``await``, or they apply to whatever task runs on the thread meanwhile.

This module is imported by ``import ringprof`` (``ringprof.labels`` is the
function below), so it imports nothing beyond ``_thread`` until used.
"""

from __future__ import annotations

import _thread

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType
    from typing import Any

# Intern table: append-only, so ids stay valid for the life of the process.
_sets: list[dict[str, str]] = [{}]
_ids: dict[tuple[tuple[str, str], ...], int] = {(): 0}
_lock = _thread.allocate_lock()


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


def _core() -> Any:
    """The native core, or None where this interpreter cannot be sampled or is
    a sub-interpreter (labels then do nothing: they must never raise inside the
    user's code)."""
    from . import _native

    try:
        return _native.load()
    except (_native.SamplingUnavailable, ImportError):
        return None


def current() -> dict[str, str]:
    """Labels active on the calling thread."""
    native = _core()
    return dict(lookup(int(native.get_thread_label()))) if native is not None else {}


class labels:
    """Attach labels to every sample taken on this thread inside the block.

    Nested blocks merge, the inner value winning; the outer set is restored on
    exit, also when the block raises.  ``as`` gives the merged labels.
    """

    __slots__ = ("_previous", "_values")

    def __init__(self, **values: object) -> None:
        self._values = {str(k): str(v) for k, v in values.items()}
        self._previous = 0

    def __enter__(self) -> dict[str, str]:
        native = _core()
        if native is None:
            return dict(self._values)
        self._previous = int(native.get_thread_label())
        merged = {**lookup(self._previous), **self._values}
        native.set_thread_label(intern(merged))
        return merged

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        native = _core()
        if native is not None:
            native.set_thread_label(self._previous)
