#!/usr/bin/python3
"""kafka-python 2.0.2 and confluent-kafka-python 1.7 (Debian) over TLS and over SASL_SSL with SCRAM: each produces
a record and reads it back; a wrong SCRAM password is refused."""
import os
import sys
import time
import traceback

failed = 0


def ok(name, msg):
    print(f"PASS python-security {name}: {msg}", flush=True)


def bad(name, msg):
    global failed
    failed += 1
    print(f"FAIL python-security {name}: {msg}", flush=True)


if not os.environ.get("SSL_BOOTSTRAP"):
    print("SKIP python-security all: no secured listeners (run.sh starts them with its own server)")
    sys.exit(0)

SSL = os.environ["SSL_BOOTSTRAP"]
SASL = os.environ["SASL_SSL_BOOTSTRAP"]
CA = os.environ["CA_LOCATION"]
USER = os.environ["SCRAM_USER"]
PASSWORD = os.environ["SCRAM_PASSWORD"]
STAMP = f"{int(time.time())}-{os.getpid()}"


def kafka_python(name, topic, **security):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    producer = KafkaProducer(acks="all", request_timeout_ms=15000, api_version_auto_timeout_ms=15000, **security)
    producer.send(topic, b"value-" + name.encode(), partition=0).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(consumer_timeout_ms=10000, api_version_auto_timeout_ms=15000, **security)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    values = [m.value for m in consumer]
    consumer.close()
    return values


def confluent(name, topic, config):
    from confluent_kafka import Consumer, Producer
    producer = Producer(dict(config, **{"message.timeout.ms": 15000}))
    errors = []
    producer.produce(topic, b"value-" + name.encode(), on_delivery=lambda err, _msg: errors.append(err) if err else None)
    producer.flush(30)
    if errors:
        raise RuntimeError(f"delivery failed: {errors[0]}")
    consumer = Consumer(dict(config, **{"group.id": f"sec-{name}-{STAMP}", "auto.offset.reset": "earliest", "enable.auto.commit": False}))
    consumer.subscribe([topic])
    values, deadline = [], time.time() + 20
    while not values and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error():
            values.append(msg.value())
    consumer.close()
    return values


cases = [
    ("kafka-python-ssl", lambda t: kafka_python("kp-ssl", t, bootstrap_servers=SSL, security_protocol="SSL", ssl_cafile=CA)),
    ("kafka-python-scram-256", lambda t: kafka_python("kp-scram", t, bootstrap_servers=SASL, security_protocol="SASL_SSL", ssl_cafile=CA,
                                                      sasl_mechanism="SCRAM-SHA-256", sasl_plain_username=USER, sasl_plain_password=PASSWORD)),
    ("confluent-ssl", lambda t: confluent("ck-ssl", t, {"bootstrap.servers": SSL, "security.protocol": "SSL", "ssl.ca.location": CA})),
    ("confluent-scram-512", lambda t: confluent("ck-scram", t, {"bootstrap.servers": SASL, "security.protocol": "SASL_SSL", "ssl.ca.location": CA,
                                                              "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": USER, "sasl.password": PASSWORD})),
]
for name, run in cases:
    topic = f"{name}-{STAMP}"
    try:
        values = run(topic)
        if len(values) == 1 and values[0].startswith(b"value-"):
            ok(name, f"produced and read back {values[0]!r}")
        else:
            bad(name, f"read back {values!r}")
    except Exception as e:  # noqa: BLE001 - any failure of a client is a failed check
        bad(name, f"{type(e).__name__}: {e} {traceback.format_exc(limit=2)!r}")

try:
    from kafka import KafkaProducer
    KafkaProducer(bootstrap_servers=SASL, security_protocol="SASL_SSL", ssl_cafile=CA, sasl_mechanism="SCRAM-SHA-256",
                  sasl_plain_username=USER, sasl_plain_password="wrong", api_version_auto_timeout_ms=8000)
    bad("kafka-python-wrong-password", "a wrong password was accepted")
except Exception as e:  # noqa: BLE001
    ok("kafka-python-wrong-password", f"refused: {type(e).__name__}")

sys.exit(1 if failed else 0)
