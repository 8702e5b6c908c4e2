#!/usr/bin/env bash
# tests/bench/bench.sh: upfs's side-by-side performance benchmark
# (docs/performance.md).
#
#   tests/bench/bench.sh [UPFS_BIN]            # the full run (about 25 min)
#   SIZE_MIB=128 REPS=1 RSS_BIG_MIB=512 PLOT_SIZES="16 64" tests/bench/bench.sh   # quick
#
# In ONE run on one machine it measures, side by side:
#   (a) cp of a SIZE_MIB random file into a local directory, then sync;
#   (b) the same through libfuse's passthrough_ll (the FUSE ceiling), built
#       at run time from the installed example (libfuse3-dev) into the
#       temporary directory: cp, then sync;
#   (c) cp into a upfs session, then close of a .finish manifest naming its
#       SHA-256 (durable commit);
#   (d) cat of the committed asset to /dev/null after a remount, against
#       the same read through (b) after its remount;
#   (e) SMALL_FILES files of SMALL_KIB KiB: cp -r (+ sync, or + finish);
#   (f) upfs: 4 dd writers to disjoint quarters of one file, and 4 to 4
#       files, against one writer (each including the finish);
#   (g) the finish latency alone after (c);
#   (h) the daemon's peak RSS (VmHWM) after an upload of RSS_SMALL_MIB and
#       of RSS_BIG_MIB, each in a fresh daemon;
# and prints a table of medians over REPS repetitions, min-max and ratios,
# then ingest throughput against file size (PLOT_SIZES, MiB) for the local
# directory, passthrough and upfs, drawn with gnuplot as a PNG. Last,
#   (i) speed after history (G6), in one daemon on one store: a
#       HISTORY_BIG_MIB file's cp + finish, HISTORY_BIG_REPS times;
#       HISTORY_SESSIONS rounds of mkdir, cp -r of HISTORY_FILES files of
#       HISTORY_KIB KiB, finish; one more such round; the big file again.
#       Prints the ratio of the last round's cp -r time to the first's,
#       and of the big file's median time after the history to before,
#       each also in the daemon's user CPU time (targets: at most 1.1), into
#       history.txt, with every round's times in history.dat.
#   (j) with RADOS=1, the RADOS column: upfs over a throw-away Ceph cluster
#       against `rados bench` on it (tests/bench/rados_bench.sh, with
#       SIZE_MIB=RADOS_MIB and REPS), into rados_bench.txt.
#
# Options (environment): SIZE_MIB=1024 REPS=3 SMALL_FILES=1000 SMALL_KIB=64
# RSS_SMALL_MIB=256 RSS_BIG_MIB=4096 PLOT_SIZES="16 64 256 1024"
# PLOT_REPS=1 OUT=tests/bench/results (table.txt, plot.dat, bench.png)
# HISTORY_SESSIONS=50 HISTORY_FILES=1000 HISTORY_KIB=24 HISTORY_BIG_MIB=1024
# HISTORY_BIG_REPS=3 RADOS=0 RADOS_MIB=1024 HISTORY_ONLY=0 (1: only (i), e.g.
#   HISTORY_ONLY=1 HISTORY_SESSIONS=20 HISTORY_FILES=500 HISTORY_BIG_MIB=256 tests/bench/bench.sh)
# DROP_CACHES=0 (1: also drop the kernel's page cache before each read, so
# (d) reads the disk; needs root) UPFS_KEEP=1 keeps the temporary directory.
# The temporary directory (TMPDIR, default /tmp) needs about
# 3 x SIZE_MIB + 2 x RSS_BIG_MIB of free space, and (i)
# (2 x HISTORY_BIG_REPS + 1) x HISTORY_BIG_MIB MiB
# + (HISTORY_SESSIONS + 2) x HISTORY_FILES x HISTORY_KIB KiB.
#
# Not part of ctest: it takes minutes and its numbers depend on the machine.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
UPFS_BIN=${1:-${UPFS_BIN:-$REPO/build/upfs}}

