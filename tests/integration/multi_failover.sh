#!/usr/bin/env bash
# tests/integration/multi_failover.sh UPFS_BINARY (ctest multi.failover,
# labels multi and rados): a session outlives the mount that held it
# (G8; docs/rados.md, "Several mounts"), with -o lease=3:
#   * failover: mount 1 receives half a file and is killed (kill -9); mount
#     2 takes the session over at its first write (a dead process of this
#     host: at once), .status there lists the missing half, the client
#     sends it and finishes, and the asset verifies; the takeover time is
#     printed;
#   * fencing: mount 1 (restarted) is stopped (SIGSTOP) past its lease;
#     mount 2 takes its session over (the paused holder is blocklisted),
#     writes and finishes; after SIGCONT, mount 1's late write fails, its
#     log says it was fenced, and the asset holds mount 2's bytes;
#   * expiry with two mounts (-o ttl=4): an idle session expires once, on
#     its holder; one with a file held open on its holder expires on
#     neither; a session of a mount that died is taken over and expired by
#     the other; rmdir (abort) of a session works on its holder only;
#   * removed assets with several mounts: a file mount 1 keeps for its
#     reader after `rm -r` is not freed by a mount that starts (nor by
#     mount 2's sweeps); the reader reads it whole, and its close frees
#     it; a file mount 1 read and closed is freed at once by its removal;
#     a file removed on mount 1 while mount 3 reads it is read whole
#     there and freed once its reader closed (a sweep); a file kept by a
#     mount that is then killed is freed by a live mount's sweep.
export UPFS_TEST_STORE=rados
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/multi_lib.sh"
require_tools rados

OPTS=(-o lease=3)
start_mount 1 "${OPTS[@]}"
start_mount 2 "${OPTS[@]}"

# ---- failover after kill -9 ----
random_file "$SRC/big" 6000000
mkdir "${M[1]}/sessions/fo"
get_range "$SRC/big" 0 3000000 >"$T/half"
dd if="$T/half" of="${M[1]}/sessions/fo/big" bs=1M status=none || fail "the first half did not go in on mount 1"
kill_mount 1
t0=$(date +%s%N)
put_range_to() { dd if="$SRC/big" of="$1" bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes skip="$2" seek="$2" count="$3" conv=notrunc status=none; }
until put_range_to "${M[2]}/sessions/fo/big" 3000000 3000000 2>"$T/fo.err"; do
  (($(date +%s%N) - t0 < 30000000000)) || fail "mount 2 did not take the session over within 30 s: $(cat "$T/fo.err")"
  sleep 0.05
done
takeover_ms=$((($(date +%s%N) - t0) / 1000000))
mount_log_has 2 "session 'fo' taken over from mount" || fail "mount 2 does not log the takeover"
(cd "$SRC" && sha256sum big) >"$T/fo.sha256"
dd if="$T/fo.sha256" of="${M[2]}/sessions/fo/.finish" status=none || fail "finish of the taken-over session failed"
cmp "$SRC/big" "${M[2]}/assets/fo/big" || fail "the asset after failover differs"
ok "failover after kill -9: mount 2 took the session over in ${takeover_ms} ms, got the rest, finished, verified"
# The dead mount's record ("U" + its id) goes once it holds nothing.
marks=$(rados_ns listomapkeys upfs.meta | grep -c '^U' || true)
((marks == 1)) || fail "upfs.meta holds $marks mount records with one mount live: $(rados_ns listomapkeys upfs.meta | grep '^U')"

# The half mount 1 acknowledged is what mount 2's .status starts from.
mkdir "${M[2]}/sessions/fo2"
start_mount 1 "${OPTS[@]}"
mkdir "${M[1]}/sessions/fo3"
dd if="$T/half" of="${M[1]}/sessions/fo3/big" bs=1M status=none
kill_mount 1
until cat "${M[2]}/sessions/fo3/big" >/dev/null 2>&1; do
  (($(date +%s%N) - t0 < 60000000000)) || fail "mount 2 never took fo3 over"
  sleep 0.05
done
status=$(cat "${M[2]}/sessions/fo3/.status")
[[ $status == *"received: 3000000"* && $status != *"held_by"* ]] ||
  fail "after the takeover .status does not show the 3000000 bytes mount 1 acknowledged: $status"
