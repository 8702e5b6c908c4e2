#!/usr/bin/env bash
# The bad-input catalogue (G4; docs/semantics.md, "Bad input, case by
# case"): one line per case, each the exact errno the
# system call returns (read by bad_input_try.py from the syscall itself,
# not from a tool's message), and after every case the daemon is alive and
# the mount answers. Meanwhile a control session is written to without
# pause by a background job; at the end it must still finish, and its
# asset must match byte for byte: no bad input touched another session.
# Cases that are not errors (names with odd but valid bytes, O_DIRECT,
# mmap writes, a session with no files) must round-trip into assets/.
# The choices are documented in docs/semantics.md, "Errors" and "Bad input,
# case by case".
source "$(dirname "$0")/lib.sh" "$@"
require_tools python3
TRY=$(readlink -f "$(dirname "$0")/bad_input_try.py")
# Debian's interpreter, isolated (-I -S: no user site, no site-packages):
# a shim earlier on PATH (pyenv) costs more per case than the case itself.
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)

start_upfs
S=$MNT/sessions
A=$MNT/assets
export MNT S A T

# ---- the control session, written to throughout ----
CONTROL_CHUNK=65536
CONTROL_CHUNKS=64
random_file "$SRC/control.bin" $((CONTROL_CHUNK * CONTROL_CHUNKS))
mkdir "$S/control"
# Writes the chunks in a scrambled order, then again (identical rewrites),
# until $T/stop exists.
control_writer() {
  local i=0 k
  while [[ ! -e $T/stop ]]; do
    k=$(((i * 37) % CONTROL_CHUNKS))
    put_range "$SRC/control.bin" "$S/control/data.bin" $((k * CONTROL_CHUNK)) $CONTROL_CHUNK
    i=$((i + 1))
  done
}
bg control_writer
CONTROL_PID=$LAST_BG

# ---- the catalogue ----
CASES=0
# check DESCRIPTION EXPECTED PYTHON: runs PYTHON, which must end in EXPECTED
# (OK or an errno name); then the daemon must be alive and the control
# writer still running.
check() {
  local what=$1 want=$2 got
  got=$("$PY" -I -S "$TRY" "$3" 2>"$T/try.err") ||
    fail "$what: the case itself broke: $(cat "$T/try.err")"
  [[ $got == "$want" ]] || fail "$what: expected $want, got $got ($(cat "$T/try.err"))"
  assert_daemon_alive
  alive "$CONTROL_PID" || fail "$what: the control writer died"
  CASES=$((CASES + 1))
  ok "$what: $got"
}

# Fixtures: session bad (f, sub/g), other (o), the asset done (x), and m
# (a, b, sub/c: bad_input_try.py's M_FILES) for manifests.
mkdir -p "$S/bad/sub" "$S/other" "$S/done" "$S/m/sub"
head -c 1000 /dev/urandom >"$S/bad/f"
echo g >"$S/bad/sub/g"
echo o >"$S/other/o"
echo x >"$S/done/x"
finish_session done /dev/null || fail "committing done: $FINISH_ERR"
printf 'alpha\n' >"$S/m/a"
printf 'bravo\n' >"$S/m/b"
printf 'charlie\n' >"$S/m/sub/c"

log "-- manifests (session m stays open after each)"
check "manifest: a non-hex digit" EINVAL 'finish("m", good().replace(H["a"], "g" + H["a"][1:]))'
check "manifest: 63 hex digits" EINVAL 'finish("m", good().replace(H["a"], H["a"][:63]))'
check "manifest: 65 hex digits" EINVAL 'finish("m", good().replace(H["a"], H["a"] + "0"))'
check "manifest: CRLF line endings" EINVAL 'finish("m", good().replace("\n", "\r\n"))'
check "manifest: one space between hash and path" EINVAL 'finish("m", good().replace(H["a"] + "  ", H["a"] + " "))'
check "manifest: a tab between hash and path" EINVAL 'finish("m", good().replace(H["a"] + "  ", H["a"] + "\t"))'
check "manifest: a duplicate line" EINVAL 'finish("m", good() + line("a"))'
check "manifest: a path listed twice as a and ./a" EINVAL 'finish("m", good() + line("./a", H["a"]))'
check "manifest: a path with .." EINVAL 'finish("m", good() + line("sub/../a", H["a"]))'
check "manifest: an absolute path" EINVAL 'finish("m", good().replace("  a\n", "  /a\n"))'
check "manifest: an unlisted file" EINVAL 'finish("m", line("a") + line("sub/c"))'
check "manifest: a path not in the session" EINVAL 'finish("m", good() + line("nothere"))'
check "manifest: naming a directory" EINVAL 'finish("m", good() + line("sub"))'
check "manifest: an empty line" EINVAL 'finish("m", good() + "\n")'
check "manifest: a NUL byte in a path" EINVAL 'finish("m", good() + line("a\0x", H["a"]))'
check "manifest: a line that is no manifest line" EINVAL 'finish("m", "hello world\n")'
check "manifest: a wrong hash" EBADMSG 'finish("m", good().replace(H["b"], H["a"]))'
check ".finish: a write leaving a hole" EINVAL '
fd = os.open(S + "/m/.finish", os.O_WRONLY)
try:
    os.pwrite(fd, good().encode(), 100)