SIZE_MIB=${SIZE_MIB:-1024}
REPS=${REPS:-3}
SMALL_FILES=${SMALL_FILES:-1000}
SMALL_KIB=${SMALL_KIB:-64}
RSS_SMALL_MIB=${RSS_SMALL_MIB:-256}
RSS_BIG_MIB=${RSS_BIG_MIB:-4096}
PLOT_SIZES=${PLOT_SIZES:-16 64 256 1024}
PLOT_REPS=${PLOT_REPS:-1}
DROP_CACHES=${DROP_CACHES:-0}
HISTORY_SESSIONS=${HISTORY_SESSIONS:-50}
HISTORY_FILES=${HISTORY_FILES:-1000}
HISTORY_KIB=${HISTORY_KIB:-24}
HISTORY_BIG_MIB=${HISTORY_BIG_MIB:-1024}
HISTORY_BIG_REPS=${HISTORY_BIG_REPS:-3}
HISTORY_ONLY=${HISTORY_ONLY:-0}
RADOS=${RADOS:-0}
RADOS_MIB=${RADOS_MIB:-1024}
OUT=$(mkdir -p "${OUT:-$REPO/tests/bench/results}" && cd "${OUT:-$REPO/tests/bench/results}" && pwd)

# lib.sh gives the temporary directory $T, start_upfs/stop_upfs (one
# daemon at a time, $STORE at $MNT), finish_session, and a trap that
# unmounts and removes everything.
source "$REPO/tests/integration/lib.sh" "$UPFS_BIN"
TEST_NAME=bench
require_tools gnuplot cp sync awk dd

source "$HERE/passthrough.sh"
LOCAL=$T/local
mkdir -p "$LOCAL"

now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.6f", b - a }'; }
drop_caches() {
  sync
  if [[ $DROP_CACHES == 1 ]]; then echo 3 >/proc/sys/vm/drop_caches; fi
}
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# Samples: SAMPLES[key] holds space-separated seconds (or KiB for RSS).
declare -A SAMPLES
record() { SAMPLES[$1]="${SAMPLES[$1]:-} $2"; }
# stat KEY: "median min max" of its samples.
stats() {
  tr ' ' '\n' <<<"${SAMPLES[$1]:-}" | awk 'NF' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan nan nan"; exit }
          m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          print m, v[1], v[NR] }'
}

# User CPU seconds the daemon has used, and since such a reading: upfs's
# own work (LevelDB's included), without the kernel's (FUSE, page cache,
# writeback; the last grows with the data written so far, history or not).
source "$HERE/daemon.sh"  # daemon_cpu, cpu_since, settle

# small_files DIR COUNT KIB: COUNT random files of KIB KiB in DIR, and
# their manifests: DIR.manifest, and DIR.session.manifest for DIR copied
# into a session as small/.
small_files() {
  local i
  mkdir -p "$1"
  for ((i = 0; i < $2; i++)); do
    head -c $(($3 << 10)) /dev/urandom >"$1/f$i"
  done
  manifest_of "$1" "$1.manifest"
  sed 's|  |  small/|' "$1.manifest" >"$1.session.manifest"
}

# A fresh store per measurement: no run pays for the one before.
fresh_upfs() {
  stop_upfs
  rm -rf "$STORE"
  start_upfs "$@"
}

SESSION_NO=0
new_session() {
  SESSION_NO=$((SESSION_NO + 1))
  SESSION=s$SESSION_NO
  mkdir "$MNT/sessions/$SESSION"
}

