# shellcheck shell=bash
# tests/integration/lib.sh: shared by every integration test; sourced as
#
#   source "$(dirname "$0")/lib.sh" "$@"     # $1: the upfs binary (or $UPFS_BIN)
#
# Gives each test a fresh `mktemp -d` ($T) holding the store ($STORE), the
# mount point ($MNT) and the test's own files ($SRC), and an EXIT trap that
# unmounts, waits for (and if need be kills) only the daemon this test
# started and the background jobs it registered, then removes $T. On failure
# it prints the daemon's log. Synchronization is by polling with a deadline;
# there are no fixed sleeps.
#
# UPFS_TEST_STORE=rados makes $STORE a rados:// namespace on a Ceph cluster
# instead (rados_store.sh); on_rados tells a script which it has.
#
# A test that cannot run because the machine has no /dev/fuse exits 77
# (ctest's SKIP_RETURN_CODE), except under CI=true, where that is a failure.

set -euo pipefail
export LC_ALL=C

UPFS_BIN=${1:-${UPFS_BIN:-}}
TEST_NAME=$(basename "$0" .sh)

log() { printf '[%s] %s\n' "$TEST_NAME" "$*"; }
fail() {
  printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
  trap - ERR
  exit 1
}
# ok MESSAGE: one line per assertion that held, so the ctest log shows what
# was checked.
ok() { printf '[%s] ok: %s\n' "$TEST_NAME" "$*"; }

if [[ -z $UPFS_BIN || ! -x $UPFS_BIN ]]; then
  fail "no upfs binary: pass it as the first argument or set UPFS_BIN (got '${UPFS_BIN}')"
fi
UPFS_BIN=$(readlink -f "$UPFS_BIN")
if [[ ! -c /dev/fuse ]]; then
  [[ ${CI:-} == true ]] && fail "/dev/fuse is missing; CI must mount for real"
  log "SKIP: /dev/fuse is missing on this machine"
  exit 77
fi
# require_tools TOOL...: fails naming the first tool not on PATH.
require_tools() {
  local tool
  for tool; do
    command -v "$tool" >/dev/null || fail "missing tool $tool: run mount-scripts/deps.sh"
  done
}
require_tools fusermount3 mountpoint sha256sum cmp dd getfattr setfattr

T=$(mktemp -d "${TMPDIR:-/tmp}/upfs-it.${TEST_NAME}.XXXXXX")
STORE=$T/store
# UPFS_TEST_STORE=rados: the store is rados://POOL/NAMESPACE on a Ceph
# cluster instead of the directory $T/store (STORE_KIND says which);
# tests/integration/rados_store.sh sets it up and cleanup stops it.
STORE_KIND=${UPFS_TEST_STORE:-dir}
case $STORE_KIND in
  dir) ;;
  rados) source "$(dirname "${BASH_SOURCE[0]}")/rados_store.sh" ;;
  *) fail "UPFS_TEST_STORE must be dir or rados, got '$STORE_KIND'" ;;
esac
MNT=$T/mnt
SRC=$T/src
UPFS_LOG=$T/upfs.log
mkdir -p "$MNT" "$SRC"

UPFS_PID=
BG_PIDS=()
MOUNT_TIMEOUT=${UPFS_MOUNT_TIMEOUT:-10}

