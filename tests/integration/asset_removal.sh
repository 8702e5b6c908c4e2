#!/usr/bin/env bash
# tests/integration/asset_removal.sh UPFS_BINARY (ctest integration.asset_removal
# and rados.integration.asset_removal): removing committed assets
# (docs/configuration.md, "Removing assets").
#   - rmdir assets/NAME removes the whole asset at once: gone
#     from the listing and from lookups; a reader holding one of its files
#     open reads it whole to the end; its bytes are freed once it closes
#   - rm -r, rm -rf, find -delete and shutil.rmtree remove an asset
#     whole: their steps inside it change nothing, its own directory goes
#     last, at once; a walk stopped halfway leaves the asset whole and
#     readable to others; a lone rm of one of its files fails (EROFS)
#   - only the asset's owner or root (assets/ is sticky)
#   - kill -9 racing a removal: after the restart the asset is whole or
#     gone, never part of it; kill -9 with a reader still open: its bytes
#     are freed at the restart; upfs fsck stays clean
#   - -o worm refuses every removal
source "$(dirname "$0")/lib.sh" "$@"
require_tools setpriv

[[ $(id -u) == 0 ]] || { log "SKIP: needs root (to act as another user)"; exit 77; }
NOGROUP=$(id -gn nobody)
as_nobody() { setpriv --reuid=nobody --regid="$NOGROUP" --clear-groups -- "$@"; }
chmod 0755 "$T" "$SRC"
umask 022
S=$MNT/sessions
A=$MNT/assets

# The store's size: its directory, or on RADOS its stripe objects.
store_bytes() {
  if on_rados; then rados_stripe_bytes; else du -s --block-size=1 "$STORE/blobs" | cut -f1; fi
}

# commit NAME FILES [as_nobody]: an asset of FILES small files, a 4 MB one
# and a subdirectory, its source kept in $SRC/NAME.
commit() {
  local name=$1 files=$2 runner=${3:-}
  mkdir -p "$SRC/$name/sub"
  random_file "$SRC/$name/big" 4000000
  local i
  for ((i = 0; i < files; i++)); do head -c $((100 + i)) /dev/urandom >"$SRC/$name/sub/f$i"; done
  $runner mkdir "$S/$name"
  $runner cp -r "$SRC/$name/." "$S/$name/"
  $runner dd if=/dev/null of="$S/$name/.finish" status=none || fail "finishing $name"
}
whole() { diff -r "$SRC/$1" "$A/$1" >/dev/null; }
assert_fsck_clean() {
  local out
  out=$("$UPFS_BIN" fsck "$STORE" 2>&1) || fail "upfs fsck: $out"
  ok "upfs fsck: clean"
}

start_upfs -o allow_other
commit keep 20
commit gone 20
commit theirs 5 as_nobody
whole gone || fail "assets/gone differs before the removal"

# ---- a reader holds a file of the asset open ----
before=$(store_bytes)
exec 3<"$A/gone/big"
rmdir "$A/gone" || fail "rmdir assets/gone failed"
[[ $(ls "$A") == $'keep\ntheirs' ]] || fail "assets/ lists: $(ls "$A")"
expect_fail "No such file or directory" stat "$A/gone"
expect_fail "No such file or directory" cat "$A/gone/sub/f1"
cmp <(cat <&3) "$SRC/gone/big" || fail "the open reader did not read the removed file whole"
held=$(store_bytes)
((held > before - 1000000)) || fail "the open file's bytes were freed under its reader: $before -> $held bytes"
exec 3<&-
# close(2) returns before the daemon gets the release: poll.
shrunk() { (($(store_bytes) < held - 3500000)); }
wait_until 30 "the removed file's bytes to be freed after its reader closed" shrunk
after=$(store_bytes)
((after < before - 3500000)) || fail "the store did not shrink: $before -> $held (reader open) -> $after bytes"
ok "rmdir: gone at once, the reader read on, the bytes freed ($before -> $after bytes)"

# ---- rm -r and the other tree walkers ----
# A lone unlink inside an asset (no walk: rm holds no directory open).
expect_fail "Read-only file system" rm "$A/keep/big"
expect_fail "Read-only file system" rm -f "$A/keep/sub/f1"
whole keep || fail "a refused rm changed assets/keep"
# A walk stopped halfway: it unlinks a file and empties and removes sub/,
# holding each directory open as rm -r does, then stops. Every step was
# accepted and changed nothing: the asset is whole to everyone else.
commit stopped 10
python3 - "$A/stopped" <<'PY' || fail "the stopped walk's steps were refused"
import os, sys
top = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
os.unlink("big", dir_fd=top)
sub = os.open("sub", os.O_RDONLY | os.O_DIRECTORY, dir_fd=top)
for name in os.listdir(sub):
    os.unlink(name, dir_fd=sub)
