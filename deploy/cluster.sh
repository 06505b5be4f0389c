#!/usr/bin/env bash
# Local cluster without Docker: Redis (one server, a Redis Cluster, or a Sentinel setup), NODES
# gateway nodes and nginx as the load balancer, all on this machine, all run as the invoking
# user, with state and logs under .run/ (gitignored). No system service is touched.
# `deploy/cluster.sh --help` prints the commands and every setting; docs/cluster.md explains them.
#
# Design: every process is a daemon whose pid file lives in RUN_DIR; `down`, `status` and
# restarts act on those pids only after checking that each still runs the expected program.
# The settings of the first `up` (ports, Redis mode, and every gateway setting: JWT_SECRET,
# API_KEY, DEV_TOKENS, ...) are recorded in RUN_DIR/cluster.env (mode 600: it holds secrets);
# while anything of the cluster runs, every command uses those, so a node that `up` restarts
# gets exactly the settings of the others, whatever the calling shell has set.
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
EXAMPLE_SECRET="dev-secret-change-me"
SENTINEL_MASTER="mymaster"
CLUSTER_NODE_TIMEOUT_MS=2000

usage() {
  cat <<'EOF'
deploy/cluster.sh — a local chat-gateway cluster: Redis, gateway nodes, nginx as load balancer.

Commands:
  up [--redis-cluster | --redis-sentinel]
           install missing packages, build if needed, start whatever is not running, wait until
           Redis, every node's /readyz and the load balancer answer. Safe to repeat: it restarts
           what stopped, with the settings recorded at the first `up`.
           --redis-cluster   Redis Cluster, 3 masters + 3 replicas on REDIS_PORT..REDIS_PORT+5
                             (cluster-node-timeout 2000 ms); nodes get
                             REDIS_URL=redis+cluster://127.0.0.1:REDIS_PORT,..+1,..+2
           --redis-sentinel  a master (REDIS_PORT), a replica (+1) and three Sentinels (+2..+4)
                             watching master name "mymaster"; nodes get
                             REDIS_URL=redis+sentinel://127.0.0.1:REDIS_PORT+2,..+3,..+4/mymaster
           (default: one redis-server on REDIS_PORT). Every Redis keeps an append-only file
           (appendfsync everysec) under RUN_DIR, so a Redis restart keeps history.
  down     stop exactly what `up` started (nginx, nodes with a drain, Sentinels, Redis)
  status   what runs, each node's readiness and the Redis topology (masters, replicas, slots,
           or the Sentinels' master); exit 1 if anything is down
  logs     follow every log
  --help   this text

Settings (environment; recorded at the first `up`, reused until `down`):
  NODES=3               gateway nodes, 0..64 (0: Redis only, no nodes and no load balancer)
  BASE_PORT=9001        node i listens on 127.0.0.1:BASE_PORT+i-1
  REDIS_PORT=6390       first Redis port (see --redis-cluster / --redis-sentinel)
  LB_PORT=8080 LB_TLS_PORT=8443   nginx, plain and TLS
  LB_BIND=127.0.0.1     address nginx listens on; another address than loopback is refused
                        while JWT_SECRET is the example secret or DEV_TOKENS is on
  NGINX_WORKERS=2       RUN_DIR=<repo>/.run (state, pids, logs)
  CLUSTER_BUILD_DIR=<dir>  run the chat-gateway/chat-token found there; build nothing
  JWT_SECRET=dev-secret-change-me   HS256 secret of every node
  DEV_TOKENS=1          the /dev/token endpoint of the demo page (0 turns it off)
  API_KEY=<key>         turns on the backend API (POST /api/publish, /api/direct), e.g.
                        API_KEY=$(openssl rand -hex 16) deploy/cluster.sh up
  and any other gateway setting by its env name (build/chat-gateway --help), e.g. HEARTBEAT=10.
To change recorded settings: deploy/cluster.sh down, then up with the new ones.
EOF
}

say() { echo "cluster: $*"; }
die() {
  echo "cluster: error: $*" >&2
  exit 1
}

# ---------- settings ----------

RECORDED=0           # 1 when the settings come from a running cluster's cluster.env
ASKED_MODE=""        # from up's --redis-* flag
GATEWAY_ENV=""       # names of the gateway settings recorded in cluster.env
RUNNER_VARS=(NODES BASE_PORT REDIS_PORT LB_PORT LB_TLS_PORT LB_BIND NGINX_WORKERS REDIS_MODE)

