"""Labels that follow asyncio tasks, and the ``task``/``task_id`` labels.

The signal handler copies one integer per thread into every sample: the
thread's label-set id (see :mod:`ringprof.labels`).  An event loop runs many
tasks on one thread, so that integer must change at every task switch.  This
module does it at the one place every task step of the standard event loop
goes through, :meth:`asyncio.Handle._run` (pure Python on CPython 3.11-3.15):
while recording, ``Handle._run`` is wrapped by :func:`_run`, which

1. reads the label state of the handle's :class:`contextvars.Context` (the
   task's context for a task step; ``ringprof.labels()`` keeps it in the
   :data:`STATE` context variable, so it follows the task across awaits and
   is inherited by tasks created inside a ``labels()`` block);
2. when the handle steps (or wakes) an :class:`asyncio.Task`, makes sure
   that state carries the task's labels ``task`` (``Task.get_name()`` at the
   task's first labelled step) and ``task_id`` (a process-wide counter, one
   per task object) -- computed once per task and stored in the task's own
   context, so later steps only compare one reference;
3. sets the thread's label id for the duration of the step and restores the
   loop's own afterwards.  A label changed directly during the step (an
   OpenTelemetry span started and not yet ended) is kept in the task's context
   for its next steps.

Nothing here runs in the signal handler.  Callbacks that are not task steps
(``call_soon``, timers, done callbacks) carry the user labels of their context
but no ``task`` label: no task runs then.

The wrapper is installed while the sampler runs (:func:`enable`, called by
:mod:`ringprof.sampler`; when asyncio is imported after the recording started,
the drain thread installs it within one drain interval) and removed when the
last recording stops (:func:`disable`).  ``import ringprof`` neither imports
asyncio nor installs anything.

uvloop runs callbacks from its own compiled ``Handle``; there the same
switch is done by a ``call_soon`` set on ``uvloop.Loop`` (see below).

Not covered: the first step of an *eager* task (3.12+
``asyncio.eager_task_factory``) runs inside ``create_task``, not through a
handle, so until its first suspension it carries its creator's labels; other
event loops get no task labels, and ``labels()`` blocks there apply to the
thread until they exit.
"""

from __future__ import annotations

import contextvars
import itertools
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

from .label_table import acquire
from .labels import TASK_KEYS, Hold, lookup, state_var

if TYPE_CHECKING:
    from .labels import LabelState

#: The label state of the running context (see :func:`ringprof.labels.state_var`).
STATE = state_var()

__all__ = ["STATE", "TASK_KEYS", "after_fork_in_child", "disable", "enable", "installed", "poll"]

_lock = threading.Lock()
_wanted = False  # the sampler runs: install as soon as asyncio is imported
_active = False  # our wrapper is Handle._run now
_original: Any = None  # Handle._run as it was before we first wrapped it (kept afterwards)
_handle_class: Any = None
_task_types: tuple[type[Any], ...] = ()
_get_label: Any = None
_set_label: Any = None
_task_ids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_next_task_id = itertools.count(1)


def installed() -> bool:
    """Whether the step hook is installed now."""
    return _active


def enable() -> None:
    """Install the step hook now if asyncio is imported, else as soon as
    :func:`poll` sees it imported (the sampler starts)."""
    global _wanted
    _wanted = True
    poll()


def poll() -> None:
    """Install the hook if it is wanted and asyncio has been imported since
    (cheap: one dictionary lookup when there is nothing to do)."""
    if _wanted and (not _active or (not _uvloop_active and "uvloop" in sys.modules)) \
            and "asyncio.tasks" in sys.modules:
        _install()


def disable() -> None:
    """Remove the step hook (the last recording stopped)."""
    global _wanted, _active
    with _lock:
        _wanted = False
        _uninstall_uvloop()
        if not _active:
            return
        _active = False
        cls = _handle_class
        if cls.__dict__.get("_run") is _run:
            cls._run = _original
        # else someone wrapped us in turn: their wrapper keeps calling ours,
        # which now passes straight through to the original.


def after_fork_in_child() -> None:
    """Remove the hook in a forked child (a recording that follows the fork
    installs it again); the lock may have been held by a thread the child
    does not have."""
    global _lock
    _lock = threading.Lock()
    disable()


def _install() -> None:
    global _active, _original, _handle_class, _task_types, _get_label, _set_label
    from . import _native

    try:
        native = _native.load()
    except (_native.SamplingUnavailable, ImportError):
        return
    events = sys.modules.get("asyncio.events")
    tasks = sys.modules.get("asyncio.tasks")
    if events is None or tasks is None or not hasattr(tasks, "Task"):
        return  # asyncio is still being imported: the next poll installs
    with _lock:
        if not _wanted:
            return
        if _active:
            _install_uvloop()
            return
        cls = events.Handle
        current = cls.__dict__.get("_run")
        if current is None:
            return
        if current is not _run:
            _original = current
        _get_label, _set_label = native.get_thread_label, native.set_thread_label
        _task_types = tuple({t for t in (getattr(tasks, "Task", None), getattr(tasks, "_PyTask", None),
                                         getattr(tasks, "_CTask", None)) if isinstance(t, type)})
        _handle_class = cls
        _active = True
        cls._run = _run
        _install_uvloop()


