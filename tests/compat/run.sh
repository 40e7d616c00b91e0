#!/usr/bin/env bash
# Client compatibility suite: starts a real `tributary serve` on a fresh data dir and a free loopback
# port, runs every scenario in tests/compat/scenarios/ against it, and ends with "N passed, M failed".
#
#   tests/compat/run.sh [--no-build] [--bootstrap HOST:PORT] [SCENARIO...]
#
#   --no-build             use the existing Release build of src/Tributary.Cli
#   --bootstrap HOST:PORT  do not start a server; run against this one (for debugging scenarios)
#   SCENARIO               run only scenario files whose name contains this word (default: all)
#
# Scenarios get the address in $BOOTSTRAP and report one line per check: "PASS name: detail",
# "FAIL name: detail" or "SKIP name: detail". A scenario that exits non-zero, times out or reports
# nothing counts as one more failure.
set -uo pipefail

COMPAT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$COMPAT_DIR/../.." && pwd)"
SCENARIO_TIMEOUT="${COMPAT_SCENARIO_TIMEOUT:-150}"
STARTUP_TIMEOUT="${COMPAT_STARTUP_TIMEOUT:-60}"
PY=/usr/bin/python3   # Debian's Kafka client packages import only under the system interpreter

build=1
bootstrap=""
filters=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) build=0 ;;
    --bootstrap) bootstrap="${2:?--bootstrap needs HOST:PORT}"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "unknown option: $1" >&2; exit 2 ;;
    *) filters+=("$1") ;;
  esac
  shift
done

passed=0
failed=0
skipped=0
server_pid=""
work="$COMPAT_DIR/.work/run-$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$work"
server_log="$work/server.log"
: >"$server_log"

log() { echo "compat: $*"; }

print_server_log() {
  if [[ -s "$server_log" ]]; then
    echo "----- server log ($server_log, last 200 lines) -----"
    tail -n 200 "$server_log"
    echo "----- end of server log -----"
  fi
}

stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  server_pid=""
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

