# shellcheck shell=bash
# tests/support/proc.sh: process checks shared by the test scripts
# (tests/integration/lib.sh, tests/ceph/cluster.sh). Sourced.

# alive PID: the process exists and is not a zombie (a finished child that
# was not yet waited for still answers kill -0).
alive() {
  local s
  { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
  s=${s##*) }
  [[ ${s:0:1} != Z ]]
}