finally:
    try:
        os.close(fd)
    except OSError as e:
        must(e.errno == errno.EINVAL, "close after the refused write: EINVAL")
    must(os.path.isdir(S + "/m") and not os.path.exists(A + "/m"), "m neither committed nor gone")'
check ".finish: a write past 256 MiB" EFBIG '
fd = os.open(S + "/m/.finish", os.O_WRONLY)
try:
    os.pwrite(fd, b"x", 256 << 20)
finally:
    try:
        os.close(fd)
    except OSError as e:
        must(e.errno == errno.EFBIG, "close after the refused write: EFBIG")
    must(os.path.isdir(S + "/m"), "m still open")'
check "manifest: still right after all of that" OK 'finish("m", good()); must(read(A + "/m/sub/c") == b"charlie\n")'

log "-- a manifest of 1 M lines for a session of one file"
mkdir "$S/huge"
printf 'x' >"$S/huge/f"
hx=$(printf 'x' | sha256sum | cut -d' ' -f1)
awk -v line="$hx  f" 'BEGIN { for (i = 0; i < 1000000; i++) print line }' >"$T/huge.manifest"
huge_bytes=$(stat -c %s "$T/huge.manifest")
hwm() { awk '/^VmHWM:/ {print $2 * 1024}' "/proc/$UPFS_PID/status"; }
hwm_before=$(hwm)
started=$SECONDS
check "manifest: 1 M lines, one file" EINVAL "finish('huge', open('$T/huge.manifest', 'rb').read())"
hwm_after=$(hwm)
grown=$((hwm_after - hwm_before))
log "1 M lines ($huge_bytes bytes) refused in $((SECONDS - started)) s; daemon peak RSS grew by $((grown >> 20)) MiB (from $((hwm_before >> 20)) MiB)"
# The text is held until close (the documented 256 MiB cap); parsing it
# must not add ~150 bytes per line on top (1 M lines: ~150 MiB).
memory_bound "peak RSS grew by $grown bytes for a $huge_bytes-byte manifest" "grown < 3 * huge_bytes"
wait_until 5 "the log line of the 1 M-line refusal" log_has "'huge'" "line 2" "second time"
ok "the log names session huge, line 2 and why"
rm -f "$T/huge.manifest"
check "manifest: the right one still commits huge" OK "finish('huge', '$hx  f\n')"

log "-- names"
check "a 255-byte name" OK 'write(S + "/bad/" + "n" * 255)'
check "a 256-byte name: create" ENAMETOOLONG 'write(S + "/bad/" + "n" * 256)'
check "a 256-byte name: mkdir" ENAMETOOLONG 'os.mkdir(S + "/bad/" + "n" * 256)'
check "a 256-byte name: stat" ENAMETOOLONG 'os.stat(S + "/bad/" + "n" * 256)'
check "a 256-byte name: rename to it" ENAMETOOLONG 'os.rename(S + "/bad/f", S + "/bad/" + "n" * 256)'
check "a 256-byte session name" ENAMETOOLONG 'os.mkdir(S + "/" + "s" * 256)'
check "mkdir sessions/.finish" EINVAL 'os.mkdir(S + "/.finish")'
check "mkdir sessions/.status" EINVAL 'os.mkdir(S + "/.status")'
check "rename a session to .finish" EINVAL 'os.rename(S + "/other", S + "/.finish")'
check ".finish in a subdirectory" EINVAL 'write(S + "/bad/sub/.finish", good().encode())'
check ".status in a subdirectory" EINVAL 'os.mkdir(S + "/bad/sub/.status")'
check "rename a file to sub/.finish" EINVAL 'os.rename(S + "/bad/f", S + "/bad/sub/.finish")'
check "create .finish at the session root (O_EXCL)" EEXIST 'write(S + "/bad/.finish", flags=os.O_EXCL)'
check "rename a file onto .status" EPERM 'os.rename(S + "/bad/f", S + "/bad/.status")'
check "a name with a / (via a missing directory)" ENOENT 'write(S + "/bad/nodir/f")'

