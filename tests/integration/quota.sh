#!/usr/bin/env bash
# tests/integration/quota.sh UPFS_BINARY (ctest integration.quota and
# rados.integration.quota): per-user limits through a real mount
# (docs/configuration.md, "Per-user limits").
#   - 8 parallel dd writers of one uid (nobody) against -o quota=8M: the
#     writes past it fail with EDQUOT ("Disk quota exceeded"), the files
#     hold no more than the quota together, and .status names the limit
#   - -o max_sessions=2: a third mkdir fails with EDQUOT
#   - both hold after a restart (counted again from the store)
#   - a commit gives the bytes and the session back; root is exempt
source "$(dirname "$0")/lib.sh" "$@"
require_tools setpriv

[[ $(id -u) == 0 ]] || { log "SKIP: needs root (to act as another user)"; exit 77; }
id nobody >/dev/null 2>&1 || fail "no user nobody"
NOGROUP=$(id -gn nobody)
NOBODY_UID=$(id -u nobody)
as_nobody() { setpriv --reuid=nobody --regid="$NOGROUP" --clear-groups -- "$@"; }
chmod 0755 "$T" "$SRC"
umask 022

QUOTA=$((8 << 20))
OPTS=(-o allow_other -o quota=8M -o max_sessions=2)
start_upfs "${OPTS[@]}"
S=$MNT/sessions

# session_bytes NAME: the bytes of the session's files, summed.
session_bytes() { find "$S/$1" -type f ! -name .finish ! -name .status -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }'; }

as_nobody mkdir "$S/q1"
# Each writer records dd's status itself (a failing background job would
# trip the test's ERR trap).
pids=()
for i in 0 1 2 3 4 5 6 7; do
  bg sh -c 'setpriv --reuid=nobody --regid="$1" --clear-groups -- dd if=/dev/zero of="$2" bs=256K count=8 \
              status=none 2>"$3"; echo $? >"$3.rc"' sh "$NOGROUP" "$S/q1/f$i" "$T/dd$i.err"
  pids+=("$LAST_BG")
done
wait_jobs 120 "the writers" "${pids[@]}"
failed=$(cat "$T"/dd*.err.rc | grep -cv '^0$' || true)
held=$(session_bytes q1)
log "8 writers of 2 MiB: $failed failed, the session holds $held bytes (quota $QUOTA)"
((failed > 0)) || fail "16 MiB against an 8 MiB quota: no writer failed"
grep -l "Disk quota exceeded" "$T"/dd*.err >/dev/null || fail "no writer saw EDQUOT: $(cat "$T"/dd*.err)"
((held <= QUOTA)) || fail "the writers passed the quota together: $held > $QUOTA bytes"
((held > QUOTA - (1 << 20))) || fail "the quota refused too early: $held bytes held"
grep -q "^quota: uid $NOBODY_UID holds $held of $QUOTA bytes, 1 of 2 sessions$" "$S/q1/.status" ||
  fail ".status: $(grep '^quota' "$S/q1/.status")"
grep -q '^last_error: .*-o quota' "$S/q1/.status" || fail ".status names no limit: $(grep last_error "$S/q1/.status")"
log_has "Disk quota exceeded" || log_has "EDQUOT" || fail "the log has no EDQUOT line"
ok "parallel writers stopped at the quota: $held of $QUOTA bytes, EDQUOT for the rest"

as_nobody mkdir "$S/q2"
expect_fail "Disk quota exceeded" as_nobody mkdir "$S/q3"
expect_fail "Disk quota exceeded" as_nobody dd if=/dev/zero of="$S/q2/more" bs=1M count=1 status=none
ok "max_sessions: a third session refused"

# Root is exempt.
mkdir "$S/rootq"
dd if=/dev/zero of="$S/rootq/big" bs=1M count=12 status=none || fail "root was held to the quota"

# The limits hold after a restart.
stop_upfs
start_upfs "${OPTS[@]}"
grep -q "^quota: uid $NOBODY_UID holds $held of $QUOTA bytes, 2 of 2 sessions$" "$S/q1/.status" ||
  fail "after a restart, .status: $(grep '^quota' "$S/q1/.status")"
expect_fail "Disk quota exceeded" as_nobody mkdir "$S/q3"
expect_fail "Disk quota exceeded" as_nobody dd if=/dev/zero of="$S/q2/more" bs=1M count=1 status=none
ok "after a restart the same limits hold"

# A commit gives the session's bytes and place back.
as_nobody dd if=/dev/null of="$S/q1/.finish" status=none || fail "finishing q1 failed"
[[ -d $MNT/assets/q1 ]] || fail "q1 not committed"
as_nobody mkdir "$S/q3"
as_nobody dd if=/dev/zero of="$S/q3/f" bs=1M count=8 status=none || fail "after the commit, 8 MiB were refused"
ok "a commit gave the bytes and the session back"
stop_upfs
