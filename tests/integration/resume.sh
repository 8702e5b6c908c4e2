#!/usr/bin/env bash
# tests/integration/resume.sh UPFS_BINARY (ctest integration.resume and
# rados.integration.resume): resuming an upload the way rsync resumes, and
# tools' leftovers (docs/configuration.md, "Resuming, and tools'
# leftovers").
#   - rsync -a --inplace --no-whole-file of a 100 MiB file, the daemon
#     killed (kill -9) mid-transfer, a remount, the same command again:
#     --stats shows it sent only what the session was missing; a sha256sum
#     manifest finishes it; the asset is the file (cmp)
#   - leftovers of rsync, GNOME, LibreOffice and macOS: .status lists them
#     (ignored:), an empty-manifest commit (mv into assets/) leaves them out,
#     names them in user.upfs.left_out and the log, and frees their bytes
#     (upfs fsck finds no orphan); a manifest that lists one commits it
source "$(dirname "$0")/lib.sh" "$@"
require_tools rsync

SIZE=$((100 << 20))
random_file "$SRC/big" "$SIZE"
start_upfs
S=$MNT/sessions

# session_bytes NAME: the bytes of the session's files, summed.
session_bytes() { find "$S/$1" -type f ! -name .finish ! -name .status -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }'; }
holds() { (($(session_bytes "$1") > $2)); }
# stat_of FILE KEY: a number from rsync --stats output ("Literal data: 1,234 bytes").
stat_of() { awk -F': ' -v k="$2" '$1 == k { gsub(/[^0-9]/, "", $2); print $2 }' "$1"; }

# ---- rsync, killed daemon, remount, rsync again ----
RSYNC=(rsync -a --inplace --no-whole-file)
mkdir "$S/up"
bg "${RSYNC[@]}" --bwlimit=20m "$SRC/big" "$S/up/"
wait_until 120 "the session holds 40 MiB" holds up $((40 << 20))
kill_upfs
wait_job 60 "$LAST_BG"
BG_PIDS=()  # reaped: nothing for the cleanup to wait for
((JOB_RC != 0)) || fail "rsync succeeded although the daemon was killed mid-transfer"
start_upfs
killed_at=$(session_bytes up)
log "after the kill and a remount the session holds $killed_at of $SIZE bytes; rsync had exited $JOB_RC"
((killed_at < SIZE)) || fail "the transfer ended before the kill"
"${RSYNC[@]}" --stats "$SRC/big" "$S/up/" >"$T/stats" 2>&1 || fail "the rerun failed: $(cat "$T/stats")"
literal=$(stat_of "$T/stats" "Literal data")
sent=$(stat_of "$T/stats" "Total bytes sent")
matched=$(stat_of "$T/stats" "Matched data")
log "rerun: literal data $literal, matched $matched, total sent $sent bytes"
[[ -n $literal && -n $sent ]] || fail "no --stats figures: $(cat "$T/stats")"
# What was in the session is not sent again: at most what it lacked, and
# a margin for writes the killed daemon had not stored (RADOS acknowledges
# before storing; those read back as holes and are sent again).
((literal <= SIZE - killed_at + (8 << 20))) || fail "the rerun sent $literal bytes; the session lacked only $((SIZE - killed_at))"
((sent < SIZE * 4 / 5)) || fail "the rerun sent $sent bytes of $SIZE: it did not resume"
((matched >= killed_at - (8 << 20))) || fail "only $matched bytes matched of the $killed_at received"
[[ $(find "$S/up" -type f ! -name .finish ! -name .status | wc -l) == 1 ]] || fail "rsync left files: $(ls -A "$S/up")"
grep -q '^missing: none$' "$S/up/.status" || fail ".status: $(cat "$S/up/.status")"
(cd "$SRC" && sha256sum big) >"$T/manifest"
finish_session up "$T/manifest" || fail "finishing up: $FINISH_ERR"
cmp "$SRC/big" "$MNT/assets/up/big" || fail "the asset differs from the file"
ok "rsync resumed after kill -9: $literal of $SIZE bytes sent again ($killed_at were there), finish and cmp OK"

