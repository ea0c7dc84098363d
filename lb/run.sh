#!/usr/bin/env bash
# The load-balancer demo: sticky against stateless balancing, with nginx and
# HAProxy, each claim measured, and a report with charts.
#
#   bash lb/run.sh            (as root on Debian 12: installs what is missing)
#
# Runs every scenario (lb/scenarios.js: where connections land, delivery
# across instances with and without a backplane, an instance crash, a rolling
# update, a scale-out, a reconnect storm) for every balancer, prints a table
# per scenario, and writes lb-report/index.html (one page, no network needed)
# and lb-report/results.json. SCENARIOS and BALANCERS choose (names in
# lb/scenarios.js), QUICK=1 runs small client counts; BUILD_DIR (default
# build) and REPORT_DIR (default lb-report) may be set.
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/install-deps.sh
backplane_install_deps nginx haproxy

build=${BUILD_DIR:-build}
report=${REPORT_DIR:-lb-report}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target backplane-instance backplane-loadgen
node lb/scenarios.js "$build" "$report"
node lb/report.js "$report/results.json" "$report/index.html"
