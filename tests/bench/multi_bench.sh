#!/usr/bin/env bash
# tests/bench/multi_bench.sh: aggregate ingest of 1, 2 and 3 mounts of one
# RADOS store writing at once (docs/rados.md, "Several mounts"), beside
# the cluster's own write ceiling measured in the same run.
#
#   tests/bench/multi_bench.sh [UPFS_BIN]
#   SIZE_MIB=256 REPS=1 tests/bench/multi_bench.sh   # quick
#
# On a throw-away cluster (tests/ceph/cluster.sh through lib.sh's
# UPFS_TEST_STORE=rados; BlueStore unless CEPH_OBJECTSTORE says otherwise;
# UPFS_TEST_CEPH_OSDS OSDs, default 1), three mounts (each its own daemon
# and mount point, as gateways on three hosts would be) serve one store.
# For N = 1, 2, 3, REPS rounds of: the ceiling (rados bench BENCH_SECONDS
# write -b 4M -t 16), then mounts 1..N each cp a SIZE_MIB file (from the
# page cache) into a session of their own and close its .finish, all at
# once; the round's aggregate is N x SIZE_MIB over the wall time until the
# last finish returned. Prints medians and min-max in MiB/s and the
# aggregate over the ceiling. Not part of ctest.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
UPFS_BIN=${1:-${UPFS_BIN:-$REPO/build/upfs}}
SIZE_MIB=${SIZE_MIB:-512}
REPS=${REPS:-2}
BENCH_SECONDS=${BENCH_SECONDS:-4}
export UPFS_TEST_STORE=rados
export CEPH_OBJECTSTORE=${CEPH_OBJECTSTORE:-bluestore}

TEST_NAME=multi_bench
source "$REPO/tests/integration/lib.sh" "$UPFS_BIN"
source "$REPO/tests/integration/multi_lib.sh"
require_tools rados awk sha256sum
source "$HERE/stats.sh"  # since, median, range

ceiling() {
  rados -p "$RADOS_POOL" bench "$BENCH_SECONDS" write -t 16 -b 4194304 >"$T/bench.txt" 2>&1 ||
    fail "rados bench failed: $(tail -n 5 "$T/bench.txt")"
  rados -p "$RADOS_POOL" cleanup >/dev/null 2>&1 || true
  awk -F: '/^Bandwidth \(MB\/sec\)/ { gsub(/ /, "", $2); print $2 }' "$T/bench.txt"
}

head -c $((SIZE_MIB << 20)) /dev/urandom >"$T/big"
sum=$(sha256sum "$T/big" | cut -d' ' -f1)
for n in 1 2 3; do start_mount "$n"; done

upload() {  # upload MOUNT SESSION
  mkdir "${M[$1]}/sessions/$2"
  cp "$T/big" "${M[$1]}/sessions/$2/big"
  printf '%s  big\n' "$sum" >"${M[$1]}/sessions/$2/.finish"
}

declare -A agg=() ratio=()
for n in 1 2 3; do
  for ((r = 0; r < REPS; r++)); do
    c=$(ceiling)
    cat "$T/big" >/dev/null
    pids=()
    t0=$EPOCHREALTIME
    for ((i = 1; i <= n; i++)); do
      upload "$i" "n$n-r$r-m$i" &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || fail "an upload of round n=$n failed"; done
    s=$(since "$t0")
    a=$(awk -v n="$n" -v m="$SIZE_MIB" -v s="$s" 'BEGIN { printf "%.0f", n * m / s }')
    agg[$n]+="$a "
    ratio[$n]+="$(awk -v a="$a" -v c="$c" 'BEGIN { printf "%.2f", a / c }') "
    log "n=$n round $r: ceiling $c MiB/s, aggregate $a MiB/s ($s s)"
  done
done
for n in 1 2 3; do stop_mount "$n"; done

printf '\n%-8s %-26s %-22s\n' mounts "aggregate MiB/s (range)" "/ ceiling (range)"
for n in 1 2 3; do
  printf '%-8s %-26s %-22s\n' "$n" "$(median "${agg[$n]}") ($(range "${agg[$n]}"))" \
    "$(median "${ratio[$n]}") ($(range "${ratio[$n]}"))"
done
