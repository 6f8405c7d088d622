"""Convert a :class:`~ringprof.model.ProfileData` to cProfile's pstats format.

This is the **one** pstats converter of ringprof: ``Profile.create_stats``,
``dump_stats``, ``print_stats``, the CLI's cProfile-style report and the
``.prof`` / ``.pstats`` exporter all go through :func:`to_stats_dict`, so every
view of a profile agrees on the numbers.

The pstats format is a ``marshal``'d dict (exactly what
:meth:`pstats.Stats.dump_stats` and :meth:`cProfile.Profile.dump_stats` write)::

    {(filename, firstlineno, funcname): (cc, nc, tt, ct, callers)}
    callers = {(filename, firstlineno, funcname): (nc, cc, tt, ct)}

Note the two tuples order the counts differently (``cc, nc`` for a function,
``nc, cc`` for a caller edge): that is how ``cProfile.Profile.snapshot_stats``
builds them and how pstats, snakeviz and gprof2dot read them.

A sampler sees stacks, not calls, so the counts are **sample counts**, weighted
(a sample of weight *w* stands for *w* timer expirations, ``w * interval``
seconds). They are defined so that pstats' "calls/primitive calls" display and
its recursion marker keep their meaning. For a function *f*, summed over all
samples:

``nc``  ("ncalls", total)
    weight x number of frames of *f* in the sample's stack. A recursive
    function counts once per active frame, like cProfile counts every call.
``cc``  ("primitive" calls)
    weight of the samples in which *f* is on the stack at all (recursion
    counted once). ``nc != cc`` exactly when recursion of *f* was sampled, and
    pstats then prints ``nc/cc`` just as it does for cProfile's recursive calls.
``tt``  (tottime, seconds)
    ``weight * interval`` of the samples whose leaf (innermost) frame is *f*.
``ct``  (cumtime, seconds)
    ``weight * interval`` of the samples in which *f* is on the stack,
    recursion counted once per sample; hence ``ct == cc * interval``.

For a caller edge *g -> f* (*g*'s frame directly above *f*'s frame):

``nc``  weight x number of adjacent (*g*, *f*) frame pairs in the stack;
``cc``  weight of the samples containing at least one such pair;
``tt``  ``weight * interval`` of the samples whose leaf is *f* called by *g*;
``ct``  ``cc * interval`` (the pair counted once per sample, as cProfile counts
        a caller->callee edge only at its outermost level of recursion).

So the edges' ``tt`` into *f* add up to *f*'s ``tt`` and, without recursion,
their ``ct`` add up to *f*'s ``ct`` -- except for samples where *f* is the
outermost sampled frame, which have no caller (cProfile's top-level calls have
none either). "percall" columns divide seconds by sample counts and so carry no
information; the header's "N function calls" is the total of ``nc``.

Keys are ``Frame.function_key`` = ``(co_filename, co_firstlineno, name)`` with
the *qualified* name (``Class.method``; cProfile uses the bare ``co_name``).
Synthetic frames (empty filename: ``<truncated>``, ``<dropped>``, ...) become
``('~', 0, name)``, the key cProfile uses for built-in functions, which pstats
prints as ``{truncated}``. Samples with an empty stack carry no function and
are left out. An empty profile yields the single entry
``('~', 0, '<no samples>')`` with zero counts, because :class:`pstats.Stats`
refuses to load an empty dict.
"""

from __future__ import annotations

import itertools
import marshal
from typing import Any

from ringprof.model import ProfileData

__all__ = [
    "EXTENSIONS",
    "NO_SAMPLES_KEY",
    "CallerStats",
    "FuncKey",
    "FuncStats",
    "StatsDict",
    "render",
    "to_stats_dict",
]

#: File name extensions this exporter is chosen for.
EXTENSIONS = (".prof", ".pstats")

FuncKey = tuple[str, int, str]
"""``(filename, firstlineno, funcname)``, cProfile's function key."""

CallerStats = tuple[int, int, float, float]
"""``(nc, cc, tt, ct)`` of one caller -> callee edge."""

