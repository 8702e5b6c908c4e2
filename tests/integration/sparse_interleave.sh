#!/usr/bin/env bash
# Scenario 3 (G3, docs/semantics.md): sparse interleaving of two sessions with dd: chunks written in
# the order A0, B0, A2, B2, A1, B1 (the hash must still be over the bytes in
# file order); while chunk 1 is missing, the file has its full length and the
# gap reads as zeros; no bytes cross between sessions; both verify.
source "$(dirname "$0")/lib.sh" "$@"

SIZE=4500000
CHUNK=1700000 # chunks [0,1.7M) [1.7M,3.4M) [3.4M,4.5M): the last is short
off() { echo $(($1 * CHUNK)); }
len() { local o=$(($1 * CHUNK)); echo $((SIZE - o < CHUNK ? SIZE - o : CHUNK)); }

start_upfs
for s in A B; do
  random_file "$SRC/$s.bin" "$SIZE"
  mkdir "$MNT/sessions/$s"
done
write_chunk() { put_range "$SRC/$1.bin" "$MNT/sessions/$1/data.bin" "$(off "$2")" "$(len "$2")"; }

write_chunk A 0
write_chunk B 0
write_chunk A 2
write_chunk B 2
for s in A B; do
  f=$MNT/sessions/$s/data.bin
  [[ $(stat -c %s "$f") -eq $SIZE ]] || fail "$s: length $(stat -c %s "$f") with chunks 0 and 2, want $SIZE"
  cmp <(get_range "$f" "$(off 1)" "$(len 1)") <(head -c "$(len 1)" /dev/zero) ||
    fail "$s: the missing chunk 1 does not read as zeros"
  cmp <(get_range "$f" "$(off 2)" "$(len 2)") <(get_range "$SRC/$s.bin" "$(off 2)" "$(len 2)") ||
    fail "$s: chunk 2 reads back wrong"
done
ok "with chunk 1 missing: full length, gap reads as zeros, chunk 2 reads back"
write_chunk A 1
write_chunk B 1

for s in A B; do
  cmp "$SRC/$s.bin" "$MNT/sessions/$s/data.bin" || fail "$s: session file differs from its source"
  (cd "$SRC" && sha256sum "$s.bin" | sed "s/$s.bin\$/data.bin/") >"$T/$s.sha256"
done
ok "both session files read back equal to their sources"
finish_session A "$T/A.sha256" || fail "finish A: $FINISH_ERR"
finish_session B "$T/B.sha256" || fail "finish B: $FINISH_ERR"
for s in A B; do
  out=$(cd "$MNT/assets/$s" && sha256sum -c --strict "$T/$s.sha256") || fail "$s: sha256sum -c: $out"
  cmp "$SRC/$s.bin" "$MNT/assets/$s/data.bin" || fail "$s: asset differs from its source"
done
ok "A and B committed; sha256sum -c and cmp pass for both"
assert_daemon_alive
