#!/usr/bin/env bash
# bench/redis_modes.sh — the throughput scenario (bench/run.sh throughput: 1 room x 100
# subscribers, rate raised until p99 > 50 ms or a loss) with the same gateway nodes and the same
# generator against three kinds of Redis, one after the other in one run:
#   single   one redis-server
#   cluster  a 3-master / 3-replica Redis Cluster (redis+cluster://, sharded pub/sub)
#   wait1    the same cluster with --redis-wait 1 (a publish waits for one replica)
# and prints, per kind: the highest clean rate (publishes/s and deliveries/s), the p99 there,
# gateway CPU per delivery, and each Redis master's CPU per publish over the whole ramp.
#
# The throughput scenario is one room, so on the cluster one master does all the room's work:
# the comparison shows what the cluster path costs per publish (routing, SPUBLISH, WAIT), not
# what spreading many rooms over masters gains (that is the point of a cluster, and it scales
# with the number of masters).
#
# Settings (environment): GATEWAY_BIN (build/chat-gateway), BENCH_BIN (build/chat-bench), NODES
# (3), BASE_PORT (9301), REDIS_PORT (6601: single on it, cluster on +1..+6), MODES ("single
# cluster wait1"), THROUGHPUT_RATES (passed to run.sh), RESULTS_DIR
# (bench/results/redis-modes-<date-time>). Everything it starts is stopped on exit.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
GATEWAY_BIN="${GATEWAY_BIN:-$root/build/chat-gateway}"
BENCH_BIN="${BENCH_BIN:-$root/build/chat-bench}"
NODES="${NODES:-3}"
BASE_PORT="${BASE_PORT:-9301}"
REDIS_PORT="${REDIS_PORT:-6601}"
MODES="${MODES:-single cluster wait1}"
JWT_SECRET="bench-secret-$$"
out="${RESULTS_DIR:-$root/bench/results/redis-modes-$(date +%Y%m%d-%H%M%S)}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
mkdir -p "$out"

