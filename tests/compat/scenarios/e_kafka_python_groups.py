#!/usr/bin/python3
"""kafka-python 2.0.2 (Debian python3-kafka) consumer groups: two subscribed consumers share 6 partitions and
every record reaches exactly one of them; their commits resume a new member where they stopped; an assign()-only
consumer commits an offset with metadata and reads it back; the admin client lists, describes and deletes groups."""
import os
import sys
import threading
import time
import traceback

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

B = os.environ["BOOTSTRAP"]
PARTS = 6
N = 600
TOPIC = f"kafka-python-groups-{int(time.time())}-{os.getpid()}"
GROUP = f"compat-kafka-python-{os.getpid()}"
STANDALONE = f"compat-kafka-python-standalone-{os.getpid()}"

failed = 0


def ok(name, msg):
    print(f"PASS kafka-python-groups {name}: {msg}", flush=True)


def bad(name, msg):
    global failed
    failed += 1
    print(f"FAIL kafka-python-groups {name}: {msg}", flush=True)


def step(name, fn):
    try:
        result = fn()
        return True if result is None else result
    except Exception as e:  # noqa: BLE001 - report every client error as a failed check
        bad(name, f"{type(e).__name__}: {e}")
        if not isinstance(e, AssertionError):
            traceback.print_exc(file=sys.stdout)
        return None


def member(client_id):
    return KafkaConsumer(bootstrap_servers=B, group_id=GROUP, client_id=client_id, enable_auto_commit=False,
                         auto_offset_reset="earliest", session_timeout_ms=10000, heartbeat_interval_ms=500,
                         max_poll_interval_ms=20000, max_poll_records=100)


def poll_until(consumers, done, what, on_record=None, timeout=60):
    """Polls each consumer on its own thread (a kafka-python poll blocks while its member rejoins, so one thread
    polling several members in turn would hold up the rebalance) until done() holds."""
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def run(i, c):
        try:
            while not stop.is_set():
                for records in c.poll(timeout_ms=50).values():
                    for r in records:
                        if on_record:
                            with lock:
                                on_record(i, r)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(consumers)]
    for t in threads:
        t.start()
    deadline = time.time() + timeout
    try:
        while True:
            with lock:
                if done():
                    return
            if errors:
                raise errors[0]
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(10)


def setup():
    admin = KafkaAdminClient(bootstrap_servers=B, client_id="compat-kafka-python-groups", request_timeout_ms=30000)
    try:
        admin.create_topics([NewTopic(name=TOPIC, num_partitions=PARTS, replication_factor=1)], timeout_ms=30000)
    finally:
        admin.close()


def shared_group():
    consumers = [member("compat-a"), member("compat-b")]
    try:
        for c in consumers:
            c.subscribe([TOPIC])

        def balanced():
            parts = [tp.partition for c in consumers for tp in c.assignment()]
            return len(parts) == PARTS and len(set(parts)) == PARTS and all(len(c.assignment()) == PARTS // 2 for c in consumers)

        poll_until(consumers, balanced, "two members with three partitions each")
        ok("join", "two members share 6 partitions, 3 each")

        producer = KafkaProducer(bootstrap_servers=B)
        for i in range(N):
            producer.send(TOPIC, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % PARTS)
        producer.flush(30)
        producer.close()

        got = []
        poll_until(consumers, lambda: len(got) >= N, f"{N} records", lambda i, r: got.append((i, r.partition, r.key)))
        keys = [k for _, _, k in got]
        assert len(keys) == N and len(set(keys)) == N, f"{len(keys)} records, {len(set(keys))} distinct"
        owners = {}
        for i, p, _ in got:
            owners.setdefault(p, set()).add(i)
        assert all(len(o) == 1 for o in owners.values()), f"a partition was read by two members: {owners}"
        ok("exactly-once-per-group", f"{N} records, each delivered to exactly one member")

        # Commit half of each partition, then leave.
        for c in consumers:
            offsets = {tp: OffsetAndMetadata(50, "half") for tp in c.assignment()}
            c.commit(offsets)
        ok("commit", "members committed offset 50 on every partition")
    finally:
        for c in consumers:
            c.close()

    late = member("compat-c")
    try:
        late.subscribe([TOPIC])
        got = []
        poll_until([late], lambda: len(got) >= N - PARTS * 50, "the uncommitted half", lambda _, r: got.append(r))
        assert all(r.offset >= 50 for r in got), "a record below the committed offset was delivered again"
        committed = {p: late.committed(TopicPartition(TOPIC, p)) for p in range(PARTS)}
        assert all(v == 50 for v in committed.values()), f"committed {committed}"
        ok("resume", f"a new member resumed at the committed offsets and read the other {len(got)} records")
    finally:
        late.close()


def standalone():
    c = KafkaConsumer(bootstrap_servers=B, group_id=STANDALONE, enable_auto_commit=False)
    try:
        tp = TopicPartition(TOPIC, 2)
        c.assign([tp])
        c.commit({tp: OffsetAndMetadata(42, "replay-marker")})
        assert c.committed(tp) == 42, f"committed {c.committed(tp)}"
    finally:
        c.close()
    admin = KafkaAdminClient(bootstrap_servers=B, client_id="compat-kafka-python-groups")
    try:
        offsets = admin.list_consumer_group_offsets(STANDALONE)
        got = offsets[TopicPartition(TOPIC, 2)]
        assert (got.offset, got.metadata) == (42, "replay-marker"), f"got {got}"
    finally:
        admin.close()
    ok("standalone-commit", "assign()+commit with metadata, read back by committed() and the admin client")


def admin_groups():
    admin = KafkaAdminClient(bootstrap_servers=B, client_id="compat-kafka-python-groups")
    try:
        listed = {g[0]: g[1] for g in admin.list_consumer_groups()}
        assert GROUP in listed and STANDALONE in listed, f"listed {listed}"
        described = admin.describe_consumer_groups([GROUP])[0]
        assert described.state == "Empty", f"state {described.state}"
        results = dict(admin.delete_consumer_groups([GROUP, STANDALONE]))
        assert all(e.errno == 0 for e in results.values()), f"delete: {results}"
        listed = {g[0] for g in admin.list_consumer_groups()}
        assert GROUP not in listed, "deleted group still listed"
    finally:
        admin.close()
    ok("admin", "list, describe (Empty) and delete groups")


def main():
    if step("create-topic", setup) is None:
        return
    if step("shared-group", shared_group) is None:
        return
    step("standalone-commit", standalone)
    step("admin", admin_groups)


main()
sys.exit(1 if failed else 0)
