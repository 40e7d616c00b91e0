#!/usr/bin/python3
"""confluent-kafka-python 1.7 on librdkafka 2.0.2 (Debian python3-confluent-kafka) exactly-once support:
- create-topics: AdminClient creates a 6-partition input, a 3-partition output and the other checks' topics.
- idempotent: an enable.idempotence producer (acks=all) delivers 2,000 keyed records over 3 partitions; an
  assign()-only consumer reads exactly them back, offsets dense from 0 per partition, no duplicates, HW = count.
- commit-abort: one transactional.id commits 300 records, aborts 200, commits 100 (every txn touches all 3
  partitions): read_committed reads exactly the 400 committed records, read_uncommitted all 600 data records
  (never a control record), each partition's HW = data records + 3 markers and each txn starts 1 past the
  previous one's last record (the marker's offset).
- lso-holds-back: with a flushed but open transaction, a read_committed consumer stops (partition EOF) at or
  before the transaction's first offset and never sees its records; query_watermark_offsets from that consumer
  (ListOffsets v2+ with isolation_level 1 in librdkafka 2.0.2) gives the LSO = that first offset, the cached
  watermark (the Fetch HighwaterMark) the HW; after commit_transaction the consumer gets all of them.
- consume-transform-produce: a read_committed group consumer and a transactional producer copy 600 records
  from the input to the output upper-cased, committing the consumer offsets through send_offsets_to_transaction;
  one batch is flushed and then aborted, the consumer rewound to its committed offsets and the batch redone.
  The output holds every input record transformed exactly once (read_uncommitted also sees the aborted copies),
  input-partition order kept within each output partition, and the group's committed offsets equal the input's
  end offsets.
- fencing: a second producer with the same transactional.id aborts the first one's open transaction; the first
  one's commit_transaction fails (fatal, or _FENCED / PRODUCER_FENCED / INVALID_PRODUCER_EPOCH); its records
  are invisible to read_committed (present for read_uncommitted); the second one's committed records are
  visible."""
import os
import sys
import time
import traceback

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

B = os.environ["BOOTSTRAP"]
RUN = f"{int(time.time())}-{os.getpid()}"
IN = f"confluent-kafka-txn-in-{RUN}"
OUT = f"confluent-kafka-txn-out-{RUN}"
IDEM = f"confluent-kafka-txn-idem-{RUN}"
TXN = f"confluent-kafka-txn-ca-{RUN}"
LSO = f"confluent-kafka-txn-lso-{RUN}"
FENCE = f"confluent-kafka-txn-fence-{RUN}"
TOPICS = {IN: 6, OUT: 3, IDEM: 3, TXN: 3, LSO: 1, FENCE: 1}
GROUP = f"compat-confluent-kafka-txn-{RUN}"
COMMON = {"bootstrap.servers": B, "client.id": "compat-confluent-kafka-txn", "socket.timeout.ms": 30000}
TXN_TIMEOUT = 30  # seconds for init/commit/abort/send_offsets calls

failed = 0
client_errors = []


def ok(name, msg):
    print(f"PASS confluent-kafka-txn {name}: {msg}", flush=True)


def bad(name, msg):
    global failed
    failed += 1
    print(f"FAIL confluent-kafka-txn {name}: {msg}", flush=True)


def on_error(err):
    client_errors.append(str(err))


def step(name, fn):
    try:
        result = fn()
        return True if result is None else result
    except Exception as e:  # noqa: BLE001 - every client error is a failed check with its reason
        bad(name, f"{type(e).__name__}: {e}")
        if not isinstance(e, AssertionError):
            traceback.print_exc(file=sys.stdout)
        return None


def check(name, cond, good, mismatch):
    """One reported sub-check: PASS with `good` or FAIL with `mismatch` (both may be callables)."""
    if cond:
        ok(name, good() if callable(good) else good)
    else:
        bad(name, mismatch() if callable(mismatch) else mismatch)
    return cond


def err_desc(e):
    """Name, code and flags of a KafkaException's KafkaError."""
    ke = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
    if ke is None:
        return None, f"{type(e).__name__}: {e}"
    return ke, (f"{ke.name()} (code {ke.code()}, fatal={ke.fatal()}, retriable={ke.retriable()}, "
                f"txn_requires_abort={ke.txn_requires_abort()}): {ke.str()}")


