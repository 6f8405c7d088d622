"""Folded ("collapsed") stacks: ``root;caller;leaf N``, one line per unique stack.

The lingua franca of flame-graph tools (Brendan Gregg's ``flamegraph.pl``,
inferno, speedscope, Pyroscope). Consumers split a line at its *last* space to
find the count and split the rest on ``;``, so a frame label may contain spaces
but never ``;`` or a line break: those are replaced (``;`` -> ``_``, CR/LF ->
space) rather than escaped, because no consumer would undo an escape.

Lines are sorted by their text, which makes the output deterministic and is
what ``flamegraph.pl`` expects anyway (it merges adjacent equal prefixes).
Different stacks can fold to the same text (frames differing only in the line
number when ``lines=False``); their counts are summed.

:func:`parse` reads the format back (for ``ringprof convert``); a folded file
only holds stacks and counts, so threads, times and labels are gone.
"""

from __future__ import annotations

import re

from ringprof.model import Frame, ProfileData

EXTENSIONS: tuple[str, ...] = (".collapsed", ".folded", ".txt")

#: Label used for a sample that has no frames at all (a folded line needs one).
EMPTY_STACK = "<no frames>"

_SANITIZE = str.maketrans({";": "_", "\n": " ", "\r": " "})
# "name (file:N)" as written by Frame.label(); greedy file so "C:\x.py:3" works.
_LABEL_RE = re.compile(r"^(?P<name>.*) \((?P<file>.*):(?P<line>\d+)\)$", re.DOTALL)


def _sanitize(label: str) -> str:
    return label.translate(_SANITIZE)


def fold(data: ProfileData, *, lines: bool = False, value: str = "weight") -> list[tuple[str, int]]:
    """(folded stack, count) pairs, sorted by folded stack; the content of :func:`render`."""
    if value not in ("weight", "ns"):
        raise ValueError(f"value must be 'weight' or 'ns', not {value!r}")
    scale = data.interval_ns if value == "ns" else 1
    labels: dict[Frame, str] = {}
    counts: dict[str, int] = {}
    for frames, weight in data.iter_stacks():
        parts = []
        for frame in frames:
            text = labels.get(frame)
            if text is None:
                text = labels[frame] = _sanitize(frame.label(lines))
            parts.append(text)
        key = ";".join(parts) if parts else EMPTY_STACK
        counts[key] = counts.get(key, 0) + weight * scale
    return sorted(counts.items())


def render(data: ProfileData, *, lines: bool = False, value: str = "weight") -> bytes:
    """Folded stacks as UTF-8 bytes.

    ``lines``: label frames with the sampled line instead of the function's
    first line (finer, but splits a function into one box per line).
    ``value``: ``"weight"`` (timer expirations) or ``"ns"`` (weight x interval).
    """
    out = "".join(f"{stack} {count}\n" for stack, count in fold(data, lines=lines, value=value))
    # backslashreplace: lone surrogates from undecodable file names must not crash an export.
    return out.encode("utf-8", "backslashreplace")


def parse_label(label: str) -> Frame:
    """A frame from its ``Frame.label()`` text; unparseable labels get filename ``""``.

    The number in a label is either the first line or the sampled line
    (depending on how it was rendered), so both fields get it.
    """
    m = _LABEL_RE.match(label)
    if m is None or not m.group("file"):
        return Frame(label, "", 0, 0)
    n = int(m.group("line"))
    return Frame(m.group("name"), m.group("file"), n, n)


def parse(text: str, *, interval: float = 0.01) -> ProfileData:
    """Read folded stacks into a model: one sample (thread 0, time 0) per line.

    ``interval`` sets ``meta['interval']`` (seconds per count), so times are
    right when the counts were timer expirations of that interval; pass ``1e-9``
    for a file rendered with ``value="ns"``. Blank lines and ``#`` comments are
    skipped; a malformed line raises :class:`ValueError` naming its number.
    Counts may be decimal (some tools write them); they are rounded.
    """
    data = ProfileData({"interval": interval})
    stacks: list[int] = []
    weights: list[int] = []
    frame_ids: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        stack, sep, count = line.rpartition(" ")
        try:
            weight = int(count) if count.isdigit() else round(float(count))
        except (ValueError, OverflowError):
            weight = -1
        if not sep or weight < 0:
            raise ValueError(f"line {lineno}: expected 'frame;frame;... COUNT', got {raw[:80]!r}")
        if weight == 0:
            continue
        ids = []
        for label in stack.split(";") if stack and stack != EMPTY_STACK else []:
            fid = frame_ids.get(label)
            if fid is None:
                fid = frame_ids[label] = data.intern_frame(parse_label(label))
            ids.append(fid)
        stacks.append(data.intern_stack(ids))
        weights.append(weight)
    if stacks:
        n = len(stacks)
        data.add_samples(stacks, [0] * n, [0] * n, weights)
    return data
