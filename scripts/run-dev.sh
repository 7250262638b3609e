#!/usr/bin/env bash
# Starts bastiond in the foreground on the embedded simulated cluster with the development
# configuration, after printing how to call it. Used by `make run`.
# Usage: scripts/run-dev.sh BUILD_DIR CONFIG
set -euo pipefail
build=${1:-build}
config=${2:-configs/bastion.yaml}
cd "$(dirname "$0")/.."

cat <<'EOT'
bastiond is starting on https://127.0.0.1:8443 (gRPC over HTTP/2, mutual TLS).
Dev identities are in certs/dev/ (admin, operator, viewer, developer). Try, from another shell:

  # the bastion CLI (README.md, "C client"; `bastion --help` lists every command):
  build/bin/bastion --ca certs/dev/ca.crt --cert certs/dev/admin.crt --key certs/dev/admin.key ping
  build/bin/bastion --ca certs/dev/ca.crt --cert certs/dev/admin.crt --key certs/dev/admin.key call list_pods namespace=default

  # any stock gRPC client, e.g. Debian's python3-grpcio (see README.md, "Calling Bastion"):
  /usr/bin/python3 scripts/grpc-call.py Ping
  /usr/bin/python3 scripts/grpc-call.py ListTools
  /usr/bin/python3 scripts/grpc-call.py CallTool '{"name":"list_pods","list_pods":{"namespace":"default"}}'
  /usr/bin/python3 scripts/grpc-call.py WhoAmI --cert certs/dev/viewer.crt --key certs/dev/viewer.key

  # raw HTTP/2 with nghttp (an empty Ping request):
  printf '\0\0\0\0\0' > /tmp/ping.bin && nghttp -v --cert certs/dev/admin.crt --key certs/dev/admin.key \
      -H 'content-type: application/grpc' -H 'te: trailers' -d /tmp/ping.bin \
      https://localhost:8443/bastion.v1.Mcp/Ping

Stop with Ctrl-C (drains in-flight calls). Reload certificates with: kill -HUP <pid>
EOT
exec "$build/bin/bastiond" --config "$config"
