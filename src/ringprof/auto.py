"""Continuous profiling from ``RINGPROF_*`` environment variables.

``import ringprof.auto`` at the top of an application's entry point profiles
only when ``RINGPROF=1``; with it unset or off, the import reads that one
variable and imports, builds and starts nothing more, so it can ship
everywhere.  ``python -m ringprof.auto app.py`` and ``ringprof-run`` are the
launcher.  Both are implemented in :mod:`ringprof.launcher`; this module is
kept this small because its import is paid by every process that ships it.
"""

import os
import sys

TYPE_CHECKING = False  # typing is not imported: this import must stay light
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

__all__ = ["main", "start_from_env"]


def start_from_env(environ: "Mapping[str, str] | None" = None, *, default_on: bool = False) -> "Any":
    """:func:`ringprof.launcher.start_from_env`."""
    from .launcher import start_from_env as start

    return start(environ, default_on=default_on)


def main(argv: "Sequence[str] | None" = None) -> int:
    """``ringprof-run`` / ``python -m ringprof.auto``: :func:`ringprof.launcher.main`."""
    from .launcher import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
elif os.environ.get("RINGPROF", "").strip().lower() not in ("", "0", "false", "no", "off"):
    from .launcher import on_import

    on_import()