log "-- offsets and sizes"
check "write at 2^62" EFBIG 'write(S + "/bad/big", off=2**62)'
# The kernel splits a write at page boundaries: the byte below 2^62 is
# stored, the rest refused, and write(2) returns the short count.
check "write across 2^62: a short write" OK 'must(write(S + "/bad/edge", b"xy", off=2**62 - 1) == 1, "1 byte written")'
check "write at 2^63 - 2" EFBIG 'write(S + "/bad/big", off=2**63 - 2)'
check "write across 2^63 (kernel)" EINVAL 'write(S + "/bad/big", b"xy", off=2**63 - 1)'
check "write at a negative offset (kernel)" EINVAL 'write(S + "/bad/big", off=-1)'
check "the file is still empty" OK 'must(os.stat(S + "/bad/big").st_size == 0)'
check "truncate to 2^62 + 1" EFBIG 'os.truncate(S + "/bad/big", 2**62 + 1)'
check "truncate to 2^63 - 1" EFBIG 'os.truncate(S + "/bad/big", 2**63 - 1)'
check "truncate to -1 (kernel)" EINVAL 'os.truncate(S + "/bad/big", -1)'
check "truncate to 2^62 (the largest file)" OK 'os.truncate(S + "/bad/big", 2**62); must(os.stat(S + "/bad/big").st_size == 2**62)'
check "fallocate" EOPNOTSUPP 'fallocate(S + "/bad/f", 4096)'

log "-- .finish and .status"
check "write into .status" EROFS 'write(S + "/bad/.status")'
check "open .status O_RDWR" EROFS 'os.open(S + "/bad/.status", os.O_RDWR)'
check "truncate .status" EROFS 'os.truncate(S + "/bad/.status", 0)'
check "chmod .status" EROFS 'os.chmod(S + "/bad/.status", 0o666)'
check "read .finish" EACCES 'os.open(S + "/bad/.finish", os.O_RDONLY)'
check "chmod .finish" EPERM 'os.chmod(S + "/bad/.finish", 0o644)'
check "chown .finish" EPERM 'os.chown(S + "/bad/.finish", 1, 1)'
check "truncate .finish to 5" EINVAL 'os.truncate(S + "/bad/.finish", 5)'
check "touch .finish (times only)" OK 'os.utime(S + "/bad/.finish")'
check "unlink .finish (a no-op)" OK 'os.unlink(S + "/bad/.finish"); must(os.path.exists(S + "/bad/.finish"))'
check "setxattr on .finish" EPERM 'os.setxattr(S + "/bad/.finish", "user.x", b"1")'
check "setxattr on .status" EPERM 'os.setxattr(S + "/bad/.status", "user.x", b"1")'
mkdir "$S/twice"
echo t >"$S/twice/t"
check ".finish written twice: the second close" ESTALE '
m = (hashlib.sha256(b"t\n").hexdigest() + "  t\n").encode()
fd1 = os.open(S + "/twice/.finish", os.O_WRONLY)
fd2 = os.open(S + "/twice/.finish", os.O_WRONLY)
os.write(fd1, m)
os.write(fd2, m)
os.close(fd1)
must(os.path.isdir(A + "/twice"), "the first close committed")
os.close(fd2)'
check ".finish of a committed session" ENOENT 'finish("twice", "")'

