#!/usr/bin/env bash
# tests/integration/hooks.sh UPFS_BINARY (ctest integration.hooks and
# rados.integration.hooks): the commit hooks through a real mount
# (docs/configuration.md, "Commit hooks").
#   pre_commit   reads the session through the mount while it runs, checks
#                the verified manifest with sha256sum -c, refuses a session
#                holding a test "virus": close(.finish) and mv into assets/
#                fail with EPERM, .status shows its first line of stderr,
#                nothing is committed; accepted once the file is removed
#   post_commit  fails while its receiver is "down" (retried, logged);
#                kill -9 of the daemon; after the restart every commit is
#                delivered, with the asset readable through the mount, and
#                not again after that
#   a hostile session name reaches both programs as one exact string
source "$(dirname "$0")/lib.sh" "$@"

HOOKS=$T/hooks
mkdir -p "$HOOKS"
PRE_LOG=$T/pre.log
POST_LOG=$T/post.log
UP=$T/post-up

# The programs get a fixed environment, so their own paths are written in.
cat >"$HOOKS/pre-commit" <<EOF
#!/bin/sh
printf 'session=%s files=%s bytes=%s\n' "\$UPFS_SESSION" "\$UPFS_FILES" "\$UPFS_BYTES" >>'$PRE_LOG'
cd "\$UPFS_SESSION_DIR" || { echo "cannot enter \$UPFS_SESSION_DIR" >&2; exit 2; }
sha256sum -c --quiet "\$UPFS_MANIFEST" >&2 || { echo "the session does not match its manifest" >&2; exit 2; }
while read -r sum path; do
  if grep -q EICAR-TEST-SIGNATURE "\$path"; then echo "infected: \$path" >&2; exit 1; fi
done <"\$UPFS_MANIFEST"
exit 0
EOF
cat >"$HOOKS/post-commit" <<EOF
#!/bin/sh
if [ ! -e '$UP' ]; then
  printf 'down %s\n' "\$UPFS_ASSET" >>'$POST_LOG'
  echo "receiver down" >&2
  exit 1
fi
n=\$(find "\$UPFS_ASSET_DIR" -type f | wc -l)
printf 'ok %s files=%s/%s\n' "\$UPFS_ASSET" "\$n" "\$UPFS_FILES" >>'$POST_LOG'
EOF
chmod 755 "$HOOKS/pre-commit" "$HOOKS/post-commit"
HOOK_OPTS=(-o pre_commit="$HOOKS/pre-commit" -o post_commit="$HOOKS/post-commit" -o hook_timeout=60)

# upload NAME: a session NAME with two files (one in a subdirectory),
# finished with their manifest; MANIFEST is left in $SRC/NAME.manifest.
upload_files() {
  local name=$1
  mkdir -p "$SRC/$name/sub"
  random_file "$SRC/$name/one" 3000000
  random_file "$SRC/$name/sub/two" 70000
  mkdir "$MNT/sessions/$name"
  cp -r "$SRC/$name/." "$MNT/sessions/$name/"
  manifest_of "$SRC/$name" "$SRC/$name.manifest"
}

start_upfs "${HOOK_OPTS[@]}"

# ---- pre_commit ----
upload_files clean
finish_session clean "$SRC/clean.manifest" || fail "finishing clean: $FINISH_ERR"
cmp "$SRC/clean/one" "$MNT/assets/clean/one" || fail "assets/clean/one differs"
grep -Fxq "session=clean files=2 bytes=3070000" "$PRE_LOG" || fail "pre_commit did not see clean: $(cat "$PRE_LOG")"
ok "pre_commit read the session through the mount and accepted it"