# The guard, for a test killed outright: ctest's TIMEOUT ends a test with
# SIGKILL, which no trap sees, and that would leave its mount behind (stale,
# "Transport endpoint is not connected"), its daemon and its Ceph cluster
# running, and $T on the disk. A process detached from the test (setsid,
# and its parent exits at once, so neither ctest's kill of the test's
# process tree nor the test's own end takes it along) waits for the test's
# shell to go. If the shell went without its cleanup trap ($T is still
# there), it kills the daemons the test recorded with guard_pid (each only
# while /proc still shows it running the binary it started), detaches every
# mount under $T, stops the cluster in $T/ceph and removes $T. It looks
# once a second; nothing waits for it. Its log: $GUARD_LOG.
GUARD_LOG=${TMPDIR:-/tmp}/upfs-test-guard.log
GUARD_PIDS=$T/.guard-pids
# guard_pid PID [EXE]: the guard kills PID, while it runs EXE ($UPFS_BIN),
# if the test is killed.
guard_pid() { printf '%s %s\n' "$1" "$(readlink -f "${2:-$UPFS_BIN}")" >>"$GUARD_PIDS"; }
(
  setsid bash -c '
    test_pid=$1 t=$2 cluster_sh=$3 name=$4
    while kill -0 "$test_pid" 2>/dev/null; do sleep 1; done
    [[ -d $t && ! -e $t/.cleaned-up ]] || exit 0
    echo "$(date +%FT%T) [$name] the test (pid $test_pid) ended without its cleanup: cleaning $t"
    if [[ -f $t/.guard-pids ]]; then
      while read -r pid exe; do
        if [[ -n $exe && $(readlink "/proc/$pid/exe" 2>/dev/null) == "$exe" ]]; then
          echo "  killing pid $pid ($exe)"
          kill -KILL "$pid"
        fi
      done <"$t/.guard-pids"
    fi
    awk -v t="$t/" "index(\$5, t) == 1 { print \$5 }" /proc/self/mountinfo | sort -r |
      while read -r m; do
        echo "  detaching $m"
        fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m"
      done
    if [[ -d $t/ceph ]]; then
      echo "  stopping the cluster in $t/ceph"
      "$cluster_sh" stop "$t/ceph" >/dev/null 2>&1
    fi
    rm -rf --one-file-system "$t"
  ' upfs-test-guard "$$" "$T" "$(cd "$(dirname "${BASH_SOURCE[0]}")/../ceph" && pwd)/cluster.sh" \
    "$TEST_NAME" </dev/null >>"$GUARD_LOG" 2>&1 &
)

# alive PID (tests/support/proc.sh)
source "$(dirname "${BASH_SOURCE[0]}")/../support/proc.sh"

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds;
# fails the test after SECONDS.
wait_until() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for: $what"
    sleep 0.02
  done
}

mount_answers() {
  mountpoint -q "$MNT" && [[ -d $MNT/sessions && -d $MNT/assets ]]
}

# A daemon built with sanitizers (build-asan, build-tsan) writes its
# reports to $T/sanitizer.PID; cleanup fails the test if any exist, so a
# report counts even when the daemon was killed or went on running. (A
# plain build ignores these variables.)
SANITIZER_LOG=$T/sanitizer
sanitizer_env() {
  local var
  for var in ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS; do
    printf '%s=%s\n' "$var" "${!var:+${!var}:}log_path=$SANITIZER_LOG"
  done
}

# start_upfs [upfs options...]: mounts $STORE at $MNT with `upfs -f` in the
# background and waits until the mount answers.
start_upfs() {
  [[ -z $UPFS_PID ]] || fail "start_upfs: a daemon (pid $UPFS_PID) is already running"
  local -a san_env
  mapfile -t san_env < <(sanitizer_env)
  env "${san_env[@]}" "$UPFS_BIN" -f "$@" "$STORE" "$MNT" </dev/null >>"$UPFS_LOG" 2>&1 &
  UPFS_PID=$!
  guard_pid "$UPFS_PID"
  local deadline=$((SECONDS + MOUNT_TIMEOUT))
  until mount_answers; do
    if ! alive "$UPFS_PID"; then
      local rc=0
      wait "$UPFS_PID" || rc=$?
      UPFS_PID=
      fail "upfs exited with status $rc before the mount answered; log:
$(cat "$UPFS_LOG")"
    fi
    ((SECONDS < deadline)) || fail "the mount did not answer within ${MOUNT_TIMEOUT}s"
    sleep 0.02
  done
  UPFS_FUSE_CONN=$(fuse_connection_of "$MNT")
  log "mounted (upfs pid $UPFS_PID): $UPFS_BIN -f ${*:+$* }$STORE $MNT"
}

