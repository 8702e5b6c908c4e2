#!/usr/bin/env bash
# kill -9 torture (docs/store.md, "Crashes"): G2 and G4 (docs/semantics.md)
# and "sessions survive a daemon crash" under a daemon killed at random moments.
#
# Each round, on a mounted store:
#   * several sessions begin at once; each has parallel writers (`dd seek=
#     conv=notrunc`) putting its files' chunks in random order, and some
#     sessions are then finished (`cp MANIFEST .finish`: cp checks
#     close(2); its exit status is recorded);
#   * after a seeded random delay (or just as some close(.finish) starts,
#     or once everything is done) the daemon gets kill -9, the dead mount
#     is detached (fusermount3 -u -z), every client is waited for, and the
#     same store is mounted again;
#   * then, per session: if its finish returned 0 it must be in assets/ and
#     pass `sha256sum -c`; otherwise it must be either entirely committed
#     (every file verifies) or still open in sessions/ and never both. An
#     open session's .status must account for every chunk whose dd had
#     returned 0 (no lost chunk), and every byte it reports received must
#     equal the source's (gaps read as zeros). The session is then resumed
#     by writing only what .status reports missing (plus any tail beyond
#     the length it knows), finished, and verified.
# At the end the daemon is unmounted cleanly, mounted once more, and every
# asset of the run is verified again.
#
# Seeded and reproducible: the seed fixes the sessions, files, sizes,
# chunking, chunk order, writer assignment, which sessions finish and each
# kill's timing choice (the exact instant a kill lands still depends on the
# machine). Knobs (environment):
#   TORTURE_SEED=N            default 1; printed, so a failure can be rerun
#   TORTURE_KILLS=N           kill -9 rounds; default 20 (the CI form)
#   TORTURE_SESSIONS=N        sessions per round; default 4
#   TORTURE_WRITERS=N         parallel writers per session; default 3
#   TORTURE_MAX_FILE_KB=N     largest file; default 2048
#   TORTURE_MAX_DELAY_MS=N    longest random pre-kill delay; default: 120%
#                             of how long a round's clients took in a
#                             first, unkilled warm-up round, so that most
#                             kills land among them on any machine (the
#                             seed fixes each delay as a fraction of it)
#   TORTURE_TIME_LIMIT=S      stop starting rounds after S seconds (the run
#                             then still checks and reports); default none
#   TORTURE_STOP_ON_FAIL=1    stop at the first failure (default: count
#                             failures, keep going, exit 1 at the end)
# Long mode (not run by ctest; 2-4 s per kill on a busy 2-core machine):
#   TORTURE_KILLS=200 bash tests/integration/torture_kill9.sh build/upfs
#   TORTURE_KILLS=1000 TORTURE_SEED=$RANDOM bash ...   # exploring seeds
# Prints one summary line:
#   torture_kill9: seed S, kills K (B with clients at work, F with a
#   finish running, C inside close(.finish)), sessions N:
#   committed N (acknowledged A, unacknowledged U), resumed R (M MiB they
#   had received checked), redone D, failures X, T s
source "$(dirname "$0")/lib.sh" "$@"

SEED=${TORTURE_SEED:-1}
KILLS=${TORTURE_KILLS:-20}
SESSIONS=${TORTURE_SESSIONS:-4}
WRITERS=${TORTURE_WRITERS:-3}
MAX_FILE_BYTES=$((${TORTURE_MAX_FILE_KB:-2048} * 1024))
MAX_DELAY_MS=${TORTURE_MAX_DELAY_MS:-}
TIME_LIMIT=${TORTURE_TIME_LIMIT:-0}
STOP_ON_FAIL=${TORTURE_STOP_ON_FAIL:-0}
# Chunks per file stay below this so that .status (which lists at most 16
# missing ranges per file) always names every gap.
MAX_CHUNKS_PER_FILE=24
MAX_CHUNK_BYTES=$((768 * 1024))
# How long any one client may take after the kill, or any one step.
STEP_TIMEOUT=120

for tool in openssl cp awk; do
  command -v "$tool" >/dev/null || fail "missing tool $tool"
done

MAN=$T/manifests    # MAN/NAME.sha256: the manifest of session NAME
PLAN=$T/plan        # PLAN/NAME/wK: writer K's chunks, "FILE OFFSET LENGTH"
STATE=$T/state      # what the clients did, written only after it succeeded
mkdir -p "$MAN" "$PLAN" "$STATE"

