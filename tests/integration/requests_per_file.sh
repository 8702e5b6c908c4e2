#!/usr/bin/env bash
# The FUSE requests a small-file upload costs (docs/performance.md, (e)):
# with the daemon's debug log (-d), which names every request's opcode,
#   - cp -r of 20 files into a session sends at most 6 requests per file
#     (2 LOOKUP, CREATE, WRITE, RELEASE and one GETATTR of the directory)
#     and no FLUSH: an upload-only handle skips it (noflush);
#   - a close of .finish does send FLUSH, and the commit is its reply;
#   - a handle that may read (O_RDWR) keeps its FLUSH, which writes back
#     pages dirtied through a shared mapping before close returns;
#   - reading a committed file sends no FLUSH either.
source "$(dirname "$0")/lib.sh" "$@"
require_tools python3

FILES=20
start_upfs -d
S=$MNT/sessions
mkdir -p "$T/src"
for ((i = 0; i < FILES; i++)); do head -c 24576 /dev/urandom >"$T/src/f$i"; done
(cd "$T/src" && sha256sum -- *) >"$T/manifest"
mkdir "$S/req"

# ops_since LINE: the opcodes the log names after line LINE, one per line.
ops_since() { tail -n +"$(($1 + 1))" "$UPFS_LOG" | sed -n 's/.*opcode: \([A-Z_]*\) .*/\1/p'; }
lines() { wc -l <"$UPFS_LOG"; }
count() { grep -cx "$1" <<<"$2" || true; }

mark=$(lines)
cp -r "$T/src/." "$S/req/"
# RELEASE is sent after close returns: wait for the last one.
wait_until 10 "the copy's releases" bash -c "[[ \$(tail -n +$((mark + 1)) '$UPFS_LOG' | grep -c 'opcode: RELEASE') -ge $FILES ]]"
ops=$(ops_since "$mark")
log "cp -r of $FILES files: $(sort <<<"$ops" | uniq -c | awk '{ printf "%s %s  ", $2, $1 }')"
total=$(grep -c . <<<"$ops")
((total <= 6 * FILES)) || fail "cp -r of $FILES files sent $total requests (at most $((6 * FILES)) expected)"
(($(count CREATE "$ops") == FILES)) || fail "expected $FILES CREATE requests"
(($(count FLUSH "$ops") == 0)) || fail "upload-only handles sent FLUSH on close: $(count FLUSH "$ops")"

mark=$(lines)
cp "$T/manifest" "$S/req/.finish" || fail "finish failed"
(($(count FLUSH "$(ops_since "$mark")") >= 1)) || fail "close of .finish sent no FLUSH"
[[ -f $MNT/assets/req/f0 ]] || fail "the commit is not visible after close(.finish) returned"

mark=$(lines)
cmp "$T/src/f3" "$MNT/assets/req/f3" || fail "asset f3 differs"
(($(count FLUSH "$(ops_since "$mark")") == 0)) || fail "reading a committed file sent FLUSH"

# A handle that may read keeps FLUSH: bytes written through a shared
# mapping are in the session when close returns.
mkdir "$S/rw"
mark=$(lines)
python3 - "$S/rw/mapped" <<'EOF'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 8192)
m = mmap.mmap(fd, 8192)
m[4096:4101] = b"hello"
m.close()
os.close(fd)
EOF
(($(count FLUSH "$(ops_since "$mark")") >= 1)) || fail "an O_RDWR handle sent no FLUSH on close"
log "PASS"
