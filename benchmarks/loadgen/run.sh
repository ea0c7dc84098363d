#!/usr/bin/env bash
# Runs the load scenarios on loopback: a private redis-server, two
# backplane-instance processes and backplane-loadgen, and prints the figures.
#
#   bash benchmarks/loadgen/run.sh [BUILD_DIR]      (default: build; built if needed)
#
# Scenarios, for each broker in BROKERS (default "redis-pubsub"; for instance
# BROKERS="redis-pubsub redis-streams" compares them in one run): 1,000
# clients over two instances, 64-byte global messages, at 10 messages/s
# (10,000 deliveries/s: latency) and at 1,000 messages/s (1,000,000
# deliveries/s: throughput), read by two load generator threads (with one,
# that thread was still reading a message's last receipts while the other
# core sat idle). Then the same two loads against
# backplane-baseline, a bare single-process broadcaster (the yardstick: what
# this machine's kernel and loopback allow), and 15,000 idle connections on
# one instance (RSS growth per connection). RATE, DURATION and IDLE override;
# INSTANCE_FLAGS adds flags to both instances (say "--batch-writes off").
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
duration=${DURATION:-10}
idle=${IDLE:-15000}
if [ ! -x "$build/demo/backplane-instance" ] || [ ! -x "$build/benchmarks/loadgen/backplane-loadgen" ] \
   || [ ! -x "$build/benchmarks/loadgen/backplane-baseline" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j "$(nproc)" --target backplane-instance backplane-loadgen backplane-baseline
fi
loadgen_bin=$build/benchmarks/loadgen/backplane-loadgen
source demo/cluster.sh
cluster_init "$build"

# load HEADING RATE [LOADGEN FLAGS...]: 1,000 clients, RATE messages/s of
# 64 bytes for the duration, from one sender.
load() {
  local heading=$1 rate=$2
  shift 2
  echo
  echo "== $heading: 1,000 clients, $rate messages/s of 64 bytes, ${duration} s"
  "$loadgen_bin" "$@" --clients 1000 --senders 1 --rate "$rate" --size 64 --duration "$duration" --threads 2 || true
}

# await_line FILE PATTERN PID: waits for a line of FILE to match PATTERN,
# as long as PID lives.
await_line() {
  until grep -q "$2" "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || { cat "$1"; exit 1; }
    sleep 0.05
  done
}
start_redis
echo "redis-server :$redis_port; $(nproc) cores"

read -ra brokers <<<"${BROKERS:-redis-pubsub}"
for broker in "${brokers[@]}"; do
  read -ra extra <<<"${INSTANCE_FLAGS:-}"
  start_instance a --broker "$broker" "${extra[@]}"
  start_instance b --broker "$broker" "${extra[@]}"
  # Every client presents a token (the instances run --auth jwt).
  targets=(--target "127.0.0.1:$port_a" --target "127.0.0.1:$port_b" --token-key "$cluster_token_key")
  echo
  echo "=== $broker: instances a :$port_a, b :$port_b"

  load latency 10 "${targets[@]}"
  load throughput "${RATE:-1000}" "${targets[@]}" --batch "${BATCH:-1}"

  # The next broker starts on an empty server, and the memory scenario on
  # the last broker's instance a.
  if [ "$broker" != "${brokers[-1]}" ]; then
    kill -TERM "$pid_a" "$pid_b"
    wait "$pid_a" "$pid_b" 2>/dev/null || true
    redis-cli -p "$redis_port" flushall >/dev/null
  fi
done

echo
echo "=== baseline: backplane-baseline, one process, no backplane"
baseline_port=$(free_port)
"$build/benchmarks/loadgen/backplane-baseline" --port "$baseline_port" >"$cluster_work/baseline.log" 2>&1 &
cluster_pids+=("$!")
await_line "$cluster_work/baseline.log" '^listening' "$!"
load "baseline, latency" 10 --target "127.0.0.1:$baseline_port"
load "baseline, throughput" "${RATE:-1000}" --target "127.0.0.1:$baseline_port" --batch "${BATCH:-1}"

echo
echo "== memory: $idle idle connections on instance a"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
before=$(rss "$pid_a")
"$loadgen_bin" --target "127.0.0.1:$port_a" --token-key "$cluster_token_key" --idle "$idle" \
  >"$cluster_work/idle.log" 2>&1 &
cluster_pids+=("$!")
await_line "$cluster_work/idle.log" '^idle' "$!"
head -1 "$cluster_work/idle.log"
sleep 1
after=$(rss "$pid_a")
echo "instance a RSS: ${before} KiB before, ${after} KiB with $idle connections:" \
  "$(( (after - before) * 1024 / idle )) bytes per connection"
