#!/usr/bin/env bash
# tests/integration/rados_osd_lost.sh UPFS_BINARY (ctest
# rados.faults.osd_lost, label rados): an OSD lost mid-upload
# (docs/development.md, "Test"; G4 in docs/semantics.md): an OSD lost from
# a size-3 pool mid-upload, and the upload and the finish go on. On a
# throw-away cluster of three OSDs with a pool of size 3,
# min_size 2 (rados_store.sh): a 40 MiB file is being copied in, paced so
# that the kill lands inside it; osd.1 gets SIGKILL by the PID cluster.sh
# recorded; the copy and the finish succeed and `sha256sum -c` passes from
# assets/, on this mount and on a fresh one.
export UPFS_TEST_STORE=rados UPFS_TEST_CEPH_OSDS=3
export UPFS_TEST_CEPH_POOL_ARGS="--size 3 --min-size 2"
source "$(dirname "$0")/lib.sh" "$@"

SIZE=$((40 * 1024 * 1024))
HALF=$((16 * 1024 * 1024))
mapfile -t osds < <(osd_pids)
((${#osds[@]} == 3)) || fail "expected 3 OSD PIDs, got: ${osds[*]}"
victim=$(osd_pid 1)
[[ -n $victim ]] || fail "no PID recorded for osd.1"
alive "$victim" || fail "osd.1 (pid $victim) is not running"

size=$(timeout 30 ceph osd pool get "$RADOS_POOL" size) || fail "ceph osd pool get $RADOS_POOL size failed"
[[ $size == "size: 3" ]] || fail "pool $RADOS_POOL: $size, want 3"

random_file "$SRC/big.bin" "$SIZE"
random_file "$SRC/small.txt" 5000
start_upfs
mkdir "$MNT/sessions/up"
cp "$SRC/small.txt" "$MNT/sessions/up/"

# The copy: its first 16 MiB, then (once osd.1 is gone) the rest, through
# one open file descriptor (paced_copy).
bg paced_copy "$SRC/big.bin" "$MNT/sessions/up/big.bin" "$HALF" "$T/killed"
copy=$LAST_BG
received() { (($(stat -c %s "$MNT/sessions/up/big.bin" 2>/dev/null || echo 0) >= HALF)); }
wait_until 60 "the copy's first 16 MiB" received
kill -KILL "$victim"
victim_gone() { ! alive "$victim"; }
wait_until 15 "osd.1 (pid $victim) gone" victim_gone
: >"$T/killed"
killed_at=$SECONDS
ok "osd.1 (pid $victim) killed with $(stat -c %s "$MNT/sessions/up/big.bin") bytes of the copy in"

osd1_down() {
  local dump
  dump=$(timeout 10 ceph osd dump 2>/dev/null) && grep -q '^osd\.1 down' <<<"$dump"
}
wait_until 45 "the monitor marking osd.1 down" osd1_down
log "osd.1 marked down $((SECONDS - killed_at)) s after the kill"
wait_job 120 "$copy"
((JOB_RC == 0)) || fail "the copy failed after the OSD was lost (dd exit $JOB_RC)"
ok "the copy completed $((SECONDS - killed_at)) s after the kill"
BG_PIDS=()
manifest_of "$SRC" "$T/manifest"
finish_session up "$T/manifest" || fail "finishing after the OSD was lost: $FINISH_ERR"
(cd "$MNT/assets/up" && sha256sum -c --quiet "$T/manifest") || fail "assets/up does not verify"
ok "finished and verified from assets/ with osd.1 down"
stop_upfs
start_upfs
(cd "$MNT/assets/up" && sha256sum -c --quiet "$T/manifest") || fail "assets/up does not verify on a fresh mount"
ok "a fresh mount verifies assets/up with osd.1 still down"
stop_upfs
