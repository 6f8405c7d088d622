"""Unwritable directories that stay unwritable for root (CI runs the tests as root).

Root ignores permission bits through two capabilities, CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH.  Without them, root is held to the mode bits like any
user, so a ``chmod 0o500`` directory is really read-only:

* :func:`no_dac_override` drops them from the *effective* set of the calling
  thread (capabilities are per thread on Linux) and raises them again after;
* :func:`drop_dac_on_exec` is a ``preexec_fn`` that removes them from the
  *bounding* set, so a child that execs a new program (which as root would get
  every capability back) starts without them.

For a non-root user both are no-ops: the mode bits already apply.  Failures
raise, so a test using these never silently turns into a test that cannot fail.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from contextlib import contextmanager

CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
_DAC_BITS = (1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH)
_PR_CAPBSET_DROP = 24
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@contextmanager
def no_dac_override() -> Iterator[None]:
    """Within the block, this thread is held to permission bits even as root."""
    if not _is_root():
        yield
        return
    libc = _libc()
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    _check(libc.capget(ctypes.byref(header), data), "capget")
    saved = data[0].effective
    data[0].effective = saved & ~_DAC_BITS
    _check(libc.capset(ctypes.byref(header), data), "capset")
    try:
        yield
    finally:
        data[0].effective = saved
        _check(libc.capset(ctypes.byref(header), data), "capset (restore)")


def drop_dac_on_exec() -> None:
    """``preexec_fn``: the child and what it execs are held to permission bits."""
    if not _is_root():
        return
    libc = _libc()
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        _check(libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0), "prctl(PR_CAPBSET_DROP)")


def read_only_dir(path: str | os.PathLike[str]) -> None:
    """Make ``path`` (a directory) read-only; undo with ``os.chmod(path, 0o700)``."""
    os.chmod(path, 0o500)