# Loads the settings: those recorded by a running cluster win over the environment, so that
# `status`/`down` after `NODES=5 up` still see five nodes, and a restarted node gets the same
# JWT_SECRET and API_KEY as the others.
load_settings() {
  local v kv
  local -A asked=()
  if [ -n "$ASKED_MODE" ]; then REDIS_MODE="$ASKED_MODE"; fi
  if [ -f "$run/cluster.env" ] && any_alive; then
    while IFS= read -r -d '' kv; do asked["${kv%%=*}"]="${kv#*=}"; done < <(env -0)
    [ -z "$ASKED_MODE" ] || asked[REDIS_MODE]="$ASKED_MODE"
    # shellcheck source=/dev/null
    . "$run/cluster.env"
    RECORDED=1
    for v in "${RUNNER_VARS[@]}" $GATEWAY_ENV; do
      if [ -z "${asked[$v]+x}" ] || [ "${asked[$v]}" = "${!v:-}" ]; then continue; fi
      case "$v" in
        JWT_SECRET | API_KEY) echo "cluster: note: the cluster in $run runs with another $v; 'down' first to change it" >&2 ;;
        *) echo "cluster: note: the cluster in $run runs with $v=${!v:-}, not ${asked[$v]}; 'down' first to change it" >&2 ;;
      esac
    done
  fi
  NODES="${NODES:-3}"
  BASE_PORT="${BASE_PORT:-9001}"
  REDIS_PORT="${REDIS_PORT:-6390}"
  LB_PORT="${LB_PORT:-8080}"
  LB_TLS_PORT="${LB_TLS_PORT:-8443}"
  LB_BIND="${LB_BIND:-127.0.0.1}"
  NGINX_WORKERS="${NGINX_WORKERS:-2}"
  REDIS_MODE="${REDIS_MODE:-single}"
  DEV_TOKENS="${DEV_TOKENS:-1}"
  JWT_SECRET="${JWT_SECRET:-$EXAMPLE_SECRET}"
  export JWT_SECRET DEV_TOKENS
  for v in NODES BASE_PORT REDIS_PORT LB_PORT LB_TLS_PORT NGINX_WORKERS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number (got '${!v}')"
  done
  if [ "$NODES" -gt 64 ]; then die "NODES must be 0..64 (got $NODES)"; fi
  if [ "$REDIS_PORT" -gt 55000 ]; then die "REDIS_PORT must be at most 55000 (Redis Cluster uses port+10000 too)"; fi
}

# The gateway's settings by env name, from its own --help (the ENVIRONMENT column).
gateway_env_names() {
  "$bin" --help | awk '
    /^ *FLAG +ENVIRONMENT/ { col = index($0, "ENVIRONMENT"); next }
    col && /^ +-/ { name = substr($0, col); sub(/ .*/, "", name); if (name ~ /^[A-Z][A-Z0-9_]*$/) print name }'
}

# First `up`: records the runner's settings and every gateway setting set in the environment
# (except those the runner sets per node). Later `up`s: the nodes get exactly the recorded
# gateway settings — one set in this shell but not recorded is unset.
record_or_apply_settings() {
  local names v
  mapfile -t names < <(gateway_env_names)
  [ ${#names[@]} -gt 0 ] || die "could not read the settings from $bin --help"
  if [ "$RECORDED" = 1 ]; then
    for v in "${names[@]}"; do
      case " $GATEWAY_ENV GATEWAY_PORT NODE_ID REDIS_URL " in *" $v "*) continue ;; esac
      if [ -n "${!v+x}" ]; then
        echo "cluster: note: the cluster in $run runs without $v; 'down' first to change it" >&2
        unset "$v"
      fi
    done
    return 0
  fi
  GATEWAY_ENV=""
  for v in "${names[@]}"; do
    case "$v" in GATEWAY_PORT | NODE_ID | REDIS_URL) continue ;; esac
    if [ -n "${!v+x}" ]; then GATEWAY_ENV+="${GATEWAY_ENV:+ }$v"; fi
  done
  (
    umask 077
    {
      echo "# written by deploy/cluster.sh up (first up); used by every command while the cluster runs"
      for v in "${RUNNER_VARS[@]}"; do printf '%s=%q\n' "$v" "${!v}"; done
      printf 'GATEWAY_ENV=%q\n' "$GATEWAY_ENV"
      for v in $GATEWAY_ENV; do printf 'export %s=%q\n' "$v" "${!v}"; done
    } >"$run/cluster.env"
  )
}

