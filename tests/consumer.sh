#!/usr/bin/env bash
# Builds a project of its own (tests/consumer/) against unroll in every way
# docs/using.md describes, by running that page's commands exactly as written.
# Usage: consumer.sh SOURCE_DIR BINARY_DIR CC [FLAGS...]
#
# The convention of docs/using.md: every ```sh block runs, in order, in one bash
# session that stops at the first failing command. A ```text block that follows a
# ```sh block at once (blank lines allowed) is that block's output, compared exactly.
# The session starts in a scratch copy of the source tree (links to SOURCE_DIR's
# entries) whose build/ is BINARY_DIR, with HOME an empty scratch directory, so
# "cmake --install build --prefix $HOME/.local" installs the library just built
# there. cc is CC with FLAGS appended (the flags the library was built with, e.g.
# sanitizers), and CFLAGS holds FLAGS for the CMake builds.
set -euo pipefail
src=$(cd "$1" && pwd) bin=$(cd "$2" && pwd)
cc=$(command -v "$3") || { echo "FAIL no compiler $3"; exit 1; } # a path: the cc below must not run itself
shift 3
doc="$src/docs/using.md"
[ -f "$doc" ] || { echo "FAIL docs/using.md does not exist"; exit 1; }
work=$(mktemp -d "$bin/consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root" "$work/home" "$work/bin" "$work/blocks"
for entry in "$src"/* "$src"/.[!.]*; do
  [ -e "$entry" ] || continue
  case "$(basename "$entry")" in build*|.git) continue ;; esac
  ln -s "$entry" "$work/root/$(basename "$entry")"
done
ln -s "$bin" "$work/root/build"
{ printf '#!/bin/sh\nexec %q "$@"' "$cc"; [ $# = 0 ] || printf ' %q' "$@"; printf '\n'; } > "$work/bin/cc"
chmod +x "$work/bin/cc"

# Split the page into blocks: blocks/N.sh, and blocks/N.text when an output follows.
awk -v dir="$work/blocks" '
  /^```sh[ \t]*$/   { n++; f = dir "/" n ".sh"; printf "" > f; on = 1; last = "sh"; next }
  /^```text[ \t]*$/ { if (last == "sh") { f = dir "/" n ".text"; printf "" > f; on = 1 } else on = 2; last = ""; next }
  /^```/            { if (on) { on = 0; next } on = 2; last = ""; next }
  on == 1           { print > f; next }
  on == 2           { next }
  /^[ \t]*$/        { next }
                    { last = "" }' "$doc"
n=$(ls "$work/blocks" | grep -c '\.sh$' || true)
[ "$n" -gt 0 ] || { echo "FAIL docs/using.md has no sh blocks"; exit 1; }

# One session: each block's output goes to its own file, and a marker line after it.
{
  echo 'set -e'
  for i in $(seq 1 "$n"); do
    printf 'exec > %q 2>&1\n' "$work/blocks/$i.out"
    cat "$work/blocks/$i.sh"
    printf '\necho "block %d done" > %q\n' "$i" "$work/blocks/$i.done"
  done
} > "$work/session.sh"
status=0
(cd "$work/root" && env HOME="$work/home" PATH="$work/bin:$PATH" CFLAGS="$*" \
   PKG_CONFIG_PATH= CMAKE_PREFIX_PATH= bash "$work/session.sh") || status=$?

failed=0
for i in $(seq 1 "$n"); do
  first=$(head -n 1 "$work/blocks/$i.sh")
  if [ ! -f "$work/blocks/$i.done" ]; then
    echo "FAIL block $i ($first ...) exited with status $status:"; sed 's/^/    /' "$work/blocks/$i.sh"
    echo "  output:"; tail -n 30 "$work/blocks/$i.out" 2>/dev/null | sed 's/^/    /'
    failed=1; break
  fi
  if [ -f "$work/blocks/$i.text" ] && ! diff -u "$work/blocks/$i.text" "$work/blocks/$i.out" > "$work/diff"; then
    echo "FAIL block $i ($first ...): its output differs from the page:"; sed 's/^/    /' "$work/diff"
    failed=1; continue
  fi
  echo "ok   block $i: $first$( [ -f "$work/blocks/$i.text" ] && echo ' (output checked)')"
done
echo "$n command blocks in docs/using.md, $( [ "$failed" = 0 ] && echo 'all passed' || echo 'a failure')"
[ "$failed" = 0 ]
