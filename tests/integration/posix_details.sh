#!/usr/bin/env bash
# POSIX details through the mount, each compared with a local directory
# (the test's own ext4/tmpfs directory) doing the same thing in the same
# run (docs/semantics.md, "POSIX behaviour"):
#   - setuid/setgid: a second uid (nobody) writes files of mode 04777,
#     06777, 02777 and 02767 owned by root: O_WRONLY (direct_io in upfs),
#     O_RDWR (page cache), truncate(2), open(O_TRUNC) and an mmap write;
#     root (CAP_FSETID) writes too. Every resulting mode equals the local
#     directory's, in the session and in the committed asset.
#   - ctime moves on chmod, chown, setxattr, removexattr and rename, and
#     mtime does not; a directory's mtime and ctime move on create, mkdir,
#     unlink, rmdir and rename (both directories).
#   - utimensat: an explicitly set atime (touch -a, cp -a) is kept, reads do
#     not move it, and the asset keeps it.
#   - directory link counts: 2 + subdirectories, as the local directory
#     reports, in the session and the asset; find(1) sees every directory.
source "$(dirname "$0")/lib.sh" "$@"
require_tools setpriv stat find truncate
[[ -x /usr/bin/python3 ]] || fail "no /usr/bin/python3 (Debian's, which nobody can run): run mount-scripts/deps.sh"

[[ $(id -u) == 0 ]] || { log "SKIP: needs root (to act as a second user)"; exit 77; }
id nobody >/dev/null 2>&1 || fail "no user nobody"
NOGROUP=$(id -gn nobody)
as_nobody() { setpriv --reuid=nobody --regid="$NOGROUP" --clear-groups -- "$@"; }

chmod 0755 "$T" "$SRC"
umask 022
start_upfs -o allow_other
S=$MNT/sessions
A=$MNT/assets
LOCAL=$T/local
mkdir -p "$LOCAL"
mkdir "$S/px"
chmod 0777 "$LOCAL" "$S/px"

# mmap_write FILE: writes 5 bytes through a shared mapping of FILE.
cat >"$T/mmap_write.py" <<'EOF'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 4096)
m[0:5] = b"mmap!"
m.flush()
m.close()
os.close(fd)
EOF
chmod 0644 "$T/mmap_write.py"

# ---- setuid / setgid ----
# op_on DIR NAME OP: runs write operation OP on DIR/NAME.
op_on() {
  local f=$1/$2
  case $3 in
    wronly) as_nobody dd if=/dev/zero of="$f" bs=100 count=1 conv=notrunc status=none ;;
    rdwr) as_nobody bash -c 'exec 3<>"$1"; printf rdwr >&3' _ "$f" ;;
    truncate) as_nobody truncate -s 100 "$f" ;;
    otrunc) as_nobody bash -c 'exec 3>"$1"; exec 3>&-' _ "$f" ;;
    mmap) as_nobody /usr/bin/python3 "$T/mmap_write.py" "$f" ;;
    root) dd if=/dev/zero of="$f" bs=100 count=1 conv=notrunc status=none ;;
  esac
}
declare -A want
for mode in 4777 6777 2777 2767; do
  for op in wronly rdwr truncate otrunc mmap root; do
    name=m$mode.$op
    for dir in "$LOCAL" "$S/px"; do
      head -c 4096 /dev/zero >"$dir/$name"
      chmod "$mode" "$dir/$name"
      [[ $(stat -c %a "$dir/$name") == "$mode" ]] || fail "$dir/$name: chmod $mode gave $(stat -c %a "$dir/$name")"
      op_on "$dir" "$name" "$op" || fail "$op on $dir/$name failed"
    done
    local_mode=$(stat -c %a "$LOCAL/$name")
    upfs_mode=$(stat -c %a "$S/px/$name")
    [[ $upfs_mode == "$local_mode" ]] ||
      fail "mode $mode after $op by ${op/root/root (CAP_FSETID)}: upfs has $upfs_mode, a local directory $local_mode"
    want[$name]=$local_mode
  done
done
ok "setuid/setgid after nobody's O_WRONLY, O_RDWR, truncate, O_TRUNC, mmap writes and root's write: as a local directory (${#want[@]} cases)"
[[ ${want[m4777.wronly]} == 777 ]] || fail "the local directory kept setuid on an unprivileged write: the comparison proves nothing"
log_has "cleared mode bits" || fail "the daemon logged no clearing"

# ---- ctime on metadata changes; mtime untouched ----
# t FILE FIELD: a time in ns (FIELD: X atime, Y mtime, Z ctime).
t() { stat -c "%.9$2" "$1" | tr -d .; }
P=$S/px
printf data >"$P/meta"
touch -m -d @1000000000 "$P/meta"
m0=$(t "$P/meta" Y)
c=$(t "$P/meta" Z)
step=0
for change in "chmod 0600" "chown nobody" "setfattr -n user.k -v v" "setfattr -x user.k"; do
  $change "$P/meta"
  c1=$(t "$P/meta" Z)
  ((c1 > c)) || fail "$change did not move ctime ($c -> $c1)"
  c=$c1
  step=$((step + 1))