ok "a taken-over session's .status shows every byte the dead holder acknowledged"
rm -r "${M[2]}/sessions/fo3" "${M[2]}/sessions/fo2"

# ---- fencing a paused holder ----
start_mount 1 "${OPTS[@]}"
mkdir "${M[1]}/sessions/fe"
random_file "$SRC/fe.bin" 1000000
dd if="$SRC/fe.bin" of="${M[1]}/sessions/fe/f" bs=1M status=none
kill -STOP "${MOUNT_PID[1]}"
t0=$(date +%s%N)
head -c 1000000 /dev/zero | tr '\0' 'B' >"$T/fe.mount2"
until dd if="$T/fe.mount2" of="${M[2]}/sessions/fe/f" bs=1M conv=notrunc status=none 2>"$T/fe.err"; do
  grep -q "Device or resource busy" "$T/fe.err" || fail "mount 2's write failed otherwise than EBUSY: $(cat "$T/fe.err")"
  (($(date +%s%N) - t0 < 30000000000)) || fail "mount 2 did not take the paused mount's session over within 30 s"
  sleep 0.1
done
fence_ms=$((($(date +%s%N) - t0) / 1000000))
mount_log_has 2 "fenced mount" || fail "mount 2 does not log that it fenced mount 1"
kill -CONT "${MOUNT_PID[1]}"
if err=$(head -c 65536 /dev/zero | tr '\0' 'A' | dd of="${M[1]}/sessions/fe/f" bs=64k conv=notrunc status=none 2>&1); then
  fail "the paused mount's late write went through after the takeover"
fi
[[ $err == *"Input/output error"* ]] || fail "the late write did not fail with EIO: $err"
(cd "$T" && sha256sum fe.mount2 | sed 's/fe.mount2/f/') >"$T/fe.sha256"
dd if="$T/fe.sha256" of="${M[2]}/sessions/fe/.finish" status=none || fail "finish on mount 2 failed"
cmp "$T/fe.mount2" "${M[2]}/assets/fe/f" || fail "the asset does not hold mount 2's bytes"
wait_until 30 "mount 1 to log that it was fenced" mount_log_has 1 "this mount was fenced"
ok "a paused holder: taken over ${fence_ms} ms after SIGSTOP, its late write fails (EIO), the asset holds mount 2's bytes"
stop_mount 1
stop_mount 2

# ---- expiry with two mounts ----
OPTS=(-o lease=3 -o ttl=4 -o sweep_interval=1)
start_mount 1 "${OPTS[@]}"
start_mount 2 "${OPTS[@]}"
mkdir "${M[1]}/sessions/idle" "${M[1]}/sessions/busy" "${M[1]}/sessions/gone"
echo data >"${M[1]}/sessions/idle/f"
exec 7>"${M[1]}/sessions/busy/f"
if rmdir "${M[2]}/sessions/gone" 2>"$T/rm.err"; then fail "rmdir on a non-holder went through"; fi
grep -q "Device or resource busy" "$T/rm.err" || fail "rmdir on a non-holder did not fail with EBUSY: $(cat "$T/rm.err")"
[[ -d ${M[1]}/sessions/gone ]] || fail "the refused rmdir removed the session anyway"
rmdir "${M[1]}/sessions/gone" || fail "rmdir on the holder failed"
# Mount 2's kernel may keep its entry for the session's 1 s entry timeout.
aborted_gone() { [[ ! -e ${M[2]}/sessions/gone ]]; }
wait_until 5 "mount 2 to stop showing the aborted session" aborted_gone
idle_gone() { [[ ! -e ${M[1]}/sessions/idle && ! -e ${M[2]}/sessions/idle ]]; }
wait_until 30 "the idle session to expire" idle_gone
# A sweep hides what it expires (kGone) before its store write, and logs it
# after that write: the line comes a store round trip or more (the other
# sessions it drops first) after the session is gone from view.
wait_until 10 "mount 1 to log that it expired 'idle'" mount_log_has 1 "session 'idle' expired"
! mount_log_has 2 "session 'idle' expired" || fail "mount 2 expired 'idle' too"
ok "an idle session expires once, on its holder; rmdir (abort) works on the holder only (EBUSY elsewhere)"
# A session of a mount that dies before it expires there.
mkdir "${M[1]}/sessions/orphan2"
echo data >"${M[1]}/sessions/orphan2/f"
[[ -e ${M[1]}/sessions/busy ]] || fail "the session with an open file expired"
kill_mount 1
exec 7>&-
orphan_gone() { [[ ! -e ${M[2]}/sessions/orphan2 ]]; }
wait_until 40 "mount 2 to take over and expire the dead mount's session" orphan_gone
mount_log_has 2 "session 'orphan2' taken over" || fail "mount 2 did not take 'orphan2' over"
wait_until 10 "mount 2 to log that it expired 'orphan2'" mount_log_has 2 "session 'orphan2' expired"
ok "a dead mount's abandoned session is taken over and expired by the other"
stop_mount 2

