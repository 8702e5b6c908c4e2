# shellcheck shell=bash
# tests/bench/stats.sh: timing and summary helpers shared by the benchmark
# scripts (small_files.sh, rados_bench.sh). Sourced.

# since T0: seconds from $EPOCHREALTIME value T0 until now.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f", b - a }'; }
# median "X Y ...": the median of space-separated numbers.
median() {
  tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g |
    awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# range "X Y ...": "min-max" of space-separated numbers.
range() { tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'; }