# ---- seeded randomness (in this shell only: subshells do not share it) ----
RANDOM=$SEED
R=0
# rnd N: R = a random number in [0, N).
rnd() { R=$((((RANDOM << 15) | RANDOM) % $1)); }

# ---- failures: counted, each with a precise message ----
FAILURES=0
problem() {
  FAILURES=$((FAILURES + 1))
  printf '[%s] FAILURE %d (round %s): %s\n' "$TEST_NAME" "$FAILURES" "${ROUND:-?}" "$*" >&2
  if [[ $STOP_ON_FAIL == 1 ]]; then
    fail "stopping at the first failure (TORTURE_STOP_ON_FAIL=1); reproduce with TORTURE_SEED=$SEED"
  fi
}

# ---- sources ----

# Every source file is a slice, at a random byte offset, of one pool of
# pseudo-random bytes fixed by the seed (AES-CTR of zeros): cheaper than
# generating each file, and just as unlikely to put equal bytes at equal
# offsets of two sessions.
POOL=$T/pool
POOL_BYTES=$((MAX_FILE_BYTES + 16 * 1024 * 1024))
head -c "$POOL_BYTES" </dev/zero |
  openssl enc -aes-128-ctr -K "$(printf '%s' "torture $SEED" | sha256sum | cut -c1-32)" -iv 0 2>/dev/null >"$POOL"
[[ $(stat -c %s "$POOL") -eq $POOL_BYTES ]] || fail "could not make the $POOL_BYTES-byte pool with openssl"

