#!/usr/bin/env bash
# Local cluster without Docker: one redis-server, NODES gateway nodes and nginx as the load
# balancer, all on this machine, all run as the invoking user, with state and logs under .run/
# (gitignored). No system service is touched.
#
#   deploy/cluster.sh up       install missing packages, build if needed, start everything, wait
#                              until every node's /readyz and the load balancer answer 200
#   deploy/cluster.sh down     stop exactly what `up` started (the pids it recorded)
#   deploy/cluster.sh status   what runs, and each node's readiness (exit 1 if anything is down)
#   deploy/cluster.sh logs     follow every log
#
# Settings (environment), with defaults:
#   NODES=3  BASE_PORT=9001 (nodes on BASE_PORT..BASE_PORT+NODES-1)  REDIS_PORT=6390
#   LB_PORT=8080  LB_TLS_PORT=8443  LB_BIND=127.0.0.1 (0.0.0.0 to reach the demo from elsewhere)
#   RUN_DIR=<repo>/.run (state, pids, logs)  NGINX_WORKERS=2
#   CLUSTER_BUILD_DIR=<dir> run the chat-gateway/chat-token found there; build nothing
#   JWT_SECRET=dev-secret-change-me  DEV_TOKENS=1 (the /dev/token endpoint; 0 turns it off)
#   and any gateway setting by its env name (see build/chat-gateway --help), e.g. HEARTBEAT=10.
# `up` is idempotent: what already runs is kept, what is missing is started. The settings of the
# first `up` are recorded in RUN_DIR/cluster.env, and status/down/logs use them.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run="${RUN_DIR:-$root/.run}"
case "$run" in /*) ;; *) run="$PWD/$run" ;; esac

# CLUSTER_BUILD_DIR: use the binaries already built there (e.g. a sanitizer build) instead of
# building build/.
build_dir="${CLUSTER_BUILD_DIR:-$root/build}"
bin="$build_dir/chat-gateway"
token_bin="$build_dir/chat-token"

READY_TIMEOUT_S="${READY_TIMEOUT_S:-30}"

say() { echo "cluster: $*"; }
die() {
  echo "cluster: error: $*" >&2
  exit 1
}

# Loads the settings: those recorded by a running cluster win over the environment, so that
# `status`/`down` after `NODES=5 up` still see five nodes.
load_settings() {
  if [ -f "$run/cluster.env" ] && any_alive; then
    local v name asked=()
    for v in NODES BASE_PORT REDIS_PORT LB_PORT LB_TLS_PORT LB_BIND; do
      if [ -n "${!v:-}" ]; then asked+=("$v=${!v}"); fi
    done
    # shellcheck source=/dev/null
    . "$run/cluster.env"
    for v in "${asked[@]}"; do
      name="${v%%=*}"
      if [ "${v#*=}" != "${!name}" ]; then
        echo "cluster: note: the cluster in $run runs with $name=${!name}, not ${v#*=}; 'down' first to change it" >&2
      fi
    done
  fi
  NODES="${NODES:-3}"
  BASE_PORT="${BASE_PORT:-9001}"
  REDIS_PORT="${REDIS_PORT:-6390}"
  LB_PORT="${LB_PORT:-8080}"
  LB_TLS_PORT="${LB_TLS_PORT:-8443}"
  LB_BIND="${LB_BIND:-127.0.0.1}"
  NGINX_WORKERS="${NGINX_WORKERS:-2}"
  DEV_TOKENS="${DEV_TOKENS:-1}"
  JWT_SECRET="${JWT_SECRET:-dev-secret-change-me}"
  export JWT_SECRET DEV_TOKENS
  local v
  for v in NODES BASE_PORT REDIS_PORT LB_PORT LB_TLS_PORT NGINX_WORKERS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number (got '${!v}')"
  done
  if [ "$NODES" -lt 1 ] || [ "$NODES" -gt 64 ]; then die "NODES must be 1..64 (got $NODES)"; fi
}

save_settings() {
  {
    echo "# written by deploy/cluster.sh up; read by status/down/logs while the cluster runs"
    local v
    for v in NODES BASE_PORT REDIS_PORT LB_PORT LB_TLS_PORT LB_BIND NGINX_WORKERS DEV_TOKENS; do
      printf '%s=%q\n' "$v" "${!v}"
    done
  } >"$run/cluster.env"
}

node_port() { echo $((BASE_PORT + $1 - 1)); }

# ---------- processes ----------

# True when pidfile names a live process whose command line contains `expect`: a pid recycled
# by an unrelated process after a crash is never signalled.
alive() { # pidfile expect
  local f="$1" pid
  [ -s "$f" ] || return 1
  pid="$(cat "$f" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

# True while pid exists and has not exited: an exited daemon stays a zombie until init reaps
# it, which can take a while, and kill -0 still succeeds on a zombie.
running() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

pidfiles() { # every pidfile with its expected command, one "file expect" per line
  local f
  [ -d "$run" ] || return 0
  [ -f "$run/nginx/nginx.pid" ] && echo "$run/nginx/nginx.pid nginx"
  for f in "$run"/node*.pid; do [ -e "$f" ] && echo "$f chat-gateway"; done
  [ -f "$run/redis.pid" ] && echo "$run/redis.pid redis-server"
  return 0
}

any_alive() {
  local f e
  while read -r f e; do alive "$f" "$e" && return 0; done < <(pidfiles)
  return 1
}

# bash's /dev/tcp: a successful connect means something listens there.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

http_code() { # url [curl options...]
  local url="$1"
  shift
  curl -s -o /dev/null -m 2 -w '%{http_code}' "$@" "$url" 2>/dev/null || true
}

wait_http_200() { # url timeout_s [curl options...]
  local url="$1" deadline=$((SECONDS + $2))
  shift 2
  while [ "$(http_code "$url" "$@")" != "200" ]; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

# ---------- build ----------

build() {
  bash "$root/deploy/install-deps.sh"
  if [ -n "${CLUSTER_BUILD_DIR:-}" ]; then
    if [ ! -x "$bin" ] || [ ! -x "$token_bin" ]; then
      die "no chat-gateway and chat-token in CLUSTER_BUILD_DIR=$build_dir"
    fi
    return 0
  fi
  mkdir -p "$build_dir"
  # Two `up`s at once (two terminals, or two tests) must not run make in one tree together.
  exec 8>"$build_dir/.cluster-build.lock"
  flock 8
  local stale=""
  if [ ! -x "$bin" ] || [ ! -x "$token_bin" ] || [ ! -f "$build_dir/CMakeCache.txt" ]; then
    stale=1
  elif [ -n "$(find "$root/gateway" "$root/common" "$root/tools" "$root/CMakeLists.txt" \
    -newer "$bin" -print -quit 2>/dev/null)" ]; then
    stale=1
  fi
  if [ -n "$stale" ]; then
    say "building chat-gateway, chat-token and chat-cli in $build_dir"
    cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSANITIZE=OFF \
      -DINTEGRATION_TESTS=OFF >"$build_dir/.cluster-cmake.log" 2>&1 ||
      die "cmake configure failed: see $build_dir/.cluster-cmake.log"
    cmake --build "$build_dir" -j"$(nproc)" --target chat-gateway chat-token chat-cli \
      >>"$build_dir/.cluster-cmake.log" 2>&1 ||
      die "build failed: see $build_dir/.cluster-cmake.log"
  fi
  flock -u 8
  exec 8>&-
}

# ---------- components ----------

check_ports() {
  local busy=() i
  alive "$run/redis.pid" redis-server || { port_busy "$REDIS_PORT" && busy+=("$REDIS_PORT (REDIS_PORT, redis)"); }
  for i in $(seq 1 "$NODES"); do
    alive "$run/node$i.pid" chat-gateway ||
      { port_busy "$(node_port "$i")" && busy+=("$(node_port "$i") (BASE_PORT+$((i - 1)), node $i)"); }
  done
  if ! alive "$run/nginx/nginx.pid" nginx; then
    port_busy "$LB_PORT" && busy+=("$LB_PORT (LB_PORT, nginx)")
    port_busy "$LB_TLS_PORT" && busy+=("$LB_TLS_PORT (LB_TLS_PORT, nginx TLS)")
  fi
  if [ ${#busy[@]} -gt 0 ]; then
    local p
    for p in "${busy[@]}"; do echo "cluster: error: port $p is already in use by another program" >&2; done
    die "nothing was started; free the port(s) or choose others, e.g. LB_PORT=8081 REDIS_PORT=6391 BASE_PORT=9101 deploy/cluster.sh up"
  fi
}

start_redis() {
  alive "$run/redis.pid" redis-server && return 0
  rm -f "$run/redis.pid"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$run/redis.pid" --logfile "$run/redis.log" --dir "$run" ||
    die "redis-server did not start (see $run/redis.log)"
  local deadline=$((SECONDS + 10))
  until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "redis did not answer PING within 10 s (see $run/redis.log)"
    sleep 0.1
  done
}

start_node() { # index
  local i="$1" port
  port="$(node_port "$1")"
  alive "$run/node$i.pid" chat-gateway && return 0
  # setsid: a Ctrl-C in the terminal while `up` waits must not reach the nodes.
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT" NODE_ID="node$i" GATEWAY_PORT="$port" \
    GATEWAY_BIND="${GATEWAY_BIND:-127.0.0.1}" \
    setsid "$bin" </dev/null >>"$run/node$i.log" 2>&1 &
  echo $! >"$run/node$i.pid"
}

# Writes RUN_DIR/nginx/nginx.conf from deploy/nginx/nginx.conf; prints "changed" if it differs
# from the one in use.
render_nginx() {
  local dir="$run/nginx" upstreams="" i out
  mkdir -p "$dir"
  for i in $(seq 1 "$NODES"); do
    upstreams+="server 127.0.0.1:$(node_port "$i") max_fails=1 fail_timeout=5s; "
  done
  out="$dir/nginx.conf.new"
  # Only the placeholders named in the template's header; nginx's own $variables stay.
  sed -e "s|\${NGINX_WORKERS}|$NGINX_WORKERS|g" \
    -e "s|\${NGINX_STATE_DIR}|$dir|g" \
    -e "s|\${NGINX_ERROR_LOG}|$dir/error.log|g" \
    -e "s|\${NGINX_ACCESS_LOG}|$dir/access.log|g" \
    -e "s|\${LB_LISTEN_ADDR}|$LB_BIND|g" \
    -e "s|\${LB_PORT}|$LB_PORT|g" \
    -e "s|\${LB_TLS_PORT}|$LB_TLS_PORT|g" \
    -e "s|\${TLS_CERT}|$run/tls/cert.pem|g" \
    -e "s|\${TLS_KEY}|$run/tls/key.pem|g" \
    -e "s|\${WEB_ROOT}|$root/web|g" \
    -e "s|\${GATEWAY_UPSTREAMS}|$upstreams|g" \
    "$root/deploy/nginx/nginx.conf" >"$out"
  local unknown
  # shellcheck disable=SC2016 # a literal ${NAME}, not an expansion
  unknown="$(grep -v '^[[:space:]]*#' "$out" | grep -o '\${[A-Za-z_]*}' | head -1 || true)"
  [ -z "$unknown" ] || die "deploy/nginx/nginx.conf has a placeholder cluster.sh does not fill: $unknown"
  if ! cmp -s "$out" "$dir/nginx.conf"; then
    mv "$out" "$dir/nginx.conf"
    echo changed
  else
    rm -f "$out"
  fi
}

nginx_args() {
  local a=(-p "$run/nginx" -c "$run/nginx/nginx.conf" -e "$run/nginx/error.log")
  # Only a root master reads `user`; it keeps the workers as the invoking user (root), since
  # nginx would otherwise switch them to nobody, who may not read a checkout under /root.
  [ "$(id -u)" -eq 0 ] && a+=(-g "user $(id -un) $(id -gn);")
  printf '%s\0' "${a[@]}"
}

start_nginx() {
  local changed args=()
  changed="$(render_nginx)"
  mapfile -d '' args < <(nginx_args)
  if ! nginx -t -q "${args[@]}" 2>"$run/nginx/test.log"; then
    cat "$run/nginx/test.log" >&2
    die "nginx rejected $run/nginx/nginx.conf"
  fi
  if alive "$run/nginx/nginx.pid" nginx; then
    if [ -n "$changed" ]; then
      say "nginx configuration changed: reloading"
      kill -HUP "$(cat "$run/nginx/nginx.pid")"
    fi
    return 0
  fi
  rm -f "$run/nginx/nginx.pid"
  nginx "${args[@]}" </dev/null || die "nginx did not start (see $run/nginx/error.log)"
}

# ---------- commands ----------

up() {
  local t0 i
  t0="$(date +%s%N)"
  mkdir -p "$run"
  build
  check_ports
  save_settings
  bash "$root/deploy/gen-cert.sh" "$run/tls/cert.pem" "$run/tls/key.pem"
  start_redis
  for i in $(seq 1 "$NODES"); do start_node "$i"; done
  for i in $(seq 1 "$NODES"); do
    wait_http_200 "http://127.0.0.1:$(node_port "$i")/readyz" "$READY_TIMEOUT_S" || {
      tail -n 20 "$run/node$i.log" >&2 || true
      die "node $i (port $(node_port "$i")) not ready within ${READY_TIMEOUT_S} s; log $run/node$i.log; stop with: deploy/cluster.sh down"
    }
  done
  start_nginx
  wait_http_200 "http://127.0.0.1:$LB_PORT/healthz" 10 ||
    die "nginx does not answer on port $LB_PORT (see $run/nginx/error.log)"
  wait_http_200 "https://127.0.0.1:$LB_TLS_PORT/healthz" 10 -k ||
    die "nginx does not answer on TLS port $LB_TLS_PORT (see $run/nginx/error.log)"

  local host="127.0.0.1" token=""
  [ "$LB_BIND" = "0.0.0.0" ] || host="$LB_BIND"
  # Ask the cluster itself when it can mint (dev mode): that token is valid whatever secret the
  # running nodes were started with. Otherwise sign one with chat-token and JWT_SECRET.
  if [ "$DEV_TOKENS" != "0" ]; then
    token="$(curl -s -m 2 "http://127.0.0.1:$LB_PORT/dev/token?sub=demo&name=Demo&ttl=86400" |
      sed -n 's/.*"token":"\([^"]*\)".*/\1/p')" || token=""
  fi
  if [ -z "$token" ] && [ "${JWT_ALG:-HS256}" = "HS256" ]; then
    token="$("$token_bin" --sub demo --name Demo --ttl 86400 --secret "$JWT_SECRET")" || token=""
  fi
  say "up in $(awk -v d="$(($(date +%s%N) - t0))" 'BEGIN { printf "%.1f", d / 1e9 }') s: redis 127.0.0.1:$REDIS_PORT, $NODES node(s) on" \
    "$(node_port 1)..$(node_port "$NODES"), nginx on $LB_PORT (TLS $LB_TLS_PORT); state in $run"
  echo "  demo      http://$host:$LB_PORT/   (or https://$host:$LB_TLS_PORT/, self-signed certificate)"
  echo "  websocket ws://$host:$LB_PORT/ws   wss://$host:$LB_TLS_PORT/ws"
  if [ -n "$token" ]; then
    echo "  dev token for user demo, valid 24 h:"
    echo "            TOKEN=$token"
    echo "  terminal  ${build_dir#"$root"/}/chat-cli --url ws://$host:$LB_PORT/ws --token \"\$TOKEN\" --room general"
    echo "            (more tokens: ${build_dir#"$root"/}/chat-token --sub alice --name Alice  with JWT_SECRET set)"
  fi
  if [ "$DEV_TOKENS" != "0" ]; then
    echo "  dev mode  the demo page signs people in by name via /dev/token (DEV_TOKENS=0 to turn off)"
  fi
  echo "  status    deploy/cluster.sh status    logs: deploy/cluster.sh logs"
  echo "  stop      deploy/cluster.sh down"
}

