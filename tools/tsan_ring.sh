#!/usr/bin/env bash
# ThreadSanitizer + integrity stress test of the SPSC ring (csrc/tests/ring_stress.c):
# the producer runs inside a SIGPROF handler fired by a per-thread POSIX timer,
# the consumer drains from another thread.  Two builds:
#   1. -fsanitize=thread: TSan checks the acquire/release protocol between the
#      handler and the consumer and reports signal-unsafe calls in the handler;
#   2. plain -O2 at a higher rate with a small ring (wraps, PAD records, drops).
# usage: tools/tsan_ring.sh [seconds=3]      exit 0 = clean
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
cc=${CC:-gcc}
out=$(mktemp -d "${TMPDIR:-/tmp}/rp-tsan.XXXXXX")
trap 'rm -rf "$out"' EXIT
common=(-std=gnu11 -Wall -Wextra -Werror -g -Icsrc csrc/tests/ring_stress.c csrc/ring.c -lpthread -lrt)

echo "== TSan build ($cc -fsanitize=thread)"
"$cc" -O1 -fsanitize=thread -fno-omit-frame-pointer "${common[@]}" -o "$out/ring_stress_tsan"
# TSan's shadow memory needs the default ASLR layout on some kernels; retry without ASLR if it refuses.
run_tsan() {
  TSAN_OPTIONS="halt_on_error=1 exitcode=66 report_signal_unsafe=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
    "$@" "$out/ring_stress_tsan" "$secs" 65536 50
}
if ! run_tsan; then
  rc=$?
  if [ $rc -ne 66 ] && command -v setarch >/dev/null; then
    echo "(retrying under setarch -R)"; run_tsan setarch "$(uname -m)" -R
  else
    exit $rc
  fi
fi

echo "== plain -O2 build, small ring, 10 us timer"
"$cc" -O2 "${common[@]}" -o "$out/ring_stress"
"$out/ring_stress" "$secs" 8192 10
echo "tsan_ring: OK"
