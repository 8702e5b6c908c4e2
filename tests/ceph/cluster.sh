#!/usr/bin/env bash
# tests/ceph/cluster.sh: a throw-away Ceph cluster for upfs's RADOS tests.
#
#   cluster.sh start  DIR [OSDS]   one mon, one mgr, OSDS OSDs (default 1)
#   cluster.sh stop   DIR          stops what start started; removes DIR
#   cluster.sh status DIR          the daemons' PIDs and `ceph -s`
#   cluster.sh pool   DIR NAME [--size N] [--min-size N] [--pg-num N]
#                                  [--max-bytes N] [--max-objects N]
#                     creates the pool (or changes an existing one) and waits
#                     until an object can be written to it
#
# Built from Debian's ceph-mon, ceph-mgr, ceph-osd and ceph-common (Ceph 16,
# no systemd, no root needed). Everything lives under DIR: ceph.conf, the
# keyring, the mon/mgr/osd data, logs, PID files and admin sockets. The
# monitor listens on 127.0.0.1 only (messenger v2), on a free port picked at
# start (or $CEPH_MON_PORT); mgr and OSDs take ports from 127.0.0.1 as Ceph
# picks them. cephx is on. Clients need only the two files start writes:
#
#   rados -c DIR/ceph.conf --id admin lspools       # or CEPH_CONF=DIR/ceph.conf
#
# (DIR/keyring holds client.admin and, since nothing here is secret, the
# daemons' keys as well; ceph.conf points every entity at it.)
#
# start returns once a pool (`cluster-sh`, size 1) takes a write and every
# OSD is up, prints how long that took, and stops what it started if it
# fails. Synchronization is by
# polling with a deadline ($CEPH_START_TIMEOUT, default 120 s); no fixed sleeps.
#
# stop signals only the PIDs recorded in DIR/pids (each checked to still be a
# process started with DIR's ceph.conf), waits for them to exit (SIGKILL after
# $CEPH_STOP_TIMEOUT, default 15 s), then removes DIR if start created it
# (unless CEPH_KEEP_DIR=1). It works on a half-started cluster or a missing
# DIR and always exits 0 when nothing of ours is left running, so a test can
# call it from its EXIT trap:
#
#   d=$(mktemp -d); trap 'tests/ceph/cluster.sh stop "$d"' EXIT
#   tests/ceph/cluster.sh start "$d" 3
#   tests/ceph/cluster.sh pool "$d" p3 --size 3 --min-size 2 --max-bytes 100000000
#
# Environment (read by start):
#   CEPH_OBJECTSTORE   memstore (default) or bluestore. memstore keeps every
#                      object in the OSD's RAM (capacity CEPH_MEMSTORE_BYTES,
#                      default 1 GiB per OSD, full ratio applies); bluestore
#                      uses a sparse file DIR/osd.N/block of CEPH_BLUESTORE_BYTES
#                      (default 20 GiB) with small caches. See NOTES.md.
#   CEPH_MON_PORT      the monitor's port (default: a free one in 20000-59999)
#   CEPH_START_TIMEOUT seconds for start as a whole (default 120)
#   CEPH_STOP_TIMEOUT  seconds stop waits before SIGKILL (default 15)
#   CEPH_KEEP_DIR=1    stop leaves DIR (logs) in place
#   CEPH_EXTRA_CONF    lines appended to ceph.conf, after its [osd] section
#                      (a line "[client]" etc. starts another section), e.g.
#                      a test's own lease or debug settings
#   CEPH_VERBOSE=1     start prints how long it has run at each step
set -euo pipefail
export LC_ALL=C

readonly MARKER=.cluster-sh # start creates it; stop removes only a DIR that has it
readonly CHECK_POOL=cluster-sh

say() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}
usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# now_ms: milliseconds since the epoch (bash's clock; no fork).
now_ms() {
  local t=${EPOCHREALTIME/./}
  echo $((t / 1000))
}

# alive PID (tests/support/proc.sh)
source "$(dirname "${BASH_SOURCE[0]}")/../support/proc.sh"

# ours PID: PID is still a process that was started with this DIR's conf,
# so a PID reused by an unrelated process is never signalled.
ours() {
  local cmd
  alive "$1" || return 1
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *" $CONF "* ]]
}

# remaining: seconds left before the start deadline (at least 1).
remaining() {
  local left=$((DEADLINE - SECONDS))
  ((left > 0)) || die "timed out after ${START_TIMEOUT}s (logs in $DIR/log)"
  echo "$left"
}

# recorded NAME COMMAND...: runs COMMAND, bounded by the time left, as a
# process recorded in DIR/pids (as run.NAME), so that stop ends it too when
# start is cut short; waits for it (a signal to this script is handled at
# once, not after COMMAND) and returns its status.
recorded() {
  local name=$1 pid
  shift
  timeout "$(remaining)" "$@" &
  pid=$!
  echo "run.$name $pid" >>"$DIR/pids"
  wait "$pid"
}

