#!/usr/bin/env bash
# tests/ceph/measure.sh LATENCY_BINARY [CONFIG...]: the numbers in
# tests/ceph/NOTES.md, on this machine. For each CONFIG (default: all four),
# OBJECTSTORE:OSDS:POOL_SIZE[:nobench], e.g. bluestore:3:3, it starts a
# cluster with cluster.sh in a temporary directory (stopped by the trap),
# then reports:
#   - the time to writable, as cluster.sh prints it;
#   - each daemon's RSS after start, and its peak (VmHWM) after the benches;
#   - rados bench 8 write -b 4M -t 16 (kept) and rados bench 8 seq -t 16;
#   - the load average before each configuration (the machine is shared);
#   - upfs_rados_latency (single synchronous operations) on a fresh pool,
#     before the benches.
# Not run by ctest: it takes about a minute per configuration.
#
# memstore keeps every object in the OSD's memory (twice, by RSS), and an
# 8 s write bench writes several GiB: CEPH_MEMSTORE_BYTES defaults to 6 GiB
# here (cluster.sh's own default is 1 GiB), and the default configurations
# bench memstore with one OSD only (three would need ~3 x 7 GiB of RAM).
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
latency=${1:?usage: measure.sh LATENCY_BINARY [OBJECTSTORE:OSDS:POOL_SIZE[:nobench]...]}
shift
configs=("$@")
((${#configs[@]})) || configs=(memstore:1:1 memstore:3:3:nobench bluestore:1:1 bluestore:3:3)
export CEPH_MEMSTORE_BYTES=${CEPH_MEMSTORE_BYTES:-6442450944}

d=
trap '[[ -z $d ]] || "$here/cluster.sh" stop "$d"' EXIT

# rss_table: one row per daemon of the running cluster: RSS now and peak.
rss_table() {
  local name pid rss hwm
  while read -r name pid; do
    rss=$(awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$pid/status" 2>/dev/null || echo '?')
    hwm=$(awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$pid/status" 2>/dev/null || echo '?')
    printf '| %s | %s MiB | %s MiB |\n' "$name" "$rss" "$hwm"
  done <"$d/pids"
}

for config in "${configs[@]}"; do
  IFS=: read -r store osds size bench <<<"$config"
  echo "## $store, $osds OSD(s), pool size $size"
  echo
  echo "    load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  d=$(mktemp -d "${TMPDIR:-/tmp}/upfs-ceph.XXXXXX")
  CEPH_OBJECTSTORE=$store "$here/cluster.sh" start "$d" "$osds" 2>&1 | sed 's/^/    /'
  "$here/cluster.sh" pool "$d" bench --size "$size" --pg-num 32
  "$here/cluster.sh" pool "$d" lat --size "$size"
  echo
  echo "| daemon | RSS after start | peak so far |"
  echo "|---|---:|---:|"
  rss_table
  echo
  # Latency first, on the fresh cluster: after the benches BlueStore is busy
  # deleting and compacting for a while.
  "$latency" "$d/ceph.conf" admin lat 200
  echo
  [[ $bench == nobench ]] && modes=() || modes=(write seq)
  for mode in "${modes[@]}"; do
    args=(-t 16)
    [[ $mode == write ]] && args+=(-b 4M --no-cleanup)
    rados -c "$d/ceph.conf" -p bench bench 8 "$mode" "${args[@]}" >"$d/bench.$mode" 2>&1
    grep -E '^(Bandwidth \(MB/sec\)|Average IOPS|Average Latency\(s\)|Max latency\(s\)):' \
      "$d/bench.$mode" | sed "s/^/    $mode: /"
  done
  echo
  echo "| daemon | RSS after benches | peak |"
  echo "|---|---:|---:|"
  rss_table
  echo
  "$here/cluster.sh" stop "$d"
  d=
done
