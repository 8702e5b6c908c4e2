#!/usr/bin/env bash
# tests/bench/mount_footprint.sh: what a mount of a directory costs before
# it serves anything, and after a small upload: the daemon's VmHWM and the
# time until the mount answers, against the same program with librados
# preloaded (LD_PRELOAD), which maps what a program linked with librados
# maps. The RADOS backend is loaded only for a rados:// store
# (store/rados_backend.h); this shows what that saves.
#
#   tests/bench/mount_footprint.sh [UPFS_BIN]
#   ROUNDS=3 UPLOAD_MIB=64 tests/bench/mount_footprint.sh
#
# Each round starts a fresh daemon on a fresh store for each case, in
# turn: waits (polling) for the mount to answer, reads VmHWM, copies
# UPLOAD_MIB of random bytes into a session, finishes it, reads VmHWM
# again, and unmounts. Not part of ctest.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
UPFS_BIN=${1:-${UPFS_BIN:-$REPO/build/upfs}}
ROUNDS=${ROUNDS:-3}
UPLOAD_MIB=${UPLOAD_MIB:-64}
LIBRADOS=$(ldconfig -p | awk '/librados\.so\.2 / && !found { print $NF; found = 1 }')
[[ -n $LIBRADOS ]] || { echo "librados.so.2 not found (mount-scripts/deps.sh installs it)" >&2; exit 1; }

T=$(mktemp -d /tmp/upfs-footprint.XXXXXX)
PID=
cleanup() {
  if mountpoint -q "$T/mnt" 2>/dev/null; then fusermount3 -u "$T/mnt" || fusermount3 -u -z "$T/mnt"; fi
  [[ -z $PID ]] || wait "$PID" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
head -c $((UPLOAD_MIB << 20)) /dev/urandom >"$T/upload"
(cd "$T" && sha256sum upload) >"$T/manifest"

hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$PID/status"; }

# one CASE PRELOAD: prints "ready_ms idle_kib after_kib".
one() {
  local preload=$1 start ready idle after
  rm -rf "$T/store" "$T/mnt"
  mkdir "$T/store" "$T/mnt"
  start=$(date +%s%N)
  env ${preload:+LD_PRELOAD=$preload} "$UPFS_BIN" -f "$T/store" "$T/mnt" >"$T/log" 2>&1 &
  PID=$!
  for _ in $(seq 1000); do
    [[ -d $T/mnt/sessions ]] && break
    sleep 0.005
  done
  [[ -d $T/mnt/sessions ]] || { echo "the mount did not answer; log:" >&2; cat "$T/log" >&2; exit 1; }
  ready=$((($(date +%s%N) - start) / 1000000))
  idle=$(hwm_kib)
  mkdir "$T/mnt/sessions/s"
  cp "$T/upload" "$T/mnt/sessions/s/upload"
  cp "$T/manifest" "$T/mnt/sessions/s/.finish"
  cmp -s "$T/upload" "$T/mnt/assets/s/upload" || { echo "the asset differs" >&2; exit 1; }
  after=$(hwm_kib)
  fusermount3 -u "$T/mnt"
  wait "$PID"
  PID=
  echo "$ready $idle $after"
}

printf '%-28s %10s %14s %18s\n' case ready_ms "VmHWM idle" "VmHWM after ${UPLOAD_MIB}M"
for ((r = 1; r <= ROUNDS; r++)); do
  for c in on-demand librados-mapped; do
    preload=
    [[ $c == on-demand ]] || preload=$LIBRADOS
    read -r ready idle after < <(one "$preload")
    printf '%-28s %10d %10.1f MiB %14.1f MiB\n' "$c (round $r)" "$ready" \
      "$(bc -l <<<"$idle / 1024")" "$(bc -l <<<"$after / 1024")"
  done
done