# --- helpers --------------------------------------------------------------------------------------------------


def producer(**extra):
    return Producer(dict(COMMON, **{"linger.ms": 5, "error_cb": on_error}, **extra))


def txn_producer(txn_id):
    p = producer(**{"transactional.id": txn_id, "transaction.timeout.ms": 60000})
    p.init_transactions(TXN_TIMEOUT)
    return p


class Sent:
    """Delivery reports of one producer: (partition, offset) per produced value, errors collected."""

    def __init__(self):
        self.placed = {}
        self.errors = []

    def cb(self, value):
        def done(err, msg):
            if err is not None:
                self.errors.append((value, str(err)))
            else:
                self.placed[value] = (msg.partition(), msg.offset())
        return done


def produce_all(p, topic, items, sent, partition=None):
    """items: (key, value) pairs; partition: None (partitioner) or a function of the item index."""
    for i, (key, value) in enumerate(items):
        kw = {} if partition is None else {"partition": partition(i)}
        while True:
            try:
                p.produce(topic, key=key, value=value, on_delivery=sent.cb(value), **kw)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)


def flush_all(p, sent, expected, what):
    remaining = p.flush(30)
    if remaining:
        raise AssertionError(f"{what}: {remaining} records still undelivered after 30s")
    if sent.errors:
        raise AssertionError(f"{what}: {len(sent.errors)} delivery errors, first {sent.errors[0][0]!r}: {sent.errors[0][1]}")
    missing = [v for v in expected if v not in sent.placed]
    if missing:
        raise AssertionError(f"{what}: {len(missing)} records without a delivery report, first {missing[0]!r}")


class Reader:
    """An assign()-only consumer from the beginning of every partition, with partition EOF events."""

    def __init__(self, topic, parts, isolation, tag):
        self.topic = topic
        self.parts = list(parts)
        self.isolation = isolation
        self.consumer = Consumer(dict(COMMON, **{
            "group.id": f"compat-confluent-kafka-txn-reader-{RUN}-{tag}",  # required by librdkafka; never joined
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "error",
            "isolation.level": isolation,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 100,
            "error_cb": on_error,
        }))
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in self.parts])
        self.records = {}  # (partition, offset) -> (key, value)
        self.order = []    # (partition, offset) in delivery order
        self.dups = []
        self.last = {p: -1 for p in self.parts}  # offset of the last record delivered per partition
        self.eof = {p: -1 for p in self.parts}   # offset of the last EOF event per partition

    def at_eof(self):
        return all(self.eof[p] > self.last[p] for p in self.parts)

    def read(self, count, timeout=30):
        """Consumes until at least `count` records arrived and every partition reported EOF after its last record."""
        deadline = time.time() + timeout
        while not (len(self.records) >= count and self.at_eof()):
            if time.time() > deadline:
                raise AssertionError(f"{self.isolation} read of {self.topic}: {len(self.records)} records (waiting for "
                                     f"{count}) and EOF {self.eof} after last records {self.last} within {timeout}s")
            for m in self.consumer.consume(num_messages=1000, timeout=0.2):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        self.eof[m.partition()] = m.offset()
                        continue
                    raise KafkaException(err)
                key = (m.partition(), m.offset())
                if key in self.records:
                    self.dups.append(key)
                self.records[key] = (m.key(), m.value())
                self.order.append(key)
                self.last[m.partition()] = m.offset()
        if self.dups:
            raise AssertionError(f"{self.isolation} read of {self.topic}: {len(self.dups)} offsets delivered twice, first {self.dups[0]}")
        return self

    def values(self):
        return [self.records[k][1] for k in self.order]

    def close(self):
        self.consumer.close()


def hw(topic, parts):
    """High watermarks queried with a read_uncommitted consumer (ListOffsets latest, isolation_level 0)."""
    c = Consumer(dict(COMMON, **{"group.id": f"compat-confluent-kafka-txn-hw-{RUN}", "error_cb": on_error}))
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    finally:
        c.close()


