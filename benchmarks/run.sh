#!/usr/bin/env bash
# The benchmarks in one command, and their report:
#
#   bash benchmarks/run.sh [BUILD_DIR]     (default build-bench, RelWithDebInfo; built if needed)
#   QUICK=1 bash benchmarks/run.sh ...     (short: about two minutes, for CI; the figures mean little)
#
# - core: Google Benchmark, one hub: a broadcast's whole path to 1,000,
#   10,000 and 100,000 local connections on the memory bus (deliveries/s,
#   allocations per message), join and leave with many rooms held, a hub
#   publishing through a real local Redis, and a broadcast's round trip
#   through each broker (memory bus, Redis Pub/Sub, Redis Streams) to 1, 100
#   and 10,000 local connections: latency alone, throughput, allocations;
# - channel design: five hubs on a real local Redis, rooms on one global
#   channel against a channel per room (the seed's quiz 3), direct messages
#   by user channel, shared channel and host lookup with 10,000 and 100,000
#   users (QUICK: 10,000);
# - past one Redis: 2, 8 and 32 hubs on one Redis (redis_pubsub) against
#   a 3-master Redis Cluster (redis_sharded), room messages and broadcasts,
#   and room messages with history (redis_streams against
#   redis_sharded_streams): Redis CPU per message on the busiest master, and
#   the rate that would fill its core; with a replica per master, and the
#   masters alone (QUICK: 2 hubs);
# - end to end: two instances on a Redis of their own and 1,000 clients of
#   the load generator, 64-byte broadcasts at rising rates, for each broker,
#   and the bare broadcaster (one process, no backplane) as the floor; Redis
#   Pub/Sub again with --batch-writes off; each rate three times, the ladders
#   interleaved (at each rate every ladder still climbing runs in turn); a
#   ladder stops at the first rate whose median p99 passes 50 ms or that
#   loses a message;
# - the peer: Socket.IO 4 with @socket.io/redis-adapter, two Node instances
#   on one Redis (benchmarks/peers, installed with npm ci into the build
#   directory), driven by the same load generator with the same clients;
# - memory: RSS growth per idle connection, an instance, Socket.IO and the
#   broadcaster; and where an instance's goes: the instance again under
#   heaptrack, its heap at the peak sorted into parts (benchmarks/memory_parts.js).
#
# Writes OUT (default benchmarks/report): raw/*.json, results.json and
# index.html (one self-contained page, charts drawn as lb/report draws them),
# and prints the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
out=${OUT:-benchmarks/report}
if [ "${QUICK:-0}" = 1 ]; then
  duration=2 rates=(10 1000) peer_rates=(10 50) idle=2000 min_time=0.05 channels_filter='rooms|/10000/'
  cluster_filter='/hubs:2/'
else
  duration=10 rates=(10 250 500 1000 1500 2000 2500 3000 4000) peer_rates=(10 25 50 75 100 150 200 300 400)
  idle=15000 min_time=0.5 channels_filter=. cluster_filter=.
fi
reps=3
targets=(bench_fanout bench_redis_publish bench_roundtrip bench_channels bench_cluster backplane-instance backplane-loadgen backplane-baseline)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}" >/dev/null
command -v heaptrack >/dev/null || { echo "benchmarks/run.sh: heaptrack not found (Debian: heaptrack)" >&2; exit 1; }
for t in bench_fanout bench_redis_publish bench_roundtrip bench_channels bench_cluster; do
  [ -x "$build/benchmarks/$t" ] || { echo "benchmarks/run.sh: $t was not built (Google Benchmark missing?)" >&2; exit 1; }
