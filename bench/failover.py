#!/usr/bin/python3
"""Failover time: kill -9 the leader of a replicated partition, then time until the first acks=all produce to that
partition is acknowledged by the new leader. Three `tributary serve` brokers on one etcd, started here.

With MODE=term the leader is stopped with SIGTERM instead (controlled shutdown) while a producer keeps sending
acks=all records every 5 ms: the script reports the producer errors (the goal is none) and the longest gap between
two acknowledgements.

Usage: bench/failover.py [TRIALS] [SESSION_TIMEOUT_MS] [kill|term]   (build first: dotnet build Tributary.slnx -c Release)
"""
import os, signal, subprocess, sys, tempfile, time, statistics
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

TRIALS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
SESSION_MS = int(sys.argv[2]) if len(sys.argv) > 2 else 9000
MODE = sys.argv[3] if len(sys.argv) > 3 else "kill"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.environ.get("TRIBUTARY", os.path.join(ROOT, "src/Tributary.Cli/bin/Release/net10.0/tributary"))
work = tempfile.mkdtemp(prefix="tributary-failover-")
ports = {1: 19291, 2: 19292, 3: 19293}
bootstrap = ",".join(f"localhost:{p}" for p in ports.values())

etcd = subprocess.Popen(["etcd", "--data-dir", f"{work}/etcd", "--listen-client-urls", "http://127.0.0.1:22479",
    "--advertise-client-urls", "http://127.0.0.1:22479", "--listen-peer-urls", "http://127.0.0.1:22480",
    "--initial-advertise-peer-urls", "http://127.0.0.1:22480", "--initial-cluster", "default=http://127.0.0.1:22480"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(2)
brokers = {}

def start(n):
    log = open(f"{work}/b{n}.log", "a")
    brokers[n] = subprocess.Popen([CLI, "serve", "--set", "metadata.store=etcd://127.0.0.1:22479", "--set", f"node.id={n}",
        "--set", f"listeners=PLAINTEXT://:{ports[n]}", "--set", f"log.dirs={work}/data-{n}", "--set", "schema.registry.enable=false",
        "--set", f"broker.session.timeout.ms={SESSION_MS}", "--set", "log.level=warn"], stdout=log, stderr=log)

def partition_state(admin):
    md = admin.list_topics("failover", timeout=5)
    p = md.topics["failover"].partitions[0]
    return p.leader, list(p.isrs)

try:
    for n in ports: start(n)
    time.sleep(6)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("failover", 1, 3, config={"min.insync.replicas": "2"})])["failover"].result()
    results = []
    errors_total = []
    for trial in range(TRIALS):
        while True:  # a healthy start: a leader and a full ISR
            try:
                leader, isr = partition_state(admin)
                if leader >= 0 and len(isr) == 3: break
            except Exception: pass
            time.sleep(0.2)
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 0,
                             "message.timeout.ms": 60000, "retry.backoff.ms": 50, "topic.metadata.refresh.interval.ms": 1000})
        producer.produce("failover", b"warm", partition=0); producer.flush(30)
        if MODE == "term":
            # Controlled shutdown under a steady producer: every record must be acknowledged, none may fail.
            acked, failed = [], []
            def report(err, msg):
                (failed if err is not None else acked).append((time.monotonic(), err))
            brokers[leader].send_signal(signal.SIGTERM)
            killed = time.monotonic()
            sent = 0
            while brokers[leader].poll() is None or time.monotonic() - killed < 2:
                producer.produce("failover", b"steady", partition=0, on_delivery=report); sent += 1
                producer.poll(0.005)
            producer.flush(60)
            stamps = [killed] + sorted(t for t, _ in acked)
            gap = max(b - a for a, b in zip(stamps, stamps[1:])) if len(stamps) > 1 else float("nan")
            errors_total.append(len(failed))
            elapsed = gap
            print(f"trial {trial + 1}: sent {sent}, acknowledged {len(acked)}, failed {len(failed)}"
                  + (f" ({failed[0][1]})" if failed else "") + f", longest gap between acks {gap * 1000:.0f} ms", flush=True)
            results.append(elapsed)
            start(leader)
            continue
        brokers[leader].send_signal(signal.SIGKILL); brokers[leader].wait()
        killed = time.monotonic()
        acked = []
        producer.produce("failover", b"after-kill", partition=0, on_delivery=lambda err, msg: acked.append(err))
        while not acked: producer.poll(0.01)
        elapsed = time.monotonic() - killed
        if acked[0] is not None: print(f"trial {trial}: delivery failed: {acked[0]}"); 
        else: results.append(elapsed)
        new_leader, _ = partition_state(admin)
        print(f"trial {trial + 1}: leader {leader} killed, new leader {new_leader}, first ack after {elapsed * 1000:.0f} ms", flush=True)
        start(leader)
    results.sort()
    p = lambda q: results[min(len(results) - 1, int(round(q * (len(results) - 1))))]
    if MODE == "term": print(f"controlled shutdowns {TRIALS}: producer errors {sum(errors_total)}; longest gap between acknowledgements:", end=" ")
    print(f"trials {len(results)}/{TRIALS}, session timeout {SESSION_MS} ms: p50 {p(0.5) * 1000:.0f} ms, "
          f"p99 {p(0.99) * 1000:.0f} ms, min {results[0] * 1000:.0f} ms, max {results[-1] * 1000:.0f} ms")
finally:
    for b in brokers.values():
        if b.poll() is None: b.send_signal(signal.SIGKILL); b.wait()
    etcd.kill(); etcd.wait()
    subprocess.run(["rm", "-rf", work])
