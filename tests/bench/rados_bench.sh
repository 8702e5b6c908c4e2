#!/usr/bin/env bash
# tests/bench/rados_bench.sh: upfs over RADOS against the cluster's own
# ceiling, in one run on one throw-away cluster (docs/rados.md,
# "Speed over RADOS").
#
#   tests/bench/rados_bench.sh [UPFS_BIN]
#   SIZE_MIB=256 REPS=1 BENCH_SECONDS=5 tests/bench/rados_bench.sh   # quick
#   HISTORY_SESSIONS=50 tests/bench/rados_bench.sh                    # and aged
#
# On a cluster started here (tests/ceph/cluster.sh through lib.sh's
# UPFS_TEST_STORE=rados; BlueStore on a sparse file per OSD unless
# CEPH_OBJECTSTORE says otherwise; UPFS_TEST_CEPH_OSDS OSDs, default 1):
#   warm-up:       one rados bench write and seq, not measured (a new OSD
#     writes at a quarter of its pace until it has served reads);
#   ceiling write: the faster of two rados bench BENCH_SECONDS (4) write
#     runs, both with the object size and the writes in flight of upfs's
#     stripes (4 MiB, 16: store/rados_blob_files.h): whole 4 MiB objects
#     (-b 4M), and 1 MiB writes filling 4 MiB objects (-b 1M -O 4M), the
#     writes upfs itself sends (a FUSE write is at most 1 MiB), measured
#     before each upload (REPS times). Which is faster depends on the day:
#     on 2026-12-01 whole objects gave 170-200 MiB/s and 1 MiB writes
#     480-540 (the OSD spent 6.2 CPU-seconds per GiB on the first, 1.3 on
#     the second), on 2026-11-30 whole objects 735-763;
#   ceiling read:  rados bench BENCH_SECONDS seq -t 16 of the whole objects;
#   upfs ingest:   cp of a SIZE_MIB random file (in the page cache) into a
#     rados:// session plus the close of its .finish (a durable commit),
#     REPS times;
#   upfs finish:   that close alone;
#   upfs read:     cat of the committed asset after a remount, with the page
#     cache dropped (needs root), REPS times;
#   upfs VmHWM:    the daemon's peak RSS after the uploads.
# With HISTORY_SESSIONS=K (default 0: none), the store is then aged: K
# sessions of HISTORY_FILES (100) files of HISTORY_KIB (24) KiB, each a
# mkdir, cp -r and finish (every fifth aborted with rm -r instead), and the
# ingest and the read are measured again on it. Prints the median cp -r of
# the last three history rounds over the first three (target: at most
# 1.1), and the aged ingest and read over the fresh ones.
# Prints medians, min-max and the ratios upfs / ceiling (targets: ingest
# and read at least 0.8, finish at most 100 ms), and writes that table to
# $OUT/rados_bench.txt when OUT names a directory (tests/bench/bench.sh's
# case (j), RADOS=1). Not part of ctest.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
UPFS_BIN=${1:-${UPFS_BIN:-$REPO/build/upfs}}
SIZE_MIB=${SIZE_MIB:-1024}
REPS=${REPS:-3}
BENCH_SECONDS=${BENCH_SECONDS:-4}
HISTORY_SESSIONS=${HISTORY_SESSIONS:-0}
HISTORY_FILES=${HISTORY_FILES:-100}
HISTORY_KIB=${HISTORY_KIB:-24}
export UPFS_TEST_STORE=rados
export CEPH_OBJECTSTORE=${CEPH_OBJECTSTORE:-bluestore}

TEST_NAME=rados_bench
source "$REPO/tests/integration/lib.sh" "$UPFS_BIN"
require_tools rados awk sha256sum

source "$HERE/stats.sh"   # since, median, range
source "$HERE/daemon.sh"  # daemon_cpu_total
# osd_cpu: CPU seconds of this cluster's OSDs so far (their PIDs, as
# cluster.sh recorded them).
osd_cpu() {
  local pid
  [[ -n $CEPH_DIR ]] || { echo 0; return; }  # a shared cluster's OSDs are not ours to watch
  for pid in $(osd_pids); do cat "/proc/$pid/stat"; done |
    awk -v hz="$(getconf CLK_TCK)" '{ t += $14 + $15 } END { printf "%.2f", t / hz }'
}
mib_per_s() { awk -v s="$1" -v m="$SIZE_MIB" 'BEGIN { printf "%.0f", m / s }'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || log "cannot drop the page cache (not root): reads may be cached"; }

