#!/usr/bin/env bash
# tests/integration/multi_namespace.sh UPFS_BINARY (ctest multi.namespace,
# labels multi and rados): several mounts of one RADOS store serve one
# namespace (G8; docs/rados.md, "Several mounts"):
#   * two mounts racing `mkdir sessions/X` (30 rounds): exactly one
#     succeeds, the other gets EEXIST;
#   * a session is served by the mount that began it: on another mount its
#     .status reads (naming the holder) and a write fails with EBUSY, the
#     log naming the holder;
#   * after close(.finish) on mount 1, mount 2 stats and verifies the new
#     asset at once (sha256sum -c); the delay until mount 2's listing shows
#     it, over 100 commits, is printed (median, max);
#   * 4 mounts x 25 sessions committed in parallel: every mount lists all
#     100 and verifies each;
#   * a poller on mount 2 that lists and reads assets/ while mount 1
#     commits sessions of 40 files never sees one with files missing;
#   * per-user limits (-o quota, -o max_sessions) hold for a uid's
#     sessions on two mounts together; an abort on one gives its share
#     back to the other at once.
export UPFS_TEST_STORE=rados
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/multi_lib.sh"

start_mount 1 -o lease=5
start_mount 2 -o lease=5
ok "two mounts of one store"

# ---- the name race ----
for i in $(seq 1 30); do
  (if mkdir "${M[1]}/sessions/race$i" 2>"$T/race1.err"; then echo 0; else echo 1; fi >"$T/race1.rc") &
  p1=$!
  (if mkdir "${M[2]}/sessions/race$i" 2>"$T/race2.err"; then echo 0; else echo 1; fi >"$T/race2.rc") &
  p2=$!
  wait "$p1" "$p2"
  r1=$(cat "$T/race1.rc") r2=$(cat "$T/race2.rc")
  if ((r1 == 0 && r2 == 0)); then fail "round $i: both mounts created session race$i"; fi
  if ((r1 != 0 && r2 != 0)); then fail "round $i: neither mount created race$i: $(cat "$T/race1.err" "$T/race2.err")"; fi
  loser=$T/race$((r1 == 0 ? 2 : 1)).err
  grep -q "File exists" "$loser" || fail "round $i: the losing mkdir did not fail with EEXIST: $(cat "$loser")"
done
ok "30 mkdir races: one success and one EEXIST each"

# ---- one holder per session ----
mkdir "${M[1]}/sessions/held"
head -c 100000 /dev/urandom >"$T/held.bin"
cp "$T/held.bin" "${M[1]}/sessions/held/f"
status=$(cat "${M[2]}/sessions/held/.status")
[[ $status == *"held_by: 'upfs-mount "*"pid=${MOUNT_PID[1]} "* ]] || fail "mount 2's .status does not name the holder: $status"
[[ $status == *"received: 100000"* ]] || fail "mount 2's .status does not show the holder's bytes: $status"
if err=$(dd if=/dev/zero of="${M[2]}/sessions/held/g" bs=4k count=1 status=none 2>&1); then
  fail "a write on mount 2 into mount 1's session went through"
fi
[[ $err == *"Device or resource busy"* ]] || fail "the refused write did not fail with EBUSY: $err"
mount_log_has 2 "session 'held' is held by another mount ('upfs-mount" || fail "mount 2's log does not name the holder"
manifest_of_one() { (cd "$(dirname "$1")" && sha256sum "$(basename "$1")") | sed "s|  .*|  $2|"; }
manifest_of_one "$T/held.bin" f >"$T/held.sha256"
if dd if="$T/held.sha256" of="${M[2]}/sessions/held/.finish" status=none 2>"$T/fin.err"; then
  fail "a finish on mount 2 of mount 1's session went through"
fi
grep -q "Device or resource busy" "$T/fin.err" || fail "the refused finish did not fail with EBUSY: $(cat "$T/fin.err")"
dd if="$T/held.sha256" of="${M[1]}/sessions/held/.finish" status=none || fail "the holder's finish failed"
cmp "$T/held.bin" "${M[2]}/assets/held/f" || fail "mount 2 reads the asset wrong"
ok "a session is served by its holder: on mount 2 .status reads, write and finish fail with EBUSY"

# ---- commits seen everywhere, and how soon ----
mkdir -p "$SRC/v"
for j in 1 2 3; do random_file "$SRC/v/f$j" $((j * 70000)); done
manifest_of "$SRC/v" "$T/v.sha256"
delays=()
for i in $(seq 1 100); do
  mkdir "${M[1]}/sessions/v$i"
  cp "$SRC"/v/f* "${M[1]}/sessions/v$i/"
  dd if="$T/v.sha256" of="${M[1]}/sessions/v$i/.finish" status=none || fail "finish of v$i on mount 1 failed"
  t0=$(date +%s%N)
  [[ -d ${M[2]}/assets/v$i ]] || fail "mount 2 cannot stat assets/v$i right after the commit on mount 1"
  until ls "${M[2]}/assets" | grep -qx "v$i"; do
    (($(date +%s%N) - t0 < 5000000000)) || fail "mount 2's listing did not show v$i within 5 s"
  done
  delays+=($((($(date +%s%N) - t0) / 1000)))
  if ((i % 25 == 1)); then
    (cd "${M[2]}/assets/v$i" && sha256sum -c --quiet "$T/v.sha256") || fail "sha256sum -c of v$i on mount 2 failed"
  fi
done
sorted=$(printf '%s\n' "${delays[@]}" | sort -n)
median=$(sed -n 50p <<<"$sorted") max=$(tail -n1 <<<"$sorted")
ok "100 commits on mount 1: each stat'ed at once on mount 2; listing delay median ${median} us, max ${max} us"

