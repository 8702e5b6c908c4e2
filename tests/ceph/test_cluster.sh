# tests/ceph/test_cluster.sh, sourced (not run) by the ctest scripts that
# need a throw-away cluster (smoke.sh, tests/store/rados_tests.sh).
#
# start_test_cluster NAME POOL: starts a cluster (cluster.sh, objectstore
# from $CEPH_OBJECTSTORE) in a new temporary directory, $CEPH_DIR, stopped
# by an EXIT trap whatever happens, and makes pool POOL on it. Without Ceph's daemons installed it exits 77
# (ctest: skipped), except under CI=true, where that is a failure. NAME
# prefixes its messages.
CLUSTER_SH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cluster.sh

start_test_cluster() {
  local name=$1 pool=$2
  if ! command -v ceph-osd >/dev/null; then
    [[ ${CI:-} == true ]] && { echo "$name: FAIL: ceph-osd missing; run mount-scripts/deps.sh" >&2; exit 1; }
    echo "$name: SKIP: Ceph is not installed (mount-scripts/deps.sh)"
    exit 77
  fi
  CEPH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/upfs-ceph.XXXXXX")
  trap '"$CLUSTER_SH" stop "$CEPH_DIR"' EXIT
  "$CLUSTER_SH" start "$CEPH_DIR"
  "$CLUSTER_SH" pool "$CEPH_DIR" "$pool"
}
