"""``python -m ringprof`` / ``ringprof``: profile a script or module, and tools.

    ringprof [run] [-o OUT] [-i INTERVAL] [--mode cpu|wall] [--format FMT] [-s SORT]
             (script.py [args...] | -m module [args...])
    ringprof convert IN OUT [--format FMT]
    ringprof view FILE [-o OUT.html] [--source-url TEMPLATE]
    ringprof diff BASE NEW [-o diff.html|diff.txt] [--fail-above PP] [--match REGEX]
    ringprof overhead [-n N] [--interval I] [--mode M] [--max-overhead PCT] -- CMD...

Flags shared with cProfile (-o, -s, -m) mean the same thing.  The profiled
program sees exactly the argv, stdout and exit code it would see unprofiled;
our report goes to stderr (or to OUT).  Bad input gets one line on stderr and
exit code 2 before anything runs.

``run`` is the explicit verb (as in py-spy and memray); the bare form
``ringprof script.py`` means the same.  The subcommand names are reserved: a
script called ``view`` runs with ``ringprof run view`` (or ``ringprof ./view``).

Durations (``-i``) take the units of ``RINGPROF_INTERVAL``: ``0.01``, ``10ms``,
``500us``, ``100hz`` (:func:`ringprof.config.parse_duration`).

If the output cannot be written at the end, the profile is saved beside it as
``OUT.ringprof``; if that fails too, one line says so and the exit status is 2
(unless the program itself already exited with a non-zero status, which is kept).
"""

from __future__ import annotations

import argparse
import builtins
import importlib.machinery
import io
import os
import runpy
import sys
import types
import zipfile
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import __version__, exporters
from .config import parse_duration
from .model import Frame, ProfileData, format_top

SUBCOMMANDS = ("run", "convert", "view", "diff", "overhead")
TEXT_FORMATS = ("text", "collapsed", "pstats")
READABLE_HELP = "a saved profile: native .ringprof, pprof (gzipped or not), folded stacks or speedscope JSON"


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def version_text() -> str:
    return f"ringprof {__version__} (Python {sys.version.split()[0]})"


def interval_arg(text: str) -> float:
    """argparse ``type=`` for durations: the parser ``RINGPROF_INTERVAL`` uses."""
    try:
        return parse_duration(text, "interval", rate=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _profile_parser(prog: str = "ringprof") -> _Parser:
    p = _Parser(prog=prog, description="Sample a Python program and report where its time went.",
                epilog="Subcommands: 'ringprof run SCRIPT' (same as the bare form), 'ringprof convert IN OUT', "
                "'ringprof view FILE', 'ringprof diff BASE NEW', 'ringprof overhead -- CMD'.")
    p.add_argument("--version", action="version", version=version_text())
    p.add_argument("-o", "--outfile", help="write the profile here; the format follows the extension "
                   "(.prof pstats, .html, .speedscope.json, .pprof, .collapsed/.txt, .trace.json, .ringprof)")
    p.add_argument("-i", "--interval", type=interval_arg, default=0.01,
                   help="sampling interval: seconds (0.01), 10ms, 500us or a rate (100hz); default 0.01")
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
    """Fail before the program runs if ``path`` cannot be created.

    Permission bits are not enough (root ignores them; read-only mounts and
    security modules do not show in them), so a file is really created beside
    the target and removed again.
    """
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise UsageError(f"output path {path!r} is a directory")
    if not os.path.isdir(directory):
        if os.path.exists(directory):
            raise UsageError(f"cannot write {path!r}: {directory!r} is not a directory")
        raise UsageError(f"cannot write {path!r}: directory {directory!r} does not exist")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UsageError(f"cannot write {path!r}: permission denied")
    if exporters.is_special_file(path):  # /dev/stdout, a named pipe: written into, nothing created beside it
        return
    probe = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.ringprof-probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass


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


def _prepare_target(ns: argparse.Namespace) -> Callable[[], None]:
    """Read and compile the script before sampling starts (as cProfile's CLI
    does), so the profile holds the program and not the launcher's preparation.
    Returns what runs it as __main__, with its own argv and sys.path[0]."""
    if ns.module is not None:
        module = ns.module
        args = ([ns.target] if ns.target is not None else []) + list(ns.args)

        def run_module() -> None:
            sys.argv[:] = [module, *args]
            runpy.run_module(module, run_name="__main__", alter_sys=True)

        return run_module
    script = ns.target
    argv = [script, *ns.args]
    path0 = os.path.dirname(os.path.abspath(script))
    if zipfile.is_zipfile(script):  # an application archive: runpy knows those

        def run_archive() -> None:
            sys.argv[:] = argv
            sys.path.insert(0, path0)
            runpy.run_path(script, run_name="__main__")

        return run_archive
    code, main = _compile_script(script)

    def run_script() -> None:
        sys.argv[:] = argv
        sys.path.insert(0, path0)
        _exec_script(code, main)

    return run_script


def _exec_script(code: types.CodeType, main: types.ModuleType) -> None:
    """Run compiled script code as __main__.  The user's program starts right below
    this frame (see :func:`launcher_predicate`)."""
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _compile_script(script: str) -> tuple[types.CodeType, types.ModuleType]:
    """Compile a script the way `python script.py` does (3.9+): sys.argv[0] as
    given, but an absolute __file__ and co_filename, in a fresh __main__ module.
    (runpy.run_path would set sys.argv[0] to the path it is given.)"""
    path = os.path.abspath(script)
    try:
        with io.open_code(path) as fh:
            source = fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read script {script}: {exc.strerror or exc}") from None
    code = compile(source, path, "exec", dont_inherit=True)  # a SyntaxError reads as with `python script.py`
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=path, __cached__=None, __package__=None, __spec__=None,
                         __builtins__=builtins,
                         __loader__=importlib.machinery.SourceFileLoader("__main__", path))
    return code, main


