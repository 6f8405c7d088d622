#!/usr/bin/env bash
# Build ringprof with AddressSanitizer + UndefinedBehaviorSanitizer
# (RINGPROF_SANITIZE=address,undefined, see setup.py) into a venv of its own and
# run the core and robustness tests against it.
#
#   tools/sanitize.sh [PYTHON] [-- extra pytest args]
#
# PYTHON defaults to python3 (CI passes the first CPython it found).  The
# interpreter itself is not instrumented, so gcc's libasan is LD_PRELOADed into
# it (and, by inheritance, into the test children); PYTHONMALLOC=malloc sends
# every Python allocation through ASan's allocator so use-after-free of code
# objects or frames is caught.  detect_leaks=0: CPython keeps interned objects
# alive at exit by design.  RINGPROF_SANITIZED=1 lets tests that measure RSS or
# time skip themselves (ASan's quarantine and shadow memory distort both).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
py=${1:-python3}
shift || true
[ "${1:-}" = "--" ] && shift
extra=("$@")
ver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
venv=${RINGPROF_SAN_VENV:-${TMPDIR:-/tmp}/ringprof-asan-$ver}
libasan=$(gcc -print-file-name=libasan.so)
[ -e "$libasan" ] || { echo "sanitize: gcc's libasan.so not found (apt-get install libasan8 / gcc)"; exit 2; }

echo "== sanitize: Python $ver, venv $venv, preload $libasan"
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q -U pip
fi
# A regular (non-editable) install: the instrumented .so goes into the venv and
# never replaces the developers' in-tree build in src/ringprof/.
"$venv/bin/python" -m pip install -q "$root[test]"   # dependencies (and a plain build, replaced next)
RINGPROF_SANITIZE=address,undefined "$venv/bin/python" -m pip install -q --force-reinstall --no-deps --no-cache-dir "$root"
so=$("$venv/bin/python" -c 'import importlib.util as u; print(u.find_spec("ringprof._sampler").origin)')
if [ "$(nm -D "$so" | grep -c __asan_ || true)" = 0 ]; then
  echo "sanitize: $so is not instrumented"; exit 2
fi

tests=(tests/test_robust_*.py)
for t in tests/test_sampler_core.py tests/test_sampler_api.py tests/test_ring.py tests/test_code_lifetime.py \
         tests/test_code_registry.py tests/test_subinterp_attribution.py tests/test_layout_check.py \
         tests/test_wall_tick.py tests/test_stack_cache.py tests/test_export_pprof.py; do
  [ -f "$t" ] && tests+=("$t")
done
start=$(date +%s)
set +e
(
  cd "$root"
  export LD_PRELOAD="$libasan${LD_PRELOAD:+:$LD_PRELOAD}"
  export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:strict_init_order=1:detect_stack_use_after_return=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  export PYTHONMALLOC=malloc
  export RINGPROF_SANITIZED=1
  "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider "${tests[@]}" "${extra[@]}"
)
rc=$?
set -e
echo "== sanitize: pytest exit $rc after $(( $(date +%s) - start ))s (ASan exit code 86, UBSan 87 inside a child show up as failed tests)"
exit $rc
