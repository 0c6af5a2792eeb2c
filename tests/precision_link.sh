#!/usr/bin/env bash
# A program and the library must agree on ur_real (UR_DOUBLE): a mismatch must fail
# to link, with the linker naming ur_library_built_with[out]_UR_DOUBLE, and the
# matching pairs must link and run. Checked for the static and the shared libraries.
# Usage: precision_link.sh SOURCE_DIR BINARY_DIR CC [FLAGS...]
set -euo pipefail
src=$(cd "$1" && pwd) bin=$(cd "$2" && pwd) cc=$3
shift 3
work=$(mktemp -d "$bin/precision-link.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat > "$work/prog.c" <<'C'
#include <stdio.h>
#include "unroll.h"
int main(void) {
    ur_tensor *t = ur_tensor_new_1d(3);
    if (!t || ur_tensor_fill(t, (ur_real)0.5) != UR_OK) return 1;
    printf("%d %.2f\n", (int)sizeof(ur_real), (double)t->data[2]);
    ur_tensor_free(t);
    return 0;
}
C
failed=0
# try DEFINE LIBRARY(unroll|unroll_f64) KIND(static|shared) EXPECT(ok|SYMBOL)
try() {
  local def=$1 lib=$2 kind=$3 expect=$4 what="${1:-no -DUR_DOUBLE} + $3 lib$2"
  local link=("$bin/lib/lib$lib.a")
  [ "$kind" = shared ] && link=(-L"$bin/lib" -l"$lib" -Wl,-rpath,"$bin/lib")
  if "$cc" -std=c11 -O2 $def "${flags[@]}" -fopenmp -I"$src/nn" "$work/prog.c" "${link[@]}" -lm \
       -o "$work/prog" > "$work/log" 2>&1; then
    if [ "$expect" != ok ]; then
      echo "FAIL $what: linked, but the precisions differ"; failed=$((failed + 1)); return
    fi
    local want="4 0.50"; [ -n "$def" ] && want="8 0.50"
    local got; got=$("$work/prog" 2>&1 || true)
    if [ "$got" != "$want" ]; then
      echo "FAIL $what: printed '$got', expected '$want'"; failed=$((failed + 1)); return
    fi
    echo "ok   $what: links and runs ($got)"
  else
    if [ "$expect" = ok ]; then
      echo "FAIL $what: does not link:"; cat "$work/log"; failed=$((failed + 1)); return
    fi
    if ! grep -q "$expect" "$work/log"; then
      echo "FAIL $what: the link failed without naming $expect:"; cat "$work/log"; failed=$((failed + 1)); return
    fi
    echo "ok   $what: the link fails naming $expect"
  fi
}
flags=("$@")
for kind in static shared; do
  try ""          unroll     $kind ok
  try -DUR_DOUBLE unroll_f64 $kind ok
  try ""          unroll_f64 $kind ur_library_built_without_UR_DOUBLE
  try -DUR_DOUBLE unroll     $kind ur_library_built_with_UR_DOUBLE
done
[ "$failed" = 0 ]