def first_diff(got, expected):
    """First position where two sequences differ, as a readable string."""
    for j, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            return f"#{j}: got {g!r}, expected {e!r}"
    return f"lengths {len(got)} vs {len(expected)}" + (f", first extra {got[len(expected)]!r}" if len(got) > len(expected)
                                                      else f", first missing {expected[len(got)]!r}" if len(expected) > len(got) else "")


# --- 1. create-topics -----------------------------------------------------------------------------------------


def create_topics():
    admin = AdminClient(dict(COMMON, error_cb=on_error))
    futures = admin.create_topics([NewTopic(t, num_partitions=n, replication_factor=1) for t, n in TOPICS.items()],
                                  request_timeout=30)
    for t, f in futures.items():
        f.result(timeout=40)
    deadline = time.time() + 20
    while True:
        md = admin.list_topics(timeout=10)
        seen = {t: (md.topics[t].error, sorted(md.topics[t].partitions)) if t in md.topics else None for t in TOPICS}
        if all(seen[t] == (None, list(range(n))) for t, n in TOPICS.items()):
            break
        if time.time() > deadline:
            bad_t = next(t for t, n in TOPICS.items() if seen[t] != (None, list(range(n))))
            raise AssertionError(f"metadata for {bad_t}: {seen[bad_t]}, expected {TOPICS[bad_t]} partitions")
        time.sleep(0.2)
    ok("create-topics", f"input {IN} (6 partitions), output {OUT} (3) and {len(TOPICS) - 2} more topics created, visible in metadata")


# --- 2. idempotent --------------------------------------------------------------------------------------------

IDEM_N = 2000


def idempotent():
    p = producer(**{"enable.idempotence": True, "acks": "all"})
    sent = Sent()
    items = [(f"key-{i:05d}".encode(), f"idem-{i}".encode()) for i in range(IDEM_N)]
    t0 = time.time()
    produce_all(p, IDEM, items, sent)
    flush_all(p, sent, [v for _, v in items], "idempotent produce")
    per = {}
    for _, v in items:
        part, off = sent.placed[v]
        per.setdefault(part, []).append(off)
    if sorted(per) != [0, 1, 2]:
        raise AssertionError(f"keyed records landed on partitions {sorted(per)}, expected all of [0, 1, 2]")
    for part, offs in per.items():
        if offs != list(range(len(offs))):
            raise AssertionError(f"partition {part}: acked offsets not 0..n-1 in produce order ({first_diff(offs, list(range(len(offs))))})")
    r = Reader(IDEM, range(3), "read_uncommitted", "idem").read(IDEM_N)
    try:
        got = {k: v for k, v in r.records.items()}
        expected = {sent.placed[v]: (k, v) for k, v in items}
        if got != expected:
            extra = sorted(set(got) - set(expected))
            missing = sorted(set(expected) - set(got))
            wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
            raise AssertionError(f"read {len(got)} records, expected {IDEM_N}: extra offsets {extra[:3]}, missing "
                                 f"{missing[:3]}, different content at {[(k, got[k], expected[k]) for k in wrong[:2]]}")
        for part in range(3):
            offs = sorted(o for q, o in got if q == part)
            if offs != list(range(len(per[part]))):
                raise AssertionError(f"partition {part}: read offsets not dense from 0 ({first_diff(offs, list(range(len(per[part]))))})")
        eofs = dict(r.eof)
    finally:
        r.close()
    marks = hw(IDEM, range(3))
    counts = {q: len(per[q]) for q in range(3)}
    if marks != counts or eofs != counts:
        raise AssertionError(f"high watermarks {marks} / EOF offsets {eofs}, expected the record counts {counts} (no control records)")
    ok("idempotent", f"{IDEM_N} records acked in {time.time() - t0:.1f}s and read back exactly once, offsets dense from 0, "
                     f"per partition {counts} = HW")


# --- 3. commit-abort ------------------------------------------------------------------------------------------