FuncStats = tuple[int, int, float, float, dict[FuncKey, CallerStats]]
"""``(cc, nc, tt, ct, callers)`` of one function."""

StatsDict = dict[FuncKey, FuncStats]
"""What ``pstats.Stats.stats`` holds and ``marshal`` writes."""

#: The placeholder entry of an empty profile (pstats cannot load ``{}``).
NO_SAMPLES_KEY: FuncKey = ("~", 0, "<no samples>")


def _key_of(filename: str, firstlineno: int, name: str) -> FuncKey:
    """cProfile-style key; synthetic frames (no filename) look like builtins."""
    if not filename:
        return ("~", 0, name)
    return (filename, int(firstlineno), name)


def to_stats_dict(data: ProfileData) -> StatsDict:
    """Build the pstats dict of ``data`` (see the module docstring for semantics).

    Works per distinct stack (weights summed with ``stack_weights``), so the cost
    is proportional to the number of distinct stacks times their depth, not to
    the number of samples. Times are accumulated in integer nanoseconds and
    converted to seconds once, so hand-computed expectations match exactly.
    """
    interval_ns = data.interval_ns
    # frame id -> function key index; several frames (lines) share a function.
    keys: list[FuncKey] = []
    key_index: dict[FuncKey, int] = {}
    frame_fn: list[int] = []
    for frame in data.frames:
        key = _key_of(frame.filename, frame.firstlineno, frame.name)
        idx = key_index.get(key)
        if idx is None:
            idx = key_index[key] = len(keys)
            keys.append(key)
        frame_fn.append(idx)

    n_fn = len(keys)
    nc = [0] * n_fn
    cc = [0] * n_fn
    self_w = [0] * n_fn
    # callee -> caller -> [nc, cc, leaf weight]
    edges: list[dict[int, list[int]]] = [{} for _ in range(n_fn)]

    for sid, w in enumerate(data.stack_weights().tolist()):
        if not w:
            continue
        fns = [frame_fn[f] for f in data.stacks[sid]]
        if not fns:
            continue
        for fn in fns:
            nc[fn] += w
        for fn in set(fns):
            cc[fn] += w
        self_w[fns[-1]] += w
        pairs = list(itertools.pairwise(fns))
        for caller, callee in pairs:
            edges[callee].setdefault(caller, [0, 0, 0])[0] += w
        for caller, callee in set(pairs):
            edges[callee][caller][1] += w
        if pairs:
            caller, callee = pairs[-1]
            edges[callee][caller][2] += w

    out: StatsDict = {}
    for fn, key in enumerate(keys):
        if not nc[fn]:
            continue  # a frame of a stack that has no weight
        callers: dict[FuncKey, CallerStats] = {
            keys[caller]: (e_nc, e_cc, e_leaf * interval_ns / 1e9, e_cc * interval_ns / 1e9)
            for caller, (e_nc, e_cc, e_leaf) in edges[fn].items()
        }
        out[key] = (cc[fn], nc[fn], self_w[fn] * interval_ns / 1e9, cc[fn] * interval_ns / 1e9, callers)
    if not out:
        out[NO_SAMPLES_KEY] = (0, 0, 0.0, 0.0, {})
    return out


def render(data: ProfileData, **options: Any) -> bytes:
    """The ``.prof`` file content: ``marshal.dumps`` of :func:`to_stats_dict`.

    The same serialisation ``pstats.Stats.dump_stats`` writes, so
    ``pstats.Stats(path)``, snakeviz and gprof2dot load it. ``marshal`` output
    is tied to the Python version that reads it, as for cProfile's own files.
    The result is deterministic (same input, same bytes), as the exporter
    registry requires. ``options`` is there for the registry's common
    signature; the pstats format has none, so any given is an error rather than
    silently ignored.
    """
    if options:
        raise ValueError(f"the pstats format takes no options (got {', '.join(sorted(options))})")
    return marshal.dumps(to_stats_dict(data))
