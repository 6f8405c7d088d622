"""Compare two profiles: which functions' share of the samples changed.

Both profiles are normalised first: a function's **share** is its weight
divided by the profile's total weight, so a 10 s run and a 60 s run of the
same program compare directly. Changes are in **percentage points** (pp): a
function going from 10 % to 25 % of the samples grew by 15 pp. Each function
has a *self* share (it was the leaf) and a *total* share (it was anywhere on
the stack; recursion counted once per sample).

Functions are matched by (qualified name, file), not by line: editing a
function moves the first line of everything below it in the file, and the
comparison must still pair them. Two functions with the same qualified name in
one file (redefinitions, lambdas) are counted together. Profiles recorded in
different checkouts (``/ci/main/app/x.py`` vs ``/ci/pr-12/app/x.py``) still
pair: a BASE file missing from NEW is taken to be the NEW-only file sharing the
longest trailing part of its path, when that file is unique (:func:`align_files`).

**Sampling noise.** A share measured from N samples is uncertain. Treating
each profile's samples as N independent draws (binomial), the standard error
of the difference of two shares is ``sqrt(pb(1-pb)/Nb + pn(1-pn)/Nn)``, which
:class:`FunctionDiff` reports per function and :attr:`ProfileDiff.max_noise_pp`
bounds for any share (at p = 0.5). Weights count as samples (a weight-3 sample
is 3 timer expirations). This is a lower bound on the real noise: samples of
one run are correlated (phases, caches) and two runs differ in more than
sampling (machine load, inputs), so use a gate threshold several standard
errors wide, or repeat runs.

:func:`compare` builds a :class:`ProfileDiff`; :func:`format_text` renders the
text report; :func:`render_html` the differential flame graph (the HTML
viewer in diff mode).
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from ringprof.model import Frame, ProfileData

__all__ = ["FunctionDiff", "ProfileDiff", "compare", "format_gate", "format_text", "gate", "render_html", "write_html",
           "write_text"]

FunctionId = tuple[str, str]  # (qualified name, filename)


@dataclass(frozen=True)
class FunctionDiff:
    """One function in both profiles. Shares are fractions (0..1); *_pp are points."""

    name: str
    filename: str
    firstlineno: int  #: from NEW when the function is there, else from BASE
    base_self: int  #: weights (timer expirations)
    base_total: int
    new_self: int
    new_total: int
    base_weight: int  #: total weight of the profile, the denominator of the shares
    new_weight: int
    base_interval_ns: int
    new_interval_ns: int

    @property
    def label(self) -> str:
        return f"{self.name} ({self.filename}:{self.firstlineno})" if self.filename else self.name

    def share(self, which: Literal["base", "new"], kind: Literal["self", "total"]) -> float:
        weight = getattr(self, f"{which}_{kind}")
        total = self.base_weight if which == "base" else self.new_weight
        return weight / total if total else 0.0

    def delta_pp(self, kind: Literal["self", "total"]) -> float:
        """Change of the share in percentage points (positive: grew)."""
        return 100.0 * (self.share("new", kind) - self.share("base", kind))

    def noise_pp(self, kind: Literal["self", "total"]) -> float:
        """Binomial standard error of :meth:`delta_pp`, in points."""
        return share_noise_pp(self.share("base", kind), self.base_weight, self.share("new", kind), self.new_weight)

    def delta_per_sample_ns(self, kind: Literal["self", "total"]) -> float:
        """Change of the time the function gets per sample taken: share x interval.

        With equal intervals this is the share change in time units; with
        different intervals it still compares (time per sample, not per run).
        """
        return (self.share("new", kind) * self.new_interval_ns
                - self.share("base", kind) * self.base_interval_ns)

    @property
    def status(self) -> str:
        """``"new"`` (not sampled in BASE), ``"gone"`` (not in NEW) or ``""``."""
        if not self.base_total:
            return "new"
        if not self.new_total:
            return "gone"
        return ""


def share_noise_pp(base_share: float, base_n: int, new_share: float, new_n: int) -> float:
    """Standard error (points) of the difference of two binomial shares."""
    if base_n <= 0 or new_n <= 0:
        return math.inf
    var = base_share * (1 - base_share) / base_n + new_share * (1 - new_share) / new_n
    return 100.0 * math.sqrt(max(var, 0.0))


@dataclass(frozen=True)
class ProfileDiff:
    """The comparison of BASE and NEW, one :class:`FunctionDiff` per function."""

    functions: tuple[FunctionDiff, ...]
    base_weight: int
    new_weight: int
    base_interval_ns: int
    new_interval_ns: int
    base_mode: str
    new_mode: str

    @property
    def max_noise_pp(self) -> float:
        """Largest standard error of any share change here (the binomial worst case, p = 0.5)."""
        return share_noise_pp(0.5, self.base_weight, 0.5, self.new_weight)

    def largest_changes(self, kind: Literal["self", "total"], n: int = 20,
                        match: re.Pattern[str] | None = None) -> list[FunctionDiff]:
        """The ``n`` functions whose ``kind`` share changed most (either way), biggest first."""
        rows = [f for f in self.functions if _matches(f, match) and (getattr(f, f"base_{kind}")
                                                                    or getattr(f, f"new_{kind}"))]
        rows.sort(key=lambda f: (-abs(f.delta_pp(kind)), -f.delta_pp(kind), f.name, f.filename))
        return rows[:n]

    def grew_above(self, threshold_pp: float, match: re.Pattern[str] | None = None) -> list[FunctionDiff]:
        """Functions whose self or total share grew by more than ``threshold_pp`` points,
        largest growth first (what ``--fail-above`` fails on)."""
        rows = [f for f in self.functions if _matches(f, match)
                and max(f.delta_pp("self"), f.delta_pp("total")) > threshold_pp]
        rows.sort(key=lambda f: (-max(f.delta_pp("self"), f.delta_pp("total")), f.name, f.filename))
        return rows


def _matches(f: FunctionDiff, match: re.Pattern[str] | None) -> bool:
    return match is None or match.search(f.label) is not None


def _path_parts(path: str) -> list[str]:
    return [p for p in path.replace("\\", "/").split("/") if p]


def align_files(base_files: Iterable[str], new_files: Iterable[str]) -> dict[str, str]:
    """BASE file -> NEW file, for files that appear in only one of the two.

    Each BASE-only file is paired with the NEW-only file whose path shares the
    most trailing components with it (at least the file name), when that best
    match is unique and no other BASE file claims it. Synthetic names
    (``<frozen ...>``, ``""``) are never renamed.
    """
    base_set, new_set = set(base_files), set(new_files)
    only_new = [(f, _path_parts(f)[::-1]) for f in sorted(new_set - base_set) if f and not f.startswith("<")]
    pairs: dict[str, str] = {}
    for bf in sorted(base_set - new_set):
        if not bf or bf.startswith("<"):
            continue
        rev = _path_parts(bf)[::-1]
        best: str | None = None
        best_len, tie = 0, False
        for nf, nrev in only_new:
            k = 0
            while k < min(len(rev), len(nrev)) and rev[k] == nrev[k]:
                k += 1
            if k > best_len:
                best, best_len, tie = nf, k, False
            elif k == best_len and k:
                tie = True
        if best is not None and not tie:
            pairs[bf] = best
    claimed = Counter(pairs.values())
    return {b: n for b, n in pairs.items() if claimed[n] == 1}


def _files(data: ProfileData) -> set[str]:
    weights = data.stack_weights().tolist()
    used = set(itertools.chain.from_iterable(st for st, w in zip(data.stacks, weights, strict=True) if w))
    return {data.frames[fid].filename for fid in used}


def aligned_base(base: ProfileData, new: ProfileData) -> ProfileData:
    """BASE with its files renamed to NEW's where :func:`align_files` pairs them
    (only stacks and weights are kept: what the differential flame graph needs)."""
    mapping = align_files(_files(base), _files(new))
    if not mapping:
        return base
    out = ProfileData(dict(base.meta))
    frame_ids = [out.intern_frame(Frame(f.name, mapping.get(f.filename, f.filename), f.firstlineno, f.line))
                 for f in base.frames]
    stacks: list[int] = []
    weights: list[int] = []
    for sid, weight in enumerate(base.stack_weights().tolist()):
        if weight:
            stacks.append(out.intern_stack(frame_ids[f] for f in base.stacks[sid]))
            weights.append(weight)
    out.add_samples(stacks, 0, 0, weights)
    return out


def function_weights(data: ProfileData, rename: Mapping[str, str] | None = None
                     ) -> dict[FunctionId, tuple[int, int, int]]:
    """(self weight, total weight, first line) per (name, file); recursion counted once.
    ``rename`` maps file names (see :func:`align_files`)."""
    import numpy as np

    # Function id per frame, then one (stack, function) pair per frame of each
    # used stack; unique pairs count recursion once. Vectorised: 100,000 stacks
    # of depth 25 take well under a second.
    keys: dict[FunctionId, int] = {}
    first_line: list[int] = []
    frame_key = np.empty(len(data.frames), dtype=np.int64)
    for fid, frame in enumerate(data.frames):
        key = (frame.name, rename.get(frame.filename, frame.filename) if rename else frame.filename)
        k = keys.get(key)
        if k is None:
            k = keys[key] = len(keys)
            first_line.append(frame.firstlineno)
        frame_key[fid] = k
    weights = data.stack_weights()
    used = np.flatnonzero(weights)
    stacks = [data.stacks[sid] for sid in used.tolist()]
    lengths = np.fromiter((len(st) for st in stacks), dtype=np.int64, count=len(stacks))
    flat = np.fromiter(itertools.chain.from_iterable(stacks), dtype=np.int64, count=int(lengths.sum()))
    nkeys = max(len(keys), 1)
    owner = np.repeat(np.arange(len(stacks), dtype=np.int64), lengths)
    # Sort + drop repeats rather than np.unique, whose hash path is pathologically
    # slow on this shape in some numpy releases (seconds for 2.5M values).
    pairs = np.sort(owner * nkeys + frame_key[flat])
    if pairs.size:
        pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
    total = np.bincount(pairs % nkeys, weights=weights[used][pairs // nkeys], minlength=nkeys)
    nonempty = lengths > 0
    leaf_key = frame_key[flat[np.cumsum(lengths)[nonempty] - 1]]
    self_w = np.bincount(leaf_key, weights=weights[used][nonempty], minlength=nkeys)
    return {key: (int(self_w[k]), int(total[k]), first_line[k]) for key, k in keys.items() if total[k]}


def _check_samples(base: ProfileData, new: ProfileData) -> tuple[int, int]:
    base_weight, new_weight = base.total_weight(), new.total_weight()
    for which, weight in (("BASE", base_weight), ("NEW", new_weight)):
        if weight <= 0:
            raise ValueError(f"{which} profile has no samples: nothing to compare")
    return base_weight, new_weight


def compare(base: ProfileData, new: ProfileData) -> ProfileDiff:
    """Compare two models; raises ValueError when either has no samples."""
    base_weight, new_weight = _check_samples(base, new)
    b = function_weights(base, align_files(_files(base), _files(new)))
    n = function_weights(new)
    functions = []
    for key in sorted(b.keys() | n.keys()):
        bs, bt, bline = b.get(key, (0, 0, 0))
        ns, nt, nline = n.get(key, (0, 0, 0))
        functions.append(FunctionDiff(
            name=key[0], filename=key[1], firstlineno=nline if key in n else bline,
            base_self=bs, base_total=bt, new_self=ns, new_total=nt,
            base_weight=base_weight, new_weight=new_weight,
            base_interval_ns=base.interval_ns, new_interval_ns=new.interval_ns))
    return ProfileDiff(tuple(functions), base_weight, new_weight, base.interval_ns, new.interval_ns,
                       str(base.meta.get("mode", "cpu")), str(new.meta.get("mode", "cpu")))


# ---------------------------------------------------------------- text report
def format_ns(ns: float) -> str:
    """Signed-friendly short duration: 1.5 ms, 230 µs, 12 ns."""
    a = abs(ns)
    if a >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if a >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if a >= 1e3:
        return f"{ns / 1e3:.1f} us"
    return f"{ns:.0f} ns"


def _describe(name: str, mode: str, weight: int, interval_ns: int) -> str:
    return (f"{name}: {mode}, {weight:,} samples at {format_ns(interval_ns)}, "
            f"{format_ns(weight * interval_ns)} sampled")


def _table(diff: ProfileDiff, kind: Literal["self", "total"], n: int, match: re.Pattern[str] | None) -> list[str]:
    rows = diff.largest_changes(kind, n, match)
    title = "Self share (time in the function itself)" if kind == "self" else \
        "Total share (time in the function and its callees)"
    out = [f"{title}, largest changes:"]
    if not rows:
        return [*out, "  (no functions" + (" match --match" if match else "") + ")"]
    out.append(f"  {'change':>10} {'1 SE':>8} {'base':>7} {'new':>7} {'per sample':>11}  function")
    for f in rows:
        delta = f.delta_pp(kind)
        per_sample = f.delta_per_sample_ns(kind)
        sign = "+" if per_sample > 0 else "-" if per_sample < 0 else " "
        tag = f"  [{f.status}]" if f.status else ""
        out.append(f"  {delta:+8.2f}pp {f.noise_pp(kind):6.2f}pp {100 * f.share('base', kind):6.2f}% "
                   f"{100 * f.share('new', kind):6.2f}% {sign + format_ns(abs(per_sample)):>11}  {f.label}{tag}")
    return out


def format_text(diff: ProfileDiff, *, base_name: str = "BASE", new_name: str = "NEW", n: int = 15,
                match: re.Pattern[str] | None = None) -> str:
    """The text report: both profiles, the noise estimate, the largest self and total changes."""
    lines = [
        "ringprof diff",
        "  " + _describe(f"base {base_name}", diff.base_mode, diff.base_weight, diff.base_interval_ns),
        "  " + _describe(f"new  {new_name}", diff.new_mode, diff.new_weight, diff.new_interval_ns),
    ]
    if diff.base_mode != diff.new_mode:
        lines.append(f"  warning: comparing a {diff.base_mode} profile with a {diff.new_mode} profile")
    lines += [
        "Shares are % of each profile's samples, so runs of different lengths compare; pp = percentage points;",
        "'per sample' = change of (share x interval), the function's time per sample taken.",
        f"Sampling noise: 1 standard error (SE) of a share change is at most {diff.max_noise_pp:.2f} pp here",
        "(binomial estimate from the sample counts; real run-to-run noise is larger, so treat changes",
        "within ~3 SE as noise).",
    ]
    if match is not None:
        lines.append(f"Only functions matching /{match.pattern}/.")
    lines.append("")
    lines += _table(diff, "self", n, match)
    lines.append("")
    lines += _table(diff, "total", n, match)
    return "\n".join(lines) + "\n"


def format_gate(rows: Iterable[FunctionDiff], threshold_pp: float) -> list[str]:
    """One line per function that grew more than the threshold (for ``--fail-above``)."""
    kinds: tuple[Literal["self", "total"], ...] = ("self", "total")
    out = []
    for f in rows:
        parts = [f"{kind} {100 * f.share('base', kind):.2f}% -> {100 * f.share('new', kind):.2f}% "
                 f"({f.delta_pp(kind):+.2f} pp, SE {f.noise_pp(kind):.2f} pp)"
                 for kind in kinds if f.delta_pp(kind) > threshold_pp]
        out.append(f"  {f.label}: " + "; ".join(parts))
    return out


def gate(diff: ProfileDiff, threshold_pp: float, match: re.Pattern[str] | None = None) -> tuple[bool, list[str]]:
    """``--fail-above``: (failed, report lines). Fails when a function (matching
    ``match``) grew its self or total share by more than ``threshold_pp`` points;
    the lines name each one and state the noise estimate."""
    grew = diff.grew_above(threshold_pp, match)
    noise = f"sampling noise: 1 SE of a share change <= {diff.max_noise_pp:.2f} pp"
    if threshold_pp < 2 * diff.max_noise_pp:
        noise += f"; {threshold_pp:g} pp is within 2 SE, expect false alarms"
    if not grew:
        return False, [f"ringprof diff: no function grew more than {threshold_pp:g} pp ({noise})"]
    head = f"ringprof diff: {len(grew)} function(s) grew more than {threshold_pp:g} pp ({noise}):"
    return True, [head, *format_gate(grew, threshold_pp)]


# ---------------------------------------------------------------- HTML
def render_html(base: ProfileData, new: ProfileData, *, title: str | None = None,
                base_name: str = "BASE", new_name: str = "NEW", source_url: str | None = None) -> bytes:
    """The differential flame graph: NEW's flame graph, each frame coloured by the
    change of its total share against BASE (red grew, blue shrank), both shares
    on hover. Same offline, CSP-locked viewer as :mod:`ringprof.exporters.html`."""
    from ringprof.exporters import html

    _check_samples(base, new)
    base = aligned_base(base, new)
    page_title = title if title is not None else f"ringprof diff: {base_name} \u2192 {new_name}"
    return html.render(new, source_url=source_url, title=page_title,
                       diff_base=base, diff_names=(base_name, new_name))


def write_html(base: ProfileData, new: ProfileData, path: str | os.PathLike[str], *, base_name: str = "BASE",
               new_name: str = "NEW", source_url: str | None = None) -> None:
    """:func:`render_html` written atomically to ``path`` (as every exporter writes)."""
    from ringprof import exporters

    _check_samples(base, new)
    base = aligned_base(base, new)
    exporters.write(new, path, "html", source_url=source_url, title=f"ringprof diff: {base_name} \u2192 {new_name}",
                    diff_base=base, diff_names=(base_name, new_name))


def write_text(text: str, path: str | os.PathLike[str]) -> None:
    """The text report written to ``path`` (replaced whole, never half-written)."""
    target = os.fspath(path)
    tmp = f"{target}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
