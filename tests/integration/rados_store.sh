# shellcheck shell=bash
# tests/integration/rados_store.sh: sourced by lib.sh when
# UPFS_TEST_STORE=rados. The test's store becomes rados://POOL/NAMESPACE,
# a namespace of its own (the test's name and its $T), so start_upfs, fsck
# and everything else in the script run unchanged on RADOS.
#
# The cluster: the one named by UPFS_TEST_CEPH_CONF (pool
# UPFS_TEST_CEPH_POOL, default upfs_it, which must exist; left running),
# or else a throw-away cluster (tests/ceph/cluster.sh, one OSD, memstore
# unless CEPH_OBJECTSTORE says otherwise) started here in $T/ceph and
# stopped by lib.sh's cleanup once the daemon is gone. CEPH_CONF is
# exported, so upfs (librados' own search), `upfs fsck` and the `rados`
# tool all reach it with no option. Without Ceph the test exits 77
# (ctest: skipped), except under CI=true, where that is a failure.
#
# Gives: STORE, RADOS_POOL, RADOS_NS, CEPH_DIR (empty for a shared
# cluster), rados_ns (the rados tool on the test's namespace), osd_pids,
# osd_pid, rados_stripe_bytes, paced_copy.

CLUSTER_SH=$(cd "$(dirname "${BASH_SOURCE[0]}")/../ceph" && pwd)/cluster.sh
CEPH_DIR=
RADOS_NS="$TEST_NAME.${T##*.}"

if [[ -n ${UPFS_TEST_CEPH_CONF:-} ]]; then
  [[ -f $UPFS_TEST_CEPH_CONF ]] || fail "UPFS_TEST_CEPH_CONF=$UPFS_TEST_CEPH_CONF is not a file"
  export CEPH_CONF=$UPFS_TEST_CEPH_CONF
  RADOS_POOL=${UPFS_TEST_CEPH_POOL:-upfs_it}
else
  if ! command -v ceph-osd >/dev/null; then
    [[ ${CI:-} == true ]] && fail "UPFS_TEST_STORE=rados but ceph-osd is missing; run mount-scripts/deps.sh"
    log "SKIP: UPFS_TEST_STORE=rados but Ceph is not installed (mount-scripts/deps.sh)"
    rm -rf "$T"
    exit 77
  fi
  CEPH_DIR=$T/ceph
  RADOS_POOL=upfs_it
  # Until lib.sh's cleanup takes over the EXIT trap.
  trap '"$CLUSTER_SH" stop "$CEPH_DIR"; rm -rf "$T"' EXIT
  "$CLUSTER_SH" start "$CEPH_DIR" "${UPFS_TEST_CEPH_OSDS:-1}" >"$T/cluster-start.log" 2>&1 ||
    fail "cluster.sh start failed: $(tail -n 20 "$T/cluster-start.log")"
  log "$(grep 'writable after' "$T/cluster-start.log")"
  "$CLUSTER_SH" pool "$CEPH_DIR" "$RADOS_POOL" ${UPFS_TEST_CEPH_POOL_ARGS:-} ||
    fail "cluster.sh pool $RADOS_POOL failed"
  export CEPH_CONF=$CEPH_DIR/ceph.conf
fi
STORE=rados://$RADOS_POOL/$RADOS_NS

# rados_ns ARGS...: the rados tool on the test's pool and namespace.
rados_ns() { rados -p "$RADOS_POOL" -N "$RADOS_NS" "$@"; }

# osd_pids: the PIDs of the OSDs this test's cluster started (cluster.sh
# records them), one a line. Never a process found by name.
osd_pids() {
  [[ -n $CEPH_DIR ]] || fail "osd_pids: the cluster is shared (UPFS_TEST_CEPH_CONF), not this test's"
  awk '$1 ~ /^osd\./ { print $2 }' "$CEPH_DIR/pids"
}

# osd_pid ID: the PID of osd.ID of this test's cluster (cluster.sh records
# "osd.ID PID" lines as the OSDs start, in no fixed order).
osd_pid() {
  [[ -n $CEPH_DIR ]] || fail "osd_pid: the cluster is shared (UPFS_TEST_CEPH_CONF), not this test's"
  awk -v name="osd.$1" '$1 == name { print $2 }' "$CEPH_DIR/pids"
}

# rados_stripe_bytes: the bytes of the namespace's stripe objects
# (upfs.b.*), the RADOS counterpart of the size of a store directory's
# blob files.
rados_stripe_bytes() {
  local obj
  for obj in $(rados_ns ls | grep '^upfs\.b\.'); do
    rados_ns stat "$obj"
  done | awk '{ bytes += $NF } END { print bytes + 0 }'
}

# paced_copy SRC DST BYTES MARKER: copies SRC to DST through one open file
# descriptor (dd, conv=fsync): the first BYTES at once, the rest once the
# file MARKER exists, so that a fault the test injects meanwhile lands
# inside the copy. For `bg`; returns dd's status, reports no failure itself.
paced_copy() {
  trap - ERR
  set +eE
  local src=$1 dst=$2 bytes=$3 marker=$4
  {
    head -c "$bytes" "$src"
    until [[ -e $marker ]]; do sleep 0.02; done
    tail -c +$((bytes + 1)) "$src"
  } | dd of="$dst" bs=1M iflag=fullblock conv=fsync status=none
}

# rados_store_report: for a failed test, the cluster's own account of its
# health (slow requests, PGs not active+clean), in the test's output.
rados_store_report() {
  local health
  health=$(timeout 15 ceph health detail 2>&1 | head -n 30) || true
  log "ceph health detail (at the failure): ${health:-no answer within 15 s}"
}

# rados_store_cleanup: lib.sh's cleanup, once the daemon is gone.
rados_store_cleanup() {
  # A test that paused OSDs (SIGSTOP) and failed before resuming them:
  # resumed, so they can stop when told to.
  local pid
  if [[ -n $CEPH_DIR ]]; then
    for pid in $(osd_pids); do
      alive "$pid" && kill -CONT "$pid" 2>/dev/null
    done
  fi
  [[ -z $CEPH_DIR ]] || CEPH_KEEP_DIR=${UPFS_KEEP:-} "$CLUSTER_SH" stop "$CEPH_DIR" >/dev/null 2>&1 ||
    log "cluster.sh stop $CEPH_DIR failed"
}

log "store $STORE (CEPH_CONF=$CEPH_CONF)"
