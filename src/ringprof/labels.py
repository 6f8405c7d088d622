"""Sample labels: ``with ringprof.labels(endpoint="/checkout"):``.

Every sample taken on this thread inside the block carries the labels.  The
cost is set at the boundary, never in the signal handler: entering the block
holds the merged label set in a process-wide table (a dict lookup; see
:mod:`ringprof.label_table`, which releases sets no one holds once no
undrained sample can name them) and stores its small integer id in a
thread-local slot of the native sampler; the handler copies that integer into
each record.  The drain maps ids back to label dicts.

Labels belong to the running context: a thread, or an asyncio task.  The
block also records its label state in a context variable (:func:`state_var`),
which follows an asyncio task across its awaits and is inherited by the tasks
created inside the block; while a recording runs, :mod:`ringprof.asyncio_tasks`
sets the thread's slot from it at every task step (and adds the ``task`` and
``task_id`` labels).  The sets a state names are held (see :class:`Hold`) as
long as some context refers to the state, so a task may outlive the block it
was created in.

This module is imported by ``import ringprof`` (``ringprof.labels`` is the
function below), so it imports nothing beyond :mod:`ringprof.label_table` until used.
"""

from __future__ import annotations

import _thread

from .label_table import acquire, intern, lookup, release_soon, take_deferred

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _contextvars
    import weakref
    from collections.abc import Iterable
    from types import TracebackType
    from typing import Any, TypeAlias

    #: (weak reference to the task whose ``task`` labels ``label`` carries, or
    #: None; ``label``: the id the thread's slot holds while the context runs;
    #: ``user``: the id without the task's labels; the :class:`Hold` keeping
    #: both alive).
    LabelState: TypeAlias = "tuple[weakref.ref[Any] | None, int, int, Hold]"

__all__ = ["Hold", "current", "intern", "labels", "lookup", "state_var"]

_state: _contextvars.ContextVar[LabelState] | None = None
_state_lock = _thread.allocate_lock()


def state_var() -> _contextvars.ContextVar[LabelState]:
    """The context variable holding the label state of the running context (a
    thread's, or an asyncio task's).  Made on first use: ``_contextvars`` is
    not imported by ``import ringprof``."""
    global _state
    var = _state
    if var is None:
        with _state_lock:
            if _state is None:
                import _contextvars

                _state = _contextvars.ContextVar("ringprof_labels")
            var = _state
    return var

TASK_KEYS = ("task", "task_id")


class Hold:
    """Holds label sets (taken with :func:`~ringprof.label_table.acquire`)
    for as long as it lives -- it lives in label states (:func:`state_var`), which
    contexts share -- and, through ``keep``, the hold of the state it was
    derived from.  Released when collected (deferred: a finalizer must not
    take the table's lock)."""

    __slots__ = ("ids", "keep")

    def __init__(self, ids: Iterable[int], keep: Hold | None = None) -> None:
        self.ids = tuple(ids)
        self.keep = keep

    def __del__(self) -> None:
        try:
            for lid in self.ids:
                release_soon(lid)
        except Exception:  # interpreter shutdown: nothing left to release
            pass


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
    """Attach labels to every sample taken in this thread or asyncio task
    inside the block (across its awaits, and in tasks it creates there).

    Nested blocks merge, the inner value winning; the outer set is restored on
    exit, also when the block raises.  ``as`` gives the merged labels.
    """

    __slots__ = ("_previous", "_previous_state", "_token", "_values")

    def __init__(self, **values: object) -> None:
        self._values = {str(k): str(v) for k, v in values.items()}
        self._previous = 0
        self._previous_state: LabelState | None = None
        self._token: _contextvars.Token[LabelState] | None = None

    def __enter__(self) -> dict[str, str]:
        native = _core()
        if native is None:
            return dict(self._values)
        self._previous = previous = int(native.get_thread_label())
        var = _state if _state is not None else state_var()
        self._previous_state = state = var.get(None)
        merged = {**lookup(previous), **self._values}
        label = acquire(merged)  # held before any sample can name it
        keep = state[3] if state is not None else None
        if state is not None and state[0] is not None and state[1] == previous:
            # A step of the task this context belongs to: ``merged`` carries its
            # task labels; ``user`` (for callbacks of this context) does not.
            user = acquire({k: v for k, v in merged.items() if k not in TASK_KEYS})
            self._token = var.set((state[0], label, user, Hold((label, user), keep)))
        else:
            self._token = var.set((None, label, label, Hold((label,), keep)))
        native.set_thread_label(label)
        return merged

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        native = _core()
        if native is None:
            return
        native.set_thread_label(self._previous)  # before the set can be released
        token, self._token = self._token, None
        if token is not None:
            var = state_var()
            try:
                var.reset(token)
            except (ValueError, RuntimeError):  # exited in another context than entered
                previous = self._previous_state
                if previous is not None:
                    var.set(previous)
                else:
                    var.set((None, self._previous, self._previous, Hold(())))
        self._previous_state = None
        take_deferred()  # the block's sets go now if no task it created still uses them
