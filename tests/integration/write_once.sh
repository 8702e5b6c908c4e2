#!/usr/bin/env bash
# Scenario 4: write-once. A session made write-once with the xattr
# user.upfs.write_once=1 (and, after a remount with -o write_once, every new
# session) accepts a rewrite of a range with identical bytes, refuses one
# with different bytes (EPERM), and keeps the stored bytes unchanged. A
# plain session is last-write-wins, so the check can tell the two apart.
source "$(dirname "$0")/lib.sh" "$@"

SIZE=3000000
OFF=1000000
LEN=500000
random_file "$SRC/data.bin" "$SIZE"
random_file "$SRC/other.bin" "$SIZE"
printf '%s  data.bin\n' "$(sha256sum <"$SRC/data.bin" | cut -d' ' -f1)" >"$T/manifest"

# same_and_different NAME: the write-once checks on sessions/NAME/data.bin.
same_and_different() {
  local f=$MNT/sessions/$1/data.bin
  cp "$SRC/data.bin" "$f"
  put_range "$SRC/data.bin" "$f" "$OFF" "$LEN" || fail "$1: rewriting identical bytes failed"
  ok "$1: rewriting [$OFF, $((OFF + LEN))) with identical bytes succeeded"
  expect_fail "Operation not permitted" put_range "$SRC/other.bin" "$f" "$OFF" "$LEN"
  cmp "$SRC/data.bin" "$f" || fail "$1: the stored bytes changed after a refused rewrite"
  ok "$1: the stored bytes are unchanged"
}

start_upfs

# Control: without write-once the last write wins.
mkdir "$MNT/sessions/plain"
cp "$SRC/data.bin" "$MNT/sessions/plain/data.bin"
put_range "$SRC/other.bin" "$MNT/sessions/plain/data.bin" "$OFF" "$LEN" ||
  fail "plain: overwriting with different bytes failed"
cmp <(get_range "$MNT/sessions/plain/data.bin" "$OFF" "$LEN") <(get_range "$SRC/other.bin" "$OFF" "$LEN") ||
  fail "plain: the last write did not win"
ok "plain session: the last write wins"

mkdir "$MNT/sessions/wo"
setfattr -n user.upfs.write_once -v 1 "$MNT/sessions/wo"
got=$(xattr "$MNT/sessions/wo" user.upfs.write_once)
[[ $got == 1 ]] || fail "user.upfs.write_once reads back '$got', want 1"
same_and_different wo
finish_session wo "$T/manifest" || fail "finish wo: $FINISH_ERR"
cmp "$SRC/data.bin" "$MNT/assets/wo/data.bin" || fail "wo: the asset differs from the source"
ok "wo committed with the original bytes"

log "remount with -o write_once"
stop_upfs
start_upfs -o write_once
mkdir "$MNT/sessions/wo2"
same_and_different wo2
finish_session wo2 "$T/manifest" || fail "finish wo2: $FINISH_ERR"
cmp "$SRC/data.bin" "$MNT/assets/wo2/data.bin" || fail "wo2: the asset differs from the source"

# The xattr set to 0 opts a session out of the mount-wide default.
mkdir "$MNT/sessions/optout"
setfattr -n user.upfs.write_once -v 0 "$MNT/sessions/optout"
cp "$SRC/data.bin" "$MNT/sessions/optout/data.bin"
put_range "$SRC/other.bin" "$MNT/sessions/optout/data.bin" "$OFF" "$LEN" ||
  fail "optout: overwriting failed although user.upfs.write_once=0"
ok "user.upfs.write_once=0 makes a session last-write-wins under -o write_once"
assert_daemon_alive