# (i) speed after history: everything in one daemon on one store, as a
# long-running server sees it (no remount, so no compaction at open).
history_case() {
  local src=$T/src/history big=$T/src/history-big.bin round t0 c0 cp_s cpu_s finish_s
  log "(i) history: $HISTORY_SESSIONS sessions of $HISTORY_FILES x $HISTORY_KIB KiB, a $HISTORY_BIG_MIB MiB file before and after"
  small_files "$src" "$HISTORY_FILES" "$HISTORY_KIB"
  random_file "$big" $((HISTORY_BIG_MIB << 20))
  printf '%s  big.bin\n' "$(sha_of "$big")" >"$T/src/history-big.manifest"
  # Each after a settle (a sync, then the daemon idle), so that no round
  # pays for the writeback of the one before, nor for the compaction of
  # the history's small files (their seconds are logged: upfs's cost, but
  # not the big file's). Wall time still depends on the machine's memory
  # (on the 2-core CI VM, past the first GiB written, each 256 MiB took
  # 0.4 s, then up to 1.4 s, with no history, all of it kernel time: pages
  # the VM handed back to its host cost a fault each to fill again;
  # docs/performance.md, "Memory that costs to touch"): hence the median,
  # each round in the log, and the daemon's user CPU time.
  big_rounds() {
    local rep c0
    for ((rep = 1; rep <= HISTORY_BIG_REPS; rep++)); do
      new_session
      settle
      t0=$(now)
      c0=$(daemon_cpu)
      cp "$big" "$MNT/sessions/$SESSION/big.bin"
      finish_session "$SESSION" "$T/src/history-big.manifest" || fail "finish of $SESSION: $FINISH_ERR"
      record "$1" "$(since "$t0")"
      record "$1_cpu" "$(cpu_since "$c0")"
      log "(i) $1: ${SAMPLES[$1]##* } s, daemon user CPU ${SAMPLES[$1_cpu]##* } s (settled for $SETTLE_S s before)"
    done
  }
  fresh_upfs
  big_rounds i_big_before
  : >"$OUT/history.dat"
  for ((round = 1; round <= HISTORY_SESSIONS + 1; round++)); do
    new_session
    t0=$(now)
    c0=$(daemon_cpu)
    cp -r "$src" "$MNT/sessions/$SESSION/small"
    cp_s=$(since "$t0")
    cpu_s=$(cpu_since "$c0")
    t0=$(now)
    finish_session "$SESSION" "$T/src/history.session.manifest" || fail "finish of $SESSION: $FINISH_ERR"
    finish_s=$(since "$t0")
    printf '%d %s %s %s\n' "$round" "$cp_s" "$finish_s" "$cpu_s" >>"$OUT/history.dat"
    if ((round == 1 || round % 10 == 0 || round > HISTORY_SESSIONS)); then
      log "(i) round $round: cp -r $cp_s s (daemon user CPU $cpu_s s), finish $finish_s s"
    fi
  done
  big_rounds i_big_after
  stop_upfs
  rm -rf "$STORE" "$src" "$big"
  # The first and last rounds, and the medians of the first and last three
  # (one round is one sample on a shared machine).
  awk -v k="$HISTORY_SESSIONS" -v n="$HISTORY_FILES" -v kib="$HISTORY_KIB" -v mib="$HISTORY_BIG_MIB" \
    -v before="$(stats i_big_before | cut -d' ' -f1)" -v after="$(stats i_big_after | cut -d' ' -f1)" \
    -v cpu_before="$(stats i_big_before_cpu | cut -d' ' -f1)" -v cpu_after="$(stats i_big_after_cpu | cut -d' ' -f1)" \
    -v reps="$HISTORY_BIG_REPS" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" \
    -v when="$(date -u '+%Y-%m-%d %H:%M UTC')" -v cores="$(nproc)" '
    function median3(a, b, c) { return a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b)) }
    { cp[$1] = $2; fin[$1] = $3; cpu[$1] = $4; last = $1 }
    END {
      printf "upfs speed after history (i), %s, %d cores, load %s at the end\n", when, cores, load
      printf "one daemon, one store: %d sessions of %d x %d KiB committed (mkdir, cp -r, finish), then one more\n\n", k, n, kib
      printf "| %-46s | %10s | %15s | %-6s |\n", "case", "at start s", "after history s", "ratio"
      printf "| %-46s | %10s | %15s | %-6s |\n", "----------------------------------------------", "---------:", "--------------:", "------"
      printf "| %-46s | %10.3f | %15.3f | %6.2f |\n", "cp -r, round 1 / round " last, cp[1], cp[last], cp[last] / cp[1]
      if (last >= 6) {
        f = median3(cp[1], cp[2], cp[3]); l = median3(cp[last - 2], cp[last - 1], cp[last])
        printf "| %-46s | %10.3f | %15.3f | %6.2f |\n", "cp -r, median of rounds 1-3 / " last - 2 "-" last, f, l, l / f
      }
      printf "| %-46s | %10.2f | %15.2f | %6.2f |\n", "cp -r daemon user CPU, round 1 / round " last, cpu[1], cpu[last], cpu[last] / cpu[1]
      printf "| %-46s | %10.3f | %15.3f | %6.2f |\n", "finish, round 1 / round " last, fin[1], fin[last], fin[last] / fin[1]
      printf "| %-46s | %10.3f | %15.3f | %6.2f |\n", mib " MiB cp + finish, median of " reps, before, after, after / before
      printf "| %-46s | %10.0f | %15.0f |        |\n", mib " MiB cp + finish, MB/s", mib * 1048576 / before / 1e6, mib * 1048576 / after / 1e6
      printf "| %-46s | %10.2f | %15.2f | %6.2f |\n", mib " MiB cp + finish, daemon user CPU, median", cpu_before, cpu_after, cpu_after / cpu_before
      printf "\ntarget: every ratio at most 1.1; each round'"'"'s times in history.dat (round, cp -r s, finish s, daemon user CPU s of the cp -r)\n"
    }' "$OUT/history.dat" | tee "$OUT/history.txt"
}

