#!/usr/bin/env bash
# dbench (many small files: create, write, read, rename, unlink, find,
# lock, setfileinfo, from its NetBench load file) in a session (docs/development.md,
# "Third-party exercisers"), with --skip-cleanup so its files stay; then
# the session is committed with a manifest of what dbench left, as read
# back through the mount, and checked with sha256sum -c.
#
#   exerciser_dbench.sh UPFS_BIN                 # fast form (CI), ~15 s
#   UPFS_EXERCISE_LONG=1 exerciser_dbench.sh UPFS_BIN   # 8 clients, 120 s
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/exercisers_lib.sh"
require_tools dbench
LOADFILE=/usr/share/dbench/client.txt
[[ -r $LOADFILE ]] || fail "no $LOADFILE: install the dbench package (mount-scripts/deps.sh)"

if ((LONG)); then SECS=120 CLIENTS=8; else SECS=8 CLIENTS=3; fi

start_upfs
mkdir "$MNT/sessions/dbench"
out=$T/dbench.out
rc=0
dbench -D "$MNT/sessions/dbench" -c "$LOADFILE" -t "$SECS" --skip-cleanup "$CLIENTS" >"$out" 2>&1 || rc=$?
# dbench reports a failed operation on a line with ERROR (and exits 1).
# One warning is not about the filesystem: when semget(2) fails (another
# dbench, or the IPC limits, on the machine) dbench says "failed to create
# barrier semaphore" and runs its clients without that start barrier.
# Only that exact line is let through; any other error or failure counts.
BARRIER_WARNING='^failed to create barrier semaphore *$'  # (dbench prints a trailing space)
if ((rc != 0)) || grep -vE "$BARRIER_WARNING" "$out" | grep -qiE 'error|failed' || ! grep -q '^Throughput' "$out"; then
  tail -n 40 "$out" >&2
  fail "dbench failed (exit $rc)"
fi
if grep -qE "$BARRIER_WARNING" "$out"; then log "dbench warned that it could not create its barrier semaphore (it ran without it)"; fi
ok "dbench $CLIENTS clients for ${SECS}s: $(grep '^Throughput' "$out")"
# Files dbench left with holes (it extends files by writing past their end,
# and its timer stops it mid-load) cannot be committed as they are: a gap
# is data that never arrived (finish fails with ENODATA naming the file and
# range). A client resumes by writing what .status lists as missing.
fill_missing dbench
ok "wrote $FILLED missing ranges listed by .status"
commit_as_read dbench
((FILES > 50)) || fail "dbench left only $FILES files; expected many small files"
assert_daemon_alive
assert_log_clean
stop_upfs
assert_store_clean
