#!/usr/bin/env bash
# tests/integration/rados_mount.sh UPFS_BINARY (ctest label rados): upfs over
# a RADOS store from the command line (docs/rados.md). On a throw-away cluster
# (tests/ceph/test_cluster.sh): mount rados://POOL/NAMESPACE, one complete
# upload (cp, a sha256sum manifest into .finish), the asset read back with
# cmp, each stripe write with its allocation hint (the OSD's history);
# unmount, mount again on a fresh mount point with no local state and see
# the asset and an open session; mount-scripts/upfs-mount and
# upfs-umount with the rados:// source; `upfs fsck rados://...` is clean; and
# malformed URLs are usage errors (exit 2, with the reason); df of the mount
# reports the cluster's size, then the pool's quota.
# Exits 77 (ctest: skipped) without /dev/fuse or Ceph, unless CI=true.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/../ceph/test_cluster.sh"

POOL=upfs_cli
start_test_cluster "$TEST_NAME" "$POOL"
# start_test_cluster's trap stops the cluster; lib.sh's cleanup must run
# too, and unmount first: a daemon whose cluster is gone waits out its
# timeouts before it can exit.
on_exit() {
  local rc=$?
  set +e
  if [[ -n $UPFS_PID ]] && mountpoint -q "$MNT" 2>/dev/null; then
    fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT"
    wait_gone "$UPFS_PID" 15
  fi
  # upfs-mount's daemon: its own waiting unmount.
  if [[ -n ${MNT3:-} ]] && mountpoint -q "$MNT3" 2>/dev/null; then
    "$SCRIPTS/upfs-umount" --timeout 15 "$MNT3" || fusermount3 -u -z "$MNT3"
  fi
  "$CLUSTER_SH" stop "$CEPH_DIR"
  (exit "$rc")
  cleanup
}
trap on_exit EXIT

CONF=$CEPH_DIR/ceph.conf
STORE=rados://$POOL/it-ns
opts=(-o "ceph_conf=$CONF,rados_timeout=20")

# Usage errors: exit 2 with the reason, for the mount and for fsck.
expect_usage() {
  local want=$1 out rc=0
  shift
  out=$("$@" 2>&1) || rc=$?
  ((rc == 2)) || fail "expected exit 2 ('$want') from: $*; got $rc: $out"
  [[ $out == *"$want"* ]] || fail "expected '$want' from: $*; got: $out"
  ok "usage error: $* -> $(head -n 1 <<<"$out")"
}
expect_usage "no pool name" "$UPFS_BIN" -f "${opts[@]}" rados:// "$MNT"
expect_usage "no pool name" "$UPFS_BIN" -f "${opts[@]}" rados:///x "$MNT"
expect_usage "empty namespace" "$UPFS_BIN" -f "${opts[@]}" rados://p/ "$MNT"
expect_usage "rados_timeout" "$UPFS_BIN" -f -o rados_timeout=0 "$STORE" "$MNT"
expect_usage "is for a rados:// store" "$UPFS_BIN" -f -o "ceph_conf=$CONF" "$T/store" "$MNT"
expect_usage "no pool name" "$UPFS_BIN" fsck -o "ceph_conf=$CONF" rados:///x
expect_usage "ceph_id" "$UPFS_BIN" fsck -o ceph_id= "$STORE"
mountpoint -q "$MNT" && fail "a usage error mounted something"
[[ -e $T/store ]] && fail "a usage error created the directory store"

