"""Folded stacks (``root;caller;leaf COUNT`` lines) into a model.

The parsing itself lives beside the writer, in
:func:`ringprof.exporters.collapsed.parse`; this module only maps its errors.
Folded files hold stacks and counts only: one thread, no times, no labels, and
the counts are taken as samples of ringprof's default 10 ms interval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import ProfileFormatError

if TYPE_CHECKING:
    from ringprof.model import ProfileData


def from_text(body: bytes) -> ProfileData:
    from ringprof.exporters import collapsed

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileFormatError(f"not a UTF-8 folded-stacks file ({exc})") from None
    try:
        data = collapsed.parse(text)
    except (ValueError, OverflowError) as exc:
        raise ProfileFormatError(f"not folded stacks: {exc}") from None
    if not len(data):
        raise ProfileFormatError("no stacks found (expected 'frame;frame;... COUNT' lines)")
    return data
