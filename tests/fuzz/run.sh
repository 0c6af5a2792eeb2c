#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (ASan + UBSan + leak detection) in
# build-fuzz/ and runs each for a bounded time, as many at once as there are cores.
#   bash tests/fuzz/run.sh        # 30 s per harness
#   bash tests/fuzz/run.sh 300    # 5 minutes per harness
# The seed corpora in tests/fuzz/corpus/ are only read: new inputs go to
# build-fuzz/fuzz-work/NAME/corpus, crash inputs to build-fuzz/fuzz-work/NAME/artifacts.
# Exits non-zero when any harness finds a crash, a hang (> 5 s), a leak or runs out
# of memory (> 2 GB); the log says how to reproduce it.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-30}
jobs=$(nproc 2>/dev/null || echo 2)
build=build-fuzz
harnesses=(checkpoint conllu tree text pairs)

echo "== fuzz build (clang, libFuzzer + ASan + UBSan) in $build"
CC=${UR_FUZZ_CC:-clang} cmake -S . -B "$build" -DUR_FUZZ=ON -DUR_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$jobs" --target fuzzers >/dev/null

# One harness: a fresh working corpus seeded from the repository's (read-only) one.
run_one() {
  local name=$1 work="$build/fuzz-work/$1"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  local rc=0
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/bin/fuzz_$name" -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -detect_leaks=1 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    "$work/corpus" "tests/fuzz/corpus/$name" >"$work/log" 2>&1 || rc=$?
  echo "$rc" >"$work/rc"
}

echo "== fuzzing ${#harnesses[@]} harnesses for ${secs} s each, $jobs at a time"
for name in "${harnesses[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_one "$name" &
done
wait

status=0
for name in "${harnesses[@]}"; do
  work="$build/fuzz-work/$name"
  rc=$(cat "$work/rc" 2>/dev/null || echo 1)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -n 1 || true)
  if [ "$rc" = 0 ]; then
    echo "fuzz_$name: ok, ${runs:-?} runs in ${secs} s, ${cov:-cov: ?}, corpus $(ls "$work/corpus" | wc -l) inputs"
  else
    status=1
    echo "fuzz_$name: FAILED (exit $rc); last lines of $work/log:"
    tail -n 40 "$work/log"
    for a in "$work"/artifacts/*; do
      [ -e "$a" ] && echo "  reproduce: $build/bin/fuzz_$name $a"
    done
  fi
done
exit $status