#: Stands for samples taken entirely inside the launcher (before the program's
#: first line or after its last), so no sample is dropped and no launcher frame shows.
LAUNCHER_FRAME = Frame("<launcher>", "", 0, 0)

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def launcher_files() -> frozenset[str]:
    """File names of the program that called :func:`main`: the console script
    (``bin/ringprof``) or ``ringprof/__main__.py``.  Read before the target
    replaces ``__main__``."""
    name = getattr(sys.modules.get("__main__"), "__file__", None)
    return frozenset({name, os.path.abspath(name)}) if isinstance(name, str) else frozenset()


_THIS_FILE = os.path.abspath(__file__)


def _is_runpy(name: str) -> bool:
    return name == "<frozen runpy>" or os.path.basename(name) == "runpy.py"


def launcher_predicate(launchers: frozenset[str]) -> Callable[[Frame], bool]:
    """Frames of ringprof's own launcher: the console script or ``-m ringprof``
    entry, ringprof's package and runpy, above the user's program."""

    def is_launcher(frame: Frame) -> bool:
        name = frame.filename
        return name in launchers or name.startswith(_PACKAGE_DIR) or _is_runpy(name)

    return is_launcher


def _runs_the_program(frame: Frame) -> bool:
    """The launcher frames whose callees are the user's program: the script's exec
    and runpy (which runs a module or an archive, and imports it first)."""
    return (frame.filename == _THIS_FILE and frame.name == "_exec_script") or _is_runpy(frame.filename)


def without_launcher(data: ProfileData, is_launcher: Callable[[Frame], bool]) -> ProfileData:
    """A copy of ``data`` whose stacks start at the user's program.

    Leading launcher frames are removed.  A stack that is only launcher frames,
    or whose launcher part does not end in the frame that runs the program (the
    profiler starting or stopping: its own work, whatever it calls), becomes
    :data:`LAUNCHER_FRAME`.  Stacks without launcher frames (other threads) are
    kept.  Weights, threads, labels and columns are kept.
    """
    import numpy as np

    out = ProfileData(data.meta)
    out.threads = dict(data.threads)
    stack_map = np.zeros(max(len(data.stacks), 1), dtype=np.int64)
    for sid, stack in enumerate(data.stacks):
        i = 0
        while i < len(stack) and is_launcher(data.frames[stack[i]]):
            i += 1
        if i and (i == len(stack) or not _runs_the_program(data.frames[stack[i - 1]])):
            frames = [LAUNCHER_FRAME]
        else:
            frames = [data.frames[f] for f in stack[i:]]
        stack_map[sid] = out.intern_stack([out.intern_frame(f) for f in frames])
    label_map = np.array([out.intern_labels(ls) for ls in data.label_sets], dtype=np.int64)
    out.add_samples(stack_map[data.stack], data.thread, data.time_ns, data.weight, data.cpu_ns,
                    data.flags, label_map[data.labels], data.depth)
    return out


