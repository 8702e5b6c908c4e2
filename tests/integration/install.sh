#!/usr/bin/env bash
# tests/integration/install.sh UPFS_BINARY BUILD_DIR (ctest integration.install):
# install like a filesystem (docs/configuration.md, "Install"). `cmake --install BUILD_DIR --prefix
# $T/prefix` installs exactly upfs, its RADOS backend (lib/upfs/upfs-rados.so),
# upfs-mount, upfs-umount, upfs.8, the systemd unit and the fstab example (no
# test program); the installed upfs answers --help and --version, and loads
# the installed backend for a rados:// store; its man page renders without a warning,
# names every option `upfs --help` lists and every key of a real .status;
# the unit's ExecStart names the installed upfs (also under DESTDIR); the
# installed upfs-mount runs the upfs beside it, with none on PATH. Then,
# with the prefix's bin/ where the default prefix puts it, `mount -t
# fuse.upfs` and an fstab line (`mount -T FSTAB MNT`) mount the store
# through mount.fuse3, each served by the installed upfs, and take an upload
# (cp, sha256sum into .finish, cmp against assets/).
#
# mount(8) clears PATH (and HOME, SHELL, LD_*) before it runs mount.fuse3,
# whose /bin/sh then finds `upfs` on the shell's default PATH
# (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin): a prefix
# that is not among those cannot serve mount(8), whatever the caller's PATH.
# So the test runs in a mount namespace of its own (unshare, private
# propagation) and there binds $T/prefix/bin over /usr/local/bin, as if it
# had been installed with the default prefix; nothing outside sees it.
# Needs root (unshare --mount, mount(8) with a type or an fstab line).
if [[ ${UPFS_INSTALL_TEST_NS:-} != 1 ]]; then
  if [[ $(id -u) != 0 ]]; then
    if [[ ${CI:-} == true ]]; then
      echo "[install] FAIL: CI must run as root: mount -t fuse.upfs needs it" >&2
      exit 1
    fi
    echo "[install] SKIP: needs root (unshare --mount, mount -t fuse.upfs, mount -T)"
    exit 77
  fi
  exec env UPFS_INSTALL_TEST_NS=1 unshare --mount --propagation private -- bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh" "$@"

BUILD_DIR=${2:-}
[[ -f $BUILD_DIR/cmake_install.cmake ]] || fail "the second argument must be the build directory (got '$BUILD_DIR')"
require_tools cmake man groff mount umount findmnt stat

PREFIX=$T/prefix
INSTALLED=$PREFIX/bin/upfs

# installed_daemons: PIDs of the processes running the installed upfs,
# known by the file they run (device and inode), whatever path they ran it
# by: no other test's daemon is among them.
installed_daemons() {
  local d want
  want=$(stat -c %d:%i "$INSTALLED" 2>/dev/null) || return 0
  for d in /proc/[0-9]*; do
    [[ $(stat -L -c %d:%i "$d/exe" 2>/dev/null) == "$want" ]] && echo "${d#/proc/}"
  done
  return 0
}

# The daemons mount.fuse3 starts are not this shell's children: the trap
# unmounts, waits for each by PID, and kills only one that does not exit.
on_exit() {
  local rc=$? pid
  set +e
  if mountpoint -q "$MNT" 2>/dev/null; then
    fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT"
  fi
  for pid in $(installed_daemons); do
    if ! wait_gone "$pid" 15; then
      log "installed upfs (pid $pid) still running 15s after the unmount; killing it"
      kill -KILL "$pid"
      ((rc != 0)) || rc=1
    fi
  done
  (exit "$rc")
  cleanup
}
trap on_exit EXIT

# --- install -------------------------------------------------------------
cmake --install "$BUILD_DIR" --prefix "$PREFIX" >"$T/install.log" 2>&1 ||
  fail "cmake --install failed: $(cat "$T/install.log")"