stop_pids() { # signal timeout_s pidfile... — signals all, then waits for all, then SIGKILL
  local sig="$1" timeout="$2" f pid pids=()
  shift 2
  for f in "$@"; do
    pid="$(cat "$f")"
    kill "-$sig" "$pid" 2>/dev/null && pids+=("$pid")
  done
  local deadline=$((SECONDS + timeout)) left
  while :; do
    left=()
    for pid in "${pids[@]}"; do running "$pid" && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && break
    if [ $SECONDS -ge $deadline ]; then
      echo "cluster: pid(s) ${left[*]} still running after ${timeout} s: SIGKILL" >&2
      kill -KILL "${left[@]}" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -f "$@"
}

down() {
  local f e live_nodes=() stopped=0
  if [ -f "$run/nginx/nginx.pid" ]; then
    if alive "$run/nginx/nginx.pid" nginx; then
      stop_pids TERM 10 "$run/nginx/nginx.pid"
      stopped=1
    else
      rm -f "$run/nginx/nginx.pid"
    fi
  fi
  while read -r f e; do
    [ "$e" = chat-gateway ] || continue
    if alive "$f" "$e"; then live_nodes+=("$f"); else rm -f "$f"; fi
  done < <(pidfiles)
  if [ ${#live_nodes[@]} -gt 0 ]; then
    # SIGTERM drains (connections closed with 1001 over DRAIN_SECONDS); a second signal ends
    # the drain at once, so waiting more than drain + a few seconds is never needed.
    stop_pids TERM "$((${DRAIN_SECONDS:-10} + 5))" "${live_nodes[@]}"
    stopped=1
  fi
  if [ -f "$run/redis.pid" ]; then
    if alive "$run/redis.pid" redis-server; then
      stop_pids TERM 10 "$run/redis.pid"
      stopped=1
    else
      rm -f "$run/redis.pid"
    fi
  fi
  if [ $stopped -eq 1 ]; then say "stopped (logs kept in $run)"; else say "nothing was running"; fi
}

status() {
  local bad=0 i code
  if alive "$run/redis.pid" redis-server; then
    echo "redis   up    pid $(cat "$run/redis.pid")  127.0.0.1:$REDIS_PORT"
  else
    echo "redis   down"
    bad=1
  fi
  for i in $(seq 1 "$NODES"); do
    if alive "$run/node$i.pid" chat-gateway; then
      code="$(http_code "http://127.0.0.1:$(node_port "$i")/readyz")"
      echo "node$i   up    pid $(cat "$run/node$i.pid")  127.0.0.1:$(node_port "$i")  readyz $code"
      [ "$code" = 200 ] || bad=1
    else
      echo "node$i   down"
      bad=1
    fi
  done
  if alive "$run/nginx/nginx.pid" nginx; then
    echo "nginx   up    pid $(cat "$run/nginx/nginx.pid")  http $LB_PORT, https $LB_TLS_PORT"
  else
    echo "nginx   down"
    bad=1
  fi
  return $bad
}

logs() {
  local files=()
  mapfile -t files < <(ls "$run"/*.log "$run"/nginx/*.log 2>/dev/null)
  [ ${#files[@]} -gt 0 ] || die "no logs under $run (has the cluster run?)"
  exec tail -n 20 -F "${files[@]}"
}

cmd="${1:-}"
case "$cmd" in
  up | down | status | logs) ;;
  *)
    echo "usage: deploy/cluster.sh up|down|status|logs   (settings: see the top of this file)" >&2
    exit 2
    ;;
esac
load_settings
"$cmd"
