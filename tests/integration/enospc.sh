#!/usr/bin/env bash
# A full store (docs/store.md, "A full disk, and damaged data"; G4), mounted for real on a
# size-limited tmpfs:
#   * session A holds data; session C holds more; session B uploads a file
#     bigger than the free space: dd gets ENOSPC ("No space left on
#     device"), not EIO, once free space falls to upfs's reserve;
#   * the daemon stays up, A still finishes and its asset verifies, B's
#     bytes received before the failure are intact (.status, cmp);
#   * aborting C (rm -r) frees its space; B then writes only the ranges its
#     .status lists as missing, finishes, and its asset verifies;
#   * offline fsck finds the store clean.
#
# Sizes (tmpfs 1216 MiB, the default reserve of 512 MiB, A 16 MiB, C 448
# MiB, B 256 MiB) fit LevelDB's 64 MiB memtables and its fixed overhead of
# ~50-120 MiB (a log, an unflushed memtable, level-0 tables): B is refused
# after roughly 60-150 MiB, and C's 448 MiB leave room for B's rest (up to
# ~200 MiB) plus that overhead above the reserve. (With C at 192 MiB on 896
# MiB, the resume failed when B had got 129 MiB before its refusal.)
#
#   enospc.sh UPFS_BIN
source "$(dirname "$0")/lib.sh" "$@"
require_tools mount umount df

