"""gunicorn hooks: profile each worker with continuous mode.

Two ways; pick one:

1. Launch the whole server under the launcher (the master profiles itself
   and every forked worker re-arms with its own windows and pid)::

       RINGPROF_SINKS='dir:/var/lib/ringprof?keep=500' ringprof-run gunicorn -w 4 app:app

2. Or only the workers, from ``gunicorn.conf.py`` (no launcher needed; the
   settings still come from ``RINGPROF_*``; ``RINGPROF=0`` turns it off)::

       from ringprof.integrations.gunicorn import post_fork, worker_exit  # noqa: F401

Either way each window carries the worker's pid (``meta['pid']``, and the
directory sink's file names) and the final window is exported when a worker
exits gracefully (``SIGTERM``/``SIGQUIT`` to the master, ``max_requests``
recycling).  A worker killed after ``--timeout`` loses its last window.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["post_fork", "worker_exit"]


def post_fork(server: Any, worker: Any) -> None:
    """gunicorn ``post_fork`` hook: start continuous profiling in the worker."""
    from .. import continuous
    from ..launcher import start_from_env

    if continuous.current() is not None:  # already re-armed by follow_fork (ringprof-run)
        return
    try:
        start_from_env(default_on=True)
    except Exception as exc:  # never keep a worker from serving
        message = f"ringprof: not profiling worker {worker.pid}: {' '.join(str(exc).split())}"
        log = getattr(server, "log", None)
        if log is not None:
            log.error(message)
        else:
            print(message, file=sys.stderr)


def worker_exit(server: Any, worker: Any) -> None:
    """gunicorn ``worker_exit`` hook: export the worker's final window now."""
    from .. import continuous, control

    ctl = continuous.current()
    if ctl is None:
        return
    prof = ctl.profile
    if prof is not None and control.launched() is prof:
        control.stop_launched()
    elif prof is not None and control.started() is prof:
        control.stop()
    else:
        ctl.close()