log "-- after commit or abort"
mkdir "$S/held" "$S/gone"
echo h >"$S/held/h"
echo g >"$S/gone/g"
check "write through a descriptor held across the commit" ESTALE '
fd = os.open(S + "/held/h", os.O_WRONLY)
finish("held", "")
must(read(A + "/held/h") == b"h\n", "held committed")
os.pwrite(fd, b"late", 0)'
check "the asset kept its bytes" OK 'must(read(A + "/held/h") == b"h\n")'
check "open the committed session's file by its old path" ENOENT 'os.open(S + "/held/h", os.O_WRONLY)'
check "write through a descriptor held across the abort" ESTALE '
import shutil
fd = os.open(S + "/gone/g", os.O_WRONLY)
shutil.rmtree(S + "/gone")
must(not os.path.exists(S + "/gone"), "gone aborted")
os.pwrite(fd, b"late", 0)'
check "create in an aborted session" ENOENT 'write(S + "/gone/new")'

log "-- assets/ and moves"
check "write into assets/" EROFS 'write(A + "/done/x")'
check "create in assets/" EROFS 'write(A + "/done/new")'
check "truncate in assets/" EROFS 'os.truncate(A + "/done/x", 0)'
check "mkdir in assets/" EROFS 'os.mkdir(A + "/newasset")'
check "unlink in assets/" EROFS 'os.unlink(A + "/done/x")'
check "rmdir of no asset" ENOENT 'os.rmdir(A + "/nosuch")'  # an asset's rmdir removes it: asset_removal.sh
check "chmod in assets/" EROFS 'os.chmod(A + "/done/x", 0o600)'
check "utime in assets/" EROFS 'os.utime(A + "/done/x")'
check "setxattr in assets/" EROFS 'os.setxattr(A + "/done/x", "user.x", b"1")'
check "removexattr user.sha256 in assets/" EROFS 'os.removexattr(A + "/done/x", "user.sha256")'
check "rename a file into an asset" EROFS 'os.rename(S + "/bad/f", A + "/done/f")'
check "rename a file into assets/" EROFS 'os.rename(S + "/bad/f", A + "/f")'
check "rename an asset back to sessions/" EROFS 'os.rename(A + "/done", S + "/done")'
check "rename a file across sessions" EXDEV 'os.rename(S + "/bad/f", S + "/other/f")'
check "rename a file out to sessions/" EPERM 'os.rename(S + "/bad/f", S + "/f")'
check "commit a session under another name" EINVAL 'os.rename(S + "/other", A + "/renamed")'
check "hard link" EPERM 'os.link(S + "/bad/f", S + "/bad/f2")'
check "symlink" EPERM 'os.symlink("f", S + "/bad/l")'
check "mkfifo" EPERM 'os.mkfifo(S + "/bad/fifo")'
check "mknod of a device" EPERM 'os.mknod(S + "/bad/dev", 0o600 | 0o020000, os.makedev(1, 3))'
check "a file directly in sessions/" EPERM 'write(S + "/file")'
check "a file at the mount root" EPERM 'write(MNT + "/file")'
check "mkdir at the mount root" EPERM 'os.mkdir(MNT + "/dir")'
check "open a directory for writing (kernel)" EISDIR 'os.open(S + "/bad/sub", os.O_WRONLY)'
check "rmdir of a session with files" ENOTEMPTY 'os.rmdir(S + "/bad")'
check "mkdir of an open session's name" EEXIST 'os.mkdir(S + "/bad")'
check "mkdir of a committed asset's name" EEXIST 'os.mkdir(S + "/done")'
check "rmdir of no session" ENOENT 'os.rmdir(S + "/nosuch")'

log "-- extended attributes"
check "a trusted.* xattr" EOPNOTSUPP 'os.setxattr(S + "/bad/f", "trusted.x", b"1")'
check "user.upfs.write_once = 2" EINVAL 'os.setxattr(S + "/bad", "user.upfs.write_once", b"2")'
check "remove user.upfs.write_once" EPERM 'os.removexattr(S + "/bad", "user.upfs.write_once")'
check "a 64 KiB xattr value" OK 'os.setxattr(S + "/bad/f", "user.big", b"v" * 65536); must(len(os.getxattr(S + "/bad/f", "user.big")) == 65536)'
check "a 64 KiB + 1 xattr value (kernel)" E2BIG 'os.setxattr(S + "/bad/f", "user.big", b"v" * 65537)'
check "a 256-byte xattr name (kernel)" ERANGE 'os.setxattr(S + "/bad/f", "user." + "n" * 251, b"1")'
check "XATTR_CREATE of a set xattr" EEXIST 'os.setxattr(S + "/bad/f", "user.big", b"1", os.XATTR_CREATE)'
check "XATTR_REPLACE of an unset xattr" ENODATA 'os.setxattr(S + "/bad/f", "user.nope", b"1", os.XATTR_REPLACE)'
check "getxattr of an unset xattr" ENODATA 'os.getxattr(S + "/bad/f", "user.nope")'
check "setxattr on sessions/" EPERM 'os.setxattr(S, "user.x", b"1")'
check "setxattr on the mount root" EPERM 'os.setxattr(MNT, "user.x", b"1")'

