#!/usr/bin/env bash
# Run a few short sampling scenarios under valgrind's memcheck and report every
# error whose stack goes through ringprof's native code (_sampler*.so: the
# handler, the ring, the code-death hooks, the drain).
#
#   tools/valgrind.sh [PYTHON]      (default: python3; ringprof must be importable by it)
#
# PYTHONMALLOC=malloc makes every Python allocation visible to memcheck.  Errors
# that do not involve ringprof (CPython's own, numpy's) are counted but do not
# fail the run.  Exit 0: no error attributable to ringprof; 1: some; 2: setup.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-python3}
command -v valgrind >/dev/null || { echo "valgrind: not installed (apt-get install valgrind)"; exit 2; }
"$py" -c 'import ringprof._sampler' || { echo "valgrind: ringprof is not importable by $py"; exit 2; }
out=$(mktemp -d "${TMPDIR:-/tmp}/rp-valgrind.XXXXXX")
echo "valgrind: logs in $out"

read -r -d '' PRELUDE <<'PY' || true
import os, sys, threading, time, importlib
import ringprof
native = importlib.import_module("ringprof._sampler")
def burn(seconds):
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1
    return x
PY

declare -A SCEN
SCEN[cpu_threads]='
prof = ringprof.Profile(interval=0.004)
prof.enable()
ts = [threading.Thread(target=burn, args=(0.3,)) for _ in range(3)]
for t in ts: t.start()
burn(0.3)
for t in ts: t.join()
prof.disable()
print("samples", len(prof.data))
assert len(prof.data) > 0
'
SCEN[wall_stacks_and_churn]='
import asyncio
def gen():
    for i in range(50):
        yield i
def thrower(n):
    if n == 0:
        raise ValueError
    return thrower(n - 1)
async def coro(i):
    await asyncio.sleep(0)
    return i
prof = ringprof.Profile(interval=0.001, mode="wall")
prof.enable()
for i in range(300):
    ns = {}
    exec(compile(f"def f_{i}():\n    return sum(range(50))\nf_{i}()\n", f"<churn-{i}>", "exec"), ns)
    sum(gen())
    try:
        thrower(30)
    except ValueError:
        pass
async def main():
    return sum(await asyncio.gather(*(coro(i) for i in range(100))))
asyncio.run(main())
prof.disable()
print("samples", len(prof.data), "frames", len(prof.data.frames))
'
SCEN[start_stop_fork_exec_guard]='
prof = ringprof.Profile(interval=0.001, mode="wall")
for _ in range(30):
    prof.enable(); burn(0.005); prof.disable()
prof.enable()
pid = os.fork()
if pid == 0:
    os._exit(0 if not native.is_enabled() else 3)
_, st = os.waitpid(pid, 0)
assert st >> 8 in (0, 99), st   # 99: memcheck'"'"'s --error-exitcode, inherited errors of the parent

try:
    os.execv("/nonexistent", ["x"])
except OSError:
    pass
assert prof.enabled
burn(0.05)
prof.disable()
print("samples", len(prof.data))
'

fail=0
total_errors=0
for name in cpu_threads wall_stacks_and_churn start_stop_fork_exec_guard; do
  log="$out/$name.log"
  start=$(date +%s)
  set +e
  PYTHONMALLOC=malloc valgrind --tool=memcheck --error-exitcode=99 --num-callers=40 \
    --child-silent-after-fork=yes --trace-children=no --log-file="$log" \
    "$py" -c "$PRELUDE
${SCEN[$name]}
print('SCENARIO OK')" > "$out/$name.out" 2>&1
  rc=$?
  set -e
  errors=$(grep -Eo 'ERROR SUMMARY: [0-9]+' "$log" | head -1 | grep -Eo '[0-9]+' || echo "?")
  # An error "involves ringprof" when any frame of its stack is in our extension.
  ours=$(awk '/^==[0-9]+== [A-Z].*(Invalid|uninitialised|Conditional|Mismatched|overlap|definitely)/{inerr=1; hit=0; next}
              inerr && /_sampler\.cpython|sampler\.c|ring\.c|codes\.c|outside\.c|ticker\.c|ring\.h|compat\//{hit=1}
              inerr && /^==[0-9]+== $/{ if (hit) n++; inerr=0 }
              END{print n+0}' "$log")
  echo "valgrind: $name: exit $rc, $errors error(s), $ours involving ringprof, $(( $(date +%s) - start ))s"
  total_errors=$((total_errors + ${errors//\?/0}))
  if [ "$ours" != 0 ]; then
    fail=1
    echo "---- $log (errors involving ringprof) ----"
    grep -B2 -A30 -E '_sampler\.cpython|sampler\.c|ring\.c|codes\.c|outside\.c|ticker\.c' "$log" | head -120
  fi
  if { [ $rc -ne 0 ] && [ $rc -ne 99 ]; } || ! grep -q "SCENARIO OK" "$out/$name.out"; then
    fail=1
    echo "---- $name failed (exit $rc) ----"; tail -20 "$out/$name.out"
  fi
done
echo "valgrind: $total_errors error(s) in total; attributable to ringprof: $([ $fail = 0 ] && echo none || echo SOME)"
exit $fail
