#!/usr/bin/env bash
# tests/ceph/smoke.sh SMOKE_BINARY: starts a throw-away cluster (cluster.sh,
# objectstore from $CEPH_OBJECTSTORE) in a temporary directory, stopped by
# the EXIT trap whatever happens, and runs rados_smoke against a pool made
# for it: once with the conf path, once through $CEPH_CONF.
#
# Without Ceph's daemons installed it exits 77 (ctest: skipped), except
# under CI=true, where that is a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
smoke=${1:?usage: smoke.sh SMOKE_BINARY}

if ! command -v ceph-osd >/dev/null; then
  [[ ${CI:-} == true ]] && { echo "smoke.sh: FAIL: ceph-osd missing; run mount-scripts/deps.sh" >&2; exit 1; }
  echo "smoke.sh: SKIP: Ceph is not installed (mount-scripts/deps.sh)"
  exit 77
fi

d=$(mktemp -d "${TMPDIR:-/tmp}/upfs-ceph.XXXXXX")
trap '"$here/cluster.sh" stop "$d"' EXIT
"$here/cluster.sh" start "$d"
"$here/cluster.sh" pool "$d" smoke
"$smoke" "$d/ceph.conf" admin smoke
CEPH_CONF=$d/ceph.conf "$smoke" "" admin smoke
