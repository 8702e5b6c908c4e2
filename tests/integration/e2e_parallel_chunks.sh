#!/usr/bin/env bash
# Scenario 1 (G3, docs/semantics.md): the original backend's end-to-end upload, which failed there
# when its lanes ran in parallel. In one session, lane A uploads a 20.8 MB
# original as 1.7 MB chunks (13 chunks, the last one short), each chunk a
# concurrent background `dd seek=... conv=notrunc`, while lane B writes a
# 200 KB display, a 50 KB thumb and a 1 KB placeholder. One manifest of all
# four; close(.finish) returns 0; assets/NAME shows all four and
# `sha256sum -c` passes there. Then the same with four sessions at once.
source "$(dirname "$0")/lib.sh" "$@"

ORIGINAL_BYTES=20800000
CHUNK_BYTES=1700000
FILES=(display original placeholder thumb)

make_sources() {
  local dir=$SRC/$1
  mkdir -p "$dir"
  random_file "$dir/original" "$ORIGINAL_BYTES"
  random_file "$dir/display" 200000
  random_file "$dir/thumb" 50000
  random_file "$dir/placeholder" 1000
  (cd "$dir" && sha256sum original display thumb placeholder) >"$T/$1.sha256"
}

# upload NAME: both lanes at once, then the finish.
upload() {
  local name=$1 src=$SRC/$1 dst=$MNT/sessions/$1
  mkdir "$dst"
  local pids=() off len chunks=0
  for ((off = 0; off < ORIGINAL_BYTES; off += CHUNK_BYTES)); do
    len=$((ORIGINAL_BYTES - off < CHUNK_BYTES ? ORIGINAL_BYTES - off : CHUNK_BYTES))
    put_range "$src/original" "$dst/original" "$off" "$len" &
    pids+=($!)
    chunks=$((chunks + 1))
  done
  ((chunks == 13)) || fail "expected 13 chunks, made $chunks"
  (cp "$src/display" "$dst/display" && cp "$src/thumb" "$dst/thumb" &&
     cp "$src/placeholder" "$dst/placeholder") &
  pids+=($!)
  wait_jobs 180 "$name: lanes A and B" "${pids[@]}"
  [[ $(stat -c %s "$dst/original") -eq $ORIGINAL_BYTES ]] ||
    fail "$name: session file original is $(stat -c %s "$dst/original") bytes, want $ORIGINAL_BYTES"
  finish_session "$name" "$T/$name.sha256" ||
    fail "$name: close(.finish) failed: $FINISH_ERR; .status:
$(cat "$dst/.status" 2>&1)"
  log "$name: close(.finish) returned 0"
}

verify() {
  local name=$1 asset=$MNT/assets/$1
  [[ ! -e $MNT/sessions/$name ]] || fail "$name: session directory still there after the commit"
  local listing
  listing=$(ls "$asset" | tr '\n' ' ')
  [[ $listing == "${FILES[*]} " ]] || fail "$name: ls assets/$name shows '$listing', want '${FILES[*]}'"
  local out
  out=$(cd "$asset" && sha256sum -c --strict "$T/$name.sha256") ||
    fail "$name: sha256sum -c failed in assets/$name: $out"
  [[ $(grep -c ': OK$' <<<"$out") -eq 4 ]] || fail "$name: sha256sum -c: $out"
  [[ $(stat -c %s "$asset/original") -eq $ORIGINAL_BYTES ]] || fail "$name: asset original has the wrong length"
  local f want got
  for f in "${FILES[@]}"; do
    cmp "$SRC/$name/$f" "$asset/$f" || fail "$name: assets/$name/$f differs from the source"
    want=$(awk -v f="$f" '$2 == f {print $1}' "$T/$name.sha256")
    got=$(xattr "$asset/$f" user.sha256)
    [[ $got == "$want" ]] || fail "$name: user.sha256 of $f is '$got', want '$want'"
  done
  ok "$name: ls shows ${FILES[*]}; sha256sum -c, cmp and user.sha256 agree"
}

start_upfs

log "one session, lanes A and B in parallel"
make_sources single
upload single
verify single

log "four sessions at once"
names=(p1 p2 p3 p4)
for n in "${names[@]}"; do make_sources "$n"; done
pids=()
for n in "${names[@]}"; do
  bg upload "$n"
  pids+=("$LAST_BG")
done
wait_jobs 240 "four parallel sessions" "${pids[@]}"
for n in "${names[@]}"; do verify "$n"; done
[[ -z $(ls -A "$MNT/sessions") ]] || fail "sessions/ not empty: $(ls -A "$MNT/sessions")"
assert_daemon_alive