node_port() { echo $((BASE_PORT + $1 - 1)); }

# Data ports of the Redis topology, and the Sentinels' ports.
redis_ports() {
  case "$REDIS_MODE" in
    single) echo "$REDIS_PORT" ;;
    cluster) seq "$REDIS_PORT" $((REDIS_PORT + 5)) ;;
    sentinel) seq "$REDIS_PORT" $((REDIS_PORT + 1)) ;;
  esac
}
sentinel_ports() { if [ "$REDIS_MODE" = sentinel ]; then seq $((REDIS_PORT + 2)) $((REDIS_PORT + 4)); fi; }

redis_url() {
  case "$REDIS_MODE" in
    single) echo "redis://127.0.0.1:$REDIS_PORT" ;;
    cluster) echo "redis+cluster://127.0.0.1:$REDIS_PORT,127.0.0.1:$((REDIS_PORT + 1)),127.0.0.1:$((REDIS_PORT + 2))" ;;
    sentinel) echo "redis+sentinel://127.0.0.1:$((REDIS_PORT + 2)),127.0.0.1:$((REDIS_PORT + 3)),127.0.0.1:$((REDIS_PORT + 4))/$SENTINEL_MASTER" ;;
  esac
}

redis_pidfile() { if [ "$REDIS_MODE" = single ]; then echo "$run/redis.pid"; else echo "$run/redis-$1.pid"; fi; }

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
  for f in "$run"/sentinel-*.pid; do [ -e "$f" ] && echo "$f redis-sentinel"; done
  for f in "$run"/redis.pid "$run"/redis-*.pid; do [ -e "$f" ] && echo "$f redis-server"; done
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

rcli() { redis-cli -h 127.0.0.1 -p "$@" 2>/dev/null; } # port command... (no error output)

wait_until() { # timeout_s what command... — polls the command until it succeeds
  local timeout="$1" what="$2" deadline=$((SECONDS + $1))
  shift 2
  until "$@" >/dev/null; do
    [ $SECONDS -lt $deadline ] || die "$what within $timeout s (logs in $run)"
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

# ---------- checks ----------

is_loopback() { case "$1" in 127.* | ::1 | localhost) return 0 ;; *) return 1 ;; esac; }

# The rule of the container image's entrypoint, applied to the load balancer (and to nodes
# listening beyond loopback): no example secret and no dev tokens when reachable from outside.
check_exposure() {
  local addr=""
  [ "$NODES" -gt 0 ] || return 0
  is_loopback "$LB_BIND" || addr="$LB_BIND"
  [ -n "$addr" ] || is_loopback "${GATEWAY_BIND:-127.0.0.1}" || addr="$GATEWAY_BIND"
  [ -n "$addr" ] || return 0
  local refusal
  refusal="$(LB_BIND="$addr" sh "$root/deploy/gateway-entrypoint.sh" --check 2>&1)" ||
    die "${refusal#gateway-entrypoint: }"
}