# Aborts before any scenario ran: still print the summary line so the failure is counted.
die() {
  echo "FAIL compat-setup: $*"
  print_server_log
  echo "0 passed, 1 failed"
  exit 1
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# --- node dependencies (kafkajs, Confluent's registry client) ------------------------------------------------------------------
if [[ ! -d "$COMPAT_DIR/node_modules/kafkajs" || ! -d "$COMPAT_DIR/node_modules/@confluentinc/schemaregistry" ]]; then
  log "installing npm dependencies (npm ci)"
  (cd "$COMPAT_DIR" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in tests/compat"
fi

# --- server ---------------------------------------------------------------------------------------
if [[ -z "$bootstrap" ]]; then
  if [[ $build -eq 1 ]]; then
    log "building src/Tributary.Cli (Release)"
    dotnet build "$ROOT/src/Tributary.Cli" -c Release -nologo -v quiet >"$work/build.log" 2>&1 \
      || { tail -n 60 "$work/build.log"; die "dotnet build src/Tributary.Cli failed"; }
  fi
  bin_dir="$ROOT/src/Tributary.Cli/bin/Release/net10.0"
  if [[ -x "$bin_dir/tributary" ]]; then
    server_cmd=("$bin_dir/tributary")
  elif [[ -f "$bin_dir/tributary.dll" ]]; then
    server_cmd=(dotnet "$bin_dir/tributary.dll")
  else
    die "no server build in $bin_dir (run without --no-build)"
  fi
  port="$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  data_dir="$work/data"
  mkdir -p "$data_dir"
  bootstrap="127.0.0.1:$port"
  # Secured listeners for the security scenarios: SSL and SASL_SSL (SCRAM) with a throwaway CA made by openssl.
  ssl_port="$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  sasl_port="$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  tls="$work/tls"
  mkdir -p "$tls"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 2 -subj "/CN=Compat CA" &&
    openssl req -newkey rsa:2048 -nodes -keyout "$tls/broker.key" -out "$tls/broker.csr" -subj "/CN=localhost" &&
    printf "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n" >"$tls/broker.ext" &&
    openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -out "$tls/broker.pem" -days 2 -extfile "$tls/broker.ext" &&
    cat "$tls/broker.key" "$tls/broker.pem" "$tls/ca.pem" >"$tls/keystore.pem"
  } >"$work/openssl.log" 2>&1 || die "openssl could not make the test CA (see $work/openssl.log)"
  log "starting ${server_cmd[*]} serve --data-dir $data_dir --listen $bootstrap (SSL on $ssl_port, SASL_SSL on $sasl_port)"
  "${server_cmd[@]}" serve --data-dir "$data_dir" --listen "$bootstrap" \
    --set "listeners=PLAINTEXT://$bootstrap,SSL://127.0.0.1:$ssl_port,SASL_SSL://127.0.0.1:$sasl_port" \
    --set "ssl.keystore.location=$tls/keystore.pem" --set "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512" \
    >"$server_log" 2>&1 &
  server_pid=$!
  deadline=$((SECONDS + STARTUP_TIMEOUT))
  until port_open 127.0.0.1 "$port"; do
    kill -0 "$server_pid" 2>/dev/null || { wait "$server_pid"; die "server exited (status $?) before accepting connections"; }
    ((SECONDS < deadline)) || die "server did not accept connections on $bootstrap within ${STARTUP_TIMEOUT}s"
    sleep 0.2
  done
  log "server up on $bootstrap (pid $server_pid)"
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    TRIBUTARY_PASSWORD=compat-secret "${server_cmd[@]}" user scram set compat -m "$mechanism" -b "$bootstrap" >>"$work/scram.log" 2>&1 \
      || die "tributary user scram set failed (see $work/scram.log)"
  done
  export SSL_BOOTSTRAP="127.0.0.1:$ssl_port" SASL_SSL_BOOTSTRAP="127.0.0.1:$sasl_port" CA_LOCATION="$tls/ca.pem"
  export SCRAM_USER=compat SCRAM_PASSWORD=compat-secret
else
  log "using existing broker at $bootstrap"
fi

# --- scenarios ------------------------------------------------------------------------------------
export BOOTSTRAP="$bootstrap"
export COMPAT_WORK="$work"
export NODE_PATH="$COMPAT_DIR/node_modules"

scenario_ran=0
for file in "$COMPAT_DIR"/scenarios/*; do
  name="$(basename "$file")"
  if [[ ${#filters[@]} -gt 0 ]]; then
    match=0
    for f in "${filters[@]}"; do [[ "$name" == *"$f"* ]] && match=1; done
    [[ $match -eq 1 ]] || continue
  fi
  case "$name" in
    *.sh) runner=(bash) ;;
    *.py) runner=("$PY" -u) ;;
    *.js|*.mjs) runner=(node) ;;
    *) continue ;;
  esac
  scenario_ran=$((scenario_ran + 1))
  out="$work/${name%.*}.out"
  log "=== scenario $name"
  start=$SECONDS
  (cd "$work" && timeout --kill-after=10 "$SCENARIO_TIMEOUT" "${runner[@]}" "$file") 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  p=$(grep -c '^PASS ' "$out")
  f=$(grep -c '^FAIL ' "$out")
  s=$(grep -c '^SKIP ' "$out")
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    echo "FAIL $name: timed out after ${SCENARIO_TIMEOUT}s"
    f=$((f + 1))
  elif [[ $rc -ne 0 && $f -eq 0 ]]; then
    echo "FAIL $name: exited with status $rc without reporting a failed check"
    f=$((f + 1))
  elif [[ $rc -eq 0 && $f -gt 0 ]]; then
    echo "FAIL $name: reported failed checks but exited 0"
  elif [[ $((p + f + s)) -eq 0 ]]; then
    echo "FAIL $name: reported no checks"
    f=$((f + 1))
  fi
  log "--- $name: $p passed, $f failed, $s skipped ($((SECONDS - start))s)"
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
done

if [[ $scenario_ran -eq 0 ]]; then
  echo "FAIL compat: no scenario matched"
  failed=$((failed + 1))
fi

if [[ -n "$server_pid" ]] && ! kill -0 "$server_pid" 2>/dev/null; then
  echo "FAIL compat-server: the server exited during the run"
  failed=$((failed + 1))
fi

[[ $failed -gt 0 ]] && print_server_log
stop_server
if [[ $failed -eq 0 && -z "${COMPAT_KEEP:-}" ]]; then
  rm -rf "$work"
  log "$skipped skipped (not counted below)"
else
  log "$skipped skipped (not counted below); logs, outputs and data kept in $work"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
