#!/usr/bin/env bash
# Many sessions and many files (G5; docs/performance.md, "Scale and
# memory"), on a real mount:
#   - 1000 sessions open at once (one small file each): sessions/ lists
#     exactly them, every .status is right; 500 of them finish, and then
#     sessions/ and assets/ list exactly the right names;
#   - one session of 10 000 files in 100 directories: .status counts them,
#     the finish (a sha256sum manifest of 10 000 lines) succeeds, and
#     `sha256sum -c` passes from the asset directory;
#   - the daemon's peak RSS (VmHWM) stays under SCALE_MAX_HWM_MIB (300),
#     and what it holds per file of an open session (RSS growth over the
#     copy, LevelDB's memtable included) under SCALE_MAX_FILE_BYTES (4096).
# Prints the time of each phase and the memory figures, per file too.
#   SCALE_SESSIONS=N SCALE_FILES=N  larger runs by hand (defaults 1000, 10000)
source "$(dirname "$0")/lib.sh" "$@"

SESSIONS=${SCALE_SESSIONS:-1000}
FILES=${SCALE_FILES:-10000}
MAX_HWM_MIB=${SCALE_MAX_HWM_MIB:-300}
MAX_FILE_BYTES=${SCALE_MAX_FILE_BYTES:-4096}
DIRS=100
((SESSIONS % 2 == 0 && FILES % DIRS == 0)) || fail "SCALE_SESSIONS must be even, SCALE_FILES a multiple of $DIRS"

start_upfs
S=$MNT/sessions
A=$MNT/assets
mem() { awk -v k="$1:" '$1 == k { print int($2 / 1024) }' "/proc/$UPFS_PID/status"; }
kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$UPFS_PID/status"; }
t0=$(date +%s.%N)
phase() {  # phase NAME: prints the seconds since the last phase
  local now
  now=$(date +%s.%N)
  log "$(awk -v n="$1" -v s="$(awk -v a="$t0" -v b="$now" 'BEGIN { print b - a }')" \
    -v r="$(mem VmRSS)" -v h="$(mem VmHWM)" 'BEGIN { printf "%-34s %6.2f s   VmRSS %4d MiB  VmHWM %4d MiB", n, s, r, h }')"
  t0=$now
}
log "daemon at start: VmRSS $(mem VmRSS) MiB"

# ---- many sessions ----
# Session i holds one file of 6+i bytes: its name, then i spaces.
mapfile -t names < <(seq -f 's%05g' 0 $((SESSIONS - 1)))
(cd "$S" && mkdir "${names[@]}")
for ((i = 0; i < SESSIONS; i++)); do
  printf '%s%*s' "${names[i]}" "$i" '' >"$S/${names[i]}/f"
done
phase "begin $SESSIONS sessions"
printf '%s\n' "${names[@]}" >"$T/all"
ls "$S" >"$T/listed"
cmp -s "$T/all" "$T/listed" || fail "sessions/ does not list the $SESSIONS sessions: $(diff "$T/all" "$T/listed" | head)"
ok "sessions/ lists exactly the $SESSIONS sessions"
# Every .status, read by one awk: its name, one file of 6+i bytes, all received.
awk -v want="$SESSIONS" '
  FNR == 1 { n++; split(FILENAME, p, "/"); name = p[length(p) - 1]; i = substr(name, 2) + 0 }
  /^session: / && $2 != name { bad = bad FILENAME ": session " $2 "\n" }
  /^state: / && $2 != "open" { bad = bad FILENAME ": state " $2 "\n" }
  /^files: / && $2 != 1 { bad = bad FILENAME ": files " $2 "\n" }
  /^bytes_total: / && $2 != i + 6 { bad = bad FILENAME ": bytes_total " $2 "\n" }
  /^bytes_received: / && $2 != i + 6 { bad = bad FILENAME ": bytes_received " $2 "\n" }
  END { if (n != want) bad = bad "read " n " .status files\n"; printf "%s", bad; exit bad != "" }
' "$S"/s*/.status || fail ".status is wrong (above)"
ok "all $SESSIONS .status files are right"
phase "list + read every .status"

# The odd sessions finish (empty manifest: upfs's own hashes).
for ((i = 1; i < SESSIONS; i += 2)); do
  finish_session "${names[i]}" /dev/null || fail "finishing ${names[i]}: $FINISH_ERR"
