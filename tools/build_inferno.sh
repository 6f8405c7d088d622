#!/usr/bin/env bash
# inferno-flamegraph, the Rust port of flamegraph.pl, for the real-renderer test
# in tests/test_export_collapsed.py.  Debian ships inferno only as Rust sources
# (librust-inferno-dev, in sid, with the sources of everything it needs), so it
# is built here offline with Debian's cargo inside the sid chroot
# (tools/sid_chroot.sh), linked statically so that the same binary also runs on
# the host, and installed into /usr/local/bin on both.  About a minute.
#
#   tools/build_inferno.sh            build and install (root); nothing to do if installed
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "build_inferno: must run as root (chroot, /usr/local/bin)"; exit 2; }
root=$("$here/tools/sid_chroot.sh" path)
if [ -x /usr/local/bin/inferno-flamegraph ] && [ -x "$root/usr/local/bin/inferno-flamegraph" ]; then
  exit 0
fi
[ -x "$root/usr/bin/cargo" ] || { echo "build_inferno: no cargo in $root (tools/sid_chroot.sh ensure installs it)"; exit 2; }

# Inside the chroot: a copy of the crate's sources, Debian's registry as the
# only source of crates, and no dev-dependencies (Debian does not package them
# all, and a binary needs none).
build='set -euo pipefail
src=$(ls -d /usr/share/cargo/registry/inferno-* | sort -V | tail -1)
work=/var/tmp/ringprof-inferno
rm -rf "$work"; cp -r "$src" "$work"; cd "$work"
mkdir -p .cargo
printf "[source.crates-io]\nreplace-with = \"debian\"\n[source.debian]\ndirectory = \"/usr/share/cargo/registry\"\n" \
  > .cargo/config.toml
awk "/^\\[/ { skip = (\$0 ~ /^\\[dev-dependencies/) } !skip" Cargo.toml > Cargo.toml.new
mv Cargo.toml.new Cargo.toml
# (Static glibc makes the linker warn about getaddrinfo, which inferno never calls.)
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --offline --bin inferno-flamegraph \
  --target x86_64-unknown-linux-gnu > build.log 2>&1 || { cat build.log; exit 1; }
install -m 755 target/x86_64-unknown-linux-gnu/release/inferno-flamegraph /usr/local/bin/inferno-flamegraph'
"$here/tools/sid_chroot.sh" run bash -c "$build"
install -m 755 "$root/usr/local/bin/inferno-flamegraph" /usr/local/bin/inferno-flamegraph
echo 'a;b 1' | /usr/local/bin/inferno-flamegraph >/dev/null  # runs on the host too
echo "build_inferno: installed /usr/local/bin/inferno-flamegraph (host and sid chroot)"
