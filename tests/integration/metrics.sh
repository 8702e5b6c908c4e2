#!/usr/bin/env bash
# tests/integration/metrics.sh UPFS_BINARY (ctest integration.metrics and
# rados.integration.metrics): -o metrics_file through a real mount
# (docs/configuration.md, "Metrics").
#   - the file exists as soon as the mount answers
#   - a commit, a finish refused for a wrong hash, one refused by
#     pre_commit, a lookup of a missing name (ENOENT) and a mkdir under
#     assets/ (EROFS) show up with exactly those counts, labels and bytes
#   - `promtool check metrics` finds nothing to say about the file
#   - a reader polling the file while it is rewritten every second never
#     sees it missing, empty or cut short; no temporary file stays behind
#   - with a long interval, the file written at unmount holds the last
#     commit; a metrics file that cannot be written is logged once and the
#     mount works anyway
source "$(dirname "$0")/lib.sh" "$@"
require_tools promtool python3

PROM_DIR=$T/metrics
PROM=$PROM_DIR/upfs.prom
mkdir -p "$PROM_DIR"
cat >"$T/pre-commit" <<'EOF'
#!/bin/sh
case $UPFS_SESSION in refuse*) echo "refused by the test" >&2; exit 1 ;; esac
exit 0
EOF
chmod 755 "$T/pre-commit"

