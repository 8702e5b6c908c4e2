#!/usr/bin/env bash
# Scenario 5: real clients write into sessions; each session is finished and
# its asset compared with `diff -r` against the source (and, where the
# client preserves them, modes and mtimes): cp, cp -a of a tree, rsync -a of
# a tree (temp file + rename, default options; then a second rsync that
# replaces a changed file), tar -x, gio copy (GNOME Files' copy path, which
# writes with splice), and a session finished by `mv sessions/NAME assets/`.
source "$(dirname "$0")/lib.sh" "$@"
require_tools rsync tar gio diff

tree=$SRC/tree
mkdir -p "$tree/sub/deeper" "$tree/other dir"
random_file "$tree/big.bin" 3000000
random_file "$tree/sub/deeper/mid.bin" 300000
random_file "$tree/sub/one" 1
random_file "$tree/other dir/name with spaces.dat" 10000
printf 'hello\n' >"$tree/small.txt"
: >"$tree/empty"
printf '#!/bin/sh\necho hi\n' >"$tree/run.sh"
chmod 755 "$tree/run.sh"
chmod 600 "$tree/sub/one"
touch -d '2020-01-02 03:04:05' "$tree/big.bin" "$tree/sub/deeper/mid.bin"
touch -d '2021-06-07 08:09:10' "$tree/small.txt"
flat=$SRC/flat
mkdir "$flat"
cp "$tree/big.bin" "$tree/small.txt" "$flat/"
manifest_of "$tree" "$T/tree.sha256"
manifest_of "$flat" "$T/flat.sha256"
: >"$T/empty.manifest"

# meta DIR: path, size, mode and mtime (seconds) of every file.
meta() { (cd "$1" && find . -type f -exec stat -c '%n %s %a %Y' {} + | sort); }

# check NAME SOURCE_DIR [meta]: the asset equals the source.
check() {
  local asset=$MNT/assets/$1
  [[ ! -e $MNT/sessions/$1 ]] || fail "$1: the session is still there after the commit"
  diff -r "$2" "$asset" || fail "$1: diff -r $2 assets/$1 differs"
  if [[ ${3:-} == meta ]]; then
    diff <(meta "$2") <(meta "$asset") || fail "$1: sizes, modes or mtimes differ"
  fi
  local want got
  want=$(sha256sum <"$2/small.txt" | cut -d' ' -f1)
  got=$(xattr "$asset/small.txt" user.sha256)
  [[ $got == "$want" ]] || fail "$1: user.sha256 of small.txt is '$got', want '$want'"
  ok "$1: diff -r against the source is clean${3:+ (and modes, mtimes)}"
}

finish() { finish_session "$1" "$2" || fail "$1: finish failed: $FINISH_ERR"; }

start_upfs
S=$MNT/sessions

log "cp"
mkdir "$S/c-cp"
cp "$flat/big.bin" "$flat/small.txt" "$S/c-cp/"
finish c-cp "$T/flat.sha256"
check c-cp "$flat"

log "cp -a of a tree"
mkdir "$S/c-cpa"
cp -a "$tree/." "$S/c-cpa/"
finish c-cpa "$T/tree.sha256"
check c-cpa "$tree" meta

log "rsync -a of a tree, then an update that replaces a file"
mkdir "$S/c-rsync"
rsync -a "$tree/" "$S/c-rsync/"
diff -r "$tree" "$S/c-rsync" --exclude=.finish --exclude=.status ||
  fail "rsync: the session differs from the source before the finish"
tree2=$SRC/tree2
cp -a "$tree" "$tree2"
random_file "$tree2/sub/deeper/mid.bin" 250000
touch -d '2022-01-01 00:00:00' "$tree2/sub/deeper/mid.bin"
rsync -a "$tree2/" "$S/c-rsync/"
finish c-rsync "$T/empty.manifest"
check c-rsync "$tree2" meta

log "tar -x"
tar -C "$tree" -cf "$T/tree.tar" .
mkdir "$S/c-tar"
tar -C "$S/c-tar" -xf "$T/tree.tar"
finish c-tar "$T/tree.sha256"
check c-tar "$tree" meta

log "gio copy"
mkdir "$S/c-gio"
GIO_USE_VFS=local gio copy "$flat/big.bin" "$flat/small.txt" "$S/c-gio/" ||
  fail "gio copy into the session failed"
finish c-gio "$T/flat.sha256"
check c-gio "$flat"

log "finish by mv sessions/NAME assets/"
mkdir "$S/c-mv"
cp -a "$tree/." "$S/c-mv/"
mv "$S/c-mv" "$MNT/assets/" || fail "mv sessions/c-mv assets/ failed"
check c-mv "$tree" meta
assert_daemon_alive