done
# The peer's packages, pinned by benchmarks/peers/package-lock.json.
peers=$build/peers
mkdir -p "$peers"
cp benchmarks/peers/package.json benchmarks/peers/package-lock.json "$peers/"
(cd "$peers" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
rm -rf "$out/raw"
mkdir -p "$out/raw"
raw=$out/raw

# The machine and the build, for every figure's caption.
node -e '
  const os = require("os"), fs = require("fs"), cp = require("child_process");
  const git = (a) => { try { return cp.execSync("git " + a, { stdio: ["ignore", "pipe", "ignore"] }).toString().trim(); } catch { return ""; } };
  fs.writeFileSync(process.argv[1], JSON.stringify({
    cores: os.cpus().length, cpu: os.cpus()[0] ? os.cpus()[0].model : "", kernel: os.release(),
    memory_gib: Math.round(os.totalmem() / 2 ** 30), commit: git("rev-parse --short HEAD"),
    dirty: git("status --porcelain --untracked-files=no") !== "", date: new Date().toISOString(),
    build: process.argv[2], quick: process.argv[3] === "1", duration_s: Number(process.argv[4]), repetitions: Number(process.argv[5]),
  }, null, 1));' "$raw/machine.json" "$(awk -F= '/^CMAKE_BUILD_TYPE:/ {print $2}' "$build/CMakeCache.txt")" \
  "${QUICK:-0}" "$duration" "$reps"

echo "== core (Google Benchmark, ${reps} repetitions)"
"$build/benchmarks/bench_fanout" --benchmark_repetitions="$reps" --benchmark_min_time="$min_time" \
  --benchmark_format=json --benchmark_out="$raw/core_fanout.json" --benchmark_out_format=json >/dev/null
"$build/benchmarks/bench_redis_publish" --benchmark_repetitions="$reps" --benchmark_min_time="$min_time" \
  --benchmark_format=json --benchmark_out="$raw/core_redis.json" --benchmark_out_format=json >/dev/null
"$build/benchmarks/bench_roundtrip" --benchmark_repetitions="$reps" --benchmark_min_time="$min_time" \
  --benchmark_format=json --benchmark_out="$raw/core_roundtrip.json" --benchmark_out_format=json >/dev/null
echo "== channel design (Google Benchmark, ${reps} repetitions)"
"$build/benchmarks/bench_channels" --benchmark_repetitions="$reps" --benchmark_min_time="$min_time" \
  --benchmark_filter="$channels_filter" --benchmark_format=json --benchmark_out="$raw/core_channels.json" \
  --benchmark_out_format=json >/dev/null
echo "== one Redis against a Redis Cluster (Google Benchmark, ${reps} repetitions)"
"$build/benchmarks/bench_cluster" --benchmark_repetitions="$reps" --benchmark_min_time="$min_time" \
  --benchmark_filter="$cluster_filter" --benchmark_format=json --benchmark_out="$raw/core_cluster.json" \
  --benchmark_out_format=json >/dev/null
BENCH_CLUSTER_REPLICAS=0 "$build/benchmarks/bench_cluster" --benchmark_repetitions="$reps" \
  --benchmark_min_time="$min_time" --benchmark_filter="$cluster_filter" --benchmark_format=json \
  --benchmark_out="$raw/core_cluster_masters.json" --benchmark_out_format=json >/dev/null

loadgen=$build/benchmarks/loadgen/backplane-loadgen
source demo/cluster.sh
cluster_init "$build"
start_redis

# p99 MEDIAN_OK FILES...: exit 0 if the median p99 of the runs is under 50 ms
# and none lost a message.
holds() {
  node -e '
    const runs = process.argv.slice(1).map((f) => JSON.parse(require("fs").readFileSync(f, "utf8")));
    const p99 = runs.map((r) => r.latency.all.p99_ms).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
    process.exit(p99 < 50 && runs.every((r) => r.missing === 0) ? 0 : 1);' "$@"
}

# rung NAME RATE REP TARGET_FLAGS...: one run of the load generator.
rung() {
  local name=$1 rate=$2 rep=$3
  shift 3
  "$loadgen" "$@" --clients 1000 --senders 1 --rate "$rate" --size 64 --duration "$duration" --threads 2 \
    --summary "$raw/e2e_${name}_${rate}_${rep}.json" | grep -E '^(deliveries|latency)' | sed "s/^/  $name, $rate msg\/s #$rep: /" || true
}

# held NAME RATE: every repetition of NAME at RATE ran, and together they held.
held() {
  local files=() rep
  for rep in $(seq 1 "$reps"); do
    [ -f "$raw/e2e_${1}_${2}_${rep}.json" ] && files+=("$raw/e2e_${1}_${2}_${rep}.json")
  done
  [ "${#files[@]}" -eq "$reps" ] && holds "${files[@]}"
}

# climb RATE... -- NAME...: the ladders of NAME (target flags in flags[NAME]),
# interleaved: at each rate, every ladder still climbing runs once in turn,
# reps times, so that the machine's moods fall on all of them alike; a ladder
# stops at its first rate that does not hold.
declare -A flags
climb() {
  local list=() climbing=() still rate rep name
  while [ "$1" != -- ]; do list+=("$1"); shift; done
  shift
  climbing=("$@")
  echo "== end to end: $*"
  for rate in "${list[@]}"; do
    [ "${#climbing[@]}" -gt 0 ] || break
    for rep in $(seq 1 "$reps"); do
      for name in "${climbing[@]}"; do
        # shellcheck disable=SC2086 # flags are words without spaces
        rung "$name" "$rate" "$rep" ${flags[$name]}
      done
    done
    still=()
    for name in "${climbing[@]}"; do
      if held "$name" "$rate"; then still+=("$name"); else echo "  ($name stops at $rate msg/s)"; fi
    done
    climbing=("${still[@]}")
  done
}

# idle_rss NAME PID TARGET_FLAGS...: RSS growth of PID with `idle` idle clients.
idle_rss() {
  local name=$1 pid=$2 before after lpid
  shift 2
  before=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  "$loadgen" "$@" --idle "$idle" >"$cluster_work/idle_$name.log" 2>&1 &
  lpid=$!
  until grep -q '^idle' "$cluster_work/idle_$name.log" 2>/dev/null; do
    kill -0 "$lpid" 2>/dev/null || { cat "$cluster_work/idle_$name.log" >&2; return 1; }
    sleep 0.05
  done
  sleep 1
  after=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  kill -TERM "$lpid"
  wait "$lpid" 2>/dev/null || true
  printf '{"name":"%s","connections":%d,"rss_before_kib":%d,"rss_after_kib":%d}\n' \
    "$name" "$idle" "$before" "$after" >"$raw/memory_$name.json"
  echo "== memory: $name: ${before} KiB, then ${after} KiB with $idle idle connections:" \
    "$(( (after - before) * 1024 / idle )) bytes per connection"
}

# listening PID LOG: waits until LOG says "listening on PORT" and prints
# PORT; fails with the log if PID ends first.
listening() {
  until grep -q '^listening on' "$2" 2>/dev/null; do
    kill -0 "$1" 2>/dev/null || { cat "$2" >&2; return 1; }
    sleep 0.05
  done
  awk '/^listening on/ {print $3; exit}' "$2"
}

# start_peer ID: a Socket.IO instance on the current Redis; sets peer_port_ID, peer_pid_ID.
start_peer() {
  local id=$1 pid port
  node benchmarks/peers/socketio.js --port 0 --redis "redis://127.0.0.1:$redis_port" --instance-id "$id" \
    >"$cluster_work/peer_$id.log" 2>&1 &
  pid=$!
  cluster_pids+=("$pid")
  port=$(listening "$pid" "$cluster_work/peer_$id.log")
  printf -v "peer_port_$id" '%s' "$port"
  printf -v "peer_pid_$id" '%s' "$pid"
}

# Every server up at once, each pair on a Redis of its own (they would share
# the global channel), idle but for the ladder running.
start_instance a --broker redis-pubsub
start_instance b --broker redis-pubsub
flags[redis-pubsub]="--target 127.0.0.1:$port_a --target 127.0.0.1:$port_b --token-key $cluster_token_key"
start_redis
start_instance c --broker redis-pubsub --batch-writes off # what batching the writes of many clients is worth
start_instance d --broker redis-pubsub --batch-writes off
flags[redis-pubsub-unbatched]="--target 127.0.0.1:$port_c --target 127.0.0.1:$port_d --token-key $cluster_token_key"
start_redis
start_instance e --broker redis-streams
start_instance f --broker redis-streams
flags[redis-streams]="--target 127.0.0.1:$port_e --target 127.0.0.1:$port_f --token-key $cluster_token_key"
baseline_port=$(free_port)
"$build/benchmarks/loadgen/backplane-baseline" --port "$baseline_port" >"$cluster_work/baseline.log" 2>&1 &
baseline_pid=$!
cluster_pids+=("$baseline_pid")
listening "$baseline_pid" "$cluster_work/baseline.log" >/dev/null
flags[baseline]="--target 127.0.0.1:$baseline_port"
start_redis
export NODE_PATH=$peers/node_modules
start_peer a
start_peer b
flags[socketio]="--protocol socketio --target 127.0.0.1:$peer_port_a --target 127.0.0.1:$peer_port_b"

climb "${rates[@]}" -- redis-pubsub redis-pubsub-unbatched redis-streams baseline
climb "${peer_rates[@]}" -- socketio # its own rates: it stops sooner

kill -TERM "$pid_a" "$pid_b" "$pid_c" "$pid_d" "$pid_e" "$pid_f" "$peer_pid_a" "$peer_pid_b" "$baseline_pid"
wait "$pid_a" "$pid_b" "$pid_c" "$pid_d" "$pid_e" "$pid_f" "$peer_pid_a" "$peer_pid_b" "$baseline_pid" 2>/dev/null || true

# Idle memory on fresh processes: one that ran a ladder may hand memory back
# meanwhile (Node's collector does), which would read as a negative cost.
start_redis
start_instance m --broker redis-pubsub
start_peer m
baseline_port=$(free_port)
"$build/benchmarks/loadgen/backplane-baseline" --port "$baseline_port" >"$cluster_work/baseline_m.log" 2>&1 &
baseline_pid=$!
cluster_pids+=("$baseline_pid")
listening "$baseline_pid" "$cluster_work/baseline_m.log" >/dev/null
idle_rss instance "$pid_m" --target "127.0.0.1:$port_m" --token-key "$cluster_token_key"
idle_rss socketio "$peer_pid_m" --protocol socketio --target "127.0.0.1:$peer_port_m"
idle_rss baseline "$baseline_pid" --target "127.0.0.1:$baseline_port"
kill -TERM "$pid_m" "$peer_pid_m" "$baseline_pid"
wait "$pid_m" "$peer_pid_m" "$baseline_pid" 2>/dev/null || true

# Where an instance's memory per connection goes: its heap at the peak (the
# connections held), by the call stacks that allocated it.
echo "== memory by parts: an instance under heaptrack with $idle idle connections"
heaptrack -o "$cluster_work/heap" "$build/demo/backplane-instance" --port 0 --address 127.0.0.1 --instance-id parts \
  --broker redis-pubsub --redis "redis://127.0.0.1:$redis_port" --auth jwt --auth-key "$cluster_token_key" \
  >"$cluster_work/parts.log" 2>&1 &
heaptrack_pid=$!
cluster_pids+=("$heaptrack_pid")
parts_port=$(listening "$heaptrack_pid" "$cluster_work/parts.log")
parts_pid=$(pgrep -P "$heaptrack_pid" -f backplane-instance)
"$loadgen" --target "127.0.0.1:$parts_port" --token-key "$cluster_token_key" --idle "$idle" >"$cluster_work/parts_idle.log" 2>&1 &
parts_load=$!
until grep -q '^idle' "$cluster_work/parts_idle.log" 2>/dev/null; do
  kill -0 "$parts_load" 2>/dev/null || { cat "$cluster_work/parts_idle.log" >&2; exit 1; }
  sleep 0.1
done
sleep 1
kill -TERM "$parts_load"
wait "$parts_load" 2>/dev/null || true
kill -TERM "$parts_pid"
wait "$heaptrack_pid" 2>/dev/null || true
heaptrack_print -f "$(ls "$cluster_work"/heap.*)" --flamegraph-cost-type peak -F "$cluster_work/stacks.txt" >/dev/null
node benchmarks/memory_parts.js "$cluster_work/stacks.txt" "$idle" >"$raw/heap_parts.json"

echo
node benchmarks/report.js "$raw" "$out"
