#!/usr/bin/env bash
# bench/run.sh — runs named benchmark scenarios with build/chat-bench and writes the results
# (text report, JSON, latency plot per run, a summary) under bench/results/<date-time>/.
#
#   bench/run.sh                      all scenarios on a cluster it starts: small fanout throughput scale
#   bench/run.sh small fanout         only these
#   bench/run.sh --perf throughput    also perf-record a gateway at the highest clean rate
#   bench/run.sh --syscalls throughput  also count the nodes' system calls per delivery there
#   bench/run.sh --urls ws://h:9001/ws,ws://h:9002/ws [--pids 123,456] small
#                                     use running nodes instead (pids: for CPU/RSS figures)
#
# Scenarios (bench/README.md explains how to read them):
#   small       10 rooms x 20 subscribers (+1 publisher each) over all nodes, 100 publishes/s
#   fanout      1 room x 1000 subscribers (+1 publisher) over all nodes, 20 publishes/s
#   throughput  1 room x 100 subscribers (+3 publishers), rate raised step by step until p99 >
#               P99_LIMIT_MS or anything is lost; reports the highest clean deliveries/s
#   scale       SCALE_STEPS idle connections, each on a fresh node (heartbeat SCALE_HEARTBEAT s):
#               RSS per connection, CPU per connect, idle CPU per 1,000 connections, and that
#               cost extrapolated to 100k connections
# After small, fanout and throughput, bench-floor measures the kernel's CPU per send() at the
# same socket count and message size; the reports give the gateway's CPU per delivery as a
# multiple of it (bench/README.md, "The floor").
#
# The cluster it starts: one redis-server on REDIS_PORT and NODES gateways on BASE_PORT.., all
# on 127.0.0.1, started with per-connection rate limits high enough for the bench; logs go to
# the results directory; everything is stopped (by pid) on exit, also on Ctrl-C.
#
# Settings (environment): NODES (3), BASE_PORT (9101), REDIS_PORT (6490), JWT_SECRET,
# GATEWAY_BIN (build/chat-gateway), BENCH_BIN (build/chat-bench), DURATION (10), WARMUP (2),
# STEP_DURATION (6), THROUGHPUT_RATES ("250 500 1000 2000 3000 4000 6000 8000 12000"),
# P99_LIMIT_MS (50), SCALE_CONNS (20000), SCALE_STEPS ("2000 5000 10000 SCALE_CONNS"),
# SCALE_HOLD (15), SCALE_HEARTBEAT (5), THREADS (auto), FLOOR_BIN (bench-floor next to
# BENCH_BIN), FLOOR_DURATION (2 s per case), FLOOR_COALESCE ("1,8" frames per send),
# SYSCALLS_WINDOW (5 s), SYSCALLS_RATE (the highest clean rate, else 1000),
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
SCALE_STEPS="${SCALE_STEPS:-2000 5000 10000 $SCALE_CONNS}"
FLOOR_BIN="${FLOOR_BIN:-$(dirname "$BENCH_BIN")/bench-floor}"
FLOOR_DURATION="${FLOOR_DURATION:-2}"
FLOOR_COALESCE="${FLOOR_COALESCE:-1,8}"
SYSCALLS_WINDOW="${SYSCALLS_WINDOW:-5}"
SYSCALLS_RATE="${SYSCALLS_RATE:-}"
THREADS="${THREADS:-}"
QUIET_PCT="${QUIET_PCT:-15}"
QUIET_WAIT="${QUIET_WAIT:-60}"

