#!/usr/bin/env bash
# Scenario 6 (G4, docs/semantics.md): failures say what and where, and
# leave the session fixable.
#   wrong hash      -> close(.finish) fails with EBADMSG, .status names the
#                      file and both hashes, the session remains, then a
#                      right manifest commits (also through the README's
#                      `(cd src && sha256sum *) > .finish`)
#   a gap           -> ENODATA, .status names the missing range; filling it
#                      lets the finish succeed
#   (both failures also leave a log line naming session, file and reason)
#   bad manifests   -> EINVAL (malformed line, bad hex, unlisted file,
#                      unknown path, duplicate line)
#   assets/         -> every write, create, rename, delete, setattr: EROFS
#   taken name      -> mkdir fails with EEXIST (open session or asset)
#   .status         -> read-only
# and the daemon is still up after all of it.
source "$(dirname "$0")/lib.sh" "$@"

start_upfs
S=$MNT/sessions

# ---- wrong hash ----
mkdir "$SRC/h"
random_file "$SRC/h/photo.jpg" 1500000
random_file "$SRC/h/notes.txt" 2000
mkdir "$S/h"
cp "$SRC/h/photo.jpg" "$SRC/h/notes.txt" "$S/h/"
(cd "$SRC/h" && sha256sum photo.jpg notes.txt) >"$T/h.good"
real=$(awk '$2 == "photo.jpg" {print $1}' "$T/h.good")
wrong=$(sha256sum <<<"not the photo" | cut -d' ' -f1)
sed "s/^$real /$wrong /" "$T/h.good" >"$T/h.bad"
grep -q "^$wrong  photo.jpg$" "$T/h.bad" || fail "could not make the wrong manifest"
expect_finish_error h "$T/h.bad" "Bad message"
status=$(cat "$S/h/.status")
for want in photo.jpg "$wrong" "$real"; do
  [[ $status == *"$want"* ]] || fail ".status after the hash mismatch lacks '$want':
$status"
done
ok ".status names photo.jpg, the expected and the actual hash"
wait_until 5 "a log line naming h, photo.jpg and both hashes" \
  log_has "'h'" photo.jpg "$wrong" "$real"
ok "the log names the session, the file and both hashes"
[[ -d $S/h && ! -e $MNT/assets/h ]] || fail "h: the failed finish did not leave the session as it was"
cmp "$SRC/h/photo.jpg" "$S/h/photo.jpg" || fail "h: session bytes changed by the failed finish"
ok "the session remains, with its bytes"

# The README's form: sha256sum reports the failed close itself.
cp "$SRC/h/photo.jpg" "$T/photo.orig"
# A byte that really differs (the file is random: byte 1000 may be 'x').
[[ $(od -An -c -j1000 -N1 "$SRC/h/photo.jpg" | tr -d ' ') == x ]] && flip=y || flip=x
printf '%s' "$flip" | dd of="$SRC/h/photo.jpg" bs=1 seek=1000 conv=notrunc status=none
cmp -s "$T/photo.orig" "$SRC/h/photo.jpg" && fail "the source did not change"
rc=0
(cd "$SRC/h" && sha256sum photo.jpg notes.txt) >"$S/h/.finish" 2>"$T/sha.err" || rc=$?
((rc != 0)) || fail "sha256sum ... > .finish succeeded with a changed source"
grep -q 'write error: Bad message' "$T/sha.err" || fail "sha256sum said: $(cat "$T/sha.err")"
ok "(cd src && sha256sum ...) > .finish: exit $rc, $(cat "$T/sha.err")"
cp "$T/photo.orig" "$SRC/h/photo.jpg"
rc=0
(cd "$SRC/h" && sha256sum photo.jpg notes.txt) >"$S/h/.finish" 2>"$T/sha.err" || rc=$?
((rc == 0)) || fail "sha256sum ... > .finish with the right source failed: $(cat "$T/sha.err")"
[[ -d $MNT/assets/h && ! -e $S/h ]] || fail "h: not committed after the right manifest"
(cd "$MNT/assets/h" && sha256sum -c --quiet "$T/h.good") || fail "h: sha256sum -c in assets/h"
ok "the right manifest committed h"