upload_files dirty
{ head -c 1000 /dev/urandom; echo EICAR-TEST-SIGNATURE; } >"$SRC/dirty/sub/bad"
cp "$SRC/dirty/sub/bad" "$MNT/sessions/dirty/sub/bad"
manifest_of "$SRC/dirty" "$SRC/dirty.manifest"
expect_finish_error dirty "$SRC/dirty.manifest" "Operation not permitted"
[[ ! -e $MNT/assets/dirty ]] || fail "a refused session was committed"
grep -q '^state: open$' "$MNT/sessions/dirty/.status" || fail ".status: $(cat "$MNT/sessions/dirty/.status")"
grep -q '^last_error: .*infected: sub/bad$' "$MNT/sessions/dirty/.status" ||
  fail ".status does not show the program's message: $(cat "$MNT/sessions/dirty/.status")"
log_has "pre_commit of session 'dirty' stderr: infected: sub/bad" || fail "the program's stderr is not in the log"
expect_fail "Operation not permitted" mv "$MNT/sessions/dirty" "$MNT/assets/dirty"
[[ -d $MNT/sessions/dirty && ! -e $MNT/assets/dirty ]] || fail "a refused mv changed the session"
ok "pre_commit refused: EPERM for close(.finish) and mv, the session open, .status names the file"
rm "$MNT/sessions/dirty/sub/bad" "$SRC/dirty/sub/bad"
manifest_of "$SRC/dirty" "$SRC/dirty.manifest"
finish_session dirty "$SRC/dirty.manifest" || fail "finishing dirty after the fix: $FINISH_ERR"
cmp "$SRC/dirty/sub/two" "$MNT/assets/dirty/sub/two" || fail "assets/dirty/sub/two differs"
ok "the same session commits once the program accepts it"

# A name a shell would split and run: one exact string for both programs.
HOSTILE='a b; touch pwned $(touch pwned2) `touch pwned3` "'"'"
mkdir "$MNT/sessions/$HOSTILE"
printf 'payload\n' >"$MNT/sessions/$HOSTILE/f"
finish_session "$HOSTILE" /dev/null || fail "finishing the hostile name: $FINISH_ERR"
grep -Fxq "session=$HOSTILE files=1 bytes=8" "$PRE_LOG" || fail "pre_commit got another name: $(cat "$PRE_LOG")"
for stray in /pwned /pwned2 /pwned3 "$T/pwned" "$HOOKS/pwned"; do
  [[ ! -e $stray ]] || fail "a session name was run by a shell: $stray exists"
done
ok "pre_commit got the hostile name whole, and nothing ran it"

# ---- post_commit: at least once, across kill -9 ----
for a in clean dirty "$HOSTILE"; do
  wait_until 30 "a failed post_commit attempt for $a" grep -Fxq "down $a" "$POST_LOG"
done
log_has "post_commit of asset 'clean'" "attempt 1 failed" || fail "the failed attempt is not in the log"
kill_upfs
ok "post_commit failed for every commit; daemon killed (-9)"
touch "$UP"
start_upfs "${HOOK_OPTS[@]}"
for a in clean dirty "$HOSTILE"; do
  files=2
  [[ $a == "$HOSTILE" ]] && files=1
  wait_until 60 "post_commit delivered for $a after the restart" grep -Fxq "ok $a files=$files/$files" "$POST_LOG"
done
ok "after kill -9 and a restart, every commit was delivered, its asset readable through the mount"

# Delivered ones are not delivered again, on this mount or the next.
upload_files after
finish_session after "$SRC/after.manifest" || fail "finishing after: $FINISH_ERR"
wait_until 30 "post_commit for after" grep -Fxq "ok after files=2/2" "$POST_LOG"
stop_upfs
start_upfs "${HOOK_OPTS[@]}"
upload_files last
finish_session last "$SRC/last.manifest" || fail "finishing last: $FINISH_ERR"
wait_until 30 "post_commit for last" grep -Fxq "ok last files=2/2" "$POST_LOG"
for a in clean dirty after; do
  n=$(grep -c "^ok $a " "$POST_LOG" || true)
  ((n == 1)) || fail "post_commit for $a succeeded $n times: $(cat "$POST_LOG")"
done
stop_upfs
out=$("$UPFS_BIN" fsck "$STORE" 2>&1) || fail "upfs fsck after the hooks: $out"
ok "each success delivered once; upfs fsck clean"
