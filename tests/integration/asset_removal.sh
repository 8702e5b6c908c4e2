#!/usr/bin/env bash
# tests/integration/asset_removal.sh UPFS_BINARY (ctest integration.asset_removal
# and rados.integration.asset_removal): removing committed assets
# (docs/configuration.md, "Removing assets").
#   - rmdir assets/NAME removes the whole asset at once: gone
#     from the listing and from lookups; a reader holding one of its files
#     open reads it whole to the end; its bytes are freed once it closes
#   - files inside stay immutable: rm -r fails at the first file (EROFS)
#     and removes nothing
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

# ---- rm -r removes nothing; only the owner or root ----
out=$(rm -r "$A/keep" 2>&1) && fail "rm -r assets/keep succeeded"
[[ $out == *"Read-only file system"* ]] || fail "rm -r assets/keep: $out"
whole keep || fail "rm -r changed assets/keep"
expect_fail "Operation not permitted" as_nobody rmdir "$A/keep"
whole keep || fail "a refused rmdir changed assets/keep"
as_nobody rmdir "$A/theirs" || fail "the owner could not remove assets/theirs"
[[ ! -e $A/theirs ]] || fail "assets/theirs still there"
ok "rm -r refused whole (EROFS), nobody cannot remove root's asset, the owner removes its own"

# ---- kill -9 racing removals ----
# The kill lands at a different point of the removal each round (a fault
# injection delay, not a synchronisation).
for round in 1 2 3; do
  commit "race$round" 300
  # Its error (ENOTCONN when the kill comes first) is expected.
  bg sh -c 'rmdir "$1" 2>/dev/null; exit 0' sh "$A/race$round"
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
whole keep || fail "-o worm: assets/keep changed"
stop_upfs
assert_fsck_clean
