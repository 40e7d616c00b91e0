#!/usr/bin/python3
"""Development aid: run librdkafka's in-process mock cluster and print its bootstrap address.

    /usr/bin/python3 tests/compat/tools/mock_broker.py &   # prints HOST:PORT on stdout, then serves
    tests/compat/run.sh --bootstrap HOST:PORT

Lets scenario scripts be exercised without a Tributary build. The mock cluster only approximates
Kafka (no CreateTopics, timestamp lookups limited), so failures against it are not broker bugs.
"""
import re
import sys
import time
import threading

from confluent_kafka import Producer

found = threading.Event()
address = []


def on_log(record):
    pass


class Logger:
    def log(self, level, fmt, *args):
        line = fmt % args if args else fmt
        m = re.search(r"replaced with (\S+)", line)
        if m and not found.is_set():
            address.append(m.group(1))
            found.set()


p = Producer({
    "bootstrap.servers": "ignored:9092",
    "test.mock.num.brokers": 1,
    "topic.metadata.refresh.interval.ms": 1000,
}, logger=Logger())
for _ in range(100):
    p.poll(0.1)
    if found.is_set():
        break
if not found.is_set():
    sys.exit("mock cluster address not found in librdkafka log")
print(address[0].split(",")[0], flush=True)
while True:
    p.poll(1.0)
