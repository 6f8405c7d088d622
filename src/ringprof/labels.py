"""Sample labels: ``with ringprof.labels(endpoint="/checkout"):``.

Every sample taken on this thread inside the block carries the labels.  The
cost is set at the boundary, never in the signal handler: entering the block
holds the merged label set in a process-wide table (a dict lookup; see
:mod:`ringprof.label_table`, which releases sets no one holds once no
undrained sample can name them) and stores its small integer id in a
thread-local slot of the native sampler; the handler copies that integer into
each record.  The drain maps ids back to label dicts.

Labels are per OS thread.  In asyncio code, set them around code that does
not ``await``, or they apply to whatever task runs on the thread meanwhile.

This module is imported by ``import ringprof`` (``ringprof.labels`` is the
function below), so it imports nothing beyond :mod:`ringprof.label_table` until used.
"""

from __future__ import annotations

from .label_table import acquire, intern, lookup, release

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any

__all__ = ["current", "intern", "labels", "lookup"]


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

    __slots__ = ("_held", "_previous", "_values")

    def __init__(self, **values: object) -> None:
        self._values = {str(k): str(v) for k, v in values.items()}
        self._previous = 0
        self._held = -1  # the label set id this block holds while entered

    def __enter__(self) -> dict[str, str]:
        native = _core()
        if native is None:
            return dict(self._values)
        self._previous = int(native.get_thread_label())
        merged = {**lookup(self._previous), **self._values}
        self._held = acquire(merged)  # held before any sample can name it
        native.set_thread_label(self._held)
        return merged

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        native = _core()
        if native is not None:
            native.set_thread_label(self._previous)
        if self._held >= 0:
            held, self._held = self._held, -1
            release(held)  # after the thread stopped naming it
