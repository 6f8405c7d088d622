"""IPython and Jupyter magics: ``%ringprof`` and ``%%ringprof``.

    %load_ext ringprof
    %ringprof slow_function(data)                 # profile one statement
    %ringprof -i 0.0005 -m wall fetch_all(urls)
    %%ringprof --top 15                           # profile a whole cell
    for x in data:
        process(x)

Options: ``-i/--interval SECONDS`` (default 0.001), ``-m/--mode cpu|wall``
(default cpu), ``-n/--top N`` rows of the text table (default 20),
``-a/--all-threads`` (wall mode shows only the thread running the code unless
given; cpu mode shows every thread that burned CPU), ``-o/--output FILE``
(also write the profile, format by extension), ``-r`` (return the
:class:`ringprof.Profile`, as ``%prun -r`` does).

In Jupyter the result is the interactive HTML flame graph, inline, in a
sandboxed ``<iframe srcdoc>`` (scripts run, with no access to the notebook);
in a terminal IPython it is the top-N table.  The frames of IPython, the
kernel and ringprof above the profiled code are cut from the stacks, which
start at ``<module> (<ringprof>)``.

IPython is imported here only, when the extension is loaded: it is not a
dependency of ringprof.
"""

from __future__ import annotations

import html
import importlib
import os
import sys
import threading
from typing import Any

__all__ = ["ProfileView", "from_statement", "load_ipython_extension", "parse_options"]

