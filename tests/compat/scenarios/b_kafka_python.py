#!/usr/bin/python3
"""kafka-python 2.0.2 (Debian python3-kafka): KafkaAdminClient.create_topics (3 partitions), 10,000 keyed
records with headers and explicit timestamps, exact read-back with assign()+seek_to_beginning (no group),
beginning/end offsets and offsets_for_times."""
import os
import sys
import time
import traceback

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

B = os.environ["BOOTSTRAP"]
N = 10_000
HALF = 5_000
PARTS = 3
TOPIC = f"kafka-python-{int(time.time())}-{os.getpid()}"
# Explicit CreateTime timestamps, one millisecond apart, an hour in the past.
BASE_TS = (int(time.time() * 1000) - 3_600_000) // 1000 * 1000

failed = 0


def ok(name, msg):
    print(f"PASS kafka-python {name}: {msg}", flush=True)


def bad(name, msg):
    global failed
    failed += 1
    print(f"FAIL kafka-python {name}: {msg}", flush=True)


def record(i):
    key = f"key-{i:05d}".encode()
    value = b"" if i % 1000 == 7 else (f"value {i} ".encode() + bytes(range(i % 256)) * (1 + i % 3))
    headers = [("h1", b"v1"), ("idx", str(i).encode()), ("dup", b"a"), ("dup", b"b")]
    if i % 10 == 3:
        headers.append(("empty", b""))
    return key, value, headers, BASE_TS + i


