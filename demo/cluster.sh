#!/usr/bin/env bash
# Shell functions that start a small cluster on loopback: a private
# redis-server, backplane-instance processes on it, and nginx in front.
# Sourced by demo/run.sh and benchmarks/loadgen/run.sh. Everything started
# here is stopped, and its files removed, by cluster_stop (set as the EXIT
# trap by cluster_init).

# cluster_init BUILD_DIR: a work directory, the clean-up trap, and the key
# the instances verify clients' tokens with (cluster_token_key, a file: the
# load generator's --token-key, mint_token's secret).
cluster_init() {
  cluster_build=$1
  cluster_work=$(mktemp -d)
  cluster_pids=()
  trap cluster_stop EXIT
  trap 'exit 130' INT TERM
  cluster_token_key=$cluster_work/token-key
  (umask 077 && openssl rand -base64 48 >"$cluster_token_key")
}

# mint_token USER [SECONDS]: prints an HS256 token for USER, valid SECONDS
# (default a day), signed with cluster_token_key, as a login service would.
mint_token() {
  local b64url='openssl base64 -A | tr "+/" "-_" | tr -d "="' head body sig
  head=$(printf '{"alg":"HS256","typ":"JWT"}' | eval "$b64url")
  body=$(printf '{"sub":"%s","exp":%d}' "$1" "$(($(date +%s) + ${2:-86400}))" | eval "$b64url")
  sig=$(printf '%s.%s' "$head" "$body" |
    openssl dgst -sha256 -mac HMAC -macopt "key:$(tr -d '\n' <"$cluster_token_key")" -binary | eval "$b64url")
  printf '%s.%s.%s\n' "$head" "$body" "$sig"
}

cluster_stop() {
  for p in "${cluster_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$cluster_work"
}

# free_port: prints a TCP port nothing listens on now, below the kernel's
# ephemeral range (where the local ends of client connections, thousands of
# them in the load scenarios, would take it).
free_port() {
  local low p
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range
  while :; do
    p=$((10000 + RANDOM % (low - 10000)))
    (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# start_redis: sets redis_port. A port can still be taken between the
# check and the bind: then another one.
start_redis() {
  local attempt pid
  for attempt in 1 2 3 4 5; do
    redis_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$cluster_work" \
      >"$cluster_work/redis.log" 2>&1 &
    pid=$!
    cluster_pids+=("$pid")
    until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do
      kill -0 "$pid" 2>/dev/null || continue 2
      sleep 0.05
    done
    return 0
  done
  cat "$cluster_work/redis.log" >&2
  return 1
}

# start_instance ID [FLAGS...]: a backplane-instance on redis-pubsub (unless
# FLAGS say otherwise) that verifies tokens; sets port_ID and pid_ID. Without
# rate limits: the load generator's senders send far faster than a person
# (FLAGS may set them).
start_instance() {
  local id=$1
  shift
  "$cluster_build/demo/backplane-instance" --port 0 --address 127.0.0.1 --instance-id "$id" \
    --broker redis-pubsub --redis "redis://127.0.0.1:$redis_port" --auth jwt --auth-key "$cluster_token_key" \
    --max-rate 0 --max-broadcast-rate 0 --max-bytes-rate 0 --max-user-rate 0 --max-user-broadcast-rate 0 \
    "$@" >"$cluster_work/$id.log" 2>&1 &
  local pid=$!
  cluster_pids+=("$pid")
  until grep -q '^listening on' "$cluster_work/$id.log" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$cluster_work/$id.log" >&2; return 1; }
    sleep 0.05
  done
  printf -v "port_$id" '%s' "$(awk '/^listening on/ {print $3; exit}' "$cluster_work/$id.log")"
  printf -v "pid_$id" '%s' "$pid"
}

# start_nginx PORT UPSTREAM_PORT...: nginx on PORT, round robin over the
# upstreams (lb/nginx.conf.in and lb/nginx/round-robin.conf.in).
start_nginx() {
  local port=$1 servers="" p
  shift
  for p in "$@"; do servers+="server 127.0.0.1:$p max_fails=0; "; done
  sed -e "s|@SERVERS@|$servers|" lb/nginx/round-robin.conf.in >"$cluster_work/upstream.conf"
  sed -e "s|@WORK@|$cluster_work|g" -e "s|@PORT@|$port|g" lb/nginx.conf.in >"$cluster_work/nginx.conf"
  nginx -e "$cluster_work/nginx-error.log" -c "$cluster_work/nginx.conf" -g 'daemon off;' &
  local pid=$!
  cluster_pids+=("$pid")
  until (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$cluster_work/nginx-error.log" >&2; return 1; }
    sleep 0.05
  done
}
