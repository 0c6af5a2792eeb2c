#!/usr/bin/env bash
# Compiles the C code in docs/*.md, and runs it where it has a main().
# Rule: in each Markdown file, the ```c blocks, concatenated in order, form one
# translation unit. Usage: doc_snippets.sh SOURCE_DIR BINARY_DIR CC [FLAGS...]
set -euo pipefail
src=$1 bin=$2 cc=$3
shift 3
work=$(mktemp -d "$bin/doc-snippets.XXXXXX")
trap 'rm -rf "$work"' EXIT
n=0 failed=0
for md in "$src"/docs/*.md; do
  name=$(basename "$md" .md)
  awk '/^```c[ \t]*$/ {on=1; next} /^```/ {on=0} on {print}' "$md" > "$work/$name.c"
  [ -s "$work/$name.c" ] || continue
  n=$((n + 1))
  if ! "$cc" -std=c11 -D_POSIX_C_SOURCE=200809L -DUR_DOUBLE "$@" -fopenmp \
      -I"$src/tensor" -I"$src/autograd" -I"$src/nn" "$work/$name.c" \
      "$bin/lib/libunroll_f64.a" -lm -o "$work/$name" 2> "$work/$name.log"; then
    echo "FAIL docs/$name.md: its C code does not compile:"; cat "$work/$name.log"; failed=$((failed + 1)); continue
  fi
  if grep -q "int main(" "$work/$name.c"; then
    if ! (cd "$work" && timeout 120 "./$name" > "$name.out" 2>&1); then
      echo "FAIL docs/$name.md: its program exited non-zero:"; tail -n 20 "$work/$name.out"; failed=$((failed + 1)); continue
    fi
  fi
  echo "ok   docs/$name.md"
done
echo "$n doc files with C code, $failed failed"
[ "$failed" = 0 ]