def _run(handle: Any) -> None:
    """``asyncio.Handle._run`` with the step's label set in the thread's slot."""
    if not _active:  # removed, but a wrapper of someone else still calls us
        return _original(handle)  # type: ignore[no-any-return]
    outer = _get_label()
    ctx = handle._context
    state = ctx.get(STATE, None)
    owner = getattr(handle._callback, "__self__", None)
    if state is not None and state[0] is not None and state[0]() is owner:
        label = state[1]  # a step of the task this context was stamped for: the common case
    elif isinstance(owner, _task_types):
        label = _resolve(ctx, state, owner, outer)  # its first step (or a shared context)
    else:
        label = outer if state is None else state[2]  # a plain callback: its context's labels, no task
    if label != outer:
        _set_label(label)
    try:
        _original(handle)
    finally:
        left = _get_label()
        if left != label:
            _keep(ctx, owner, left)
        if left != outer:
            _set_label(outer)
    return None


def task_id(task: Any) -> int:
    """The task's ``task_id`` label: a process-wide counter, one per task,
    stable for its life (``id()`` values are reused).  The async view
    (:mod:`ringprof.async_wait`) labels waiting samples with the same id."""
    found = _task_ids.get(task)
    if found is None:
        found = _task_ids[task] = next(_next_task_id)
    return found


def _resolve(ctx: contextvars.Context | None, state: LabelState | None, owner: Any, outer: int) -> int:
    """The label of a step of the task ``owner`` whose context is not stamped
    for it (yet), stamped now."""
    user = state[2] if state is not None else outer
    try:
        label = acquire({**lookup(user), "task": str(owner.get_name()), "task_id": str(task_id(owner))})
    except Exception:  # a Task subclass that misbehaves must not break the loop
        return user
    # Held while the task's context (or one copied from it) refers to it; the
    # hold of the state it came from keeps ``user`` alive.
    _store(ctx, (weakref.ref(owner), label, user, Hold((label,), state[3] if state is not None else None)))
    return label


def _keep(ctx: contextvars.Context | None, owner: Any, left: int) -> None:
    """The step left another label than it started with: keep it for the
    context's next steps, unless ``ringprof.labels()`` already recorded it
    (or the step was a callback run in a task's context, not the task)."""
    state = ctx.get(STATE, None) if ctx is not None else STATE.get(None)
    if state is not None and state[1] == left:
        return
    # ``left`` was set by code that holds it (the span processor pins its sets).
    keep = state[3] if state is not None else None
    if state is None or state[0] is None:
        _store(ctx, (None, left, left, Hold((), keep)))
    elif state[0]() is owner:
        user = acquire({k: v for k, v in lookup(left).items() if k not in TASK_KEYS})
        _store(ctx, (state[0], left, user, Hold((user,), keep)))


def _store(ctx: contextvars.Context | None, state: LabelState) -> None:
    """Set the label state of ``ctx`` (None: the running context)."""
    if ctx is None:
        STATE.set(state)
        return
    try:
        ctx.run(STATE.set, state)
    except RuntimeError:  # the context is entered (a nested loop): recomputed next time
        pass


# ---------------------------------------------------------------------- uvloop
# uvloop runs callbacks from its own compiled Handle, so the wrapper above never
# runs there.  But asyncio's (C) Task and Future schedule their steps, wake-ups
# and done callbacks through a *Python-level* ``loop.call_soon`` lookup, and
# ``uvloop.Loop`` is a Python subclass of the compiled loop: a ``call_soon`` set
# on it sees every task step and wake-up and schedules :func:`_task_step` with
# the original callback as its first argument: it does what :func:`_run` does,
# from inside the task's context.


def _task_step(callback: Any, *args: Any) -> Any:
    """Run a task's step or wake-up ``callback`` (scheduled through uvloop) with
    the task's label set; we run inside the task's context already."""
    if not _uvloop_active:
        return callback(*args)
    outer = _get_label()
    task = callback.__self__
    state = STATE.get(None)
    if state is not None and state[0] is not None and state[0]() is task:
        label = state[1]
    else:
        label = _resolve(None, state, task, outer)
    if label != outer:
        _set_label(label)
    try:
        return callback(*args)
    finally:
        left = _get_label()
        if left != label:
            _keep(None, task, left)
        if left != outer:
            _set_label(outer)


_uvloop_active = False
_uvloop_class: Any = None
_uvloop_call_soon: Any = None  # the compiled loop's call_soon


def _call_soon(self: Any, callback: Any, *args: Any, context: Any = None) -> Any:
    """``uvloop.Loop.call_soon`` that runs task steps and wake-ups through :func:`_task_step`."""
    if _uvloop_active and isinstance(getattr(callback, "__self__", None), _task_types):
        return _uvloop_call_soon(self, _task_step, callback, *args, context=context)
    return _uvloop_call_soon(self, callback, *args, context=context)


def _install_uvloop() -> None:
    """Set :func:`_call_soon` on ``uvloop.Loop`` (lock held, asyncio hook installed)."""
    global _uvloop_active, _uvloop_class, _uvloop_call_soon
    module = sys.modules.get("uvloop")
    cls = getattr(module, "Loop", None)
    if not isinstance(cls, type) or "call_soon" in cls.__dict__:
        return  # not imported (yet), half imported, or someone else's call_soon is there
    base = getattr(cls, "call_soon", None)
    if base is None:
        return
    _uvloop_class, _uvloop_call_soon = cls, base
    _uvloop_active = True
    setattr(cls, "call_soon", _call_soon)  # noqa: B010 (cls is a plain type to mypy)


def _uninstall_uvloop() -> None:
    global _uvloop_active
    if _uvloop_active:
        _uvloop_active = False
        if _uvloop_class.__dict__.get("call_soon") is _call_soon:
            delattr(_uvloop_class, "call_soon")