# ---- 4 mounts x 25 sessions in parallel ----
start_mount 3 -o lease=5
start_mount 4 -o lease=5
commit_many() {
  local n=$1 i
  for i in $(seq 1 25); do
    mkdir "${M[$n]}/sessions/p$n.$i" || return 1
    cp "$SRC"/v/f* "${M[$n]}/sessions/p$n.$i/" || return 1
    dd if="$T/v.sha256" of="${M[$n]}/sessions/p$n.$i/.finish" status=none || return 1
  done
}
t0=$SECONDS
pids=()
for n in 1 2 3 4; do
  commit_many "$n" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a mount's 25 commits failed"; done
for n in 1 2 3 4; do
  count=$(ls "${M[$n]}/assets" | grep -c '^p')
  ((count == 100)) || fail "mount $n lists $count of the 100 parallel assets"
  for a in "${M[$n]}"/assets/p*; do
    (cd "$a" && sha256sum -c --quiet "$T/v.sha256") || fail "mount $n: $a does not verify"
  done
done
ok "4 mounts x 25 sessions committed in parallel ($((SECONDS - t0)) s): all 100 listed and verified on every mount"

# ---- no partial session seen from another mount ----
mkdir -p "$SRC/w"
for j in $(seq 1 40); do random_file "$SRC/w/f$j" 5000; done
manifest_of "$SRC/w" "$T/w.sha256"
poll() {
  local a n
  while [[ ! -e $T/poll.stop ]]; do
    for a in "${M[2]}"/assets/w*; do
      [[ -d $a ]] || continue
      n=$(ls "$a" | wc -l)
      ((n == 40)) || { echo "$a: $n files" >"$T/poll.partial"; return 1; }
    done
  done
}
poll &
poller=$!
for i in $(seq 1 10); do
  mkdir "${M[1]}/sessions/w$i"
  cp "$SRC"/w/f* "${M[1]}/sessions/w$i/"
  dd if="$T/w.sha256" of="${M[1]}/sessions/w$i/.finish" status=none || fail "finish of w$i failed"
done
touch "$T/poll.stop"
wait "$poller" || fail "the poller on mount 2 saw a partial asset: $(cat "$T/poll.partial")"
ok "a poller on mount 2 never saw part of the 10 sessions of 40 files mount 1 committed"

# ---- per-user limits across mounts ----
# Mounts 5 and 6 with -o quota=8M -o max_sessions=2: uid nobody's sessions
# on both together stay within them; an abort on one gives its share back
# to the other at once.
require_tools setpriv
NOGROUP=$(id -gn nobody)
as_nobody() { setpriv --reuid=nobody --regid="$NOGROUP" --clear-groups -- "$@"; }
chmod 0755 "$T"
MIB=$((1 << 20))
QOPTS=(-o allow_other -o quota=8M -o max_sessions=2 -o lease=5)
start_mount 5 "${QOPTS[@]}"
start_mount 6 "${QOPTS[@]}"
as_nobody mkdir "${M[5]}/sessions/qa"
as_nobody dd if=/dev/zero of="${M[5]}/sessions/qa/f" bs=1M count=5 status=none ||
  fail "5 MiB of an 8 MiB quota on mount 5 were refused"
as_nobody mkdir "${M[6]}/sessions/qb"
if as_nobody dd if=/dev/zero of="${M[6]}/sessions/qb/f" bs=1M count=5 status=none 2>"$T/qb.err"; then
  fail "5 MiB on mount 6 went in beside 5 MiB on mount 5, against an 8 MiB quota"
fi
grep -q "Disk quota exceeded" "$T/qb.err" || fail "the refused write on mount 6 did not fail with EDQUOT: $(cat "$T/qb.err")"
held_b=$(stat -c %s "${M[6]}/sessions/qb/f")
((5 * MIB + held_b <= 8 * MIB)) || fail "mounts 5 and 6 passed the quota together: 5 MiB + $held_b bytes"
((held_b >= MIB)) || fail "mount 6 got less than 1 MiB of the 3 MiB the quota leaves: $held_b bytes"
mount_log_has 6 "other mounts of this store hold grants of" || fail "mount 6's log does not say what mount 5 holds"
expect_fail "Disk quota exceeded" as_nobody mkdir "${M[6]}/sessions/qc"
ok "uid nobody's sessions on two mounts stop at -o quota (5 MiB + $held_b bytes of 8 MiB) and -o max_sessions together"
as_nobody rm -r "${M[5]}/sessions/qa"
as_nobody dd if=/dev/zero of="${M[6]}/sessions/qb/g" bs=1M count=4 status=none ||
  fail "after the abort on mount 5, mount 6 could not write 4 MiB more: $(grep -i quota "$T/upfs6.log" | tail -n 2)"
as_nobody mkdir "${M[6]}/sessions/qc" || fail "after the abort on mount 5, a second session on mount 6 was refused"
ok "an abort on mount 5 gives its share of the limits to mount 6 at once"
as_nobody rm -r "${M[6]}/sessions/qb" "${M[6]}/sessions/qc"
stop_mount 6
stop_mount 5

rc=0
out=$("$UPFS_BIN" fsck "$STORE" 2>&1) || rc=$?
((rc == 2)) && [[ $out == *"in use"* ]] || fail "fsck while mounts serve the store exited $rc, want 2 (in use): $out"
for n in 4 3 2 1; do stop_mount "$n"; done
out=$("$UPFS_BIN" fsck "$STORE" 2>&1) || fail "fsck after the mounts stopped found problems: $out"
ok "every mount stops cleanly; fsck is refused while they run (exit 2), and finds the store sound after"
