#!/usr/bin/env bash
# Installs the Debian 12 packages that the build, the tests and the demo need,
# skipping those already installed. Sourced by demo/run.sh and tests/run.sh;
# run as root.
set -euo pipefail

backplane_packages=(
  g++ cmake make pkg-config
  clang libclang-rt-14-dev                         # the sanitized build and the fuzz targets
  libasio-dev libwebsocketpp-dev libhiredis-dev   # the library's dependencies
  liburing-dev                                     # batched writes in the WebSocket transport
  libcli11-dev nlohmann-json3-dev                  # command lines, and the load generator's results
  libjwt-dev                                       # signed connection tokens
  openssl                                          # the tests' and the demo's keys
  catch2 libbenchmark-dev                          # tests and benchmarks
  heaptrack                                        # the benchmarks' memory by parts
  redis-server                                     # the backplane the tests run against
  nginx haproxy                                    # the load-balancer demo and its test
  chromium nodejs npm                              # the chat page's browser test (playwright-core)
)

# Packages wanted only for a command that may come from elsewhere: nodejs from
# another repository provides node and npm, and conflicts with Debian's npm.
declare -A backplane_package_command=([nodejs]=node [npm]=npm [chromium]=chromium)

backplane_install_deps() {
  local missing=()
  for p in "${backplane_packages[@]}" "$@"; do
    if [ -n "${backplane_package_command[$p]:-}" ] && command -v "${backplane_package_command[$p]}" >/dev/null 2>&1; then
      continue
    fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  # Only the redis-server binary is used: the tests start their own servers.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
    systemctl stop redis-server || true
  fi
}