log "-- supported: O_DIRECT, mmap writes, odd names, an empty session"
mkdir "$S/feat"
check "O_DIRECT write and read" OK '
buf = mmap.mmap(-1, 8192)
buf.write(bytes(range(256)) * 32)
fd = os.open(S + "/feat/direct", os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
must(os.pwritev(fd, [buf], 0) == 8192, "one 8 KiB O_DIRECT write")
back = mmap.mmap(-1, 8192)
must(os.preadv(fd, [back], 0) == 8192, "one 8 KiB O_DIRECT read")
os.close(fd)
must(bytes(back) == bytes(buf), "O_DIRECT read back")'
check "mmap writes" OK '
fd = os.open(S + "/feat/mapped", os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 10000)
mm = mmap.mmap(fd, 10000, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
mm[:] = bytes((i * 7) % 251 for i in range(10000))
mm.flush()
mm.close()
os.close(fd)'
check "the files of feat commit with their hashes" OK '
d = bytes(range(256)) * 32
m = bytes((i * 7) % 251 for i in range(10000))
finish("feat", hashlib.sha256(d).hexdigest() + "  direct\n" + hashlib.sha256(m).hexdigest() + "  mapped\n")
must(read(A + "/feat/direct") == d and read(A + "/feat/mapped") == m, "feat round trip")'

# Names that are valid however odd: newline, tab, backslash, non-UTF-8,
# spaces, 255 bytes, leading dash and dot. The manifest is what sha256sum
# prints for them (its escaped form for the newline and the backslash).
mkdir "$SRC/names" "$S/names"
check "odd but valid names: create" OK '
names = [b"new\nline", b"tab\tname", b"back\\slash", b"\xff\xfe not utf-8", b" lead and trail ",
         b"-dash", b".hidden", "ünïcödé".encode(), b"n" * 255]
for i, n in enumerate(names):
    data = b"%d:" % i + n
    for root in (T.encode() + b"/src/names/", S.encode() + b"/names/"):
        with open(root + n, "wb") as f:
            f.write(data)'
manifest_of "$SRC/names" "$T/names.manifest"
grep -q '^\\' "$T/names.manifest" || fail "sha256sum did not escape the newline name"
finish_session names "$T/names.manifest" || fail "names: finish failed: $FINISH_ERR"
check "odd but valid names: round trip into assets/" OK '
src = T.encode() + b"/src/names"
dst = A.encode() + b"/names"
must(sorted(os.listdir(dst)) == sorted(os.listdir(src)), "the same names")
for n in os.listdir(src):
    must(read(dst + b"/" + n) == read(src + b"/" + n), n)'

mkdir "$S/empty"
check "finish of an empty session with a non-empty manifest" EINVAL 'finish("empty", line("a"))'
check "finish of an empty session" OK 'finish("empty", ""); must(os.listdir(A + "/empty") == [])'

# ---- the control session ----
control_complete() { grep -qx "bytes_received: $((CONTROL_CHUNK * CONTROL_CHUNKS))" "$S/control/.status"; }
wait_until 60 "the control writer to cover data.bin" control_complete
touch "$T/stop"
wait_jobs 30 "the control writer" "$CONTROL_PID"
(cd "$SRC" && sha256sum control.bin) | sed 's/control\.bin$/data.bin/' >"$T/control.manifest"
finish_session control "$T/control.manifest" || fail "control: finish failed: $FINISH_ERR"
cmp "$SRC/control.bin" "$A/control/data.bin" || fail "control: the asset differs"
ok "the control session, written to during all $CASES cases, committed intact"

assert_daemon_alive
! grep -E '\[error\]|unexpected exception' "$UPFS_LOG" || fail "the daemon logged errors (above)"
ok "no error-level line in the daemon's log"
log "catalogue: $CASES cases"
