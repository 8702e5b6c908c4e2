#!/usr/bin/env bash
# Scenario 2: 100 x (mkdir, write, finish, then at once cmp the asset with
# the source). Every 5th session commits with an empty manifest (the hashes
# upfs computed); its user.sha256 must still be right.
source "$(dirname "$0")/lib.sh" "$@"

start_upfs
empty=$T/empty
: >"$empty"
for i in $(seq 1 100); do
  name=s$i
  src=$SRC/$name.bin
  random_file "$src" $(((i * 7919) % 262144 + i))
  mkdir "$MNT/sessions/$name"
  cp "$src" "$MNT/sessions/$name/data.bin"
  want=$(sha256sum <"$src" | cut -d' ' -f1)
  if ((i % 5 == 0)); then
    finish_session "$name" "$empty" || fail "$name: empty-manifest finish failed: $FINISH_ERR"
  else
    printf '%s  data.bin\n' "$want" >"$T/manifest"
    finish_session "$name" "$T/manifest" || fail "$name: finish failed: $FINISH_ERR"
  fi
  cmp "$src" "$MNT/assets/$name/data.bin" || fail "$name: asset differs right after close(.finish)"
  got=$(xattr "$MNT/assets/$name/data.bin" user.sha256)
  [[ $got == "$want" ]] || fail "$name: user.sha256 '$got', want '$want'"
done
ok "100 sessions: each asset matched its source right after its finish"
count=$(ls "$MNT/assets" | wc -l)
((count == 100)) || fail "assets/ has $count entries, want 100"
[[ -z $(ls -A "$MNT/sessions") ]] || fail "sessions/ not empty: $(ls -A "$MNT/sessions" | head)"
ok "assets/ lists 100 sessions; sessions/ is empty"
assert_daemon_alive
