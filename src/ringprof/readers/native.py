"""The native ``.ringprof`` format, checked before it becomes a model.

:meth:`ProfileData.from_dict` trusts its input; a file that is valid gzip and
JSON but was cut, edited or produced by something else could otherwise fail
deep inside with ``KeyError``, ``IndexError`` or a base64 "Incorrect padding".
Every field is checked here first, so such a file gives one
:class:`~ringprof.readers.ProfileFormatError` naming what is wrong.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from . import ProfileFormatError

if TYPE_CHECKING:
    from ringprof.model import ProfileData

# Column name -> item size in bytes (see ringprof.model); "depth" may be absent
# (files written before it existed).
_COLUMN_SIZES = {"stack": 4, "thread": 8, "time_ns": 8, "weight": 8, "cpu_ns": 8, "flags": 2,
                 "labels": 4, "depth": 4}
_OPTIONAL_COLUMNS = frozenset({"depth"})


def _bad(what: str) -> ProfileFormatError:
    return ProfileFormatError(f"malformed ringprof profile: {what}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check(doc: Any) -> int:
    """Validate the document's structure; returns the number of samples."""
    from ringprof.model import FORMAT_VERSION

    if not isinstance(doc, dict):
        raise _bad("the top level is not an object")
    if doc.get("version") != FORMAT_VERSION:
        raise ProfileFormatError(
            f"unsupported ringprof format version {doc.get('version')!r} (this build reads {FORMAT_VERSION})")
    for key, kind in (("meta", dict), ("frames", list), ("stacks", list), ("label_sets", list),
                      ("columns", dict)):
        if key not in doc:
            raise _bad(f"missing {key!r}")
        if not isinstance(doc[key], kind):
            raise _bad(f"{key!r} is not a{'n object' if kind is dict else ' list'}")
    for i, frame in enumerate(doc["frames"]):
        if not (isinstance(frame, list) and len(frame) == 4 and isinstance(frame[0], str)
                and isinstance(frame[1], str) and _is_int(frame[2]) and _is_int(frame[3])):
            raise _bad(f"frame {i} is not [name, filename, firstlineno, line]")
    nframes = len(doc["frames"])
    for i, stack in enumerate(doc["stacks"]):
        if not isinstance(stack, list) or not all(_is_int(f) and 0 <= f < nframes for f in stack):
            raise _bad(f"stack {i} is not a list of frame ids below {nframes}")
    sets = doc["label_sets"]
    if not sets or sets[0] != {}:
        raise _bad("label set 0 must be {}")
    for i, ls in enumerate(sets):
        if not isinstance(ls, dict) or not all(isinstance(v, str) for v in ls.values()):
            raise _bad(f"label set {i} is not an object of strings")
    threads = doc.get("threads", {})
    if not isinstance(threads, dict):
        raise _bad("'threads' is not an object")
    for tid, name in threads.items():
        try:
            int(tid)
        except ValueError:
            raise _bad(f"thread id {tid!r} is not an integer") from None
        if not isinstance(name, str):
            raise _bad(f"thread {tid} has a name that is not a string")
    lengths = {}
    for name, size in _COLUMN_SIZES.items():
        encoded = doc["columns"].get(name)
        if encoded is None and name in _OPTIONAL_COLUMNS:
            continue
        if not isinstance(encoded, str):
            raise _bad(f"column {name!r} is {'missing' if encoded is None else 'not a base64 string'}")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _bad(f"column {name!r} is not valid base64 ({exc})") from None
        if len(raw) % size:
            raise _bad(f"column {name!r} holds {len(raw)} bytes, not a multiple of {size}")
        lengths[name] = len(raw) // size
    if len(set(lengths.values())) > 1:
        raise _bad("columns differ in length")
    return lengths["stack"]


def from_document(doc: Any) -> ProfileData:
    """A model from a parsed native document, or :class:`ProfileFormatError`."""
    from ringprof.model import ProfileData

    n = _check(doc)
    try:
        data = ProfileData.from_dict(doc)
    except (KeyError, IndexError, TypeError, ValueError, OverflowError) as exc:
        # _check covers the known ways; this is the backstop for the unknown ones.
        raise _bad(f"{type(exc).__name__}: {exc}") from None
    if n:
        labels = data.labels
        if int(labels.min()) < 0 or int(labels.max()) >= len(data.label_sets):
            raise _bad("label set id out of range")
        if int(data.weight.min()) < 0:
            raise _bad("negative sample weight")
    return data