usage() { sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'; }

urls="" pids="" perf=0 syscalls=0 scenarios=()
while [ $# -gt 0 ]; do
  case "$1" in
    --urls) urls="$2"; shift 2 ;;
    --urls=*) urls="${1#*=}"; shift ;;
    --pids) pids="$2"; shift 2 ;;
    --pids=*) pids="${1#*=}"; shift ;;
    --perf) perf=1; shift ;;
    --syscalls) syscalls=1; shift ;;
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
tools=(jq gnuplot)
[ "$syscalls" = 1 ] && tools+=(strace)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || die "$tool is missing (deploy/install-deps.sh --bench installs it)"
done
if [ ! -x "$GATEWAY_BIN" ] || [ ! -x "$BENCH_BIN" ] || [ ! -x "$FLOOR_BIN" ]; then
  echo "run.sh: building release binaries in $root/build" >&2
  mkdir -p "$root/build"
  # the same lock and settings as deploy/cluster.sh, which builds into the same directory
  (flock 8
   cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSANITIZE=OFF \
     -DINTEGRATION_TESTS=OFF >/dev/null
   cmake --build "$root/build" -j"$(nproc)" --target chat-gateway chat-bench bench-floor
  ) 8>"$root/build/.cluster-build.lock"
fi
for bin in "$GATEWAY_BIN" "$BENCH_BIN" "$FLOOR_BIN"; do
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

# ---------- the floor: the kernel's CPU per send() at a scenario's shape ----------

# floor_file LABEL: the bench-floor JSON that belongs to a run labelled LABEL (the ramp's steps
# share one, measured once after the ramp).
floor_file() {
  case "$1" in
    throughput-*) echo "$out/throughput.floor.json" ;;
    *) echo "$out/$1.floor.json" ;;
  esac
}

# run_floor NAME SCENARIO_JSON: bench-floor at the socket count (every connection of the run:
# the sending ends live in the nodes, the receiving ends in the generator, as bench-floor's
# sender and drainer do), the message size and the send rate of that run (rounds of one send
# per socket, paced at deliveries/s / sockets: bursts at the scenario's pace cost more per
# send than a tight loop, as caches go cold between them); NAME.floor.txt/.json in $out.
run_floor() {
  local name="$1" j="$2" sockets bytes round_rate
  [ -s "$j" ] || return 0
  sockets="$(jq '.connections.ready' "$j")"
  bytes="$(jq '.deliveries.message_bytes|round' "$j")"
  round_rate="$(jq 'if .connections.ready > 0 then .deliveries.per_s / .connections.ready else 0 end' "$j")"
  if [ "$sockets" -lt 1 ] || [ "$bytes" -lt 1 ]; then
    echo "run.sh: $name: no deliveries to size the floor from; floor skipped" >&2
    return 0
  fi
  wait_quiet "$name-floor"
  echo "run.sh: --- $name-floor: bench-floor --sockets $sockets --message-bytes $bytes" \
       "--round-rate $round_rate" >&2
  "$FLOOR_BIN" --label "$name" --sockets "$sockets" --message-bytes "$bytes" \
    --round-rate "$round_rate" --coalesce "$FLOOR_COALESCE" --duration "$FLOOR_DURATION" \
    --json "$out/$name.floor.json" >"$out/$name.floor.txt" || true
  cat "$out/$name.floor.txt"
}

# floor_line RUN_JSON: "gateway X µs per delivery = R x the floor ..." for that run, or nothing.
floor_line() {
  local f
  [ -s "$1" ] || return 0
  f="$(floor_file "$(jq -r .label "$1")")"
  [ -s "$f" ] || return 0
  jq -rn --slurpfile r "$1" --slurpfile f "$f" '
    ($r[0].server.cpu_us_per_delivery) as $g | $f[0] as $f | $f.cases[0] as $one |
    ($f.cases | map(select(.frames_per_send > 1)) | last) as $k |
    def r2: . * 100 | round / 100;
    "floor         \($one.cpu_us_per_send|r2) µs CPU per send() of one \($f.frame_bytes)-byte" +
    " frame over \($f.sockets) sockets at \($f.round_rate|r2) rounds/s" +
    (if $k then ", \($k.cpu_us_per_frame|r2) µs per frame at \($k.frames_per_send) per send" else "" end) +
    (if $f.ok then "" else " (probe FAILED: not a floor)" end) +
    (if $g > 0 and $one.cpu_us_per_send > 0 then
       "\nvs floor      gateway \($g|r2) µs per delivery = \($g / $one.cpu_us_per_send|r2) x the floor" +
       (if $k then " (\($g / $k.cpu_us_per_frame|r2) x the \($k.frames_per_send)-frame floor)" else "" end)
     else "" end)'
}

