"""Build the native sampler (metadata lives in pyproject.toml).

Environment switches:
  RINGPROF_DEBUG=1                      -O0 -g, assertions on
  RINGPROF_SANITIZE=address,undefined   build with those sanitizers (tools/sanitize.sh)

-Werror for csrc/ is enforced by tools/check_c.sh (the Cython-generated C is
not ours to lint, and setuptools applies one flag set per extension).
"""

import os
import sys
import sysconfig

from Cython.Build import cythonize
from setuptools import Extension, setup


def unsupported_reason() -> str | None:
    """Why the native sampler cannot be built for this interpreter, or None.

    On such an interpreter ringprof installs without it: profiles can still be
    read, viewed, converted and compared, and enable() says why it cannot sample.
    """
    if sys.implementation.name != "cpython":
        return f"{sys.implementation.name} is not CPython"
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return "free-threaded CPython builds are not supported yet"
    if sys.version_info >= (3, 16):
        return f"CPython {sys.version_info[0]}.{sys.version_info[1]} is newer than 3.15, the last frame layout ringprof knows"
    return None

flags = ["-std=gnu11", "-Wall", "-Wextra", "-fno-omit-frame-pointer", "-fno-strict-aliasing"]
link = []
if os.environ.get("RINGPROF_DEBUG"):
    flags += ["-O0", "-g3", "-UNDEBUG"]
else:
    flags += ["-O2"]
sanitize = os.environ.get("RINGPROF_SANITIZE")
if sanitize:
    flags += [f"-fsanitize={sanitize}", "-fno-sanitize-recover=undefined", "-g"]
    link += [f"-fsanitize={sanitize}"]

ext = Extension(
    "ringprof._sampler",
    sources=["src/ringprof/_sampler.pyx", "csrc/ring.c", "csrc/sampler.c", "csrc/codes.c", "csrc/outside.c",
             "csrc/ticker.c", "csrc/stackcache.c", "csrc/pprof.c"],
    include_dirs=["csrc"],
    extra_compile_args=flags,
    extra_link_args=link,
    libraries=["rt"],
)

reason = unsupported_reason()
if reason:
    print(f"ringprof: building without the native sampler: {reason}", file=sys.stderr)
    setup(ext_modules=[])
else:
    setup(
        ext_modules=cythonize(
            [ext],
            compiler_directives={"language_level": "3"},
            quiet=True,
        ),
    )