done
mv "$P/meta" "$P/meta2"
c1=$(t "$P/meta2" Z)
((c1 > c)) || fail "rename did not move the file's ctime ($c -> $c1)"
[[ $(t "$P/meta2" Y) == "$m0" ]] || fail "a metadata change moved mtime"
ok "ctime moves on chmod, chown, setxattr, removexattr and rename; mtime stays"

# ---- directory times ----
mkdir "$P/d1" "$P/d2"
# dir_moves DESCRIPTION DIR... -- COMMAND...: COMMAND moves each DIR's
# mtime and ctime past their values before it.
dir_moves() {
  local what=$1 d
  shift
  local -a dirs=()
  while [[ $1 != -- ]]; do dirs+=("$1"); shift; done
  shift
  local -A before_c=()
  for d in "${dirs[@]}"; do
    touch -d @1000000000 "$d"
    before_c[$d]=$(t "$d" Z)
  done
  "$@" || fail "$what failed"
  for d in "${dirs[@]}"; do
    (($(t "$d" Y) > 1000000000000000000)) || fail "$what did not move the mtime of $d"
    (($(t "$d" Z) > ${before_c[$d]})) || fail "$what did not move the ctime of $d"
  done
}
dir_moves "create" "$P/d1" -- touch "$P/d1/f"
dir_moves "mkdir" "$P/d1" -- mkdir "$P/d1/sub"
dir_moves "rename between directories" "$P/d1" "$P/d2" -- mv "$P/d1/f" "$P/d2/f"
dir_moves "unlink" "$P/d2" -- rm "$P/d2/f"
dir_moves "rmdir" "$P/d1" -- rmdir "$P/d1/sub"
dir_moves "create at the session root" "$P" -- touch "$P/top"
ok "a directory's mtime and ctime move on create, mkdir, rename (both), unlink, rmdir"

# ---- access times ----
printf 'atime' >"$SRC/at"
touch -a -d @1234567890.25 "$SRC/at"
cp -a "$SRC/at" "$P/at_cp"
printf 'x' >"$P/at_touch"
touch -a -d @1111111111.5 "$P/at_touch"
cat "$P/at_cp" "$P/at_touch" >/dev/null
[[ $(t "$P/at_cp" X) == 1234567890250000000 ]] || fail "cp -a lost the atime: $(t "$P/at_cp" X)"
[[ $(t "$P/at_touch" X) == 1111111111500000000 ]] || fail "touch -a: atime is $(t "$P/at_touch" X)"
ok "an atime set by touch -a and cp -a is kept; reads do not move it"

# ---- directory link counts ----
for root in "$LOCAL/tree" "$P/tree"; do
  mkdir -p "$root/a/b/c" "$root/a/d" "$root/e"
  touch "$root/a/file" "$root/a/b/file"
  mv "$root/e" "$root/a/b/e"
done
nlinks() { (cd "$1" && find . -type d -printf '%p %n\n' | sort); }
[[ $(nlinks "$P/tree") == "$(nlinks "$LOCAL/tree")" ]] ||
  fail "link counts differ from a local directory:
$(diff <(nlinks "$LOCAL/tree") <(nlinks "$P/tree"))"
[[ $(stat -c %h "$P/tree/a") == 4 ]] || fail "tree/a has $(stat -c %h "$P/tree/a") links, expected 4"
ok "directory link counts in a session: as a local directory ($(nlinks "$P/tree" | tr '\n' ' '))"

# ---- the commit keeps all of it ----
declare -A times_before
for f in at_cp at_touch meta2; do times_before[$f]="$(t "$P/$f" X) $(t "$P/$f" Y) $(t "$P/$f" Z)"; done
tree_before=$(nlinks "$P/tree")
: >"$S/px/.finish"
wait_until 10 "px committed" test -d "$A/px"
for name in "${!want[@]}"; do
  [[ $(stat -c %a "$A/px/$name") == "${want[$name]}" ]] ||
    fail "assets/px/$name has mode $(stat -c %a "$A/px/$name"), the session had ${want[$name]}"
done
for f in at_cp at_touch meta2; do
  [[ "$(t "$A/px/$f" X) $(t "$A/px/$f" Y) $(t "$A/px/$f" Z)" == "${times_before[$f]}" ]] ||
    fail "assets/px/$f: times $(t "$A/px/$f" X) $(t "$A/px/$f" Y) $(t "$A/px/$f" Z), the session had ${times_before[$f]}"
done
[[ $(nlinks "$A/px/tree") == "$tree_before" ]] || fail "the asset's link counts differ from the session's"
(($(find "$A/px/tree" -type d | wc -l) == 6)) || fail "find sees $(find "$A/px/tree" -type d | wc -l) directories, expected 6"
[[ $(stat -c %h "$A") == 3 ]] || fail "assets/ has $(stat -c %h "$A") links with one asset, expected 3"
ok "the asset keeps the modes, atime/mtime/ctime and link counts the session had"
