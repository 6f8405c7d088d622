"""Sample labels: ``with ringprof.labels(endpoint="/checkout"):``.

Every sample taken on this thread inside the block carries the labels.  The
cost is set at the boundary, never in the signal handler: entering the block
interns the merged label set into a process-wide table (a dict lookup) and
stores its small integer id in a thread-local slot of the native sampler; the
handler copies that integer into each record.  The drain maps ids back to
label dicts.

Labels belong to the running context: a thread, or an asyncio task.  The
block also records its label id in the :data:`STATE` context variable, which
follows an asyncio task across its awaits and is inherited by the tasks
created inside the block; while a recording runs, :mod:`ringprof.asyncio_tasks`
sets the thread's slot from it at every task step (and adds the ``task`` and
``task_id`` labels).

This module is imported by ``import ringprof`` (``ringprof.labels`` is the
function below), so it imports nothing beyond ``_thread`` and
``_contextvars`` until used.
"""

from __future__ import annotations

import _contextvars
import _thread

TYPE_CHECKING = False
if TYPE_CHECKING:
    import weakref
    from collections.abc import Mapping
    from types import TracebackType
    from typing import Any, TypeAlias

    #: (weak reference to the task whose ``task`` labels ``label`` carries, or
    #: None; ``label``: the id the thread's slot holds while the context runs;
    #: ``user``: the id without the task's labels).
    LabelState: TypeAlias = "tuple[weakref.ref[Any] | None, int, int]"

# Intern table: append-only, so ids stay valid for the life of the process.
_sets: list[dict[str, str]] = [{}]
_ids: dict[tuple[tuple[str, str], ...], int] = {(): 0}
_lock = _thread.allocate_lock()

#: The label state of the running context (a thread's, or an asyncio task's).
STATE: _contextvars.ContextVar[LabelState] = _contextvars.ContextVar("ringprof_labels")


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
        self._previous_state = state = STATE.get(None)
        merged = {**lookup(previous), **self._values}
        label = intern(merged)
        if state is not None and state[0] is not None and state[1] == previous:
            # A step of the task this context belongs to: ``merged`` carries its
            # task labels; ``user`` (for callbacks of this context) does not.
            user = intern({k: v for k, v in merged.items() if k not in ("task", "task_id")})
            self._token = STATE.set((state[0], label, user))
        else:
            self._token = STATE.set((None, label, label))
        native.set_thread_label(label)
        return merged

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        native = _core()
        if native is None:
            return
        native.set_thread_label(self._previous)
        token, self._token = self._token, None
        if token is not None:
            try:
                STATE.reset(token)
            except (ValueError, RuntimeError):  # exited in another context than entered
                previous = self._previous_state
                STATE.set(previous if previous is not None else (None, self._previous, self._previous))
