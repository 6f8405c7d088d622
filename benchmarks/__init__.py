"""ringprof's overhead and accuracy benchmarks (see benchmarks/README.md).

Run from the repository root:

    python -m benchmarks.run [--quick] [--json out.json]   # everything, a table per part
    python -m benchmarks.check [--quick]                   # the overhead budget gate
    python -m pytest benchmarks/ --benchmark-only          # pytest-benchmark entry points
"""

import os

# OpenBLAS worker threads busy-wait after each call: with them the process CPU
# time of the numpy workload varies by +-30 % between identical runs, which
# says nothing about any profiler.  One BLAS thread (set before numpy loads;
# an explicit setting in the environment wins).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