def _write_output(data: ProfileData, ns: argparse.Namespace, fmt: str | None) -> bool:
    """Write ``-o``; on failure save the native format beside it.  False when
    neither could be written (one line on stderr says where the data was lost)."""
    try:
        exporters.write(data, ns.outfile, fmt)
        return True
    except Exception as exc:  # an exporter bug must not lose what was sampled either
        first = str(exc) or type(exc).__name__
    # Never lose what was sampled: fall back to the native format beside it.
    rescue = ns.outfile + ".ringprof"
    try:
        data.save(rescue)
    except Exception as exc:
        print(f"ringprof: error: could not write {ns.outfile} ({first}) nor the rescue copy {rescue} "
              f"({exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}): "
              f"{len(data)} samples lost", file=sys.stderr)
        return False
    print(f"ringprof: could not write {ns.outfile}: {first}; the profile was saved to {rescue}", file=sys.stderr)
    return True


def _report(prof: Any, ns: argparse.Namespace, fmt: str | None, is_launcher: Callable[[Frame], bool]) -> bool:
    """Write or print the report; False if the profile could not be written anywhere."""
    data = without_launcher(prof.data, is_launcher)
    if ns.outfile:
        return _write_output(data, ns, fmt)
    if ns.sort is not None or ns.format == "pstats":
        from .cprofile import print_report

        print_report(data, -1 if ns.sort is None else ns.sort, stream=sys.stderr)
    elif ns.format == "collapsed":
        sys.stderr.write(exporters.render(data, "collapsed").decode())
    else:
        sys.stderr.write(format_top(data, ns.top))
    return True


def run_profiled(argv: Sequence[str], *, prog: str = "ringprof", launchers: frozenset[str] = frozenset()) -> int:
    """Profile a script or module.  Returns 0, or 2 when the profile could not
    be written; the program's own ``sys.exit`` status and exceptions pass through."""
    ns = _profile_parser(prog).parse_args(list(argv))
    fmt = _validate(ns)
    run_target = _prepare_target(ns)
    from .recording import Profile

    prof = Profile(ns.interval, ns.mode, ns.max_depth)
    is_launcher = launcher_predicate(launchers)

    def finish() -> bool:
        prof.disable()
        sys.stdout.flush()
        return _report(prof, ns, fmt, is_launcher)

    try:
        prof.enable()
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None
    try:
        run_target()
    except SystemExit as exc:
        if not finish() and exc.code in (None, 0):
            return 2  # the program succeeded, but its profile is lost: say so in the status too
        raise
    except BaseException:
        finish()
        raise
    return 0 if finish() else 2


def _read_profile(path: str) -> ProfileData:
    """Any readable profile (format by content), or a one-line UsageError."""
    from .readers import read

    if not os.path.isfile(path):
        raise UsageError(f"input not found: {path}")
    try:
        return read(path)
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None


def _write_failure(path: str, exc: Exception) -> UsageError:
    """One line for an output that could not be written (the OS reason, not a wrapped repeat of the path)."""
    if isinstance(exc, OSError):
        cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
        reason = cause.strerror or str(cause)
    else:
        reason = str(exc)
    return UsageError(f"could not write {path}: {reason}")


def _convert(argv: Sequence[str]) -> int:
    p = _Parser(prog="ringprof convert", description="Convert a saved profile to another format.")
    p.add_argument("input", help=READABLE_HELP)
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
    data = _read_profile(ns.input)
    try:
        exporters.write(data, ns.output, fmt)
    except (OSError, ValueError) as exc:
        raise _write_failure(ns.output, exc) from None
    print(f"ringprof: wrote {ns.output} ({fmt}, {len(data)} samples)", file=sys.stderr)
    return 0


