#!/usr/bin/env bash
# `upfs fsck` on a real store (docs/store.md, "upfs fsck"; G1):
#   * refused while a daemon holds the store (exit 2);
#   * clean after commits (exit 0);
#   * a bit flipped on disk inside a blob file (a failing disk) is caught by
#     the checksum in the chunk's extent record and named by asset, file and
#     offset (exit 1), and reading that file through a fresh mount fails
#     with EIO: never wrong bytes;
#   * an extent record rewritten directly in LevelDB with a wrong checksum
#     and valid LevelDB checksums (a bug) is caught too: fsck names the
#     chunk, and reading the file through the mount fails with EIO and a
#     log line naming the blob and the chunk's offset.
#
#   fsck.sh UPFS_BIN UPFS_CORRUPT_BIN      (upfs_corrupt: tests/fsck/)
source "$(dirname "$0")/lib.sh" "$@"

CORRUPT=${2:-}
[[ -n $CORRUPT && -x $CORRUPT ]] || fail "no upfs_corrupt tool: pass it as the second argument (got '$CORRUPT')"

# run_fsck ARGS...: sets FSCK_RC and FSCK_OUT (stdout and stderr).
run_fsck() {
  FSCK_RC=0
  FSCK_OUT=$("$UPFS_BIN" fsck "$@" 2>&1) || FSCK_RC=$?
}

# fsck_says TEXT: some line of the last fsck's output starts with TEXT.
fsck_says() {
  awk -v want="$1" 'index($0, want) == 1 { found = 1 } END { exit !found }' <<<"$FSCK_OUT"
}

# Two assets with the same tree and different random bytes (upfs_corrupt
# finds the byte to flip on disk by its neighbourhood, so it must be unique).
start_upfs
for name in disk bug; do
  mkdir -p "$SRC/$name/sub"
  random_file "$SRC/$name/big.bin" $((3 * 1024 * 1024 + 4321))
  random_file "$SRC/$name/other.bin" 300000
  random_file "$SRC/$name/sub/small.bin" 5000
  manifest_of "$SRC/$name" "$T/$name.manifest"
  mkdir "$MNT/sessions/$name"
  cp -r "$SRC/$name/." "$MNT/sessions/$name/"
  finish_session "$name" "$T/$name.manifest" || fail "finishing $name: $FINISH_ERR"
  cmp "$SRC/$name/big.bin" "$MNT/assets/$name/big.bin" || fail "$name/big.bin differs after the commit"
done
ok "committed assets disk and bug"

run_fsck "$STORE"
((FSCK_RC == 2)) || fail "fsck of a mounted store exited $FSCK_RC, want 2: $FSCK_OUT"
[[ $FSCK_OUT == *"in use"* ]] || fail "fsck of a mounted store did not say it is in use: $FSCK_OUT"
ok "fsck refuses a store a daemon holds: $FSCK_OUT"
stop_upfs

run_fsck
((FSCK_RC == 2)) || fail "fsck without STORE_DIR exited $FSCK_RC, want 2"
run_fsck "$T/no-such-store"
((FSCK_RC == 2)) || fail "fsck of a missing store exited $FSCK_RC, want 2"
[[ ! -e $T/no-such-store ]] || fail "fsck created $T/no-such-store"
ok "usage and open errors exit 2 and create nothing"

run_fsck "$STORE"
((FSCK_RC == 0)) || fail "fsck of a clean store exited $FSCK_RC: $FSCK_OUT"
[[ $FSCK_OUT == *": clean: "*"6 files (6 verified"* ]] || fail "unexpected clean report: $FSCK_OUT"
ok "clean store: $FSCK_OUT"

# A flipped bit on disk, in the chunk of disk/big.bin holding byte 2000000.
damage=$("$CORRUPT" "$STORE" disk big.bin 2000000) || fail "upfs_corrupt failed"
read -r _ begin end <<<"$damage"
log "damaged chunk [$begin, $end) of disk/big.bin on disk"
run_fsck "$STORE"
((FSCK_RC == 1)) || fail "fsck of a damaged store exited $FSCK_RC, want 1: $FSCK_OUT"
fsck_says "asset disk file big.bin offset $begin: chunk checksum mismatch" ||
  fail "fsck did not name asset disk, file big.bin, offset $begin: $FSCK_OUT"