# metric 'NAME{LABELS}': its value in the file, or nothing.
metric() { awk -v k="$1" '$1 == k { print $2 }' "$PROM"; }
# metrics_are 'NAME{LABELS}' VALUE ...: every pair holds.
metrics_are() {
  while (($# >= 2)); do
    [[ $(metric "$1") == "$2" ]] || return 1
    shift 2
  done
}
# expect_metrics 'NAME{LABELS}' VALUE ...: metrics_are, failing with what
# the file says instead.
expect_metrics() {
  local name want got
  while (($# >= 2)); do
    name=$1 want=$2
    got=$(metric "$name")
    [[ $got == "$want" ]] || fail "$name is '${got}', expected $want; the file:
$(cat "$PROM")"
    shift 2
  done
}

# upload NAME MANIFEST_FROM: a session NAME with two files; its manifest
# is that of MANIFEST_FROM's files (a different directory: a wrong hash).
upload() {
  mkdir -p "$SRC/$1"
  random_file "$SRC/$1/a" 3000000
  random_file "$SRC/$1/b" 70000
  mkdir "$MNT/sessions/$1"
  cp "$SRC/$1/a" "$SRC/$1/b" "$MNT/sessions/$1/"
  manifest_of "$SRC/$2" "$SRC/$1.manifest"
}

start_upfs -o metrics_file="$PROM" -o metrics_interval=1 -o pre_commit="$T/pre-commit"
[[ -s $PROM ]] || fail "no metrics file once the mount answered"
expect_metrics upfs_commits_total 0 upfs_open_sessions 0
ok "the metrics file exists as soon as the mount answers"

upload good good
upload bad good
upload refused refused
finish_session good "$SRC/good.manifest" || fail "finishing good: $FINISH_ERR"
expect_finish_error bad "$SRC/bad.manifest" "Bad message"
expect_finish_error refused "$SRC/refused.manifest" "Operation not permitted"
[[ ! -e $MNT/sessions/nosuch ]] || fail "sessions/nosuch exists"
expect_fail "Read-only file system" mkdir "$MNT/assets/good/newdir"
received=$((3 * (3000000 + 70000)))

expected=(
  upfs_commits_total 1
  upfs_open_sessions 2
  upfs_assets 1
  'upfs_finish_failures_total{reason="hash_mismatch"}' 1
  'upfs_finish_failures_total{reason="not_permitted"}' 1
  'upfs_finish_failures_total{reason="missing_data"}' 0
  upfs_received_bytes_total "$received"
  upfs_committed_bytes_total 3070000
  upfs_finish_duration_seconds_count 3
  'upfs_finish_duration_seconds_bucket{le="+Inf"}' 3
  'upfs_fuse_errors_total{op="flush",errno="EBADMSG"}' 1
  'upfs_fuse_errors_total{op="flush",errno="EPERM"}' 1
  'upfs_fuse_errors_total{op="mkdir",errno="EROFS"}' 1
  'upfs_hook_runs_total{hook="pre_commit"}' 2
  'upfs_hook_failures_total{hook="pre_commit"}' 1
  upfs_quota_refusals_total 0
)
wait_until 15 "the metrics file to show the uploads" metrics_are "${expected[@]}"
expect_metrics "${expected[@]}"
lookup_enoent=$(metric 'upfs_fuse_errors_total{op="lookup",errno="ENOENT"}')
((lookup_enoent >= 1)) || fail "no lookup ENOENT counted (sessions/nosuch): '$lookup_enoent'"
writes=$(metric 'upfs_fuse_requests_total{op="write"}')
((writes >= 3)) || fail "upfs_fuse_requests_total{op=\"write\"} is '$writes'"
size=$(metric upfs_store_size_bytes)
free=$(metric upfs_store_free_bytes)
[[ -n $size && -n $free ]] && ((free <= size)) || fail "store size '$size', free '$free'"
# A cluster just started may not have reported its capacity yet (0).
on_rados || ((size > 0)) || fail "store size 0"
ok "commit, failed finishes by reason, bytes, histogram, FUSE errors by op and errno, hooks"

# promtool prints nothing and exits 0 for a clean file; anything it says
# (a lint complaint or an error) fails the test.
promtool_out=$(promtool check metrics <"$PROM" 2>&1) || fail "promtool check metrics failed: $promtool_out"
[[ -z $promtool_out ]] || fail "promtool check metrics complains: $promtool_out"
ok "promtool check metrics: nothing to say"

# A reader polling the file as fast as it can while the writer replaces
# it every second: each read must be a whole exposition (its first line,
# its last family, a final newline), and the file a new one (another
# inode) at least 3 times.
first_line=$(head -n 1 "$PROM")
last_family=$(tail -n 1 "$PROM" | cut -d'{' -f1)
[[ $first_line == "# HELP upfs_open_sessions "* ]] || fail "first line: $first_line"
reader_out=$(python3 - "$PROM" "$first_line" "$last_family" 2>&1 <<'EOF_PY'
import os, sys, time
path, first, last = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
deadline = time.monotonic() + 20
inode, replaced, reads = os.stat(path).st_ino, 0, 0
while replaced < 3:
    if time.monotonic() > deadline:
        sys.exit(f"the file was replaced {replaced} times in 20 s ({reads} reads)")
    try:
        with open(path, "rb") as f:
            text, now = f.read(), os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        sys.exit(f"read {reads}: the file is missing")
    reads += 1
    lines = text.split(b"\n")
    if not text.startswith(first + b"\n") or len(lines) < 2 or lines[-1] != b"" or not lines[-2].startswith(last):
        sys.exit(f"read {reads}: not a whole file ({len(text)} bytes): {text[-80:]!r}")
    if now != inode:
        inode, replaced = now, replaced + 1
print(f"{reads} reads during {replaced} replacements")
EOF_PY
) || fail "a reader of the metrics file: $reader_out"
ok "$reader_out: always a whole file"

stop_upfs
leftovers=$(find "$PROM_DIR" -name 'upfs.prom.tmp.*')
[[ -z $leftovers ]] || fail "temporary files left: $leftovers"

# A long interval: the file is written at the mount and at the unmount.
start_upfs -o metrics_file="$PROM" -o metrics_interval=3600
expect_metrics upfs_commits_total 0 upfs_assets 1 upfs_open_sessions 2
upload again again
finish_session again "$SRC/again.manifest" || fail "finishing again: $FINISH_ERR"
expect_metrics upfs_commits_total 0
stop_upfs
expect_metrics upfs_commits_total 1 upfs_assets 2 upfs_committed_bytes_total 3070000
ok "written at mount and at unmount"

# A file that cannot be written: logged once (at the mount and at the
# unmount both fail), and the mount works.
start_upfs -o metrics_file="$T/no/such/dir/upfs.prom" -o metrics_interval=1
upload after after
finish_session after "$SRC/after.manifest" || fail "finishing after: $FINISH_ERR"
cmp "$SRC/after/a" "$MNT/assets/after/a" || fail "assets/after/a differs"
stop_upfs
warnings=$(grep -c "metrics file $T/no/such/dir/upfs.prom: creating" "$UPFS_LOG" || true)
((warnings == 1)) || fail "the unwritable metrics file was logged $warnings times, expected once"
ok "an unwritable metrics file is logged once and the mount works"
