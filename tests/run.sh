#!/usr/bin/env bash
# Installs what the test suite needs (as root, with apt-get) and runs all of it:
# the Release build and its tests, the gradient-check tool, and the whole suite
# again under AddressSanitizer + UndefinedBehaviorSanitizer.
#   bash tests/run.sh            # everything
#   UR_SKIP_SANITIZE=1 bash tests/run.sh   # skip the sanitizer pass
#   UR_SKIP_FUZZ=1 bash tests/run.sh       # skip the fuzzers (they need clang)
#   UR_SKIP_MPI=1 bash tests/run.sh        # skip the data-parallel tests (they need Open MPI)
#   UR_FUZZ_SECONDS=60 bash tests/run.sh   # fuzz each harness 60 s (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v cc >/dev/null || missing+=(gcc)
[ -f /usr/include/criterion/criterion.h ] || missing+=(libcriterion-dev)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing: ${missing[*]} -- install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

echo "== build (Release)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
echo "== tests (Release)"
ctest --test-dir build --output-on-failure -j"$jobs" -LE long
echo "== gradient check of every op"
build/bin/unroll-gradcheck | tail -n 1

# Data-parallel training: a separate -DUR_MPI=ON build of only what tests/mpi runs.
if [ "${UR_SKIP_MPI:-0}" != 1 ]; then
  if ! { command -v mpicc && command -v mpirun; } >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing: libopenmpi-dev openmpi-bin"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenmpi-dev openmpi-bin >/dev/null || true
  fi
  if { command -v mpicc && command -v mpirun; } >/dev/null; then
    echo "== MPI tests (build-mpi: -DUR_MPI=ON, mpirun -np 2)"
    # the two commands of docs/distributed.md, then the test programs
    if cmake -S . -B build-mpi -DCMAKE_BUILD_TYPE=Release -DUR_MPI=ON; then
      cmake --build build-mpi -j2 --target char_rnn tagger classify treenet dist_bench
      cmake --build build-mpi -j"$jobs" --target dist_equiv dist_kill
      ctest --test-dir build-mpi -L mpi --output-on-failure
    else
      echo "== MPI tests skipped: CMake found no usable MPI (its messages are above)" >&2
    fi
  else
    echo "== MPI tests skipped: Open MPI is missing (apt-get install libopenmpi-dev openmpi-bin)" >&2
  fi
fi

if [ "${UR_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== build (AddressSanitizer + UndefinedBehaviorSanitizer)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUR_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  echo "== tests (sanitizers)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE long
fi
if [ "${UR_SKIP_FUZZ:-0}" != 1 ]; then
  # libFuzzer needs clang with its runtime; the library also needs OpenMP for clang.
  fuzz_probe() {
    printf '#include <omp.h>\n#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return omp_get_max_threads() < 0; }\n' |
      clang -x c -fopenmp -fsanitize=fuzzer,address,undefined -o /tmp/ur-fuzz-probe.$$ - >/dev/null 2>&1
    local ok=$?
    rm -f /tmp/ur-fuzz-probe.$$
    return $ok
  }
  if ! fuzz_probe && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing: clang libomp-dev"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libomp-dev >/dev/null || true
    if ! fuzz_probe && command -v clang >/dev/null; then
      v=$(clang -dumpversion | cut -d. -f1)
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "libclang-rt-$v-dev" "libomp-$v-dev" >/dev/null || true
    fi
  fi
  if fuzz_probe; then
    echo "== fuzzing (tests/fuzz/run.sh, ${UR_FUZZ_SECONDS:-20} s per harness)"
    bash tests/fuzz/run.sh "${UR_FUZZ_SECONDS:-20}"
  else
    echo "== fuzzing skipped: clang with libFuzzer and OpenMP is missing (apt-get install clang libomp-dev)" >&2
  fi
fi
echo "== all tests passed"
