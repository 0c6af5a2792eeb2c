#!/usr/bin/env bash
# Runs the data-parallel tests under mpirun (Open MPI), in a build configured with
# -DUR_MPI=ON. Usage: run_mpi.sh PART SOURCE_DIR BINARY_DIR
#   equiv        tests/mpi/dist_equiv on 2 and 3 ranks and alone
#   killed_rank  a rank killed mid-run ends the job, with mpirun's report, in bounded time
#   examples     char_rnn, tagger, classify, treenet on 2 ranks report one set of metrics
#   resume       a checkpoint of a 2-rank run resumes on 1 rank and the other way round
#   docs         every ```sh block of docs/distributed.md marked <!-- mpi-check --> runs
#                and succeeds, as written (from a scratch root where ./build-mpi is
#                BINARY_DIR and ../shared the data folder's parent)
# Every mpirun runs under `timeout`, so a hang fails the test instead of blocking CI.
set -uo pipefail
part=$1 src=$(cd "$2" && pwd) bin=$(cd "$3" && pwd)
cd "$bin" || exit 1
export OMP_NUM_THREADS=1
# Loopback on one machine: more ranks than cores are allowed, no binding (the
# machine is shared), and root may run mpirun in containers.
MPIRUN=(mpirun --oversubscribe --bind-to none)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
# Containers often forbid the cross-memory attach that Open MPI's shared-memory
# transport uses for large messages: plain copies work everywhere.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
die() { echo "FAIL $*"; fail=1; }

run_equiv() {
    for np in 2 3; do
        timeout 120 "${MPIRUN[@]}" -np "$np" bin/dist_equiv >"$tmp/out" 2>&1 || die "dist_equiv on $np ranks"
        cat "$tmp/out"
        grep -q "^dist_equiv: $np rank(s).*bit-identical" "$tmp/out" || die "dist_equiv on $np ranks: no result line"
    done
    # alone, without mpirun (an MPI singleton)
    timeout 60 bin/dist_equiv >"$tmp/out" 2>&1 || die "dist_equiv alone"
    cat "$tmp/out"
    grep -q "^dist_equiv: 1 rank(s)" "$tmp/out" || die "dist_equiv alone: no result line"
}

run_killed_rank() {
    local start=$SECONDS code
    timeout 60 "${MPIRUN[@]}" -np 2 bin/dist_kill >"$tmp/out" 2>&1
    code=$?
    cat "$tmp/out"
    echo "exit status $code after $((SECONDS - start)) s"
    [ "$code" = 124 ] && die "the job hung: still running after 60 s"
    [ "$code" = 0 ] && die "the job succeeded although a rank was killed"
    grep -q "rank 1 kills itself" "$tmp/out" || die "the rank did not reach its kill"
    grep -Eqi "signal 9|killed" "$tmp/out" || die "mpirun did not report the killed rank"
    # a rank that leaves with an error status ends the job too
    start=$SECONDS
    timeout 60 "${MPIRUN[@]}" -np 2 bin/dist_kill exit >"$tmp/out" 2>&1
    code=$?
    cat "$tmp/out"
    echo "exit status $code after $((SECONDS - start)) s"
    [ "$code" = 124 ] && die "the job hung after a rank's exit: still running after 60 s"
    [ "$code" = 0 ] && die "the job succeeded although a rank exited with status 3"
    grep -q "rank 1 exits with status 3" "$tmp/out" || die "the rank did not reach its exit"
    grep -q "non-zero exit code" "$tmp/out" || die "mpirun did not report the rank's exit status"
}

data=${UR_DATA_DIR:-$src/../shared/data}
CHAR=(bin/char_rnn --hidden 32 --embed 16 --batch 8 --bptt 16 --gen-bytes 20000 --sample 0 --eval-every -1 --json)
TAG=(bin/tagger --train "$data/ud-en-ewt/en_ewt-ud-train.conllu" --dev "$data/ud-en-ewt/en_ewt-ud-dev.conllu"
     --limit 200 --hidden 16 --word-dim 16 --batch 8 --dropout 0 --word-dropout 0 --json)
CLS=(bin/classify --train "$data/sst/train.txt" --dev "$data/sst/dev.txt" --limit 200 --hidden 16 --embed 16
     --batch 8 --dropout 0 --word-dropout 0 --json)
TREE=(bin/treenet --data-dir "$data/sst" --dim 16 --batch-trees 9 --dropout 0 --json)

# json_array LINE KEY: the numbers of an array value, one per line
json_array() { perl -ne 'print join("\n", split(/,\s*/, $1)), "\n" if /"'"$2"'": \[([^\]]*)\]/' <<< "$1"; }
json_number() { perl -ne 'print "$1\n" if /"'"$2"'": (-?[0-9.eE+-]+|null)/' <<< "$1"; }
# close A B TOL: two lists of numbers agree within TOL relative (and have the same length)
close() {
    paste <(echo "$1") <(echo "$2") | awk -v tol="$3" '
        { n++; if (NF != 2) bad = 1; d = $1 - $2; if (d < 0) d = -d; m = ($2 < 0 ? -$2 : $2); if (m < 1) m = 1
          if (d / m > worst) worst = d / m }
        END { printf "%d values, largest relative difference %.2g (bound %g)\n", n, worst, tol; exit (bad || n == 0 || worst > tol) }'
}
# run NAME NP CMD...: the last line of stdout, checked to be the only JSON line
run() {
    local name=$1 np=$2
    shift 2
    if ! timeout 120 "${MPIRUN[@]}" -np "$np" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"; then
        die "$name on $np rank(s): exit status $?"; tail -n 20 "$tmp/$name.err"; return 1
    fi
    [ "$(grep -c '^{"example"' "$tmp/$name.out")" = 1 ] || die "$name on $np rank(s): not exactly one JSON line"
    tail -n 1 "$tmp/$name.out"
}

