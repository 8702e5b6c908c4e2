#!/usr/bin/env bash
# Fails when a C++ file of the repository differs from what clang-format
# makes of it under the top-level .clang-format (Debian 12's clang-format 14,
# installed by mount-scripts/deps.sh). Fix with:
#   git ls-files '*.cc' '*.h' | xargs clang-format -i
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
command -v clang-format >/dev/null || { echo "clang-format is not installed (mount-scripts/deps.sh installs it)" >&2; exit 1; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cc' '*.h')
else
  mapfile -t files < <(find base fs session store tests -name '*.cc' -o -name '*.h' | sort)
fi
((${#files[@]} > 0)) || { echo "no C++ files found under $top" >&2; exit 1; }
if ! clang-format --dry-run --Werror "${files[@]}"; then
  echo "format: the files above differ from .clang-format; run: git ls-files '*.cc' '*.h' | xargs clang-format -i" >&2
  exit 1
fi
echo "format: ${#files[@]} files match .clang-format"
