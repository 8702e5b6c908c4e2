#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS [TARGET...]: builds the libFuzzer targets with
# clang in build-fuzz/ (-DUPFS_FUZZ=ON: ASan + UBSan + libFuzzer) and runs
# each (default: all of tests/fuzz/CMakeLists.txt's list) for SECONDS,
# starting from a copy of its committed seed corpus in tests/fuzz/corpus/,
# so the repository is never modified. Exits non-zero if any target finds a
# crash, a leak, undefined behaviour, a timeout or an out-of-memory; the
# input that did it is kept in build-fuzz/findings/TARGET/ (reproduce with
# build-fuzz/tests/fuzz/TARGET FILE). Prints each target's execution count.
#
# Environment: UPFS_FUZZ_JOBS (default 1) runs that many fuzzing processes
# per target (libFuzzer's -fork); CC/CXX default to clang/clang++.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { echo "usage: $0 SECONDS [TARGET...]" >&2; exit 2; }
(($# >= 1)) || usage
seconds=$1
shift
[[ $seconds =~ ^[1-9][0-9]*$ ]] || usage
all_targets=(manifest_fuzz finish_fuzz command_line_fuzz records_fuzz)
targets=("${@:-${all_targets[@]}}")

command -v "${CXX:-clang++}" >/dev/null || {
  echo "run.sh: ${CXX:-clang++} not found: run mount-scripts/deps.sh (clang, libclang-rt-dev)" >&2
  exit 1
}
build=build-fuzz
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="${CXX:-clang++}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DUPFS_FUZZ=ON -DUPFS_WERROR=ON -DBUILD_TESTING=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" -j2 --target "${targets[@]}"

fork=()
jobs=${UPFS_FUZZ_JOBS:-1}
((jobs > 1)) && fork=(-fork="$jobs")
work=$(mktemp -d "${TMPDIR:-/tmp}/upfs-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  seeds=tests/fuzz/corpus/$t
  [[ -d $seeds ]] || { echo "run.sh: no seed corpus $seeds" >&2; exit 1; }
  mkdir -p "$work/$t" "$build/findings/$t"
  cp "$seeds"/* "$work/$t/"
  echo "==== $t: ${seconds}s from $(ls "$seeds" | wc -l) seeds"
  rc=0
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: memory that
  # grows with the input beyond reason is a finding too.
  "$build/tests/fuzz/$t" "$work/$t" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 "${fork[@]}" \
    -artifact_prefix="$build/findings/$t/" >"$work/$t.log" 2>&1 || rc=$?
  # One process prints its total at exit; -fork's parent prints "#N:" lines.
  execs=$(awk '/stat::number_of_executed_units/ {n = $2}
               /^#[0-9]+: cov/ {sub(/^#/, "", $1); sub(/:$/, "", $1); n = $1}
               END {print n + 0}' "$work/$t.log")
  if ((rc != 0)); then
    echo "==== $t: FAILED (exit $rc) after $execs executions; its log:"
    grep -avE '^#[0-9]+ +(NEW|REDUCE|pulse)' "$work/$t.log" | tail -n 60
    ls -l "$build/findings/$t/"
    failed+=("$t")
  else
    echo "==== $t: ok, $execs executions in ${seconds}s, corpus $(ls "$work/$t" | wc -l) inputs"
  fi
done
if ((${#failed[@]} > 0)); then
  echo "run.sh: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "run.sh: ${#targets[@]} fuzz targets, ${seconds}s each: no findings"
