# shellcheck shell=bash
# tests/bench/daemon.sh: the upfs daemon's own counters, for the
# benchmarks. Sourced after tests/integration/lib.sh (which sets UPFS_PID).

# daemon_cpu: the daemon's user CPU seconds so far; cpu_since C0: since C0.
daemon_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", $14 / hz }' "/proc/$UPFS_PID/stat"; }
# daemon_cpu_ms: its user and system CPU so far, in whole milliseconds;
# daemon_cpu_total: the same in seconds.
daemon_cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$UPFS_PID/stat"; }
daemon_cpu_total() { awk -v ms="$(daemon_cpu_ms)" 'BEGIN { printf "%.2f", ms / 1000 }'; }
cpu_since() { awk -v a="$1" -v b="$(daemon_cpu)" 'BEGIN { printf "%.2f", b - a }'; }

# written: bytes the daemon has caused to be written to storage.
written() { awk '/^write_bytes/ {print $2}' "/proc/$UPFS_PID/io"; }

# settle: sync, then wait (at most 120 s) until the daemon has written
# nothing for a second (LevelDB compacts in the background after a burst
# of small files); seconds in SETTLE_S. A timed case that starts after it
# pays for no earlier case's writeback or compaction.
settle() {
  local t0=$EPOCHREALTIME before after i
  sync
  after=$(written)
  for ((i = 0; i < 120; i++)); do
    before=$after
    sleep 1
    after=$(written)
    [[ $after == "$before" ]] && break
  done
  SETTLE_S=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a - 1 }')
}
