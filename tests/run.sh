#!/usr/bin/env bash
# Installs what the test suite needs (as root, with apt-get) and runs all of it:
# the Release build and its tests, the gradient-check tool, and the whole suite
# again under AddressSanitizer + UndefinedBehaviorSanitizer.
#   bash tests/run.sh            # everything
#   UR_SKIP_SANITIZE=1 bash tests/run.sh   # skip the sanitizer pass
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
ctest --test-dir build --output-on-failure -j"$jobs"
echo "== gradient check of every op"
build/bin/unroll-gradcheck | tail -n 1

if [ "${UR_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== build (AddressSanitizer + UndefinedBehaviorSanitizer)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUR_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  echo "== tests (sanitizers)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs"
fi
echo "== all tests passed"
