#!/usr/bin/env bash
# Checks what the docs say about the op list autograd/ur_ops.def:
#   - each line's file defines the op's backward rule and the op kind's
#     gradient-check cases (UR_CASES(KIND, ...)) below it;
#   - docs/ops.md has a row (| `ur_name...) for every op kind but LEAF, and no row
#     for an op the list does not have;
#   - docs/api.md lists the kinds UR_OP_... in the list's order;
#   - unroll-gradcheck (when BINARY_DIR is given) runs a case of every kind.
# Usage: op_docs_check.sh SOURCE_DIR [BINARY_DIR]
set -euo pipefail
src=${1:-$(dirname "$0")/..}
bin=${2:-}
def="$src/autograd/ur_ops.def"
fail=0
bad() { echo "FAIL $*"; fail=1; }

# KIND name rule file, one line per op kind
list=$(sed -n 's/^UR_OP(\([A-Z_0-9]*\), "\([a-z_0-9]*\)", \([a-z_0-9]*\), \([a-z_.]*\))$/\1 \2 \3 \4/p' "$def")
n=$(printf '%s\n' "$list" | wc -l)
[ "$n" -eq "$(grep -c '^UR_OP(' "$def")" ] || bad "ur_ops.def has lines this check cannot read"

while read -r kind name rule file; do
  f="$src/autograd/$file"
  [ -f "$f" ] || { bad "$kind: $file does not exist"; continue; }
  grep -q "^void $rule(ur_tape \*t, ur_node \*y)" "$f" || bad "$kind: $file does not define $rule"
  [ "$kind" = LEAF ] && continue
  rule_at=$(grep -n "^void $rule(ur_tape \*t, ur_node \*y)" "$f" | head -n 1 | cut -d: -f1 || true)
  cases_at=$(grep -n "^UR_CASES($kind," "$f" | head -n 1 | cut -d: -f1 || true)
  if [ -z "$cases_at" ]; then bad "$kind: $file has no gradient-check cases for it (UR_CASES($kind, ...))"
  elif [ -n "$rule_at" ] && [ "$cases_at" -lt "$rule_at" ]; then bad "$kind: its cases come before $rule in $file"; fi
  grep -q "^| \`ur_$name[\`(]" "$src/docs/ops.md" || bad "$kind: docs/ops.md has no row for ur_$name"
done <<< "$list"

# rows of docs/ops.md that name an op function the list does not have
for fn in $(sed -n 's/^| `ur_\([a-z_0-9]*\)[`(].*/\1/p' "$src/docs/ops.md" | sort -u); do
  printf '%s\n' "$list" | awk '{print $2}' | grep -x "$fn" > /dev/null || bad "docs/ops.md has a row for ur_$fn, which is no op kind"
done

# docs/api.md: the kinds in order
want=$(printf '%s\n' "$list" | awk '{printf "UR_OP_%s ", $1}')
have=$(sed -n '/^- `ur_op` — one value per op kind/,/;$/p' "$src/docs/api.md" | grep -o 'UR_OP_[A-Z_0-9]*' |
       tr '\n' ' ')
[ "$want" = "$have" ] || bad "docs/api.md lists the op kinds as: $have; ur_ops.def has: $want"

# (grep -x > /dev/null, not grep -q: under pipefail an early exit of grep -q could fail
# the printf before it with SIGPIPE on a loaded machine)
if [ -n "$bin" ]; then
  cases=$("$bin/bin/unroll-gradcheck" | awk 'NR > 1 && NF == 5 {print $2}' | sort -u)
  while read -r kind name rule file; do
    [ "$kind" = LEAF ] && continue
    printf '%s\n' "$cases" | grep -x "$name" > /dev/null || bad "unroll-gradcheck runs no case of $name"
  done <<< "$list"
fi

[ $fail -eq 0 ] && echo "op list: $n op kinds; files, docs/ops.md, docs/api.md and the cases agree"
exit $fail
