#!/usr/bin/env bash
# Fails when a public name is missing from the API reference docs/api.md.
# Usage: api_doc_check.sh SOURCE_DIR
#
# Public headers: tensor/ur_tensor.h, tensor/ur_kernels.h, autograd/ur_tape.h,
# autograd/ur_ops.h, autograd/ur_expr.h, nn/ur_*.h, nn/data/ur_data.h, nn/io/ur_checkpoint.h and nn/unroll.h (never the private *_internal.h).
# With comments removed, the names extracted are
#   functions   every ur_name followed by "(" that is not a pointer typedef "(*ur_name)",
#               and every lowercase macro (#define ur_name)
#   types       every typedef name and struct/enum tag ur_name
#   constants   every UR_NAME (enum values and macros), except include guards (*_H)
# A name counts as documented when it appears in docs/api.md as a whole word. A ur_/UR_
# name in docs/api.md that no public header declares also fails (a stale entry).
set -euo pipefail
src=${1:-$(dirname "$0")/..}
api="$src/docs/api.md"
[ -f "$api" ] || { echo "FAIL docs/api.md does not exist"; exit 1; }

headers=()
for h in "$src"/tensor/ur_tensor.h "$src"/tensor/ur_kernels.h "$src"/autograd/ur_tape.h \
         "$src"/autograd/ur_ops.h "$src"/autograd/ur_expr.h "$src"/nn/ur_*.h "$src"/nn/data/ur_*.h "$src"/nn/io/ur_*.h "$src"/nn/unroll.h; do
    case "$h" in *_internal.h) continue ;; esac
    [ -f "$h" ] && headers+=("$h")
done

# Comment-free text of every header (block comments may span lines).
code=$(cat "${headers[@]}" | perl -0777 -pe 's{/\*.*?\*/}{ }gs; s{//[^\n]*}{}g')

functions=$( { printf '%s\n' "$code" | perl -ne 'while (/(\(\s*\*\s*)?\b(ur_[a-z0-9_]+)\s*\(/g) { print "$2\n" unless $1 }'
               printf '%s\n' "$code" | perl -ne 'print "$1\n" if /^\s*#\s*define\s+(ur_[a-z0-9_]+)/'; } | sort -u)
types=$( { printf '%s\n' "$code" | perl -0777 -ne 'while (/\btypedef\b[^;{]*?(?:\{(?:[^{}]|\{[^{}]*\})*\})?[^;{]*?\b(ur_[a-z0-9_]+)\s*;/gs) { print "$1\n" }'
           printf '%s\n' "$code" | perl -ne 'while (/\b(?:struct|enum)\s+(ur_[a-z0-9_]+)/g) { print "$1\n" }'
           printf '%s\n' "$code" | perl -ne 'while (/\(\s*\*\s*(ur_[a-z0-9_]+)\s*\)/g) { print "$1\n" }'; } | sort -u)
constants=$(printf '%s\n' "$code" | grep -oE '\bUR_[A-Z0-9_]+\b' | grep -vE '_H$' | sort -u)

missing=0 total=0
check() { # KIND NAME...
    local kind=$1; shift
    for name in "$@"; do
        total=$((total + 1))
        if ! grep -qw -- "$name" "$api"; then
            echo "missing from docs/api.md: $kind $name"
            missing=$((missing + 1))
        fi
    done
}
# shellcheck disable=SC2086
check function $functions
# shellcheck disable=SC2086
check type $types
# shellcheck disable=SC2086
check constant $constants
# The other way round: a name in docs/api.md that no header declares any more.
stale=0
known=$(printf '%s\n' "$functions" "$types" "$constants" | sort -u)
# (File names such as ur_tape.h and patterns such as ur_node_* are not names.)
for name in $(grep -oE '\b(ur|UR)_[A-Za-z0-9_]+(\.h\b|\*)?' "$api" | grep -vE '(\.h|\*)$' | sort -u); do
    if ! grep -qxF -- "$name" <<< "$known"; then
        echo "docs/api.md names $name, which no public header declares"
        stale=$((stale + 1))
    fi
done
echo "${#headers[@]} headers, $total public names, $missing missing from docs/api.md, $stale stale in it"
[ "$missing" = 0 ] && [ "$stale" = 0 ]