# Each example on 2 ranks and on 1: one set of metrics, the same losses (shares of a
# batch give the batch's gradient; float rounding differs) and validation figures.
check_example() { # NAME VALKEY CMD...
    local name=$1 key=$2
    shift 2
    local one two
    one=$(run "$name-1" 1 "$@" --steps 12) || return
    two=$(run "$name-2" 2 "$@" --steps 12) || return
    grep -q "step 12/12" "$tmp/$name-2.err" && [ "$(grep -c 'step 12/12' "$tmp/$name-2.err")" = 1 ] ||
        die "$name: the progress line is not printed once"
    echo -n "$name, losses of 12 steps, 1 vs 2 ranks: "
    close "$(json_array "$one" losses)" "$(json_array "$two" losses)" 1e-4 || die "$name: 2 ranks differ from 1"
    echo -n "$name, $key: "
    close "$(json_number "$one" "$key")" "$(json_number "$two" "$key")" 1e-4 || die "$name: $key differs"
}

run_examples() {
    check_example char_rnn val_loss "${CHAR[@]}"
    if [ -f "$data/ud-en-ewt/en_ewt-ud-train.conllu" ] && [ -f "$data/sst/train.txt" ]; then
        check_example tagger dev_loss "${TAG[@]}"
        check_example classify dev_loss "${CLS[@]}"
        check_example treenet dev_loss "${TREE[@]}"
    else
        echo "skipped tagger, classify, treenet: $data has no ud-en-ewt or sst (set UR_DATA_DIR)"
    fi
}

# A checkpoint written by N ranks continues on M: 6 steps on N ranks, --save, then
# --load and 6 more on M ranks, against 12 steps in one run on M ranks.
check_resume() { # NAME N M CMD...
    local name=$1 n=$2 m=$3
    shift 3
    local full part
    full=$(run "$name-full$m" "$m" "$@" --steps 12) || return
    run "$name-first$n" "$n" "$@" --steps 6 --save "$tmp/$name.safetensors" >/dev/null || return
    part=$(run "$name-rest$m" "$m" "${@:1:1}" --load "$tmp/$name.safetensors" --steps 12 --json) || return
    [ "$(json_number "$part" step)" = 12 ] || die "$name: the resumed run did not end at step 12"
    echo -n "$name, saved on $n rank(s), resumed on $m, steps 7-12: "
    close "$(json_array "$full" losses | tail -n 6)" "$(json_array "$part" losses)" 1e-4 ||
        die "$name: resuming across rank counts changed the run"
}

run_resume() {
    check_resume char_rnn 2 1 "${CHAR[@]}"
    check_resume char_rnn 1 2 "${CHAR[@]}"
    if [ -f "$data/ud-en-ewt/en_ewt-ud-train.conllu" ]; then
        check_resume tagger 2 1 "${TAG[@]}"
        check_resume tagger 1 2 "${TAG[@]}"
    else
        echo "skipped tagger: $data has no ud-en-ewt (set UR_DATA_DIR)"
    fi
}

# The doc's commands are those a user types, with no root or binding flags: the
# same settings come from Open MPI's environment variables here.
run_docs() {
    local root="$tmp/root" n=0
    mkdir -p "$root"
    ln -s "$(cd "$bin" && pwd)" "$root/build-mpi"
    ln -s "$(cd "$data/.." && pwd)" "$tmp/shared"
    awk '/<!-- mpi-check -->/ {arm=1; next} arm && /^```sh/ {on=1; arm=0; next} on && /^```/ {on=0; next}
         on {print} !on && !/^[ \t]*$/ {arm=arm && /^```sh/}' "$src/docs/distributed.md" >"$tmp/cmds"
    while IFS= read -r cmd; do
        [ -z "$cmd" ] && continue
        n=$((n + 1))
        echo "\$ $cmd"
        if ! (cd "$root" && OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
              OMPI_MCA_rmaps_base_oversubscribe=1 env -u OMP_NUM_THREADS timeout 300 bash -c "$cmd" </dev/null >"$tmp/doc.out" 2>&1); then
            die "docs/distributed.md: the command failed: $cmd"; tail -n 20 "$tmp/doc.out"
        fi
        tail -n 1 "$tmp/doc.out" | cut -c1-200
    done <"$tmp/cmds"
    [ "$n" -gt 0 ] || die "docs/distributed.md: no command marked <!-- mpi-check -->"
}

case "$part" in
    equiv) run_equiv ;;
    killed_rank) run_killed_rank ;;
    examples) run_examples ;;
    resume) run_resume ;;
    docs) run_docs ;;
    *) echo "usage: run_mpi.sh equiv|killed_rank|examples|resume|docs SOURCE_DIR BINARY_DIR" >&2; exit 2 ;;
esac
[ "$fail" = 0 ] && echo "ok: mpi $part"
exit "$fail"