FS=$T/fs
mkdir -p "$FS"
mount -t tmpfs -o size=1216m upfs-enospc-test "$FS" || {
  [[ ${CI:-} == true ]] && fail "cannot mount a tmpfs (need root)"
  log "SKIP: cannot mount a tmpfs here (need root)"
  exit 77
}
# The daemon is stopped first (unmount, then wait for it: detaching the
# tmpfs under a daemon still closing its store would fail its last
# compaction with "No such file"), then the tmpfs is detached, then lib's
# cleanup checks the daemon's exit and removes $T.
on_exit() {
  local rc=$?
  set +e
  trap - ERR
  if [[ -n $UPFS_PID ]]; then
    mountpoint -q "$MNT" && { fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT"; }
    local deadline=$((SECONDS + 15))
    while alive "$UPFS_PID" && ((SECONDS < deadline)); do sleep 0.05; done
  fi
  umount -l "$FS" 2>/dev/null
  (exit "$rc")
  cleanup
}
trap on_exit EXIT
STORE=$FS/store

free_mib() { df -m --output=avail "$FS" | tail -n 1 | tr -d ' '; }
# status_of NAME KEY [FILE]: the value of KEY in sessions/NAME/.status
# (in FILE's block when given).
status_of() {
  awk -v key="$2" -v file="${3:-}" '
    /^file: / { in_file = (substr($0, 7) == file) }
    (file == "" || in_file) && index($0, key ": ") == 1 { print substr($0, length(key) + 3); exit }' \
    "$MNT/sessions/$1/.status"
}

# Random bytes, fast: AES-CTR keystream (urandom would take seconds).
stream_file() {
  head -c "$2" /dev/zero | openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$1" >"$SRC/$1"
  [[ $(stat -c %s "$SRC/$1") -eq $2 ]] || fail "could not make $2 bytes in $SRC/$1"
}
require_tools openssl
stream_file a.bin $((16 << 20))
stream_file c.bin $((448 << 20))
stream_file b.bin $((256 << 20))

log "sources made ($SECONDS s)"
start_upfs
t0=$SECONDS
mkdir "$MNT/sessions/A" "$MNT/sessions/B" "$MNT/sessions/C"
cp "$SRC/a.bin" "$MNT/sessions/A/"
cp "$SRC/c.bin" "$MNT/sessions/C/"
log "A (16 MiB) and C (448 MiB) written; $(free_mib) MiB free of the 1216 MiB tmpfs ($((SECONDS - t0)) s)"

# B: bigger than the free space above the reserve.
dd_rc=0
dd_err=$(dd if="$SRC/b.bin" of="$MNT/sessions/B/b.bin" bs=1M status=none 2>&1) || dd_rc=$?
((dd_rc != 0)) || fail "writing 256 MiB into a store with $(free_mib) MiB free succeeded"
[[ $dd_err == *"No space left on device"* ]] || fail "dd into a full store: want ENOSPC, got: $dd_err"
ok "B's upload failed with ENOSPC: $dd_err ($(free_mib) MiB free, $((SECONDS - t0)) s)"
assert_daemon_alive
log_has "ENOSPC" "sessions/B" || log_has "ENOSPC" "b.bin" || fail "no log line names B's failed write"
ok "the daemon logged it: $(grep -F ENOSPC "$UPFS_LOG" | head -n 1)"

received=$(status_of B received b.bin)
missing=$(status_of B missing b.bin)
((received > 0 && received < (256 << 20))) || fail "B's .status says $received bytes received"
cmp -n "$received" "$SRC/b.bin" "$MNT/sessions/B/b.bin" || fail "B's $received received bytes differ from the source"
ok "B kept its $received bytes ($((received >> 20)) MiB); missing: $missing ($((SECONDS - t0)) s)"

# Other sessions keep working on the full store: A finishes and verifies.
manifest_of "$SRC" "$T/all.sha256"
grep ' a.bin$' "$T/all.sha256" >"$T/a.sha256"
finish_session A "$T/a.sha256" || fail "finishing A on the full store: $FINISH_ERR"
cmp "$SRC/a.bin" "$MNT/assets/A/a.bin" || fail "asset A differs"
ok "A finished and verifies on the full store ($((SECONDS - t0)) s)"
# A write to a new session is refused the same way, and reads still work.
free_before_d=$(free_mib)
mkdir "$MNT/sessions/D"
# (all 256 MiB: more than any headroom the store can have now)
expect_fail "No space left on device" dd if="$SRC/b.bin" of="$MNT/sessions/D/d.bin" bs=1M status=none
rm -r "$MNT/sessions/D"
# D's bytes are reclaimed in the background: wait until the store is back
# to where it was, so B's resume below does not depend on that timing.
d_reclaimed() { (($(free_mib) + 16 >= free_before_d)); }
wait_until 60 "aborting D to give back its space (to ~$free_before_d MiB free)" d_reclaimed
cmp "$SRC/c.bin" "$MNT/sessions/C/c.bin" || fail "session C reads back wrong on the full store"

# Abort C: its 448 MiB are freed (deleted and compacted away).
before=$(free_mib)
rm -r "$MNT/sessions/C"
freed_enough() { (($(free_mib) - before >= 360)); }
wait_until 60 "aborting C to free 360 MiB (from $before MiB free)" freed_enough
after=$(free_mib)
ok "aborting C freed $((after - before)) MiB ($before -> $after MiB free) ($((SECONDS - t0)) s)"

# B resumes. Its length is the end of its furthest write, so .status
# lists no gap; the client writes from there to the source's length.
[[ $(status_of B received b.bin) == "$received" ]] || fail "B's received bytes changed"
[[ $(status_of B length b.bin) == "$received" && $(status_of B missing b.bin) == none ]] ||
  fail "B: length $(status_of B length b.bin), missing $(status_of B missing b.bin); want $received, none"
from=$received to=$((256 << 20))
put_range "$SRC/b.bin" "$MNT/sessions/B/b.bin" "$from" $((to - from)) || fail "resuming B's upload failed"
[[ $(status_of B missing b.bin) == none ]] || fail "B still misses $(status_of B missing b.bin)"
grep ' b.bin$' "$T/all.sha256" >"$T/b.sha256"
finish_session B "$T/b.sha256" || fail "finishing B after the resume: $FINISH_ERR"
cmp "$SRC/b.bin" "$MNT/assets/B/b.bin" || fail "asset B differs"
(cd "$MNT/assets/A" && sha256sum -c --quiet "$T/a.sha256") || fail "asset A no longer verifies"
ok "B resumed with [$from, $to) only, finished and verifies; $(free_mib) MiB free; $((SECONDS - t0)) s since mount"
assert_daemon_alive
stop_upfs

out=$("$UPFS_BIN" fsck "$STORE" 2>&1) || fail "fsck of the store after the full disk: $out"
ok "fsck: $out"