def commit_abort():
    p = txn_producer(f"compat-ck-txn-ca-{RUN}")
    batches = {"A": (300, True), "B": (200, False), "C": (100, True)}
    sents = {}
    for name, (n, commit) in batches.items():
        sent = sents[name] = Sent()
        p.begin_transaction()
        items = [(f"{name}-key-{i}".encode(), f"{name}-{i}".encode()) for i in range(n)]
        produce_all(p, TXN, items, sent, partition=lambda i: i % 3)
        flush_all(p, sent, [v for _, v in items], f"txn {name}")
        (p.commit_transaction if commit else p.abort_transaction)(TXN_TIMEOUT)
    placed = {v: pl for s in sents.values() for v, pl in s.placed.items()}

    def values_by_partition(names):
        out = {q: [] for q in range(3)}
        for v, (q, o) in sorted(((v, pl) for n in names for v, pl in sents[n].placed.items()), key=lambda x: x[1]):
            out[q].append(v)
        return out

    committed = values_by_partition("AC")
    everything = values_by_partition("ABC")

    rc = Reader(TXN, range(3), "read_committed", "ca-rc").read(400)
    try:
        got = {q: [rc.records[k][1] for k in rc.order if k[0] == q] for q in range(3)}
        bad_keys = [rc.records[k] for k in rc.order if rc.records[k][1].startswith(b"B-")]
        if bad_keys:
            bad("commit-abort-read-committed", f"{len(bad_keys)} records of the aborted txn B delivered, first {bad_keys[0]!r}")
        elif got != committed:
            q = next(q for q in range(3) if got[q] != committed[q])
            bad("commit-abort-read-committed", f"partition {q}: {first_diff(got[q], committed[q])}")
        elif any(placed[rc.records[k][1]] != k for k in rc.order):
            k = next(k for k in rc.order if placed[rc.records[k][1]] != k)
            bad("commit-abort-read-committed", f"{rc.records[k][1]!r} read at {k}, acked at {placed[rc.records[k][1]]}")
        else:
            ok("commit-abort-read-committed", f"exactly the 400 committed records (300 of A, 100 of C) at their acked offsets, "
                                              f"none of the 200 aborted; EOF at {rc.eof}")
        rc_eof = dict(rc.eof)
    finally:
        rc.close()

    ru = Reader(TXN, range(3), "read_uncommitted", "ca-ru").read(600)
    try:
        got = {q: [ru.records[k][1] for k in ru.order if k[0] == q] for q in range(3)}
        check("commit-abort-read-uncommitted", got == everything,
              f"all 600 data records (A, B, C) in offset order, no control record delivered; EOF at {ru.eof}",
              lambda: (lambda q: f"partition {q}: {first_diff(got[q], everything[q])}")(next(q for q in range(3) if got[q] != everything[q])))
        ru_eof = dict(ru.eof)
    finally:
        ru.close()

    # Every txn wrote one control batch (one offset) on each partition right after its last record.
    marks = hw(TXN, range(3))
    data = {q: len(everything[q]) for q in range(3)}
    expected_hw = {q: data[q] + 3 for q in range(3)}
    layout = []
    for q in range(3):
        prev_end = None
        for name in "ABC":
            offs = sorted(o for v, (qq, o) in sents[name].placed.items() if qq == q)
            if offs != list(range(offs[0], offs[0] + len(offs))):
                layout.append(f"txn {name} on partition {q} not contiguous: {first_diff(offs, list(range(offs[0], offs[0] + len(offs))))}")
            if prev_end is not None and offs[0] != prev_end + 2:
                layout.append(f"txn {name} on partition {q} starts at {offs[0]}, expected {prev_end + 2} (one marker after offset {prev_end})")
            prev_end = offs[-1]
        if prev_end + 2 != expected_hw[q]:
            layout.append(f"partition {q}: last record at {prev_end}, expected HW {prev_end + 2}")
    check("commit-abort-markers", marks == expected_hw and not layout and rc_eof == expected_hw and ru_eof == expected_hw,
          f"HW per partition {marks} = data records {data} + 3 control records; each txn starts one offset past the previous one's end",
          lambda: f"HW {marks}, expected data records {data} + 3 = {expected_hw}; EOF read_committed {rc_eof}, "
                  f"read_uncommitted {ru_eof}; layout: {layout[:2]}")


# --- 4. lso-holds-back ----------------------------------------------------------------------------------------

LSO_DONE, LSO_OPEN = 50, 50