def _view(argv: Sequence[str]) -> int:
    p = _Parser(prog="ringprof view", description="Write the interactive HTML flame graph and open it.")
    p.add_argument("input", help=READABLE_HELP)
    p.add_argument("-o", "--outfile", help="where to write the HTML (default: INPUT.html)")
    p.add_argument("--source-url", help="link template, e.g. https://github.com/ORG/REPO/blob/COMMIT/{path}#L{line}"
                   " or vscode://file/{abspath}:{line}")
    p.add_argument("--no-browser", action="store_true", help="only write the file and print its path")
    ns = p.parse_args(list(argv))
    if not os.path.isfile(ns.input):
        raise UsageError(f"input not found: {ns.input}")
    out = ns.outfile or os.path.splitext(ns.input)[0] + ".html"
    _check_writable(out)
    data = _read_profile(ns.input)
    options = {"source_url": ns.source_url} if ns.source_url else {}
    try:
        exporters.write(data, out, "html", **options)
    except (OSError, ValueError) as exc:
        raise _write_failure(out, exc) from None
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


def _diff(argv: Sequence[str]) -> int:
    """Thin wrapper over ringprof.diff: parse, read both, report, gate."""
    import math
    import re

    p = _Parser(prog="ringprof diff", description="Compare two profiles: which functions' share of the samples "
                "changed (shares are normalised, so runs of different lengths compare).")
    p.add_argument("base", help="the reference profile (" + READABLE_HELP.split(": ", 1)[1] + ")")
    p.add_argument("new", help="the profile to compare with it")
    p.add_argument("-o", "--outfile", help="write a differential flame graph (.html) or the text report (.txt) "
                   "instead of printing the text report")
    p.add_argument("--fail-above", type=float, metavar="PP", help="exit 1 when a function's self or total share "
                   "grew by more than PP percentage points, naming it")
    p.add_argument("--match", metavar="REGEX", help="only functions whose 'name (file:line)' matches REGEX "
                   "(for --fail-above and the text report)")
    p.add_argument("-n", "--top", type=int, default=15, help="rows per table in the text report (default 15)")
    ns = p.parse_args(list(argv))
    if ns.fail_above is not None and not (math.isfinite(ns.fail_above) and ns.fail_above >= 0):
        raise UsageError(f"--fail-above must be a number of points >= 0, got {ns.fail_above}")
    if ns.top < 1:
        raise UsageError(f"--top must be at least 1, got {ns.top}")
    try:
        match = re.compile(ns.match) if ns.match is not None else None
    except re.error as exc:
        raise UsageError(f"--match: bad regular expression {ns.match!r}: {exc}") from None
    kind = None
    if ns.outfile:
        ext = os.path.splitext(ns.outfile)[1].lower()
        kind = {".html": "html", ".htm": "html", ".txt": "text"}.get(ext)
        if kind is None:
            raise UsageError(f"cannot tell the output of {ns.outfile!r}: use a .html or .txt file name")
        _check_writable(ns.outfile)
    base, new = _read_profile(ns.base), _read_profile(ns.new)
    from . import diff

    try:
        result = diff.compare(base, new)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    names = (os.path.basename(ns.base), os.path.basename(ns.new))
    text = diff.format_text(result, base_name=names[0], new_name=names[1], n=ns.top, match=match)
    if kind is None:
        sys.stdout.write(text)
    else:
        try:
            if kind == "html":
                diff.write_html(base, new, ns.outfile, base_name=names[0], new_name=names[1])
            else:
                diff.write_text(text, ns.outfile)
        except (OSError, ValueError) as exc:
            raise _write_failure(ns.outfile, exc) from None
        print(f"ringprof: wrote {ns.outfile}", file=sys.stderr)
    if ns.fail_above is None:
        return 0
    failed, lines = diff.gate(result, ns.fail_above, match)
    print("\n".join(lines), file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    launchers = launcher_files()
    try:
        if args and args[0] in SUBCOMMANDS:  # reserved: run a script named so with 'ringprof run NAME'
            verb, rest = args[0], args[1:]
            if verb == "run":
                return run_profiled(rest, prog="ringprof run", launchers=launchers)
            if verb == "overhead":
                from . import bench

                return bench.main(rest, prog="ringprof overhead")
            return {"convert": _convert, "view": _view, "diff": _diff}[verb](rest)
        return run_profiled(args, launchers=launchers)
    except UsageError as exc:
        print(f"ringprof: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
