#!/usr/bin/env bash
# Creates a self-signed TLS certificate for the load balancer's wss:// listener, once: when both
# files exist nothing is done. Used by deploy/cluster.sh (local cluster) and by the `certs`
# service of docker-compose.yml, so both ways get the same kind of certificate.
#
#   deploy/gen-cert.sh CERT_FILE KEY_FILE [EXTRA_SAN]
#
# The certificate names localhost and 127.0.0.1 (plus EXTRA_SAN, e.g. "DNS:chat.example"),
# uses an EC P-256 key (fast to make, accepted by browsers and Node), and lasts 825 days, the
# longest validity browsers accept for a leaf certificate. For development only: clients have
# to be told to trust it (browsers show a warning, curl needs -k or --cacert CERT_FILE).
set -euo pipefail
cert="${1:?usage: gen-cert.sh CERT_FILE KEY_FILE [EXTRA_SAN]}"
key="${2:?usage: gen-cert.sh CERT_FILE KEY_FILE [EXTRA_SAN]}"
san="DNS:localhost,IP:127.0.0.1,IP:::1${3:+,$3}"

if [ -s "$cert" ] && [ -s "$key" ]; then
  exit 0
fi
mkdir -p "$(dirname "$cert")" "$(dirname "$key")"
umask 077
tmp_key="$key.tmp.$$"
tmp_cert="$cert.tmp.$$"
trap 'rm -f "$tmp_key" "$tmp_cert"' EXIT
openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout "$tmp_key" -out "$tmp_cert" -days 825 \
  -subj "/CN=localhost/O=chat-gateway dev" \
  -addext "subjectAltName=$san" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "extendedKeyUsage=serverAuth" 2>/dev/null
chmod 644 "$tmp_cert"
mv "$tmp_key" "$key"
mv "$tmp_cert" "$cert"
echo "gen-cert: wrote self-signed certificate $cert (key $key)" >&2
