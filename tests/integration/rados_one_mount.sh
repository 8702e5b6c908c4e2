#!/usr/bin/env bash
# tests/integration/rados_one_mount.sh UPFS_BINARY (ctest
# rados.faults.one_mount, label rados): one process at a time serves a
# RADOS store (store/rados_lock.h). Two daemons on one store would each take
# the other for a crashed process and undo its work (roll its commits
# forward, drop its unsynced records, reclaim its blobs), so:
#   * a second mount of the store fails at once (exit 1) naming the holder,
#     and `upfs fsck` of it exits 2 saying it is in use; the first mount
#     goes on working;
#   * after kill -9 of the holder, a mount on the same host starts at once
#     (the dead holder's lock is broken, not waited out) with the asset the
#     dead one committed; after a clean stop the lock is released;
#   * a live holder on another host (a lock the `rados` tool takes with
#     such a cookie) refuses a mount until its lease runs out;
#   * a daemon whose lock another process took (broken behind its back)
#     stops writing to the store within a renewal period: mkdir and a
#     write into an open session's file fail with EIO.
export UPFS_TEST_STORE=rados
source "$(dirname "$0")/lib.sh" "$@"
require_tools rados timeout

LOCK_OBJ=upfs.lock
LOCK_NAME=upfs.store
MNT2=$T/mnt2
mkdir -p "$MNT2"
# A second daemon that mounted after all (the refusal broke) is unmounted
# here, whatever happens, before lib.sh's cleanup stops the cluster.
unmount_second() { ! mountpoint -q "$MNT2" 2>/dev/null || fusermount3 -u -z "$MNT2"; }
lockers() { rados_ns lock info "$LOCK_OBJ" "$LOCK_NAME" 2>/dev/null | tr -d '\n'; }

start_upfs
first=$UPFS_PID
rc=0
out=$(timeout 60 "$UPFS_BIN" -f "$STORE" "$MNT2" 2>&1 </dev/null) || rc=$?
unmount_second
((rc == 1)) || fail "a second mount of the store exited $rc, want 1: $out"
[[ $out == *"is in use by 'upfs-mount host=$(hostname) boot=$(cat /proc/sys/kernel/random/boot_id) pid=$first "* ]] ||
  fail "the refusal does not name the holder (pid $first): $out"
ok "a second mount is refused: $(grep -m1 'in use' <<<"$out")"

rc=0
out=$("$UPFS_BIN" fsck "$STORE" 2>&1) || rc=$?
((rc == 2)) || fail "fsck of the mounted store exited $rc, want 2: $out"
[[ $out == *"in use"* ]] || fail "fsck of the mounted store did not say it is in use: $out"
ok "fsck refuses the mounted store"

mkdir "$SRC/a"
random_file "$SRC/a/a.bin" 3000000
manifest_of "$SRC/a" "$T/a.sha256"
mkdir "$MNT/sessions/a"
cp "$SRC/a/a.bin" "$MNT/sessions/a/"
finish_session a "$T/a.sha256" || fail "finish of a: $FINISH_ERR"
cmp "$SRC/a/a.bin" "$MNT/assets/a/a.bin" || fail "the first mount's asset reads back wrong"
ok "the first mount goes on working"

kill_upfs
[[ $(lockers) == *"pid=$first "* ]] || fail "the killed daemon's lock is not left behind: $(lockers)"
t0=$SECONDS
start_upfs
((SECONDS - t0 < 20)) || fail "the restart after kill -9 took $((SECONDS - t0)) s: it waited out the lease"
log_has "is gone: breaking its lock" || fail "the restart did not say it broke the dead holder's lock"
cmp "$SRC/a/a.bin" "$MNT/assets/a/a.bin" || fail "the asset committed before kill -9 reads back wrong"
ok "after kill -9 a mount on this host starts at once ($((SECONDS - t0)) s) and sees the asset"

stop_upfs
[[ $(lockers) != *"upfs-mount"* ]] || fail "a clean stop left the lock held: $(lockers)"
out=$("$UPFS_BIN" fsck "$STORE" 2>&1) || fail "fsck of the unmounted store: $out"
ok "a clean stop releases the lock; fsck runs"

# A holder on another host, alive as far as anyone here can tell.
rados_ns lock get "$LOCK_OBJ" "$LOCK_NAME" --lock-cookie "upfs-mount host=elsewhere.invalid pid=1 start=1 nonce=0" \
  --lock-duration 6 >/dev/null || fail "rados lock get failed"
taken=$SECONDS
rc=0
out=$(timeout 60 "$UPFS_BIN" -f "$STORE" "$MNT2" 2>&1 </dev/null) || rc=$?
unmount_second
((rc == 1)) || fail "a mount while another host holds the store exited $rc, want 1: $out"
[[ $out == *"host=elsewhere.invalid"* ]] || fail "the refusal does not name the other host: $out"
lease_over() { ((SECONDS - taken > 6)); }
wait_until 30 "the other host's 6 s lease to run out" lease_over
start_upfs
ok "another host's live lock refuses a mount; once its lease ran out, a mount starts"

# Fencing: the lock is broken behind the daemon's back and taken by
# someone else; within a renewal period the daemon stops writing.
mkdir "$MNT/sessions/w"
head -c 100000 /dev/urandom >"$MNT/sessions/w/f"
client=$(rados_ns lock info "$LOCK_OBJ" "$LOCK_NAME" | sed -n 's/.*"name": *"\(client\.[0-9]*\)".*/\1/p' | head -n1)
cookie=$(rados_ns lock info "$LOCK_OBJ" "$LOCK_NAME" | sed -n 's/.*"cookie": *"\([^"]*\)".*/\1/p' | head -n1)
[[ -n $client && $cookie == *"pid=$UPFS_PID "* ]] || fail "cannot find the daemon's lock: $(lockers)"
rados_ns lock break "$LOCK_OBJ" "$LOCK_NAME" "$client" --lock-cookie "$cookie" || fail "rados lock break failed"
rados_ns lock get "$LOCK_OBJ" "$LOCK_NAME" --lock-cookie "upfs-mount host=elsewhere.invalid pid=2 start=2 nonce=1" \
  --lock-duration 300 >/dev/null || fail "rados lock get after the break failed"
rados_ns setxattr "$LOCK_OBJ" holder "upfs-mount host=elsewhere.invalid pid=2 start=2 nonce=1"
n=0
fenced() {
  n=$((n + 1))
  ! mkdir "$MNT/sessions/fence$n" 2>"$T/mkdir.err"
}
wait_until 40 "the daemon to stop writing once another process holds its store" fenced
grep -q "Input/output error" "$T/mkdir.err" || fail "the refused mkdir did not fail with EIO: $(cat "$T/mkdir.err")"
# Bytes too: the blob may be another process's file by now.
if dd if=/dev/zero of="$MNT/sessions/w/f" bs=64k count=1 seek=3 conv=notrunc status=none 2>"$T/dd.err"; then
  fail "a write into an open session's file went through after the lock was taken"
fi
grep -q "Input/output error" "$T/dd.err" || fail "the refused write did not fail with EIO: $(cat "$T/dd.err")"
# Its bytes would have made the file's stripe object 256 KiB long.
for obj in $(rados_ns ls | grep '^upfs\.b\.'); do
  size=$(rados_ns stat "$obj" | awk '{ print $NF }')
  ((size != 262144)) || fail "the refused write's bytes reached $obj"
done
log_has "another process took the store's lock" || fail "the log does not say the lock was taken"
assert_daemon_alive
ok "a daemon whose lock was taken stops writing (mkdir: EIO after $n tries) and stays up"