# ---------- scenarios ----------

run_small() {
  bench small --url "$urls" "${pid_args[@]}" --rooms 10 --subs-per-room 20 --publishers 1 \
    --rate 100 --duration "$DURATION" --warmup "$WARMUP" || true
  run_floor small "$out/small.json"
  floor_line "$out/small.json" | tee -a "$out/small.txt"
}

run_fanout() {
  bench fanout --url "$urls" "${pid_args[@]}" --rooms 1 --subs-per-room 1000 --publishers 1 \
    --rate 20 --duration "$DURATION" --warmup "$WARMUP" || true
  run_floor fanout "$out/fanout.json"
  floor_line "$out/fanout.json" | tee -a "$out/fanout.txt"
}

# After the ramp: the floor at its shape and the pace of its highest clean rate (else its first
# step), an x_floor column in throughput.tsv, and the line for that rate in throughput.txt.
throughput_floor() {
  local best_rate="$1" tsv="$out/throughput.tsv" shape floor_us
  shape="$out/throughput-$best_rate.json"
  [ -s "$shape" ] || shape="$(ls -tr "$out"/throughput-*.json 2>/dev/null | head -1)"
  [ -n "$shape" ] || return 0
  run_floor throughput "$shape"
  [ -s "$out/throughput.floor.json" ] || return 0
  floor_us="$(jq '.cases[0].cpu_us_per_send' "$out/throughput.floor.json")"
  awk -F'\t' -v OFS='\t' -v f="$floor_us" \
    'NR == 1 { print $0, "x_floor"; next } { print $0, (f > 0 ? sprintf("%.2f", $7 / f) : "") }' \
    "$tsv" >"$tsv.tmp" && mv "$tsv.tmp" "$tsv"
  if [ "$best_rate" != 0 ]; then
    { echo "at $best_rate publishes/s:"; floor_line "$out/throughput-$best_rate.json"; } |
      tee -a "$out/throughput.txt"
  fi
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
  throughput_floor "$best_rate"
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
  if [ "$syscalls" = 1 ]; then
    local rate="${SYSCALLS_RATE:-$best_rate}"
    [ "$rate" != 0 ] || rate=1000
    run_syscalls "$rate"
  fi
}

# ---------- system calls per delivery (--syscalls) ----------

