#!/usr/bin/env bash
# Installs the Debian 12 packages this project needs. Idempotent: packages already present are
# not reinstalled, and when nothing is missing it does not even run apt-get.
#
#   deploy/install-deps.sh           build + run a cluster (compiler, libraries, redis and
#                                    redis-sentinel, nginx)
#   deploy/install-deps.sh --test    also what the tests need (Node.js + npm for the WebSocket
#                                    tests, Debian's chromium for the browser test,
#                                    docker-compose + envsubst to check the compose setup,
#                                    clang + libFuzzer for tests/fuzz)
#   deploy/install-deps.sh --bench   also what bench/run.sh needs (gnuplot for plots, perf, jq,
#                                    strace for the syscall counts)
# Options combine: deploy/install-deps.sh --test --bench
# Used by the README commands, tests/run.sh (.ci/run) and the Dockerfile.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libwebsockets-dev libuv1-dev libhiredis-dev libevent-dev libcjson-dev libjwt-dev libssl-dev
  libcmocka-dev
  redis-server nginx-light openssl procps ca-certificates curl
  redis-sentinel
)
for opt in "$@"; do
  case "$opt" in
    --test)
      # docker-compose: `config` validates docker-compose.yml without an engine; gettext-base:
      # envsubst, to render the nginx template as the official nginx image does.
      PACKAGES+=(chromium fonts-dejavu-core docker-compose gettext-base)
      # clang + libFuzzer for the fuzz harnesses in tests/fuzz/ (skipped when absent);
      # llvm-14 for llvm-symbolizer, so a crash report names files and lines.
      PACKAGES+=(clang-14 libclang-rt-14-dev llvm-14)
      # prometheus: promtool, to check and unit-test deploy/monitoring/alerts.yml.
      PACKAGES+=(prometheus)
      # Some machines ship node/npm from elsewhere, and Debian's npm then conflicts: only
      # install Debian's when node itself is missing.
      if ! command -v node >/dev/null 2>&1; then
        PACKAGES+=(nodejs npm)
      elif ! command -v npm >/dev/null 2>&1; then
        PACKAGES+=(npm)
      fi
      ;;
    --bench) PACKAGES+=(gnuplot-nox linux-perf jq strace) ;;
    *) echo "install-deps: unknown option $opt (use --test, --bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-deps: missing packages: ${missing[*]} — run as root or install them" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
