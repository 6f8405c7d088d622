"""Export formats: a lazy registry from format names to exporter modules.

Every exporter lives in its own module ``ringprof.exporters.<name>`` and defines::

    EXTENSIONS: tuple[str, ...]                        # file-name endings, with the dot
    def render(data: ProfileData, **options) -> bytes  # deterministic: same input, same bytes

and optionally ``write_to(data, binary_file, **options)``, which :func:`write`
then uses to stream large outputs (it must write the same bytes ``render`` returns).

The registry below names the module and the extensions of each format *without
importing it*: ``import ringprof`` happens inside every profiled service, so a
format's dependencies (and its import time) are paid only when that format is
used. It also lets :func:`format_from_path` work for formats whose module is
written separately (``pstats``, ``html``). A test checks that the table and each
module's ``EXTENSIONS`` agree.

``native`` (``.ringprof``) is not a module: it is :meth:`ProfileData.save` /
:meth:`ProfileData.load`, the versioned format the model itself owns.
"""

from __future__ import annotations

import gzip
import importlib
import json
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # the model (and numpy) load only when a profile is read or rendered
    from ringprof.model import ProfileData

__all__ = ["FORMATS", "extensions", "format_from_path", "read", "render", "write"]


@dataclass(frozen=True)
class _Format:
    module: str | None  # None: the native format, handled by the model itself
    extensions: tuple[str, ...]


# An immutable table (a tuple of pairs, turned into a read-only lookup per call),
# so no module-level mutable state exists for callers to alter by accident.
_TABLE: tuple[tuple[str, _Format], ...] = (
    ("native", _Format(None, (".ringprof",))),
    ("collapsed", _Format("ringprof.exporters.collapsed", (".collapsed", ".folded", ".txt"))),
    ("speedscope", _Format("ringprof.exporters.speedscope", (".speedscope.json",))),
    ("pprof", _Format("ringprof.exporters.pprof", (".pprof", ".pb.gz"))),
    ("chrome", _Format("ringprof.exporters.chrome", (".trace.json", ".chrome.json"))),
    ("pstats", _Format("ringprof.exporters.pstats", (".prof", ".pstats"))),
    ("html", _Format("ringprof.exporters.html", (".html",))),
    ("otlp", _Format("ringprof.exporters.otlp", (".otlp.pb",))),
    ("otlp-json", _Format("ringprof.exporters.otlp_json", (".otlp.json",))),
)

#: Names of every supported format, in a stable order.
FORMATS: tuple[str, ...] = tuple(name for name, _ in _TABLE)

def _lookup(fmt: str) -> _Format:
    for name, spec in _TABLE:
        if name == fmt:
            return spec
    raise ValueError(f"unknown format {fmt!r}; supported formats: {', '.join(FORMATS)}")


def extensions(fmt: str) -> tuple[str, ...]:
    """File-name endings registered for ``fmt`` (first one is the preferred)."""
    return _lookup(fmt).extensions


def _supported_extensions() -> str:
    return ", ".join(ext for _, spec in _TABLE for ext in spec.extensions)


def format_from_path(path: str | os.PathLike[str]) -> str:
    """The format a file name implies, by its longest matching extension.

    Longest match matters because endings nest (``.speedscope.json`` vs a
    hypothetical ``.json``; ``.pb.gz``). Matching is case-insensitive.
    """
    name = os.path.basename(os.fspath(path)).lower()
    best: tuple[int, str] | None = None
    for fmt, spec in _TABLE:
        for ext in spec.extensions:
            if name.endswith(ext) and (best is None or len(ext) > best[0]):
                best = (len(ext), fmt)
    if best is None:
        raise ValueError(
            f"cannot tell the export format of {os.fspath(path)!r} from its extension; "
            f"supported extensions: {_supported_extensions()}"
        )
    return best[1]


def _native_bytes(data: ProfileData) -> bytes:
    # Same bytes as ProfileData.save() writes (gzip with mtime=0 keeps it deterministic).
    return gzip.compress(json.dumps(data.to_dict(), separators=(",", ":")).encode(), mtime=0)