# fuse_connection_of MOUNTPOINT: the FUSE connection number of the mount
# (the minor of its device, from our mount table: no request to the mount).
fuse_connection_of() {
  awk -v m="$1" '$5 == m { split($3, d, ":"); c = d[2] } END { print c }' /proc/self/mountinfo
}

# abort_connection: aborts the FUSE connection of the daemon started last,
# through the fusectl file system (mounted here if it is not). Every request
# waiting on it fails with ENOTCONN. A daemon killed while one of its
# threads was inside a cache invalidation (which can wait for a directory
# lock held by a request only that daemon would have answered) cannot exit
# until then: seen once, as a torture_kill9 run that hung on `wait`.
abort_connection() {
  local ctl=/sys/fs/fuse/connections
  [[ -n ${UPFS_FUSE_CONN:-} ]] || return 0
  if [[ ! -e $ctl/$UPFS_FUSE_CONN ]] && ! mountpoint -q "$ctl"; then
    mount -t fusectl fusectl "$ctl" 2>/dev/null || return 0
  fi
  [[ -e $ctl/$UPFS_FUSE_CONN/abort ]] && echo 1 >"$ctl/$UPFS_FUSE_CONN/abort" 2>/dev/null
  return 0
}

# wait_gone PID SECONDS: polls until PID has exited; false after SECONDS.
wait_gone() {
  local deadline=$((SECONDS + $2))
  while alive "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.02
  done
}

# stop_upfs: unmounts and waits for the daemon. Returns (in UPFS_EXIT) its
# exit status; fails the test if it had to be killed or exited non-zero.
stop_upfs() {
  local pid=$UPFS_PID
  [[ -n $pid ]] || return 0
  if mountpoint -q "$MNT" 2>/dev/null; then
    fusermount3 -u "$MNT" || fail "fusermount3 -u $MNT failed"
  fi
  wait_gone "$pid" 30 || fail "upfs (pid $pid) did not exit within 30s of the unmount"
  UPFS_EXIT=0
  wait "$pid" || UPFS_EXIT=$?
  UPFS_PID=
  ((UPFS_EXIT == 0)) || fail "upfs exited with status $UPFS_EXIT after a clean unmount"
}

# kill_upfs: kill -9 the daemon (a crash) and clear its stale mount.
kill_upfs() {
  local pid=$UPFS_PID
  [[ -n $pid ]] || return 0
  kill -KILL "$pid"
  # The kill ends the connection once every thread is gone; a thread stuck
  # in the kernel (abort_connection) would keep `wait` from returning.
  if ! wait_gone "$pid" 5; then
    log "upfs (pid $pid) not gone 5s after kill -9: aborting its FUSE connection $UPFS_FUSE_CONN"
    abort_connection
  fi
  wait "$pid" || true
  UPFS_PID=
  fusermount3 -u -z "$MNT" 2>/dev/null || true
}

# assert_daemon_alive: the daemon has not crashed (G4, docs/semantics.md).
assert_daemon_alive() {
  [[ -n $UPFS_PID ]] && alive "$UPFS_PID" || fail "upfs died; log:
$(tail -n 50 "$UPFS_LOG")"
  mount_answers || fail "the mount does not answer"
}

# bg COMMAND...: runs COMMAND in the background; its pid is appended to
# BG_PIDS and killed by the trap if the test fails first.
bg() {
  "$@" &
  BG_PIDS+=($!)
  LAST_BG=$!
}

# wait_job SECONDS PID: waits for PID (a child of this shell) with a
# deadline; sets JOB_RC to its exit status, or fails the test on timeout.
JOB_RC=
wait_job() {
  local deadline=$((SECONDS + $1))
  while alive "$2"; do
    ((SECONDS < deadline)) || fail "job $2 still running after ${1}s"
    sleep 0.02
  done
  JOB_RC=0
  wait "$2" || JOB_RC=$?
}