if [[ $HISTORY_ONLY == 1 ]]; then
  history_case
  exit 0
fi

log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
log "making the sources in $T/src"
BIG=$T/src/big.bin
random_file "$BIG" $((SIZE_MIB << 20))
BIG_SHA=$(sha_of "$BIG")
SMALL=$T/src/small
small_files "$SMALL" "$SMALL_FILES" "$SMALL_KIB"
printf '%s  big.bin\n' "$BIG_SHA" >"$T/src/big.manifest"

for ((rep = 1; rep <= REPS; rep++)); do
  log "repetition $rep/$REPS (load $(cut -d' ' -f1-3 /proc/loadavg))"
  # (a) local directory
  drop_caches
  t0=$(now); cp "$BIG" "$LOCAL/big.bin"; sync; record a "$(since "$t0")"
  rm -f "$LOCAL/big.bin"

  # (b) passthrough, then (d) its read after a remount
  pt_start
  t0=$(now); cp "$BIG" "$PT_MNT/big.bin"; sync; record b "$(since "$t0")"
  pt_stop; drop_caches; pt_start
  t0=$(now); cat "$PT_MNT/big.bin" >/dev/null; record d_pt "$(since "$t0")"
  rm -f "$PT_MNT/big.bin"
  pt_stop

  # (c) upfs: cp + finish; (g) the finish alone; (d) read after a remount
  fresh_upfs
  new_session
  t0=$(now)
  cp "$BIG" "$MNT/sessions/$SESSION/big.bin"
  t1=$(now)
  finish_session "$SESSION" "$T/src/big.manifest" || fail "finish of $SESSION: $FINISH_ERR"
  t2=$(now)
  record c "$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.4f", b - a }')"
  record g "$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.4f", b - a }')"
  stop_upfs; drop_caches; start_upfs
  t0=$(now); cat "$MNT/assets/$SESSION/big.bin" >/dev/null; record d_upfs "$(since "$t0")"
  [[ $(sha_of "$MNT/assets/$SESSION/big.bin") == "$BIG_SHA" ]] || fail "asset $SESSION reads back wrong bytes"

  # (e) many small files
  drop_caches
  t0=$(now); cp -r "$SMALL" "$LOCAL/small"; sync; record e_local "$(since "$t0")"
  rm -rf "$LOCAL/small"
  pt_start
  sync  # untimed: no case pays for the writeback of another
  t0=$(now); cp -r "$SMALL" "$PT_MNT/small"; sync; record e_pt "$(since "$t0")"
  rm -rf "$PT_MNT/small"
  pt_stop
  fresh_upfs
  new_session
  sync
  t0=$(now)
  cp -r "$SMALL" "$MNT/sessions/$SESSION/small"
  finish_session "$SESSION" "$T/src/small.session.manifest" || fail "finish of $SESSION: $FINISH_ERR"
  record e_upfs "$(since "$t0")"

  # (f) parallel writers, each case with its finish
  q=$(((SIZE_MIB << 20) / 4))
  fresh_upfs
  new_session
  t0=$(now)
  put_range "$BIG" "$MNT/sessions/$SESSION/big.bin" 0 $((SIZE_MIB << 20))
  finish_session "$SESSION" "$T/src/big.manifest" || fail "finish of $SESSION: $FINISH_ERR"
  record f1 "$(since "$t0")"
  fresh_upfs
  new_session
  t0=$(now)
  pids=()
  for k in 0 1 2 3; do
    put_range "$BIG" "$MNT/sessions/$SESSION/big.bin" $((k * q)) "$q" &
    pids+=($!)
  done
  wait_jobs 600 "a quarter writer" "${pids[@]}"
  finish_session "$SESSION" "$T/src/big.manifest" || fail "finish of $SESSION: $FINISH_ERR"
  record f4one "$(since "$t0")"
  fresh_upfs
  new_session
  t0=$(now)
  pids=()
  for k in 0 1 2 3; do
    dd if="$BIG" of="$MNT/sessions/$SESSION/q$k" bs=1M iflag=skip_bytes,count_bytes \
      skip=$((k * q)) count="$q" status=none &
    pids+=($!)
  done
  wait_jobs 600 "a file writer" "${pids[@]}"
  : >"$T/src/empty.manifest"
  finish_session "$SESSION" "$T/src/empty.manifest" || fail "finish of $SESSION: $FINISH_ERR"
  record f4files "$(since "$t0")"
  stop_upfs
