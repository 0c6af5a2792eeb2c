#!/usr/bin/env bash
# Runs the data-parallel tests under mpirun (Open MPI), in a build configured with
# -DUR_MPI=ON. Usage: run_mpi.sh PART SOURCE_DIR BINARY_DIR
#   equiv        tests/mpi/dist_equiv on 2 and 3 ranks and alone
#   killed_rank  a rank killed mid-run ends the job, with mpirun's report, in bounded time
#   examples     char_rnn, tagger, classify, treenet on 2 ranks report one set of metrics
#   resume       a checkpoint of a 2-rank run resumes on 1 rank and the other way round
# Every mpirun runs under `timeout`, so a hang fails the test instead of blocking CI.
set -uo pipefail
part=$1 src=$2 bin=$3
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
}

case "$part" in
    equiv) run_equiv ;;
    killed_rank) run_killed_rank ;;
    examples) run_examples ;;
    resume) run_resume ;;
    *) echo "usage: run_mpi.sh equiv|killed_rank|examples|resume SOURCE_DIR BINARY_DIR" >&2; exit 2 ;;
esac
[ "$fail" = 0 ] && echo "ok: mpi $part"
exit "$fail"