# ---- a gap ----
random_file "$SRC/gap.bin" 3145728
mkdir "$S/g"
put_range "$SRC/gap.bin" "$S/g/gap.bin" 0 1048576
put_range "$SRC/gap.bin" "$S/g/gap.bin" 2097152 1048576
(cd "$SRC" && sha256sum gap.bin) >"$T/g.manifest"
expect_finish_error g "$T/g.manifest" "No data available"
status=$(cat "$S/g/.status")
for want in gap.bin 1048576 2097152; do
  [[ $status == *"$want"* ]] || fail ".status after the gap lacks '$want':
$status"
done
ok ".status names gap.bin and the missing range [1048576, 2097152)"
wait_until 5 "a log line naming g, gap.bin and the missing range" \
  log_has "'g'" gap.bin 1048576 2097152
ok "the log names the session, the file and the range"
put_range "$SRC/gap.bin" "$S/g/gap.bin" 1048576 1048576
finish_session g "$T/g.manifest" || fail "g: finish after filling the gap: $FINISH_ERR"
cmp "$SRC/gap.bin" "$MNT/assets/g/gap.bin" || fail "g: asset differs"
ok "after the gap was filled, g committed"

# ---- bad manifests ----
mkdir "$S/m"
printf 'a\n' >"$SRC/a"
printf 'b\n' >"$SRC/b"
cp "$SRC/a" "$SRC/b" "$S/m/"
ha=$(sha256sum <"$SRC/a" | cut -d' ' -f1)
hb=$(sha256sum <"$SRC/b" | cut -d' ' -f1)
printf 'this is not a manifest\n' >"$T/m.malformed"
printf '%s  a\n%s  b\n' "${ha:0:63}g" "$hb" >"$T/m.badhex"
printf '%s  a\n' "$ha" >"$T/m.unlisted"
printf '%s  a\n%s  b\n%s  c\n' "$ha" "$hb" "$hb" >"$T/m.unknown"
printf '%s  a\n%s  b\n%s  a\n' "$ha" "$hb" "$ha" >"$T/m.duplicate"
for kind in malformed badhex unlisted unknown duplicate; do
  expect_finish_error m "$T/m.$kind" "Invalid argument"
  [[ -d $S/m ]] || fail "m: gone after the $kind manifest"
done
printf '%s  a\n%s *b\n' "$ha" "$hb" >"$T/m.good"
finish_session m "$T/m.good" || fail "m: a right manifest (with a binary-mode line) failed: $FINISH_ERR"
ok "m committed after five refused manifests"

# ---- assets/ is read-only ----
A=$MNT/assets/h
cp "$A/photo.jpg" "$T/asset.before"
expect_fail "Read-only file system" dd if=/dev/zero of="$A/photo.jpg" bs=1 count=1 conv=notrunc status=none
expect_fail "Read-only file system" truncate -s 0 "$A/photo.jpg"
expect_fail "Read-only file system" touch "$A/new"
expect_fail "Read-only file system" mkdir "$A/dir"
expect_fail "Read-only file system" mkdir "$MNT/assets/newname"
expect_fail "Read-only file system" rm "$A/notes.txt"
# (rm -r "$A" would remove the whole asset: integration.asset_removal.)
expect_fail "Read-only file system" mv "$A/notes.txt" "$A/renamed.txt"
expect_fail "Read-only file system" chmod 600 "$A/photo.jpg"
expect_fail "Read-only file system" setfattr -n user.x -v 1 "$A/photo.jpg"
cmp "$T/asset.before" "$A/photo.jpg" || fail "assets/h/photo.jpg changed"
[[ $(ls "$A" | tr '\n' ' ') == "notes.txt photo.jpg " ]] || fail "assets/h now lists: $(ls "$A")"
ok "assets/h unchanged"

# ---- taken names ----
mkdir "$S/open"
expect_fail "File exists" mkdir "$S/open"
expect_fail "File exists" mkdir "$S/h"

# ---- .status is read-only ----
before=$(cat "$S/open/.status")
[[ -n $before ]] || fail ".status of an open session is empty"
rc=0
err=$(dd if=/dev/zero of="$S/open/.status" bs=1 count=1 conv=notrunc status=none 2>&1) || rc=$?
((rc != 0)) || fail "writing .status succeeded"
ok "writing .status fails: $err"
after=$(cat "$S/open/.status")
[[ -n $after ]] || fail ".status became empty after a refused write"

assert_daemon_alive
