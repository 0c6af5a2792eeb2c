#!/usr/bin/env bash
# Compiles the C code in docs/*.md, and runs it where it has a main().
# Usage: doc_snippets.sh SOURCE_DIR BINARY_DIR CC [FLAGS...]
#
# Rule: in each Markdown file, the ```c blocks, concatenated in order, form one
# translation unit. When the file also shows how to build it - an indented line
# starting with "cc " (the first one counts), written as run from the repository
# root after a build in ./build - that command is run exactly as written, with the
# code saved under the first *.c name it gives and the program named by its -o.
# Otherwise the code is compiled against the double-precision library, with both
# <unroll/unroll.h> and "unroll.h" reachable.
#
# The commands run in a scratch directory where tensor/, autograd/ and nn/ are the
# sources and build/ is BINARY_DIR. There `cc` is CC with FLAGS appended: the flags
# the library was built with (e.g. sanitizers), which a program linking it needs too.
set -euo pipefail
src=$(cd "$1" && pwd) bin=$(cd "$2" && pwd)
cc=$(command -v "$3") || { echo "FAIL no compiler $3"; exit 1; } # a path: the cc below must not run itself
shift 3
work=$(mktemp -d "$bin/doc-snippets.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
{ printf '#!/bin/sh\nexec %q "$@"' "$cc"; [ $# = 0 ] || printf ' %q' "$@"; printf '\n'; } > "$work/bin/cc"
chmod +x "$work/bin/cc"
n=0 failed=0
for md in "$src"/docs/*.md; do
  name=$(basename "$md" .md)
  root="$work/$name"
  mkdir -p "$root"
  for d in tensor autograd nn; do ln -s "$src/$d" "$root/$d"; done
  ln -s "$bin" "$root/build"
  awk '/^```c[ \t]*$/ {on=1; next} /^```/ {on=0} on {print}' "$md" > "$root/snippet.c"
  [ -s "$root/snippet.c" ] || continue
  n=$((n + 1))
  cmd=$(grep -m1 -E '^    cc ' "$md" | sed 's/^    //' || true)
  if [ -n "$cmd" ]; then
    file=$(printf '%s\n' $cmd | grep -m1 -E '\.c$' || true)
    prog=$(printf '%s\n' $cmd | grep -A1 -x -- '-o' | tail -n 1 || true)
    if [ -z "$file" ] || [ -z "$prog" ]; then
      echo "FAIL docs/$name.md: its build command names no .c file or no -o program: $cmd"; failed=$((failed + 1)); continue
    fi
    mv "$root/snippet.c" "$root/$file"
    built=$(cd "$root" && PATH="$work/bin:$PATH" bash -c "$cmd" > "$root/build.log" 2>&1 && echo yes || echo no)
  else
    file=snippet.c prog=snippet link=(build/lib/libunroll_f64.a -lm -o snippet)
    grep -q "int main(" "$root/snippet.c" || link=(-c -o snippet.o) # declarations only
    built=$(cd "$root" && "$work/bin/cc" -std=c11 -O1 -D_POSIX_C_SOURCE=200809L -DUR_DOUBLE -fopenmp \
        -Ibuild/include -Itensor -Iautograd -Inn snippet.c "${link[@]}" \
        > "$root/build.log" 2>&1 && echo yes || echo no)
  fi
  if [ "$built" != yes ]; then
    echo "FAIL docs/$name.md: its C code does not build${cmd:+ with: $cmd}"; cat "$root/build.log"; failed=$((failed + 1)); continue
  fi
  if grep -q "int main(" "$root/$file"; then
    if ! (cd "$root" && timeout 120 "./$prog" > run.out 2>&1); then
      echo "FAIL docs/$name.md: its program exited non-zero:"; tail -n 20 "$root/run.out"; failed=$((failed + 1)); continue
    fi
  fi
  echo "ok   docs/$name.md${cmd:+ (built with: $cmd)}"
done
echo "$n doc files with C code, $failed failed"
[ "$failed" = 0 ]
