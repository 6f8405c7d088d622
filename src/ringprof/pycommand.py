"""Is a command a Python, and which Python does a script's ``#!`` line run?

Shared by the launcher (``ringprof-run CMD``), which runs a Python command
under ``-m ringprof.auto``, and by ``ringprof overhead -- CMD``, which runs it
under ``-m ringprof``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys

__all__ = ["is_python", "script_interpreter"]

PYTHON_NAME = re.compile(r"^(python|pypy)(\d+(\.\d+)*)?[dmu]*(\.exe)?$")
# pip writes this launcher when the interpreter's path is too long for a #! line:
#   #!/bin/sh
#   '''exec' "/long/path/bin/python" "$0" "$@"
_PIP_SH_TRICK = re.compile(rb"'''exec' \"?([^\" \n]+)\"?")


def is_python(path: str) -> bool:
    """A Python interpreter by its name (python, python3.12, pypy3, ...) or
    the very interpreter running this code."""
    if PYTHON_NAME.match(os.path.basename(path)):
        return True
    try:
        return os.path.samefile(path, sys.executable)
    except OSError:
        return False


def script_interpreter(path: str) -> list[str] | None:
    """The interpreter command of a script whose ``#!`` line runs a Python
    (``/usr/bin/env`` resolved on ``PATH``, pip's ``/bin/sh`` launcher
    followed), else None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if line == "/bin/sh":
        m = _PIP_SH_TRICK.search(head)
        exe = m.group(1).decode("utf-8", "replace") if m else None
        return [exe] if exe is not None and is_python(exe) else None
    words = line.split()
    if words and os.path.basename(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-")]  # "env -S python3 -u": keep it simple
        found = shutil.which(words[0]) if words else None
        if found is None:
            return None
        words[0] = found
    return words if words and is_python(words[0]) else None
