#!/usr/bin/env bash
# Regenerates the DEMO-ONLY TLS material for `popcrypt demo`. Needs openssl.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500 \
  -subj "/CN=popcrypt DEMO ONLY CA" -keyout "$tmp/ca.key" -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=localhost (popcrypt DEMO ONLY)" -keyout server.key -out "$tmp/server.csr"
cat > "$tmp/ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
openssl x509 -req -in "$tmp/server.csr" -CA ca.pem -CAkey "$tmp/ca.key" -set_serial 0x$(openssl rand -hex 8) \
  -days 36500 -extfile "$tmp/ext" -out server.pem
openssl pkcs8 -topk8 -nocrypt -in server.key -out server.key.tmp && mv server.key.tmp server.key
