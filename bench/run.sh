#!/usr/bin/env bash
# bench/run.sh — runs named benchmark scenarios with build/chat-bench and writes the results
# (text report, JSON, latency plot per run, a summary) under bench/results/<date-time>/.
#
#   bench/run.sh                      all scenarios on a cluster it starts: small fanout throughput scale
#   bench/run.sh small fanout         only these
#   bench/run.sh --perf throughput    also perf-record a gateway at the highest clean rate
#   bench/run.sh --urls ws://h:9001/ws,ws://h:9002/ws [--pids 123,456] small
#                                     use running nodes instead (pids: for CPU/RSS figures)
#
# Scenarios (bench/README.md explains how to read them):
#   small       10 rooms x 20 subscribers (+1 publisher each) over all nodes, 100 publishes/s
#   fanout      1 room x 1000 subscribers (+1 publisher) over all nodes, 20 publishes/s
#   throughput  1 room x 100 subscribers (+3 publishers), rate raised step by step until p99 >
#               P99_LIMIT_MS or anything is lost; reports the highest clean deliveries/s
#   scale       SCALE_CONNS idle connections on one fresh node (heartbeat SCALE_HEARTBEAT s):
#               RSS per connection, CPU per connect, idle CPU
#
# The cluster it starts: one redis-server on REDIS_PORT and NODES gateways on BASE_PORT.., all
# on 127.0.0.1, started with per-connection rate limits high enough for the bench; logs go to
# the results directory; everything is stopped (by pid) on exit, also on Ctrl-C.
#
# Settings (environment): NODES (3), BASE_PORT (9101), REDIS_PORT (6490), JWT_SECRET,
# GATEWAY_BIN (build/chat-gateway), BENCH_BIN (build/chat-bench), DURATION (10), WARMUP (2),
# STEP_DURATION (6), THROUGHPUT_RATES ("250 500 1000 2000 3000 4000 6000 8000 12000"),
# P99_LIMIT_MS (50), SCALE_CONNS (20000), SCALE_HOLD (15), SCALE_HEARTBEAT (5), THREADS (auto),
# RESULTS_DIR (bench/results/<date-time>), REDIS_PID (with --urls: sample that redis-server too),
# QUIET_PCT (15) and QUIET_WAIT (60): before each run, wait up to QUIET_WAIT s for the machine
# to be under QUIET_PCT % busy (other people's processes skew a 2-core machine); 0 disables.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

NODES="${NODES:-3}"
BASE_PORT="${BASE_PORT:-9101}"
REDIS_PORT="${REDIS_PORT:-6490}"
JWT_SECRET="${JWT_SECRET:-bench-secret-$$}"
GATEWAY_BIN="${GATEWAY_BIN:-$root/build/chat-gateway}"
BENCH_BIN="${BENCH_BIN:-$root/build/chat-bench}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
STEP_DURATION="${STEP_DURATION:-6}"
THROUGHPUT_RATES="${THROUGHPUT_RATES:-250 500 1000 2000 3000 4000 6000 8000 12000}"
P99_LIMIT_MS="${P99_LIMIT_MS:-50}"
SCALE_CONNS="${SCALE_CONNS:-20000}"
SCALE_HOLD="${SCALE_HOLD:-15}"
SCALE_HEARTBEAT="${SCALE_HEARTBEAT:-5}"
THREADS="${THREADS:-}"
QUIET_PCT="${QUIET_PCT:-15}"
QUIET_WAIT="${QUIET_WAIT:-60}"

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; }

urls="" pids="" perf=0 scenarios=()
while [ $# -gt 0 ]; do
  case "$1" in
    --urls) urls="$2"; shift 2 ;;
    --urls=*) urls="${1#*=}"; shift ;;
    --pids) pids="$2"; shift 2 ;;
    --pids=*) pids="${1#*=}"; shift ;;
    --perf) perf=1; shift ;;
    -h|--help) usage; exit 0 ;;
    small|fanout|throughput|scale) scenarios+=("$1"); shift ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#scenarios[@]} -gt 0 ] || scenarios=(small fanout throughput scale)

out="${RESULTS_DIR:-$root/bench/results/$(date +%Y-%m-%d_%H%M%S)}"
mkdir -p "$out"
echo "run.sh: results in $out"

die() { echo "run.sh: $*" >&2; exit 1; }

# ---------- tools and binaries ----------

