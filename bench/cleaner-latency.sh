#!/usr/bin/env bash
# Producer acknowledgement latency beside the log cleaner, paired inside one broker process (docs/performance.md, "Log compaction").
#   bench/cleaner-latency.sh prefill          # once: a 4.4 GB compacted-topic-to-be, never cleaned
#   bench/cleaner-latency.sh run [--set k=v]  # one paired run: windows A (no cleaning), B (cleaner at work), C (after)
# Environment: TRIBUTARY (the executable; default: the Release build), WORK (default /tmp/cleaner-latency),
# RATE (default 290000 records/s, half the 1 KiB producer's peak here), SIZE (1024), WINDOW (10 s, plus 2 s warm-up).
set -euo pipefail
T=${TRIBUTARY:-$(dirname "$0")/../src/Tributary.Cli/bin/Release/net10.0/tributary}
WORK=${WORK:-/tmp/cleaner-latency}; RATE=${RATE:-290000}; SIZE=${SIZE:-1024}; WINDOW=${WINDOW:-10}
B=127.0.0.1:29093

serve() { # serve DIR [settings...]; waits until the broker listens
  local dir=$1; shift
  "$T" serve --data-dir "$dir" --listen $B --set schema.registry.enable=false "$@" > "$WORK/serve.log" 2>&1 &
  SP=$!
  for _ in $(seq 100); do grep -q listening "$WORK/serve.log" && return; sleep 0.1; done
  echo "broker did not start: $(cat "$WORK/serve.log")" >&2; exit 1
}

case ${1:-} in
prefill)
  mkdir -p "$WORK"; rm -rf "$WORK/base"
  serve "$WORK/base" --set log.cleaner.enable=false
  "$T" topic create cz -b $B --partitions 4 -c cleanup.policy=compact -c segment.bytes=67108864 >/dev/null
  "$T" topic create lat -b $B --partitions 1 >/dev/null
  "$T" bench -b $B produce --topic cz --size 1024 --keys 400000 --count 4500000 --warmup 0 >/dev/null
  # Not compacted until a run switches it back: its cleaning then starts at a known moment.
  "$T" topic alter-config cz -b $B -s cleanup.policy=delete >/dev/null
  kill $SP; wait $SP || true
  du -sh "$WORK/base" ;;
run)
  shift
  rm -rf "$WORK/run"; cp -a "$WORK/base" "$WORK/run"; sync
  serve "$WORK/run" --set log.cleaner.backoff.ms=100 "$@"
  window() {
    "$T" bench -b $B produce --topic lat --size "$SIZE" --rate "$RATE" --duration "$1" --warmup 2 --json 2>/dev/null \
      | python3 -c "import json,sys; l=json.load(sys.stdin)['latency']; print(f\"p50 {l['p50_ms']:.2f} p99 {l['p99_ms']:.2f} p99.9 {l['p999_ms']:.2f} ms\")"
  }
  window 5 >/dev/null # warm-up, discarded
  echo "A (no cleaning):      $(window "$WINDOW")"
  "$T" topic alter-config cz -b $B -s cleanup.policy=compact >/dev/null
  echo "B (cleaner at work):  $(window "$WINDOW")"
  echo "C (after):            $(window "$WINDOW")"
  kill $SP; wait $SP 2>/dev/null || true
  grep "log cleaner: cleaned" "$WORK/serve.log" | sed 's/^/  /' ;;
*) sed -n 2,6p "$0"; exit 2 ;;
esac
