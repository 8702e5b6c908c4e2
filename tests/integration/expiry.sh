#!/usr/bin/env bash
# Expiry (G7; docs/configuration.md, "Other users and expiry"), on a real
# mount with -o ttl=4,sweep_interval=1:
#   - an untouched session holding 8 MiB expires no earlier than its TTL,
#     its data is freed and the store shrinks once the daemon compacts;
#   - a session with an open file descriptor, and one written within the
#     TTL, survive it; a committed asset survives and still verifies;
#   - `.status` shows `expires:` = last_activity + TTL, reading `.status`
#     does not move it, a write does; an open file shows
#     "not while files are open";
#   - once the descriptor closes and the writes stop, those sessions expire
#     too, and an expired name can be begun again.
# Every wait is a poll with a deadline.
source "$(dirname "$0")/lib.sh" "$@"
require_tools du date

TTL=4  # seconds; long enough that a loaded machine keeps "active" within it
start_upfs -o ttl=$TTL,sweep_interval=1

S=$MNT/sessions
# field NAME KEY: KEY's value in sessions/NAME/.status (fails if absent).
field() {
  local v
  v=$(sed -n "s/^$2: //p" "$S/$1/.status" | head -n 1)
  [[ -n $v ]] || return 1
  printf '%s\n' "$v"
}
epoch() { date -u -d "$1" +%s; }
# Bytes the store holds on disk (records in db/, upload bytes in blobs/).
# The store's size: its directory, or on RADOS its stripe objects.
db_bytes() {
  if on_rados; then rados_stripe_bytes; else du -s --block-size=1 "$STORE" | cut -f1; fi
}

# A committed asset, made first so it is the oldest thing in the store.
mkdir "$SRC/asset"
random_file "$SRC/asset/a.bin" 300000
mkdir "$S/kept"
cp "$SRC/asset/a.bin" "$S/kept/"
manifest_of "$SRC/asset" "$T/kept.sha256"
finish_session kept "$T/kept.sha256" || fail "finishing kept: $FINISH_ERR"

# busy: a file held open for the whole TTL.
random_file "$SRC/busy.bin" 65536
mkdir "$S/busy"
cp "$SRC/busy.bin" "$S/busy/f"
# The holder is a background job, so the trap ends it (closing the fd)
# before unmounting even when the test fails.
tail -f /dev/null 3<"$S/busy/f" &
holder=$!
BG_PIDS+=("$holder")
# active: written again and again, always within the TTL.
random_file "$SRC/active.bin" 65536
mkdir "$S/active"
cp "$SRC/active.bin" "$S/active/f"
# idle: 8 MiB, then untouched.
random_file "$SRC/idle.bin" $((8 << 20))
# Taken before the last touch of idle, so idle's last activity is no earlier.
idle_written=$(date +%s)
mkdir "$S/idle"
cp "$SRC/idle.bin" "$S/idle/f"

[[ $(field busy expires) == "not while files are open" ]] ||
  fail "busy: expires '$(field busy expires)', want 'not while files are open'"
ok "a session with an open file says: expires: not while files are open"
idle_expires=$(field idle expires)
idle_last=$(field idle last_activity)
(($(epoch "$idle_expires") - $(epoch "$idle_last") == TTL)) ||
  fail "idle: expires $idle_expires is not last_activity $idle_last + ${TTL}s"
ok "idle: expires $idle_expires = last_activity + ${TTL}s"
db_before=$(db_bytes)
log "the store holds $db_before bytes with the 8 MiB idle session"

# Poll until idle is gone. Every round writes a byte into active (activity
# within the TTL) and checks that reading idle's .status never moved its
# expiry (reading .status is not activity).
off=0
touch_active() {
  printf 'x' | dd of="$S/active/f" bs=1 seek=$((off % 65536)) conv=notrunc status=none
  off=$((off + 4099))
}
active_first=$(field active expires)
active_moved=
deadline=$((SECONDS + 20))
while [[ -d $S/idle ]]; do
  ((SECONDS < deadline)) || fail "idle did not expire within 20s (ttl ${TTL}s)"
  touch_active
  if now=$(field idle expires 2>/dev/null); then
    [[ $now == "$idle_expires" ]] || fail "idle: reading .status moved expires from $idle_expires to $now"
  fi
  now=$(field active expires)
  [[ $now < "$active_first" ]] && fail "active: expires went back from $active_first to $now"
  [[ $now > "$active_first" ]] && active_moved=$now
  sleep 0.2  # pace the writes; not a synchronisation
done
idle_gone=$(date +%s)
((idle_gone >= idle_written + TTL)) ||
  fail "idle expired after $((idle_gone - idle_written))s, before its ${TTL}s TTL"
ok "idle expired $((idle_gone - idle_written))s after its last write (ttl ${TTL}s)"
[[ -n $active_moved ]] || fail "active: writes did not move expires from $active_first"
ok "active: a write moved expires from $active_first to $active_moved"
# The line follows the session's removal from the listing: wait for it.
wait_until 10 "the 'expired' log line for idle" log_has "session 'idle' expired"
ok "the log says: $(grep "session 'idle' expired" "$UPFS_LOG" | head -n 1)"
[[ ! -e $S/idle/f ]] || fail "idle/f still reachable"
[[ $(ls "$S") != *idle* ]] || fail "sessions/ still lists idle"

# The freed bytes leave the store: poll until it is at least 6 MiB smaller
# (the expiry removes the session's blob files), still writing to active.
shrunk() {
  touch_active
  (($(db_bytes) <= db_before - (6 << 20))) && return 0
  sleep 0.2  # pace the writes; not a synchronisation
  return 1
}
wait_until 20 "the store to shrink by 6 MiB from $db_before bytes after the expiry" shrunk
db_after=$(db_bytes)
ok "the store shrank from $db_before to $db_after bytes"

# The survivors.
[[ -d $S/busy && -d $S/active ]] || fail "busy or active expired: $(ls "$S")"
cmp "$SRC/busy.bin" "$S/busy/f" || fail "busy: the file changed"
ok "busy (open fd) and active (recent writes) survived the TTL"
(cd "$MNT/assets/kept" && sha256sum -c --quiet "$T/kept.sha256") || fail "asset kept no longer verifies"
ok "the committed asset survived and verifies"

# Close the descriptor and stop writing: both now expire after the TTL.
kill -TERM "$holder"
wait "$holder" || true
BG_PIDS=()  # reaped: the trap has nothing left to end
wait_until 20 "busy and active to expire once idle" eval '[[ ! -d $S/busy && ! -d $S/active ]]'
ok "busy and active expired once the fd closed and the writes stopped"
# The listing follows: the kernel's cached copy of sessions/ is invalidated
# asynchronously after an expiry (a loaded machine showed 'active' in one
# listing after its lookup already failed).
wait_until 5 "sessions/ to list nothing" eval '[[ -z $(ls -A "$S") ]]'
ok "sessions/ lists nothing"
(cd "$MNT/assets/kept" && sha256sum -c --quiet "$T/kept.sha256") || fail "asset kept no longer verifies"
ok "assets/kept still verifies after every session expired"

mkdir "$S/idle" || fail "the expired name idle cannot be begun again"
ok "the expired name can be begun again"
assert_daemon_alive