# poll DESCRIPTION COMMAND...: runs COMMAND until it succeeds or the
# deadline passes (an external COMMAND goes through `recorded`).
poll() {
  local what=$1
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < DEADLINE)) || die "timed out after ${START_TIMEOUT}s waiting for $what (logs in $DIR/log)"
    sleep 0.05
  done
}

# step WHAT: with CEPH_VERBOSE=1, how long start has run when WHAT begins.
step() {
  [[ ${CEPH_VERBOSE:-} == 1 ]] || return 0
  local ms=$(($(now_ms) - T0))
  printf 'cluster.sh: %5d ms %s\n' "$ms" "$*" >&2
}

# ceph_cli ARGS...: the ceph tool on this cluster, bounded by the deadline;
# its chatter and errors go to DIR/log/cli.log.
ceph_cli() {
  recorded ceph ceph -c "$CONF" --connect-timeout 30 "$@" 2>>"$DIR/log/cli.log" ||
    die "ceph $* failed (see $DIR/log/cli.log)"
}

# free_port: a TCP port in 20000-59999 that no socket (listening or
# connected, IPv4 or IPv6) uses now.
free_port() {
  local -A used=()
  local f addr rest port i
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r $f ]] || continue
    while read -r _ addr rest; do
      [[ $addr == *:* ]] || continue # the header line
      used[$((16#${addr##*:}))]=1
    done <"$f"
  done
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + RANDOM % 40000))
    if [[ -z ${used[$port]:-} ]]; then
      echo "$port"
      return
    fi
  done
  die "no free port found"
}

write_conf() {
  local fsid=$1 port=$2 store=$3
  cat >"$CONF" <<EOF
# Written by tests/ceph/cluster.sh start; a throw-away test cluster.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$port]
public network = 127.0.0.1/32
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $DIR/keyring
run dir = $DIR/run
crash dir = $DIR/crash
admin socket = $DIR/run/\$cluster-\$name.\$pid.asok
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
# Every OSD is on this one host: replicate across OSDs, not hosts.
osd crush chooseleaf type = 0
# Failure reports count per OSD, not per host (all OSDs share one host),
# and one report is enough: an OSD a test kills is marked down by its
# peers' reports even when none of them saw a refused connection (which
# marks it down at once), after the heartbeat grace (20 s).
mon osd reporter subtree level = osd
mon osd min down reporters = 1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on pool no app = false
mon warn on insecure global id reclaim allowed = false
# Commit monitor changes (OSD boot, pool create, PG creation: each needs one)
# every 0.1 s instead of every 1 s; a one-monitor test cluster can afford it.
paxos propose interval = 0.1

[mon]
mon data = $DIR/mon.\$id
pid file = $DIR/run/\$name.pid
mon memory autotune = false
rocksdb cache size = 33554432
mon data avail warn = 5
mon data avail crit = 1
# Read when the monitor is made: no optional mgr modules (the always-on ones
# still run).
mgr initial modules =

[mgr]
mgr data = $DIR/mgr.\$id
pid file = $DIR/run/\$name.pid

[osd]
osd data = $DIR/osd.\$id
pid file = $DIR/run/\$name.pid
osd objectstore = $store
# Two cores on the machines this runs on; Ceph's defaults start up to 16 op threads.
osd op num shards = 2
osd op num threads per shard = 2
memstore device bytes = ${CEPH_MEMSTORE_BYTES:-1073741824}
bluestore block create = true
bluestore block size = ${CEPH_BLUESTORE_BYTES:-21474836480}
bluestore cache autotune = false
bluestore cache size = 67108864
bluestore fsck on mkfs = false
# A stopping OSD waits this long for the monitor to mark it down (5 s by
# default), so stop stays quick.
osd mon shutdown timeout = 1
${CEPH_EXTRA_CONF:-}
EOF
}

# launch NAME COMMAND...: starts a daemon in the foreground of its own
# session (so a terminal's ^C reaches the test, whose trap stops it) and
# records its PID before anything else can fail.
launch() {
  local name=$1
  shift
  setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
  echo "$name $!" >>"$DIR/pids"
}

add_key() {
  local name=$1
  shift
  ceph-authtool "$DIR/keyring" --gen-key -n "$name" "$@" >/dev/null
}

# all_osds_up N: the OSD map has N OSDs up.
all_osds_up() {
  ceph_cli osd stat --format json | grep -q "\"num_up_osds\":$1,"
}

