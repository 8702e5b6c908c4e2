# shellcheck shell=bash
# tests/integration/exercisers_lib.sh: what the third-party exerciser tests
# (exerciser_*.sh; docs/development.md, "Third-party exercisers") share, sourced after lib.sh.
#
# UPFS_EXERCISE_LONG=1 selects the long form of each (minutes instead of
# seconds); the default is the fast form CI runs.

LONG=${UPFS_EXERCISE_LONG:-0}

# commit_as_read NAME: writes a manifest of every file of sessions/NAME as
# read back through the mount (sha256sum of the session's files), finishes
# the session with it, and checks the committed assets against it with
# `sha256sum -c` and the file count. Sets FILES to that count.
commit_as_read() {
  local name=$1 man=$T/$1.sha256 files_after
  (cd "$MNT/sessions/$name" &&
    find . -type f ! -path ./.finish ! -path ./.status -printf '%P\0' | sort -z |
    xargs -0 -r sha256sum) >"$man"
  FILES=$(wc -l <"$man")
  finish_session "$name" "$man" || fail "finishing $name failed: $FINISH_ERR"
  [[ -d $MNT/assets/$name && ! -e $MNT/sessions/$name ]] || fail "$name is not committed"
  if ((FILES > 0)); then
    (cd "$MNT/assets/$name" && sha256sum -c --quiet "$man") ||
      fail "assets/$name does not match the bytes read back from its session"
  fi
  files_after=$(find "$MNT/assets/$name" -type f | wc -l)
  ((files_after == FILES)) || fail "assets/$name holds $files_after files, the session had $FILES"
  ok "session $name committed and verified: $FILES files (sha256sum -c of the read-back manifest)"
}

# fill_missing NAME: as a resuming client does, reads sessions/NAME/.status
# and writes zeros into every missing range of every file (what reads of
# the gaps returned), until .status reports none. Sets FILLED to the number
# of ranges written.
fill_missing() {
  local name=$1 dir=$MNT/sessions/$1 file="" key value range begin end rounds=0
  FILLED=0
  while grep -q '^missing: \[' "$dir/.status"; do
    ((++rounds <= 100)) || fail "$name: .status still reports missing ranges after 100 rounds"
    while IFS= read -r line; do
      key=${line%%: *}
      value=${line#*: }
      case $key in
        file) file=$value ;;
        missing)
          [[ $value == none ]] && continue
          for range in $(grep -Eo '\[[0-9]+, [0-9]+\)' <<<"$value" | tr -d '[) ' | tr ',' ':'); do
            begin=${range%%:*}
            end=${range##*:}
            dd if=/dev/zero of="$dir/$file" bs=1M iflag=count_bytes oflag=seek_bytes seek="$begin" \
              count=$((end - begin)) conv=notrunc status=none
            FILLED=$((FILLED + 1))
          done
          ;;
      esac
    done <"$dir/.status"
  done
}

# assert_log_clean: the daemon logged no warning or error (an exerciser's
# request that failed unexpectedly, or worse).
assert_log_clean() {
  if grep -E '\] \[(warning|warn|error|critical)\]' "$UPFS_LOG" | head -n 20 | grep .; then
    fail "the daemon logged warnings or errors (above)"
  fi
  ok "no warning or error in the daemon's log"
}

# assert_store_clean: after stop_upfs, `upfs fsck` finds nothing (no bytes
# left behind by files the exerciser deleted).
assert_store_clean() {
  local out rc=0
  out=$("$UPFS_BIN" fsck "$STORE" 2>&1) || rc=$?
  ((rc == 0)) || fail "upfs fsck of the store exited $rc: $out"
  ok "upfs fsck: store clean"
}
