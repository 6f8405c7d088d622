"""Reading profiles back into the model, whatever format ringprof wrote them in.

:func:`read` (a path) and :func:`parse` (bytes) return a
:class:`~ringprof.model.ProfileData`. The format is recognised by the content,
not the file name (a directory sink's ``.pb.gz`` renamed ``.prof`` still reads):

* gzip (``1f 8b``) is unpacked first, then the rest applies to what it held;
* JSON with ``"format": "ringprof"`` is the native format, JSON with
  ``"shared"`` and ``"profiles"`` is speedscope;
* text (valid UTF-8 without control characters) is folded stacks;
* anything else is tried as a pprof ``Profile`` protobuf.

pstats files (cProfile's ``dump_stats``, ringprof's ``.prof`` export) are
recognised and refused with a clear message: they hold per-function totals,
not stacks, so no model can be rebuilt from them.

One module per format: :mod:`.native`, :mod:`.pprof`, :mod:`.collapsed`,
:mod:`.speedscope`; each turns decoded content into a model and raises
:class:`ProfileFormatError` on malformed input.

Malformed input of any kind (truncated, wrong types, bad base64, ids out of
range, deep nesting) raises :class:`ProfileFormatError` only, whose message is
one line naming the file: the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import json
import os
import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ringprof.model import ProfileData
    from ringprof.recording import Profile

__all__ = ["READABLE_FORMATS", "ProfileFormatError", "detect", "load", "parse", "read"]

#: Formats :func:`read` understands.
READABLE_FORMATS: tuple[str, ...] = ("native", "pprof", "collapsed", "speedscope")

#: Refuse to unpack more than this from a gzip member (a decompression bomb
#: must not take the machine down); real profiles are far smaller.
MAX_UNPACKED_BYTES = 2 << 30


class ProfileFormatError(ValueError):
    """The input is not a profile ringprof can read, or is malformed.

    The message is a single line (newlines are folded), suitable for a CLI.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def _gunzip(raw: bytes) -> bytes:
    """Unpack every gzip member (``cat a.gz b.gz`` is valid gzip), at most
    :data:`MAX_UNPACKED_BYTES` in all."""
    out = bytearray()
    rest = raw
    try:
        while rest:
            inflater = zlib.decompressobj(wbits=31)
            out += inflater.decompress(rest, MAX_UNPACKED_BYTES - len(out) + 1)
            if len(out) > MAX_UNPACKED_BYTES or inflater.unconsumed_tail:
                raise ProfileFormatError(f"gzip content larger than {MAX_UNPACKED_BYTES} bytes")
            if not inflater.eof:
                raise ProfileFormatError("truncated gzip data")
            rest = inflater.unused_data
            if not rest.strip(b"\0"):  # trailing zero padding is tolerated, as gzip(1) does
                break
    except zlib.error as exc:
        raise ProfileFormatError(f"bad gzip data ({exc})") from None
    return bytes(out)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise ProfileFormatError("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProfileFormatError(f"invalid JSON ({exc})") from None


def _looks_like_text(body: bytes) -> bool:
    if b"\0" in body:
        return False
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(c) < 32 and c not in "\t\n\r" for c in text[:65536])


def _sniff(raw: bytes) -> tuple[str, bytes, Any]:
    """(format, unpacked body, parsed JSON document or None)."""
    if not raw:
        raise ProfileFormatError("empty file")
    body = _gunzip(raw) if raw[:2] == b"\x1f\x8b" else raw
    if not body:
        raise ProfileFormatError("empty profile")
    if body[:1] in (b"{", b"\xfb") and body[1:2] in (b")", b"\xa9", b"(", b"\xa8"):
        # marshal: a dict whose first key is a tuple, i.e. pstats (cProfile's dump_stats).
        raise ProfileFormatError("a pstats (cProfile) file: it holds per-function totals, not stacks, "
                                 "so ringprof cannot read it back")
    head = body.lstrip()[:1]
    if head in (b"{", b"["):
        doc = _json(body)
        if isinstance(doc, dict) and doc.get("format") == "ringprof":
            return "native", body, doc
        if isinstance(doc, dict) and "profiles" in doc and ("shared" in doc or "$schema" in doc):
            return "speedscope", body, doc
        raise ProfileFormatError("JSON that is neither a ringprof profile nor a speedscope file")
    if _looks_like_text(body):
        return "collapsed", body, None
    return "pprof", body, None


def detect(raw: bytes) -> str:
    """The format of ``raw`` by content: one of :data:`READABLE_FORMATS`."""
    return _sniff(raw)[0]


def parse(raw: bytes, format: str | None = None) -> ProfileData:
    """Parse profile bytes (any readable format, gzipped or not) into a model."""
    if format is not None and format not in READABLE_FORMATS:
        raise ProfileFormatError(f"cannot read {format} profiles; readable: {', '.join(READABLE_FORMATS)}")
    fmt, body, doc = _sniff(raw)
    if format is not None and format != fmt:
        # An explicit format wins only where the content could be that format.
        if format == "collapsed" and fmt != "collapsed":
            raise ProfileFormatError(f"expected folded stacks, found {fmt} content")
        fmt = format
        if fmt in ("native", "speedscope") and doc is None:
            raise ProfileFormatError(f"expected {fmt} JSON, found other content")
    try:
        if fmt == "native":
            from . import native

            data = native.from_document(doc)
        elif fmt == "speedscope":
            from . import speedscope

            data = speedscope.from_document(doc)
        elif fmt == "collapsed":
            from . import collapsed

            data = collapsed.from_text(body)
        else:
            from . import pprof

            data = pprof.from_bytes(body)
    except RecursionError:
        raise ProfileFormatError("structure nested too deeply") from None
    _check_frames(data)
    return data


_LINE_LIMIT = 1 << 31


def _check_frames(data: ProfileData) -> None:
    """Line numbers every exporter can store (they become 32/64-bit integers)."""
    for frame in data.frames:
        if not (-_LINE_LIMIT < frame.firstlineno < _LINE_LIMIT and -_LINE_LIMIT < frame.line < _LINE_LIMIT):
            raise ProfileFormatError(f"frame {frame.name[:60]!r} has an impossible line number")


def read(path: str | os.PathLike[str], format: str | None = None) -> ProfileData:
    """Read a profile file of any readable format (detected by content).

    Raises :class:`ProfileFormatError` (a :class:`ValueError`) for malformed or
    unknown content, with the file name in the message; :class:`OSError` when
    the file cannot be read at all.
    """
    target = os.fspath(path)
    with open(target, "rb") as fh:
        raw = fh.read()
    try:
        return parse(raw, format)
    except ProfileFormatError as exc:
        raise ProfileFormatError(f"{target}: {exc}") from None


def load(path: str | os.PathLike[str]) -> Profile:
    """A :class:`~ringprof.Profile` (disabled, for analysis) read from any readable file."""
    from ringprof.recording import Profile

    return Profile.from_data(read(path))
