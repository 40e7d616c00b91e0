#!/usr/bin/python3
"""confluent-kafka-python 1.7 on librdkafka 2.0.2 (Debian python3-confluent-kafka): AdminClient.create_topics
(3 partitions), Producer of 10,000 keyed records with headers and explicit timestamps, exact read-back with
a Consumer using assign() only (group.id is required by librdkafka but never joined, commits disabled),
watermarks and offsets_for_times."""
import os
import sys
import time
import traceback

from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer, KafkaError, KafkaException,
                             Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

B = os.environ["BOOTSTRAP"]
N = 10_000
HALF = 5_000
PARTS = 3
TOPIC = f"confluent-kafka-{int(time.time())}-{os.getpid()}"
BASE_TS = (int(time.time() * 1000) - 7_200_000) // 1000 * 1000
COMMON = {"bootstrap.servers": B, "client.id": "compat-confluent-kafka", "socket.timeout.ms": 30000}

failed = 0
client_errors = []


def ok(name, msg):
    print(f"PASS confluent-kafka {name}: {msg}", flush=True)


def bad(name, msg):
    global failed
    failed += 1
    print(f"FAIL confluent-kafka {name}: {msg}", flush=True)


def on_error(err):
    client_errors.append(str(err))


def record(i):
    key = f"key-{i:05d}".encode()
    value = b"" if i % 1000 == 7 else (f"value {i} ".encode() + bytes(range(255, 255 - i % 256, -1)) * (1 + i % 2))
    headers = [("h1", b"v1"), ("idx", str(i).encode()), ("dup", b"a"), ("dup", b"b")]
    if i % 10 == 3:
        headers.append(("empty", b""))
    return key, value, headers, BASE_TS + i


def step(name, fn):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - every client error is a failed check with its reason
        bad(name, f"{type(e).__name__}: {e}")
        if not isinstance(e, AssertionError):
            traceback.print_exc(file=sys.stdout)
        return None


def create_topic():
    admin = AdminClient(dict(COMMON, error_cb=on_error))
    futures = admin.create_topics([NewTopic(TOPIC, num_partitions=PARTS, replication_factor=1)], request_timeout=30)
    futures[TOPIC].result(timeout=40)
    deadline = time.time() + 20
    while True:
        md = admin.list_topics(topic=TOPIC, timeout=10)
        t = md.topics.get(TOPIC)
        if t is not None and t.error is None and sorted(t.partitions) == list(range(PARTS)):
            break
        if time.time() > deadline:
            raise AssertionError(f"metadata for {TOPIC}: {t and (t.error, sorted(t.partitions))}")
        time.sleep(0.2)
    ok("create-topic", f"{TOPIC} created with {PARTS} partitions, visible in metadata (brokers {sorted(str(b) for b in md.brokers.values())})")
    return True


def produce():
    producer = Producer(dict(COMMON, **{"linger.ms": 5, "acks": "all", "error_cb": on_error,
                                        "max.in.flight.requests.per.connection": 1}))
    placed = [None] * N
    errors = []

    def delivered(i):
        def cb(err, msg):
            if err is not None:
                errors.append((i, str(err)))
            else:
                placed[i] = (msg.partition(), msg.offset())
        return cb

    t0 = time.time()
    for i in range(N):
        key, value, headers, ts = record(i)
        while True:
            try:
                producer.produce(TOPIC, key=key, value=value, headers=headers, timestamp=ts, on_delivery=delivered(i))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining:
        raise AssertionError(f"{remaining} records still undelivered after 60s")
    if errors:
        raise AssertionError(f"{len(errors)} delivery errors, first: record #{errors[0][0]}: {errors[0][1]}")
    missing = [i for i in range(N) if placed[i] is None]
    if missing:
        raise AssertionError(f"{len(missing)} records without delivery report, first #{missing[0]}")
    per = {}
    for p, o in placed:
        per.setdefault(p, []).append(o)
    for p, offs in per.items():
        if offs != list(range(len(offs))):
            j = next(j for j, o in enumerate(offs) if o != j)
            raise AssertionError(f"partition {p}: acked offsets not 0..n-1 in produce order (record #{j} of it got {offs[j]})")
    ok("produce", f"{N} records acked in {time.time() - t0:.1f}s, per partition {dict(sorted((p, len(o)) for p, o in per.items()))}")
    return placed


def consume(placed):
    consumer = Consumer(dict(COMMON, **{
        "group.id": "compat-confluent-kafka-unused",  # required by librdkafka; assign() never joins it
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "fetch.wait.max.ms": 100,
        "error_cb": on_error,
    }))
    try:
        consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(PARTS)])
        got = {}
        deadline = time.time() + 60
        while len(got) < N and time.time() < deadline:
            for m in consumer.consume(num_messages=2000, timeout=0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(m.error())
                if (m.partition(), m.offset()) in got:
                    raise AssertionError(f"offset {m.partition()}/{m.offset()} delivered twice")
                got[(m.partition(), m.offset())] = m
        if len(got) != N:
            raise AssertionError(f"read {len(got)} records in 60s, expected {N}")
        check_records(placed, got)

        counts = {p: 0 for p in range(PARTS)}
        for p, _ in placed:
            counts[p] += 1
        marks = {p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10) for p in range(PARTS)}
        exp = {p: (0, counts[p]) for p in range(PARTS)}
        if marks != exp:
            bad("watermarks", f"got {marks}, expected {exp}")
        else:
            ok("watermarks", f"(low, high) per partition {marks}")
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
        if m.key() != key:
            raise AssertionError(f"{where}: key {m.key()!r}, expected {key!r}")
        if (m.value() or b"") != value or m.value() is None:
            raise AssertionError(f"{where}: value {m.value() and m.value()[:60]!r} , expected {value[:60]!r}... ({len(value)} B)")
        if (m.headers() or []) != headers:
            raise AssertionError(f"{where}: headers {m.headers()!r}, expected {headers!r}")
        if m.timestamp() != (TIMESTAMP_CREATE_TIME, ts):
            raise AssertionError(f"{where}: timestamp {m.timestamp()}, expected {(TIMESTAMP_CREATE_TIME, ts)}")
    ok("read-back", f"{N} records identical (key, value, headers incl. duplicate names, CreateTime timestamp) at their acked offsets")


def check_times(consumer, placed):
    cases = [
        ("offsets-for-times-mid", BASE_TS + HALF, lambda i: i >= HALF),
        ("offsets-for-times-exact-odd", BASE_TS + 2345, lambda i: i >= 2345),
        ("offsets-for-times-zero", 0, lambda i: True),
        ("offsets-for-times-future", BASE_TS + N + 60_000, lambda i: False),
    ]
    for name, target, pred in cases:
        # librdkafka reports "no record at or after the timestamp" as offset -1 (OFFSET_END).
        expected = {p: next((placed[i][1] for i in range(N) if placed[i][0] == p and pred(i)), -1) for p in range(PARTS)}
        res = step(name, lambda: consumer.offsets_for_times([TopicPartition(TOPIC, p, target) for p in range(PARTS)], timeout=15))
        if res is None:
            continue
        errs = {tp.partition: str(tp.error) for tp in res if tp.error is not None}
        got = {tp.partition: tp.offset for tp in res}
        if errs or got != expected:
            bad(name, f"target {target}: got {got} errors {errs}, expected {expected}")
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
if client_errors:
    print(f"note: client error callbacks ({len(client_errors)}): {client_errors[:5]}")
sys.exit(1 if failed else 0)
