#!/usr/bin/env bash
# Applies the steps of docs/writing-an-op.md to a copy of the source tree, builds the
# copy and checks the new op: its gradient-check case (and every other) passes in
# unroll-gradcheck, the op-list and API doc checks pass on the copy, and the doc's
# program runs. A step is a fenced block whose first line is
#   ```LANG append FILE          the block is added at the end of FILE
#   ```LANG after FILE "TEXT"    ... after the first line of FILE containing TEXT
#   ```LANG before FILE "TEXT"   ... before that line
#   ```LANG replace FILE "TEXT"  the first TEXT in FILE becomes the block (one line)
# and the program is the block fenced ```c program.
# Usage: writing_an_op.sh SOURCE_DIR BINARY_DIR CC
set -euo pipefail
src=$1 bin=$2 cc=$3
doc="$src/docs/writing-an-op.md"
work=$(mktemp -d "$bin/writing-an-op.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree="$work/src"
mkdir -p "$tree"
cp -r "$src/CMakeLists.txt" "$src/cmake" "$src/tensor" "$src/autograd" "$src/nn" "$src/examples" "$src/bench" \
      "$src/tests" "$src/docs" "$tree/"

# Split the doc into steps: $work/step.N (the block) and $work/step.N.how (its first line).
awk -v dir="$work" '
  /^```[a-z]+ (append|after|before|replace) / { n++; on = 1; print substr($0, 4) > (dir "/step." n ".how"); next }
  /^```c program[ \t]*$/ { on = 2; next }
  /^```/ { on = 0; next }
  on == 1 { print > (dir "/step." n) }
  on == 2 { print > (dir "/program.c") }' "$doc"
steps=$(ls "$work" | grep -c '\.how$' || true)
[ "$steps" -ge 5 ] || { echo "FAIL docs/writing-an-op.md: found $steps steps"; exit 1; }
[ -s "$work/program.c" ] || { echo "FAIL docs/writing-an-op.md: no program block"; exit 1; }

for i in $(seq "$steps"); do
  read -r lang how file rest < "$work/step.$i.how"
  text=${rest#\"}; text=${text%\"}; text=${text//\\\"/\"}
  f="$tree/$file"
  [ -f "$f" ] || { echo "FAIL step $i: $file does not exist"; exit 1; }
  if [ "$how" = append ]; then cat "$work/step.$i" >> "$f"; continue; fi
  if [ "$how" = replace ]; then
    new=$(cat "$work/step.$i")
    TEXT=$text NEW=$new perl -0777 -i -pe '$n = s/\Q$ENV{TEXT}\E/$ENV{NEW}/; END { exit($n ? 0 : 3) }' "$f" ||
      { echo "FAIL step $i: $file does not contain: $text"; exit 1; }
    continue
  fi
  awk -v text="$text" -v block="$work/step.$i" -v how="$how" '
    function put(  l) { while ((getline l < block) > 0) print l }
    !done && index($0, text) { if (how == "before") put(); print; if (how == "after") put(); done = 1; next }
    { print }
    END { exit done ? 0 : 3 }' "$f" > "$f.new" ||
    { echo "FAIL step $i: no line of $file contains: $text"; exit 1; }
  mv "$f.new" "$f"
done
echo "applied $steps steps of docs/writing-an-op.md to a copy of the tree"

cmake -S "$tree" -B "$tree/build" -DCMAKE_BUILD_TYPE=Release > "$work/cmake.log" 2>&1 ||
  { echo "FAIL configure:"; tail -n 20 "$work/cmake.log"; exit 1; }
cmake --build "$tree/build" -j2 --target unroll-gradcheck > "$work/build.log" 2>&1 ||
  { echo "FAIL build:"; grep -E "error|warning" "$work/build.log" | head -n 20; exit 1; }
if grep -q "warning:" "$work/build.log"; then echo "FAIL the build warns:"; grep "warning:" "$work/build.log"; exit 1; fi

"$tree/build/bin/unroll-gradcheck" > "$work/gradcheck.out" || true
grep -E '^cube +cube +.* PASS$' "$work/gradcheck.out" || { echo "FAIL no passing cube case:"; cat "$work/gradcheck.out"; exit 1; }
tail -n 1 "$work/gradcheck.out"
grep -q ', 0 failed$' "$work/gradcheck.out" || { echo "FAIL unroll-gradcheck reports failures"; exit 1; }

bash "$tree/tests/op_docs_check.sh" "$tree" "$tree/build"
bash "$tree/tests/api_doc_check.sh" "$tree" | tail -n 1

"$cc" -std=c11 -DUR_DOUBLE -fopenmp -I"$tree/tensor" -I"$tree/autograd" -I"$tree/nn" "$work/program.c" \
  "$tree/build/lib/libunroll_f64.a" -lm -o "$work/program"
"$work/program"
echo "docs/writing-an-op.md: every step works"