DEFAULT_INTERVAL = 0.001
_CODE_NAME = "<ringprof>"


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext ringprof``: register the magics."""
    magics = _Magics(ipython)
    ipython.register_magic_function(magics.line, magic_kind="line", magic_name="ringprof")
    ipython.register_magic_function(magics.cell, magic_kind="cell", magic_name="ringprof")


_USAGE = "usage: %ringprof [-i SECONDS] [-m cpu|wall] [-n N] [-a] [-o FILE] [-r] [--] STATEMENT"
_VALUED = {"-i": "interval", "--interval": "interval", "-m": "mode", "--mode": "mode", "-n": "top", "--top": "top",
           "-o": "output", "--output": "output"}
_FLAGS = {"-a": "all_threads", "--all-threads": "all_threads", "-r": "return"}


def parse_options(line: str) -> tuple[dict[str, str], str]:
    """Leading options of a magic line -> (options, the rest, verbatim).

    Options end at the first word that is not one (or after ``--``), so the
    statement keeps its own spacing and quotes.  Raises ValueError.
    """
    opts: dict[str, str] = {}
    rest = line.strip()
    while rest.startswith("-"):
        word, _, after = rest.partition(" ")
        if word == "--":
            return opts, after.strip()
        name, eq, inline = word.partition("=")
        if name in _FLAGS and not eq:
            opts[_FLAGS[name]] = "1"
        elif name in _VALUED:
            if eq:
                value = inline
            else:
                value, _, after = after.strip().partition(" ")
            if not value:
                raise ValueError(f"option {name} needs a value")
            opts[_VALUED[name]] = value
        else:
            break  # not an option: the statement starts here (``-x + 1``)
        rest = after.strip()
    return opts, rest


class ProfileView:
    """What a magic displays: HTML in Jupyter, a top-N table anywhere else."""

    def __init__(self, profile: Any, top: int = 20, height: int = 560) -> None:
        self.profile = profile
        self.top = top
        self.height = height

    def __repr__(self) -> str:
        if not len(self.profile.data):
            return _NO_SAMPLES
        return str(self.profile.format_top(self.top)).rstrip("\n")

    def _repr_html_(self) -> str:
        if not len(self.profile.data):
            return f"<pre>{html.escape(_NO_SAMPLES)}</pre>"
        from .exporters import render

        page = render(self.profile.data, "html", title="%ringprof").decode("utf-8")
        return (f'<iframe sandbox="allow-scripts" title="ringprof flame graph" '
                f'style="width:100%;height:{self.height}px;border:1px solid #ccc" '
                f'srcdoc="{html.escape(page, quote=True)}"></iframe>')


_NO_SAMPLES = ("ringprof: no samples: the code ran for less than one sampling interval "
               "(use a smaller -i, or run it in a loop)")


def from_statement(data: Any) -> Any:
    """A copy of ``data`` whose stacks start at the profiled code: IPython's,
    the kernel's and ringprof's frames above it are cut, and samples of
    ringprof's own switching on and off (in this module, outside the code)
    are dropped.  Stacks that never reach the code (other threads) stay whole."""
    import numpy as np

    from .model import ProfileData

    out = ProfileData(data.meta)
    out.threads = dict(data.threads)
    remap = np.zeros(max(len(data.stacks), 1), dtype=np.int64)
    keep_stack = np.ones(max(len(data.stacks), 1), dtype=bool)
    here = os.path.realpath(__file__)
    ours: dict[str, bool] = {}

    def is_ours(filename: str) -> bool:
        if filename not in ours:
            ours[filename] = bool(filename) and os.path.realpath(filename) == here
        return ours[filename]

    for sid, stack in enumerate(data.stacks):
        frames = [data.frames[f] for f in stack]
        start = next((i for i, frame in enumerate(frames) if frame.filename == _CODE_NAME), None)
        if start is None and any(is_ours(frame.filename) for frame in frames):
            keep_stack[sid] = False
        remap[sid] = out.intern_stack(out.intern_frame(frame) for frame in frames[start or 0:])
    labels = np.array([out.intern_labels(ls) for ls in data.label_sets] or [0], dtype=np.int64)
    if len(data):
        keep = keep_stack[data.stack]
        out.add_samples(remap[data.stack[keep]], data.thread[keep], data.time_ns[keep], data.weight[keep],
                        data.cpu_ns[keep], data.flags[keep], labels[data.labels[keep]], data.depth[keep])
    return out


class _Magics:
    def __init__(self, shell: Any) -> None:
        self.shell = shell

    def line(self, line: str) -> Any:
        """%ringprof [-i SECONDS] [-m cpu|wall] [-n N] [-a] [-o FILE] [-r] [--] STATEMENT"""
        try:
            opts, statement = parse_options(line)
        except ValueError as exc:
            print(f"%ringprof: {exc}\n{_USAGE}", file=sys.stderr)
            return None
        if not statement:
            print(_USAGE, file=sys.stderr)
            return None
        return self._profile(opts, statement)

    def cell(self, line: str, cell: str) -> Any:
        """%%ringprof [-i SECONDS] [-m cpu|wall] [-n N] [-a] [-o FILE] [-r]: profile the cell"""
        try:
            opts, rest = parse_options(line)
        except ValueError as exc:
            print(f"%%ringprof: {exc}", file=sys.stderr)
            return None
        if rest:
            print(f"%%ringprof: unexpected {rest!r}: options only on this line, the code in the cell", file=sys.stderr)
            return None
        return self._profile(opts, cell)

    def _profile(self, opts: dict[str, str], source: str) -> Any:
        import ringprof

        try:
            interval = float(opts.get("interval", DEFAULT_INTERVAL))
            mode = opts.get("mode", "cpu").lower()
            top = int(opts.get("top", 20))
            profile = ringprof.Profile(interval=interval, mode=mode)  # type: ignore[arg-type]
        except ValueError as exc:
            print(f"%ringprof: {exc}", file=sys.stderr)
            return None
        all_threads = "all_threads" in opts or mode == "cpu"
        shell = self.shell
        code = compile(shell.transform_cell(source), _CODE_NAME, "exec")
        thread = threading.get_native_id()
        try:
            profile.enable()
        except RuntimeError as exc:
            print(f"%ringprof: not profiling: {exc}", file=sys.stderr)
            exec(code, shell.user_global_ns, shell.user_ns)
            return None
        try:
            exec(code, shell.user_global_ns, shell.user_ns)
        finally:
            profile.disable()
        data = profile.data if all_threads else profile.data.filter(thread=thread)
        result = ringprof.Profile.from_data(from_statement(data))
        if "output" in opts:
            try:
                result.export(opts["output"])
            except (OSError, ValueError) as exc:
                print(f"%ringprof: {exc}", file=sys.stderr)
        display: Any = importlib.import_module("IPython.display").display
        display(ProfileView(result, top))
        return result if "return" in opts else None
