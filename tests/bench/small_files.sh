#!/usr/bin/env bash
# tests/bench/small_files.sh: small files on a store with history, against
# libfuse's passthrough_ll, in one run.
#
#   tests/bench/small_files.sh [UPFS_BIN]
#   SIZES_KIB="4 24 64" FILES=1500 HISTORY=20 REPS=3 tests/bench/small_files.sh
#
# One upfs daemon and store throughout: first HISTORY sessions of FILES
# files of 24 KiB are committed (the history), then for each size in
# SIZES_KIB, REPS times, interleaved: cp -r of a directory of FILES files
# into passthrough_ll + sync, and cp -r of it into a upfs session + closing
# .finish with their sha256sum manifest. Both copies are the same command
# shape: cp -r DIR DEST, which creates the copy's directory itself (into an
# existing directory, `cp -r DIR/. DEST/` would also stat each name first:
# one more LOOKUP per file that passthrough's copy would not pay). Prints
# the median of each, the ratio passthrough / upfs (above 1: upfs is
# faster) and each side's range (min-max over the REPS; passthrough's
# spread widely in some runs). Each timed case starts on
# a quiet machine: after a sync, and once the upfs daemon has stopped
# writing (LevelDB compacts small files' inline bytes in the background
# after a round; the passthrough's sync would pay for that). That
# background work is upfs's own cost, so it is printed too: the seconds it
# took (settle_s) and the bytes the daemon wrote per byte uploaded
# (written/up). Not part of ctest.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
UPFS_BIN=${1:-${UPFS_BIN:-$REPO/build/upfs}}
SIZES_KIB=${SIZES_KIB:-4 24 64}
FILES=${FILES:-1500}
HISTORY=${HISTORY:-20}
REPS=${REPS:-3}

source "$REPO/tests/integration/lib.sh" "$UPFS_BIN"
TEST_NAME=small_files
require_tools awk

# passthrough_ll keeps an open file per file the kernel remembers, and its
# copies are kept (removing them would slow the next round's creates in
# ext4, which avoids reusing recently freed inodes): stay below the limit.
nofile=$(ulimit -n)
words=($SIZES_KIB)
((FILES * REPS * ${#words[@]} + 1000 < nofile)) ||
  fail "FILES x REPS x sizes = $((FILES * REPS * ${#words[@]})) files: passthrough_ll would pass the open-file limit ($nofile)"

source "$HERE/passthrough.sh"
pt_start

# make_files DIR KIB: FILES random files of KIB KiB, and DIR.sha256.
make_files() {
  mkdir -p "$1"
  local i
  for ((i = 0; i < FILES; i++)); do head -c $(($2 << 10)) /dev/urandom >"$1/f$i"; done
  (cd "$(dirname "$1")" && sha256sum -- "$(basename "$1")"/*) >"$1.sha256"
}
source "$HERE/stats.sh"  # since, median
source "$HERE/daemon.sh"  # written, settle

start_upfs
n=0
upload() {  # upload DIR: one session, cp -r, finish; seconds in UPLOAD_S
  n=$((n + 1))
  local t0=$EPOCHREALTIME
  mkdir "$MNT/sessions/s$n"
  cp -r "$1" "$MNT/sessions/s$n/"
  cp "$1.sha256" "$MNT/sessions/s$n/.finish" || fail "finish of s$n failed"
  UPLOAD_S=$(since "$t0")
}
make_files "$SRC/k24" 24
log "history: $HISTORY sessions of $FILES x 24 KiB"
for ((h = 0; h < HISTORY; h++)); do upload "$SRC/k24"; done

printf '\n%-32s %12s %12s %8s %9s %10s  %s\n' "case ($FILES files, $HISTORY sessions before)" passthrough_s upfs_s pt/upfs \
  settle_s written/up "range passthrough / upfs"
for kib in $SIZES_KIB; do
  [[ -d $SRC/k$kib ]] || make_files "$SRC/k$kib" "$kib"
  pt=() up=() st=() w0=0 wsum=0
  for ((r = 0; r < REPS; r++)); do
    settle
    t0=$EPOCHREALTIME
    cp -r "$SRC/k$kib" "$PT_MNT/k$kib.$r"
    sync
    pt+=("$(since "$t0")")
    settle
    w0=$(written)
    upload "$SRC/k$kib"
    up+=("$UPLOAD_S")
    settle
    st+=("$SETTLE_S")
    wsum=$((wsum + $(written) - w0))
  done
  mp=$(median "${pt[*]}") mu=$(median "${up[*]}") ms=$(median "${st[*]}")
  printf '%-32s %12s %12s %8s %9s %10s  %s\n' "cp -r of $kib KiB files" "$mp" "$mu" \
    "$(awk -v a="$mp" -v b="$mu" 'BEGIN { printf "%.2f", a / b }')" "$ms" \
    "$(awk -v w="$wsum" -v u=$((REPS * FILES * kib * 1024)) 'BEGIN { printf "%.2f", w / u }')" \
    "$(range "${pt[*]}") / $(range "${up[*]}")"
done
stop_upfs
