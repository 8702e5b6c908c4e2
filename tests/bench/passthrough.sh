# shellcheck shell=bash
# tests/bench/passthrough.sh: libfuse's passthrough_ll, the FUSE ceiling the
# benchmarks compare upfs with. Sourced after tests/integration/lib.sh:
# compiles the example installed by libfuse3-dev into $T (never copied into
# the repository), gives pt_start/pt_stop for a mount of $PT_SRC at $PT_MNT,
# and a trap that stops it before lib.sh's cleanup.
require_tools gcc pkg-config
PT_SRC=$T/pt-backing
PT_MNT=$T/pt-mnt
PT_PID=
mkdir -p "$PT_SRC" "$PT_MNT"

pt_start() {
  "$T/passthrough_ll" -f -o source="$PT_SRC" "$PT_MNT" </dev/null >>"$T/passthrough.log" 2>&1 &
  PT_PID=$!
  wait_until 10 "passthrough mount" mountpoint -q "$PT_MNT"
}
pt_stop() {
  [[ -n $PT_PID ]] || return 0
  mountpoint -q "$PT_MNT" 2>/dev/null && fusermount3 -u "$PT_MNT"
  wait_gone "$PT_PID" 30 || kill -KILL "$PT_PID"
  wait "$PT_PID" 2>/dev/null || true
  PT_PID=
}
trap 'rc=$?; trap - ERR; set +e; pt_stop; (exit $rc); cleanup' EXIT

PT_C=$(dpkg -L libfuse3-dev 2>/dev/null | grep '/examples/passthrough_ll.c$' | head -n 1 || true)
[[ -n $PT_C && -f $PT_C ]] || fail "passthrough_ll.c not found: install libfuse3-dev"
# shellcheck disable=SC2046
gcc -O2 -Wall -o "$T/passthrough_ll" "$PT_C" $(pkg-config fuse3 --cflags --libs) ||
  fail "could not build $PT_C"
