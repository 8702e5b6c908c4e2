#!/usr/bin/env bash
# tests/integration/guard.sh UPFS_BINARY (ctest integration.guard): a test
# killed outright (ctest's TIMEOUT sends SIGKILL, which no trap sees)
# leaves nothing behind: lib.sh's guard kills its daemon, detaches its
# mount and removes its directory.
#   - an inner test mounts, writes into a session and is killed with -9
#     while it waits on a fifo (a stand-in for a hung test)
#   - then, within 15 s: its daemon is gone, nothing is mounted under its
#     directory, and the directory is removed
#   - a test that ends normally leaves the guard nothing to do (its log
#     says nothing of it)
source "$(dirname "$0")/lib.sh" "$@"
LIB=$(cd "$(dirname "$0")" && pwd)/lib.sh
# The inner tests run with TMPDIR=$T: their directories and their guard's
# log are in $T.
INNER_GUARD_LOG=$T/upfs-test-guard.log
touch "$INNER_GUARD_LOG"

# inner NAME: a test that mounts under $T and reports its directory, mount
# and daemon in $T/NAME.info; it then waits on the fifo $T/NAME.fifo
# (killed: forever; released: it ends normally).
inner() {
  local name=$1
  mkfifo "$T/$name.fifo"
  TMPDIR=$T bash -c '
    source "$1" "$2"
    start_upfs
    mkdir "$MNT/sessions/s"
    echo data >"$MNT/sessions/s/f"
    echo "$T $MNT $UPFS_PID" >"$3.info.tmp"
    mv "$3.info.tmp" "$3.info"
    read -r _ <"$3.fifo"
  ' "inner-$name" "$LIB" "$UPFS_BIN" "$T/$name" >"$T/$name.out" 2>&1 &
  INNER_PID=$!
  wait_until 30 "the inner test $name to mount" test -s "$T/$name.info"
  read -r INNER_T INNER_MNT INNER_DAEMON <"$T/$name.info"
  mountpoint -q "$INNER_MNT" || fail "the inner test's mount is not there"
  alive "$INNER_DAEMON" || fail "the inner test's daemon is not running"
}

# ---- killed with -9: the guard cleans up ----
inner killed
guard_lines=$(wc -l <"$INNER_GUARD_LOG")
kill -KILL "$INNER_PID"
wait "$INNER_PID" 2>/dev/null || true
daemon_gone() { ! alive "$INNER_DAEMON"; }
wait_until 15 "the guard to kill the daemon (pid $INNER_DAEMON)" daemon_gone
nothing_mounted() { ! awk -v t="$INNER_T/" 'index($5, t) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; }
wait_until 15 "the guard to detach $INNER_MNT" nothing_mounted
dir_gone() { [[ ! -e $INNER_T ]]; }
wait_until 15 "the guard to remove $INNER_T" dir_gone
said=$(tail -n +$((guard_lines + 1)) "$INNER_GUARD_LOG")
[[ $said == *"ended without its cleanup"* && $said == *"killing pid $INNER_DAEMON"* ]] ||
  fail "the guard's log says: $said"
ok "killed with -9: the guard killed the daemon, detached the mount and removed $INNER_T"

# ---- ended normally: nothing for the guard ----
inner normal
guard_lines=$(wc -l <"$INNER_GUARD_LOG")
echo go >"$T/normal.fifo"
wait_job 30 "$INNER_PID"
((JOB_RC == 0)) || fail "the inner test failed: $(cat "$T/normal.out")"
[[ ! -e $INNER_T ]] || fail "the inner test left $INNER_T"
daemon_gone || fail "the inner test left its daemon running"
# The guard notices the shell's end within a second and exits; it has
# nothing to do, so it writes nothing (poll past its look, then check).
guard_idle() { ! pgrep -f "upfs-test-guard .* $INNER_T " >/dev/null; }
wait_until 15 "the inner test's guard to exit" guard_idle
[[ $(wc -l <"$INNER_GUARD_LOG") == "$guard_lines" ]] || fail "the guard acted after a clean end: $(tail -n +$((guard_lines + 1)) "$INNER_GUARD_LOG")"
ok "ended normally: the guard exited and did nothing"