check_ports() {
  local busy=() i p
  for p in $(redis_ports); do
    alive "$(redis_pidfile "$p")" redis-server && continue
    port_busy "$p" && busy+=("$p (Redis, from REDIS_PORT)")
    if [ "$REDIS_MODE" = cluster ] && port_busy $((p + 10000)); then busy+=("$((p + 10000)) (Redis Cluster bus of $p)"); fi
  done
  for p in $(sentinel_ports); do
    alive "$run/sentinel-$p.pid" redis-sentinel || { port_busy "$p" && busy+=("$p (Sentinel, from REDIS_PORT)"); }
  done
  for i in $(seq 1 "$NODES"); do
    alive "$run/node$i.pid" chat-gateway ||
      { port_busy "$(node_port "$i")" && busy+=("$(node_port "$i") (BASE_PORT+$((i - 1)), node $i)"); }
  done
  if [ "$NODES" -gt 0 ] && ! alive "$run/nginx/nginx.pid" nginx; then
    port_busy "$LB_PORT" && busy+=("$LB_PORT (LB_PORT, nginx)")
    port_busy "$LB_TLS_PORT" && busy+=("$LB_TLS_PORT (LB_TLS_PORT, nginx TLS)")
  fi
  if [ ${#busy[@]} -gt 0 ]; then
    for p in "${busy[@]}"; do echo "cluster: error: port $p is already in use by another program" >&2; done
    die "nothing was started; free the port(s) or choose others, e.g. LB_PORT=8081 REDIS_PORT=6391 BASE_PORT=9101 deploy/cluster.sh up"
  fi
}

# ---------- Redis ----------

# Starts one redis-server daemon with AOF (appendfsync everysec) in its own directory, unless
# its pidfile names a live one, and waits for PING. Extra arguments are appended. A replica
# syncs at once (no 5 s diskless-sync delay), so a failover soon after `up` keeps the data.
start_redis_server() { # port [args...]
  local port="$1" pidfile dir log
  shift
  pidfile="$(redis_pidfile "$port")"
  alive "$pidfile" redis-server && return 0
  if [ "$REDIS_MODE" = single ]; then dir="$run/redis" log="$run/redis.log"; else dir="$run/redis-$port" log="$run/redis-$port.log"; fi
  rm -f "$pidfile"
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
    --repl-diskless-sync-delay 0 --dir "$dir" --daemonize yes --pidfile "$pidfile" --logfile "$log" "$@" ||
    die "redis-server on $port did not start (see $log)"
  wait_until 10 "redis on $port did not answer PING" rcli "$port" ping
}

cluster_formed() { rcli "$REDIS_PORT" cluster info | grep -q '^cluster_known_nodes:6'; }

# Every node serves all slots and sees three replicas (roles settle a moment after `create`).
cluster_ok_everywhere() {
  local p
  for p in $(redis_ports); do
    rcli "$p" cluster info | grep -q '^cluster_state:ok' || return 1
    [ "$(rcli "$p" cluster nodes | awk '$3 ~ /slave/ && $3 !~ /fail/' | wc -l)" -eq 3 ] || return 1
  done
}

start_redis_cluster() {
  local p addrs=()
  for p in $(redis_ports); do
    start_redis_server "$p" --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout "$CLUSTER_NODE_TIMEOUT_MS"
    addrs+=("127.0.0.1:$p")
  done
  if ! cluster_formed; then
    say "forming a Redis Cluster of ${#addrs[@]} nodes (3 masters, 3 replicas)"
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
      >>"$run/redis-cluster-create.log" 2>&1 ||
      die "redis-cli --cluster create failed (see $run/redis-cluster-create.log; to start over: deploy/cluster.sh down && rm -rf $run/redis-*)"
  fi
  wait_until "$READY_TIMEOUT_S" "the Redis Cluster did not reach cluster_state:ok" cluster_ok_everywhere
}

# The master's port as the first Sentinel that answers names it; nothing when none answers.
sentinel_master_port() {
  local s port
  for s in $(sentinel_ports); do
    alive "$run/sentinel-$s.pid" redis-sentinel || continue
    port="$(rcli "$s" sentinel get-master-addr-by-name "$SENTINEL_MASTER" | sed -n 2p)"
    if [ -n "$port" ]; then
      echo "$port"
      return 0
    fi
  done
}

sentinels_agree() {
  local s
  for s in $(sentinel_ports); do
    rcli "$s" sentinel master "$SENTINEL_MASTER" | paste - - | grep -q '^num-other-sentinels[[:space:]]2$' || return 1
    rcli "$s" sentinel master "$SENTINEL_MASTER" | paste - - | grep -q '^num-slaves[[:space:]]1$' || return 1
  done
}

start_redis_sentinel() {
  local master p s dir
  master="$(sentinel_master_port)"
  # A fresh cluster forgets the Sentinels' view of an earlier run; a restart keeps it, and a
  # data node that comes back joins the master the Sentinels name.
  [ "$RECORDED" = 1 ] || rm -rf "$run"/sentinel-*/
  for p in $(redis_ports); do
    if [ -n "$master" ] && [ "$master" != "$p" ]; then
      start_redis_server "$p" --replicaof 127.0.0.1 "$master"
    elif [ -z "$master" ] && [ "$p" != "$REDIS_PORT" ]; then
      start_redis_server "$p" --replicaof 127.0.0.1 "$REDIS_PORT"
    else
      start_redis_server "$p"
    fi
  done
  for s in $(sentinel_ports); do
    alive "$run/sentinel-$s.pid" redis-sentinel && continue
    dir="$run/sentinel-$s"
    mkdir -p "$dir"
    if [ ! -f "$dir/sentinel.conf" ]; then
      printf '%s\n' "sentinel monitor $SENTINEL_MASTER 127.0.0.1 ${master:-$REDIS_PORT} 2" \
        "sentinel down-after-milliseconds $SENTINEL_MASTER 2000" \
        "sentinel failover-timeout $SENTINEL_MASTER 10000" >"$dir/sentinel.conf"
    fi
    rm -f "$run/sentinel-$s.pid"
    redis-sentinel "$dir/sentinel.conf" --port "$s" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
      --pidfile "$run/sentinel-$s.pid" --logfile "$run/sentinel-$s.log" ||
      die "redis-sentinel on $s did not start (see $run/sentinel-$s.log)"
  done
  wait_until "$READY_TIMEOUT_S" "the Sentinels did not find each other and the replica" sentinels_agree
}

start_redis() {
  case "$REDIS_MODE" in
    single) start_redis_server "$REDIS_PORT" ;;
    cluster) start_redis_cluster ;;
    sentinel) start_redis_sentinel ;;
  esac
}

