#!/bin/sh
# Entrypoint of the gateway image: refuses a deployment that anyone could sign into, then
# runs chat-gateway with the container's arguments. The rule lives here, outside the gateway,
# because only the deployment knows how far the service is published.
#
#   gateway-entrypoint.sh [chat-gateway options]   check, then exec chat-gateway
#   gateway-entrypoint.sh --check                  check only (deploy/cluster.sh uses it)
#
# Refused (exit 78, EX_CONFIG) when the load balancer is published beyond loopback and either
#   - the HS256 secret is the example one, "dev-secret-change-me" (anyone can read it here), or
#   - dev tokens are on (GET /dev/token mints a token for any user).
# Reads: LB_BIND (the address the load balancer is published on; docker-compose.yml passes it,
# default 127.0.0.1; unset, as under Kubernetes, counts as published beyond loopback),
# JWT_SECRET and DEV_TOKENS, and the --jwt-secret / --dev-tokens flags, which win over them as
# they do in chat-gateway.
set -eu

EXAMPLE_SECRET="dev-secret-change-me"

is_loopback() {
  case "$1" in
    127.* | ::1 | "[::1]" | localhost) return 0 ;;
    *) return 1 ;;
  esac
}

is_true() {
  case "$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')" in
    1 | true | yes | on) return 0 ;;
    *) return 1 ;;
  esac
}

secret="${JWT_SECRET:-}"
dev_tokens="${DEV_TOKENS:-false}"
check_only=0
expect_secret=0
for arg in "$@"; do
  if [ "$expect_secret" = 1 ]; then
    secret="$arg"
    expect_secret=0
    continue
  fi
  case "$arg" in
    --check) check_only=1 ;;
    --jwt-secret) expect_secret=1 ;;
    --jwt-secret=*) secret="${arg#--jwt-secret=}" ;;
    --dev-tokens) dev_tokens=true ;;
    --dev-tokens=*) dev_tokens="${arg#--dev-tokens=}" ;;
  esac
done

bind="${LB_BIND:-}"
if ! is_loopback "$bind"; then
  where="${bind:-an address that is not loopback (LB_BIND is not set)}"
  problem=""
  if [ "$secret" = "$EXAMPLE_SECRET" ]; then
    problem="JWT_SECRET is the example secret '$EXAMPLE_SECRET'"
  fi
  if is_true "$dev_tokens"; then
    problem="${problem:+$problem and }DEV_TOKENS is on (/dev/token signs anyone in)"
  fi
  if [ -n "$problem" ]; then
    echo "gateway-entrypoint: refusing to start: the load balancer is published on $where and $problem," \
      "so anyone who can reach it can take any identity. Set JWT_SECRET=\$(openssl rand -hex 32) and" \
      "DEV_TOKENS=0, or publish on loopback only (LB_BIND=127.0.0.1)." >&2
    exit 78
  fi
fi

if [ "$check_only" = 1 ]; then
  exit 0
fi
exec chat-gateway "$@"
