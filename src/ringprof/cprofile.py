"""cProfile compatibility: the methods and functions that make ringprof a drop-in.

``import ringprof as cProfile`` must keep code written for :mod:`cProfile`
working: ``Profile().runcall(...)``, ``run``/``runctx``, ``print_stats``,
``dump_stats`` and ``pstats.Stats(profile)``. :class:`CProfileMethods` supplies
those on top of three things the recorder provides -- ``enable()``,
``disable()`` and the ``data`` property -- so the recorder itself stays free of
cProfile's API surface. All numbers come from the single converter
:func:`ringprof.exporters.pstats.to_stats_dict` (its docstring defines what
``ncalls``/``tottime``/``cumtime`` mean for a sampling profiler).

Sorting is pstats' own: every sort key cProfile accepts (``-1``, ``0``..``2``,
names such as ``'cumulative'``, unique prefixes such as ``'file'``, and
:class:`pstats.SortKey` members) is passed through to
:meth:`pstats.Stats.sort_stats` unchanged, so behaviour cannot drift from the
standard library's.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from types import CodeType, MappingProxyType
from typing import IO, TYPE_CHECKING, Any, Literal, NamedTuple, ParamSpec, Self, TypeVar, cast

if TYPE_CHECKING:  # pstats and the converter load when a report is made, not on import
    from ringprof.exporters.pstats import StatsDict
    from ringprof.model import ProfileData

__all__ = [
    "SORT_KEYS",
    "CProfileMethods",
    "CodeLabel",
    "ProfilerEntry",
    "ProfilerSubentry",
    "SortArg",
    "check_sort",
    "print_report",
    "run",
    "runctx",
    "sort_args",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: One sort criterion as :meth:`pstats.Stats.sort_stats` takes it
#: (``pstats.SortKey`` is a ``str``).
SortArg = str | int


def _sort_keys() -> Mapping[str, str]:
    import pstats

    return MappingProxyType({name: spec[1] for name, spec in sorted(pstats.Stats.sort_arg_dict_default.items())})


class _SortKeys(Mapping[str, str]):
    """Read-only, and loads pstats on first use rather than on import."""

    def __getitem__(self, key: str) -> str:
        return _sort_keys()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(_sort_keys())

    def __len__(self) -> int:
        return len(_sort_keys())


#: Sort key name -> description, straight from pstats (what ``python -m cProfile
#: -s`` offers). Read-only so no caller can change it for everyone else.
SORT_KEYS: Mapping[str, str] = _SortKeys()


def _to_stats_dict(data: ProfileData) -> StatsDict:
    from ringprof.exporters.pstats import to_stats_dict

    return to_stats_dict(data)


class CodeLabel(NamedTuple):
    """Stands in for a code object in :meth:`CProfileMethods.getstats` entries
    (pstats' ``label()`` reads these three attributes)."""

    co_filename: str
    co_firstlineno: int
    co_name: str


class ProfilerSubentry(NamedTuple):
    """One callee of a :class:`ProfilerEntry` (``_lsprof.profiler_subentry``)."""

    code: CodeLabel | str
    callcount: int
    reccallcount: int
    totaltime: float
    inlinetime: float


class ProfilerEntry(NamedTuple):
    """One function, as ``cProfile.Profile.getstats()`` returns it
    (``_lsprof.profiler_entry``; built-ins and synthetic frames are strings)."""

    code: CodeLabel | str
    callcount: int
    reccallcount: int
    totaltime: float
    inlinetime: float
    calls: list[ProfilerSubentry] | None

#: The legacy integer keys pstats maps to names (``-1`` is cProfile's default).
_INT_SORT_KEYS = (-1, 0, 1, 2)

_Code = str | bytes | CodeType


def sort_args(sort: SortArg | tuple[SortArg, ...]) -> tuple[SortArg, ...]:
    """Normalise ``sort`` to the argument tuple of ``Stats.sort_stats``.

    cProfile 3.13 accepts a tuple of keys for ``print_stats``; older versions a
    single key. Accepting both here gives every Python version the newer
    behaviour.
    """
    return sort if isinstance(sort, tuple) else (sort,)


def check_sort(sort: SortArg | tuple[SortArg, ...]) -> tuple[SortArg, ...]:
    """Validate sort keys up front (e.g. for the CLI) with pstats' own rules.

    pstats only complains once a report is printed, i.e. after the profiled
    program ran; checking first lets a command line fail fast. Accepts what
    ``sort_stats`` accepts: full names, unique prefixes, :class:`pstats.SortKey`
    and, alone, the integers -1..2. Raises :class:`ValueError` otherwise.
    """
    keys = sort_args(sort)
    if not keys:
        raise ValueError("no sort key given")
    if len(keys) == 1 and isinstance(keys[0], int) and not isinstance(keys[0], bool):
        if keys[0] in _INT_SORT_KEYS:
            return keys
        raise ValueError(f"invalid sort key {keys[0]!r}: integer keys are {_INT_SORT_KEYS}")
    import pstats

    known = pstats.Stats().get_sort_arg_defs()  # names plus unique prefixes
    for key in keys:
        if not isinstance(key, str) or key not in known:
            choices = ", ".join(_sort_keys())
            raise ValueError(f"invalid sort key {key!r}; choose from: {choices} (or -1)")
    return keys


class _StatsSource:
    """A minimal profiler look-alike that :class:`pstats.Stats` accepts.

    pstats builds from any object with ``create_stats()`` and ``stats``; this
    lets :func:`print_report` format a :class:`ProfileData` that has no
    recorder attached (e.g. one loaded from disk by the CLI).
    """

    def __init__(self, data: ProfileData) -> None:
        self._data = data
        self.stats: StatsDict = {}

    def create_stats(self) -> None:
        self.stats = _to_stats_dict(self._data)


def _print(source: Any, sort: SortArg | tuple[SortArg, ...], stream: IO[str] | None,
           strip_dirs: bool) -> None:
    import pstats

    stats = pstats.Stats(source, stream=stream)
    if strip_dirs:
        stats.strip_dirs()
    keys = sort_args(sort)
    if len(keys) == 1 and isinstance(keys[0], int):
        stats.sort_stats(cast("Literal[-1, 0, 1, 2]", keys[0]))  # pstats' legacy keys
    else:
        stats.sort_stats(*cast("tuple[str, ...]", keys))  # SortKey is a str
    stats.print_stats()


def print_report(data: ProfileData, sort: SortArg | tuple[SortArg, ...] = -1,
                 stream: IO[str] | None = None, *, strip_dirs: bool = True) -> None:
    """Print the cProfile-style table of ``data`` (what ``python -m cProfile`` prints).

    ``strip_dirs`` defaults to True because that is what
    ``cProfile.Profile.print_stats`` (and so cProfile's command line) does;
    pass False to keep full paths. ``stream`` defaults to ``sys.stdout``.
    """
    _print(_StatsSource(data), sort, stream, strip_dirs)


class CProfileMethods:
    """cProfile.Profile's methods, for a recorder with enable/disable/data.

    The recorder must provide ``enable()``, ``disable()`` (idempotent: like
    cProfile, :meth:`create_stats` disables and a ``with`` block may disable
    again) and a ``data`` property returning the recorded
    :class:`ProfileData`.
    """

    #: Set by :meth:`create_stats`; pstats reads it and then resets it to {}.
    stats: StatsDict

    if TYPE_CHECKING:  # provided by the recorder class; declared for type checkers

        def enable(self) -> object: ...

        def disable(self) -> object: ...

        @property
        def data(self) -> ProfileData: ...

    def runcall(self, func: Callable[_P, _R], /, *args: _P.args, **kw: _P.kwargs) -> _R:
        """Profile one call of ``func`` and return its result."""
        self.enable()
        try:
            return func(*args, **kw)
        finally:
            self.disable()

    def run(self, cmd: _Code) -> Self:
        """Profile ``exec(cmd)`` in ``__main__``'s namespace; returns self, like cProfile."""
        import __main__

        namespace = __main__.__dict__
        return self.runctx(cmd, namespace, namespace)

    def runctx(self, cmd: _Code, globals: dict[str, Any] | None,
               locals: Mapping[str, object] | None) -> Self:
        """Profile ``exec(cmd, globals, locals)``; returns self, like cProfile."""
        self.enable()
        try:
            exec(cmd, globals, locals)
        finally:
            self.disable()
        return self

    def create_stats(self) -> None:
        """Stop recording and set ``self.stats`` to the pstats dict.

        ``pstats.Stats(profile)`` calls this and then empties ``stats``, so it
        recomputes from ``data`` on every call rather than caching.
        """
        self.disable()
        self.stats = _to_stats_dict(self.data)

    def snapshot_stats(self) -> None:
        """Set ``self.stats`` to the pstats dict of what was recorded so far,
        without stopping (cProfile's ``snapshot_stats``)."""
        self.stats = _to_stats_dict(self.data)

    def getstats(self) -> list[ProfilerEntry]:
        """cProfile's ``getstats()``: one entry per function with its callees.

        ``callcount`` counts the samples the function was on the stack in
        (``reccallcount``: of them, those where it was also further up),
        ``totaltime``/``inlinetime`` are its inclusive/exclusive seconds; the
        same numbers as :meth:`create_stats` (see
        :func:`ringprof.exporters.pstats.to_stats_dict`).
        """
        stats = _to_stats_dict(self.data)

        def code(key: tuple[str, int, str]) -> CodeLabel | str:
            return key[2] if key[0] == "~" and key[1] == 0 else CodeLabel(*key)

        callees: dict[tuple[str, int, str], list[ProfilerSubentry]] = {}
        for callee, (_cc, _nc, _tt, _ct, callers) in stats.items():
            for caller, (enc, ecc, ett, ect) in callers.items():
                callees.setdefault(caller, []).append(
                    ProfilerSubentry(code(callee), int(enc), int(enc - ecc), float(ect), float(ett)))
        return [ProfilerEntry(code(key), int(nc), int(nc - cc), float(ct), float(tt), callees.get(key))
                for key, (cc, nc, tt, ct, _callers) in stats.items()]

    def print_stats(self, sort: SortArg | tuple[SortArg, ...] = -1) -> None:
        """Print the report exactly as ``cProfile.Profile.print_stats`` does.

        That is ``pstats.Stats(self).strip_dirs().sort_stats(*sort).print_stats()``
        to standard output.
        """
        _print(self, sort, sys.stdout, True)

    def dump_stats(self, file: str | os.PathLike[str]) -> None:
        """Write the pstats file ``pstats.Stats(file)``, snakeviz and gprof2dot read."""
        import marshal

        self.create_stats()
        with open(file, "wb") as fh:
            marshal.dump(self.stats, fh)


def _new_profile() -> CProfileMethods:
    """A default :class:`ringprof.Profile`, imported late.

    Late so this module imports (and its converter can be used) without the
    compiled sampler, and so :mod:`ringprof.recording` can import this module
    at its top without an import cycle.
    """
    profile: CProfileMethods = importlib.import_module("ringprof.recording").Profile()
    return profile


def _show(prof: CProfileMethods, filename: str | os.PathLike[str] | None,
          sort: SortArg | tuple[SortArg, ...]) -> None:
    if filename is not None:
        prof.dump_stats(filename)
    else:
        prof.print_stats(sort)


def run(statement: _Code, filename: str | os.PathLike[str] | None = None,
        sort: SortArg | tuple[SortArg, ...] = -1) -> None:
    """Like :func:`cProfile.run`: profile ``exec(statement)`` in ``__main__``.

    Writes the pstats file ``filename`` if given, else prints the report
    sorted by ``sort``. A ``SystemExit`` raised by the statement is swallowed,
    as cProfile does, so the report is still produced.
    """
    prof = _new_profile()
    try:
        prof.run(statement)
    except SystemExit:
        pass
    finally:
        _show(prof, filename, sort)


def runctx(statement: _Code, globals: dict[str, Any] | None, locals: Mapping[str, object] | None,
           filename: str | os.PathLike[str] | None = None,
           sort: SortArg | tuple[SortArg, ...] = -1) -> None:
    """Like :func:`cProfile.runctx`: :func:`run` with explicit namespaces."""
    prof = _new_profile()
    try:
        prof.runctx(statement, globals, locals)
    except SystemExit:
        pass
    finally:
        _show(prof, filename, sort)