def _renderer(fmt: str) -> Callable[..., bytes]:
    spec = _lookup(fmt)
    if spec.module is None:
        return _native_bytes
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        if exc.name != spec.module:
            raise  # a dependency of the exporter is missing: report that, not "unavailable"
        raise ValueError(f"format {fmt!r} is not available in this build (no module {spec.module})") from None
    return cast("Callable[..., bytes]", module.render)


def render(data: ProfileData, format: str, **options: Any) -> bytes:
    """Render ``data`` in ``format``; options go to that exporter's ``render``."""
    fmt = format
    if fmt == "native" and options:
        raise ValueError(f"the native format takes no options (got {', '.join(sorted(options))})")
    out = _renderer(fmt)(data, **options)
    if not isinstance(out, bytes):
        raise TypeError(f"exporter {fmt!r} returned {type(out).__name__}, expected bytes")
    return out


def _streamer(fmt: str) -> Callable[..., None] | None:
    """The exporter's ``write_to(data, binary_file, **options)``, for formats too big
    to render in memory (chrome), else None."""
    spec = _lookup(fmt)
    if spec.module is None:
        return None
    _renderer(fmt)  # same import and errors as render()
    return cast("Callable[..., None] | None", getattr(importlib.import_module(spec.module), "write_to", None))


def write(data: ProfileData, path: str | os.PathLike[str], format: str | None = None,
          **options: Any) -> None:
    """Render and write ``data`` to ``path`` atomically.

    The output goes to a temporary file in the target's directory (same file
    system, so :func:`os.replace` is atomic) which replaces ``path`` only once
    complete. Readers therefore see the old file or the new one, never a
    partial write, and a failure (of the exporter or of the disk) leaves no
    temporary behind. Most formats are rendered in memory first; an exporter
    that defines ``write_to(data, file, **options)`` (chrome) streams into the
    temporary file instead, so its memory does not grow with the output.

    A ``path`` that is a device, a FIFO or a socket (``/dev/stdout``,
    ``/dev/null``, a named pipe) is written into directly: replacing it with
    a file would destroy it (and root is allowed to).
    """
    target = os.fspath(path)
    fmt = format or format_from_path(target)
    if fmt == "native" and options:
        raise ValueError(f"the native format takes no options (got {', '.join(sorted(options))})")
    stream = _streamer(fmt)
    payload = None if stream is not None else render(data, fmt, **options)
    if is_special_file(target):
        try:
            with open(target, "wb") as fh:
                if stream is not None:
                    stream(data, fh, **options)
                else:
                    fh.write(cast(bytes, payload))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write {target!r}: {exc.strerror or exc}") from exc
        return
    directory = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(directory, f".{os.path.basename(target)}.{secrets.token_hex(6)}.tmp")
    try:
        # 0o666 filtered by the umask, like open(): mkstemp's 0o600 would surprise users.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {target!r}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
            if stream is not None:
                stream(data, fh, **options)
            else:
                fh.write(cast(bytes, payload))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OSError(exc.errno, f"cannot write {target!r}: {exc.strerror or exc}") from exc
        raise


def is_special_file(path: str) -> bool:
    """Whether ``path`` (followed through symlinks) exists and is neither a regular file nor a directory."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def read(path: str | os.PathLike[str], format: str | None = None) -> ProfileData:
    """Read a profile back into a model: see :func:`ringprof.readers.read`.

    Readable formats (recognised by content, not by extension): ``native``,
    ``pprof`` (gzipped or raw), ``collapsed`` and ``speedscope``. Malformed
    input raises :class:`ringprof.readers.ProfileFormatError` (a ValueError).
    """
    from ringprof import readers

    if format is not None:
        _lookup(format)
        if format not in readers.READABLE_FORMATS:
            raise readers.ProfileFormatError(
                f"cannot read {format} files ({os.fspath(path)!r}); readable: {', '.join(readers.READABLE_FORMATS)}")
    return readers.read(path, format)
