"""``python -m ringprof`` / ``ringprof``: profile a script or module, and tools.

    ringprof [-o OUT] [-i INTERVAL] [--mode cpu|wall] [--format FMT] [-s SORT]
             (script.py [args...] | -m module [args...])
    ringprof convert IN OUT [--format FMT]
    ringprof view FILE [-o OUT.html] [--source-url TEMPLATE]
    ringprof overhead [-n N] [--interval I] [--mode M] [--max-overhead PCT] -- CMD...

Flags shared with cProfile (-o, -s, -m) mean the same thing.  The profiled
program sees exactly the argv, stdout and exit code it would see unprofiled;
our report goes to stderr (or to OUT).  Bad input gets one line on stderr and
exit code 2 before anything runs.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from . import exporters
from .model import Frame, ProfileData

SUBCOMMANDS = ("convert", "view", "overhead")
TEXT_FORMATS = ("text", "collapsed", "pstats")


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _profile_parser() -> _Parser:
    p = _Parser(prog="ringprof", description="Sample a Python program and report where its time went.",
                epilog="Subcommands: 'ringprof convert IN OUT', 'ringprof view FILE', "
                "'ringprof overhead -- CMD'.")
    p.add_argument("-o", "--outfile", help="write the profile here; the format follows the extension "
                   "(.prof pstats, .html, .speedscope.json, .pprof, .collapsed/.txt, .trace.json, .ringprof)")
    p.add_argument("-i", "--interval", type=float, default=0.01, help="sampling interval in seconds (default 0.01)")
    p.add_argument("--mode", default="cpu", help="cpu (default) or wall")
    p.add_argument("--format", help="output format: text (default), collapsed or pstats without -o; "
                   "any exporter name with -o")
    p.add_argument("-s", "--sort", help="print a cProfile-style report sorted by this key (e.g. cumtime)")
    p.add_argument("-n", "--top", type=int, default=25, help="rows in the text report (default 25)")
    p.add_argument("--max-depth", type=int, default=128, help="frames kept per sample (default 128)")
    # REMAINDER: everything after `-m mod` belongs to the module, options included.
    p.add_argument("-m", dest="module", nargs=argparse.REMAINDER, metavar="MODULE ...",
                   help="run a library module as a script")
    p.add_argument("target", nargs="?", help="the script to profile")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script or module")
    return p


def _check_writable(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise UsageError(f"output path {path!r} is a directory")
    if not os.path.isdir(directory):
        raise UsageError(f"cannot write {path!r}: directory {directory!r} does not exist")
    if (os.path.exists(path) and not os.access(path, os.W_OK)) or not os.access(directory, os.W_OK):
        raise UsageError(f"cannot write {path!r}: permission denied")


def _validate(ns: argparse.Namespace) -> str | None:
    """Check everything before the program runs; returns the output format."""
    from .cprofile import check_sort
    from .sampler import validate_options

    if isinstance(ns.module, list):  # -m MODULE ARGS... (see _profile_parser)
        if not ns.module:
            raise UsageError("argument -m: expected a module name")
        ns.module, ns.args = ns.module[0], [*ns.module[1:]]
    try:
        validate_options(ns.interval, ns.mode, ns.max_depth, "auto")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if ns.top < 1:
        raise UsageError(f"--top must be at least 1, got {ns.top}")
    if ns.sort is not None:
        try:
            check_sort(ns.sort)
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"unknown sort key {ns.sort!r}: {exc}") from None
    if ns.module is None and ns.target is None:
        raise UsageError("nothing to profile: give a script or -m module")
    if ns.module is None and not os.path.isfile(ns.target):
        raise UsageError(f"script not found: {ns.target}")
    if ns.module is not None:
        _cwd_on_path()
        import importlib.util

        try:
            found = importlib.util.find_spec(ns.module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise UsageError(f"module not found: {ns.module}")
    fmt: str | None = None
    if ns.outfile:
        try:
            fmt = ns.format if ns.format and ns.format != "text" else exporters.format_from_path(ns.outfile)
            if fmt not in exporters.FORMATS:
                raise ValueError(f"unknown format {fmt!r}; known formats: {', '.join(exporters.FORMATS)}")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        _check_writable(ns.outfile)
    elif ns.format is not None and ns.format not in TEXT_FORMATS:
        raise UsageError(f"unknown format {ns.format!r} without -o: expected one of {', '.join(TEXT_FORMATS)}")
    return fmt


def _cwd_on_path() -> None:
    """`python -m mod` finds modules in the working directory, so `ringprof -m mod`
    must too when started as the console script (whose sys.path[0] is its bin/)."""
    cwd = os.getcwd()
    if not sys.flags.safe_path and sys.path[:1] not in ([""], [cwd]):
        sys.path.insert(0, cwd)


def _run_target(ns: argparse.Namespace) -> None:
    """Run the script or module as __main__, with its own argv and sys.path[0]."""
    if ns.module is not None:
        args = ([ns.target] if ns.target is not None else []) + list(ns.args)
        sys.argv[:] = [ns.module, *args]
        runpy.run_module(ns.module, run_name="__main__", alter_sys=True)
    else:
        script = ns.target
        sys.argv[:] = [script, *ns.args]
        sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
        _run_script(script)


def _run_script(script: str) -> None:
    """Run a script file the way `python script.py` does (3.9+): sys.argv[0] as
    given, but an absolute __file__ and co_filename, in a fresh __main__ module.
    (runpy.run_path would set sys.argv[0] to the path it is given.)"""
    import builtins
    import importlib.machinery
    import io
    import types
    import zipfile

    if zipfile.is_zipfile(script):  # an application archive: runpy knows those
        runpy.run_path(script, run_name="__main__")
        return
    path = os.path.abspath(script)
    with io.open_code(path) as fh:
        code = compile(fh.read(), path, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=path, __cached__=None, __package__=None, __spec__=None,
                         __builtins__=builtins,
                         __loader__=importlib.machinery.SourceFileLoader("__main__", path))
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _is_launcher_frame(frame: Frame) -> bool:
    """Frames of ringprof's own launcher and runpy, above the user's program."""
    name = frame.filename
    return (name.startswith(_PACKAGE_DIR) or name == "<frozen runpy>"
            or os.path.basename(name) == "runpy.py")


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _report(prof: Any, ns: argparse.Namespace, fmt: str | None) -> None:
    data: ProfileData = prof.data.trim_roots(_is_launcher_frame)
    prof = prof.from_data(data)
    if ns.outfile:
        try:
            exporters.write(data, ns.outfile, fmt)
        except (OSError, ValueError) as exc:
            # Never lose what was sampled: fall back to the native format beside it.
            rescue = ns.outfile + ".ringprof"
            try:
                data.save(rescue)
                saved = f"; the profile was saved to {rescue}"
            except OSError:
                saved = ""
            print(f"ringprof: could not write {ns.outfile}: {exc}{saved}", file=sys.stderr)
        return
    if ns.sort is not None or ns.format == "pstats":
        from .cprofile import print_report

        print_report(data, -1 if ns.sort is None else ns.sort, stream=sys.stderr)
    elif ns.format == "collapsed":
        sys.stderr.write(exporters.render(data, "collapsed").decode())
    else:
        sys.stderr.write(prof.format_top(ns.top))


def run_profiled(argv: Sequence[str]) -> int:
    ns = _profile_parser().parse_args(list(argv))
    fmt = _validate(ns)
    from .recording import Profile

    prof = Profile(ns.interval, ns.mode, ns.max_depth)
    try:
        prof.enable()
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None
    try:
        _run_target(ns)
    finally:
        prof.disable()
        sys.stdout.flush()
        _report(prof, ns, fmt)
    return 0


def _convert(argv: Sequence[str]) -> int:
    p = _Parser(prog="ringprof convert", description="Convert a saved profile to another format.")
    p.add_argument("input", help="a .ringprof file (or folded stacks: .collapsed/.folded/.txt)")
    p.add_argument("output", help="the output file; format by extension unless --format")
    p.add_argument("--format", help=f"one of {', '.join(exporters.FORMATS)}")
    ns = p.parse_args(list(argv))
    if not os.path.isfile(ns.input):
        raise UsageError(f"input not found: {ns.input}")
    try:
        fmt = ns.format or exporters.format_from_path(ns.output)
        if fmt not in exporters.FORMATS:
            raise ValueError(f"unknown format {fmt!r}; known formats: {', '.join(exporters.FORMATS)}")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _check_writable(ns.output)
    try:
        data = exporters.read(ns.input)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    exporters.write(data, ns.output, fmt)
    print(f"ringprof: wrote {ns.output} ({fmt}, {len(data)} samples)", file=sys.stderr)
    return 0


def _view(argv: Sequence[str]) -> int:
    p = _Parser(prog="ringprof view", description="Write the interactive HTML flame graph and open it.")
    p.add_argument("input", help="a saved profile (.ringprof, or folded stacks)")
    p.add_argument("-o", "--outfile", help="where to write the HTML (default: INPUT.html)")
    p.add_argument("--source-url", help="link template, e.g. https://github.com/ORG/REPO/blob/COMMIT/{path}#L{line}"
                   " or vscode://file/{abspath}:{line}")
    p.add_argument("--no-browser", action="store_true", help="only write the file and print its path")
    ns = p.parse_args(list(argv))
    if not os.path.isfile(ns.input):
        raise UsageError(f"input not found: {ns.input}")
    out = ns.outfile or os.path.splitext(ns.input)[0] + ".html"
    _check_writable(out)
    try:
        data = exporters.read(ns.input)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    options = {"source_url": ns.source_url} if ns.source_url else {}
    exporters.write(data, out, "html", **options)
    opened = False
    if not ns.no_browser and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                              or sys.platform == "darwin"):
        import webbrowser

        try:
            opened = webbrowser.get().open("file://" + os.path.abspath(out))
        except webbrowser.Error:
            opened = False
    print(("opened " if opened else "") + os.path.abspath(out))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in SUBCOMMANDS and not os.path.isfile(args[0]):
            if args[0] == "overhead":
                from . import bench

                return bench.main(args[1:], prog="ringprof overhead")
            return {"convert": _convert, "view": _view}[args[0]](args[1:])
        return run_profiled(args)
    except UsageError as exc:
        print(f"ringprof: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
