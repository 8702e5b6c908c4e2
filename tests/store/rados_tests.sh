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
# The run's output is long (a log line per store opened), and CI keeps
# only its head and tail: on a failure, each failed check is printed again
# at the end, with its test case and expansion.
rc=0
UPFS_TEST_CEPH_CONF=$CEPH_DIR/ceph.conf UPFS_TEST_CEPH_POOL=store UPFS_TEST_CEPH_QUOTA_POOL=quota \
  UPFS_TEST_CEPH_OSD_PID=$osd_pid "$tests" --warn NoTests "*RadosBackend,[rados]" 2>&1 |
  tee "$CEPH_DIR/tests.log" || rc=${PIPESTATUS[0]}
if ((rc != 0)); then
  echo "rados_tests.sh: $(basename "$tests") exited $rc; its failures again:"
  # Catch2's console output: a test case's title follows a line of 79
  # dashes; a failure is "FILE:LINE: FAILED:" and its lines up to a blank
  # one; a sanitizer's report ends in "SUMMARY:".
  awk '/^-+$/ && length($0) == 79 { title = 1; next }
       title { title = 0; if ($0 !~ /^[.]/ && $0 !~ /^[^ ]+:[0-9]+$/) test = $0 }
       /: FAILED:$/ { printf "  in \"%s\":\n", test; failing = 1 }
       failing && /^$/ { failing = 0 }
       failing { print "    " $0 }
       /^SUMMARY: / { print "  " $0 }' "$CEPH_DIR/tests.log"
fi
exit "$rc"