bash "$root/deploy/install-deps.sh" --bench
for tool in jq gnuplot; do
  command -v "$tool" >/dev/null || die "$tool is missing (deploy/install-deps.sh --bench installs it)"
done
if [ ! -x "$GATEWAY_BIN" ] || [ ! -x "$BENCH_BIN" ]; then
  echo "run.sh: building release binaries in $root/build" >&2
  mkdir -p "$root/build"
  # the same lock and settings as deploy/cluster.sh, which builds into the same directory
  (flock 8
   cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSANITIZE=OFF \
     -DINTEGRATION_TESTS=OFF >/dev/null
   cmake --build "$root/build" -j"$(nproc)" --target chat-gateway chat-bench
  ) 8>"$root/build/.cluster-build.lock"
fi
for bin in "$GATEWAY_BIN" "$BENCH_BIN"; do
  if ldd "$bin" 2>/dev/null | grep -q libasan; then
    echo "run.sh: WARNING: $bin is a sanitizer build; its CPU and memory figures mean little" >&2
  fi
done

# ---------- processes we start (stopped by pid on exit) ----------

started=()
cleanup() {
  local pid
  for pid in "${started[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${started[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  started=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http_200() { # url timeout_s
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null)" = "200" ] && return 0
    sleep 0.2
  done
  return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_redis() {
  port_busy "$REDIS_PORT" && die "port $REDIS_PORT (REDIS_PORT) is in use"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no >"$out/redis.log" 2>&1 &
  started+=($!)
  REDIS_PID=$!
  local deadline=$((SECONDS + 10))
  until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "redis did not start (see $out/redis.log)"
    sleep 0.1
  done
}

# start_node name port [extra gateway flags...]; prints the pid
start_node() {
  local name="$1" port="$2"; shift 2
  port_busy "$port" && die "port $port is in use (set BASE_PORT)"
  # 20k connections need more descriptors than the usual 1024: as many as we may have
  (ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
   exec "$GATEWAY_BIN" --port "$port" --bind 127.0.0.1 --redis "redis://127.0.0.1:$REDIS_PORT" \
     --node-id "$name" --jwt-secret "$JWT_SECRET" --rate 100000 --rate-burst 100000 \
     --log-level warn "$@") >"$out/$name.log" 2>&1 &
  local pid=$!
  started+=("$pid")
  wait_http_200 "http://127.0.0.1:$port/readyz" 15 || die "node $name not ready (see $out/$name.log)"
  node_pid="$pid"
}

if [ -z "$urls" ]; then
  start_redis
  url_list=() pid_list=()
  for i in $(seq 1 "$NODES"); do
    start_node "node$i" $((BASE_PORT + i - 1))
    url_list+=("ws://127.0.0.1:$((BASE_PORT + i - 1))/ws")
    pid_list+=("$node_pid")
  done
  urls="$(IFS=,; echo "${url_list[*]}")"
  pids="$(IFS=,; echo "${pid_list[*]}")"
  echo "run.sh: cluster up: redis :$REDIS_PORT, nodes $urls (pids $pids)"
fi
pid_args=()
[ -n "$pids" ] && pid_args=(--server-pid "$pids")
[ -n "${REDIS_PID:-}" ] && pid_args+=(--other-pid "$REDIS_PID")
thread_args=()
[ -n "$THREADS" ] && thread_args=(--threads "$THREADS")

# Busy % of all cores over one second, from /proc/stat.
machine_busy() {
  local _ u n s i w q sq st t1 i1
  read -r _ u n s i w q sq st _ </proc/stat
  t1=$((u + n + s + i + w + q + sq + st)) i1=$((i + w))
  sleep 1
  read -r _ u n s i w q sq st _ </proc/stat
  local t=$((u + n + s + i + w + q + sq + st - t1)) idle=$((i + w - i1))
  [ "$t" -gt 0 ] && echo $((100 * (t - idle) / t)) || echo 0
}

# Waits (bounded) until the machine is quiet enough to measure; logs the background load.
wait_quiet() {
  local name="$1" busy deadline=$((SECONDS + QUIET_WAIT))
  [ "$QUIET_WAIT" -gt 0 ] || return 0
  while :; do
    busy="$(machine_busy)"
    if [ "$busy" -le "$QUIET_PCT" ]; then break; fi
    if [ $SECONDS -ge $deadline ]; then
      echo "run.sh: machine still ${busy}% busy after ${QUIET_WAIT} s; measuring $name anyway" >&2
      break
    fi
  done
  printf '%s\t%s\n' "$name" "$busy" >>"$out/background-busy.tsv"
}

