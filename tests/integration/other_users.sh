#!/usr/bin/env bash
# Other users (docs/configuration.md, "Other users and expiry"): the mount
# as seen by a second and a third uid.
#   - With -o allow_other, nobody begins, writes, finishes (by .finish and
#     by mv into assets/) and reads back its own sessions; its files and
#     assets are owned by it.
#   - Against root's session nobody gets EACCES or EPERM for a write, a
#     create, a rename, an abort (rm -r, rmdir), a finish (.finish, mv into
#     assets/), a chmod, an xattr change and a read of a 0600 file; a 0644
#     file reads. Root's session is left exactly as it was and commits.
#   - Root's asset is readable by nobody per its recorded mode: 0644 reads,
#     0600 is EACCES, and an asset of a 0700 session cannot be entered.
#   - Between two unprivileged uids (nobody and uid 4242) the same holds.
#   - Without allow_other, nobody gets EACCES on the mount root.
# upfs mounts with default_permissions, so the kernel checks modes and the
# sticky bit of sessions/ against each request's uid (docs/semantics.md, "The mount").
source "$(dirname "$0")/lib.sh" "$@"
require_tools setpriv

[[ $(id -u) == 0 ]] || { log "SKIP: needs root (to act as other users)"; exit 77; }
id nobody >/dev/null 2>&1 || fail "no user nobody"
NOGROUP=$(id -gn nobody)
OTHER_UID=4242  # a uid with no passwd entry: a third, unrelated user
as_nobody() { setpriv --reuid=nobody --regid="$NOGROUP" --clear-groups -- "$@"; }
as_other() { setpriv --reuid=$OTHER_UID --regid=$OTHER_UID --clear-groups -- "$@"; }

# The other users must reach the mount point and read the test's files.
chmod 0755 "$T" "$SRC"
umask 022

# expect_denied WHAT COMMAND...: COMMAND fails with EACCES or EPERM.
expect_denied() {
  local what=$1 out rc=0
  shift
  out=$("$@" 2>&1) || rc=$?
  ((rc != 0)) || fail "$what: succeeded, expected EACCES or EPERM"
  [[ $out == *"Permission denied"* || $out == *"Operation not permitted"* ]] ||
    fail "$what: expected EACCES or EPERM, got: $out"
  ok "$what -> ${out##*: }"
}

start_upfs -o allow_other
S=$MNT/sessions
A=$MNT/assets

# ---- root's session: files 0644 and 0600 ----
random_file "$SRC/pub.bin" 100000
random_file "$SRC/secret.bin" 50000
mkdir "$S/rs"
cp "$SRC/pub.bin" "$S/rs/pub.bin"
cp "$SRC/secret.bin" "$S/rs/secret.bin"
chmod 0600 "$S/rs/secret.bin"
mkdir "$S/rs/sub"
[[ $(stat -c '%u:%g %a' "$S/rs") == "0:0 755" ]] || fail "rs: owner/mode $(stat -c '%u:%g %a' "$S/rs")"
status_before=$(sed '/^last_activity:/d; /^expires:/d' "$S/rs/.status")

