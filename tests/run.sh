#!/usr/bin/env bash
# Builds everything and runs the whole test suite.
#
#   bash tests/run.sh          (as root on Debian 12: installs what is missing)
#
# BUILD_DIR (default build) and JOBS (default: the number of cores) may be set.
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/install-deps.sh
backplane_install_deps

build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs"
