#!/usr/bin/env bash
# tests/ceph/smoke.sh SMOKE_BINARY: starts a throw-away cluster
# (test_cluster.sh), stopped whatever happens, and runs rados_smoke against
# a pool made for it: once with the conf path, once through $CEPH_CONF.
# Exits 77 (ctest: skipped) without Ceph installed, unless CI=true.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
smoke=${1:?usage: smoke.sh SMOKE_BINARY}
source "$here/test_cluster.sh"

start_test_cluster smoke.sh smoke
"$smoke" "$CEPH_DIR/ceph.conf" admin smoke
CEPH_CONF=$CEPH_DIR/ceph.conf "$smoke" "" admin smoke
