#!/usr/bin/env bash
# tests/integration/rados_unreachable.sh UPFS_BINARY (ctest
# rados.faults.unreachable, label rados): the cluster stops answering (G4,
# docs/semantics.md; -o rados_timeout in docs/rados.md): requests fail with
# EIO or ETIMEDOUT after a documented, configurable timeout, the daemon
# stays up and recovers when the cluster returns.
# Mounted with -o rados_timeout=3 on a throw-away cluster (rados_store.sh),
# a session gets a first file; then every OSD of the cluster is paused
# (SIGSTOP, by the PIDs cluster.sh recorded) while a write is in flight and
# another starts: each fails with EIO or ETIMEDOUT within a bound, the
# daemon stays alive and the mount root still answers `stat`. After
# SIGCONT a new session uploads and finishes, and reads back.
#
# The pause outlasts Ceph's default PG read lease (osd_heartbeat_grace 20 s
# x osd_pool_default_read_lease_ratio 0.8 = 16 s): a PG whose lease ran
# out while its OSD was stopped turns "laggy" and parks client requests
# until the lease is renewed, and in Ceph 16 a laggy PG can stay so for
# good (ceph tracker 53806, fixed in 18.2.0). Seen here: after SIGCONT,
# requests to one PG stayed "delayed" for over 100 s, even the rados
# tool's, while the rest of the cluster answered; upfs could not recover
# because the cluster did not. The test is about the cluster not
# answering and then answering, so its own cluster takes a lease (120 s)
# longer than any pause here: no PG goes laggy.
export CEPH_EXTRA_CONF="osd pool default read lease ratio = 6"
export UPFS_TEST_STORE=rados
source "$(dirname "$0")/lib.sh" "$@"

TIMEOUT_S=3
# A failed write may wait out one timeout per operation it is made of
# (its bytes, then its records, ...), plus the client's own retries; far
# below this, and far below a hang.
BOUND_S=45

mapfile -t osds < <(osd_pids)
((${#osds[@]} >= 1)) || fail "no OSD PIDs recorded in $CEPH_DIR/pids"
for pid in "${osds[@]}"; do alive "$pid" || fail "OSD pid $pid is not running"; done

random_file "$SRC/first.bin" 3000000
random_file "$SRC/stalled.bin" $((24 * 1024 * 1024))
random_file "$SRC/late.bin" 2000000
start_upfs -o rados_timeout=$TIMEOUT_S
mkdir "$MNT/sessions/before"
cp "$SRC/first.bin" "$MNT/sessions/before/"
ok "the first file went in while the cluster answered"

# In flight: a 24 MiB write whose first 8 MiB go in before the pause and
# the rest after it (its source waits for the file $T/paused), through one
# open file descriptor (paced_copy).
bg paced_copy "$SRC/stalled.bin" "$MNT/sessions/before/stalled.bin" $((8 * 1024 * 1024)) "$T/paused"
inflight=$LAST_BG
received() { (($(stat -c %s "$MNT/sessions/before/stalled.bin" 2>/dev/null || echo 0) >= 8 * 1024 * 1024)); }
wait_until 60 "the in-flight write's first 8 MiB" received
for pid in "${osds[@]}"; do kill -STOP "$pid"; done
paused_at=$SECONDS
: >"$T/paused"
log "paused ${#osds[@]} OSD(s) (${osds[*]})"

# Just after the pause: a new write into the same session.
late_rc=0
late_err=$(timeout $((BOUND_S + 30)) dd if="$SRC/late.bin" of="$MNT/sessions/before/late.bin" bs=1M \
  conv=fsync status=none 2>&1) || late_rc=$?
late_s=$((SECONDS - paused_at))
((late_rc != 124)) || fail "a write after the pause hung for $((BOUND_S + 30)) s"
((late_rc != 0)) || fail "a write with every OSD paused succeeded"
[[ $late_err == *"Input/output error"* || $late_err == *"timed out"* ]] ||
  fail "a write with every OSD paused: expected EIO or ETIMEDOUT, got: $late_err"
((late_s <= BOUND_S)) || fail "a write with every OSD paused took $late_s s to fail (bound $BOUND_S s)"
ok "a write begun after the pause failed after $late_s s: $late_err"

wait_job $((BOUND_S + 30)) "$inflight"
inflight_s=$((SECONDS - paused_at))
((JOB_RC != 0)) || fail "the write in flight during the pause succeeded"
((inflight_s <= BOUND_S)) || fail "the write in flight took $inflight_s s after the pause to fail (bound $BOUND_S s)"
ok "the write in flight failed (dd exit $JOB_RC) within $inflight_s s of the pause"
BG_PIDS=()

assert_daemon_alive
timeout 10 stat "$MNT" >/dev/null || fail "stat of the mount root did not answer while the cluster was paused"
ok "the daemon (pid $UPFS_PID) is alive and the mount root answers stat with the cluster paused"

for pid in "${osds[@]}"; do kill -CONT "$pid"; done
resumed_at=$SECONDS
log "resumed the OSDs"

# The cluster is back once the rados tool can write to the namespace
# again; then one new session uploads, finishes and verifies, first time.
printf 'probe' >"$T/probe"
cluster_answers() { timeout 10 rados -p "$RADOS_POOL" -N "$RADOS_NS" put probe "$T/probe" 2>/dev/null; }
wait_until 90 "the cluster answering after the resume" cluster_answers
rados_ns rm probe
mkdir "$MNT/sessions/after"
cp "$SRC/first.bin" "$SRC/late.bin" "$MNT/sessions/after/"
(cd "$SRC" && sha256sum first.bin late.bin) >"$T/manifest.after"
finish_session after "$T/manifest.after" || fail "finishing a session after the resume: $FINISH_ERR"
(cd "$MNT/assets/after" && sha256sum -c --quiet "$T/manifest.after") || fail "assets/after does not verify"
ok "after the resume, a new session uploaded, finished and verified ($((SECONDS - resumed_at)) s after SIGCONT)"
assert_daemon_alive
stop_upfs
