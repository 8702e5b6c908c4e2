#!/usr/bin/env bash
# tests/integration/log_reopen.sh UPFS_BINARY (ctest integration.log_reopen):
# logrotate without copytruncate (docs/configuration.md, "Log rotation"): after the log file is
# moved away, SIGUSR1 makes the daemon open its path again; lines from then
# on go to the new file, none to the moved one, and the mount stays up
# (SIGHUP, like SIGINT and SIGTERM, unmounts). A daemon without -f blocks
# the signal the same way, after its fork.
source "$(dirname "$0")/lib.sh" "$@"

LOG=$T/upfs-own.log
reopened() { grep -q "SIGUSR1: log file $LOG reopened" "$LOG" 2>/dev/null; }

start_upfs -o log_file="$LOG"
mkdir "$MNT/sessions/before"
mv "$LOG" "$LOG.1"
kill -USR1 "$UPFS_PID"
wait_until 10 "the daemon to reopen its log file" reopened
mkdir "$MNT/sessions/after"
wait_until 10 "the new session to be logged in the new file" grep -q "session 'after' begun" "$LOG"
grep -q "session 'before' begun" "$LOG.1" || fail "the moved log lost its lines"
! grep -q "session 'after' begun" "$LOG.1" || fail "a line went to the moved log after the reopen"
assert_daemon_alive
ok "-f: SIGUSR1 reopens the log file; the mount stays up"
stop_upfs