# A pool that does not exist: exit 1 (not usage), naming it.
out=$("$UPFS_BIN" -f "${opts[@]}" rados://no_such_pool "$MNT" 2>&1) && fail "mounted a missing pool"
[[ $out == *no_such_pool* ]] || fail "missing pool: $out"
ok "a missing pool is refused: $(grep -m1 'cannot open' <<<"$out")"

start_upfs "${opts[@]}"
grep -q "upfs:$STORE $MNT fuse.upfs" /proc/self/mounts || fail "fsname is not upfs:$STORE"
# The OSD keeps the descriptions of its last 1000 operations, to see what
# the upload below sends (osd_op_history_size, 20 by default).
OSD_ASOK=$(ls "$CEPH_DIR"/run/ceph-osd.0.*.asok)
ceph --admin-daemon "$OSD_ASOK" config set osd_op_history_size 1000 >/dev/null
random_file "$SRC/big.bin" 5000000
random_file "$SRC/small.txt" 1000
mkdir "$MNT/sessions/up1"
cp "$SRC/big.bin" "$SRC/small.txt" "$MNT/sessions/up1/"
manifest_of "$SRC" "$T/manifest"
finish_session up1 "$T/manifest" || fail "finish up1: $FINISH_ERR"
cmp "$SRC/big.bin" "$MNT/assets/up1/big.bin"
cmp "$SRC/small.txt" "$MNT/assets/up1/small.txt"
ok "upload committed to $STORE and read back"
# Every write of stripe bytes carries the allocation hint rados bench
# gives its objects (store/rados_blob_files.cc): object size, write size,
# sequential and immutable, so BlueStore checksums a write in one piece.
ceph --admin-daemon "$OSD_ASOK" dump_historic_ops >"$T/ops.json"
grep -o 'upfs\.b\.[0-9a-f.]*:head \[[^]]*\]' "$T/ops.json" | grep 'write ' >"$T/stripe-writes" ||
  fail "the OSD's history shows no write of a stripe object: $(head -c 600 "$T/ops.json")"
if grep -v '\[set-alloc-hint object_size 4194304 write_size [0-9]*,write ' "$T/stripe-writes" >"$T/unhinted"; then
  fail "stripe writes without the allocation hint: $(head -n 3 "$T/unhinted")"
fi
ok "$(wc -l <"$T/stripe-writes") stripe writes, each with its allocation hint: $(head -n 1 "$T/stripe-writes")"
mkdir "$MNT/sessions/open1"
printf 'half done' >"$MNT/sessions/open1/part"
stop_upfs

# No local state: a fresh mount point, nothing else on this machine.
MNT=$T/mnt2
mkdir "$MNT"
start_upfs "${opts[@]}"
cmp "$SRC/big.bin" "$MNT/assets/up1/big.bin"
cmp "$SRC/small.txt" "$MNT/assets/up1/small.txt"
[[ $(cat "$MNT/sessions/open1/part") == "half done" ]] || fail "the open session's file changed"
ok "a new mount sees the asset and the open session"
stop_upfs

# mount-scripts/upfs-mount with a rados:// source: a daemon (logging to
# syslog), nothing created for the source; upfs-umount waits for it.
SCRIPTS=$(cd "$(dirname "$0")/../../mount-scripts" && pwd)
MNT3=$T/mnt3
out=$(cd "$T" && UPFS_BIN=$UPFS_BIN "$SCRIPTS/upfs-mount" "${opts[@]}" "$STORE" "$MNT3" 2>&1) ||
  fail "upfs-mount $STORE: $out"
cmp "$SRC/big.bin" "$MNT3/assets/up1/big.bin"
[[ ! -e "$T/rados:" ]] || fail "upfs-mount made a directory for the rados:// source"
"$SCRIPTS/upfs-umount" "$MNT3" >/dev/null || fail "upfs-umount $MNT3"
mountpoint -q "$MNT3" && fail "$MNT3 is still mounted"
ok "upfs-mount/upfs-umount with $STORE"

out=$("$UPFS_BIN" fsck -o "ceph_conf=$CONF" "$STORE" 2>&1) || fail "fsck of $STORE: $out"
[[ $out == *clean* ]] || fail "fsck did not say clean: $out"
ok "fsck: $(tail -n 1 <<<"$out")"
# Another namespace of the same pool holds no store: an open error (2).
rc=0
out=$("$UPFS_BIN" fsck -o "ceph_conf=$CONF" "rados://$POOL/empty" 2>&1) || rc=$?
((rc == 2)) && [[ $out == *"no upfs store"* ]] || fail "fsck of an empty namespace: $rc: $out"
ok "fsck of a namespace without a store: exit 2"

# statfs (df) of a rados:// mount: the store's space, not a local disk's.
# Without a quota, the cluster's size (as `ceph df` gives it, in 4 KiB
# blocks); with a byte quota on the pool, the quota, and never more free
# than that.
start_upfs "${opts[@]}"
df_of_mount() { df -B1 --output=size,avail "$MNT" | tail -n 1; }
# A new cluster reports its size once the manager has the OSDs' first
# statistics (ceph df says 0 until then): polled, both sides.
df_shows_cluster() {
  local cluster
  read -r size avail < <(df_of_mount)
  cluster=$(timeout 30 ceph -c "$CONF" df -f json) || return 1
  raw=$(grep -o '"total_bytes":[0-9]*' <<<"$cluster" | head -n 1 | cut -d: -f2)
  [[ -n $raw ]] && ((raw > 0 && size == raw / 4096 * 4096))
}
wait_until 60 "df of the mount reporting the cluster's size (ceph df)" df_shows_cluster
((avail > 0 && avail <= size)) || fail "df of the mount says $avail bytes available of $size"
ok "df: $size bytes (the cluster's $raw), $avail available"
QUOTA=50000000
"$CLUSTER_SH" pool "$CEPH_DIR" "$POOL" --max-bytes "$QUOTA" || fail "setting a quota on $POOL"
df_shows_quota() {
  read -r size avail < <(df_of_mount)
  ((size == QUOTA / 4096 * 4096))
}
wait_until 30 "df reporting the pool's $QUOTA-byte quota" df_shows_quota
((avail <= size)) || fail "df with a quota: $avail bytes available of $size"
ok "df with a $QUOTA-byte quota on $POOL: size $size, $avail available"
stop_upfs
