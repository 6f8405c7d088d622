"""The process-wide table of label sets: id <-> label dict, and their release.

The native sampler copies a thread's label-set id (a small integer) into each
sample; the drain maps ids back to dicts with :func:`lookup`.  Ids are never
reused.  A set is kept while something may still name it:

* :func:`intern` pins a set for the life of the process (integrations cache
  the ids they set on threads);
* :func:`acquire` / :func:`release` count the users of a set (``with
  ringprof.labels(...)`` holds its merged set while its label state is
  referenced by a context -- the block's, and those of the asyncio tasks
  created inside it: the id is set on the thread after :func:`acquire` and
  unset before :func:`release`); :func:`release_soon` is :func:`release` for
  finalizers.

A set no one holds any more may still be named by samples that are in the
rings, not drained yet.  While the sampler runs it is therefore released only
when a drain pass that **began after** the set's last release has **ended**
(:func:`drain_begins` / :func:`drain_ends`, called by the sampler around each
pass): that pass copied every sample taken under the set and looked its
labels up.  While no sampler runs (:func:`set_sampling`), nothing is in the
rings and an unused set goes at once.  So a sample never names a released
id; :func:`lookup` counts it in ``stats()["late_lookups"]`` if one ever did.

Imports nothing but ``_thread`` and ``os`` (``import ringprof`` imports this module).
"""

from __future__ import annotations

import _thread
import os  # already imported at interpreter start-up

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_Key = tuple[tuple[str, str], ...]

_lock = _thread.allocate_lock()
_sets: dict[int, dict[str, str]] = {0: {}}
_ids: dict[_Key, int] = {(): 0}
_keys: dict[int, _Key] = {0: ()}
_users: dict[int, int] = {}  # id -> holders (acquire - release); absent: none
_pinned: set[int] = {0}
_unused: dict[int, int] = {}  # id -> drain passes begun when it lost its last holder
_next_id = 1
_sampling = False
_passes_begun = 0
_counters = {"released": 0, "late_lookups": 0}
_deferred: list[int] = []  # release_soon(): taken in by the next acquire, release or drain
#: Sets waiting for a drain past which the sampler is asked to drain soon
#: (the drain paces itself by how fast its rings fill, not by this table).
BACKLOG = 2048
_on_backlog: Callable[[], None] | None = None
_backlog_reported = False


def _key(labels: Mapping[str, str]) -> _Key:
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def _insert(key: _Key) -> int:
    """The id of ``key``, interned if new (_lock held)."""
    global _next_id
    lid = _ids.get(key)
    if lid is None:
        lid = _next_id
        _next_id += 1
        _ids[key] = lid
        _keys[lid] = key
        _sets[lid] = dict(key)
    return lid


def intern(labels: Mapping[str, str]) -> int:
    """The id of a label set (0 for the empty set), kept for the life of the process."""
    key = _key(labels)
    lid = _ids.get(key)
    if lid is not None and lid in _pinned:
        return lid
    with _lock:
        lid = _insert(key)
        _pinned.add(lid)
        _unused.pop(lid, None)
    return lid


def acquire(labels: Mapping[str, str]) -> int:
    """The id of a label set, held until :func:`release` (0 for the empty set)."""
    key = _key(labels)
    with _lock:
        lid = _insert(key)
        _users[lid] = _users.get(lid, 0) + 1
        _unused.pop(lid, None)
        _take_deferred()
    return lid


def release_soon(label_id: int) -> None:
    """:func:`release`, from where the lock must not be taken (a ``__del__``,
    which may run inside this module while the lock is held): the hold is
    dropped by the next :func:`acquire`, :func:`release` or drain pass."""
    _deferred.append(label_id)  # atomic under the GIL


def _take_deferred() -> None:
    """Drop the holds :func:`release_soon` deferred (_lock held)."""
    while _deferred:
        _release(_deferred.pop())


def take_deferred() -> None:
    """Drop the holds :func:`release_soon` deferred, now."""
    if _deferred:
        with _lock:
            _take_deferred()


def release(label_id: int) -> None:
    """Drop one hold on ``label_id`` (taken by :func:`acquire`); the set goes
    once no one holds it and no undrained sample can name it."""
    with _lock:
        _release(label_id)
        _take_deferred()


def _release(label_id: int) -> None:
    """Drop one hold (_lock held)."""
    held = _users.get(label_id, 0) - 1
    if held > 0:
        _users[label_id] = held
        return
    _users.pop(label_id, None)
    if label_id in _pinned or label_id not in _sets:
        return
    if _sampling:
        _unused[label_id] = _passes_begun
        if len(_unused) >= BACKLOG:
            _report_backlog()
    else:
        _forget(label_id)


def _report_backlog() -> None:
    """Ask for a drain once per backlog (_lock held; the callback must not take it)."""
    global _backlog_reported
    if not _backlog_reported and _on_backlog is not None:
        _backlog_reported = True
        _on_backlog()


def on_backlog(callback: Callable[[], None] | None) -> None:
    """Call ``callback`` (from any thread, without blocking) when :data:`BACKLOG`
    sets wait for a drain pass to be released; the sampler drains soon then."""
    global _on_backlog
    _on_backlog = callback


def _forget(label_id: int) -> None:
    key = _keys.pop(label_id)
    del _ids[key]
    del _sets[label_id]
    _counters["released"] += 1


def lookup(label_id: int) -> dict[str, str]:
    """The label set of an id; an unknown id reads as no labels."""
    found = _sets.get(label_id)
    if found is None:
        if label_id:
            _counters["late_lookups"] += 1
        return {}
    return found


def set_sampling(active: bool) -> None:
    """The sampler starts (before its first sample) or has stopped (after its
    last drain): when stopped, unused sets go at once."""
    global _sampling
    with _lock:
        _take_deferred()
        _sampling = active
        if not active:
            for lid in list(_unused):
                del _unused[lid]
                _forget(lid)


def drain_begins() -> int:
    """A drain pass is about to copy the rings; returns its token for :func:`drain_ends`."""
    global _passes_begun
    with _lock:
        _take_deferred()  # their sets were unset before now: this pass copies every sample naming them
        _passes_begun += 1
        return _passes_begun


def drain_ends(token: int) -> None:
    """The pass of ``token`` has delivered (looked up) everything it copied:
    release the sets that lost their last holder before it began."""
    global _backlog_reported
    with _lock:
        _backlog_reported = False
        if not _unused:
            return
        done = [lid for lid, began in _unused.items() if began < token]
        for lid in done:
            del _unused[lid]
            _forget(lid)


def contains(label_id: int) -> bool:
    """Is this id's set still in the table?  (Unlike :func:`lookup`, asking
    about a released id is not counted as a late lookup.)"""
    return label_id in _sets


def live_count() -> int:
    """Label sets held now (the empty one included)."""
    return len(_sets)


def stats() -> dict[str, int]:
    """``live`` sets (the empty one included), ``unused`` (waiting for a drain),
    ``released`` so far, ``late_lookups`` (ids looked up after release: 0)."""
    return {"live": len(_sets), "unused": len(_unused), **_counters}


def _after_fork_in_child() -> None:
    """The lock may have been held by a thread that does not exist here; the
    rings start empty in the child, so nothing undrained names a set."""
    global _lock, _sampling
    _lock = _thread.allocate_lock()
    _sampling = False
    for lid in list(_unused):
        del _unused[lid]
        _forget(lid)


os.register_at_fork(after_in_child=_after_fork_in_child)