# bench_bandwidth MODE [ARGS]: rados bench's "Bandwidth (MB/sec)" (MiB/s)
# for MODE write (objects kept for seq; ARGS: -b and -O) or seq.
bench_bandwidth() {
  local args=(-p "$RADOS_POOL" bench "$BENCH_SECONDS" "$1" -t 16)
  [[ $1 == write ]] && args+=("${@:2}" --no-cleanup)
  rados "${args[@]}" >"$T/bench-$1.txt" 2>&1 || fail "rados bench $1 failed: $(tail -n 5 "$T/bench-$1.txt")"
  awk -F: '/^Bandwidth \(MB\/sec\)/ { gsub(/ /, "", $2); print $2 }' "$T/bench-$1.txt"
}
bench_cleanup() { rados -p "$RADOS_POOL" cleanup >/dev/null 2>&1 || log "rados cleanup of the bench objects failed"; }

# ceiling PHASE: rados bench write of whole 4 MiB objects, seq of them,
# then write of 1 MiB writes into 4 MiB objects (objects gone after each).
# Appends to ceiling_whole_PHASE, ceiling_1m_PHASE, ceiling_write_PHASE
# (the faster of the two) and ceiling_read_PHASE.
ceiling() {
  local -n whole=ceiling_whole_$1 onem=ceiling_1m_$1 writes=ceiling_write_$1 reads=ceiling_read_$1 \
    osds=ceiling_osd_$1
  local o0
  whole+=("$(bench_bandwidth write -b 4194304)")
  drop_caches
  reads+=("$(bench_bandwidth seq)")
  bench_cleanup
  o0=$(osd_cpu)
  onem+=("$(bench_bandwidth write -b 1048576 -O 4194304)")
  # The OSDs' CPU seconds per GiB of those 1 MiB writes, against upfs's.
  osds+=("$(awk -v a="$o0" -v b="$(osd_cpu)" '/^Total writes made/ { n = $NF }
    END { if (n > 0) printf "%.2f", (b - a) / (n / 1024) }' "$T/bench-write.txt")")
  bench_cleanup
  writes+=("$(awk -v a="${whole[-1]}" -v b="${onem[-1]}" 'BEGIN { print (a > b ? a : b) }')")
}

head -c $((SIZE_MIB << 20)) /dev/urandom >"$T/big"
sum=$(sha256sum "$T/big" | cut -d' ' -f1)

# ingest_rounds PHASE: REPS rounds of cp + close(.finish) into sessions
# PHASE-bR, each after a ceiling measured just before it (from one run to
# the next on this machine the ceiling moved by a third, 454-750 MiB/s, so
# a ratio against a ceiling measured once, minutes away, said little).
# Appends seconds to ingest_PHASE and milliseconds to finish_PHASE.
ingest_rounds() {
  local -n times=ingest_$1 finishes=finish_$1 cpus=ingest_cpu_$1 osds=ingest_osd_$1
  local r t0 t1 t2 c0 o0
  for ((r = 0; r < REPS; r++)); do
    log "ceiling ($1 $r): rados bench $BENCH_SECONDS s write -b 4M -t 16, seq, write -b 1M -O 4M -t 16"
    ceiling "$1"
    # The source is read from the page cache, as rados bench writes from
    # memory: read from the disk the OSD writes to, it cost a third of the
    # ingest (1.5 s of idle CPU waiting on it per GiB, 281-323 against
    # 449-454 MiB/s in one run).
    cat "$T/big" >/dev/null
    mkdir "$MNT/sessions/$1-b$r"
    c0=$(daemon_cpu_total) o0=$(osd_cpu)
    t0=$EPOCHREALTIME
    cp "$T/big" "$MNT/sessions/$1-b$r/big"
    t1=$EPOCHREALTIME
    printf '%s  big\n' "$sum" >"$MNT/sessions/$1-b$r/.finish" || fail "finish of $1-b$r failed"
    t2=$EPOCHREALTIME  # before the CPU look-ups below, which take 0.1 s
    times+=("$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.4f", b - a }')")
    cpus+=("$(awk -v a="$c0" -v b="$(daemon_cpu_total)" 'BEGIN { printf "%.2f", b - a }')")
    osds+=("$(awk -v a="$o0" -v b="$(osd_cpu)" 'BEGIN { printf "%.2f", b - a }')")
    finishes+=("$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", (b - a) * 1000 }')")
  done
}

# read_rounds PHASE: after a remount, a cold cat of each asset PHASE-bR;
# seconds to read_PHASE, the daemon's CPU seconds to read_cpu_PHASE.
read_rounds() {
  local -n times=read_$1 cpus=read_cpu_$1 osds=read_osd_$1
  local r c0 t0 o0
  stop_upfs
  start_upfs
  for ((r = 0; r < REPS; r++)); do
    drop_caches
    c0=$(daemon_cpu_total) o0=$(osd_cpu)
    t0=$EPOCHREALTIME
    cat "$MNT/assets/$1-b$r/big" >/dev/null
    times+=("$(since "$t0")")
    cpus+=("$(awk -v a="$c0" -v b="$(daemon_cpu_total)" 'BEGIN { printf "%.2f", b - a }')")
    osds+=("$(awk -v a="$o0" -v b="$(osd_cpu)" 'BEGIN { printf "%.2f", b - a }')")
  done
}

# history_rounds: HISTORY_SESSIONS sessions of HISTORY_FILES files of
# HISTORY_KIB KiB (mkdir, cp -r, finish; every fifth aborted with rm -r
# instead), each round's cp -r seconds into history.
history_rounds() {
  local src=$T/history k i t0
  mkdir -p "$src"
  for ((i = 0; i < HISTORY_FILES; i++)); do head -c $((HISTORY_KIB << 10)) /dev/urandom >"$src/f$i"; done
  (cd "$src" && sha256sum -- *) >"$T/history.sha256"
  for ((k = 1; k <= HISTORY_SESSIONS; k++)); do
    mkdir "$MNT/sessions/h$k"
    t0=$EPOCHREALTIME
    cp -r "$src/." "$MNT/sessions/h$k/"
    history+=("$(since "$t0")")
    if ((k % 5 == 0)); then
      rm -r "$MNT/sessions/h$k"
    else
      cat "$T/history.sha256" >"$MNT/sessions/h$k/.finish" || fail "finish of history session h$k failed"
    fi
    if ((k == 1 || k % 10 == 0)); then log "history round $k: cp -r ${history[-1]} s"; fi
  done
}

ingest_cpu_fresh=() ingest_cpu_aged=() ingest_osd_fresh=() ingest_osd_aged=() read_osd_fresh=() read_osd_aged=()
ingest_fresh=() finish_fresh=() read_fresh=() read_cpu_fresh=() ceiling_write_fresh=() ceiling_read_fresh=()
ingest_aged=() finish_aged=() read_aged=() read_cpu_aged=() ceiling_write_aged=() ceiling_read_aged=() history=()
ceiling_whole_fresh=() ceiling_1m_fresh=() ceiling_whole_aged=() ceiling_1m_aged=()
ceiling_osd_fresh=() ceiling_osd_aged=()
# A new OSD writes at a quarter of its pace until it has served reads:
# on 2026-12-04 a fresh cluster's `rados bench write -b 1M -O 4M` ran at
# 148-218 MiB/s for five minutes of writes, then at 633-707 right after
# one `seq` of 3 seconds (docs/rados.md). So the cluster serves one write
# and one seq, not measured, before the first ceiling.
log "warm-up: rados bench $BENCH_SECONDS s write -b 4M -t 16, seq (not measured)"
log "warm-up: write $(bench_bandwidth write -b 4194304) MiB/s, seq $(bench_bandwidth seq) MiB/s"
bench_cleanup
start_upfs
ingest_rounds fresh
hwm=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$UPFS_PID/status")
read_rounds fresh
if ((HISTORY_SESSIONS > 0)); then
  log "history: $HISTORY_SESSIONS sessions of $HISTORY_FILES x $HISTORY_KIB KiB, every fifth aborted"
  history_rounds
  ingest_rounds aged
  read_rounds aged
fi
stop_upfs
ingest=("${ingest_fresh[@]}") finish=("${finish_fresh[@]}") read=("${read_fresh[@]}") read_cpu=("${read_cpu_fresh[@]}")

mi=$(median "${ingest[*]}") mr=$(median "${read[*]}")
up_write=$(mib_per_s "$mi") up_read=$(mib_per_s "$mr")
ceiling_write=("${ceiling_write_fresh[@]}") ceiling_read=("${ceiling_read_fresh[@]}")
cw=$(median "${ceiling_write[*]}") cr=$(median "${ceiling_read[*]}")
# Ranges in MiB/s, as the ceiling's.
rates() { local t; for t in $1; do mib_per_s "$t"; echo; done | tr '\n' ' '; }
[[ -z ${OUT:-} ]] || mkdir -p "$OUT"
{
printf '\n%-44s %10s %14s %8s\n' "rados ($CEPH_OBJECTSTORE, ${UPFS_TEST_CEPH_OSDS:-1} OSD), $SIZE_MIB MiB, $REPS reps" MiB/s "min-max" ratio
printf '%-44s %10s %14s %8s\n' "rados bench write -b 4M x 16" "$(median "${ceiling_whole_fresh[*]}")" "$(range "${ceiling_whole_fresh[*]}")" ""
printf '%-44s %10s %14s %8s\n' "rados bench write -b 1M -O 4M x 16" "$(median "${ceiling_1m_fresh[*]}")" "$(range "${ceiling_1m_fresh[*]}")" ""
printf '%-44s %10s %14s %8s\n' "ceiling: the faster of the two, per round" "$cw" "$(range "${ceiling_write[*]}")" ""
printf '%-44s %10s %14s %8s\n' "upfs: cp + close(.finish)" "$up_write" "$(range "$(rates "${ingest[*]}")")" \
  "$(awk -v a="$up_write" -v b="$cw" 'BEGIN { printf "%.2f", a / b }')"
printf '%-44s %10s %14s %8s\n' "ceiling: rados bench seq x 16" "$cr" "$(range "${ceiling_read[*]}")" ""
printf '%-44s %10s %14s %8s\n' "upfs: cat of the asset, cold" "$up_read" "$(range "$(rates "${read[*]}")")" \
  "$(awk -v a="$up_read" -v b="$cr" 'BEGIN { printf "%.2f", a / b }')"
printf '%-44s %10s\n' "upfs: daemon CPU s per ingest" "$(median "${ingest_cpu_fresh[*]}") ($(range "${ingest_cpu_fresh[*]}"))"
printf '%-44s %10s\n' "OSDs: CPU s per GiB of rados bench -b 1M" "$(median "${ceiling_osd_fresh[*]}") ($(range "${ceiling_osd_fresh[*]}"))"
printf '%-44s %10s\n' "OSDs: CPU s per ingest" "$(median "${ingest_osd_fresh[*]}") ($(range "${ingest_osd_fresh[*]}"))"
printf '%-44s %10s\n' "OSDs: CPU s per cold read" "$(median "${read_osd_fresh[*]}") ($(range "${read_osd_fresh[*]}"))"
printf '%-44s %10s\n' "upfs: daemon CPU s per cold read" "$(median "${read_cpu[*]}") ($(range "${read_cpu[*]}"))"
printf '%-44s %10s\n' "upfs: close(.finish) after the cp, ms" "$(median "${finish[*]}") ($(range "${finish[*]}"))"
printf '%-44s %10s\n' "upfs: daemon VmHWM after the uploads, MiB" "$hwm"
if ((HISTORY_SESSIONS > 0)); then
  h=${#history[@]}
  first3=$(median "${history[*]:0:3}") last3=$(median "${history[*]:h-3:3}")
  printf '\nafter %d sessions of %d x %d KiB (every fifth aborted):\n' "$HISTORY_SESSIONS" "$HISTORY_FILES" "$HISTORY_KIB"
  printf '%-44s %10s %14s %8s\n' "history: cp -r, s, rounds 1-3 / last 3" "$first3" "$last3" \
    "$(awk -v a="$last3" -v b="$first3" 'BEGIN { printf "%.2f", a / b }')"
  # aged_rows WHAT BENCH CEILINGS TIMES FRESH_CEILING FRESH_MEDIAN_S: the
  # aged ceiling and upfs against the fresh ones, and upfs against it.
  aged_rows() {
    local -n ceilings=$3 times=$4
    local c t
    c=$(median "${ceilings[*]}") t=$(median "${times[*]}")
    printf '%-44s %10s %14s %8s\n' "aged ceiling: rados bench $2; / fresh" "$c" "$(range "${ceilings[*]}")" \
      "$(awk -v a="$c" -v b="$5" 'BEGIN { printf "%.2f", a / b }')"
    printf '%-44s %10s %14s %8s\n' "aged: $1, MiB/s; / fresh" "$(mib_per_s "$t")" \
      "$(range "$(rates "${times[*]}")")" "$(awk -v a="$6" -v b="$t" 'BEGIN { printf "%.2f", a / b }')"
    printf '%-44s %10s %14s %8s\n' "aged: $1 / aged ceiling" "" "" \
      "$(awk -v a="$(mib_per_s "$t")" -v b="$c" 'BEGIN { printf "%.2f", a / b }')"
  }
  aged_rows "cp + close(.finish)" write ceiling_write_aged ingest_aged "$cw" "$mi"
  aged_rows "cat of the asset, cold" seq ceiling_read_aged read_aged "$cr" "$mr"
  printf '%-44s %10s\n' "aged: daemon CPU s per ingest" "$(median "${ingest_cpu_aged[*]}") ($(range "${ingest_cpu_aged[*]}"))"
  printf '%-44s %10s\n' "aged: daemon CPU s per cold read" "$(median "${read_cpu_aged[*]}") ($(range "${read_cpu_aged[*]}"))"
  printf '%-44s %10s\n' "aged: OSDs' CPU s per ingest" "$(median "${ingest_osd_aged[*]}") ($(range "${ingest_osd_aged[*]}"))"
  printf '%-44s %10s\n' "aged: OSDs' CPU s per cold read" "$(median "${read_osd_aged[*]}") ($(range "${read_osd_aged[*]}"))"
  printf '%-44s %10s\n' "aged: close(.finish) after the cp, ms" "$(median "${finish_aged[*]}") ($(range "${finish_aged[*]}"))"
fi
} | tee ${OUT:+"$OUT/rados_bench.txt"}
