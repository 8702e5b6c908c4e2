#!/usr/bin/env bash
# tests/integration/rados_quota.sh UPFS_BINARY (ctest rados.faults.quota,
# label rados): a pool over its byte quota (docs/rados.md; G4 in
# docs/semantics.md): ENOSPC or EDQUOT for upload data, and finishing and
# aborting still work where RADOS allows. On a
# throw-away cluster (rados_store.sh) whose pool has a 40 MB quota: session
# A gets a small file; session B a 100 MB copy, which fails with ENOSPC or
# EDQUOT (not EIO, not a hang); the daemon stays up; A still finishes and
# verifies; df shows B's bytes, aborting B (rm -r) works, and df shows
# their room back.
export UPFS_TEST_STORE=rados
export UPFS_TEST_CEPH_POOL_ARGS="--max-bytes 40000000"
source "$(dirname "$0")/lib.sh" "$@"

random_file "$SRC/a.bin" 300000
random_file "$SRC/big.bin" 100000000
start_upfs
mkdir "$MNT/sessions/A" "$MNT/sessions/B"
cp "$SRC/a.bin" "$MNT/sessions/A/"
ok "session A has its file"

t0=$SECONDS
rc=0
err=$(timeout 120 dd if="$SRC/big.bin" of="$MNT/sessions/B/big.bin" bs=1M conv=fsync status=none 2>&1) || rc=$?
((rc != 124)) || fail "the copy over the quota hung for 120 s"
((rc != 0)) || fail "a 100 MB copy into a pool with a 40 MB quota succeeded"
[[ $err == *"No space left on device"* || $err == *"Disk quota exceeded"* ]] ||
  fail "the copy over the quota: expected ENOSPC or EDQUOT, got: $err"
got=$(stat -c %s "$MNT/sessions/B/big.bin")
ok "the copy over the quota failed after $((SECONDS - t0)) s with $got bytes in: $err"
assert_daemon_alive

(cd "$SRC" && sha256sum a.bin) >"$T/manifest.A"
finish_session A "$T/manifest.A" || fail "finishing A with the pool over its quota: $FINISH_ERR"
(cd "$MNT/assets/A" && sha256sum -c --quiet "$T/manifest.A") || fail "assets/A does not verify"
ok "A finished and verifies with the pool over its quota"

# df follows the pool's statistics, which the cluster reports every few
# seconds: first it must show B's bytes, then (after the abort) their
# room back.
df_avail() { df -B1 --output=avail "$MNT" | tail -n 1; }
room_taken() { (($(df_avail) < 10000000)); }
wait_until 60 "df showing B's bytes (less than 10 MB available)" room_taken
ok "df shows $(df_avail) bytes available with B's bytes in"
rm -r "$MNT/sessions/B" || fail "aborting B (rm -r) with the pool over its quota failed"
[[ ! -e $MNT/sessions/B ]] || fail "sessions/B is still there after rm -r"
ok "aborting B (rm -r) works with the pool over its quota"
room_back() { (($(df_avail) > 30000000)); }
wait_until 60 "df showing the room B held back (more than 30 MB available)" room_back
ok "df shows $(df_avail) bytes available again"
assert_daemon_alive
stop_upfs