# plan_session NAME: makes NAME's source files and manifest and deals its
# chunks, shuffled, to the writers.
plan_session() {
  local name=$1 src=$SRC/$1 files i size chunk_min n off len w
  mkdir -p "$src" "$PLAN/$name"
  rnd 3
  files=$((R + 1))
  local chunks=()
  for ((i = 0; i < files; i++)); do
    rnd 10
    if ((R == 0)); then
      size=0  # now and then an empty file
    else
      rnd "$MAX_FILE_BYTES"
      size=$((R + 1))
    fi
    rnd $((POOL_BYTES - size + 1))
    get_range "$POOL" "$R" "$size" >"$src/f$i"
    [[ $(stat -c %s "$src/f$i") -eq $size ]] || fail "could not make $size bytes for $name/f$i"
    if ((size == 0)); then
      chunks+=("f$i 0 0")  # created, never written
      continue
    fi
    chunk_min=$(((size + MAX_CHUNKS_PER_FILE - 1) / MAX_CHUNKS_PER_FILE))
    for ((off = 0; off < size; off += len)); do
      rnd "$MAX_CHUNK_BYTES"
      len=$((R + 1 < chunk_min ? chunk_min : R + 1))
      ((off + len <= size)) || len=$((size - off))
      chunks+=("f$i $off $len")
    done
  done
  # Fisher-Yates, then round-robin to the writers.
  local j tmp
  for ((i = ${#chunks[@]} - 1; i > 0; i--)); do
    rnd $((i + 1))
    j=$R
    tmp=${chunks[i]}
    chunks[i]=${chunks[j]}
    chunks[j]=$tmp
  done
  for ((w = 0; w < WRITERS; w++)); do : >"$PLAN/$name/w$w"; done
  for ((i = 0; i < ${#chunks[@]}; i++)); do
    printf '%s\n' "${chunks[i]}" >>"$PLAN/$name/w$((i % WRITERS))"
  done
  (cd "$src" && find . -type f -printf '%P\0' | sort -z | xargs -0 sha256sum) >"$MAN/$name.sha256"
}

# ---- the clients (background subshells; they never fail the test) ----

# writer NAME K: puts writer K's chunks of NAME; appends each chunk to
# STATE/NAME.done only after its dd returned 0.
writer() {
  trap - ERR
  set +eE
  local name=$1 f off len dst
  while read -r f off len; do
    dst=$MNT/sessions/$name/$f
    if ((len == 0)); then
      touch "$dst" 2>/dev/null || exit 1
    else
      put_range "$SRC/$name/$f" "$dst" "$off" "$len" 2>/dev/null || exit 1
    fi
    echo "$f $off $len" >>"$STATE/$name.done"
  done <"$PLAN/$name/w$2"
}

# session_client NAME FINISH: begins NAME, runs its writers in parallel,
# and if FINISH is 1 and every writer succeeded, finishes it with cp,
# recording cp's status in STATE/NAME.finish_rc.
session_client() {
  trap - ERR
  set +eE
  local name=$1 finish=$2 w pids=() rc=0 p
  trap 'kill -TERM "${pids[@]}" 2>/dev/null; exit 143' TERM
  mkdir "$MNT/sessions/$name" 2>/dev/null || exit 1
  : >"$STATE/$name.begun"
  for ((w = 0; w < WRITERS; w++)); do
    writer "$name" "$w" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  pids=()
  ((rc == 0)) || exit 1
  ((finish == 1)) || exit 0
  : >"$STATE/$name.finishing"
  cp "$MAN/$name.sha256" "$MNT/sessions/$name/.finish" 2>"$STATE/$name.finish_err"
  echo $? >"$STATE/$name.finish_rc"
}

# ---- checks ----

ASSETS_OK=()   # every session verified as an asset, for the final check

# verified NAME: NAME is a verified asset; from now on its manifest is all
# the test needs of it (the sources go, so long runs stay small on disk).
verified() {
  ASSETS_OK+=("$1")
  rm -rf "${SRC:?}/$1" "${PLAN:?}/$1"
}

# verify_asset NAME: assets/NAME holds exactly the manifest's files and
# they all verify.
verify_asset() {
  local name=$1 dir=$MNT/assets/$1 out want got
  out=$(cd "$dir" && sha256sum -c --strict --quiet "$MAN/$name.sha256" 2>&1) || {
    problem "$name: sha256sum -c failed in assets/$name: $out"
    return 1
  }
  want=$(wc -l <"$MAN/$name.sha256")
  got=$(find "$dir" -type f | wc -l)
  if ((want != got)); then
    problem "$name: assets/$name has $got files, the manifest lists $want"
    return 1
  fi
  return 0
}

# status_files NAME: one line per file block of sessions/NAME/.status:
# "PATH<TAB>LENGTH<TAB>RECEIVED<TAB>MISSING" with MISSING "none" or
# "A-B C-D ..." (and "..." left in if .status cut the list short).
status_files() {
  awk '
    function out() { if (p != "") printf "%s\t%s\t%s\t%s\n", p, len, rx, miss }
    /^file: /     { out(); p = substr($0, 7); len = ""; rx = ""; miss = "" }
    /^length: /   { len = $2 }
    /^received: / { rx = $2 }
    /^missing: /  { miss = substr($0, 10); gsub(/\[/, "", miss); gsub(/\)/, "", miss); gsub(/, /, "-", miss) }
    END { out() }' "$MNT/sessions/$1/.status"
}

# check_open NAME: the session survived open; every chunk acknowledged to
# a writer is received, and every received byte is the source's.
check_open() {
  local name=$1 dst=$MNT/sessions/$1 f len rx miss r a b sum expect
  local -A status_len=()
  local blocks
  blocks=$(status_files "$name") || { problem "$name: cannot read .status"; return 1; }
  while IFS=$'\t' read -r f len rx miss; do
    [[ -n $f ]] || continue
    if [[ ! -f $SRC/$name/$f ]]; then
      problem "$name: .status lists '$f', which no client wrote"
      continue
    fi
    status_len[$f]=$len
    if ((len > $(stat -c %s "$SRC/$name/$f"))); then
      problem "$name/$f: .status length $len is beyond the source's $(stat -c %s "$SRC/$name/$f")"
      continue
    fi
    if [[ $miss == *...* ]]; then
      problem "$name/$f: .status cut its missing list short: $miss"
      continue
    fi
    # .status agrees with itself: received = length - missing.
    sum=0
    if [[ $miss != none ]]; then
      for r in $miss; do sum=$((sum + ${r#*-} - ${r%-*})); done
    fi
    ((rx == len - sum)) || problem "$name/$f: .status says received $rx, but length $len minus missing ($miss) is $((len - sum))"
    # The bytes: the source's first LENGTH bytes with the missing ranges
    # zeroed must equal the session file.
    expect=$T/expect
    head -c "$len" "$SRC/$name/$f" >"$expect"
    if [[ $miss != none ]]; then
      for r in $miss; do
        a=${r%-*} b=${r#*-}
        dd if=/dev/zero of="$expect" bs=1M iflag=count_bytes oflag=seek_bytes seek="$a" count=$((b - a)) \
          conv=notrunc status=none
      done
    fi
    local diff
    if diff=$(cmp "$expect" "$dst/$f" 2>&1); then
      RX_CHECKED=$((RX_CHECKED + rx))
    else
      problem "$name/$f: received bytes differ from the source (missing: $miss): $diff"
    fi
    # No lost chunk: every chunk whose dd returned 0 is inside [0, length)
    # and outside every missing range.
    if [[ -s $STATE/$name.done ]]; then
      local lost
      lost=$(awk -v f="$f" -v len="$len" -v miss="$miss" '
        BEGIN { n = (miss == "none") ? 0 : split(miss, m, " ") }
        $1 == f {
          s = $2; e = $2 + $3
          if (e > len) { print "[" s ", " e ") lies beyond length " len; next }
          for (i = 1; i <= n; i++) {
            split(m[i], ab, "-")
            if (s < ab[2] + 0 && ab[1] + 0 < e) { print "[" s ", " e ") overlaps missing [" ab[1] ", " ab[2] ")"; next }
          }
        }' "$STATE/$name.done")
      [[ -z $lost ]] || problem "$name/$f: chunks acknowledged to dd were lost: $(tr '\n' ';' <<<"$lost")"
    fi
  done <<<"$blocks"
  # Every file some chunk of which was acknowledged is listed.
  if [[ -s $STATE/$name.done ]]; then
    for f in $(cut -d' ' -f1 "$STATE/$name.done" | sort -u); do
      [[ -n ${status_len[$f]+set} ]] || problem "$name: file $f had acknowledged chunks but is not in .status"
    done
  fi
  # And the directory shows exactly the files .status lists.
  local listed shown
  listed=$(printf '%s\n' "${!status_len[@]}" | sed '/^$/d' | sort)
  shown=$(cd "$dst" && find . -type f ! -name .finish ! -name .status -printf '%P\n' | sort)
  [[ $listed == "$shown" ]] || problem "$name: sessions/$name shows files [$(echo $shown)], .status lists [$(echo $listed)]"
}

# resume NAME: writes what .status reports missing (and whatever lies past
# the length it knows, or files it does not know), until nothing is
# missing; then finishes and verifies.
resume() {
  local name=$1 dst=$MNT/sessions/$1 f size len rx miss r a b pass wrote
  local -A known
  for ((pass = 0; pass < 3; pass++)); do
    known=()
    wrote=0
    while IFS=$'\t' read -r f len rx miss; do
      [[ -n $f && -f $SRC/$name/$f ]] || continue
      known[$f]=1
      if [[ $miss != none ]]; then
        for r in $miss; do
          [[ $r == *-* ]] || continue  # "..." of a cut list: next pass
          a=${r%-*} b=${r#*-}
          put_range "$SRC/$name/$f" "$dst/$f" "$a" $((b - a)) || { problem "$name/$f: resuming [$a, $b) failed"; return 1; }
          wrote=1
        done
      fi
      size=$(stat -c %s "$SRC/$name/$f")
      if ((len < size)); then
        put_range "$SRC/$name/$f" "$dst/$f" "$len" $((size - len)) || { problem "$name/$f: resuming the tail failed"; return 1; }
        wrote=1
      fi
    done < <(status_files "$name")
    for f in $(cd "$SRC/$name" && ls); do
      [[ -z ${known[$f]+set} ]] || continue
      size=$(stat -c %s "$SRC/$name/$f")
      if ((size == 0)); then
        touch "$dst/$f" || { problem "$name/$f: creating it failed"; return 1; }
      else
        put_range "$SRC/$name/$f" "$dst/$f" 0 "$size" || { problem "$name/$f: writing it failed"; return 1; }
      fi
      wrote=1
    done
    ((wrote == 1)) || break
  done
  local err
  if ! err=$(cp "$MAN/$name.sha256" "$dst/.finish" 2>&1); then
    problem "$name: finishing the resumed session failed: $err; .status:
$(cat "$dst/.status" 2>&1)"
    return 1
  fi
  [[ -d $MNT/assets/$name && ! -e $dst ]] || { problem "$name: finished, but not (only) in assets/"; return 1; }
  verify_asset "$name"
}

# fresh NAME: a session that never began (the kill came first) is uploaded
# whole now.
fresh() {
  local name=$1 f
  mkdir "$MNT/sessions/$name" || { problem "$name: mkdir failed"; return 1; }
  for f in $(cd "$SRC/$name" && ls); do
    cp "$SRC/$name/$f" "$MNT/sessions/$name/$f" || { problem "$name/$f: cp failed"; return 1; }
  done
  cp "$MAN/$name.sha256" "$MNT/sessions/$name/.finish" || { problem "$name: finish failed"; return 1; }
  verify_asset "$name"
}

# check_log: the daemon logged no error (durability or corruption, per
# STYLE.md) since the last call; warnings are shown.
LOG_SEEN=0
check_log() {
  local lines new
  lines=$(wc -l <"$UPFS_LOG")
  new=$(tail -n +$((LOG_SEEN + 1)) "$UPFS_LOG" | head -n $((lines - LOG_SEEN)))
  LOG_SEEN=$lines
  local bad
  bad=$(grep -E '\[(error|critical)\]' <<<"$new" || true)
  [[ -z $bad ]] || problem "the daemon logged errors:
$bad"
  bad=$(grep -F '[warning]' <<<"$new" || true)
  [[ -z $bad ]] || log "the daemon warned: $(head -n 5 <<<"$bad")"
}

# ---- the rounds ----

# elapsed T0 T1: seconds between two $EPOCHREALTIME stamps, 2 decimals.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

KILLED=0 KILLS_BUSY=0 KILLS_IN_FINISH=0 KILLS_IN_CLOSE=0 RX_CHECKED=0 TOTAL=0 COMMITTED=0 ACKED=0 UNACKED=0 RESUMED=0 REDONE=0
START=$SECONDS
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }'; }
log "seed $SEED, $KILLS kills, $SESSIONS sessions x $WRITERS writers per round, files up to $((MAX_FILE_BYTES / 1024)) KiB"
start_upfs

# Warm-up (round 0, no kill): every session of a round uploaded and
# finished; it times the clients for the kill delays and checks that the
# test itself is sound before anything is killed.
ROUND=0
names=()
for ((k = 0; k < SESSIONS; k++)); do
  names+=("r0s$k")
  plan_session "r0s$k"
done
t0=$EPOCHREALTIME
BG_PIDS=()
for name in "${names[@]}"; do bg session_client "$name" 1; done
wait_jobs "$STEP_TIMEOUT" "warm-up clients" "${BG_PIDS[@]}"
BG_PIDS=()
work_ms=$(ms_since "$t0")
for name in "${names[@]}"; do
  [[ $(cat "$STATE/$name.finish_rc") == 0 ]] || fail "warm-up: finishing $name failed: $(cat "$STATE/$name.finish_err")"
  verify_asset "$name" && verified "$name"
done
((FAILURES == 0)) || fail "the warm-up round failed; nothing was killed yet"
if [[ -z $MAX_DELAY_MS ]]; then
  MAX_DELAY_MS=$((work_ms * 12 / 10 + 1))
fi
log "warm-up: $SESSIONS sessions uploaded and finished in $work_ms ms; kill delays up to $MAX_DELAY_MS ms"

for ((ROUND = 1; ROUND <= KILLS; ROUND++)); do
  if ((TIME_LIMIT > 0 && SECONDS - START >= TIME_LIMIT)); then
    log "time limit ${TIME_LIMIT}s reached after $((ROUND - 1)) kills"
    break
  fi
  t0=$EPOCHREALTIME
  names=() finishing=()
  for ((k = 0; k < SESSIONS; k++)); do
    names+=("r${ROUND}s$k")
    plan_session "r${ROUND}s$k"
    rnd 10
    finishing+=($((R < 6 ? 1 : 0)))  # 60% are finished
  done
  # How this round's kill is timed: 0 a random delay from the start;
  # 1 a short random delay after some close(.finish) begins; 2 after every
  # client is done (the acknowledged commits must hold).
  rnd 10
  mode=$((R < 6 ? 0 : R < 9 ? 1 : 2))
  rnd 1001
  delay_ms=$((R * MAX_DELAY_MS / 1000))
  rnd 30
  finish_delay_ms=$R

  t1=$EPOCHREALTIME
  BG_PIDS=()
  for ((k = 0; k < SESSIONS; k++)); do
    bg session_client "${names[k]}" "${finishing[k]}"
  done
  clients=("${BG_PIDS[@]}")

  case $mode in
    0) when="${delay_ms} ms after the clients started" ;;
    1) when="${finish_delay_ms} ms after a finish began" ;;
    2) when="after every client was done" ;;
  esac
  case $mode in
    0) sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))" ;;
    1)
      # Poll (no fixed sleep) until a finish starts or every client is done.
      deadline=$((SECONDS + STEP_TIMEOUT))
      until compgen -G "$STATE/r${ROUND}s*.finishing" >/dev/null; do
        any=0
        for p in "${clients[@]}"; do alive "$p" && any=1; done
        ((any == 1)) || break
        ((SECONDS < deadline)) || fail "round $ROUND: clients still running after ${STEP_TIMEOUT}s"
        sleep 0.005
      done
      sleep "0.0$(printf '%02d' "$finish_delay_ms")"
      ;;
    2) for p in "${clients[@]}"; do wait_job "$STEP_TIMEOUT" "$p"; done ;;
  esac

  # Whether clients were still at work, and which close(.finish) were in
  # flight (begun, not yet returned).
  busy=0
  for p in "${clients[@]}"; do alive "$p" && busy=1; done
  in_flight=0
  for name in "${names[@]}"; do
    [[ -e $STATE/$name.finishing && ! -e $STATE/$name.finish_rc ]] && in_flight=$((in_flight + 1))
  done
  if alive "$UPFS_PID"; then
    kill_upfs  # kill -9, wait for the pid, fusermount3 -u -z
  else
    problem "upfs (pid $UPFS_PID) died on its own before the kill; log tail:
$(tail -n 20 "$UPFS_LOG")"
    wait "$UPFS_PID" || true
    UPFS_PID=
    fusermount3 -u -z "$MNT" 2>/dev/null || true
  fi
  KILLED=$((KILLED + 1))
  KILLS_BUSY=$((KILLS_BUSY + busy))
  ((in_flight == 0)) || KILLS_IN_FINISH=$((KILLS_IN_FINISH + 1))
  # Every client ends before the remount (so none writes into the new
  # mount); their statuses do not matter, their STATE records do.
  for p in "${clients[@]}"; do wait_job "$STEP_TIMEOUT" "$p"; done
  BG_PIDS=()
  # A kill that landed inside close(.finish) shows in cp's message.
  in_close=0
  for name in "${names[@]}"; do
    grep -qs 'failed to close' "$STATE/$name.finish_err" && in_close=1
  done
  KILLS_IN_CLOSE=$((KILLS_IN_CLOSE + in_close))
  t2=$EPOCHREALTIME
  start_upfs
  t2b=$EPOCHREALTIME

  for name in "${names[@]}"; do
    TOTAL=$((TOTAL + 1))
    rc=$(cat "$STATE/$name.finish_rc" 2>/dev/null || echo none)
    in_assets=0 in_sessions=0
    [[ -d $MNT/assets/$name ]] && in_assets=1
    [[ -d $MNT/sessions/$name ]] && in_sessions=1
    if ((in_assets && in_sessions)); then
      problem "$name: both in assets/ and in sessions/"
      continue
    fi
    if [[ $rc == 0 ]]; then
      if ((!in_assets)); then
        problem "$name: close(.finish) returned 0 before the kill, but assets/$name is missing (sessions/: $in_sessions)"
        continue
      fi
      verify_asset "$name" && { ACKED=$((ACKED + 1)) COMMITTED=$((COMMITTED + 1)); verified "$name"; }
    elif ((in_assets)); then
      # The kill came after the commit, before cp heard of it.
      verify_asset "$name" && { UNACKED=$((UNACKED + 1)) COMMITTED=$((COMMITTED + 1)); verified "$name"; }
    elif ((in_sessions)); then
      check_open "$name"
      resume "$name" && { RESUMED=$((RESUMED + 1)); verified "$name"; }
    elif [[ -e $STATE/$name.begun ]]; then
      problem "$name: mkdir had returned 0, but the session is in neither sessions/ nor assets/"
    else
      fresh "$name" && { REDONE=$((REDONE + 1)); verified "$name"; }
    fi
  done
  # An asset of an earlier round, picked at random, still verifies.
  if ((${#ASSETS_OK[@]} > SESSIONS)); then
    rnd $((${#ASSETS_OK[@]} - SESSIONS))
    verify_asset "${ASSETS_OK[R]}" || true
  fi
  check_log
  t3=$EPOCHREALTIME
  log "round $ROUND: killed $when; clients at work $busy, finishes running $in_flight; times: plan $(elapsed "$t0" "$t1") s, clients and kill $(elapsed "$t1" "$t2") s, remount $(elapsed "$t2" "$t2b") s, check and resume $(elapsed "$t2b" "$t3") s; totals: committed $COMMITTED, resumed $RESUMED, redone $REDONE, failures $FAILURES"
done

# On RADOS, one crash point gets its own round: a commit that spans
# objects (here an unlink: the session's tree in upfs.meta, the file's
# extent records in its blob's object) killed right after its intent is
# stored, before any other object has its part (RadosKv's test hook
# UPFS_TEST_KILL_AFTER_INTENT). The next start must roll it forward: the
# file gone, every other byte of the session intact, no intent left.
if on_rados; then
  ROUND=between-objects
  stop_upfs
  export UPFS_TEST_KILL_AFTER_INTENT=1
  start_upfs
  unset UPFS_TEST_KILL_AFTER_INTENT
  name=xobj
  plan_session "$name"
  mkdir "$MNT/sessions/$name"
  for f in $(cd "$SRC/$name" && ls); do cp "$SRC/$name/$f" "$MNT/sessions/$name/$f"; done
  head -c 9000000 "$POOL" >"$T/doomed"
  cp "$T/doomed" "$MNT/sessions/$name/doomed"
  stripes_before=$(rados_ns ls | grep -c '^upfs\.b\.' || true)
  # The unlink is the first multi-object commit since the mount.
  rm_rc=0
  rm "$MNT/sessions/$name/doomed" 2>"$T/rm.err" || rm_rc=$?
  wait_gone "$UPFS_PID" 30 || fail "between objects: the daemon did not kill itself after the intent (rm exit $rm_rc)"
  ((rm_rc != 0)) || fail "between objects: rm returned 0 though the daemon died inside the unlink"
  wait "$UPFS_PID" || true
  UPFS_PID=
  fusermount3 -u -z "$MNT" 2>/dev/null || true
  log_has "intent" "SIGKILL" || fail "between objects: the daemon did not log the intent it died after"
  intents=$(rados_ns listomapkeys upfs.meta | grep -ac '^T' || true)
  ((intents == 1)) || fail "between objects: $intents intents in upfs.meta after the crash, want 1"
  ok "crash between objects: rm failed ($(cat "$T/rm.err")), the daemon died with 1 intent stored ($stripes_before stripe objects)"
  start_upfs
  log_has "rolled 1 interrupted commits forward" || fail "between objects: the restart did not roll the intent forward"
  intents=$(rados_ns listomapkeys upfs.meta | grep -ac '^T' || true)
  ((intents == 0)) || fail "between objects: $intents intents left after the restart"
  [[ ! -e $MNT/sessions/$name/doomed ]] || fail "between objects: the unlinked file is back after the roll forward"
  check_open "$name"
  resume "$name" && verified "$name"
  ok "crash between objects rolled forward at the restart: the unlink completed, $name committed and verified"
fi

# A clean unmount and remount: every asset of the run verifies.
ROUND=final
stop_upfs
start_upfs
for name in "${ASSETS_OK[@]}"; do
  [[ -d $MNT/assets/$name ]] || { problem "$name: assets/$name is gone after a clean remount"; continue; }
  verify_asset "$name" || true
done
check_log
stray=$(ls "$MNT/sessions")
[[ -z $stray ]] || problem "sessions left open at the end: $(echo $stray)"
stop_upfs

summary="seed $SEED, kills $KILLED ($KILLS_BUSY with clients at work, $KILLS_IN_FINISH with a finish running, $KILLS_IN_CLOSE inside close(.finish)), sessions $TOTAL: committed $COMMITTED (acknowledged $ACKED, unacknowledged $UNACKED), resumed $RESUMED ($((RX_CHECKED / 1048576)) MiB they had received checked), redone $REDONE, failures $FAILURES, $((SECONDS - START)) s"
printf '%s: %s\n' "$TEST_NAME" "$summary"
((FAILURES == 0)) || fail "$FAILURES failures; reproduce with TORTURE_SEED=$SEED TORTURE_KILLS=$KILLS"
ok "$summary"