done
phase "finish $((SESSIONS / 2)) sessions"
awk 'NR % 2 == 0' "$T/all" >"$T/odd"
awk 'NR % 2 == 1' "$T/all" >"$T/even"
ls "$A" >"$T/assets"
cmp -s "$T/odd" "$T/assets" || fail "assets/ is wrong: $(diff "$T/odd" "$T/assets" | head)"
ls "$S" >"$T/listed"
cmp -s "$T/even" "$T/listed" || fail "sessions/ is wrong: $(diff "$T/even" "$T/listed" | head)"
ok "assets/ lists the $((SESSIONS / 2)) finished sessions, sessions/ the $((SESSIONS / 2)) others"
for i in 1 $((SESSIONS / 2 + 1)) $((SESSIONS - 1)); do
  cmp "$A/${names[i]}/f" <(printf '%s%*s' "${names[i]}" "$i" '') ||
    fail "assets/${names[i]}/f differs"
done
ok "sample assets hold their bytes"
phase "list + check"

# ---- one session of many files ----
big=$SRC/big
mkdir -p "$big"
(cd "$big" && mkdir $(seq -f 'd%g' 0 $((DIRS - 1))))
# Files of 35 to 535 bytes, each different.
awk -v dirs=$DIRS -v per=$((FILES / DIRS)) -v top="$big" 'BEGIN {
  for (d = 0; d < dirs; d++) for (f = 0; f < per; f++) {
    path = top "/d" d "/f" f ".txt"
    printf "file %d/%d of the many-file session\n%*s\n", d, f, (d * 37 + f * 11) % 500, "" >path
    close(path)
  } }'

(cd "$big" && find . -type f -printf '%P\0' | sort -z | xargs -0 sha256sum) >"$T/big.sha256"
(($(wc -l <"$T/big.sha256") == FILES)) || fail "the manifest has $(wc -l <"$T/big.sha256") lines"
total=$(find "$big" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
phase "make $FILES source files"
rss_before_copy=$(kib VmRSS)
mkdir "$S/many"
cp -r "$big/." "$S/many/"
phase "cp -r $FILES files into a session"
held_per_file=$((($(kib VmRSS) - rss_before_copy) * 1024 / FILES))
st=$(cat "$S/many/.status")
grep -qx "files: $FILES" <<<"$st" || fail "many/.status: $(grep '^files:' <<<"$st")"
grep -qx "bytes_total: $total" <<<"$st" || fail "many/.status: $(grep '^bytes_total:' <<<"$st"), want $total"
grep -qx "bytes_received: $total" <<<"$st" || fail "many/.status: $(grep '^bytes_received:' <<<"$st")"
(($(grep -c '^file: ' <<<"$st") == FILES)) || fail "many/.status has $(grep -c '^file: ' <<<"$st") file blocks"
ok "many/.status: $FILES files, $total bytes, all received"
phase ".status of $FILES files"
rss_before_finish=$(kib VmRSS)
finish_session many "$T/big.sha256" || fail "finishing many: $FINISH_ERR"
phase "finish $FILES files"
finish_per_file=$((($(kib VmHWM) - rss_before_finish) * 1024 / FILES))
[[ -d $A/many && ! -e $S/many ]] || fail "many was not committed"
(cd "$A/many" && sha256sum -c --quiet "$T/big.sha256") || fail "sha256sum -c fails on assets/many"
(($(find "$A/many" -type f | wc -l) == FILES)) || fail "assets/many holds $(find "$A/many" -type f | wc -l) files"
ok "assets/many: $FILES files, sha256sum -c passes"
phase "verify $FILES asset files"
(($(ls "$A" | wc -l) == SESSIONS / 2 + 1)) || fail "assets/ has $(ls "$A" | wc -l) entries"

hwm=$(mem VmHWM)
log "daemon memory: VmRSS $(mem VmRSS) MiB, VmHWM $hwm MiB (bound $MAX_HWM_MIB MiB)"
log "per file: $held_per_file bytes held while its session is open, up to $finish_per_file more while the finish runs (docs/performance.md: Scale and memory)"
memory_bound "the daemon's peak RSS is $hwm MiB, over $MAX_HWM_MIB MiB" "hwm < MAX_HWM_MIB"
ok "peak RSS $hwm MiB < $MAX_HWM_MIB MiB"
memory_bound "the daemon holds $held_per_file bytes per open file, over $MAX_FILE_BYTES" "held_per_file < MAX_FILE_BYTES"
ok "$held_per_file bytes per file of an open session < $MAX_FILE_BYTES"
assert_daemon_alive
