#!/usr/bin/env bash
# CPython 3.14 and 3.15 for testing, from Debian's development suite (sid), in
# a chroot: they are built against a newer C library than a Debian 12 host.
#
#   tools/sid_chroot.sh ensure          create or refresh the chroot (root; ~1 min the first time)
#   tools/sid_chroot.sh run CMD...      run CMD inside it, in this checkout's directory
#   tools/sid_chroot.sh path            print the chroot's root directory
#
# The chroot lives in $RINGPROF_SID_ROOT (default /var/lib/ringprof/sid) and
# holds python3.14/3.15 with their -dev (internal headers), -venv and -testsuite
# (CPython's own tests, run under ringprof-run by the suite) packages,
# gcc, and the real consumers the exporter tests drive (go tool pprof,
# Chromium, and inferno's sources: tools/build_inferno.sh).  `run` bind-mounts the directory that holds this checkout (so a
# sibling shared/ is visible too) at the same path inside, plus /proc, /dev and
# /sys, and unmounts them again when CMD ends.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=${RINGPROF_SID_ROOT:-/var/lib/ringprof/sid}
packages=(python3.14-dev python3.15-dev python3.14-venv python3.15-venv gcc libc6-dev
          ca-certificates golang-go chromium chromium-driver fonts-dejavu-core valgrind
          libpython3.14-testsuite libpython3.15-testsuite  # CPython's own tests (tests/test_cpython_suites.py)
          cargo librust-inferno-dev)  # to build the flame-graph renderer (tools/build_inferno.sh)

mirror() {
  # The mirror this machine already uses (deb822 or one-line sources).
  local uri
  uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  [ -n "$uri" ] || uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
                          | awk '{print $2}' | grep -v security | head -1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

copy_host_files() {
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # The package index is reached through a certificate the chroot's bundle lacks.
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$root/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  fi
  # pip's settings (index, certificate) as the host has them.
  [ -f /etc/pip.conf ] && cp /etc/pip.conf "$root/etc/pip.conf"
  return 0
}

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root DEBIAN_FRONTEND=noninteractive "$@"; }

ensure() {
  [ "$(id -u)" = 0 ] || { echo "sid_chroot: must run as root (debootstrap, chroot)"; exit 2; }
  if [ ! -x "$root/usr/bin/python3.15" ] || [ ! -x "$root/usr/bin/python3.14" ]; then
    command -v debootstrap >/dev/null || { apt-get update -qq >/dev/null || true; apt-get install -y -qq debootstrap >/dev/null; }
    # Never delete through a bind mount (the checkout is mounted inside by `run`).
    if grep -qF " $root/" /proc/mounts || grep -qF " $root.new/" /proc/mounts; then
      echo "sid_chroot: something is still mounted under $root; refusing to rebuild it"; exit 2
    fi
    rm -rf --one-file-system "$root.new"
    mkdir -p "$(dirname "$root")"
    echo "sid_chroot: debootstrap sid into $root from $(mirror)"
    debootstrap --variant=minbase --include=python3.14-dev,python3.15-dev,python3.14-venv,python3.15-venv,gcc,libc6-dev,ca-certificates \
      sid "$root.new" "$(mirror)" >/dev/null
    rm -rf --one-file-system "$root"
    mv "$root.new" "$root"
  fi
  copy_host_files
  local missing=()
  for p in "${packages[@]}"; do
    in_root dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "sid_chroot: apt-get install ${missing[*]}"
    with_mounts in_root apt-get -o Acquire::Check-Valid-Until=false update -qq >/dev/null
    with_mounts in_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

mounted=()
mount_all() {
  local parent
  parent=$(dirname "$here")
  mkdir -p "$root/proc" "$root/dev" "$root/sys" "$root$parent"
  mountpoint -q "$root/proc" || { mount -t proc proc "$root/proc"; mounted+=("$root/proc"); }
  mountpoint -q "$root/dev" || { mount --rbind /dev "$root/dev"; mount --make-rslave "$root/dev"; mounted+=("$root/dev"); }
  mountpoint -q "$root/sys" || { mount --rbind /sys "$root/sys"; mount --make-rslave "$root/sys"; mounted+=("$root/sys"); }
  mountpoint -q "$root$parent" || { mount --bind "$parent" "$root$parent"; mounted+=("$root$parent"); }
}
umount_all() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount -R "${mounted[$i]}" 2>/dev/null || umount -l -R "${mounted[$i]}" 2>/dev/null || true
  done
  mounted=()
}
with_mounts() {
  mount_all
  trap umount_all EXIT
  local rc=0
  "$@" || rc=$?
  umount_all
  trap - EXIT
  return $rc
}

case "${1:-}" in
  ensure) ensure ;;
  path) echo "$root" ;;
  run)
    shift
    [ -x "$root/usr/bin/python3.15" ] || { echo "sid_chroot: no chroot at $root (run: tools/sid_chroot.sh ensure)"; exit 2; }
    copy_host_files
    # Keep the caller's environment (CI=true, PIP_*), but not its PATH or venv.
    with_mounts chroot "$root" /usr/bin/env -u VIRTUAL_ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      bash -c 'cd "$0" && exec "$@"' "$here" "$@"
    ;;
  *) sed -n '2,15p' "$0"; exit 2 ;;
esac
