"""The ``ringprof-run`` launcher and :func:`start_from_env` (continuous profiling from ``RINGPROF_*``).

:mod:`ringprof.auto` is the entry point users name; it stays a few lines so
that ``import ringprof.auto`` with profiling off costs next to nothing, and
imports this module only when it has work to do.

Three equivalent ways, no ``.pth`` file and no ``sitecustomize`` involved:

``ringprof-run python app.py [args]``
    The launcher (a console script).  Also ``ringprof-run app.py``,
    ``ringprof-run -m package.module`` and, for servers installed as console
    scripts, ``ringprof-run gunicorn -w 4 app:app`` or ``ringprof-run uvicorn
    app:app``: a Python console script is run by its own interpreter (read
    from its ``#!`` line) under ``-m ringprof.auto``.
``python -m ringprof.auto app.py [args]`` (or ``-m module``)
    The same launcher, for the interpreter you name.
``import ringprof.auto``
    At the top of the application's entry point; profiles only when
    ``RINGPROF=1``, so the import can ship everywhere and operations turn
    profiling on per deployment.

The launcher profiles unless ``RINGPROF=0``, then runs the program exactly as
``python app.py`` would (same ``sys.argv``, ``sys.path[0]``, exit code).  A
bad ``RINGPROF_*`` value makes the launcher print one line and exit with
status 2 before the program starts; ``import ringprof.auto`` instead prints the
line (to the ``"ringprof"`` logger if logging is configured, else to stderr) and lets the application run
unprofiled: a profiler setting must not take a service down.

The settings are documented in :mod:`ringprof.config`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .pycommand import is_python, script_interpreter

__all__ = ["main", "on_import", "start_from_env"]

USAGE = ("usage: ringprof-run [python] SCRIPT [ARGS...] | ringprof-run -m MODULE [ARGS...] | "
         "ringprof-run CONSOLE_SCRIPT [ARGS...]")


def start_from_env(environ: Mapping[str, str] | None = None, *, default_on: bool = False) -> Any:
    """Start continuous profiling as the environment says.

    Returns the running :class:`~ringprof.Profile`, or None when ``RINGPROF``
    is off (or unset and not ``default_on``) or profiling already runs.
    Raises :class:`~ringprof.config.ConfigError` (one line) for bad values and
    RuntimeError if the sampler cannot start.
    """
    from . import control
    from .config import from_env

    settings = from_env(environ)
    on = settings.enabled if settings.enabled is not None else default_on
    if not on or control.launched() is not None:
        return None
    server = None
    if settings.http is not None:  # first: a busy port then leaves nothing started
        from .http_server import serve_http

        try:
            server = serve_http(*settings.http, token=settings.http_token)
        except OSError as exc:
            raise RuntimeError(f"RINGPROF_HTTP: cannot listen on {settings.http[0]}:{settings.http[1]}: "
                               f"{exc.strerror or exc}") from None
    try:
        return control.launch(**settings.start_kwargs())
    except BaseException:
        if server is not None:
            server.close()
        raise


def _fail(message: str) -> int:
    print(f"ringprof-run: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """``ringprof-run`` / ``python -m ringprof.auto``."""
    import shutil

    from .config import ConfigError

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not args else sys.stdout)
        print("Settings come from RINGPROF_* environment variables; see the README's Production section.",
              file=sys.stderr if not args else sys.stdout)
        return 2 if not args else 0
    first = args[0]
    if first != "-m" and is_python(first):
        # Another (or the same) interpreter: let it run us, so the program
        # gets exactly the Python it asked for.
        interp = shutil.which(first) if os.sep not in first else first
        if interp is None:
            return _fail(f"{first}: command not found")
        return _exec([interp, "-m", "ringprof.auto", *args[1:]])
    if first != "-m" and not os.path.exists(first):
        found = shutil.which(first)
        if found is None:
            return _fail(f"{first}: no such file or command")
        interp_cmd = script_interpreter(found)
        if interp_cmd is None:
            return _fail(f"{first} ({found}) is not a Python program")
        return _exec([*interp_cmd, "-m", "ringprof.auto", found, *args[1:]])
    if first == "-m" and len(args) < 2:
        return _fail("-m needs a module name")
    if first != "-m" and not os.path.isfile(first):
        return _fail(f"{first} is not a file")
    # sys.argv first: the default service name and the profile's argv are the program's.
    saved = list(sys.argv)
    sys.argv[:] = [args[1], *args[2:]] if first == "-m" else list(args)
    try:
        start_from_env(default_on=True)
    except (ConfigError, RuntimeError) as exc:
        sys.argv[:] = saved
        return _fail(str(exc))
    _run(args)
    return 0


def _exec(cmd: list[str]) -> int:
    try:
        os.execvp(cmd[0], cmd)
    except OSError as exc:
        return _fail(f"cannot run {cmd[0]}: {exc.strerror or exc}")
    return 0  # pragma: no cover - execvp does not return


def _run(args: list[str]) -> None:
    """Run the program as __main__, as ``python SCRIPT``/``python -m MODULE`` would."""
    import runpy

    # sys.path[0] is ours (the launcher's directory); make it what Python would set.
    if args[0] == "-m":
        sys.argv[:] = [args[1], *args[2:]]
        sys.path[0:1] = [os.getcwd()]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        script = args[0]
        sys.argv[:] = [script, *args[1:]]
        sys.path[0:1] = [os.path.dirname(os.path.abspath(script))]
        runpy.run_path(script, run_name="__main__")


def on_import() -> None:
    """``import ringprof.auto`` with ``RINGPROF`` on: start, and never raise.

    A bad setting is one line (to the ``"ringprof"`` logger if logging is
    configured, else to stderr) and the application runs unprofiled.
    """
    try:
        start_from_env(default_on=False)
    except Exception as exc:
        import logging

        log = logging.getLogger("ringprof")
        message = f"ringprof: not profiling: {' '.join(str(exc).split())}"
        if log.hasHandlers():  # the application configured logging: use it
            log.error(message)
        else:
            print(message, file=sys.stderr)
