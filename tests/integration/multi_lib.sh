# shellcheck shell=bash
# tests/integration/multi_lib.sh: several mounts of one RADOS store, for the
# `multi` tests (docs/rados.md, "Several mounts"). Sourced after lib.sh (with
# UPFS_TEST_STORE=rados): lib.sh's own daemon is not used; these are
# mounts 1..N at $T/m1..., each a daemon with its own log $T/upfsN.log.
#
#   start_mount N [options...]   mounts $STORE at $T/mN, waits until it answers
#   stop_mount N                 unmounts it, waits for a clean exit
#   kill_mount N                 kill -9 (a crash), clears the stale mount
#   mount_log_has N TEXT         TEXT is in the log of mount N's current life
#   MOUNT_PID[N], M[N] (the mount point)
#
# The EXIT trap unmounts and reaps every mount started here (only those:
# by PID), then runs lib.sh's cleanup (which stops the cluster).

declare -A MOUNT_PID=() M=() LOG_FROM=()

mount_dir_answers() { mountpoint -q "$1" && [[ -d $1/sessions && -d $1/assets ]]; }

start_mount() {
  local n=$1
  shift
  M[$n]=$T/m$n
  mkdir -p "${M[$n]}"
  # The log is appended to across lives; this life's lines start here.
  LOG_FROM[$n]=1
  [[ -f $T/upfs$n.log ]] && LOG_FROM[$n]=$(($(wc -l <"$T/upfs$n.log") + 1))
  # Not fd 7: a file a test holds open in another mount stays open until
  # the test closes it (a daemon that inherited it would keep it open).
  "$UPFS_BIN" -f "$@" "$STORE" "${M[$n]}" </dev/null >>"$T/upfs$n.log" 2>&1 7>&- &
  MOUNT_PID[$n]=$!
  guard_pid "${MOUNT_PID[$n]}"
  local deadline=$((SECONDS + 60))
  until mount_dir_answers "${M[$n]}"; do
    alive "${MOUNT_PID[$n]}" || fail "mount $n exited before it answered; log:
$(tail -n 30 "$T/upfs$n.log")"
    ((SECONDS < deadline)) || fail "mount $n did not answer within 60 s"
    sleep 0.02
  done
}

stop_mount() {
  local n=$1 pid=${MOUNT_PID[$1]:-}
  [[ -n $pid ]] || return 0
  fusermount3 -u "${M[$n]}" || fail "fusermount3 -u ${M[$n]} failed"
  wait_gone "$pid" 60 || fail "mount $n (pid $pid) did not exit within 60 s of the unmount"
  local rc=0
  wait "$pid" || rc=$?
  MOUNT_PID[$n]=
  ((rc == 0)) || fail "mount $n exited with status $rc after a clean unmount"
}

kill_mount() {
  local n=$1 pid=${MOUNT_PID[$1]:-}
  [[ -n $pid ]] || return 0
  kill -KILL "$pid"
  wait_gone "$pid" 10 || true
  wait "$pid" 2>/dev/null || true
  MOUNT_PID[$n]=
  fusermount3 -u -z "${M[$n]}" 2>/dev/null || true
}

# mount_log_has N TEXT: in the lines of mount N's current (or last) life
# only: a line an earlier life logged (a sweep that rightly freed what a
# killed mount left) says nothing of this one. (grep reads to the end: with
# -q, tail could die of SIGPIPE and fail the pipeline.)
mount_log_has() { tail -n "+${LOG_FROM[$1]:-1}" "$T/upfs$1.log" | grep -F -- "$2" >/dev/null; }

multi_cleanup() {
  local rc=$? n pid
  # As lib.sh's cleanup: no errexit here (a reaped daemon's status is not
  # a reason to leave the cluster running).
  set +e
  trap - ERR
  exec 7>&- 2>/dev/null  # a file a test holds open in a mount
  for n in "${!MOUNT_PID[@]}"; do
    pid=${MOUNT_PID[$n]}
    [[ -n $pid ]] || continue
    kill -CONT "$pid" 2>/dev/null
    fusermount3 -u "${M[$n]}" 2>/dev/null || fusermount3 -u -z "${M[$n]}" 2>/dev/null
    if ! wait_gone "$pid" 30; then
      log "mount $n (pid $pid) still running 30 s after the unmount; killing it"
      kill -KILL "$pid"
      rc=1
    fi
    wait "$pid" 2>/dev/null
  done
  if ((rc != 0)); then
    for n in "${!M[@]}"; do
      log "mount $n log (last 40 lines):"
      tail -n 40 "$T/upfs$n.log" | sed 's/^/    /'
    done
  fi
  (exit "$rc")
  cleanup
}
trap multi_cleanup EXIT