# ---- leftovers ----
mkdir "$S/left" "$S/left/sub"
random_file "$SRC/photo" $((3 << 20))
cp "$SRC/photo" "$S/left/photo"
echo "meant" >"$S/left/sub/.hidden"
LEFTOVERS=(.photo.WfEbu7 .DS_Store ._photo .goutputstream-ABC123 .~lock.doc.odt# sub/.notes.swp)
for f in "${LEFTOVERS[@]}"; do
  head -c $((2 << 20)) /dev/urandom >"$S/left/$f"
done
grep -q '^ignored: 6$' "$S/left/.status" || fail ".status does not count 6 ignored files: $(grep ignored "$S/left/.status")"
grep -A6 '^file: \.photo\.WfEbu7$' "$S/left/.status" | grep -qF 'ignored: .*.[!.][!.][!.][!.][!.][!.]' ||
  fail ".status does not mark rsync's leftover: $(cat "$S/left/.status")"
if grep -A6 '^file: photo$' "$S/left/.status" | grep -q '^ignored'; then fail ".status marks photo ignored"; fi
ok ".status lists the 6 leftovers before the commit"
mv "$S/left" "$MNT/assets/" || fail "mv of the session into assets/ failed"
[[ $(cd "$MNT/assets/left" && find . -type f | sort | tr '\n' ' ') == "./photo ./sub/.hidden " ]] ||
  fail "the asset holds: $(cd "$MNT/assets/left" && find . -type f)"
cmp "$SRC/photo" "$MNT/assets/left/photo" || fail "photo differs"
want=$(printf '%s\n' "${LEFTOVERS[@]}" | sort)
got=$(xattr "$MNT/assets/left" user.upfs.left_out)
[[ $got == "$want" ]] || fail "user.upfs.left_out: '$got', want '$want'"
log_has "session 'left' committed: 2 files" "left out 6 files" "'.photo.WfEbu7'" || fail "no commit line naming the leftovers"
ok "an empty-manifest commit left the leftovers out and listed them (xattr, log)"

# A manifest that lists a leftover commits it; one it does not list is
# left out rather than failing the finish; a file matching nothing that
# it does not list still fails.
mkdir "$S/listed"
cp "$SRC/photo" "$S/listed/photo"
echo "finder" >"$S/listed/.DS_Store"
echo "partial" >"$S/listed/.photo.q1W2e3"
echo "stray" >"$S/listed/stray"
(cd "$S/listed" && sha256sum photo .DS_Store) >"$T/listed"
expect_finish_error listed "$T/listed" "Invalid argument"
grep -q "^last_error: .*file 'stray' is not listed in the manifest" "$S/listed/.status" || fail "$(grep last_error "$S/listed/.status")"
rm "$S/listed/stray"
finish_session listed "$T/listed" || fail "finishing listed: $FINISH_ERR"
[[ $(cat "$MNT/assets/listed/.DS_Store") == finder ]] || fail "the listed .DS_Store was not committed"
[[ ! -e $MNT/assets/listed/.photo.q1W2e3 ]] || fail "the unlisted rsync leftover was committed"
[[ $(xattr "$MNT/assets/listed" user.upfs.left_out) == .photo.q1W2e3 ]] || fail "listed: user.upfs.left_out wrong"
ok "a listed .DS_Store committed, the unlisted leftover left out, an unlisted file still EINVAL"

# The leftovers' bytes were freed with the commit: no orphan for fsck.
stop_upfs
out=$("$UPFS_BIN" fsck "$STORE" 2>&1) || fail "upfs fsck after the commits: $out"
ok "upfs fsck clean: the left-out files' bytes are gone"

# -o ignore= leaves nothing out.
start_upfs -o ignore=
mkdir "$S/all"
echo "finder" >"$S/all/.DS_Store"
if grep -q '^ignored' "$S/all/.status"; then fail "-o ignore=: .status lists ignored files"; fi
dd if=/dev/null of="$S/all/.finish" status=none || fail "finishing all failed"
[[ $(cat "$MNT/assets/all/.DS_Store") == finder ]] || fail "-o ignore=: .DS_Store was left out"
ok "-o ignore= commits every file"
stop_upfs
