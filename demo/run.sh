#!/usr/bin/env bash
# Runs the demo.
#
#   bash demo/run.sh          (as root on Debian 12: installs what is missing)
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/install-deps.sh
backplane_install_deps

build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" -j "$(nproc)" --target backplane-scenarios
"$build/demo/backplane-scenarios"
