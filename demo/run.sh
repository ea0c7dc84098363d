#!/usr/bin/env bash
# Runs the demo.
#
#   bash demo/run.sh          (as root on Debian 12: installs what is missing)
#
# 1. The seed design's quiz, in one process: several hubs on an in-memory bus.
# 2. The real thing on loopback: a private redis-server, two backplane-instance
#    processes on it, and nginx in front of them, round robin (stateless).
#    WebSocket clients connect through nginx, so they land on both instances,
#    and a broadcast from one reaches the others only through Redis.
# 3. Sticky or stateless: lb/run.sh, every scenario with nginx round robin
#    and HAProxy balance source at small sizes (LB=full: every balancer at
#    the full sizes, several minutes; LB=0 skips it); its report is
#    lb-report/index.html.
# 4. Then it keeps running, for a person to open the chat page in two tabs,
#    until Ctrl-C (when run from a terminal; DEMO_WAIT=0 stops at once).
#
# BUILD_DIR (default build) and DEMO_PORT (nginx's port, default 8080, or any
# free one if 8080 is taken) may be set.
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/install-deps.sh
backplane_install_deps nginx

build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target backplane-scenarios backplane-instance backplane-loadgen

echo
echo "=== 1. In one process: the seed design's quiz"
echo
"$build/demo/backplane-scenarios"

echo
echo "=== 2. Redis, two instances, nginx round robin in front"
echo
source demo/cluster.sh
cluster_init "$build"
start_redis
start_instance a
start_instance b
lb_port=${DEMO_PORT:-8080}
(echo >"/dev/tcp/127.0.0.1/$lb_port") 2>/dev/null && lb_port=$(free_port)
start_nginx "$lb_port" "$port_a" "$port_b"
printf '| %-19s | %-15s |\n' process address ------------------- --------------- \
  redis-server "127.0.0.1:$redis_port" "instance a" "127.0.0.1:$port_a" "instance b" "127.0.0.1:$port_b" \
  "nginx (round robin)" "127.0.0.1:$lb_port"

echo
echo "200 WebSocket clients connect through nginx; one of them broadcasts 20 messages a second for 3 s:"
echo
"$build/benchmarks/loadgen/backplane-loadgen" --target "127.0.0.1:$lb_port" --clients 200 --senders 1 \
  --rate 20 --size 64 --duration 3 --token-key "$cluster_token_key" 2>&1 | sed 's/^/  /' &
loadgen=$!
sleep 2 # mid-run: where did nginx put the clients?
# metric PORT NAME: the value of one series of an instance's /metrics.
metric() {
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  awk -v m="$2" 'index($1, m) == 1 && (length($1) == length(m) || substr($1, length(m) + 1, 1) == "{") {print $2; exit}' <&3
  exec 3<&-
}
conns_a=$(metric "$port_a" websocket_connections_total)
conns_b=$(metric "$port_b" websocket_connections_total)
wait "$loadgen"
echo
printf '| instance | connections | frames delivered | messages from Redis |\n|---|---:|---:|---:|\n'
for i in a b; do
  port_var=port_$i
  printf '| %s | %s | %s | %s |\n' "$i" "$([ "$i" = a ] && echo "$conns_a" || echo "$conns_b")" \
    "$(metric "${!port_var}" backplane_deliveries_total)" "$(metric "${!port_var}" backplane_broker_received_total)"
done
echo
echo "Every client received every message although the sender sat on one instance: the other instance got"
echo "them from Redis. Without the backplane (--broker memory) half the clients would receive nothing."

if [ "${LB:-quick}" != 0 ]; then
  echo
  echo "=== 3. Sticky or stateless: nginx and HAProxy in front of three instances (lb/run.sh)"
  echo
  if [ "${LB:-quick}" = full ]; then
    BUILD_DIR=$build bash lb/run.sh
  else
    QUICK=1 BUILD_DIR=$build bash lb/run.sh
    echo "(small sizes, two balancers: LB=full bash demo/run.sh, or bash lb/run.sh, runs them all)"
  fi
fi

if [ "${DEMO_WAIT:-1}" != 0 ] && [ -t 0 ]; then
  echo
  echo "=== 4. Try it: open these in two browser tabs (nginx sends each to another instance):"
  echo "    http://127.0.0.1:$lb_port/?token=$(mint_token alice)"
  echo "    http://127.0.0.1:$lb_port/?token=$(mint_token bob)"
  echo "Each page shows the instance it is on. The instances verify tokens (--auth jwt); these two were"
  echo "signed with the key this demo made, as a login service would sign them. Ctrl-C stops everything."
  wait
fi