# start_osd ID: makes osd.ID's store, adds it to the OSD map, starts it.
start_osd() {
  local id=$1 uuid
  uuid=$(cat /proc/sys/kernel/random/uuid)
  mkdir -p "$DIR/osd.$id"
  # -f: without it ceph-osd forks, and the store is made by a child that
  # neither the timeout nor stop would know.
  recorded "mkfs.osd.$id" ceph-osd -f -c "$CONF" -i "$id" --mkfs --osd-uuid "$uuid" \
    --no-mon-config >>"$DIR/log/osd.$id.out" 2>&1 || die "ceph-osd --mkfs failed for osd.$id"
  ceph_cli osd new "$uuid" "$id" >/dev/null
  launch "osd.$id" ceph-osd -f -c "$CONF" -i "$id"
}

# start_failed: start's EXIT trap. After a failure or a signal, ends the
# OSD jobs first (so none launches a daemon after this), then stops every
# process recorded so far (daemons, and tools such as a running mkfs);
# DIR stays for its logs.
OSD_JOBS=()
start_failed() {
  local rc=$? pid
  ((rc != 0)) || return 0
  say "start failed; stopping what was started"
  for pid in "${OSD_JOBS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${OSD_JOBS[@]}"; do wait "$pid" 2>/dev/null || true; done
  tail_logs
  stop_daemons
}