# bench NAME [chat-bench flags...]: one run; NAME.txt/.json/.png in $out
bench() {
  local name="$1"; shift
  wait_quiet "$name"
  echo "run.sh: --- $name: chat-bench $*" >&2
  "$BENCH_BIN" --label "$name" --jwt-secret "$JWT_SECRET" --json "$out/$name.json" \
    --plot "$out/$name.png" --quiet "${thread_args[@]}" "$@" | tee "$out/$name.txt"
}

# ---------- scenarios ----------

run_small() {
  bench small --url "$urls" "${pid_args[@]}" --rooms 10 --subs-per-room 20 --publishers 1 \
    --rate 100 --duration "$DURATION" --warmup "$WARMUP" || true
}

run_fanout() {
  bench fanout --url "$urls" "${pid_args[@]}" --rooms 1 --subs-per-room 1000 --publishers 1 \
    --rate 20 --duration "$DURATION" --warmup "$WARMUP" || true
}

run_throughput() {
  local tsv="$out/throughput.tsv" best=0 best_rate=0 fail_rate="" rate
  printf 'rate\tdeliveries_per_s\tp50_ms\tp99_ms\tlost\tclean\tserver_us_per_delivery\tgenerator_limited\tmachine_busy_pct\n' >"$tsv"
  for rate in $THROUGHPUT_RATES; do
    bench "throughput-$rate" --url "$urls" "${pid_args[@]}" --rooms 1 --subs-per-room 100 \
      --publishers 3 --rate "$rate" --duration "$STEP_DURATION" --warmup 1 || true
    local j="$out/throughput-$rate.json"
    [ -s "$j" ] || { fail_rate=$rate; break; }
    jq -r --arg r "$rate" '[$r, (.deliveries.per_s|floor), .latency.p50_ms, .latency.p99_ms,
        .deliveries.lost, .clean, .server.cpu_us_per_delivery, .generator.limited,
        (.generator.machine_busy_pct|floor)] | @tsv' "$j" >>"$tsv"
    local ok
    ok="$(jq --argjson lim "$P99_LIMIT_MS" '.clean and .deliveries.drained and .latency.p99_ms <= $lim' "$j")"
    if [ "$ok" = "true" ]; then
      best_rate=$rate
      best="$(jq '.deliveries.per_s|floor' "$j")"
    else
      fail_rate=$rate
      break
    fi
  done
  echo "$best_rate" >"$out/throughput.best_rate"
  echo "run.sh: throughput: highest clean rate $best_rate publishes/s = $best deliveries/s" \
       "(first failing rate: ${fail_rate:-none})" | tee "$out/throughput.txt"
  if [ -s "$tsv" ] && [ "$(wc -l <"$tsv")" -gt 2 ]; then
    gnuplot <<EOF || true
set terminal pngcairo size 900,500
set output '$out/throughput.png'
set title 'Throughput ramp: 1 room x 100 subscribers + 3 publishers'
set xlabel 'offered publishes/s'
set ylabel 'deliveries/s'
set y2label 'p99 latency (ms)'
set y2tics
set ytics nomirror
set logscale y2
set grid
set key left top
plot '$tsv' using 1:2 skip 1 with linespoints lw 2 title 'deliveries/s', \
     '' using 1:4 skip 1 axes x1y2 with linespoints lw 2 title 'p99 ms (right)', \
     $P99_LIMIT_MS axes x1y2 with lines dt 2 title 'p99 limit'
