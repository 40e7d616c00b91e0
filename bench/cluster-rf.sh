#!/usr/bin/env bash
# RF=1 on one broker vs RF=3 on three brokers (one etcd), acks=all, same machine, alternating runs.
set -u
CLI="${TRIBUTARY:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/src/Tributary.Cli/bin/Release/net10.0/tributary}"
WORK="$(mktemp -d)"
cd "$WORK" && mkdir one three
(cd one && exec $CLI serve --set listeners=PLAINTEXT://:19190 --set log.dirs=./data --set schema.registry.enable=false --set log.level=warn > s.log 2>&1) &
(cd three && exec etcd --data-dir ./etcd --listen-client-urls http://127.0.0.1:22379 --advertise-client-urls http://127.0.0.1:22379 --listen-peer-urls http://127.0.0.1:22380 --initial-advertise-peer-urls http://127.0.0.1:22380 --initial-cluster default=http://127.0.0.1:22380 > etcd.log 2>&1) &
sleep 2
for n in 1 2 3; do
  (cd three && exec $CLI serve --set metadata.store=etcd://127.0.0.1:22379 --set node.id=$n --set listeners=PLAINTEXT://:1909$n --set log.dirs=./data-$n --set schema.registry.enable=false --set log.level=warn > b$n.log 2>&1) &
done
sleep 6
B3=localhost:19091,localhost:19092,localhost:19093
B1=localhost:19190
$CLI topic create rf3 -p 3 -r 3 -b $B3 >/dev/null
$CLI topic create rf1 -p 3 -r 1 -b $B1 >/dev/null
for size in 100 1024; do
  for run in 1 2; do
    for cfg in one three; do
      if [ $cfg = one ]; then b=$B1; t=rf1; else b=$B3; t=rf3; fi
      r=$($CLI bench produce -b $b -t $t --size $size --acks all --duration 6 --warmup 2 --json 2>/dev/null | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); l=d['latency']; print(d['records_per_second'], d['megabytes_per_second'], l['p50_ms'], l['p99_ms'], d['errors'])")
      echo "$t size=$size run=$run rec/s MB/s p50ms p99ms errors: $r"
    done
  done
done
uptime
kill $(jobs -p) 2>/dev/null; wait 2>/dev/null
sleep 1; rm -rf "$WORK"
