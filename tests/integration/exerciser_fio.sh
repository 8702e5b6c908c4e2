#!/usr/bin/env bash
# fio against mounted sessions (docs/development.md, "Third-party exercisers"):
#  1. one session, several fio jobs at once writing 4 KiB blocks at random
#     offsets into their own files, and several more into disjoint regions
#     of one shared file with random block sizes, each with
#     --verify=sha256 (fio reads every block back through the session);
#  2. three sessions at once, each with its own fio;
# then each session is committed with a manifest of its bytes as read back
# and checked with sha256sum -c, and fio re-verifies its per-job files
# through assets/ (its own block checksums, independent of upfs's hashes).
#
#   exerciser_fio.sh UPFS_BIN                 # fast form (CI), ~10 s
#   UPFS_EXERCISE_LONG=1 exerciser_fio.sh UPFS_BIN   # 64 MiB per job, 8 jobs
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/exercisers_lib.sh"
require_tools fio

if ((LONG)); then JOB_SIZE=64M JOBS=8 SESSIONS=4; else JOB_SIZE=4M JOBS=4 SESSIONS=3; fi

# run_fio NAME DIR FIO_ARGS...: fio in DIR; fails the test if fio does.
run_fio() {
  local name=$1 dir=$2 out=$T/fio.$1.out
  shift 2
  if ! (cd "$T" && fio --output="$out" --name="$name" --directory="$dir" --verify=sha256 \
          --verify_fatal=1 --verify_state_save=0 --ioengine=psync "$@"); then
    cat "$out" >&2
    fail "fio $name failed"
  fi
  grep -q 'err= 0' "$out" || { cat "$out" >&2; fail "fio $name reported an error"; }
}

start_upfs

# 1. Several jobs in one session: own files, and one shared file.
mkdir "$MNT/sessions/fio-one"
run_fio own "$MNT/sessions/fio-one" --rw=randwrite --bs=4k --size="$JOB_SIZE" --numjobs="$JOBS" \
  --group_reporting=0 &
own_pid=$!
BG_PIDS+=("$own_pid")
run_fio shared "$MNT/sessions/fio-one" --filename=shared.bin --rw=randwrite --bsrange=512-128k \
  --size="$JOB_SIZE" --offset_increment="$JOB_SIZE" --numjobs="$JOBS" --randseed=7 \
  --allow_file_create=1 2>/dev/null
wait_jobs 600 "fio own files" "$own_pid"
ok "fio: $JOBS jobs on own files and $JOBS on one shared file wrote and verified through the session"
shared_len=$(stat -c %s "$MNT/sessions/fio-one/shared.bin")
want_len=$(numfmt --from=iec "$JOB_SIZE")
((shared_len == JOBS * want_len)) || fail "shared.bin is $shared_len bytes, want $((JOBS * want_len))"
commit_as_read fio-one
((FILES == JOBS + 1)) || fail "fio-one committed $FILES files, want $((JOBS + 1))"

# 2. Several sessions at once.
pids=()
for i in $(seq "$SESSIONS"); do
  mkdir "$MNT/sessions/fio-s$i"
  bg run_fio "s$i" "$MNT/sessions/fio-s$i" --rw=randwrite --bs=16k --size="$JOB_SIZE" --numjobs=2 \
    --randseed="$i"
  pids+=("$LAST_BG")
done
wait_jobs 600 "fio in parallel sessions" "${pids[@]}"
ok "fio: $SESSIONS sessions written and verified at once"
for i in $(seq "$SESSIONS"); do commit_as_read "fio-s$i"; done

# fio checks its own block headers and checksums in the committed files.
run_fio own "$MNT/assets/fio-one" --rw=read --bs=4k --size="$JOB_SIZE" --numjobs="$JOBS" --readonly
for i in $(seq "$SESSIONS"); do
  run_fio "s$i" "$MNT/assets/fio-s$i" --rw=read --bs=16k --size="$JOB_SIZE" --numjobs=2 --readonly
done
ok "fio re-verified every per-job file through assets/"

assert_daemon_alive
assert_log_clean
stop_upfs