# ---- nobody's own session ----
random_file "$SRC/nb.bin" 200000
chmod 0644 "$SRC"/*.bin
as_nobody mkdir "$S/nb"
as_nobody cp "$SRC/nb.bin" "$S/nb/data.bin"
as_nobody mkdir "$S/nb/dir"
as_nobody dd if="$SRC/nb.bin" of="$S/nb/dir/half.bin" bs=100000 count=1 status=none
[[ $(stat -c %u:%g "$S/nb") == "$(id -u nobody):$(id -g nobody)" ]] || fail "nb is owned by $(stat -c %u:%g "$S/nb")"
[[ $(stat -c %u "$S/nb/data.bin") == "$(id -u nobody)" ]] || fail "nb/data.bin is owned by $(stat -c %u "$S/nb/data.bin")"
grep -qx "owner: $(id -u nobody):$(id -g nobody)" "$S/nb/.status" || fail "nb/.status: $(grep owner "$S/nb/.status")"
ok "nobody began nb; its files and .status owner are nobody's"
as_nobody cmp "$SRC/nb.bin" "$S/nb/data.bin" || fail "nobody reads back wrong bytes"
(cd "$S/nb" && find . -type f ! -name '.*' -printf '%P\0' | sort -z | xargs -0 sha256sum) >"$T/nb.sha256"
chmod 0644 "$T/nb.sha256"
as_nobody dd if="$T/nb.sha256" of="$S/nb/.finish" bs=1M status=none || fail "nobody could not finish nb"
[[ -d $A/nb && ! -e $S/nb ]] || fail "nb not committed"
[[ $(stat -c %u "$A/nb/data.bin") == "$(id -u nobody)" ]] || fail "assets/nb/data.bin owned by $(stat -c %u "$A/nb/data.bin")"
(cd "$A/nb" && as_nobody sha256sum -c --quiet "$T/nb.sha256") || fail "assets/nb does not verify as nobody"
ok "nobody finished nb through .finish; assets/nb is nobody's and verifies"
as_nobody mkdir "$S/nb2"
as_nobody cp "$SRC/nb.bin" "$S/nb2/x.bin"
as_nobody mv "$S/nb2" "$A/" || fail "nobody could not commit nb2 with mv"
as_nobody cmp "$SRC/nb.bin" "$A/nb2/x.bin" || fail "assets/nb2/x.bin differs"
ok "nobody committed nb2 with mv into assets/"

# ---- nobody against root's session ----
expect_denied "nobody writes root's 0644 file" \
  as_nobody dd if=/dev/zero of="$S/rs/pub.bin" bs=1 count=1 conv=notrunc status=none
expect_denied "nobody truncates root's file" as_nobody truncate -s 0 "$S/rs/pub.bin"
expect_denied "nobody creates a file in root's session" as_nobody touch "$S/rs/new"
expect_denied "nobody makes a directory in root's session" as_nobody mkdir "$S/rs/newdir"
expect_denied "nobody renames in root's session" as_nobody mv "$S/rs/pub.bin" "$S/rs/moved.bin"
expect_denied "nobody deletes root's file" as_nobody rm -f "$S/rs/pub.bin"
expect_denied "nobody removes root's subdirectory" as_nobody rmdir "$S/rs/sub"
expect_denied "nobody aborts root's session (rm -r)" as_nobody rm -rf "$S/rs"
expect_denied "nobody aborts root's session (rmdir)" as_nobody rmdir "$S/rs"
expect_denied "nobody renames root's session" as_nobody mv "$S/rs" "$S/stolen"
expect_denied "nobody finishes root's session (.finish)" \
  as_nobody dd if=/dev/null of="$S/rs/.finish" status=none
expect_denied "nobody finishes root's session (mv into assets/)" as_nobody mv "$S/rs" "$A/"
expect_denied "nobody reads root's 0600 file" as_nobody cat "$S/rs/secret.bin"
expect_denied "nobody chmods root's session" as_nobody chmod 0777 "$S/rs"
expect_denied "nobody chmods root's file" as_nobody chmod 0666 "$S/rs/pub.bin"
expect_denied "nobody makes root's session write-once" \
  as_nobody setfattr -n user.upfs.write_once -v 1 "$S/rs"
expect_denied "nobody sets an xattr on root's file" as_nobody setfattr -n user.x -v 1 "$S/rs/pub.bin"
as_nobody cmp "$SRC/pub.bin" "$S/rs/pub.bin" || fail "nobody cannot read root's 0644 file"
ok "nobody reads root's 0644 file"
# Root's session is exactly as it was, and commits.
[[ $(sed '/^last_activity:/d; /^expires:/d' "$S/rs/.status") == "$status_before" ]] ||
  fail "rs/.status changed: $(diff <(echo "$status_before") <(sed '/^last_activity:/d; /^expires:/d' "$S/rs/.status"))"
[[ $(ls -A "$S/rs" | sort | tr '\n' ' ') == ".finish .status pub.bin secret.bin sub " ]] ||
  fail "rs lists: $(ls -A "$S/rs")"
ok "root's session is unchanged"
rmdir "$S/rs/sub"
manifest_of "$SRC" "$T/all.sha256"
grep -E '  (pub|secret)\.bin$' "$T/all.sha256" >"$T/rs.sha256"
chmod 0644 "$T/rs.sha256"
finish_session rs "$T/rs.sha256" || fail "root could not finish rs: $FINISH_ERR"

# ---- root's asset, per its recorded mode ----
[[ $(stat -c %a "$A/rs/pub.bin") == 644 && $(stat -c %a "$A/rs/secret.bin") == 600 ]] ||
  fail "asset modes: $(stat -c '%n %a' "$A/rs"/*)"
as_nobody cmp "$SRC/pub.bin" "$A/rs/pub.bin" || fail "nobody cannot read root's 0644 asset"
ok "nobody reads root's 0644 asset"
expect_denied "nobody reads root's 0600 asset" as_nobody cat "$A/rs/secret.bin"
cmp "$SRC/secret.bin" "$A/rs/secret.bin" || fail "root cannot read its own 0600 asset"
mkdir -m 0700 "$S/private"
cp "$SRC/pub.bin" "$S/private/p.bin"
mv "$S/private" "$A/"
[[ $(stat -c %a "$A/private") == 700 ]] || fail "assets/private has mode $(stat -c %a "$A/private")"
expect_denied "nobody enters root's 0700 asset" as_nobody cat "$A/private/p.bin"
expect_denied "nobody lists root's 0700 asset" as_nobody ls "$A/private"
expect_denied "nobody deletes root's asset" as_nobody rm -rf "$A/rs"

# ---- two unprivileged users: uid 4242 against nobody's session ----
as_nobody mkdir "$S/nb3"
as_nobody cp "$SRC/nb.bin" "$S/nb3/f.bin"
as_nobody cp "$SRC/secret.bin" "$S/nb3/s.bin"
as_nobody chmod 0600 "$S/nb3/s.bin"
expect_denied "uid $OTHER_UID writes nobody's file" \
  as_other dd if=/dev/zero of="$S/nb3/f.bin" bs=1 count=1 conv=notrunc status=none
expect_denied "uid $OTHER_UID renames in nobody's session" as_other mv "$S/nb3/f.bin" "$S/nb3/g.bin"
expect_denied "uid $OTHER_UID aborts nobody's session" as_other rmdir "$S/nb3"
expect_denied "uid $OTHER_UID finishes nobody's session" as_other dd if=/dev/null of="$S/nb3/.finish" status=none
expect_denied "uid $OTHER_UID commits nobody's session with mv" as_other mv "$S/nb3" "$A/"
expect_denied "uid $OTHER_UID reads nobody's 0600 file" as_other cat "$S/nb3/s.bin"
as_other mkdir "$S/o1"
as_other cp "$SRC/pub.bin" "$S/o1/"
as_other mv "$S/o1" "$A/" || fail "uid $OTHER_UID could not commit its own session"
[[ $(stat -c %u "$A/o1/pub.bin") == "$OTHER_UID" ]] || fail "assets/o1 not owned by $OTHER_UID"
ok "uid $OTHER_UID begins and commits its own session"
# Root, as on a local filesystem, is not bound by modes.
cmp "$SRC/secret.bin" "$S/nb3/s.bin" || fail "root cannot read nobody's 0600 file"
as_nobody mv "$S/nb3" "$A/" || fail "nobody could not commit nb3"
ok "nobody's session survived the other uid's attempts and commits"
assert_daemon_alive
stop_upfs

# ---- without allow_other: other users see nothing ----
start_upfs
expect_denied "nobody stats the mount root without allow_other" as_nobody stat "$MNT"
expect_denied "nobody lists sessions/ without allow_other" as_nobody ls "$MNT/sessions"
expect_denied "nobody reads an asset without allow_other" as_nobody cat "$A/rs/pub.bin"
cmp "$SRC/pub.bin" "$A/rs/pub.bin" || fail "root cannot read its asset after the remount"
ok "root, the mounting user, still reads its asset"
assert_daemon_alive