def step(name, fn):
    """Runs one check; an exception is a failure with its reason. Returns fn's result or None."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - report every client error as a failed check
        bad(name, f"{type(e).__name__}: {e}")
        if not isinstance(e, AssertionError):
            traceback.print_exc(file=sys.stdout)
        return None


def create_topic():
    admin = KafkaAdminClient(bootstrap_servers=B, client_id="compat-kafka-python", request_timeout_ms=30000)
    try:
        admin.create_topics([NewTopic(name=TOPIC, num_partitions=PARTS, replication_factor=1)], timeout_ms=30000)
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=B, group_id=None, client_id="compat-kafka-python-meta")
    try:
        deadline = time.time() + 20
        while True:
            parts = consumer.partitions_for_topic(TOPIC)
            if parts == set(range(PARTS)):
                break
            if time.time() > deadline:
                raise AssertionError(f"metadata shows partitions {parts}, expected {set(range(PARTS))}")
            time.sleep(0.2)
    finally:
        consumer.close()
    ok("create-topic", f"{TOPIC} created with {PARTS} partitions, visible in metadata")
    return True


def produce():
    producer = KafkaProducer(bootstrap_servers=B, client_id="compat-kafka-python", acks="all",
                             linger_ms=5, retries=0, max_in_flight_requests_per_connection=1)
    t0 = time.time()
    futures = []
    for i in range(N):
        key, value, headers, ts = record(i)
        futures.append(producer.send(TOPIC, key=key, value=value, headers=headers, timestamp_ms=ts))
    producer.flush(timeout=60)
    placed = []  # (partition, offset) per record index
    for i, f in enumerate(futures):
        md = f.get(timeout=30)
        placed.append((md.partition, md.offset))
    producer.close(timeout=10)
    # Every partition's offsets must be exactly 0..n-1 in produce order.
    per = {}
    for i, (p, o) in enumerate(placed):
        per.setdefault(p, []).append(o)
    for p, offs in per.items():
        if offs != list(range(len(offs))):
            j = next(j for j, o in enumerate(offs) if o != j)
            raise AssertionError(f"partition {p}: acked offsets not 0..n-1 in produce order (record #{j} got {offs[j]})")
    ok("produce", f"{N} records acked in {time.time() - t0:.1f}s, per partition {dict(sorted((p, len(o)) for p, o in per.items()))}")
    return placed


def consume(placed):
    tps = [TopicPartition(TOPIC, p) for p in range(PARTS)]
    consumer = KafkaConsumer(bootstrap_servers=B, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="none", client_id="compat-kafka-python", fetch_max_wait_ms=100)
    try:
        consumer.assign(tps)
        consumer.seek_to_beginning()
        got = {}
        deadline = time.time() + 60
        while len(got) < N and time.time() < deadline:
            for tp, msgs in consumer.poll(timeout_ms=500, max_records=5000).items():
                for m in msgs:
                    if (m.partition, m.offset) in got:
                        raise AssertionError(f"offset {m.partition}/{m.offset} delivered twice")
                    got[(m.partition, m.offset)] = m
        if len(got) != N:
            raise AssertionError(f"read {len(got)} records in 60s, expected {N}")
        positions = {tp.partition: consumer.position(tp) for tp in tps}
        check_records(placed, got)
        ends = consumer.end_offsets(tps)
        begins = consumer.beginning_offsets(tps)
        counts = {}
        for p, _ in placed:
            counts[p] = counts.get(p, 0) + 1
        exp_end = {p: counts.get(p, 0) for p in range(PARTS)}
        got_end = {tp.partition: o for tp, o in ends.items()}
        got_begin = {tp.partition: o for tp, o in begins.items()}
        if got_end != exp_end or got_begin != {p: 0 for p in range(PARTS)} or positions != exp_end:
            bad("offsets", f"end_offsets {got_end} / beginning_offsets {got_begin} / positions {positions}, expected end {exp_end}, beginning 0")
        else:
            ok("offsets", f"beginning 0, end offsets and consumer positions {got_end}")
        check_times(consumer, placed)
    finally:
        consumer.close()


def check_records(placed, got):
    for i in range(N):
        key, value, headers, ts = record(i)
        p, o = placed[i]
        m = got.get((p, o))
        where = f"record #{i} at {p}/{o}"
        if m is None:
            raise AssertionError(f"{where} missing")
        if m.key != key:
            raise AssertionError(f"{where}: key {m.key!r}, expected {key!r}")
        if m.value != value:
            raise AssertionError(f"{where}: value {m.value[:60]!r}... ({len(m.value)} B), expected {value[:60]!r}... ({len(value)} B)")
        if list(m.headers) != headers:
            raise AssertionError(f"{where}: headers {m.headers!r}, expected {headers!r}")
        if m.timestamp != ts or m.timestamp_type != 0:
            raise AssertionError(f"{where}: timestamp {m.timestamp} type {m.timestamp_type}, expected {ts} type 0 (CreateTime)")
    ok("read-back", f"{N} records identical (key, value, 4-5 headers incl. duplicate names, CreateTime timestamp) at their acked offsets")


def check_times(consumer, placed):
    tps = [TopicPartition(TOPIC, p) for p in range(PARTS)]
    cases = [
        ("offsets-for-times-mid", BASE_TS + HALF, lambda i: i >= HALF),
        ("offsets-for-times-exact-odd", BASE_TS + 7777, lambda i: i >= 7777),
        ("offsets-for-times-zero", 0, lambda i: True),
        ("offsets-for-times-future", BASE_TS + N + 60_000, lambda i: False),
    ]
    for name, target, pred in cases:
        expected = {}
        for p in range(PARTS):
            first = next(((placed[i][1], BASE_TS + i) for i in range(N) if placed[i][0] == p and pred(i)), None)
            expected[p] = first
        res = step(name, lambda: consumer.offsets_for_times({tp: target for tp in tps}))
        if res is None:
            continue
        got = {tp.partition: (None if v is None else (v.offset, v.timestamp)) for tp, v in res.items()}
        if got != expected:
            bad(name, f"target {target}: got {got}, expected {expected}")
        else:
            ok(name, f"target {target}: {got}")


def main():
    if step("create-topic", create_topic) is None:
        return
    placed = step("produce", produce)
    if placed is None:
        return
    step("read-back", lambda: consume(placed))


main()
sys.exit(1 if failed else 0)