started=()
cleanup() {
  for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${started[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  started=()
}
trap cleanup EXIT INT TERM
die() { echo "redis_modes: $*" >&2; exit 1; }

wait_ping() {
  local deadline=$((SECONDS + 10))
  until redis-cli -p "$1" ping >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "redis on $1 did not start"
    sleep 0.1
  done
}

# start_redis port [args...]: prints nothing, appends the pid to started and redis_pids
start_redis() {
  local port="$1"; shift
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no "$@" \
    >"$out/redis-$port.log" 2>&1 &
  started+=($!)
  redis_pids+=("$!:$port")
  wait_ping "$port"
}

start_cluster() {
  local ports=() dir
  for i in 1 2 3 4 5 6; do
    local p=$((REDIS_PORT + i))
    dir="$out/cluster-$mode-$p"
    mkdir -p "$dir"
    start_redis "$p" --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
      --cluster-node-timeout 2000 --dir "$dir" --cluster-port $((p + 1000)) \
      --repl-diskless-sync-delay 0
    ports+=("127.0.0.1:$p")
  done
  redis-cli --cluster create "${ports[@]}" --cluster-replicas 1 --cluster-yes \
    >"$out/cluster-create.log" 2>&1 || die "cluster create failed (see $out/cluster-create.log)"
  local deadline=$((SECONDS + 20))
  until redis-cli -p $((REDIS_PORT + 1)) cluster info 2>/dev/null | grep -q 'cluster_state:ok'; do
    [ $SECONDS -lt $deadline ] || die "the cluster did not become ok"
    sleep 0.2
  done
  # Every master's replica in sync before anything is measured (WAIT would time out until then).
  deadline=$((SECONDS + 30))
  for i in 1 2 3 4 5 6; do
    local p=$((REDIS_PORT + i))
    redis-cli -p "$p" role | head -1 | grep -q master || continue
    until redis-cli -p "$p" info replication | grep -q 'slave0:.*state=online'; do
      [ $SECONDS -lt $deadline ] || die "the replicas of :$p did not come online"
      sleep 0.2
    done
  done
  cluster_url="redis+cluster://127.0.0.1:$((REDIS_PORT + 1)),127.0.0.1:$((REDIS_PORT + 2)),127.0.0.1:$((REDIS_PORT + 3))"
}

# start_nodes url [extra flags...]: sets urls and pids
start_nodes() {
  local url="$1"; shift
  local ul=() pl=()
  for i in $(seq 1 "$NODES"); do
    local port=$((BASE_PORT + i - 1))
    "$GATEWAY_BIN" --port "$port" --bind 127.0.0.1 --redis "$url" --node-id "node$i" \
      --jwt-secret "$JWT_SECRET" --rate 100000 --rate-burst 100000 --log-level warn "$@" \
      >"$out/node$i-$mode.log" 2>&1 &
    started+=($!)
    pl+=("$!")
    ul+=("ws://127.0.0.1:$port/ws")
  done
  for i in $(seq 1 "$NODES"); do
    local deadline=$((SECONDS + 20))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((BASE_PORT + i - 1))/readyz")" = 200 ]; do
      [ $SECONDS -lt $deadline ] || die "node$i not ready for $mode (see $out/node$i-$mode.log)"
      sleep 0.2
    done
  done
  urls="$(IFS=,; echo "${ul[*]}")"
  pids="$(IFS=,; echo "${pl[*]}")"
}

# CPU ticks (utime + stime) of a pid.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_mode() {
  mode="$1"
  redis_pids=()
  case "$mode" in
    single) start_redis "$REDIS_PORT"; start_nodes "redis://127.0.0.1:$REDIS_PORT" ;;
    cluster) start_cluster; start_nodes "$cluster_url" ;;
    wait1) start_cluster; start_nodes "$cluster_url" --redis-wait 1 ;;
    *) die "unknown mode $mode" ;;
  esac
  declare -A before=()
  for rp in "${redis_pids[@]}"; do before[$rp]=$(ticks "${rp%%:*}"); done
  RESULTS_DIR="$out/$mode" QUIET_PCT=0 JWT_SECRET="$JWT_SECRET" GATEWAY_BIN="$GATEWAY_BIN" \
    BENCH_BIN="$BENCH_BIN" bash "$root/bench/run.sh" --urls "$urls" --pids "$pids" throughput \
    >"$out/$mode.run.log" 2>&1 || die "run.sh failed for $mode (see $out/$mode.run.log)"
  local sent
  sent=$(jq -s 'map(select(.mode == "workload") | .publishes.sent + .publishes.warmup_sent) | add' \
    "$out/$mode"/throughput-[0-9]*.json)
  local hz; hz=$(getconf CLK_TCK)
  local per_master=""
  for rp in "${redis_pids[@]}"; do
    local pid="${rp%%:*}" port="${rp#*:}" role
    role=$(redis-cli -p "$port" role 2>/dev/null | head -1)
    [ "$role" = "master" ] || continue
    local us
    us=$(awk -v a="${before[$rp]}" -v b="$(ticks "$pid")" -v hz="$hz" -v n="$sent" \
      'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / (n > 0 ? n : 1) }')
    per_master+="${per_master:+ }:$port=${us}us"
  done
  local best; best=$(cat "$out/$mode/throughput.best_rate")
  local j="$out/$mode/throughput-$best.json"
  printf '%-8s %9s %12s %8s %12s  %s\n' "$mode" "$best" \
    "$(jq -r '.deliveries.per_s|floor' "$j" 2>/dev/null || echo -)" \
    "$(jq -r '.latency.p99_ms' "$j" 2>/dev/null || echo -)" \
    "$(jq -r '.server.cpu_us_per_delivery*100|floor/100' "$j" 2>/dev/null || echo -)" \
    "$per_master" | tee -a "$out/summary.txt"
  cleanup
}

printf '%-8s %9s %12s %8s %12s  %s\n' mode pub/s deliveries/s p99_ms srv_us/deliv \
  "redis CPU per publish, per master (whole ramp)" | tee "$out/summary.txt"
for m in $MODES; do run_mode "$m"; done
echo "redis_modes: results in $out"
