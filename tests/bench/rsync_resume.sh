#!/usr/bin/env bash
# tests/bench/rsync_resume.sh UPFS_BINARY [MB]: which rsync invocation
# resumes an upload into upfs without sending again what was received
# (docs/configuration.md, "Resuming, and tools' leftovers"). For each invocation: an rsync
# of one MB-megabyte file (default 300) into its own session, slowed with
# --bwlimit, the daemon killed (kill -9) once the session holds 40 % of it,
# a remount, and the same command again with --stats; prints what the
# second run sent and what it left in the session. Not a ctest test: the
# recommended invocation is tested by integration.resume.
source "$(dirname "$0")/../integration/lib.sh" "$@"
require_tools rsync
MB=${2:-300}
random_file "$SRC/big" $((MB << 20))
SIZE=$(stat -c %s "$SRC/big")
start_upfs

# session_bytes NAME: the bytes of the session's files, summed.
session_bytes() { find "$MNT/sessions/$1" -type f ! -name .finish ! -name .status -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }'; }
past() { (($(session_bytes "$1") > SIZE * 2 / 5)); }
# stat_of FILE KEY: a number from rsync --stats output.
stat_of() { awk -F': ' -v k="$2" '$1 == k { gsub(/[^0-9]/, "", $2); print $2 }' "$1"; }

printf '| invocation | first run: written when killed | rerun: literal data | rerun: total bytes sent | left in the session | big complete |\n'
printf '| --- | --- | --- | --- | --- | --- |\n'
n=0
while IFS= read -r line; do
  n=$((n + 1))
  read -r -a args <<<"$line"
  S=c$n
  mkdir "$MNT/sessions/$S"
  bg rsync "${args[@]}" --bwlimit=40m "$SRC/big" "$MNT/sessions/$S/"
  wait_until 120 "$S holds 40 % of the file" past "$S"
  killed_at=$(session_bytes "$S")
  kill_upfs
  wait_job 60 "$LAST_BG"
  start_upfs
  rc=0
  rsync "${args[@]}" --stats "$SRC/big" "$MNT/sessions/$S/" >"$T/stats.$n" 2>&1 || rc=$?
  ((rc == 0)) || fail "rsync ${args[*]} failed ($rc) on the rerun: $(cat "$T/stats.$n")"
  left=$(cd "$MNT/sessions/$S" && find . -type f ! -name .finish ! -name .status -printf '%P (%s) ' | sort)
  complete=no
  cmp -s "$SRC/big" "$MNT/sessions/$S/big" && grep -q '^missing: none$' "$MNT/sessions/$S/.status" && complete=yes
  printf '| `rsync %s` | %s | %s | %s | %s| %s |\n' "${args[*]}" "$killed_at" "$(stat_of "$T/stats.$n" "Literal data")" \
    "$(stat_of "$T/stats.$n" "Total bytes sent")" "$left" "$complete"
  rm -r "$MNT/sessions/$S"
done <<'LIST'
-a --partial
-a --partial-dir=.rsync-partial
-a --partial-dir=.rsync-partial --no-whole-file
-a --inplace
-a --inplace --no-whole-file
-a --append-verify
LIST
log "file of $SIZE bytes"
stop_upfs