EOF
  fi
  if [ "$perf" = 1 ] && [ "$best_rate" != 0 ] && [ -n "$pids" ]; then
    local target="$pids" # every node: more samples, same code
    wait_quiet throughput-perf
    echo "run.sh: perf record of gateway pids $target at $best_rate publishes/s" >&2
    "$BENCH_BIN" --label "throughput-perf" --jwt-secret "$JWT_SECRET" --url "$urls" \
      "${pid_args[@]}" "${thread_args[@]}" --rooms 1 --subs-per-room 100 --publishers 3 \
      --rate "$best_rate" --duration "$STEP_DURATION" --warmup 1 --quiet \
      --json "$out/throughput-perf.json" >"$out/throughput-perf.txt" &
    local bench_pid=$!
    sleep 2
    perf record -e cpu-clock -F 1999 -g -p "$target" -o "$out/perf.data" \
      -- sleep $((STEP_DURATION - 2)) >/dev/null 2>&1 || true
    wait "$bench_pid" || true
    if [ -s "$out/perf.data" ]; then
      {
        echo "# gateway pids $target at $best_rate publishes/s: CPU by shared object (self time)"
        perf report -i "$out/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
          grep -v '^#' | grep -v '^$' | head -12 || true
        echo
        echo "# top functions (self time)"
        perf report -i "$out/perf.data" --no-children --sort dso,symbol --stdio -g none \
          --percent-limit 0.7 2>/dev/null | grep -v '^#' | grep -v '^$' | head -30 || true
        echo
        echo "# top user-space functions (self time, share of all samples)"
        perf report -i "$out/perf.data" --no-children --sort dso,symbol --stdio -g none \
          2>/dev/null | grep -v '^#' | grep -v '\[k\]' | grep -v '^$' | head -25 || true
        echo
        echo "# system calls and kernel paths entered from user space (children time)"
        perf report -i "$out/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
          grep -E '__x64_sys_|tcp_sendmsg|tcp_recvmsg|do_sys_poll|schedule' | head -15 || true
      } >"$out/perf-top.txt"
      echo "run.sh: perf: $out/perf-top.txt" >&2
      head -16 "$out/perf-top.txt" || true
    fi
  fi
}

run_scale() {
  local url pid conns="$SCALE_CONNS" hard
  # Both the bench and the node hold one descriptor per connection. Without CAP_SYS_RESOURCE
  # the hard RLIMIT_NOFILE cannot be raised, so stay a little under it.
  hard="$(ulimit -Hn)"
  if [ "$hard" != unlimited ] && [ $((conns + 100)) -gt "$hard" ] &&
     ! (ulimit -n $((conns + 256))) 2>/dev/null; then
    conns=$((hard - 100))
    echo "run.sh: scale: open-files hard limit is $hard and cannot be raised here:" \
         "using $conns connections instead of $SCALE_CONNS" | tee "$out/scale.note" >&2
  fi
  if [ -n "${url_list+x}" ]; then
    # a fresh node, so its RSS before connecting is a clean baseline
    start_node "scale" $((BASE_PORT + NODES)) --heartbeat "$SCALE_HEARTBEAT"
    url="ws://127.0.0.1:$((BASE_PORT + NODES))/ws"
    pid="$node_pid"
  else
    url="${urls%%,*}"
    pid="${pids%%,*}"
  fi
  local args=(--url "$url" --connections-only "$conns" --duration "$SCALE_HOLD"
              --source-addrs 4 --connect-concurrency 256)
  [ -n "$pid" ] && args+=(--server-pid "$pid")
  bench scale "${args[@]}" || true
}

for s in "${scenarios[@]}"; do "run_$s"; done

# ---------- summary ----------

{
  echo
  echo "summary ($(nproc) cores; machine shared by generator, Redis and nodes)"
  printf '%-16s %12s %9s %9s %9s %8s %8s %12s %10s\n' scenario deliveries/s p50_ms p99_ms max_ms lost clean "srv_us/deliv" gen_limit
  # in the order they ran
  for j in $(ls -tr "$out"/*.json 2>/dev/null); do
    jq -r 'select(.mode == "workload" and .label != "throughput-perf") | [.label, (.deliveries.per_s|floor), .latency.p50_ms,
        .latency.p99_ms, .latency.max_ms, .deliveries.lost, .clean,
        (.server.cpu_us_per_delivery*100|floor/100), .generator.limited] | @tsv' "$j" |
      awk -F'\t' '{printf "%-16s %12s %9.2f %9.2f %9.2f %8s %8s %12s %10s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9}'
  done
  if [ -e "$out/throughput.txt" ]; then cat "$out/throughput.txt"; fi
  if [ -e "$out/scale.note" ]; then cat "$out/scale.note"; fi
  if [ -e "$out/scale.json" ]; then
    jq -r '"scale: \(.connections.ready)/\(.connections.planned) connections, " +
      "\(.server.rss_per_conn_kib*100|floor/100) KiB RSS per connection, " +
      "\(.server.cpu_ms_per_connect*1000|floor/1000) ms CPU per connect, " +
      "idle CPU \(.server.cpu_pct*100|floor/100)% of a core over \(.server.window_s|floor) s"' "$out/scale.json"
  fi
} | tee "$out/summary.txt"