def lso_holds_back():
    p = txn_producer(f"compat-ck-txn-lso-{RUN}")
    done, open_ = Sent(), Sent()
    p.begin_transaction()
    items_done = [(b"k", f"done-{i}".encode()) for i in range(LSO_DONE)]
    produce_all(p, LSO, items_done, done)
    flush_all(p, done, [v for _, v in items_done], "committed txn")
    p.commit_transaction(TXN_TIMEOUT)
    p.begin_transaction()
    items_open = [(b"k", f"open-{i}".encode()) for i in range(LSO_OPEN)]
    produce_all(p, LSO, items_open, open_)
    flush_all(p, open_, [v for _, v in items_open], "open txn")
    first_open = min(o for _, o in open_.placed.values())
    last_open = max(o for _, o in open_.placed.values())

    r = Reader(LSO, [0], "read_committed", "lso")
    try:
        r.read(LSO_DONE)
        vals = r.values()
        leaked = [v for v in vals if v.startswith(b"open-")]
        expected = [v for _, v in items_done]
        check("lso-holds-back", not leaked and vals == expected and r.eof[0] <= first_open,
              f"read_committed stopped at EOF offset {r.eof[0]} (open txn's first offset {first_open}, its last {last_open}) "
              f"with exactly the {LSO_DONE} committed records and none of the open txn's",
              lambda: f"{len(leaked)} open-txn records delivered (first {leaked[:1]!r}), committed values "
                      f"{'ok' if vals == expected else first_diff(vals, expected)}, EOF at {r.eof[0]} (open txn starts at {first_open})")

        # librdkafka 2.0.2 query_watermark_offsets sends ListOffsets v2+ with the client's isolation.level, so a
        # read_committed consumer's "high" is the LSO; the cached watermark is the Fetch response's HighwaterMark.
        lo_q, hi_q = r.consumer.get_watermark_offsets(TopicPartition(LSO, 0), timeout=10, cached=False)
        lo_c, hi_c = r.consumer.get_watermark_offsets(TopicPartition(LSO, 0), cached=True)
        check("lso-watermarks", (lo_q, hi_q) == (0, first_open) and hi_c == last_open + 1,
              f"read_committed query_watermark_offsets (ListOffsets isolation_level 1) = ({lo_q}, {hi_q}): high is the LSO "
              f"= the open txn's first offset; cached (Fetch HighwaterMark) = ({lo_c}, {hi_c}): the HW",
              f"query_watermark_offsets = ({lo_q}, {hi_q}), expected (0, {first_open}) (LSO); cached = ({lo_c}, {hi_c}), "
              f"expected high {last_open + 1} (HW)")

        p.commit_transaction(TXN_TIMEOUT)
        r.read(LSO_DONE + LSO_OPEN)
        vals = r.values()
        expected = [v for _, v in items_done + items_open]
        placed_ok = all(r.records[open_.placed[v]][1] == v for _, v in items_open)
        check("lso-after-commit", vals == expected and placed_ok and r.eof[0] == last_open + 2,
              f"after commit_transaction the same consumer got the {LSO_OPEN} records at {first_open}..{last_open}, EOF at "
              f"{r.eof[0]} (past the commit marker)",
              lambda: f"values {first_diff(vals, expected)}, at acked offsets: {placed_ok}, EOF at {r.eof[0]} (expected {last_open + 2})")
    finally:
        r.close()


# --- 5. consume-transform-produce -----------------------------------------------------------------------------

CTP_N = 600
ABORT_BATCH = 2  # the 2nd non-empty batch is produced, flushed and then aborted


def transform(value):
    return value.upper()