# ---- files of removed assets kept for readers, with several mounts ----
start_mount 1 "${OPTS[@]}"
start_mount 2 "${OPTS[@]}"
# stripes_of FILE: how many RADOS objects hold the bytes of FILE's blob
# (its inode number is its id), from its inode number in $T/FILE.ino.
stripes_of() { rados_ns ls | grep -c "^upfs\.b\.$(printf %016x "$(cat "$T/$1.ino")")\." || true; }
commit_one() {  # commit_one MOUNT NAME SRC: a session of one file f, finished
  mkdir "${M[$1]}/sessions/$2"
  cp "$3" "${M[$1]}/sessions/$2/f"
  (cd "$(dirname "$3")" && sha256sum "$(basename "$3")") | sed 's|  .*|  f|' >"$T/$2.sha256"
  dd if="$T/$2.sha256" of="${M[$1]}/sessions/$2/.finish" status=none || fail "finishing $2 failed"
  stat -c %i "${M[$1]}/assets/$2/f" >"$T/$2.ino"
  (($(stripes_of "$2") > 0)) || fail "no stripe objects found for $2's blob"
}
# remove_while_read NAME BYTES COMMITTER READER REMOVER: commits NAME (one
# file f of BYTES random bytes) on mount COMMITTER, opens it on mount
# READER as fd 7, removes the asset on mount REMOVER, and checks that its
# bytes are still there for the reader.
remove_while_read() {
  local name=$1 bytes=$2 committer=$3 reader=$4 remover=$5
  random_file "$SRC/$name" "$bytes"
  commit_one "$committer" "$name" "$SRC/$name"
  exec 7<"${M[$reader]}/assets/$name/f"
  rm -r "${M[$remover]}/assets/$name" ||
    fail "rm -r of $name on mount $remover, read on mount $reader, failed"
  (($(stripes_of "$name") > 0)) ||
    fail "$name's bytes were freed by its removal on mount $remover while mount $reader reads it"
}
remove_while_read kept 5000000 1 1 1
# Before keepers were recorded, a starting mount freed every removed file.
start_mount 3 "${OPTS[@]}"
! mount_log_has 3 "freeing" || fail "a starting mount freed a file another live mount keeps: $(grep freeing "$T/upfs3.log")"
cmp - "$SRC/kept" <&7 || fail "the reader of a removed file on mount 1 did not read it whole after mount 3 started"
! mount_log_has 2 "that no live mount reads" || fail "mount 2's sweep freed a file live mount 1 reads"
exec 7<&-
freed() { (($(stripes_of "$1") == 0)); }
wait_until 20 "mount 1 to free the removed file once its reader closed" freed kept
ok "a removed file kept for a reader on mount 1 outlives another mount's start; its close frees it"
# A file mount 1 read and closed before: its record there stays (idle)
# until a sweep, and the removal takes it back first, so nothing waits.
random_file "$SRC/readonce" 2000000
commit_one 1 readonce "$SRC/readonce"
cmp "${M[1]}/assets/readonce/f" "$SRC/readonce" || fail "mount 1 reads readonce wrong"
rm -r "${M[1]}/assets/readonce" || fail "rm -r of readonce failed"
line=$(grep -F "asset 'readonce' removed" "$T/upfs1.log") || fail "mount 1 did not log the removal of readonce"
[[ $line != *"other mounts read"* ]] || fail "mount 1's own closed reader kept readonce as if another mount read it: $line"
(($(stripes_of readonce) == 0)) || fail "readonce's bytes were not freed by its removal"
ok "a file this mount read and closed is freed at once by its removal"
remove_while_read shared 4000000 1 3 1
mount_log_has 1 "the bytes of 1 files other mounts read are freed when their readers close" ||
  fail "mount 1's log does not say a file waits for another mount's reader"
