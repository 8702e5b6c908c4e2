#!/usr/bin/env bash
# stress-ng --hdd --verify with its temporary path inside a session
# (docs/development.md, "Third-party exercisers"). Each stress-ng worker creates a file,
# truncates it, unlinks it while keeping it open, then writes, fstats and
# reads it back, verifying every block: this is what found that upfs made
# an unlinked-but-open file stale (POSIX keeps it until the last close;
# see engine_unlinked_open_test.cc). Runs the default sequential mode, then
# random writes and reads, O_DIRECT, fsync/fdatasync, utimes and iovec
# modes; then the session (empty again, stress-ng removed its files) is
# committed, the daemon stopped and `upfs fsck` must find no bytes left
# behind by the deleted files.
#
#   exerciser_stress_ng.sh UPFS_BIN                 # fast form (CI), ~15 s
#   UPFS_EXERCISE_LONG=1 exerciser_stress_ng.sh UPFS_BIN   # 60 s per mode
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/exercisers_lib.sh"
require_tools stress-ng

if ((LONG)); then SECS=60 BYTES=256M WORKERS=4; else SECS=3 BYTES=8M WORKERS=2; fi

start_upfs
mkdir "$MNT/sessions/hdd"
for opts in "" wr-rnd,rd-rnd direct fsync,fdatasync utimes,iovec; do
  out=$T/stress-ng.out
  rc=0
  stress-ng --hdd "$WORKERS" --hdd-bytes "$BYTES" ${opts:+--hdd-opts "$opts"} --verify \
    --temp-path "$MNT/sessions/hdd" --timeout "${SECS}s" --metrics-brief >"$out" 2>&1 || rc=$?
  if ((rc != 0)) || ! grep -q 'successful run completed' "$out" || grep -qE '(fail|error):' "$out"; then
    cat "$out" >&2
    fail "stress-ng --hdd ${opts:-(default)} failed (exit $rc)"
  fi
  ok "stress-ng --hdd $WORKERS --hdd-opts ${opts:-default} --verify: $(awk '$4 == "hdd" && $5 ~ /^[0-9]+$/ { print $5; exit }' "$out") bogo ops"
done
left=$(find "$MNT/sessions/hdd" -mindepth 1 ! -name .finish ! -name .status | wc -l)
((left == 0)) || fail "stress-ng left $left entries in the session"
commit_as_read hdd
((FILES == 0)) || fail "the hdd session committed $FILES files, want 0"
assert_daemon_alive
assert_log_clean
stop_upfs
assert_store_clean