cmd_start() {
  local osds=${1:-1}
  local store=${CEPH_OBJECTSTORE:-memstore}
  [[ $osds =~ ^[1-9][0-9]?$ ]] || die "OSDS must be 1-99, got '$osds'"
  [[ $store == memstore || $store == bluestore ]] ||
    die "CEPH_OBJECTSTORE must be memstore or bluestore, got '$store'"
  if [[ -e $DIR ]]; then
    [[ -d $DIR && -z $(ls -A "$DIR") ]] || die "$DIR exists and is not empty"
  fi
  local sock="$DIR/run/ceph-osd.$osds.4194304.asok"
  ((${#sock} < 108)) || die "DIR is too long for a unix socket path: $DIR"
  for tool in ceph ceph-mon ceph-mgr ceph-osd ceph-authtool monmaptool rados; do
    command -v "$tool" >/dev/null || die "missing $tool: run mount-scripts/deps.sh"
  done

  START_TIMEOUT=${CEPH_START_TIMEOUT:-120}
  DEADLINE=$((SECONDS + START_TIMEOUT))
  local i fsid port
  T0=$(now_ms)
  # Whatever goes wrong from here on, leave nothing running.
  trap start_failed EXIT
  trap 'exit 130' INT TERM

  mkdir -p "$DIR"
  : >"$DIR/$MARKER"
  mkdir -p "$DIR"/{run,log,crash,mon.a,mgr.x}
  : >"$DIR/pids"
  fsid=$(cat /proc/sys/kernel/random/uuid)
  port=${CEPH_MON_PORT:-$(free_port)}
  write_conf "$fsid" "$port" "$store"

  # Every key, with its caps, goes into the keyring the monitor is created
  # from; the monitor imports them all, so no `ceph auth` round trips later.
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  add_key client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *'
  add_key mgr.x --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *'
  for ((i = 0; i < osds; i++)); do
    add_key "osd.$i" --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *'
  done
  chmod 600 "$DIR/keyring"

  step "mon mkfs"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" -i a --mkfs --monmap "$DIR/monmap" --keyring "$DIR/keyring" \
    >>"$DIR/log/mon.a.out" 2>&1 || die "ceph-mon --mkfs failed (see $DIR/log/mon.a.out)"
  step "mon and mgr start"
  launch mon.a ceph-mon -f -c "$CONF" -i a
  launch mgr.x ceph-mgr -f -c "$CONF" -i x

  # Each OSD is brought up by its own job while the monitor starts: mkfs
  # needs only the fsid from ceph.conf; `osd new` waits for the monitor.
  step "osd mkfs, osd new, osd start; pool create"
  for ((i = 0; i < osds; i++)); do
    start_osd "$i" &
    OSD_JOBS[i]=$!
  done
  ceph_cli osd pool create "$CHECK_POOL" 1 1 >/dev/null
  for ((i = 0; i < osds; i++)); do
    wait "${OSD_JOBS[i]}" || die "osd.$i did not start (see $DIR/log/osd.$i.out)"
  done
  OSD_JOBS=()

  step "first write"
  # A client whose op has no OSD to go to asks for a newer map only every
  # objecter tick (5 s by default); tick fast so the probe notices the first
  # OSD to come up.
  printf 'written by cluster.sh start\n' >"$DIR/probe"
  poll "a write to pool $CHECK_POOL" recorded probe rados -c "$CONF" --objecter-tick-interval 0.1 \
    -p "$CHECK_POOL" put probe "$DIR/probe"
  # One OSD took the write; a test that stops an OSD needs all of them up.
  if ((osds > 1)); then
    step "all OSDs up"
    poll "$osds OSDs up" all_osds_up "$osds"
  fi

  trap - EXIT INT TERM
  local ms=$(($(now_ms) - T0))
  printf 'cluster.sh: writable after %d.%03d s: %d OSD(s), %s, mon 127.0.0.1:%s, conf %s\n' \
    $((ms / 1000)) $((ms % 1000)) "$osds" "$store" "$port" "$CONF"
}

tail_logs() {
  local f
  for f in "$DIR"/log/*.out "$DIR"/log/*.log; do
    [[ -s $f ]] || continue
    say "--- last lines of $f"
    tail -n 5 "$f" >&2
  done
}

# stop_daemons: SIGTERM to every recorded PID that is still ours, then wait;
# SIGKILL what is left after the timeout. OSDs and the manager go first: an
# OSD that is told to stop tells the monitor and waits (up to 5 s) for it.
stop_daemons() {
  [[ -f $DIR/pids ]] || return 0
  local name pid others=() mons=()
  while read -r name pid; do
    [[ $pid =~ ^[0-9]+$ ]] || continue
    if [[ $name == mon.* ]]; then mons+=("$pid"); else others+=("$pid"); fi
  done <"$DIR/pids"
  stop_pids "${others[@]}"
  stop_pids "${mons[@]}"
}

# stop_pids PID...: stops those of the PIDs that are ours.
stop_pids() {
  local pid pids=() deadline
  for pid; do
    if ours "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  deadline=$((SECONDS + ${CEPH_STOP_TIMEOUT:-15}))
  for pid in "${pids[@]}"; do
    while ours "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
    if ours "$pid"; then
      say "pid $pid did not exit after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while ours "$pid"; do sleep 0.05; done
    fi
  done
}

cmd_stop() {
  [[ -d $DIR ]] || return 0
  stop_daemons
  if [[ ${CEPH_KEEP_DIR:-} != 1 && ${KEEP:-} != 1 && -f $DIR/$MARKER ]]; then
    # A second try: an OSD's mkfs cut short by a failed start may still be
    # writing into DIR for a moment.
    rm -rf "$DIR" 2>/dev/null || rm -rf "$DIR" || say "could not remove $DIR"
  fi
}

cmd_status() {
  [[ -f $DIR/pids ]] || die "no cluster in $DIR"
  local name pid running=0
  while read -r name pid; do
    [[ $name != run.* ]] || continue  # a tool start or pool ran
    if ours "$pid"; then
      echo "$name pid $pid running"
      running=$((running + 1))
    else
      echo "$name pid $pid gone"
    fi
  done <"$DIR/pids"
  ((running > 0)) || exit 1
  timeout 20 ceph -c "$CONF" --connect-timeout 10 -s
}

cmd_pool() {
  local name=${1:-}
  [[ -n $name ]] || usage
  shift
  local size='' min_size='' pg_num=8 max_bytes='' max_objects=
  while (($#)); do
    [[ ${2:-} =~ ^[0-9]+$ ]] || die "$1 needs a number"
    case $1 in
      --size) size=$2 ;;
      --min-size) min_size=$2 ;;
      --pg-num) pg_num=$2 ;;
      --max-bytes) max_bytes=$2 ;;
      --max-objects) max_objects=$2 ;;
      *) die "unknown pool option $1" ;;
    esac
    shift 2
  done
  [[ -f $CONF ]] || die "no cluster in $DIR"
  START_TIMEOUT=${CEPH_START_TIMEOUT:-120}
  DEADLINE=$((SECONDS + START_TIMEOUT))
  if ! ceph_cli osd pool ls | grep -qx "$name"; then
    ceph_cli osd pool create "$name" "$pg_num" "$pg_num" replicated ${size:+--size "$size"} >/dev/null
  elif [[ -n $size ]]; then
    ceph_cli osd pool set "$name" size "$size" >/dev/null
  fi
  [[ -z $min_size ]] || ceph_cli osd pool set "$name" min_size "$min_size" >/dev/null
  ceph_cli osd pool application enable "$name" upfs >/dev/null
  # The probe goes before the quota, which it might not fit.
  printf 'written by cluster.sh pool\n' >"$DIR/probe"
  poll "a write to pool $name" recorded probe rados -c "$CONF" -p "$name" put cluster-sh-probe "$DIR/probe"
  recorded rados rados -c "$CONF" -p "$name" rm cluster-sh-probe >/dev/null
  [[ -z $max_bytes ]] || ceph_cli osd pool set-quota "$name" max_bytes "$max_bytes" >/dev/null
  [[ -z $max_objects ]] || ceph_cli osd pool set-quota "$name" max_objects "$max_objects" >/dev/null
}

(($# >= 2)) || usage
cmd=$1
DIR=$(realpath -m -- "$2")
CONF=$DIR/ceph.conf
shift 2
case $cmd in
  start) cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  pool) cmd_pool "$@" ;;
  *) usage ;;
esac
