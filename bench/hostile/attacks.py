#!/usr/bin/python3
"""Issue 20 attacks against a `tributary serve` child process, measured from /proc.

Python 3 standard library only. Every attack starts a fresh broker on a fresh data directory, records its baseline
RSS (VmRSS) and CPU (utime+stime), runs the attack while sampling RSS every 100 ms, then reports whether the process
is alive, whether a normal client round trip works (ApiVersions, produce one record, fetch it back, raw frames) and,
for attacks that leave state on disk, whether the broker starts again on the same data directory.

Usage:
  /usr/bin/python3 bench/hostile/attacks.py --cli PATH/TO/tributary --label before [--only 1,7,...] [--json OUT]

The child runs with DOTNET_GCHeapHardLimit=0x100000000 (4 GiB) so a broken broker cannot take the machine down.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

HEAP_LIMIT = "0x100000000"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---------------------------------------------------------------- encoding helpers

_CRC32C = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C.append(_c)


def crc32c(data):
    crc = 0xFFFFFFFF
    table = _CRC32C
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def varint(v):
    v = (v << 1) ^ (v >> 63)  # zigzag
    out = bytearray()
    while True:
        if v & ~0x7F:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        else:
            out.append(v)
            return bytes(out)


def uvarint(v):
    out = bytearray()
    while True:
        if v & ~0x7F:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        else:
            out.append(v)
            return bytes(out)


def record(offset_delta, key, value):
    body = b"\x00" + varint(0) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(0)
    return varint(len(body)) + body


def batch(section, records_count, codec=0, last_offset_delta=None, base_offset=0):
    """A magic-2 record batch around an already encoded (and compressed) records section, CRC-32C right."""
    now = int(time.time() * 1000)
    if last_offset_delta is None:
        last_offset_delta = records_count - 1
    after_crc = struct.pack(">hiqqqhii", codec, last_offset_delta, now, now, -1, -1, -1, records_count) + section
    crc = crc32c(after_crc)
    length = 4 + 1 + 4 + len(after_crc)  # partition leader epoch, magic, crc, rest
    return struct.pack(">qiibI", base_offset, length, 0, 2, crc) + after_crc


def plain_batch(values, keys=None):
    recs = b"".join(record(i, None if keys is None else keys[i], v) for i, v in enumerate(values))
    return batch(recs, len(values))


def kstr(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def kbytes(b):
    if b is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(b)) + b


def karray(items):
    return struct.pack(">i", len(items)) + b"".join(items)


def cstr(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


def carray(items):
    return uvarint(len(items) + 1) + b"".join(items)


class Reader:
    def __init__(self, data, pos=0):
        self.d = data
        self.p = pos

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)
        self.p += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.d[self.p:self.p + n].decode(errors="replace")
        self.p += n
        return s

    def bytes_(self):
        n = self.take(">i")
        if n < 0:
            return None
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def uvarint(self):
        shift = v = 0
        while True:
            b = self.d[self.p]
            self.p += 1
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def cstring(self):
        n = self.uvarint() - 1
        if n < 0:
            return None
        s = self.d[self.p:self.p + n].decode(errors="replace")
        self.p += n
        return s

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            size = self.uvarint()
            self.p += size


# ---------------------------------------------------------------- Kafka connection

class Kafka:
    def __init__(self, bootstrap, timeout=15.0):
        host, port = bootstrap.split(":")
        self.s = socket.create_connection((host, int(port)), timeout=timeout)
        self.s.settimeout(timeout)
        self.corr = 0

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def frame(self, api_key, version, body, flexible=False):
        self.corr += 1
        header = struct.pack(">hhi", api_key, version, self.corr) + kstr("hostile")
        if flexible:
            header += b"\x00"
        payload = header + body
        return struct.pack(">i", len(payload)) + payload

    def send(self, api_key, version, body, flexible=False):
        self.s.sendall(self.frame(api_key, version, body, flexible))

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.s.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise ConnectionError("closed by broker after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv(self, flexible_response=False):
        n = struct.unpack(">i", self.recv_exact(4))[0]
        data = self.recv_exact(n)
        r = Reader(data, 4)
        if flexible_response:
            r.tags()
        return r

    def call(self, api_key, version, body, flexible=False, timeout=None):
        if timeout is not None:
            self.s.settimeout(timeout)
        self.send(api_key, version, body, flexible)
        # ApiVersions responses always use header v0.
        return self.recv(flexible_response=flexible and api_key != 18)

    # --- requests used by the runner (non-flexible versions unless said otherwise)
    def api_versions(self):
        r = self.call(18, 0, b"")
        return r.take(">h")

    def produce(self, topic, batch_bytes, partition=0, timeout=None):
        body = kstr(None) + struct.pack(">hi", 1, 30000) + karray([
            kstr(topic) + karray([struct.pack(">i", partition) + kbytes(batch_bytes)])])
        r = self.call(0, 3, body, timeout=timeout)
        r.take(">i")
        r.string()
        r.take(">i")
        r.take(">i")
        error, base = r.take(">hq")
        return error, base

    def fetch_body(self, topic, partition, offset, max_bytes, repeats=1, max_wait=0, min_bytes=1):
        part = struct.pack(">iqi", partition, offset, max_bytes)
        return struct.pack(">iiiib", -1, max_wait, min_bytes, max_bytes, 0) + karray([
            kstr(topic) + struct.pack(">i", repeats) + part * repeats])

    def fetch(self, topic, partition, offset, max_bytes=1 << 20, timeout=None):
        r = self.call(1, 4, self.fetch_body(topic, partition, offset, max_bytes), timeout=timeout)
        r.take(">i")  # throttle
        r.take(">i")
        r.string()
        r.take(">i")
        r.take(">i")  # partition
        error, hw, lso = r.take(">hqq")
        n = r.take(">i")
        if n > 0:
            r.p += 16 * n
        records = r.bytes_()
        return error, hw, records

    def list_offsets_latest(self, topic, partition=0, timestamp=-1, timeout=None):
        body = struct.pack(">i", -1) + karray([kstr(topic) + karray([struct.pack(">iq", partition, timestamp)])])
        r = self.call(2, 1, body, timeout=timeout)
        r.take(">i")
        r.string()
        r.take(">i")
        r.take(">i")
        error, ts, offset = r.take(">hqq")
        return error, offset

    def create_topics(self, specs, timeout_ms=60000, timeout=None):
        """specs: list of (name, partitions, {config: value})."""
        topics = []
        for name, parts, configs in specs:
            topics.append(kstr(name) + struct.pack(">ih", parts, 1) + karray([]) +
                          karray([kstr(k) + kstr(v) for k, v in configs.items()]))
        body = karray(topics) + struct.pack(">ib", timeout_ms, 0)
        r = self.call(19, 4, body, timeout=timeout)
        r.take(">i")
        out = []
        for _ in range(r.take(">i")):
            name = r.string()
            err = r.take(">h")
            msg = r.string()
            out.append((name, err, msg))
        return out

    def alter_topic_config(self, topic, name, value):
        body = karray([struct.pack(">b", 2) + kstr(topic) + karray([kstr(name) + struct.pack(">b", 0) + kstr(value)])]) + b"\x00"
        r = self.call(44, 0, body)
        r.take(">i")
        r.take(">i")
        err = r.take(">h")
        msg = r.string()
        return err, msg

    def find_coordinator(self, group):
        r = self.call(10, 1, kstr(group) + b"\x00")
        r.take(">i")
        return r.take(">h")

    def metadata_v12(self, topics, auto_create=True, timeout=None):
        body = carray([b"\x00" * 16 + cstr(t) + b"\x00" for t in topics]) + struct.pack(">bb", 1 if auto_create else 0, 0) + b"\x00"
        r = self.call(3, 12, body, flexible=True, timeout=timeout)
        throttle = r.take(">i")
        for _ in range(r.uvarint() - 1):  # brokers
            r.take(">i")
            r.cstring()
            r.take(">i")
            r.cstring()
            r.tags()
        r.cstring()
        r.take(">i")
        errors = {}
        for _ in range(r.uvarint() - 1):
            err = r.take(">h")
            r.cstring()
            r.p += 16
            r.take(">b")
            for _ in range(r.uvarint() - 1):
                r.take(">hiii")
                for _ in range(3):
                    count = r.uvarint() - 1
                    r.p += 4 * count
                r.tags()
            r.take(">i")
            r.tags()
            errors[err] = errors.get(err, 0) + 1
        return throttle, errors


# ---------------------------------------------------------------- the broker child

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Broker:
    def __init__(self, cli, data_dir, nofile=None, settings=None, log_path=None):
        self.cli = cli
        self.data_dir = data_dir
        self.nofile = nofile
        self.settings = dict(settings or {})
        self.port = free_port()
        self.reg_port = free_port()
        self.bootstrap = "127.0.0.1:%d" % self.port
        self.log_path = log_path or os.path.join(tempfile.gettempdir(), "hostile-%d.log" % self.port)
        self.proc = None
        self.lines = 0

    def start(self, wait=60):
        args = [self.cli, "serve", "--data-dir", self.data_dir, "--listen", self.bootstrap,
                "--set", "schema.registry.listeners=http://127.0.0.1:%d" % self.reg_port]
        for k, v in self.settings.items():
            args += ["--set", "%s=%s" % (k, v)]
        if self.nofile:
            args = ["prlimit", "--nofile=%d:%d" % (self.nofile, self.nofile)] + args
        env = dict(os.environ, DOTNET_GCHeapHardLimit=HEAP_LIMIT)
        self.log = open(self.log_path, "ab")
        self.log_start = self.log.tell()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.time() + wait
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            if b"Tributary listening" in self.log_text():
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return True
                except OSError:
                    pass
            time.sleep(0.1)
        return False

    def log_text(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.log_start)
            return f.read()

    def log_lines(self):
        return self.log_text().count(b"\n")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss(self):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return 0
        return 0

    def cpu(self):
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, ValueError):
            return None

    def fds(self):
        try:
            return len(os.listdir("/proc/%d/fd" % self.pid))
        except OSError:
            return None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(15)
        if self.proc:
            self.log.close()


class Sampler:
    """Peak RSS every 100 ms and the CPU consumed since start."""

    def __init__(self, broker):
        self.b = broker
        self.base_rss = broker.rss()
        self.base_cpu = broker.cpu() or 0.0
        self.peak = self.base_rss
        self.last_cpu = self.base_cpu
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            r = self.b.rss()
            self.peak = max(self.peak, r)
            c = self.b.cpu()
            if c is not None:
                self.last_cpu = c
            self.stop_ev.wait(0.1)

    def stop(self):
        self.stop_ev.set()
        self.t.join()
        self.peak = max(self.peak, self.b.rss())
        c = self.b.cpu()
        if c is not None:
            self.last_cpu = c
        return self.peak, self.last_cpu - self.base_cpu


def mib(n):
    return "%d MiB" % (n >> 20)


def round_trip(bootstrap, topic="normal", timeout=15.0):
    """ApiVersions + produce one record + fetch it back, each on a fresh connection, bounded."""
    t0 = time.time()
    try:
        k = Kafka(bootstrap, timeout)
        try:
            if k.api_versions() != 0:
                return "ApiVersions error"
            value = ("normal-%d" % random.randrange(1 << 30)).encode()
            err, base = k.produce(topic, plain_batch([value]))
            if err != 0:
                return "produce error %d" % err
            err, hw, records = k.fetch(topic, 0, base)
            if err != 0 or not records or value not in records:
                return "fetch error %d / record missing" % err
        finally:
            k.close()
        return "ok (%.2f s)" % (time.time() - t0)
    except Exception as e:  # noqa: BLE001 - a failure of any kind is the result
        return "failed: %s" % (str(e) or type(e).__name__)


def http_request(port, method, path, body=None, timeout=60, headers=None):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        h = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        text = r.read(2000)
        c.close()
        return r.status, text.decode(errors="replace")[:200]
    except Exception as e:  # noqa: BLE001
        return None, "%s: %s" % (type(e).__name__, e)


def http_big_body(port, path, size, timeout=60):
    """POSTs a JSON body of `size` bytes in 1 MiB chunks; reports how much was sent and what came back."""
    so = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n"
            "Content-Length: %d\r\n\r\n" % (path, size)).encode()
    sent, send_error = 0, None
    try:
        so.sendall(head + b'{"schema": "')
        chunk = b"a" * (1 << 20)
        while sent < size - 16:
            n = min(len(chunk), size - 16 - sent)
            so.sendall(chunk[:n])
            sent += n
        so.sendall(b'"}'.ljust(size - sent - 12, b" "))
    except OSError as e:
        send_error = "%s after %d MiB" % (type(e).__name__, sent >> 20)
    answer = b""
    try:
        so.settimeout(10)
        while len(answer) < 4096:
            got = so.recv(4096)
            if not got:
                break
            answer += got
    except OSError as e:
        if not answer:
            answer = ("(%s)" % type(e).__name__).encode()
    so.close()
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    body = answer.split(b"\r\n\r\n", 1)[-1][:120].decode(errors="replace")
    return dict(big_body_send=send_error or "all sent", big_body_answer=status, big_body_text=body)


# ---------------------------------------------------------------- attacks

class Run:
    def __init__(self, cli, label, workdir):
        self.cli = cli
        self.label = label
        self.workdir = workdir
        self.results = []
        self.live = []

    def broker(self, name, nofile=None, settings=None):
        d = os.path.join(self.workdir, "%s-%s" % (self.label, name))
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        b = Broker(self.cli, d, nofile=nofile, settings=settings, log_path=d + ".log")
        if os.path.exists(b.log_path):
            os.remove(b.log_path)
        if not b.start():
            raise RuntimeError("broker did not start for %s: %s" % (name, b.log_text()[-2000:]))
        self.live.append(b)
        return b

    def record(self, item, **fields):
        fields["attack"] = item
        self.results.append(fields)
        print(json.dumps(fields), flush=True)

    @staticmethod
    def restart(b, wait=60):
        b.kill()
        ok = b.start(wait)
        if ok:
            # Some failures come a moment after the banner (the cleaner, replay): give it 5 s.
            time.sleep(5)
            ok = b.alive()
        tail = b.log_text().decode(errors="replace").strip().splitlines()[-3:]
        return ("starts" if ok else "FAILS to start"), tail

    def finish(self, b, sampler, item, extra, restart=False, rt_topic="normal"):
        peak, cpu = sampler.stop()
        alive = b.alive()
        rt = round_trip(b.bootstrap, rt_topic) if alive else "n/a (dead)"
        res = dict(alive=alive, base_rss=mib(sampler.base_rss), peak_rss=mib(peak), cpu_s=round(cpu, 2), normal_client=rt)
        if not alive:
            res["exit"] = b.proc.returncode
            res["log_tail"] = b.log_text().decode(errors="replace").strip().splitlines()[-3:]
        res.update(extra)
        if restart:
            res["restart"], tail = self.restart(b)
            if res["restart"] != "starts":
                res["restart_log_tail"] = tail
            else:
                res["restart_normal_client"] = round_trip(b.bootstrap, rt_topic)
        b.kill()
        self.record(item, **res)


def setup_normal(b):
    k = Kafka(b.bootstrap)
    k.create_topics([("normal", 1, {})])
    k.close()


# #1 poison snappy batch, then cleanup.policy=compact
POISON_BODY = bytes([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02])


def produce_keyed(k, topic, n):
    last = None
    for i in range(0, n, 10):
        keys = [("key-%d" % ((i + j) % 20)).encode() for j in range(10)]
        vals = [("value-%d-%s" % (i + j, "v" * 40)).encode() for j in range(10)]
        err, last = k.produce(topic, plain_batch(vals, keys))
        assert err == 0, err
    return last + 10


def attack_1(run):
    settings = {"log.cleaner.backoff.ms": "100", "log.retention.check.interval.ms": "100"}
    b = run.broker("1", settings=settings)
    setup_normal(b)
    s = Sampler(b)
    k = Kafka(b.bootstrap)
    k.create_topics([("poisoned", 1, {"segment.bytes": "4096", "min.cleanable.dirty.ratio": "0.01"})])
    nxt = produce_keyed(k, "poisoned", 200)
    err, _ = k.produce("poisoned", batch(POISON_BODY, 1, codec=2))
    produce_err = err
    injected = "produce"
    if err != 0:
        # Refused on append: put it on disk below validation, as old data or another tool would leave it.
        k.close()
        b.kill()
        pdir = os.path.join(b.data_dir, "poisoned-0")
        if not os.path.isdir(pdir):
            pdir = [os.path.join(r, d) for r, ds, _ in os.walk(b.data_dir) for d in ds if d == "poisoned-0"][0]
        seg = sorted(f for f in os.listdir(pdir) if f.endswith(".log"))[-1]
        with open(os.path.join(pdir, seg), "ab") as f:
            f.write(batch(POISON_BODY, 1, codec=2, base_offset=nxt))
        try:
            os.remove(os.path.join(pdir, ".clean-shutdown"))
        except FileNotFoundError:
            pass
        injected = "written into the segment file (produce refused)"
        if not b.start():
            s.stop()
            run.record("1", alive=False, note="did not start after injection", produce_error=produce_err)
            return
        s = Sampler(b)
        k = Kafka(b.bootstrap)
    produce_keyed(k, "poisoned", 200)
    aerr, amsg = k.alter_topic_config("poisoned", "cleanup.policy", "compact")
    k.close()
    deadline = time.time() + 20
    while time.time() < deadline and b.alive():
        if b"uncleanable" in b.log_text():
            time.sleep(2)
            break
        time.sleep(0.2)
    uncleanable_lines = b.log_text().count(b"uncleanable")
    run.finish(b, s, "1 poison snappy batch + compact",
               dict(poison_produce_error=produce_err, poison=injected, alter_error=aerr,
                    uncleanable_log_lines=uncleanable_lines), restart=True)


# #2 one malformed record in _schemas
def attack_2(run):
    b = run.broker("2")
    setup_normal(b)
    s = Sampler(b)
    st, txt = http_request(b.reg_port, "POST", "/subjects/ok-value/versions", json.dumps({"schema": "\"string\""}))
    key = json.dumps({"keytype": "SCHEMA", "subject": "evil", "version": 1, "magic": 1}).encode()
    value = json.dumps({"subject": "evil", "version": 1, "schema": "\"string\""}).encode()  # no id
    k = Kafka(b.bootstrap)
    err, _ = k.produce("_schemas", plain_batch([value], [key]))
    k.close()
    time.sleep(1)
    run.finish(b, s, "2 malformed record in _schemas", dict(register_status=st, produce_to_schemas_error=err), restart=True)


# #3 deep .proto
def attack_3(run):
    b = run.broker("3")
    setup_normal(b)
    s = Sampler(b)
    n = 20000
    proto = 'syntax = "proto3";\n' + "".join("message M%d {\n" % i for i in range(n)) + "int32 x = 1;\n" + "}\n" * n
    body = json.dumps({"schemaType": "PROTOBUF", "schema": proto})
    t0 = time.time()
    st, txt = http_request(b.reg_port, "POST", "/subjects/deep-value/versions", body, timeout=120)
    took = time.time() - t0
    time.sleep(1)
    run.finish(b, s, "3 .proto with 20,000 nested messages",
               dict(proto_bytes=len(proto), status=st, answer=txt[:120], seconds=round(took, 2)))


# #4 descriptors under a lowered limit
NOFILE = 2000


def attack_4a(run):
    b = run.broker("4a", nofile=NOFILE)
    setup_normal(b)
    s = Sampler(b)
    fds_before = b.fds()
    socks = []
    failed = None
    target = NOFILE + 200
    try:
        for i in range(target):
            so = socket.socket()
            so.settimeout(5)
            try:
                so.connect(("127.0.0.1", b.port))
            except OSError as e:
                failed = "connect %d failed: %s" % (i, e)
                so.close()
                break
            socks.append(so)
        # give the accept loop time to hit the limit, then a 3 s window
        time.sleep(2)
        cpu0, lines0 = b.cpu(), b.log_lines()
        time.sleep(3)
        cpu1, lines1 = b.cpu(), b.log_lines()
        alive_during = b.alive()
        fds_during = b.fds()
        rt_during = round_trip(b.bootstrap, timeout=10) if alive_during else "n/a (dead)"
    finally:
        for so in socks:
            so.close()
    time.sleep(2)
    window_cpu = None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 2)
    run.finish(b, s, "4a %d idle connections, nofile=%d" % (len(socks), NOFILE),
               dict(connect_failure=failed, fds_before=fds_before, fds_during=fds_during,
                    cpu_in_3s_window=window_cpu, log_lines_in_3s_window=lines1 - lines0,
                    total_log_lines=b.log_lines(), alive_during=alive_during, normal_client_during=rt_during),
               restart=True)


def one_request_attack(run, tag, label, request):
    """Sends one big admin request from a raw client under the lowered descriptor limit, then the usual checks."""
    b = run.broker(tag, nofile=NOFILE)
    setup_normal(b)
    s = Sampler(b)
    k = Kafka(b.bootstrap, timeout=180)
    t0 = time.time()
    try:
        res = request(k)
    except Exception as e:  # noqa: BLE001
        res = "failed: %s" % (str(e) or type(e).__name__)
    k.close()
    took = time.time() - t0
    time.sleep(1)
    run.finish(b, s, label % NOFILE,
               dict(response=res, seconds=round(took, 2), fds_after=b.fds(), log_lines=b.log_lines()), restart=True)


def attack_4b(run):
    def metadata(k):
        throttle, errors = k.metadata_v12(["auto-%d" % i for i in range(7000)], timeout=180)
        return "throttle %d ms, errors %s" % (throttle, errors)
    one_request_attack(run, "4b", "4b Metadata v12 auto-creating 7,000 topics, nofile=%d", metadata)


def attack_4c(run):
    def create(k):
        return [(n, e, (m or "")[:100]) for n, e, m in k.create_topics([("huge", 10000, {})], timeout=180)]
    one_request_attack(run, "4c", "4c CreateTopics 10,000 partitions, nofile=%d", create)


# #6 produce to __consumer_offsets
def attack_6(run):
    b = run.broker("6")
    setup_normal(b)
    s = Sampler(b)
    k = Kafka(b.bootstrap)
    fc = None
    for _ in range(20):
        fc = k.find_coordinator("g")
        if fc == 0:
            break
        time.sleep(0.5)
    # a simple (generation -1) offset commit makes the broker create __consumer_offsets
    oc = k.call(8, 2, kstr("g") + struct.pack(">i", -1) + kstr("") + struct.pack(">q", -1) +
                karray([kstr("normal") + karray([struct.pack(">iq", 0, 1) + kstr("")])]))
    oc.take(">i"); oc.string(); oc.take(">i"); oc.take(">i")
    commit_err = oc.take(">h")
    key = b"\x00\x01" + kstr("g") + kstr("normal") + struct.pack(">i", 0)
    val = b"\x00\x03" + struct.pack(">qi", 123456, -1) + kstr("forged") + struct.pack(">q", int(time.time() * 1000))
    err, _ = k.produce("__consumer_offsets", plain_batch([val], [key]))
    k.close()
    run.finish(b, s, "6 produce to __consumer_offsets", dict(find_coordinator_error=fc, offset_commit_error=commit_err, produce_error=err))


# #7 decompression bombs
def zstd_bomb(value_bytes):
    rle = 128 << 10
    frame = bytearray(b"\x28\xb5\x2f\xfd\x00\x38")

    def block(last, typ, size):
        h = (size << 3) | (typ << 1) | (1 if last else 0)
        frame.extend(bytes([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]))

    prefix = big_record_prefix(0, value_bytes)
    block(False, 0, len(prefix))
    frame.extend(prefix)
    zeros = value_bytes + 1
    while zeros > 0:
        run_ = min(zeros, rle)
        zeros -= run_
        block(zeros == 0, 1, run_)
        frame.append(0)
    return bytes(frame)


def big_record_prefix(offset_delta, value_len):
    fields = b"\x00" + varint(0) + varint(offset_delta) + varint(-1) + varint(value_len)
    return varint(len(fields) + value_len + 1) + fields


def gzip_bomb(value_bytes):
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [co.compress(big_record_prefix(0, value_bytes))]
    zeros = bytes(1 << 20)
    left = value_bytes + 1
    while left > 0:
        n = min(left, len(zeros))
        out.append(co.compress(zeros[:n]))
        left -= n
    out.append(co.flush())
    return b"".join(out)


def attack_7(run, codec_name):
    value = (1 << 30) - 64
    if codec_name == "zstd":
        section, codec = zstd_bomb(value), 4
    else:
        section, codec = gzip_bomb(value), 1
    bomb = batch(section, 1, codec=codec)
    b = run.broker("7" + codec_name)
    setup_normal(b)
    s = Sampler(b)
    k = Kafka(b.bootstrap, timeout=120)
    k.create_topics([("bomb", 1, {})])
    t0 = time.time()
    try:
        err, base = k.produce("bomb", bomb, timeout=120)
        res = "error %d" % err
    except Exception as e:  # noqa: BLE001
        err, res = None, "failed: %s" % (str(e) or type(e).__name__)
    took = time.time() - t0
    k.close()
    fetch_res = None
    if err == 0 and b.alive():
        # A stored bomb: what does reading it cost? (a consumer's fetch)
        try:
            k = Kafka(b.bootstrap, timeout=120)
            ferr, hw, recs = k.fetch("bomb", 0, 0, max_bytes=1 << 20, timeout=120)
            fetch_res = "fetch error %d, %d bytes" % (ferr, len(recs or b""))
            k.close()
        except Exception as e:  # noqa: BLE001
            fetch_res = "failed: %s" % (str(e) or type(e).__name__)
    lookup_res = None
    if err == 0 and b.alive():
        # A timestamp lookup over the stored bomb (ListOffsets by time) decompresses it.
        t1 = time.time()
        try:
            k = Kafka(b.bootstrap, timeout=120)
            lerr, off = k.list_offsets_latest("bomb", timestamp=0, timeout=120)
            lookup_res = "error %d, offset %d, %.2f s" % (lerr, off, time.time() - t1)
            k.close()
        except Exception as e:  # noqa: BLE001
            lookup_res = "failed: %s" % (str(e) or type(e).__name__)
    compact_res = None
    if b.alive():
        # The same batch to a compacted topic: the key check decompresses it on append.
        t1 = time.time()
        try:
            k = Kafka(b.bootstrap, timeout=120)
            k.create_topics([("bombc", 1, {"cleanup.policy": "compact"})])
            cerr, _ = k.produce("bombc", bomb, timeout=120)
            compact_res = "error %d, %.2f s" % (cerr, time.time() - t1)
            k.close()
        except Exception as e:  # noqa: BLE001
            compact_res = "failed: %s" % (str(e) or type(e).__name__)
    time.sleep(1)
    run.finish(b, s, "7 %s bomb %d KiB -> 1 GiB" % (codec_name, len(bomb) >> 10),
               dict(batch_bytes=len(bomb), produce=res, seconds=round(took, 2), fetch_after=fetch_res,
                    timestamp_lookup=lookup_res, produce_to_compacted=compact_res))


# #8 a 70-byte batch claiming 2^31-1 records
def attack_8(run):
    b = run.broker("8")
    setup_normal(b)
    s = Sampler(b)
    n = (1 << 31) - 1
    bt = batch(record(0, None, b"xy"), n)
    k = Kafka(b.bootstrap)
    k.create_topics([("liar", 1, {})])
    err, _ = k.produce("liar", bt)
    lerr, leo = k.list_offsets_latest("liar")
    k.close()
    run.finish(b, s, "8 %d-byte batch claiming 2^31-1 records" % len(bt),
               dict(produce_error=err, log_end_offset_after=leo))


# #9 a client that never reads; stalled partial frames
def attack_9a(run):
    b = run.broker("9a")
    setup_normal(b)
    k = Kafka(b.bootstrap, timeout=60)
    k.create_topics([("big", 1, {})])
    v = bytes(900_000)
    for _ in range(45):
        err, _ = k.produce("big", plain_batch([v]))
        assert err == 0, err
    k.close()
    time.sleep(1)
    s = Sampler(b)
    a = Kafka(b.bootstrap)
    a.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    body = a.fetch_body("big", 0, 0, 32 << 20)
    a.s.settimeout(30)
    sent = 0
    try:
        for _ in range(128):
            a.send(1, 4, body)
            sent += 1
    except Exception:  # noqa: BLE001 - the broker may stop reading: that is back-pressure
        pass
    t0 = time.time()
    rt = round_trip(b.bootstrap)
    while time.time() - t0 < 8:
        time.sleep(0.1)
    res = dict(fetches_sent=sent, normal_client_during=rt, rss_after_8s=mib(b.rss()))
    a.close()
    run.finish(b, s, "9a 128 x 32 MiB fetches never read (40 MB topic)", res)


def attack_9b(run):
    b = run.broker("9b")
    setup_normal(b)
    s = Sampler(b)
    socks = []
    declared = 100 * 1024 * 1024 - 100
    chunk = struct.pack(">ih", declared, 18) + bytes((1 << 20) - 2)
    for _ in range(20):
        so = socket.create_connection(("127.0.0.1", b.port), timeout=10)
        so.sendall(chunk)
        socks.append(so)
    time.sleep(5)
    rss5 = b.rss()
    rt = round_trip(b.bootstrap)

    def closed_count():
        n = 0
        for so in socks:
            so.setblocking(False)
            try:
                if so.recv(1) == b"":
                    n += 1
            except BlockingIOError:
                pass
            except OSError:
                n += 1
        return n

    c5 = closed_count()
    t0 = time.time()
    while time.time() - t0 < 35 and closed_count() < 20:
        time.sleep(1)
    c40 = closed_count()
    for so in socks:
        so.close()
    run.finish(b, s, "9b 20 stalled 100 MiB frames (1 MiB sent each)",
               dict(rss_after_5s=mib(rss5), closed_after_5s=c5, closed_after_40s=c40, normal_client_during=rt))


# #10 one Fetch naming the same partition 50,000 times
def attack_10(run):
    b = run.broker("10")
    setup_normal(b)
    k = Kafka(b.bootstrap, timeout=300)
    k.create_topics([("dup", 1, {})])
    s = Sampler(b)
    body = k.fetch_body("dup", 0, 0, 1 << 20, repeats=50000, max_wait=500, min_bytes=1)
    t0 = time.time()
    try:
        r = k.call(1, 4, body, timeout=300)
        res = "answered, %d bytes" % len(r.d)
    except Exception as e:  # noqa: BLE001
        res = "failed: %s" % (str(e) or type(e).__name__)
    took = time.time() - t0
    k.close()
    run.finish(b, s, "10 Fetch naming one partition 50,000 times (%d KB request)" % (len(body) >> 10),
               dict(response=res, response_seconds=round(took, 2)))


# #14 registry
def attack_14(run):
    b = run.broker("14")
    setup_normal(b)
    s = Sampler(b)
    st1, t1 = http_request(b.reg_port, "POST", "/compatibility/subjects/unknown/versions/latest",
                           json.dumps({"schema": "\"string\""}))
    big = http_big_body(b.reg_port, "/subjects/big-value/versions", 100 << 20)
    run.finish(b, s, "14 registry: compatibility of unknown subject; 100 MiB body",
               dict(compat_unknown_status=st1, compat_unknown_body=t1[:100], **big))


ATTACKS = [
    ("1", attack_1), ("2", attack_2), ("3", attack_3), ("4a", attack_4a), ("4b", attack_4b), ("4c", attack_4c),
    ("6", attack_6), ("7zstd", lambda r: attack_7(r, "zstd")), ("7gzip", lambda r: attack_7(r, "gzip")),
    ("8", attack_8), ("9a", attack_9a), ("9b", attack_9b), ("10", attack_10), ("14", attack_14),
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cli", required=True)
    p.add_argument("--label", required=True)
    p.add_argument("--only", default="")
    p.add_argument("--json")
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "tributary-hostile"))
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    only = set(x for x in a.only.split(",") if x)
    run = Run(os.path.abspath(a.cli), a.label, a.workdir)
    for name, fn in ATTACKS:
        if only and name not in only:
            continue
        print("== %s %s" % (a.label, name), file=sys.stderr, flush=True)
        t0 = time.time()
        try:
            fn(run)
        except Exception as e:  # noqa: BLE001 - record and go on with the next attack
            run.record(name, error="runner: %s: %s" % (type(e).__name__, e))
        finally:
            # never leave a child behind
            for b in run.live:
                try:
                    b.kill()
                except Exception:  # noqa: BLE001
                    pass
            run.live.clear()
        print("   %.1f s" % (time.time() - t0), file=sys.stderr, flush=True)
    if a.json:
        with open(a.json, "a") as f:
            for r in run.results:
                r["label"] = a.label
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