def consume_transform_produce():
    feeder = producer(**{"acks": "all"})
    fed = Sent()
    items = [(f"k{i}".encode(), f"rec-{i}-v".encode()) for i in range(CTP_N)]
    produce_all(feeder, IN, items, fed)
    flush_all(feeder, fed, [v for _, v in items], "input produce")
    in_counts = {q: 0 for q in range(6)}
    for q, _ in fed.placed.values():
        in_counts[q] += 1
    if min(in_counts.values()) == 0:
        raise AssertionError(f"input keys spread unevenly: per partition {in_counts}")

    consumer = Consumer(dict(COMMON, **{
        "group.id": GROUP,
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
        "error_cb": on_error,
    }))
    p = txn_producer(f"compat-ck-txn-ctp-{RUN}")
    done = set()  # (partition, offset) of input records whose transformed copy was committed
    batches = committed_batches = 0
    aborted = 0
    rewound = None
    t0 = time.time()
    try:
        consumer.subscribe([IN])
        deadline = time.time() + 60
        while len(done) < CTP_N:
            if time.time() > deadline:
                raise AssertionError(f"only {len(done)} of {CTP_N} input records processed and committed within 60s "
                                     f"({batches} batches, assignment {[(t.topic, t.partition) for t in consumer.assignment()]})")
            msgs = []
            for m in consumer.consume(num_messages=100, timeout=0.5):
                if m.error() is not None:
                    raise KafkaException(m.error())
                msgs.append(m)
            if not msgs:
                continue
            batches += 1
            out = Sent()
            p.begin_transaction()
            for m in msgs:
                while True:
                    try:
                        p.produce(OUT, key=m.key(), value=transform(m.value()), on_delivery=out.cb(m.value()))
                        break
                    except BufferError:
                        p.poll(0.1)
            if batches == ABORT_BATCH:
                flush_all(p, out, [m.value() for m in msgs], "aborted batch")  # the copies reach the log, then abort
                p.abort_transaction(TXN_TIMEOUT)
                aborted = len(msgs)
                assignment = consumer.assignment()
                committed = consumer.committed(assignment, timeout=15)
                for tp in committed:
                    if tp.error is not None:
                        raise KafkaException(tp.error)
                    consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
                rewound = {tp.partition: tp.offset for tp in committed}
                continue
            positions = consumer.position(consumer.assignment())
            p.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), TXN_TIMEOUT)
            p.commit_transaction(TXN_TIMEOUT)
            if out.errors:
                raise AssertionError(f"batch {batches}: delivery error {out.errors[0]}")
            committed_batches += 1
            for m in msgs:
                key = (m.partition(), m.offset())
                if key in done:
                    raise AssertionError(f"input record {key} processed again in committed batch {batches}")
                done.add(key)
    finally:
        consumer.close()
    if rewound is None:
        raise AssertionError(f"the deliberate abort never happened ({batches} batches)")
    ok("consume-transform-produce", f"{CTP_N} input records copied in {committed_batches} committed batches in "
                                    f"{time.time() - t0:.1f}s; batch {ABORT_BATCH} ({aborted} records) aborted and redone "
                                    f"after rewinding to the committed offsets {rewound}")

    input_value = {k: v for k, v in items}
    rc = Reader(OUT, range(3), "read_committed", "ctp-rc").read(CTP_N)
    try:
        got = [rc.records[k] for k in rc.order]
        per_key = {}
        for k, v in got:
            per_key.setdefault(k, []).append(v)
        dup = next((k for k, vs in per_key.items() if len(vs) > 1), None)
        missing = [k for k, _ in items if k not in per_key]
        wrong = next((k for k, vs in per_key.items() if k not in input_value or vs[0] != transform(input_value[k])), None)
        # Within each output partition, the copies of one input partition's records follow that partition's offsets.
        disorder = None
        for q in range(3):
            last = {}
            for k in rc.order:
                if k[0] != q or rc.records[k][0] not in input_value:
                    continue
                src = fed.placed[input_value[rc.records[k][0]]]
                if last.get(src[0], -1) > src[1]:
                    disorder = disorder or f"output partition {q} offset {k[1]}: input {src} after input offset {last[src[0]]}"
                last[src[0]] = src[1]
        check("ctp-output-exactly-once", len(got) == CTP_N and dup is None and not missing and wrong is None and disorder is None,
              f"read_committed output holds {len(got)} records: every input record transformed exactly once, input-partition "
              f"order kept in each output partition",
              lambda: f"{len(got)} records (expected {CTP_N}); duplicate key {dup!r} {per_key.get(dup)}; missing {len(missing)} "
                      f"(first {missing[:1]!r}); wrong value for {wrong!r}: {per_key.get(wrong)}; order: {disorder}")
    finally:
        rc.close()

    ru = Reader(OUT, range(3), "read_uncommitted", "ctp-ru").read(CTP_N + aborted)
    try:
        check("ctp-output-uncommitted", len(ru.records) == CTP_N + aborted,
              f"read_uncommitted sees {len(ru.records)} = {CTP_N} + {aborted} aborted copies",
              f"read_uncommitted sees {len(ru.records)} records, expected {CTP_N} + {aborted} aborted copies")
    finally:
        ru.close()

    c = Consumer(dict(COMMON, **{"group.id": GROUP, "enable.auto.commit": False, "isolation.level": "read_committed",
                                 "error_cb": on_error}))
    try:
        res = c.committed([TopicPartition(IN, q) for q in range(6)], timeout=15)
        got = {tp.partition: (tp.offset if tp.error is None else str(tp.error)) for tp in res}
        ends = {q: c.get_watermark_offsets(TopicPartition(IN, q), timeout=10)[1] for q in range(6)}
    finally:
        c.close()
    check("ctp-committed-offsets", got == in_counts == ends,
          f"group {GROUP} committed offsets {got} = the input's end offsets",
          f"group {GROUP} committed {got}, input end offsets {ends}, records per partition {in_counts}")


