"""Build the native sampler (metadata lives in pyproject.toml).

Environment switches:
  RINGPROF_DEBUG=1                      -O0 -g, assertions on
  RINGPROF_SANITIZE=address,undefined   build with those sanitizers (tools/sanitize.sh)

-Werror for csrc/ is enforced by tools/check_c.sh (the Cython-generated C is
not ours to lint, and setuptools applies one flag set per extension).
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

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
    sources=["src/ringprof/_sampler.pyx", "csrc/ring.c", "csrc/sampler.c", "csrc/codes.c"],
    include_dirs=["csrc"],
    extra_compile_args=flags,
    extra_link_args=link,
    libraries=["rt"],
)

setup(
    ext_modules=cythonize(
        [ext],
        compiler_directives={"language_level": "3"},
        quiet=True,
    ),
)
