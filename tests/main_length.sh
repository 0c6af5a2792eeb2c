#!/usr/bin/env bash
# Every example program's main() fits in 120 lines (from the `int main(` line to
# the closing brace in column 0), so that a reader sees its training loop whole.
# Setup and reporting belong in named static functions or in examples/common/.
# Usage: main_length.sh SOURCE_DIR
set -euo pipefail
src=${1:-$(dirname "$0")/..}
limit=120
fail=0
for f in "$src"/examples/*.c; do
  name=$(basename "$f")
  n=$(awk '/^int main\(/ { start = NR } start && /^}/ { print NR - start + 1; exit }' "$f")
  [ -n "$n" ] || continue
  if [ "$n" -le "$limit" ]; then
    echo "ok   examples/$name: main() is $n lines"
  else
    echo "FAIL examples/$name: main() is $n lines (limit $limit)"
    fail=1
  fi
done
exit $fail
