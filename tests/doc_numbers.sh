#!/usr/bin/env bash
# Re-runs the commands quoted in docs/*.md and fails when their output no longer
# matches the output quoted beside them. Usage: doc_numbers.sh SOURCE_DIR BINARY_DIR
#
# Usage: doc_numbers.sh SOURCE_DIR BINARY_DIR [--long]
#
# The convention, in any docs/*.md:
#   <!-- check -->          on the line before a ```sh block: this block is run
#   <!-- check long -->     the same for a run of minutes (training on real data): such
#                           blocks run only with --long (ctest -L long), and are skipped,
#                           saying so, when a file under ../shared/data they name is absent
#   ```sh ... ```           the commands, written as from the repository root
#                           (./build/bin/hello_rnn ...)
#   ```text ... ```         if it follows at once (blank lines allowed): the output quoted
# The commands run in a scratch directory where ./build is the BINARY_DIR,
# ../shared is the shared folder beside SOURCE_DIR (when there is one) and
# ./docs/img is empty. Afterwards every file they wrote to docs/img must match the
# committed file of the same name in SOURCE_DIR/docs/img.
#
# Matching (outputs and files): line by line, the same number of lines. Each line is
# split into numbers and the text between them. Text must be equal (ignoring
# whitespace). Integers must be equal. A number with a decimal point or an exponent
# may differ from the quoted one by max(1e-3 * |quoted|, 2 units of its last printed
# digit): "0.0350" allows 0.0348..0.0352, "5.721e-03" allows 5.715e-03..5.727e-03.
# This absorbs the last-bit differences between SIMD paths, nothing more.
#
# Numbers quoted in prose, written in backticks (`5.721e-03`), must appear in one of
# the same file's ```text blocks, so prose cannot drift from the outputs either.
set -uo pipefail
src=$1 bin=$2 long=${3:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/doc-numbers.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/docs/img"
ln -s "$(cd "$bin" && pwd)" "$work/root/build"
[ -d "$src/../shared" ] && ln -s "$(cd "$src/../shared" && pwd)" "$work/shared"

# compare QUOTED ACTUAL: exit status 0 when they match; the first difference on stdout.
compare() {
    awk -v quoted="$1" -v actual="$2" '
    function split_line(s, kind, val,    n, pre) {
        n = 0
        while (match(s, /-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/)) {
            pre = substr(s, 1, RSTART - 1); gsub(/[ \t\r]+/, "", pre)
            if (pre != "") { n++; kind[n] = "t"; val[n] = pre }
            n++; kind[n] = "n"; val[n] = substr(s, RSTART, RLENGTH)
            s = substr(s, RSTART + RLENGTH)
        }
        gsub(/[ \t\r]+/, "", s)
        if (s != "") { n++; kind[n] = "t"; val[n] = s }
        return n
    }
    function tolerance(w,    m, e, dec, p, ulp, t) {
        if (w !~ /[.eE]/) return 0
        m = w; e = 0
        if (match(w, /[eE]/)) { m = substr(w, 1, RSTART - 1); e = substr(w, RSTART + 1) + 0 }
        p = index(m, "."); dec = p ? length(m) - p : 0
        ulp = 10 ^ (e - dec)
        t = 1e-3 * (w < 0 ? -w : w)
        return t > 2 * ulp ? t : 2 * ulp
    }
    function same(a, b,    ka, va, kb, vb, na, nb, i, d) {
        na = split_line(a, ka, va); nb = split_line(b, kb, vb)
        if (na != nb) return 0
        for (i = 1; i <= na; i++) {
            if (ka[i] != kb[i]) return 0
            if (ka[i] == "t") { if (va[i] != vb[i]) return 0; continue }
            d = (va[i] + 0) - (vb[i] + 0); if (d < 0) d = -d
            if (d > tolerance(va[i])) return 0
        }
        return 1
    }
    BEGIN {
        nq = 0; while ((getline l < quoted) > 0) q[++nq] = l
        na = 0; while ((getline l < actual) > 0) a[++na] = l
        for (i = 1; i <= (nq > na ? nq : na); i++) {
            if (i > nq || i > na || !same(q[i], a[i])) {
                printf "    line %d\n    expected: %s\n    now:      %s\n", i, (i <= nq ? q[i] : "(none)"), (i <= na ? a[i] : "(none)")
                exit 1
            }
        }
        if (nq == 0) { print "    empty"; exit 1 }
    }'
}

n=0 failed=0 skipped=0
for md in "$src"/docs/*.md; do
    name=$(basename "$md" .md)
    blocks="$work/$name"
    mkdir -p "$blocks"
    # Writes cmd_N.sh for each checked ```sh block and, when the next fenced block
    # is ```text, want_N.txt; all ```text blocks also go to texts.txt.
    awk -v dir="$blocks" '
        /^<!-- check -->[ \t]*$/ { armed = 1; next }
        /^<!-- check long -->[ \t]*$/ { armed = 2; next }
        !inblock && /^```/ {
            lang = substr($0, 4); gsub(/[ \t]/, "", lang)
            inblock = 1; out = ""
            if (lang == "sh" && armed) {
                k++; out = dir "/cmd_" k ".sh"; pending = k
                if (armed == 2) printf "" > (dir "/long_" k)
            }
            else if (lang == "text" && pending) { out = dir "/want_" pending ".txt"; pending = 0 }
            else if (lang == "sh" || lang == "c") pending = 0
            if (lang == "text") texts = 1
            armed = 0
            if (out != "") printf "" > out
            next
        }
        inblock && /^```[ \t]*$/ { inblock = 0; texts = 0; if (out != "") close(out); out = ""; next }
        inblock { if (out != "") print > out; if (texts) print > (dir "/texts.txt"); next }
        /[^ \t]/ { armed = 0; pending = 0 }
    ' "$md"
    for cmd in "$blocks"/cmd_*.sh; do
        [ -e "$cmd" ] || continue
        k=${cmd##*/cmd_}; k=${k%.sh}
        limit=60
        if [ -e "$blocks/long_$k" ]; then
            if [ "$long" != --long ]; then
                echo "skip docs/$name.md block $k (a long run; doc_numbers_long runs it): $(head -n 1 "$cmd")"
                skipped=$((skipped + 1)); continue
            fi
            limit=3600
        elif [ "$long" = --long ]; then
            continue
        fi
        missing=$(grep -oE '\.\./shared/data/[^ ]+' "$cmd" | while read -r f; do
            [ -e "$work/root/$f" ] || echo "$f"; done | head -n 1)
        if [ -n "$missing" ]; then
            echo "skip docs/$name.md block $k: $missing is absent"; skipped=$((skipped + 1)); continue
        fi
        n=$((n + 1))
        got="$blocks/got_$k.txt"
        if ! (cd "$work/root" && timeout $limit bash -e -o pipefail "$cmd" > "$got" 2> "$got.err"); then
            echo "FAIL docs/$name.md, command block $k exited non-zero:"; sed 's/^/    /' "$cmd"; tail -n 5 "$got.err"
            failed=$((failed + 1)); continue
        fi
        if [ -e "$blocks/want_$k.txt" ]; then
            if ! diff_msg=$(compare "$blocks/want_$k.txt" "$got"); then
                echo "FAIL docs/$name.md, the output of command block $k changed:"; sed 's/^/    /' "$cmd"
                echo "$diff_msg"; failed=$((failed + 1)); continue
            fi
        fi
        echo "ok   docs/$name.md block $k: $(head -n 1 "$cmd")"
    done
    # Backticked numbers in the prose must appear in an output block.
    if [ -e "$blocks/texts.txt" ] && [ "$long" != --long ]; then
        awk '/^```/ { inblock = !inblock; next } !inblock' "$md" \
            | grep -oE '`-?[0-9]*\.[0-9]+([eE][-+]?[0-9]+)?`' | tr -d '`' | sort -u > "$blocks/prose.txt" || true
        while read -r num; do
            n=$((n + 1))
            re=$(printf '%s' "$num" | sed 's/[.+]/\\&/g')
            if ! grep -qE "(^|[^0-9.])${re}([^0-9]|\$)" "$blocks/texts.txt"; then
                echo "FAIL docs/$name.md: the number $num in the text appears in no quoted output"
                failed=$((failed + 1))
            fi
        done < "$blocks/prose.txt"
    fi
done

# Files the commands wrote into docs/img must match the committed ones.
for f in "$work/root/docs/img"/*; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    base=$(basename "$f")
    if [ ! -e "$src/docs/img/$base" ]; then
        echo "FAIL docs/img/$base is written by a documented command but not committed"; failed=$((failed + 1))
    elif ! diff_msg=$(compare "$src/docs/img/$base" "$f"); then
        echo "FAIL docs/img/$base differs from what its documented command writes now:"; echo "$diff_msg"
        failed=$((failed + 1))
    else
        echo "ok   docs/img/$base"
    fi
done
echo "$n checks, $failed failed, $skipped skipped"
[ "$failed" = 0 ] && { [ "$n" -gt 0 ] || [ "$long" = --long ]; }
