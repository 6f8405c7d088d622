"""Directory sink: one file per window, written atomically, with retention.

``dir:/var/lib/ringprof?format=pprof&keep=100&max_age=7d&prefix=checkout``

* ``format``: any exporter name (``pprof`` by default; ``native`` keeps the
  window's metadata: pid, service, window start/end, sampler stats);
* ``keep``: keep at most this many window files of this prefix and format
  (the newest; older ones are deleted after each write);
* ``max_age``: delete window files older than this (``3600``, ``90m``, ``7d``);
* ``prefix``: the file-name prefix (default: the service name).

File names sort by time and tell where a window came from::

    <prefix>-<UTC window start, YYYYmmddTHHMMSSZ>-<pid>-<window index><extension>

A flight-recorder dump (``meta["dump"]``, see :mod:`ringprof.flight`) is
named ``<prefix>-dump-<slow|error>-<UTC time of the dump>-<pid>-<dump
index>``; ``keep`` and ``max_age`` apply to the dumps of each reason on their
own, so dumps never push windows out (nor the other way round).

Writes go to a temporary file in the same directory that is renamed over the
final name once complete (see :func:`ringprof.exporters.write`), so a reader
never sees a partial file.  Several processes (prefork workers) may share one
directory: names carry the pid, and retention applies to the directory as a
whole (a file another process already deleted is skipped).  Only files whose
names match the pattern above are ever deleted.
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING, Any

from ..config import parse_duration
from . import check_options, parse_int, split_query

if TYPE_CHECKING:
    from ringprof.model import ProfileData

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str) -> str:
    """A file-name-safe version of a service name."""
    return _SAFE.sub("_", text).strip("._") or "ringprof"


class DirectorySink:
    """Write each window to ``path`` in ``format``; keep the newest ``keep``
    files and/or none older than ``max_age`` seconds."""

    OPTIONS = ("format", "keep", "max_age", "prefix")

    def __init__(self, path: str | os.PathLike[str], format: str = "pprof", *, keep: int | None = None,
                 max_age: float | None = None, prefix: str | None = None) -> None:
        from ringprof.exporters import extensions

        self.path = os.path.abspath(os.fspath(path))
        self.format = format
        self.ext = extensions(format)[0]  # ValueError for an unknown format
        if keep is not None and keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        if max_age is not None and max_age <= 0:
            raise ValueError(f"max_age must be positive, got {max_age}")
        self.keep = keep
        self.max_age = max_age
        self.prefix = safe_name(prefix) if prefix else None
        self.name = f"dir:{self.path}"
        self.written: list[str] = []  # the most recent file names written (bounded)

    @classmethod
    def from_url(cls, rest: str) -> DirectorySink:
        path, options = split_query(rest)
        check_options("dir", options, cls.OPTIONS)
        if not path:
            raise ValueError("dir sink: missing directory path")
        kw: dict[str, Any] = {}
        if "format" in options:
            kw["format"] = options["format"]
        if "keep" in options:
            kw["keep"] = parse_int(options["keep"], "dir sink keep", minimum=1)
        if "max_age" in options:
            kw["max_age"] = parse_duration(options["max_age"], "dir sink max_age")
        if options.get("prefix"):
            kw["prefix"] = options["prefix"]
        return cls(path, **kw)

    def filename(self, data: ProfileData) -> str:
        meta = data.meta
        prefix = self.prefix or safe_name(str(meta.get("service") or "ringprof"))
        start = float(meta.get("window_start") or meta.get("start_time") or time.time())
        index = int(meta.get("window_index") or 0)
        dump = meta.get("dump")
        if isinstance(dump, dict):
            prefix = f"{prefix}-dump-{safe_name(str(dump.get('reason') or 'other'))}"
            start = float(dump.get("time") or start)
            index = int(dump.get("index") or 0)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(start))
        pid = int(meta.get("pid") or os.getpid())
        return f"{prefix}-{stamp}-{pid}-{index:06d}{self.ext}"

    def export(self, data: ProfileData) -> None:
        from ringprof.exporters import write

        os.makedirs(self.path, exist_ok=True)
        name = self.filename(data)
        write(data, os.path.join(self.path, name), self.format)
        self.written.append(name)
        del self.written[:-100]
        if self.keep is not None or self.max_age is not None:
            self._retain(name.rsplit("-", 3)[0])

    def _retain(self, prefix: str) -> None:
        pattern = re.compile(re.escape(prefix) + r"-\d{8}T\d{6}Z-\d+-\d+" + re.escape(self.ext) + "$")
        files = []
        # Only an age limit needs each file's mtime: a stat per file per window
        # is a system call that lets go of the GIL and must take it back.
        aged = self.max_age is not None
        with os.scandir(self.path) as it:
            for entry in it:
                if pattern.match(entry.name):
                    try:
                        files.append((entry.stat().st_mtime if aged else 0.0, entry.name))
                    except FileNotFoundError:
                        continue
        # Names start with the UTC start time, so name order is time order;
        # the mtime breaks no ties but catches clock-skewed hosts for max_age.
        files.sort(key=lambda f: (f[1].rsplit("-", 3)[1], f[0], f[1]))
        doomed: set[str] = set()
        if self.keep is not None and len(files) > self.keep:
            doomed.update(name for _, name in files[: len(files) - self.keep])
        if self.max_age is not None:
            horizon = time.time() - self.max_age
            doomed.update(name for mtime, name in files if mtime < horizon)
        for name in doomed:
            try:
                os.unlink(os.path.join(self.path, name))
            except FileNotFoundError:
                pass

    def __repr__(self) -> str:
        return f"<DirectorySink {self.path} format={self.format} keep={self.keep} max_age={self.max_age}>"