cmp - "$SRC/shared" <&7 || fail "mount 3's reader did not read the file removed on mount 1 whole"
exec 7<&-
wait_until 20 "a sweep to free the file once mount 3's reader closed" freed shared
ok "a file removed on mount 1 while mount 3 reads it: read whole, freed after mount 3's reader closed"
remove_while_read kept2 3000000 2 2 2
kill_mount 2
exec 7<&-
wait_until 30 "a live mount's sweep to free the file the killed mount kept" freed kept2
mount_log_has 1 "that no live mount reads" || mount_log_has 3 "that no live mount reads" ||
  fail "no live mount logged freeing the killed mount's file"
ok "a removed file kept by a mount that was killed is freed by a live mount's sweep"
stop_mount 3
stop_mount 1

# ---- post_commit with several mounts ----
# The program logs "down|ok MOUNTPOINT ASSET"; it fails until $T/post-up
# exists.
cat >"$T/post-commit" <<EOF
#!/bin/sh
if [ ! -e '$T/post-up' ]; then
  printf 'down %s %s\n' "\$UPFS_MOUNTPOINT" "\$UPFS_ASSET" >>'$T/post.log'
  exit 1
fi
printf 'ok %s %s\n' "\$UPFS_MOUNTPOINT" "\$UPFS_ASSET" >>'$T/post.log'
EOF
chmod 755 "$T/post-commit"
: >"$T/post.log"
POST_OPTS=(-o lease=3 -o sweep_interval=1 -o post_commit="$T/post-commit")
post_logged() { grep -Fxq -- "$1" "$T/post.log"; }
start_mount 1 "${POST_OPTS[@]}"
random_file "$SRC/n1" 1000000
commit_one 1 n1 "$SRC/n1"
wait_until 20 "mount 1's first post_commit attempt for n1" post_logged "down ${M[1]} n1"
# Before deliverers were recorded, a mount that started delivered every
# notice it found, other live mounts' too. Mount 2 runs the program for
# its own commit n2; n1, had it taken it at its start, would come first.
start_mount 2 "${POST_OPTS[@]}"
random_file "$SRC/n2" 1000000
commit_one 2 n2 "$SRC/n2"
wait_until 20 "mount 2's first post_commit attempt for n2" post_logged "down ${M[2]} n2"
! grep -Fq -- "${M[2]} n1" "$T/post.log" ||
  fail "mount 2 delivered live mount 1's commit n1: $(cat "$T/post.log")"
ok "a starting mount leaves a live mount's undelivered commit to it"
# Mount 1 dies with n1 undelivered: mount 2's sweep takes it over.
kill_mount 1
touch "$T/post-up"
wait_until 30 "mount 2 to deliver the dead mount's commit n1" post_logged "ok ${M[2]} n1"
wait_until 30 "mount 2 to deliver its own commit n2" post_logged "ok ${M[2]} n2"
mount_log_has 2 "took over 1 commit notice(s) of mounts that are gone" ||
  fail "mount 2's log does not say it took n1 over"
start_mount 3 "${POST_OPTS[@]}"
random_file "$SRC/n3" 1000000
commit_one 3 n3 "$SRC/n3"
wait_until 20 "mount 3 to deliver n3" post_logged "ok ${M[3]} n3"
for a in n1 n2 n3; do
  oks=$(grep -c "^ok .* $a\$" "$T/post.log" || true)
  ((oks == 1)) || fail "post_commit of $a succeeded $oks times: $(cat "$T/post.log")"
done
ok "a dead mount's undelivered commit is delivered once, by a live mount; every commit once"
stop_mount 3
stop_mount 2
