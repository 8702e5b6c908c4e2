#!/usr/bin/env bash
# G5 (docs/semantics.md): the daemon's peak RSS does not grow with file
# size. One 512 MiB file is uploaded, committed and read back in full
# after a remount (reads and LevelDB's compactions touch every table
# file); the daemon's VmHWM must stay under 256 MiB (docs/performance.md, target (h)).
# Before store/leveldb_env.h, LevelDB's memory-mapped table files put
# every touched page in the RSS: this upload peaked at 362 MiB.
# The program built with tcmalloc (UPFS_MALLOC, the default) must bind
# malloc and free to it everywhere, or its memory is glibc's again: over
# RADOS, a 1 GiB cold read then peaked at 165-176 MiB instead of 80-88
# (docs/performance.md, "The allocator").
source "$(dirname "$0")/lib.sh" "$@"

MIB=${UPFS_MEMORY_TEST_MIB:-512}
LIMIT_KIB=$((256 << 10))

vmhwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$UPFS_PID/status"; }
check_peak() {
  local kib
  kib=$(vmhwm_kib)
  [[ -n $kib ]] || fail "no VmHWM for pid $UPFS_PID"
  memory_bound "$1: daemon VmHWM $((kib >> 10)) MiB, bound $((LIMIT_KIB >> 10)) MiB" "kib < LIMIT_KIB"
  ok "$1: daemon VmHWM $((kib >> 10)) MiB < $((LIMIT_KIB >> 10)) MiB"
}

if [[ ${UPFS_MALLOC:-} == tcmalloc ]]; then
  # The dynamic linker's own account of which library each reference to
  # malloc and free binds to, in the program and in every library it loads.
  # One file per process: --version runs fusermount3 too.
  LD_DEBUG=bindings LD_DEBUG_OUTPUT="$T/bindings" "$UPFS_BIN" --version >/dev/null
  grep -l -F "binding file $UPFS_BIN " "$T"/bindings.* >"$T/ours" || fail "no bindings of $UPFS_BIN logged"
  [[ $(wc -l <"$T/ours") -eq 1 ]] || fail "bindings of $UPFS_BIN in more than one process: $(cat "$T/ours")"
  grep -E "normal symbol \`(malloc|free)'" "$(cat "$T/ours")" >"$T/malloc-bindings" ||
    fail "LD_DEBUG=bindings shows no binding of malloc or free"
  if grep -v libtcmalloc_minimal "$T/malloc-bindings" >"$T/other"; then
    fail "malloc or free bound to another library than tcmalloc: $(head -3 "$T/other")"
  fi
  ok "malloc and free bind to tcmalloc ($(wc -l <"$T/malloc-bindings") bindings)"
fi

random_file "$SRC/big" $((MIB << 20))
start_upfs
# The RADOS backend and librados are loaded only for a rados:// store
# (store/rados_backend.h): they cost a mount about 10 MiB of VmHWM.
if ! on_rados "the RADOS backend is loaded there"; then
  mapped=$(awk '/librados|libceph|upfs-rados/ { print $6 }' "/proc/$UPFS_PID/maps" | sort -u)
  [[ -z $mapped ]] || fail "a mount of a directory maps the RADOS backend: $mapped"
  ok "a mount of a directory maps neither librados nor upfs-rados.so"
fi
mkdir "$MNT/sessions/mem"
cp "$SRC/big" "$MNT/sessions/mem/big"
(cd "$SRC" && sha256sum big) >"$T/manifest"
finish_session mem "$T/manifest" || fail "finish: $FINISH_ERR"
check_peak "after a $MIB MiB upload and its commit"
stop_upfs
start_upfs
cmp "$SRC/big" "$MNT/assets/mem/big" || fail "asset differs from the source"
ok "asset reads back equal"
check_peak "after reading the $MIB MiB asset back"
