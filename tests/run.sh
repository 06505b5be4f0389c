#!/usr/bin/env bash
# Runs every test: installs what is missing, builds with ASan/UBSan into build-asan/, installs
# the Node test client's locked dependencies, then runs ctest (unit + integration). The output
# ends with ctest's summary; the exit status is non-zero when any test failed.
#   tests/run.sh                 everything
#   tests/run.sh -R cross_node   extra arguments go to ctest (here: only matching tests)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bash deploy/install-deps.sh --test

build="$root/build-asan"
cmake -S "$root" -B "$build" -DSANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j"$(nproc)"
# The optimised build too: it is what deploy/cluster.sh and the bench run, and -O2 enables
# warnings (e.g. -Wformat-truncation) that a Debug build never sees.
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINTEGRATION_TESTS=OFF \
  -DFUZZ_TESTS=OFF >/dev/null
cmake --build "$root/build" -j"$(nproc)"

if [ ! -d tests/node_modules ] || [ tests/package-lock.json -nt tests/node_modules ]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi
# The JavaScript client package's dev dependencies (typescript for tsc --noEmit, ws).
if [ ! -d clients/js/node_modules ] || [ clients/js/package-lock.json -nt clients/js/node_modules ]; then
  (cd clients/js && npm ci --no-audit --no-fund --loglevel=error)
fi

# Sanitizers: any report fails the process that made it; leaks are reported at exit.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=66"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=67"
export LSAN_OPTIONS="exitcode=68"

mkdir -p tests/output
ctest --test-dir "$build" --output-on-failure --timeout 300 -j2 "$@"
