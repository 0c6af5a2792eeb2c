#!/usr/bin/env bash
# Runs every command of README.md and docs/*.md that starts a program of this project,
# as written, so a renamed flag or a wrong path in the docs fails a test.
# Usage: doc_commands.sh SOURCE_DIR BINARY_DIR
#
# Which commands: each line of a ```sh block (a line ending in \ goes on on the
# next), each line of an indented (4-space) code block or of a ```text block that
# starts a command (an indented one) or a program (./build/bin/X, build-mpi/bin/X,
# ..., behind environment assignments, mpirun, perf record or /usr/bin/time), and
# each command in backticks in the prose that starts a program. A line of two
# commands joined by && counts as two. Under mpirun or perf record the program
# runs alone (one process: tests/mpi runs the marked commands of distributed.md
# under mpirun, in the -DUR_MPI=ON build).
#
# Where: the commands of one page run in order (a --load finds the file an earlier
# --save wrote) in a scratch directory laid out like the repository root: every
# build directory the page names (./build, ./build-mpi, ./build-perf, ...) is
# BINARY_DIR, the same programs built with other options; ../shared is the data
# folder beside SOURCE_DIR when there is one; docs/img is empty. UR_SMOKE_STEPS=1
# caps every training run at 1 update step (examples/common/cli.h), so each
# command takes seconds while its flags, data, model, checkpoint and output run
# for real.
#
# What is not run here says why, in the summary:
#   - commands of ```sh blocks marked <!-- check --> (doc_numbers runs them and
#     compares their output; blocks marked <!-- check long --> are run here too), of docs/using.md (the consumer test runs them) and
#     the first indented cc line of a page (doc_snippets builds the page's code so);
#   - commands whose input files (--data, --train, --dev, --eval, --load,
#     --compare-with, --hostfile, or a program's default data that it names when it
#     fails) are absent on this machine: the files are named.
#     Only the data may be absent (the whole folder ../shared/data), or a file an
#     earlier skipped command of the page writes; any other input must be there;
#   - under mpirun, a program built only with -DUR_MPI=ON (dist_bench);
#   - the commands listed in tests/doc_commands.allow, each under its reason
#     (builds, the whole suite, PyTorch comparisons, profilers); they must parse
#     (bash -n), and so must a script they run with bash.
# Any other command fails the test, as does an entry of the allow list that no
# page has any more.
set -uo pipefail
src=$(cd "$1" && pwd) bin=$(cd "$2" && pwd)
allow_file="$src/tests/doc_commands.allow"
work=$(mktemp -d "${TMPDIR:-/tmp}/doc-commands.XXXXXX")
trap 'rm -rf "$work"' EXIT
export UR_SMOKE_STEPS=1
prog_re='^(\./)?build[-A-Za-z0-9_]*/bin/[^/ ]+$'

squeeze() { tr -s ' \t' '  ' <<<"$1" | sed 's/^ //; s/ $//'; }

# The allow list: "reason: ..." lines, each followed by the commands it covers.
declare -A allowed=() allow_used=()
reason=""
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
        '#'* | '') continue ;;
        reason:*) reason=${line#reason: } ;;
        *) allowed[$(squeeze "$line")]=$reason ;;
    esac
done < "$allow_file"