# wait_jobs SECONDS DESCRIPTION PID...: waits for every PID, all within
# SECONDS; fails naming the first that exited non-zero.
wait_jobs() {
  local deadline=$((SECONDS + $1)) what=$2 pid left
  shift 2
  for pid; do
    left=$((deadline - SECONDS))
    wait_job $((left > 0 ? left : 0)) "$pid"
    ((JOB_RC == 0)) || fail "$what: job $pid exited with status $JOB_RC"
  done
}

# finish_session NAME MANIFEST_FILE: writes the manifest into
# sessions/NAME/.finish with dd, which checks close(2) (bash's own `>`
# would lose the commit's result). Returns dd's status; FINISH_ERR holds
# what dd printed (e.g. "... closing output file ...: Bad message").
FINISH_ERR=
finish_session() {
  local rc=0
  FINISH_ERR=$(dd if="$2" of="$MNT/sessions/$1/.finish" bs=1M status=none 2>&1) || rc=$?
  return "$rc"
}

# expect_finish_error NAME MANIFEST_FILE "ERRNO TEXT": the finish must fail
# with that strerror text.
expect_finish_error() {
  if finish_session "$1" "$2"; then
    fail "finishing $1 succeeded; expected '$3'"
  fi
  [[ $FINISH_ERR == *"$3"* ]] || fail "finishing $1: expected '$3', dd said: $FINISH_ERR"
  ok "finish $1 failed as expected: $FINISH_ERR"
}

# manifest_of DIR OUT: a sha256sum manifest of every file under DIR, paths
# relative to DIR, sorted.
manifest_of() {
  (cd "$1" && find . -type f -printf '%P\0' | sort -z | xargs -0 -r sha256sum --) >"$2"
}

# expect_fail "ERRNO TEXT" COMMAND...: COMMAND must fail and say that.
expect_fail() {
  local want=$1 out rc=0
  shift
  out=$("$@" 2>&1) || rc=$?
  ((rc != 0)) || fail "succeeded, expected '$want': $*"
  [[ $out == *"$want"* ]] || fail "expected '$want' from: $*; got: $out"
  ok "$* -> $out"
}

# expect_eio_read FILE ORIGINAL: reading FILE (cat) must fail with EIO,
# and whatever it gave before the error must be ORIGINAL's first bytes (a
# damaged file gives an error, never wrong bytes). Sets READ_GOT (bytes
# read before the error) and READ_ERR (cat's message).
expect_eio_read() {
  local rc=0
  READ_ERR=$(cat "$1" 2>&1 >"$T/eio-read.out") || rc=$?
  ((rc != 0)) || fail "reading the damaged $1 succeeded"
  [[ $READ_ERR == *"Input/output error"* ]] || fail "reading the damaged $1: want EIO, got: $READ_ERR"
  READ_GOT=$(stat -c %s "$T/eio-read.out")
  ((READ_GOT < $(stat -c %s "$2"))) || fail "cat read the whole damaged $1"
  cmp -s -n "$READ_GOT" "$T/eio-read.out" "$2" || fail "the $READ_GOT bytes read from $1 before the error differ from $2"
}

# log_has STRING...: some line of the daemon's log contains every STRING.
# memory_bound WHAT CONDITION...: fails with WHAT unless the arithmetic
# CONDITION holds. Under a sanitizer build (UPFS_SANITIZED=1, set by
# tests/integration/CMakeLists.txt) the daemon's memory is the sanitizer's
# (redzones, quarantine, shadow), so bounds are logged, not asserted.
memory_bound() {
  local what=$1
  shift
  if [[ ${UPFS_SANITIZED:-} == 1 ]]; then
    log "not asserted under a sanitizer build: $what"
    return 0
  fi
  (("$@")) || fail "$what"
}

log_has() {
  awk 'BEGIN { for (i = 1; i < ARGC; i++) want[i] = ARGV[i]; n = ARGC - 1; ARGC = 1 }
       { for (i = 1; i <= n; i++) if (index($0, want[i]) == 0) next; found = 1; exit }
       END { exit !found }' "$@" <"$UPFS_LOG"
}