# --- 6. fencing -----------------------------------------------------------------------------------------------

FENCE_N = 20


def fencing():
    tid = f"compat-ck-txn-fence-{RUN}"
    p1 = txn_producer(tid)
    s1 = Sent()
    p1.begin_transaction()
    items1 = [(b"p1", f"p1-{i}".encode()) for i in range(FENCE_N)]
    produce_all(p1, FENCE, items1, s1)
    flush_all(p1, s1, [v for _, v in items1], "P1 produce")

    p2 = txn_producer(tid)  # bumps the epoch, aborting P1's open transaction
    try:
        p1.commit_transaction(10)
        bad("fencing-p1-commit-fails", "P1's commit_transaction succeeded after P2 with the same transactional.id initialized")
    except KafkaException as e:
        ke, desc = err_desc(e)
        fenced = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
        check("fencing-p1-commit-fails", ke is not None and (ke.fatal() or ke.code() in fenced),
              f"P1's commit_transaction raised {desc}", f"P1's commit_transaction raised a non-fencing error: {desc}")
    del p1

    rc = Reader(FENCE, [0], "read_committed", "fence-rc").read(0)
    try:
        seen_p1 = [v for v in rc.values() if v.startswith(b"p1-")]
        check("fencing-p1-invisible", not seen_p1 and not rc.records,
              f"read_committed sees nothing of P1's {FENCE_N} records (EOF at {rc.eof[0]})",
              f"read_committed got {len(rc.records)} records, {len(seen_p1)} of P1's (first {seen_p1[:1]!r})")

        s2 = Sent()
        p2.begin_transaction()
        items2 = [(b"p2", f"p2-{i}".encode()) for i in range(FENCE_N)]
        produce_all(p2, FENCE, items2, s2)
        flush_all(p2, s2, [v for _, v in items2], "P2 produce")
        p2.commit_transaction(TXN_TIMEOUT)
        rc.read(FENCE_N)
        vals = rc.values()
        expected = [v for _, v in items2]
        check("fencing-p2-visible", vals == expected,
              f"P2's {FENCE_N} committed records visible to read_committed (EOF at {rc.eof[0]}), none of P1's",
              lambda: f"read_committed values: {first_diff(vals, expected)}")
    finally:
        rc.close()

    ru = Reader(FENCE, [0], "read_uncommitted", "fence-ru").read(2 * FENCE_N)
    try:
        vals = ru.values()
        expected = [v for _, v in items1 + items2]
        check("fencing-p1-aborted-in-log", vals == expected,
              f"read_uncommitted sees P1's {FENCE_N} records (written, then aborted by P2's init) and P2's {FENCE_N}",
              lambda: f"read_uncommitted values: {first_diff(vals, expected)}")
    finally:
        ru.close()


def main():
    if step("create-topics", create_topics) is None:
        return
    step("idempotent", idempotent)
    step("commit-abort", commit_abort)
    step("lso-holds-back", lso_holds_back)
    step("consume-transform-produce", consume_transform_produce)
    step("fencing", fencing)


t_start = time.time()
main()
print(f"note: scenario took {time.time() - t_start:.1f}s")
if client_errors:
    print(f"note: client error callbacks ({len(client_errors)}): {client_errors[:5]}")
sys.exit(1 if failed else 0)