# extract FILE: "LINE<TAB>MARK<TAB>COMMAND" per command, MARK being check,
# mpi-check, sh (any other ```sh block) or quoted (indented, text block, prose).
extract() {
    awk '
    function emit(line) {
        if (cmd == "") { cline = FNR }
        else line = " " line
        cont = (line ~ /\\[ \t]*$/)
        if (cont) sub(/[ \t]*\\[ \t]*$/, "", line)
        cmd = cmd line
        if (!cont) { printf "%d\t%s\t%s\n", cline, cmark, cmd; cmd = "" }
    }
    # an indented line that starts a command of any kind (classified later)
    function starts_command(l) {
        return starts_program(l) || l ~ /^(cmake|ctest|bash|sh|python3|perf|mpirun|srun|make|cc|gcc) /
    }
    function starts_program(l) {
        return l ~ /^(\.\/)?build[-A-Za-z0-9_]*\/bin\// ||
               l ~ /^(mpirun|srun|\/usr\/bin\/time) .*build[-A-Za-z0-9_]*\/bin\// ||
               l ~ /^([A-Za-z_][A-Za-z0-9_]*=[^ ]* )+(\.\/)?build[-A-Za-z0-9_]*\/bin\//
    }
    /^<!-- (mpi-)?check -->[ \t]*$/ { armed = ($0 ~ /mpi/) ? "mpi-check" : "check"; next }
    /^<!-- check long -->[ \t]*$/ { armed = "sh"; next } # doc_numbers_long is not in the suite: run here
    !fence && /^```/ {
        lang = substr($0, 4); gsub(/[ \t]/, "", lang); fence = 1
        mark = armed != "" ? armed : "sh"; armed = ""; next
    }
    fence && /^```[ \t]*$/ { fence = 0; next }
    fence && lang == "sh" {
        if (cmd == "" && ($0 ~ /^[ \t]*(#|$)/)) next
        cmark = mark; emit($0); next
    }
    fence && lang == "text" { if (starts_program($0)) { cmark = "quoted"; emit($0) } next }
    fence { next }
    /[^ \t]/ { armed = "" }
    /^    / && (blank || indented) {
        indented = 1; l = substr($0, 5)
        if (cmd != "" || starts_command(l)) { cmark = "quoted"; emit(l) }
        blank = 0; next
    }
    { indented = indented && /^[ \t]*$/; blank = /^[ \t]*$/ }
    {
        s = $0
        while (match(s, /`[^`]+`/)) {
            span = substr(s, RSTART + 1, RLENGTH - 2); s = substr(s, RSTART + RLENGTH)
            if (span ~ /^(\.\/)?build[-A-Za-z0-9_]*\/bin\/[^ ]/) printf "%d\tquoted\t%s\n", FNR, span
        }
    }' "$1"
}

n_run=0 n_skip=0 n_other=0 n_fail=0
declare -A why_other=()
note_other() {
    n_other=$((n_other + 1)); why_other[$1]=$((${why_other[$1]:-0} + 1))
    echo "left $where, ${1%%:*}: $(squeeze "$part" | cut -c1-90)"
}
fail() { echo "FAIL $where: $*"; echo "     $part"; n_fail=$((n_fail + 1)); }

# no_data: 0 when this machine has no data folder (../shared/data): only then may
# a command that reads from it be skipped (a missing file inside it is a wrong path).
no_data() { [ ! -d "$root/../shared/data" ]; }

# allow_listed: 0 when $part is in tests/doc_commands.allow (then it must parse, and
# so must a script it runs with bash).
allow_listed() {
    local key
    key=$(squeeze "$part")
    [ -n "${allowed[$key]+x}" ] || return 1
    allow_used[$key]=1
    if ! bash -n -c "$part" 2>/dev/null; then
        fail "an allow-listed command does not parse"
    elif [[ " $key" =~ \ bash\ ([^ ]+\.sh) ]] && ! bash -n "$src/${BASH_REMATCH[1]}"; then
        fail "${BASH_REMATCH[1]} does not parse"
    else
        note_other "allow-listed: ${allowed[$key]}"
    fi
}

# find_program: words[p] becomes the program that $part starts, behind environment
# assignments and a wrapper (wrap: mpirun, perf or /usr/bin/time); envs gets
# mpirun's -x VAR=value, missing an absent --hostfile.
find_program() {
    local i=0
    while [ $i -lt ${#words[@]} ] && [[ ${words[i]} =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do i=$((i + 1)); done
    p=$i wrap=""
    case "${words[i]:-}" in mpirun | perf | /usr/bin/time) wrap=${words[i]} p=$((i + 1)) ;; esac
    while [ -n "$wrap" ] && [ $p -lt ${#words[@]} ] && ! [[ ${words[p]} =~ $prog_re ]]; do
        if [ "$wrap" = mpirun ]; then
            [ "${words[p]}" = -x ] && [[ ${words[p + 1]:-} == *=* ]] && envs+="${words[p + 1]} "
            [ "${words[p]}" = --hostfile ] && [ ! -e "$root/${words[p + 1]:-}" ] && missing+=" ${words[p + 1]:-}"
        fi
        p=$((p + 1))
    done
}

# inputs_ok: 0 when every input file of the program's flags is there. Absent data
# skips the command, and so does a file that a skipped command would have written;
# any other absent input is a wrong path.
inputs_ok() {
    local w v
    for ((w = p + 1; w < ${#words[@]}; w++)); do
        v=${words[w + 1]:-}
        case "${words[w]}" in
            --data | --train | --dev | --eval | --load | --compare-with)
                [ -n "$v" ] && [[ $v != -* ]] && [ ! -e "$root/$v" ] && missing+=" $v" ;;
        esac
    done
    [ -z "$missing" ] && return 0
    for w in $missing; do
        [[ " $skipped_words " == *" $w "* ]] && continue
        if [[ $w == ../shared/data/* ]]; then
            no_data && continue
            fail "reads $w: no such file in ../shared/data (a wrong path, or a data set missing here)"; return 1
        fi
        fail "reads $w, which is not there (no earlier command of the page writes it)"; return 1
    done
    skip "needs files absent here:$missing"
    return 1
}

skip() {
    skipped_words+=" ${words[*]:p}"
    n_skip=$((n_skip + 1)); echo "skip $where: $*"
}

# run_part: classifies and runs one command ($part) of page $page, in $root.
run_part() {
    local words p prog wrap envs="" missing="" run=$part how="" t0=$SECONDS w
    allow_listed && return
    read -ra words <<<"$part"
    find_program
    prog=${words[p]:-}
    if ! [[ $prog =~ $prog_re ]]; then
        fail "not a program of this project and not in tests/doc_commands.allow"; return
    elif [ ! -x "$root/$prog" ]; then
        [ "$wrap" = mpirun ] && { skip "${prog##*/} is built only with -DUR_MPI=ON"; return; }
        fail "no program $prog in $bin"; return
    fi
    inputs_ok || return
    # mpirun and perf record: the program alone (one process), with mpirun's -x
    # variables; /usr/bin/time as written where it is installed
    if [ "$wrap" = mpirun ] || [ "$wrap" = perf ] || { [ "$wrap" = /usr/bin/time ] && [ ! -x /usr/bin/time ]; }; then
        run="$envs$prog${part#*"$prog"}" how=" (without $wrap)"
    fi
    if ! (cd "$root" && timeout 300 bash -o pipefail -c "$run" </dev/null >"$work/out" 2>"$work/err"); then
        # a program's default data (e.g. treenet's ../shared/data/sst) absent here
        w=$(grep -oE "\.\./shared/[^ '\":]+" "$work/err" | head -n 1)
        if [ -n "$w" ] && [ ! -e "$root/$w" ] && no_data; then
            skip "needs files absent here: $w (a default of ${prog##*/})"; return
        fi
        fail "exited non-zero$how"; tail -n 5 "$work/err" | sed 's/^/     | /'; return
    fi
    n_run=$((n_run + 1))
    echo "ok   $where$how, $((SECONDS - t0)) s: $(squeeze "$part" | cut -c1-100)"
}

for md in "$src/README.md" "$src"/docs/*.md; do
    page=${md#"$src"/}
    base=$work/$(tr / _ <<<"$page")
    root=$base/root
    mkdir -p "$root/docs/img"
    [ -d "$src/../shared" ] && ln -s "$(cd "$src/../shared" && pwd)" "$base/shared"
    extract "$md" > "$base.cmds"
    skipped_words=""
    first_cc=$(grep -m1 -E '^    cc ' "$md" | sed 's/^    //' || true)
    for d in build $(grep -oE 'build-[A-Za-z0-9_]+/bin/' "$base.cmds" | sed 's#/bin/$##' | sort -u); do
        ln -s "$bin" "$root/$d"
    done
    while IFS=$'\t' read -r line mark cmd; do
        where="$page:$line"
        part=$cmd
        if [ "$mark" = check ] && [ "${page%/*}" = docs ]; then
            note_other "run by doc_numbers (a <!-- check --> block)"; continue
        fi
        if [ "${page%/*}" = docs ] && [ "$(squeeze "$cmd")" = "$(squeeze "$first_cc")" ]; then
            note_other "run by doc_snippets (the first indented cc line of a page)"; continue
        fi
        if [ "$page" = docs/using.md ] && [ "$mark" = sh ]; then
            note_other "run by the consumer test (every sh block of docs/using.md)"; continue
        fi
        # a line "a && b": each part on its own (the build commands are allow-listed)
        rest=$cmd
        while [ -n "$rest" ]; do
            part=${rest%% && *}
            [[ $rest == *" && "* ]] && rest=${rest#* && } || rest=""
            run_part
        done
    done < "$base.cmds"
done

for key in "${!allowed[@]}"; do
    [ -n "${allow_used[$key]+x}" ] && continue
    echo "FAIL tests/doc_commands.allow lists a command no page has: $key"
    n_fail=$((n_fail + 1))
done

echo "== $n_run commands run, $n_skip skipped, $n_other run elsewhere or allow-listed, $n_fail failed"
for r in "${!why_other[@]}"; do printf '   %3d %s\n' "${why_other[$r]}" "$r"; done | sort -k2
[ "$n_fail" = 0 ] && [ "$n_run" -gt 0 ]
