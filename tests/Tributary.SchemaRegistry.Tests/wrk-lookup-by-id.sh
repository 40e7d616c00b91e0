#!/usr/bin/env bash
# Schema lookups by id (the deserializer's hot path) against a real `tributary serve`, measured with wrk
# (Debian package): 2 threads, 50 connections, 30 s after a 5 s warm-up.
#
#   tests/Tributary.SchemaRegistry.Tests/wrk-lookup-by-id.sh [path/to/tributary]
#
# Target (issue 7): >= 30,000 requests/s with p99 under 2 ms on the 2-vCPU development machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${1:-$ROOT/src/Tributary.Cli/bin/Release/net10.0/tributary}"
[[ -x "$BIN" ]] || dotnet build -c Release "$ROOT/src/Tributary.Cli" >/dev/null
WORK="$(mktemp -d)"
PORT=$((20000 + RANDOM % 20000))
"$BIN" serve -d "$WORK/data" -l "127.0.0.1:$((PORT + 1))" -s "schema.registry.listeners=http://127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -s "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.1; done
curl -s -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
  --data '{"schema":"{\"type\":\"record\",\"name\":\"Payment\",\"fields\":[{\"name\":\"id\",\"type\":\"string\"},{\"name\":\"amount\",\"type\":\"double\"}]}"}' \
  "http://127.0.0.1:$PORT/subjects/payments-value/versions"
echo
wrk -t2 -c50 -d5s "http://127.0.0.1:$PORT/schemas/ids/1" >/dev/null
wrk -t2 -c50 -d30s --latency "http://127.0.0.1:$PORT/schemas/ids/1"