# on_rados [WHY]: true when the store is rados:// (UPFS_TEST_STORE=rados);
# with WHY, logs that the part of the test it guards is skipped there,
# and why (a part that looks inside a store directory).
on_rados() {
  [[ $STORE_KIND == rados ]] || return 1
  (($# == 0)) || log "skipped on a rados:// store: $*"
}

# xattr FILE NAME: prints the value of xattr NAME of FILE.
xattr() { getfattr --absolute-names --only-values -n "$2" "$1"; }

# random_file PATH BYTES
random_file() {
  head -c "$2" /dev/urandom >"$1"
  [[ $(stat -c %s "$1") -eq $2 ]] || fail "could not make $2 random bytes in $1"
}

# put_range SRC DST OFFSET LENGTH: copies bytes [OFFSET, OFFSET+LENGTH) of
# SRC to the same offset of DST without truncating DST (dd conv=notrunc).
put_range() {
  dd if="$1" of="$2" bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes \
    skip="$3" seek="$3" count="$4" conv=notrunc status=none
}

# get_range FILE OFFSET LENGTH: prints those bytes.
get_range() {
  dd if="$1" bs=1M iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT
  local pid
  for pid in "${BG_PIDS[@]}"; do
    alive "$pid" && kill -TERM "$pid" 2>/dev/null
  done
  if [[ -n $UPFS_PID ]]; then
    if mountpoint -q "$MNT" 2>/dev/null; then
      fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT"
    fi
    if ! wait_gone "$UPFS_PID" 15; then
      log "upfs (pid $UPFS_PID) still running 15s after the unmount; killing it"
      kill -KILL "$UPFS_PID"
      wait_gone "$UPFS_PID" 5 || abort_connection
      rc=1
    fi
    local daemon_rc=0
    wait "$UPFS_PID" 2>/dev/null || daemon_rc=$?
    if ((daemon_rc != 0 && rc == 0)); then
      log "FAIL: upfs exited with status $daemon_rc"
      rc=1
    fi
  fi
  # A mount left behind (e.g. a stale one) is detached before removal, so
  # rm never walks into it.
  if mountpoint -q "$MNT" 2>/dev/null ||
     [[ $(stat "$MNT" 2>&1 >/dev/null) == *"not connected"* ]]; then
    fusermount3 -u -z "$MNT" 2>/dev/null
  fi
  for pid in "${BG_PIDS[@]}"; do
    wait "$pid" 2>/dev/null
  done
  # After the daemon, whose cluster this is: stops a cluster this test
  # started (rados_store.sh).
  # A failure on RADOS says what the cluster thought of itself (slow or
  # blocked requests, PGs not active) before the cluster goes.
  ((rc == 0)) || [[ $STORE_KIND != rados ]] || rados_store_report
  [[ $STORE_KIND != rados ]] || rados_store_cleanup
  local report
  for report in "$SANITIZER_LOG".*; do
    [[ -e $report ]] || continue
    log "FAIL: sanitizer report $report:"
    sed 's/^/    /' "$report"
    rc=1
  done
  if ((rc != 0)) && [[ -s $UPFS_LOG ]]; then
    log "upfs log (last 80 lines of $UPFS_LOG):"
    tail -n 80 "$UPFS_LOG" | sed 's/^/    /'
  fi
  : >"$T/.cleaned-up"  # the guard has nothing to do
  if [[ ${UPFS_KEEP:-} == 1 ]]; then
    log "kept $T"
  elif ! mountpoint -q "$MNT" 2>/dev/null; then
    rm -rf --one-file-system "$T"
  fi
  if ((rc == 0)); then
    log "PASS"
  else
    log "FAILED (exit $rc)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
# Under set -e a failing command ends the test; say which one.
set -E
trap 'printf "[%s] FAIL: line %s: \"%s\" exited with status %s\n" "$TEST_NAME" "$LINENO" "$BASH_COMMAND" "$?" >&2' ERR