done

# (h) peak RSS of a fresh daemon after one upload of each size
vmhwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$UPFS_PID/status"; }
rss_upload() {
  local mib=$1 src=$T/src/rss.bin
  rm -f "$src"
  local left=$((mib << 20))
  while ((left > 0)); do
    head -c "$left" "$BIG" >>"$src"
    left=$((left - (SIZE_MIB << 20)))
  done
  printf '%s  rss.bin\n' "$(sha_of "$src")" >"$T/src/rss.manifest"
  fresh_upfs
  new_session
  cp "$src" "$MNT/sessions/$SESSION/rss.bin"
  finish_session "$SESSION" "$T/src/rss.manifest" || fail "finish of $SESSION: $FINISH_ERR"
  record "h$mib" "$(vmhwm_kib)"
  rm -f "$src"
  stop_upfs
  rm -rf "$STORE"
}
log "peak RSS: $RSS_SMALL_MIB MiB and $RSS_BIG_MIB MiB uploads"
rss_upload "$RSS_SMALL_MIB"
rss_upload "$RSS_BIG_MIB"

# Throughput against file size, for the plot.
log "throughput against file size: $PLOT_SIZES MiB"
: >"$OUT/plot.dat"
for mib in $PLOT_SIZES; do
  src=$T/src/plot.bin
  rm -f "$src"
  if ((mib <= SIZE_MIB)); then head -c $((mib << 20)) "$BIG" >"$src"; else random_file "$src" $((mib << 20)); fi
  printf '%s  plot.bin\n' "$(sha_of "$src")" >"$T/src/plot.manifest"
  for ((rep = 1; rep <= PLOT_REPS; rep++)); do
    drop_caches
    t0=$(now); cp "$src" "$LOCAL/plot.bin"; sync; record "p_local_$mib" "$(since "$t0")"
    rm -f "$LOCAL/plot.bin"
    pt_start
    t0=$(now); cp "$src" "$PT_MNT/plot.bin"; sync; record "p_pt_$mib" "$(since "$t0")"
    rm -f "$PT_MNT/plot.bin"
    pt_stop
    fresh_upfs
    new_session
    t0=$(now)
    cp "$src" "$MNT/sessions/$SESSION/plot.bin"
    finish_session "$SESSION" "$T/src/plot.manifest" || fail "finish of $SESSION: $FINISH_ERR"
    record "p_upfs_$mib" "$(since "$t0")"
  done
  mbs() { read -r m _ <<<"$(stats "$1")"; awk -v b=$((mib << 20)) -v s="$m" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
  printf '%s %s %s %s\n' "$mib" "$(mbs "p_local_$mib")" "$(mbs "p_pt_$mib")" "$(mbs "p_upfs_$mib")" >>"$OUT/plot.dat"
done
stop_upfs

# The table. Throughput rows: MB/s = bytes / median seconds; min-max are
# the throughputs of the slowest and fastest repetition.
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
BIG_BYTES=$((SIZE_MIB << 20))
SMALL_BYTES=$((SMALL_FILES * SMALL_KIB << 10))
declare -A MED
for key in "${!SAMPLES[@]}"; do
  read -r MED[$key] _ <<<"$(stats "$key")"
done
row() {  # row LABEL KEY BYTES [RATIO_TEXT]
  local med lo hi
  read -r med lo hi <<<"$(stats "$2")"
  awk -v l="$1" -v b="$3" -v m="$med" -v lo="$lo" -v hi="$hi" -v r="${4:-}" 'BEGIN {
    printf "| %-52s | %8.1f | %6.0f | %6.0f-%-6.0f | %-22s |\n", l, m, b / m / 1e6, b / hi / 1e6, b / lo / 1e6, r }'
}
ratio() { awk -v a="${MED[$1]}" -v b="${MED[$2]}" 'BEGIN { printf "%.2f", b / a }'; }  # speed(1)/speed(2) from times
{
  echo "upfs benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r)"
  echo "load average: $LOAD_END at the end; REPS=$REPS, file ${SIZE_MIB} MiB, ${SMALL_FILES} x ${SMALL_KIB} KiB, DROP_CACHES=$DROP_CACHES"
  echo
  echo "| case                                                 | median s |   MB/s | MB/s min-max  | ratio                  |"
  echo "| ---------------------------------------------------- | -------: | -----: | ------------- | ---------------------- |"
  row "(a) cp ${SIZE_MIB} MiB to a local directory + sync" a $BIG_BYTES
  row "(b) cp ${SIZE_MIB} MiB through passthrough_ll + sync" b $BIG_BYTES
  row "(c) cp ${SIZE_MIB} MiB into upfs + finish" c $BIG_BYTES "c/b $(ratio c b)"
  row "(d) read the upfs asset after a remount" d_upfs $BIG_BYTES
  row "(d) read through passthrough_ll after a remount" d_pt $BIG_BYTES
  echo "| (d) ratio upfs/passthrough                           |          |        |               | d $(ratio d_upfs d_pt)                 |"
  row "(e) ${SMALL_FILES} x ${SMALL_KIB} KiB cp -r local + sync" e_local $SMALL_BYTES
  row "(e) ${SMALL_FILES} x ${SMALL_KIB} KiB cp -r passthrough + sync" e_pt $SMALL_BYTES
  row "(e) ${SMALL_FILES} x ${SMALL_KIB} KiB cp -r upfs + finish" e_upfs $SMALL_BYTES "e/b $(ratio e_upfs e_pt), e/a $(ratio e_upfs e_local)"
  row "(f) upfs 1 writer (dd) + finish" f1 $BIG_BYTES
  row "(f) upfs 4 writers, quarters of one file + finish" f4one $BIG_BYTES "vs 1 writer $(ratio f4one f1)"
  row "(f) upfs 4 writers, 4 files + finish" f4files $BIG_BYTES "vs 1 writer $(ratio f4files f1)"
  read -r med lo hi <<<"$(stats g)"
  awk -v m="$med" -v lo="$lo" -v hi="$hi" 'BEGIN {
    printf "| %-52s | %8.4f |        | %.1f-%.1f ms | %-22s |\n", "(g) finish latency after (c)", m, lo * 1e3, hi * 1e3, sprintf("%.1f ms", m * 1e3) }'
  read -r hs _ <<<"$(stats "h$RSS_SMALL_MIB")"
  read -r hb _ <<<"$(stats "h$RSS_BIG_MIB")"
  awk -v s="$hs" -v b="$hb" -v ms="$RSS_SMALL_MIB" -v mb="$RSS_BIG_MIB" 'BEGIN {
    printf "| %-52s |          |        |               | %-22s |\n", "(h) daemon VmHWM after a " ms " MiB upload", sprintf("%.1f MiB", s / 1024)
    printf "| %-52s |          |        |               | %-22s |\n", "(h) daemon VmHWM after a " mb " MiB upload", sprintf("%.1f MiB (%.2fx)", b / 1024, b / s) }'
  echo
  echo "ingest throughput (MB/s) against file size, median of $PLOT_REPS (plot.dat):"
  echo "MiB local passthrough upfs"
  cat "$OUT/plot.dat"
} | tee "$OUT/table.txt"

gnuplot <<EOF
set terminal pngcairo noenhanced size 900,560 font ",11"
set output "$OUT/bench.png"
set title "Ingest throughput against file size (cp + sync; upfs: cp + finish)\n$(nproc) cores, load $LOAD_END"
set xlabel "file size (MiB)"
set ylabel "MB/s"
set logscale x 2
set key left top
set grid
set yrange [0:*]
plot "$OUT/plot.dat" using 1:2 with linespoints lw 2 title "local directory", \
     "" using 1:3 with linespoints lw 2 title "FUSE passthrough_ll", \
     "" using 1:4 with linespoints lw 2 title "upfs"
EOF
log "wrote $OUT/table.txt, $OUT/plot.dat and $OUT/bench.png"
history_case
log "wrote $OUT/history.txt and $OUT/history.dat"
if [[ $RADOS == 1 ]]; then
  # Its own script, cluster and daemon (one daemon at a time: this one's
  # daemon is stopped by now).
  SIZE_MIB=$RADOS_MIB REPS=$REPS OUT=$OUT bash "$HERE/rados_bench.sh" "$UPFS_BIN" ||
    fail "the RADOS case (tests/bench/rados_bench.sh) failed"
  log "wrote $OUT/rados_bench.txt"
fi
