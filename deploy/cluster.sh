#!/usr/bin/env bash
# Local cluster without Docker: one redis-server and NODES gateway nodes on 127.0.0.1, all run
# as the invoking user, with state and logs under .run/ (gitignored). No system service is
# touched.
#
#   deploy/cluster.sh up       install missing packages, build, start, wait for /readyz
#   deploy/cluster.sh down     stop exactly what `up` started
#   deploy/cluster.sh status   what runs, and each node's readiness
#   deploy/cluster.sh logs     follow every log
#
# Settings (environment): NODES (3), BASE_PORT (9001), REDIS_PORT (6390), JWT_SECRET
# (dev-secret-change-me), and any gateway setting by its env name (see chat-gateway --help).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
run="$root/.run"
NODES="${NODES:-3}"
BASE_PORT="${BASE_PORT:-9001}"
REDIS_PORT="${REDIS_PORT:-6390}"
export JWT_SECRET="${JWT_SECRET:-dev-secret-change-me}"
bin="$root/build/chat-gateway"

die() { echo "cluster: $*" >&2; exit 1; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

port_busy() {
  # bash's /dev/tcp: a successful connect means something listens there.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_http_200() { # url timeout_s
  local url="$1" deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = "200" ] && return 0
    sleep 0.2
  done
  return 1
}

build() {
  bash "$root/deploy/install-deps.sh"
  if [ ! -x "$bin" ] || [ -n "$(find "$root/gateway" "$root/common" "$root/CMakeLists.txt" -newer "$bin" 2>/dev/null | head -1)" ]; then
    cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINTEGRATION_TESTS=OFF >/dev/null
    cmake --build "$root/build" -j"$(nproc)" --target chat-gateway
  fi
}

start_redis() {
  if alive "$run/redis.pid"; then return; fi
  port_busy "$REDIS_PORT" && die "port $REDIS_PORT (REDIS_PORT) is already in use"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$run/redis.pid" --logfile "$run/redis.log" --dir "$run"
  local deadline=$((SECONDS + 10))
  until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "redis did not start (see $run/redis.log)"
    sleep 0.1
  done
}

start_node() { # index
  local i="$1" port=$((BASE_PORT + $1 - 1))
  if alive "$run/node$i.pid"; then return; fi
  port_busy "$port" && die "port $port (node $i) is already in use"
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT" NODE_ID="node$i" GATEWAY_PORT="$port" \
    nohup "$bin" >>"$run/node$i.log" 2>&1 &
  echo $! >"$run/node$i.pid"
}

up() {
  mkdir -p "$run"
  build
  start_redis
  for i in $(seq 1 "$NODES"); do start_node "$i"; done
  for i in $(seq 1 "$NODES"); do
    wait_http_200 "http://127.0.0.1:$((BASE_PORT + i - 1))/readyz" 15 ||
      die "node $i not ready (see $run/node$i.log)"
  done
  echo "cluster: redis on 127.0.0.1:$REDIS_PORT, $NODES nodes ready:"
  for i in $(seq 1 "$NODES"); do echo "  ws://127.0.0.1:$((BASE_PORT + i - 1))/ws"; done
  echo "cluster: tokens are HS256 JWTs signed with JWT_SECRET ($JWT_SECRET)"
  echo "cluster: stop with: deploy/cluster.sh down"
}

stop_pid() { # pidfile
  local f="$1"
  if alive "$f"; then
    local pid; pid="$(cat "$f")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() {
  [ -d "$run" ] || { echo "cluster: nothing to stop"; return; }
  for f in "$run"/node*.pid; do [ -e "$f" ] && stop_pid "$f"; done
  stop_pid "$run/redis.pid"
  echo "cluster: stopped"
}

status() {
  alive "$run/redis.pid" && echo "redis  up   127.0.0.1:$REDIS_PORT" || echo "redis  down"
  for f in "$run"/node*.pid; do
    [ -e "$f" ] || continue
    local n; n="$(basename "$f" .pid)"
    if alive "$f"; then echo "$n  up   pid $(cat "$f")"; else echo "$n  down"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  logs) tail -F "$run"/*.log ;;
  *) echo "usage: deploy/cluster.sh up|down|status|logs" >&2; exit 2 ;;
esac
