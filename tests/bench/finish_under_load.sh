#!/usr/bin/env bash
# tests/bench/finish_under_load.sh: the finish of a session of small files
# alone, and while another program writes elsewhere on the store's file
# system (a commit must not wait for other programs' dirty data).
#
#   tests/bench/finish_under_load.sh [UPFS_BIN]
#   FILES=1500 KIB=24 LOAD_MIB=2048 REPS=3 tests/bench/finish_under_load.sh
#
# One daemon and store. REPS times, interleaved: a session of FILES files
# of KIB KiB copied with cp -r, then close(.finish) timed alone; the same
# again, but before the finish `dd` starts writing LOAD_MIB MiB to a file
# beside the store (same file system, no fsync: page cache the kernel
# writes back as it likes) and the finish is timed once a quarter of it
# is written. Prints the median of each and their ratio. Not part of
# ctest.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
UPFS_BIN=${1:-${UPFS_BIN:-$REPO/build/upfs}}
FILES=${FILES:-1500}
KIB=${KIB:-24}
LOAD_MIB=${LOAD_MIB:-2048}
REPS=${REPS:-3}

source "$REPO/tests/integration/lib.sh" "$UPFS_BIN"
TEST_NAME=finish_under_load
require_tools awk dd stat
source "$HERE/stats.sh"   # since, median
source "$HERE/daemon.sh"  # settle

mkdir -p "$SRC/files"
for ((i = 0; i < FILES; i++)); do random_file "$SRC/files/f$i" $((KIB << 10)); done
manifest_of "$SRC/files" "$T/files.sha256"

start_upfs
n=0
# copy: a new session holding the files, not finished; its name in SESSION.
copy() {
  n=$((n + 1))
  SESSION=$MNT/sessions/s$n
  mkdir "$SESSION"
  cp -r "$SRC/files/." "$SESSION/"
}
# finish: closes SESSION's .finish; seconds in FINISH_S.
finish() {
  local t0=$EPOCHREALTIME
  cp "$T/files.sha256" "$SESSION/.finish" || fail "the finish of $SESSION failed"
  FINISH_S=$(since "$t0")
  [[ -d $MNT/assets/s$n ]] || fail "assets/s$n is missing after its finish returned"
}

alone=() loaded=()
for ((r = 0; r < REPS; r++)); do
  copy
  settle
  finish
  alone+=("$FINISH_S")

  copy
  settle
  load=$T/load.bin
  dd if=/dev/zero of="$load" bs=1M count="$LOAD_MIB" status=none &
  writer=$!
  BG_PIDS+=("$writer")
  wait_until 120 "a quarter of the load written" \
    eval '(($(stat -c %s "$load" 2>/dev/null || echo 0) >= (LOAD_MIB << 18)))'
  finish
  loaded+=("$FINISH_S")
  wait "$writer" || fail "the load's dd failed"
  rm -f "$load"
  log "round $((r + 1)): finish alone ${alone[r]} s, while dd writes ${LOAD_MIB} MiB ${loaded[r]} s"
done

a=$(median "${alone[*]}") l=$(median "${loaded[*]}")
printf '\n%-48s %10s\n' "finish of $FILES x $KIB KiB (median of $REPS)" seconds
printf '%-48s %10s\n' alone "$a" "while dd writes $LOAD_MIB MiB beside the store" "$l"
awk -v a="$a" -v l="$l" 'BEGIN { printf "%-48s %10.2f\n", "loaded / alone", l / a }'
