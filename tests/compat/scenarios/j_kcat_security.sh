#!/usr/bin/env bash
# kcat (Debian, librdkafka 2.0.2) over TLS and over SASL_SSL with SCRAM-SHA-256 and -512: metadata, a produced
# record read back, and a wrong password refused. Skipped when the runner started no secured listeners.
set -uo pipefail

pass() { echo "PASS kcat-security $1: $2"; }
fail() { echo "FAIL kcat-security $1: $2"; failures=$((failures + 1)); }
failures=0
if [[ -z "${SSL_BOOTSTRAP:-}" || -z "${SASL_SSL_BOOTSTRAP:-}" ]]; then
  echo "SKIP kcat-security all: no secured listeners (run.sh starts them with its own server)"
  exit 0
fi
W="${COMPAT_WORK:-$(mktemp -d)}/kcat-security"
mkdir -p "$W"
T="kcat-secure-$(date +%s)-$$"
SSL=(-X security.protocol=ssl -X "ssl.ca.location=$CA_LOCATION")

if kcat -L -b "$SSL_BOOTSTRAP" "${SSL[@]}" -m 10 >"$W/ssl.meta" 2>&1 && grep -q "broker 1 at 127.0.0.1:${SSL_BOOTSTRAP##*:}" "$W/ssl.meta"; then
  pass ssl-metadata "the SSL listener advertises itself: $(grep 'broker 1 at' "$W/ssl.meta" | xargs)"
else
  fail ssl-metadata "$(head -c 400 "$W/ssl.meta")"
fi
if echo "over-tls" | kcat -P -b "$SSL_BOOTSTRAP" "${SSL[@]}" -t "$T" 2>"$W/ssl.produce.err" \
   && got=$(kcat -C -b "$SSL_BOOTSTRAP" "${SSL[@]}" -t "$T" -o beginning -c 1 -e -q 2>"$W/ssl.consume.err") && [[ "$got" == "over-tls" ]]; then
  pass ssl-roundtrip "produced and read back over TLS"
else
  fail ssl-roundtrip "got '${got:-}' ($(head -c 300 "$W/ssl.produce.err" "$W/ssl.consume.err"))"
fi

for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
  SASL=(-X security.protocol=sasl_ssl -X "ssl.ca.location=$CA_LOCATION" -X "sasl.mechanism=$mechanism" -X "sasl.username=$SCRAM_USER")
  if echo "$mechanism" | kcat -P -b "$SASL_SSL_BOOTSTRAP" "${SASL[@]}" -X "sasl.password=$SCRAM_PASSWORD" -t "$T-sasl" 2>"$W/$mechanism.err" \
     && kcat -C -b "$SASL_SSL_BOOTSTRAP" "${SASL[@]}" -X "sasl.password=$SCRAM_PASSWORD" -t "$T-sasl" -o beginning -e -q 2>>"$W/$mechanism.err" | grep -qx "$mechanism"; then
    pass "$mechanism" "produced and read back over SASL_SSL"
  else
    fail "$mechanism" "$(head -c 400 "$W/$mechanism.err")"
  fi
  if kcat -L -b "$SASL_SSL_BOOTSTRAP" "${SASL[@]}" -X sasl.password=wrong -m 5 >"$W/$mechanism.wrong" 2>&1; then
    fail "$mechanism-wrong-password" "a wrong password was accepted"
  elif grep -q "Authentication failed" "$W/$mechanism.wrong"; then
    pass "$mechanism-wrong-password" "refused: $(grep -o 'Authentication failed[^(]*' "$W/$mechanism.wrong" | head -1)"
  else
    fail "$mechanism-wrong-password" "refused, but without the reason: $(head -c 300 "$W/$mechanism.wrong")"
  fi
done
[[ $failures -eq 0 ]]
