#!/usr/bin/env bash
# tests/store/rados_tests.sh TEST_BINARY: starts a throw-away cluster
# (tests/ceph/test_cluster.sh), stopped whatever happens, makes a pool for
# the stores (each test case uses its own RADOS namespace) and one with a
# 100 MB quota, and runs the store tests built for RADOS against them: the
# tests over every backend (their RadosBackend cases) and the [rados] ones
# (tests/store/rados_test.cc).
# Exits 77 (ctest: skipped) without Ceph installed, unless CI=true.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tests=${1:?usage: rados_tests.sh TEST_BINARY}
source "$here/../ceph/test_cluster.sh"

start_test_cluster rados_tests.sh store
"$CLUSTER_SH" pool "$CEPH_DIR" quota --max-bytes 100000000
# The timeout test pauses the OSD (SIGSTOP, then SIGCONT): the one this
# cluster started, by the PID cluster.sh recorded.
osd_pid=$(awk '$1 == "osd.0" { print $2 }' "$CEPH_DIR/pids")
UPFS_TEST_CEPH_CONF=$CEPH_DIR/ceph.conf UPFS_TEST_CEPH_POOL=store UPFS_TEST_CEPH_QUOTA_POOL=quota \
  UPFS_TEST_CEPH_OSD_PID=$osd_pid "$tests" --warn NoTests "*RadosBackend,[rados]"