[[ $FSCK_OUT == *"PROBLEMS FOUND"* ]] || fail "no summary verdict: $FSCK_OUT"
ok "fsck names the damaged chunk: $(grep -F 'checksum mismatch' <<<"$FSCK_OUT")"

start_upfs
expect_eio_read "$MNT/assets/disk/big.bin" "$SRC/disk/big.bin"
ok "cat of the damaged asset: $READ_ERR (the $READ_GOT bytes before it are right)"
expect_fail "Input/output error" \
  dd if="$MNT/assets/disk/big.bin" of=/dev/null bs=4096 iflag=skip_bytes skip=2000000 count=1 status=none
for f in other.bin sub/small.bin; do
  cmp "$SRC/disk/$f" "$MNT/assets/disk/$f" || fail "undamaged disk/$f differs"
done
for f in big.bin other.bin sub/small.bin; do
  cmp "$SRC/bug/$f" "$MNT/assets/bug/$f" || fail "bug/$f differs"
done
ok "the other files read back right"
assert_daemon_alive
stop_upfs

# A wrong extent record with valid LevelDB checksums: it no longer matches
# the chunk's bytes.
damage=$("$CORRUPT" --record "$STORE" bug sub/small.bin 100) || fail "upfs_corrupt --record failed"
read -r _ lbegin lend <<<"$damage"
run_fsck "$STORE"
((FSCK_RC == 1)) || fail "fsck after the record damage exited $FSCK_RC, want 1: $FSCK_OUT"
fsck_says "asset bug file sub/small.bin offset $lbegin: chunk checksum mismatch" ||
  fail "fsck did not report the checksum mismatch of bug/sub/small.bin at $lbegin: $FSCK_OUT"
fsck_says "asset disk file big.bin offset $begin: chunk checksum mismatch" || fail "the disk damage is no longer reported"
ok "fsck reports the checksum mismatch: $(grep -F 'sub/small.bin' <<<"$FSCK_OUT")"

start_upfs
expect_fail "Input/output error" cat "$MNT/assets/bug/sub/small.bin"
expect_fail "Input/output error" \
  dd if="$MNT/assets/bug/sub/small.bin" of=/dev/null bs=1 iflag=skip_bytes skip=100 count=1 status=none
log_has "chunk at offset $lbegin" || fail "no log line names the damaged chunk's offset $lbegin"
grep -F "chunk at offset $lbegin" "$UPFS_LOG" | grep -q "blob [0-9]" || fail "the log line does not name the blob"
for f in big.bin other.bin; do
  cmp "$SRC/bug/$f" "$MNT/assets/bug/$f" || fail "undamaged bug/$f differs"
done
assert_daemon_alive
stop_upfs
ok "reading the file with the damaged record fails with EIO: $(grep -F "chunk at offset $lbegin" "$UPFS_LOG" | head -n 1)"

# Nothing to remove: --remove-orphans leaves the damage reported.
run_fsck --remove-orphans "$STORE"
((FSCK_RC == 1)) || fail "fsck --remove-orphans exited $FSCK_RC, want 1: $FSCK_OUT"
ok "fsck --remove-orphans: $(tail -n 1 <<<"$FSCK_OUT")"

# A small file's bytes are inline, in its extent record: a flipped bit there
# is caught by the record's checksum the same way.
damage=$("$CORRUPT" "$STORE" disk sub/small.bin 200) || fail "upfs_corrupt of an inline chunk failed"
read -r _ ibegin iend <<<"$damage"
((ibegin == 0 && iend == 5000)) || fail "the 5000-byte file is not one inline chunk: [$ibegin, $iend)"
run_fsck "$STORE"
((FSCK_RC == 1)) || fail "fsck after damaging an inline chunk exited $FSCK_RC, want 1: $FSCK_OUT"
fsck_says "asset disk file sub/small.bin offset 0: chunk checksum mismatch" ||
  fail "fsck did not report the damaged inline chunk of disk/sub/small.bin: $FSCK_OUT"
start_upfs
expect_fail "Input/output error" cat "$MNT/assets/disk/sub/small.bin"
cmp "$SRC/disk/other.bin" "$MNT/assets/disk/other.bin" || fail "undamaged disk/other.bin differs"
assert_daemon_alive
stop_upfs
ok "a damaged inline chunk: fsck reports it, reads fail with EIO"
