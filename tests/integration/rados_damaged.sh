#!/usr/bin/env bash
# tests/integration/rados_damaged.sh UPFS_BINARY (ctest rados.faults.damaged,
# label rados): bytes of a committed asset damaged inside the cluster (G1,
# docs/semantics.md): corrupted object bytes give EIO and an upfs fsck
# report, never wrong bytes. On a throw-away cluster (rados_store.sh): an asset of two files
# is committed, then a stripe object of the large one (`upfs.b.*`) gets
# other bytes written over part of it with the rados tool. Through a fresh
# mount, reading that file fails with EIO (not other bytes), the other file
# still reads back; unmounted, `upfs fsck rados://POOL/NS` exits 1 naming the
# asset, the file and the damaged chunk's offset.
export UPFS_TEST_STORE=rados
source "$(dirname "$0")/lib.sh" "$@"

BIG=$((9 * 1024 * 1024 + 4321))  # three 4 MiB stripes
random_file "$SRC/big.bin" "$BIG"
random_file "$SRC/small.txt" 3000
start_upfs
mkdir "$MNT/sessions/dmg"
cp "$SRC/big.bin" "$SRC/small.txt" "$MNT/sessions/dmg/"
manifest_of "$SRC" "$T/manifest"
finish_session dmg "$T/manifest" || fail "finish dmg: $FINISH_ERR"
cmp "$SRC/big.bin" "$MNT/assets/dmg/big.bin"
stop_upfs

# The only blob with stripe objects is big.bin's; damage its second stripe
# at 1 MB in (file offset 4 MiB + 1 MB), with bytes that differ from the
# original at every position (each byte XOR 0xff).
mapfile -t stripes < <(rados_ns ls | grep '^upfs\.b\.' | sort)
((${#stripes[@]} == 3)) || fail "expected 3 stripe objects for a ${BIG}-byte file, found ${#stripes[@]}: ${stripes[*]}"
victim=${stripes[1]}
damage_at=$((4 * 1024 * 1024 + 1000000))
get_range "$SRC/big.bin" "$damage_at" 4096 | perl -0777 -pe '$_ ^= "\xff" x length' >"$T/junk"
cmp -s "$T/junk" <(get_range "$SRC/big.bin" "$damage_at" 4096) && fail "the damage bytes equal the original"
rados_ns put "$victim" "$T/junk" --offset 1000000 || fail "rados put $victim --offset 1000000 failed"
ok "overwrote 4096 bytes of $victim at 1000000 (file offset $damage_at)"

start_upfs
expect_eio_read "$MNT/assets/dmg/big.bin" "$SRC/big.bin"
((READ_GOT <= damage_at)) || fail "read $READ_GOT bytes, past the damage at $damage_at"
ok "reading the damaged file fails with EIO after $READ_GOT correct bytes: $READ_ERR"
cmp "$SRC/small.txt" "$MNT/assets/dmg/small.txt"
ok "the undamaged file of the asset still reads back"
log_has "dmg" || fail "the daemon's log does not name the asset it failed to read"
stop_upfs

fsck_rc=0
out=$("$UPFS_BIN" fsck "$STORE" 2>&1) || fsck_rc=$?
((fsck_rc == 1)) || fail "fsck of the damaged store exited $fsck_rc, want 1: $out"
line=$(grep -F "checksum mismatch" <<<"$out" | grep -F "asset dmg file big.bin offset " || true)
[[ -n $line ]] || fail "fsck did not report a checksum mismatch in dmg/big.bin: $out"
# The chunk it names covers the damaged offset.
chunk_at=$(sed -n 's/.* offset \([0-9]*\):.*/\1/p' <<<"$line" | head -n 1)
((chunk_at <= damage_at)) || fail "fsck names offset $chunk_at, after the damage at $damage_at: $line"
ok "fsck exit 1: $line"
