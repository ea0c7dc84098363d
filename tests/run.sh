#!/usr/bin/env bash
# Builds everything and runs the whole test suite, twice:
#
#   bash tests/run.sh          (as root on Debian 12: installs what is missing)
#
# release    g++, Release, warnings as errors: every suite, the benchmarks built
# sanitized  clang, RelWithDebInfo, every program and test under AddressSanitizer
#            and UndefinedBehaviorSanitizer (the load generator, which has
#            threads, under ThreadSanitizer), and the fuzz targets, each run
#            for FUZZ_SECONDS (default 30) from its seed corpus
#
# Both configure with BACKPLANE_REQUIRE_ALL_SUITES, so a missing dependency is
# an error, not a suite left out. Each build ends with one line: tests run,
# passed, failed, skipped, and the suites built. A skipped test (one this
# machine cannot run: an old kernel, a sandbox) fails the run unless
# ALLOW_SKIPS=1; the skipped tests are listed.
#
# BUILDS (default "release sanitized") chooses the builds; BUILD_DIR (default
# build) is the prefix of their directories (build-release, build-sanitized);
# JOBS (default: the number of cores) the parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/install-deps.sh
backplane_install_deps

prefix=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
read -ra builds <<<"${BUILDS:-release sanitized}"
summary=()
status=0

# run_build NAME CMAKE_ARGS...: configures, builds, tests; adds a line to summary.
run_build() {
  local name=$1 dir=$prefix-$1 log
  shift
  echo "=== $name: configure and build ($dir)"
  cmake -S . -B "$dir" -DBACKPLANE_REQUIRE_ALL_SUITES=ON -DBACKPLANE_WERROR=ON "$@"
  cmake --build "$dir" -j "$jobs"
  echo "=== $name: test"
  log=$dir/ctest-output.txt
  local rc=0
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" 2>&1 | tee "$log" || rc=$?
  local total failed skipped
  total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  failed=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -1)
  skipped=$(grep -c '^[[:space:]]*[0-9]* - .*(Skipped)$' "$log" || true)
  summary+=("$name: tests run ${total:-0}, passed $(( ${total:-0} - ${failed:-0} - skipped )), failed ${failed:-0}, skipped $skipped; suites built: $(sed -n 's/^built: //p' "$dir/backplane-suites.txt")")
  if [ "$skipped" -gt 0 ]; then
    echo "=== $name: skipped tests (this machine could not run them):"
    grep '^[[:space:]]*[0-9]* - .*(Skipped)$' "$log"
    grep -h 'BACKPLANE-SKIP:' "$dir/Testing/Temporary/LastTest.log" | sort -u || true
    [ "${ALLOW_SKIPS:-0}" = 1 ] || rc=1
  fi
  [ "$rc" = 0 ] || status=1
}

for b in "${builds[@]}"; do
  case $b in
    release)
      run_build release -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ ;;
    sanitized)
      run_build sanitized -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
        -DBACKPLANE_SANITIZE=address,undefined -DBACKPLANE_LOADGEN_SANITIZE=thread \
        -DBACKPLANE_FUZZ=ON -DBACKPLANE_FUZZ_SECONDS="${FUZZ_SECONDS:-30}" ;;
    *)
      echo "tests/run.sh: unknown build '$b' (release, sanitized)" >&2
      exit 2 ;;
  esac
done

echo
printf '%s\n' "${summary[@]}"
exit "$status"