os.close(sub)
os.rmdir("sub", dir_fd=top)
PY
whole stopped || fail "a walk stopped halfway changed assets/stopped"
[[ $(stat -c %h "$A/stopped/big") == 1 ]] || fail "assets/stopped/big: link count $(stat -c %h "$A/stopped/big")"
[[ $(ls "$A/stopped/sub" | wc -l) == 10 ]] || fail "assets/stopped/sub lists: $(ls "$A/stopped/sub")"
ok "a lone rm refused (EROFS), a walk stopped halfway left the asset whole"
# Each walker removes a whole asset; the store gives its bytes back.
commit by_rm 20
commit by_rmf 20
commit by_find 20
commit by_rmtree 20
before=$(store_bytes)
rm -r "$A/by_rm" || fail "rm -r assets/by_rm failed"
rm -rf "$A/by_rmf" || fail "rm -rf assets/by_rmf failed"
find "$A/by_find" -delete || fail "find assets/by_find -delete failed"
python3 -c 'import shutil, sys; shutil.rmtree(sys.argv[1])' "$A/by_rmtree" || fail "shutil.rmtree failed"
for name in by_rm by_rmf by_find by_rmtree; do
  [[ ! -e $A/$name ]] || fail "assets/$name is still there"
done
[[ $(ls "$A") == $'keep\nstopped\ntheirs' ]] || fail "assets/ lists: $(ls "$A")"
shrunk() { (($(store_bytes) < before - 4 * 3500000)); }
wait_until 30 "the removed assets' bytes to be freed" shrunk
ok "rm -r, rm -rf, find -delete and shutil.rmtree each removed an asset whole; $before -> $(store_bytes) bytes"
# Only the owner or root: nobody's rm -r of root's asset is refused at the
# first step (the kernel: root's directories are 0755) and changes nothing.
out=$(as_nobody rm -r "$A/keep" 2>&1) && fail "nobody's rm -r of assets/keep succeeded"
[[ $out == *"Permission denied"* ]] || fail "nobody's rm -r assets/keep: $out"
whole keep || fail "nobody's rm -r changed assets/keep"
# In an asset whose directories anyone may write, upfs checks the owner.
mkdir -p "$SRC/open_dirs/sub"
echo one >"$SRC/open_dirs/sub/f"
chmod -R a+w "$SRC/open_dirs"
mkdir "$S/open_dirs"
cp -a "$SRC/open_dirs/." "$S/open_dirs/"
dd if=/dev/null of="$S/open_dirs/.finish" status=none || fail "finishing open_dirs"
out=$(as_nobody rm -r "$A/open_dirs" 2>&1) && fail "nobody's rm -r of assets/open_dirs succeeded"
[[ $out == *"Operation not permitted"* ]] || fail "nobody's rm -r assets/open_dirs: $out"
whole open_dirs || fail "nobody's rm -r changed assets/open_dirs"
expect_fail "Operation not permitted" as_nobody rmdir "$A/keep"
whole keep || fail "a refused rmdir changed assets/keep"
as_nobody rm -r "$A/theirs" || fail "the owner could not rm -r assets/theirs"
[[ ! -e $A/theirs ]] || fail "assets/theirs still there"
rmdir "$A/stopped" "$A/open_dirs"
ok "nobody cannot remove root's assets (EACCES from the modes, EPERM from upfs), the owner removes its own"

# ---- kill -9 racing removals ----
# The kill lands at a different point of the removal each round (a fault
# injection delay, not a synchronisation).
for round in 1 2 3; do
  commit "race$round" 300
  # Its error (ENOTCONN when the kill comes first) is expected.
  # Round 2 removes with rm -r, whose walk the kill may stop halfway.
  remover=rmdir
  ((round == 2)) && remover="rm -r"
  bg sh -c '$1 "$2" 2>/dev/null; exit 0' sh "$remover" "$A/race$round"
  ((round == 1)) || sleep "0.00$(((round - 1) * 4))"
  kill_upfs
  wait_job 30 "$LAST_BG"
  start_upfs -o allow_other
  if [[ -e $A/race$round ]]; then
    whole "race$round" || fail "round $round: assets/race$round survived the crash in part"
    ok "round $round: the crash came first; the asset is whole"
  else
    ok "round $round: the removal came first; the asset is gone"
  fi
done
stop_upfs
assert_fsck_clean

# ---- kill -9 while a reader holds a removed file open ----
start_upfs -o allow_other
commit held 10
before=$(store_bytes)
exec 3<"$A/held/big"
rmdir "$A/held"
kill_upfs
exec 3<&-
start_upfs -o allow_other
after=$(store_bytes)
((after < before - 3500000)) || fail "the kept file was not freed at the restart: $before -> $after bytes"
stop_upfs
assert_fsck_clean
ok "kill -9 with a reader open: the bytes freed at the restart"

# ---- -o worm ----
start_upfs -o worm
expect_fail "Read-only file system" rmdir "$A/keep"
expect_fail "Read-only file system" rm -r "$A/keep"
whole keep || fail "-o worm: assets/keep changed"
stop_upfs
assert_fsck_clean