# ---------- nodes and nginx ----------

start_node() { # index
  local i="$1" port
  port="$(node_port "$1")"
  alive "$run/node$i.pid" chat-gateway && return 0
  # setsid: a Ctrl-C in the terminal while `up` waits must not reach the nodes.
  REDIS_URL="$(redis_url)" NODE_ID="node$i" GATEWAY_PORT="$port" \
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

start_gateways() {
  local i
  [ "$NODES" -gt 0 ] || return 0
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
}

up() {
  local t0
  t0="$(date +%s%N)"
  mkdir -p "$run"
  build
  check_exposure
  check_ports
  record_or_apply_settings
  [ "$NODES" -eq 0 ] || bash "$root/deploy/gen-cert.sh" "$run/tls/cert.pem" "$run/tls/key.pem"
  start_redis
  start_gateways
  say "up in $(awk -v d="$(($(date +%s%N) - t0))" 'BEGIN { printf "%.1f", d / 1e9 }') s: Redis ($REDIS_MODE) from 127.0.0.1:$REDIS_PORT," \
    "$NODES node(s)$([ "$NODES" -eq 0 ] || echo " on $(node_port 1)..$(node_port "$NODES"), nginx on $LB_PORT (TLS $LB_TLS_PORT)"); state in $run"
  print_usage_hints
}

# What to do with the cluster now: URLs, a dev token, the backend API, how to stop.
print_usage_hints() {
  local host="127.0.0.1" token="" api="http://127.0.0.1:$LB_PORT/api/publish"
  echo "  redis     REDIS_URL=$(redis_url)"
  if [ "$NODES" -eq 0 ]; then
    echo "  nodes     none (NODES=0): run gateways with --redis \"$(redis_url)\""
    echo "  stop      deploy/cluster.sh down"
    return 0
  fi
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
  if [ -n "${API_KEY:-}" ]; then
    echo "  backend   curl -X POST $api -H \"Authorization: Bearer \$API_KEY\" -H 'Content-Type: application/json' -d '{\"room\":\"general\",\"data\":{\"hello\":1}}'"
  else
    echo "  backend   API off; to turn it on: deploy/cluster.sh down; API_KEY=\$(openssl rand -hex 16) deploy/cluster.sh up"
  fi
  if [ "$RECORDED" = 1 ]; then
    echo "  settings  as recorded at the first up: ${GATEWAY_ENV:-none} (down, then up, to change them)"
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

# Stops the live processes of one kind (those whose pidfile matches `expect`); forgets stale
# pidfiles. Prints "stopped" when it stopped something.
stop_kind() { # expect timeout_s
  local f e live=()
  while read -r f e; do
    [ "$e" = "$1" ] || continue
    if alive "$f" "$e"; then live+=("$f"); else rm -f "$f"; fi
  done < <(pidfiles)
  [ ${#live[@]} -gt 0 ] || return 0
  stop_pids TERM "$2" "${live[@]}"
  echo stopped
}

down() {
  local stopped=""
  stopped+="$(stop_kind nginx 10)"
  # SIGTERM drains (connections closed with 1001 over DRAIN_SECONDS); a second signal ends
  # the drain at once, so waiting more than drain + a few seconds is never needed.
  stopped+="$(stop_kind chat-gateway "$((${DRAIN_SECONDS:-10} + 5))")"
  # Sentinels before the data nodes, so that stopping a master starts no failover.
  stopped+="$(stop_kind redis-sentinel 10)"
  stopped+="$(stop_kind redis-server 10)"
  if [ -n "$stopped" ]; then say "stopped (logs kept in $run)"; else say "nothing was running"; fi
}

# ---------- status ----------

pid_of() { if alive "$1" "$2"; then cat "$1"; else echo "-"; fi; }

status_redis_single() {
  if alive "$run/redis.pid" redis-server; then
    echo "redis   up    pid $(cat "$run/redis.pid")  127.0.0.1:$REDIS_PORT  appendonly $(rcli "$REDIS_PORT" config get appendonly | sed -n 2p)"
  else
    echo "redis   down"
    return 1
  fi
}

status_redis_cluster() {
  local p seed="" bad=0 nodes
  for p in $(redis_ports); do
    if alive "$(redis_pidfile "$p")" redis-server; then seed="${seed:-$p}"; else echo "redis   127.0.0.1:$p down"; bad=1; fi
  done
  [ -n "$seed" ] || return 1
  echo "redis   cluster  $(rcli "$seed" cluster info | tr -d '\r' | grep -E '^cluster_(state|known_nodes|slots_assigned):' | tr '\n' ' ')"
  rcli "$seed" cluster info | grep -q '^cluster_state:ok' || bad=1
  nodes="$(rcli "$seed" cluster nodes)"
  # One line per node, by port: address, role, then slots (masters) or the master (replicas).
  echo "$nodes" | awk '
    { a = $2; sub(/@.*/, "", a); addr[$1] = a; ids[++n] = $1; flags[$1] = $3; of[$1] = $4
      s = ""; for (j = 9; j <= NF; j++) s = s " " $j; slots[$1] = s }
    END {
      for (i = 1; i <= n; i++) {
        id = ids[i]
        role = flags[id] ~ /master/ ? "master" : "replica"
        if (flags[id] ~ /fail/) role = role "(failed)"
        print addr[id], role, (role ~ /^master/ ? "slots" slots[id] : "of " addr[of[id]])
      }
    }' | sort -t: -k2 -n | while read -r a role rest; do
    p="${a##*:}"
    printf '  %-8s %-16s pid %-8s %s\n' "$role" "$a" "$(pid_of "$(redis_pidfile "$p")" redis-server)" "$rest"
  done
  return $bad
}

status_redis_sentinel() {
  local p s master bad=0 agree=0 role
  master="$(sentinel_master_port)"
  for s in $(sentinel_ports); do
    [ "$(rcli "$s" sentinel get-master-addr-by-name "$SENTINEL_MASTER" | sed -n 2p)" = "${master:-x}" ] && agree=$((agree + 1))
  done
  if [ -n "$master" ]; then
    echo "redis   sentinel  master $SENTINEL_MASTER at 127.0.0.1:$master ($agree/3 Sentinels agree)"
  else
    echo "redis   sentinel  no Sentinel answers"
    bad=1
  fi
  [ "$agree" -eq 3 ] || bad=1
  for p in $(redis_ports); do
    if alive "$(redis_pidfile "$p")" redis-server; then
      role="$(rcli "$p" role | head -1)"
      [ "$role" = slave ] && role="replica of 127.0.0.1:$(rcli "$p" role | sed -n 3p), link $(rcli "$p" role | sed -n 4p)"
      printf '  %-8s 127.0.0.1:%-6s pid %-8s %s\n' data "$p" "$(cat "$(redis_pidfile "$p")")" "$role"
    else
      printf '  %-8s 127.0.0.1:%-6s down\n' data "$p"
      bad=1
    fi
  done
  for s in $(sentinel_ports); do
    if alive "$run/sentinel-$s.pid" redis-sentinel; then
      printf '  %-8s 127.0.0.1:%-6s pid %s\n' sentinel "$s" "$(cat "$run/sentinel-$s.pid")"
    else
      printf '  %-8s 127.0.0.1:%-6s down\n' sentinel "$s"
      bad=1
    fi
  done
  return $bad
}

status() {
  local bad=0 i code
  "status_redis_$REDIS_MODE" || bad=1
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
  [ "$NODES" -gt 0 ] || return $bad
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
  -h | --help | help)
    usage
    exit 0
    ;;
  up)
    case "${2:-}" in
      "") ;;
      --redis-cluster) ASKED_MODE=cluster ;;
      --redis-sentinel) ASKED_MODE=sentinel ;;
      *) die "unknown option for up: $2 (--redis-cluster or --redis-sentinel; see --help)" ;;
    esac
    ;;
  down | status | logs) ;;
  *)
    echo "usage: deploy/cluster.sh up [--redis-cluster|--redis-sentinel] | down | status | logs | --help" >&2
    exit 2
    ;;
esac
load_settings
"$cmd"