# metrics_sum NAME: the counter NAME summed over the /metrics of every node in $urls.
metrics_sum() {
  local u hp v total=0
  for u in ${urls//,/ }; do
    hp="${u#*://}"
    hp="${hp%%/*}"
    v="$(curl -s --max-time 5 "http://$hp/metrics" | awk -v n="$1" '$1 == n { print $2 }')"
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# The calls a node makes on its paths, counted one by one in the perf window; whatever else it
# calls shows up as "other" (raw_syscalls counts every call).
SYSCALL_NAMES="sendto sendmsg write writev read recvfrom recvmsg poll ppoll epoll_wait
  epoll_pwait epoll_ctl futex mmap munmap madvise mprotect brk close accept4 setsockopt
  getsockopt nanosleep clock_nanosleep getrandom"

# perf_window: the nodes' system calls over SYSCALLS_WINDOW s, counted in the kernel on the
# syscall tracepoints (no slowdown). Writes syscalls.perf.tsv (calls, name; "total" first) and
# prints "deliveries frames" of the window; fails when the tracepoints cannot be used here.
perf_window() {
  local events="raw_syscalls:sys_enter" n d0 f0
  for n in $SYSCALL_NAMES; do events+=",syscalls:sys_enter_$n"; done
  perf stat -e raw_syscalls:sys_enter -p "${pids%%,*}" -- true >/dev/null 2>&1 || return 1
  d0="$(metrics_sum chat_deliveries_total)" f0="$(metrics_sum chat_frames_out_total)"
  perf stat -x, -e "$events" -p "$pids" -o "$out/syscalls.perf" -- sleep "$SYSCALLS_WINDOW" \
    >/dev/null 2>&1 || return 1
  echo "$(($(metrics_sum chat_deliveries_total) - d0)) $(($(metrics_sum chat_frames_out_total) - f0))"
  awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 "\ttotal" }
           $3 ~ /^syscalls:sys_enter_/ && $1 + 0 > 0 { sub(/^syscalls:sys_enter_/, "", $3); print $1 "\t" $3 }' \
    "$out/syscalls.perf" | total_first >"$out/syscalls.perf.tsv"
}

# total_first: "calls<TAB>name" lines with the "total" line first, then by calls, most first.
total_first() {
  awk -F'\t' -v sort='sort -t "\t" -k1,1 -rn' '$2 == "total" { total = $0; next } { print | sort }
    END { print total; fflush(); close(sort) }'
}

# strace_window: the same with strace -c -f, which stops the nodes at every call (ptrace). The
# deliveries are read while strace is attached (after detaching, the nodes catch up at full
# speed), and strace's counts, which span attach to detach, are scaled to that window.
# Writes syscalls.strace.tsv like perf_window and prints "deliveries frames".
strace_window() {
  local p pid_flags=() strace_pid a0 a1 m0 m1 d0 d1 f0 f1
  for p in ${pids//,/ }; do pid_flags+=(-p "$p"); done
  a0="$(date +%s.%N)"
  strace -c -f -o "$out/syscalls.strace" "${pid_flags[@]}" >/dev/null 2>&1 &
  strace_pid=$!
  sleep 1
  m0="$(date +%s.%N)" d0="$(metrics_sum chat_deliveries_total)" f0="$(metrics_sum chat_frames_out_total)"
  sleep "$SYSCALLS_WINDOW"
  d1="$(metrics_sum chat_deliveries_total)" f1="$(metrics_sum chat_frames_out_total)" m1="$(date +%s.%N)"
  kill -INT "$strace_pid" 2>/dev/null || true # strace detaches and writes its table
  wait "$strace_pid" || true
  a1="$(date +%s.%N)"
  echo "$((d1 - d0)) $((f1 - f0))"
  awk -v k="$(echo "$m0 $m1 $a0 $a1" | awk '{ print ($2 - $1) / ($4 - $3) }')" '
    $1 ~ /^[0-9.]+$/ && NF >= 5 { printf "%d\t%s\n", $4 * k + 0.5, $NF }' \
    "$out/syscalls.strace" | total_first >"$out/syscalls.strace.tsv"
}

# run_syscalls RATE: the throughput shape at RATE publishes/s; the nodes' system calls counted
# over SYSCALLS_WINDOW s, first by perf stat (kernel-side, untraced speed), then by strace
# (slowed, so more frames may queue per socket). Writes syscalls.txt.
run_syscalls() {
  local rate="$1" bench_pid perf_counts="" strace_counts
  [ -n "$pids" ] || { echo "run.sh: --syscalls needs the node pids (--pids)" >&2; return 0; }
  wait_quiet syscalls
  echo "run.sh: --- syscalls at $rate publishes/s over nodes $pids" >&2
  "$BENCH_BIN" --label throughput-syscalls --jwt-secret "$JWT_SECRET" --url "$urls" \
    "${pid_args[@]}" "${thread_args[@]}" --rooms 1 --subs-per-room 100 --publishers 3 \
    --rate "$rate" --duration $((2 * SYSCALLS_WINDOW + 8)) --warmup 1 --quiet \
    --json "$out/throughput-syscalls.json" >"$out/throughput-syscalls.txt" &
  bench_pid=$!
  sleep 3
  perf_counts="$(perf_window)" || perf_counts=""
  sleep 1
  strace_counts="$(strace_window)"
  wait "$bench_pid" || true
  {
    echo "syscalls: throughput shape (1 room x 100 + 3 publishers) at $rate publishes/s," \
         "nodes $pids, ${SYSCALLS_WINDOW} s per window"
    syscalls_table "perf stat (kernel count, untraced)" "$perf_counts" "$out/syscalls.perf.tsv"
    # ptrace stops the nodes at every call, so they fall behind and the window's deliveries
    # are only roughly aligned with strace's counts: its breakdown is what it is good for.
    syscalls_table "strace -c -f (ptrace, slowed)" "$strace_counts" "$out/syscalls.strace.tsv"
  } | tee "$out/syscalls.txt"
}

# syscalls_table TITLE "DELIVERIES FRAMES" TSV: calls per delivery, in total and by call.
syscalls_table() {
  if [ -z "$2" ] || [ ! -s "$3" ]; then
    echo "  $1: not available here"
    return 0
  fi
  echo "$2" | awk -v t="$1" -v tsv="$3" '{ d = $1; f = $2 }
    END {
      while ((getline line < tsv) > 0) { split(line, c, "\t"); n++; calls[n] = c[1]; name[n] = c[2] }
      total = n ? calls[1] : 0; listed = 0
      printf "  %-34s %9d calls / %d deliveries = %.2f per delivery (%.2f per frame written)\n",
        t, total, d, (d > 0 ? total / d : 0), (f > 0 ? total / f : 0)
      for (i = 2; i <= n; i++) {
        listed += calls[i]
        if (i <= 9) printf "      %-14s %9d  %.3f per delivery\n", name[i], calls[i], (d > 0 ? calls[i] / d : 0)
      }
      if (total > listed) printf "      %-14s %9d  %.3f per delivery\n", "other", total - listed, (d > 0 ? (total - listed) / d : 0)
    }'
}

# ---------- scale: idle cost per 1,000 connections ----------

# stop_started PID: stops one process this script started (TERM; KILL after 15 s) and forgets it.
stop_started() {
  local pid="$1" p keep=()
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${started[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  started=("${keep[@]}")
}

run_scale() {
  local url pid conns n hard i=0 done_steps=()
  # Both the bench and the node hold one descriptor per connection. Without CAP_SYS_RESOURCE
  # the hard RLIMIT_NOFILE cannot be raised, so stay a little under it.
  hard="$(ulimit -Hn)"
  for n in $SCALE_STEPS; do
    conns=$n
    if [ "$hard" != unlimited ] && [ $((conns + 100)) -gt "$hard" ] &&
       ! (ulimit -n $((conns + 256))) 2>/dev/null; then
      conns=$((hard - 100))
      echo "run.sh: scale: open-files hard limit is $hard and cannot be raised here:" \
           "using $conns connections instead of $n" | tee -a "$out/scale.note" >&2
    fi
    if [ -n "${url_list+x}" ]; then
      # a fresh node per step, so its RSS before connecting is a clean baseline
      start_node "scale-$conns" $((BASE_PORT + NODES + i)) --heartbeat "$SCALE_HEARTBEAT"
      url="ws://127.0.0.1:$((BASE_PORT + NODES + i))/ws"
      pid="$node_pid"
    else
      url="${urls%%,*}"
      pid="${pids%%,*}"
    fi
    local args=(--url "$url" --connections-only "$conns" --duration "$SCALE_HOLD"
                --source-addrs 4 --connect-concurrency 256)
    [ -n "$pid" ] && args+=(--server-pid "$pid")
    bench "scale-$conns" "${args[@]}" || true
    [ -n "${url_list+x}" ] && stop_started "$pid"
    done_steps+=("$conns")
    i=$((i + 1))
  done
  scale_table "${done_steps[@]}" | tee "$out/scale.txt"
}

# scale_table CONNS...: scale.tsv and the table of the steps, with the per-1,000 idle cost
# extrapolated to 100k connections along the least-squares line through the steps' per-1,000
# figures (a growing line means the total grows faster than the connections).
scale_table() {
  local tsv="$out/scale.tsv" n j
  printf 'connections\trss_kib_per_conn\tcpu_ms_per_connect\tidle_cpu_pct\tidle_cpu_pct_per_1000\n' >"$tsv"
  for n in "$@"; do
    j="$out/scale-$n.json"
    [ -s "$j" ] || continue
    jq -r '[.connections.ready, .server.rss_per_conn_kib, .server.cpu_ms_per_connect,
        .server.cpu_pct, (if .connections.ready > 0 then .server.cpu_pct * 1000 / .connections.ready
        else 0 end)] | @tsv' "$j" >>"$tsv"
  done
  echo "scale: idle connections on one node (heartbeat ${SCALE_HEARTBEAT} s, held ${SCALE_HOLD} s)"
  awk -F'\t' 'NR == 1 { printf "%12s %14s %15s %14s %18s\n", "connections", "KiB RSS/conn",
                          "ms CPU/connect", "idle CPU %", "idle % per 1,000"; next }
    { printf "%12d %14.2f %15.3f %14.2f %18.3f\n", $1, $2, $3, $4, $5
      n++; x[n] = $1; y[n] = $5; sx += $1; sy += $5 }
    END {
      if (n < 2) { print "extrapolation to 100k needs two steps or more"; exit }
      mx = sx / n; my = sy / n
      for (i = 1; i <= n; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) ^ 2 }
      b = sxx > 0 ? sxy / sxx : 0; a = my - b * mx; at = a + b * 100000
      printf "extrapolated to 100,000: per-1,000 line %.4f + %.6f x (N/1,000) %% -> %.3f %% of a core per 1,000 = %.1f %% of a core in total\n",
        a, b * 1000, at, at * 100
      printf "                         (a flat per-1,000 cost at the steps mean, %.3f %%, would be %.1f %% of a core)\n",
        my, my * 100 }' "$tsv"
}

for s in "${scenarios[@]}"; do "run_$s"; done

# ---------- summary ----------

{
  echo
  echo "summary ($(nproc) cores; machine shared by generator, Redis and nodes)"
  printf '%-20s %12s %9s %9s %9s %8s %8s %12s %9s %8s %10s\n' scenario deliveries/s p50_ms \
    p99_ms max_ms lost clean "srv_us/deliv" floor_us x_floor gen_limit
  # in the order they ran
  for j in $(ls -tr "$out"/*.json 2>/dev/null); do
    case "$j" in *.floor.json) continue ;; esac
    f="$(floor_file "$(jq -r '.label // ""' "$j")")"
    [ -s "$f" ] || f=/dev/null
    jq -r --slurpfile f "$f" 'select(.mode == "workload" and .label != "throughput-perf" and
        .label != "throughput-syscalls") |
        (($f[0].cases[0].cpu_us_per_send) // 0) as $fl |
        [.label, (.deliveries.per_s|floor), .latency.p50_ms,
        .latency.p99_ms, .latency.max_ms, .deliveries.lost, .clean,
        (.server.cpu_us_per_delivery*100|floor/100), ($fl*100|floor/100),
        (if $fl > 0 then (.server.cpu_us_per_delivery / $fl * 100 | floor / 100) else "-" end),
        .generator.limited] | @tsv' "$j" |
      awk -F'\t' '{printf "%-20s %12s %9.2f %9.2f %9.2f %8s %8s %12s %9s %8s %10s\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11}'
  done
  if [ -e "$out/throughput.txt" ]; then cat "$out/throughput.txt"; fi
  if [ -e "$out/syscalls.txt" ]; then grep -E '^syscalls:|calls /|not available' "$out/syscalls.txt"; fi
  if [ -e "$out/scale.note" ]; then cat "$out/scale.note"; fi
  if [ -e "$out/scale.txt" ]; then cat "$out/scale.txt"; fi
} | tee "$out/summary.txt"