expected='bin/upfs
bin/upfs-mount
bin/upfs-umount
lib/systemd/system/upfs@.service
lib/upfs/upfs-rados.so
share/doc/upfs/fstab.example
share/man/man8/upfs.8'
got=$(cd "$PREFIX" && find . ! -type d -printf '%P\n' | sort)
[[ $got == "$expected" ]] || fail "installed files:
$got
expected:
$expected"
for f in upfs upfs-mount upfs-umount; do
  [[ -x $PREFIX/bin/$f ]] || fail "bin/$f is not executable"
done
cmp -s "$INSTALLED" "$UPFS_BIN" || fail "the installed upfs differs from $UPFS_BIN"
ok "cmake --install --prefix: exactly the program, its RADOS backend, its helpers, man page, unit and fstab example"

help=$("$INSTALLED" --help) || fail "the installed upfs --help failed"
[[ $help == "usage: upfs [options] STORE_DIR MOUNTPOINT"* ]] || fail "upfs --help: $(head -n 1 <<<"$help")"
version=$("$INSTALLED" --version) || fail "the installed upfs --version failed"
version=${version%%$'\n'*}
[[ $version =~ ^upfs\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "upfs --version: $version"
ok "installed upfs --help and --version ($version)"

# The installed program loads the installed RADOS backend (lib/upfs), not
# the build tree's: the connect then fails on the missing configuration,
# past the module's loading.
out=$("$INSTALLED" fsck rados://upfs-no-pool -o ceph_conf="$T/no-ceph.conf" 2>&1) &&
  fail "fsck of a rados:// store without a configuration succeeded: $out"
[[ $out == *"reading the Ceph configuration $T/no-ceph.conf"* ]] ||
  fail "the installed upfs did not reach librados through lib/upfs/upfs-rados.so: $out"
ok "the installed upfs loads lib/upfs/upfs-rados.so for a rados:// store"
# Without the module, a rados:// store is refused with the reason; a
# directory still mounts (bounded_memory: it never loads the module).
mkdir "$T/lone"
cp "$INSTALLED" "$T/lone/upfs"
rc=0
out=$("$T/lone/upfs" fsck rados://upfs-no-pool 2>&1) || rc=$?
[[ $rc == 2 && $out == *"the RADOS backend (upfs-rados.so"*"cannot be loaded"* ]] ||
  fail "fsck of a rados:// store without upfs-rados.so: exit $rc: $out"
ok "without upfs-rados.so a rados:// store is refused, naming the module (exit 2)"

# --- the man page ----------------------------------------------------------
PAGE=$PREFIX/share/man/man8/upfs.8
warnings=$(groff -ww -man -z "$PAGE" 2>&1) || fail "groff -ww -man -z $PAGE failed: $warnings"
[[ -z $warnings ]] || fail "groff warns about upfs.8: $warnings"
warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -l "$PAGE" 2>&1 >/dev/null) ||
  fail "man -l $PAGE failed: $warnings"
[[ -z $warnings ]] || fail "man --warnings -l upfs.8: $warnings"
# The text to search, in ASCII (hyphens as '-'), wide enough that no option
# is broken across lines.
MAN_TEXT=$T/upfs.8.txt
MANWIDTH=200 man -l "$PAGE" >"$MAN_TEXT" 2>&1 || fail "man -l $PAGE: $(cat "$MAN_TEXT")"
head -n 1 "$MAN_TEXT" | grep -q '^UPFS(8)' || fail "man -l: no UPFS(8) header: $(head -n 1 "$MAN_TEXT")"
grep -qF "upfs ${version#upfs }" "$MAN_TEXT" || fail "the man page does not state the version of $version"
for section in NAME SYNOPSIS DESCRIPTION OPTIONS '.status FIELDS' ERRORS FILES EXAMPLES 'SEE ALSO'; do
  grep -qx "$section" "$MAN_TEXT" || fail "the man page has no section $section"
done
(cd "$(dirname "$PAGE")" && MANWIDTH=200 man ./upfs.8) | cmp -s - "$MAN_TEXT" ||
  fail "man ./upfs.8 renders differently from man -l"
MANPATH=$PREFIX/share/man MANWIDTH=200 man 8 upfs | cmp -s - "$MAN_TEXT" ||
  fail "man 8 upfs (MANPATH=$PREFIX/share/man) does not find the installed page"
ok "upfs.8 renders without warnings (groff -ww, man --warnings), as man -l, man ./upfs.8 and man 8 upfs"

# Every option upfs --help lists (its own and libfuse's), from the lines
# that name options: 4 spaces, then "-x", "--long" or "-o name[=ARG]".
options=()
while read -r -a words; do
  for ((i = 0; i < ${#words[@]}; i++)); do
    w=${words[i]}
    [[ $w == -* ]] || break
    w=${w%,}
    if [[ $w == -o && $((i + 1)) -lt ${#words[@]} ]]; then
      ((i += 1))
      w="-o ${words[i]%%=*}"
    fi
    options+=("$w")
  done
done < <(grep -E '^    -' <<<"$help")
((${#options[@]} >= 20)) || fail "found only ${#options[@]} options in upfs --help: ${options[*]}"
for option in "${options[@]}"; do
  grep -qF -- "$option" "$MAN_TEXT" || fail "upfs --help lists $option, the man page does not"
done
ok "the man page names all ${#options[@]} options of upfs --help"

# --- the systemd unit ------------------------------------------------------
UNIT=$PREFIX/lib/systemd/system/upfs@.service
grep -qx "ExecStart=$INSTALLED -f \$UPFS_OPTIONS \${UPFS_STORE} %f" "$UNIT" ||
  fail "the unit does not start $INSTALLED: $(grep '^ExecStart=' "$UNIT")"
! grep -v '^#' "$UNIT" | grep -q '@' || fail "the unit holds an unconfigured @...@: $(grep -n '@' "$UNIT")"
# A package build: DESTDIR moves the files, not the paths inside them.
DESTDIR=$T/stage cmake --install "$BUILD_DIR" --prefix /usr >"$T/install-destdir.log" 2>&1 ||
  fail "DESTDIR=... cmake --install --prefix /usr failed: $(cat "$T/install-destdir.log")"
grep -q '^ExecStart=/usr/bin/upfs -f ' "$T/stage/usr/lib/systemd/system/upfs@.service" ||
  fail "with DESTDIR and --prefix /usr: $(grep '^ExecStart=' "$T/stage/usr/lib/systemd/system/upfs@.service")"
[[ -x $T/stage/usr/bin/upfs && -f $T/stage/usr/share/man/man8/upfs.8 ]] || fail "DESTDIR install incomplete"
ok "the unit's ExecStart is the installed upfs ($INSTALLED; /usr/bin/upfs under DESTDIR)"

# --- mounting from the installed prefix --------------------------------------

# mounted_by_installed WHAT: the mount at $MNT is a fuse.upfs mount of
# $STORE, served by exactly one process, the installed upfs; its PID in
# DAEMON.
mounted_by_installed() {
  local what=$1 fstype source pids
  mountpoint -q "$MNT" || fail "$what: $MNT is not mounted"
  fstype=$(findmnt -n -o FSTYPE --mountpoint "$MNT")
  source=$(findmnt -n -o SOURCE --mountpoint "$MNT")
  [[ $fstype == fuse.upfs && $source == "upfs:$STORE" ]] ||
    fail "$what: $MNT is $fstype from $source, expected fuse.upfs from upfs:$STORE"
  pids=$(installed_daemons)
  [[ $pids =~ ^[0-9]+$ ]] || fail "$what: expected one installed upfs running, found: '$pids'"
  DAEMON=$pids
  grep -qzx -- "$MNT" "/proc/$DAEMON/cmdline" || fail "$what: the installed upfs (pid $DAEMON) does not serve $MNT"
}

# unmounted UNMOUNT...: runs the unmount command; then the mount is gone
# and the daemon has exited.
unmounted() {
  "$@" >/dev/null || fail "$* failed"
  ! mountpoint -q "$MNT" || fail "$MNT still mounted after $*"
  wait_gone "$DAEMON" 30 || fail "the installed upfs (pid $DAEMON) did not exit within 30s of $*"
}

# upload NAME: a session of two files, finished with sha256sum's manifest,
# then compared byte for byte through assets/.
upload() {
  local name=$1 f
  random_file "$SRC/$name-big" $((3 << 20))
  random_file "$SRC/$name-small" 1000
  mkdir "$MNT/sessions/$name"
  cp "$SRC/$name-big" "$SRC/$name-small" "$MNT/sessions/$name/"
  (cd "$SRC" && sha256sum "$name-big" "$name-small" >"$MNT/sessions/$name/.finish") ||
    fail "finishing $name: sha256sum exited non-zero"
  [[ -d $MNT/assets/$name && ! -e $MNT/sessions/$name ]] || fail "$name was not committed"
  for f in "$name-big" "$name-small"; do
    cmp "$SRC/$f" "$MNT/assets/$name/$f" || fail "assets/$name/$f differs from what was uploaded"
  done
}

# The installed upfs-mount runs the upfs beside it, with no upfs on PATH.
PATH=/usr/bin:/bin UPFS_BIN= "$PREFIX/bin/upfs-mount" -o "log_file=$UPFS_LOG" "$STORE" "$MNT" >/dev/null ||
  fail "the installed upfs-mount failed"
mounted_by_installed "upfs-mount"
upload zeroth
unmounted "$PREFIX/bin/upfs-umount" "$MNT"
ok "the installed upfs-mount runs the upfs installed beside it (none on PATH); upfs-umount"

# From here on, as after `sudo cmake --install build` (prefix /usr/local).
mount --bind "$PREFIX/bin" /usr/local/bin
[[ $(command -v upfs) == /usr/local/bin/upfs ]] || fail "upfs on PATH is $(command -v upfs), not /usr/local/bin/upfs"

mount -t fuse.upfs -o "log_file=$UPFS_LOG" "$STORE" "$MNT" || fail "mount -t fuse.upfs $STORE $MNT failed"
mounted_by_installed "mount -t fuse.upfs"
upload first
# Every key of a real .status is explained in the man page.
mkdir "$MNT/sessions/open"
head -c 100 /dev/zero >"$MNT/sessions/open/partial"
keys=$(sed -n 's/^\([a-z_0-9]*\): .*/\1/p' "$MNT/sessions/open/.status" | sort -u)
[[ $keys == *session* && $keys == *sha256* ]] || fail "unexpected .status: $(cat "$MNT/sessions/open/.status")"
for key in $keys; do
  grep -qw -- "$key" <(sed -n '/^\.status FIELDS$/,/^ERRORS$/p' "$MAN_TEXT") ||
    fail ".status has the key $key; the man page's .status FIELDS do not explain it"
done
unmounted upfs-umount "$MNT"
ok "mount -t fuse.upfs: the installed upfs served an upload; .status keys ($(echo $keys)) are in the man page; upfs-umount"

FSTAB=$T/fstab
printf '# a test fstab\n%s  %s  fuse.upfs  defaults,ttl=3600,log_file=%s,nofail  0  0\n' \
  "$STORE" "$MNT" "$UPFS_LOG" >"$FSTAB"
mount -T "$FSTAB" "$MNT" || fail "mount -T $FSTAB $MNT failed"
mounted_by_installed "the fstab line"
grep -qz -- 'ttl=3600' "/proc/$DAEMON/cmdline" || fail "the fstab line's options did not reach upfs: $(tr '\0' ' ' <"/proc/$DAEMON/cmdline")"
cmp "$SRC/zeroth-big" "$MNT/assets/zeroth/zeroth-big" || fail "after remounting, assets/zeroth/zeroth-big differs"
cmp "$SRC/first-big" "$MNT/assets/first/first-big" || fail "after remounting, assets/first/first-big differs"
upload second
unmounted umount "$MNT"
ok "the fstab line (mount -T): the installed upfs got its options, kept the first upload, took a second; umount"

