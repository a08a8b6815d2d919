#!/usr/bin/env python3
"""A local stand-in for the Confluent Kafka REST Proxy, API v2 (the subset that
seckill's `kafka_rest` queue plugin uses), for tests and the demo.

    scripts/kafka-rest-emulator.py --port P --data DIR [--host 127.0.0.1]
        [--partitions N] [--instance-timeout-ms MS] [--max-record-bytes B]
        [--flavour confluent|redpanda] [--verbose]

It follows ../shared/reference/kafka-rest.md and docs/kafka.md:

- produce `POST /topics/{topic}` (embedded JSON records); topics are created on
  first use with N partitions; a record without a partition goes to the partition
  of its key (Kafka's murmur2 of the serialized key), or round robin without key;
  every partition is an append-only file under DIR, fsync'd before the answer;
- consumer instances `POST /consumers/{group}`, `…/subscription`,
  `GET …/records`, `POST/GET …/offsets`, `DELETE …/instances/{name}`; instances
  live in memory (as in a real proxy) and expire after the idle timeout;
  partitions are shared among the live subscribed instances of a group and
  reassigned when one joins, leaves or expires (records a partition's old owner
  did not commit are delivered again, from the committed offset);
- committed offsets are stored per group in DIR (written atomically, fsync'd), so
  they survive a restart of the emulator;
- errors are `{"error_code":NNNNN,"message":"…"}` with the codes of the reference.

Python standard library only. It is a test tool, not a broker: one process, one
lock, everything in memory plus the files.
"""

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CT_JSON_RECORDS = "application/vnd.kafka.json.v2+json"
CT_BINARY_RECORDS = "application/vnd.kafka.binary.v2+json"
CT_AVRO_RECORDS = "application/vnd.kafka.avro.v2+json"
CT_V2 = "application/vnd.kafka.v2+json"
# What a metadata / control answer may be sent as (Confluent accepts these too).
ACCEPT_V2 = (CT_V2, "application/vnd.kafka+json", "application/json", "*/*", "application/*")
ACCEPT_RECORDS_JSON = (CT_JSON_RECORDS,)
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
MAX_BODY = 64 * 1024 * 1024
MAX_POLL_RECORDS = 500  # Kafka's max.poll.records default
DEFAULT_FETCH_TIMEOUT_MS = 1000  # consumer.request.timeout.ms default


class ApiError(Exception):
    """An answer other than success: HTTP status, error code, message."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def murmur2(data):
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), so that a
    key lands on the partition the Java producer would choose."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    h = (seed ^ length) & 0xFFFFFFFF
    length4 = length // 4
    for i in range(length4):
        i4 = i * 4
        k = (data[i4] & 0xFF) + ((data[i4 + 1] & 0xFF) << 8) + ((data[i4 + 2] & 0xFF) << 16) + ((data[i4 + 3] & 0xFF) << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length % 4
    tail = length & ~3
    if rest == 3:
        h ^= (data[tail + 2] & 0xFF) << 16
    if rest >= 2:
        h ^= (data[tail + 1] & 0xFF) << 8
    if rest >= 1:
        h ^= data[tail] & 0xFF
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, text):
    """Replace path with text so that a crash leaves the old or the new file."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path))


class Partition:
    """One partition: the records in memory and its append-only file (one JSON
    line per record; the line number is the offset)."""

    def __init__(self, path):
        self.path = path
        self.records = []  # (key, value, size)
        if os.path.exists(path):
            self._load()
        self.file = open(path, "ab")

    def _load(self):
        good = 0
        with open(self.path, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:
                break  # a line never finished: it was never acknowledged
            try:
                rec = json.loads(data[pos:nl].decode("utf-8"))
                key, value = rec["k"], rec["v"]
            except (ValueError, KeyError, TypeError):
                break
            self.records.append((key, value, len(compact(key)) + len(compact(value))))
            pos = nl + 1
            good = pos
        if good < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(good)
                f.flush()
                os.fsync(f.fileno())

    def append(self, key, value, size):
        self.file.write((compact({"k": key, "v": value}) + "\n").encode("utf-8"))
        self.records.append((key, value, size))
        return len(self.records) - 1

    def sync(self):
        self.file.flush()
        os.fsync(self.file.fileno())


class Topic:
    def __init__(self, root, name, partitions):
        self.name = name
        self.dir = os.path.join(root, "topics", name)
        meta = os.path.join(self.dir, "meta.json")
        if os.path.exists(meta):
            with open(meta, encoding="utf-8") as f:
                partitions = json.load(f)["partitions"]
        else:
            os.makedirs(self.dir, exist_ok=True)
            write_atomic(meta, compact({"partitions": partitions}))
            fsync_dir(os.path.dirname(self.dir))
        self.partitions = [Partition(os.path.join(self.dir, "%d.log" % p)) for p in range(partitions)]
        self.round_robin = 0


class Instance:
    """A consumer instance: lives in the proxy's memory only."""

    def __init__(self, group, name, fmt, reset, auto_commit):
        self.group = group
        self.name = name
        self.format = fmt
        self.reset = reset
        self.auto_commit = auto_commit
        self.topics = []  # subscription
        self.assigned = []  # [(topic, partition)]
        self.position = {}  # (topic, partition) -> next offset to read
        self.last_used = time.monotonic()
        self.rotate = 0
        self.expired = False


class Group:
    def __init__(self, root, name):
        self.name = name
        self.path = os.path.join(root, "groups", name + ".json")
        self.members = []  # instances in join order
        self.committed = {}  # (topic, partition) -> next offset to read
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                for t, parts in json.load(f).items():
                    for p, off in parts.items():
                        self.committed[(t, int(p))] = off

    def save(self):
        out = {}
        for (t, p), off in sorted(self.committed.items()):
            out.setdefault(t, {})[str(p)] = off
        write_atomic(self.path, compact(out))


class Broker:
    """All state, behind one condition variable (long polls wait on it)."""

    def __init__(self, args):
        self.args = args
        self.root = os.path.abspath(args.data)
        os.makedirs(os.path.join(self.root, "topics"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "groups"), exist_ok=True)
        self.cond = threading.Condition()
        self.topics = {}
        self.groups = {}
        for name in sorted(os.listdir(os.path.join(self.root, "topics"))):
            if NAME_RE.match(name) and os.path.exists(os.path.join(self.root, "topics", name, "meta.json")):
                self.topics[name] = Topic(self.root, name, args.partitions)
        for fname in sorted(os.listdir(os.path.join(self.root, "groups"))):
            if fname.endswith(".json") and NAME_RE.match(fname[:-5]):
                self.groups[fname[:-5]] = Group(self.root, fname[:-5])

    # ---- helpers (called with the lock held) ----------------------------------

    def group(self, name):
        g = self.groups.get(name)
        if g is None:
            g = Group(self.root, name)
            self.groups[name] = g
        return g

    def instance(self, group, name):
        self.expire()
        g = self.groups.get(group)
        inst = None
        if g is not None:
            inst = next((i for i in g.members if i.name == name), None)
        if inst is None:
            raise ApiError(404, 40403, "Consumer instance not found.")
        inst.last_used = time.monotonic()
        return inst

    def topic(self, name):
        t = self.topics.get(name)
        if t is None:
            raise ApiError(404, 40401, "Topic %s not found." % name)
        return t

    def expire(self):
        limit = self.args.instance_timeout_ms / 1000.0
        now = time.monotonic()
        for g in self.groups.values():
            gone = [i for i in g.members if now - i.last_used > limit]
            if gone:
                for i in gone:
                    self.log("instance %s/%s expired" % (g.name, i.name))
                    i.expired = True
                g.members = [i for i in g.members if i not in gone]
                self.rebalance(g)

    def rebalance(self, g):
        """Range-like assignment: each topic's partitions in order, dealt out in
        turn to the members subscribed to it (in join order). A member keeps the
        position of a partition it keeps; a partition that moves starts from the
        group's committed offset."""
        new = {id(i): [] for i in g.members}
        topics = sorted({t for i in g.members for t in i.topics if t in self.topics})
        for t in topics:
            subs = [i for i in g.members if t in i.topics]
            for p in range(len(self.topics[t].partitions)):
                new[id(subs[p % len(subs)])].append((t, p))
        for i in g.members:
            keep = {tp: off for tp, off in i.position.items() if tp in new[id(i)]}
            for tp in new[id(i)]:
                if tp not in keep:
                    keep[tp] = self.start_offset(g, i, tp)
            i.assigned = new[id(i)]
            i.position = keep
        self.cond.notify_all()

    def start_offset(self, g, inst, tp):
        off = g.committed.get(tp)
        end = len(self.topics[tp[0]].partitions[tp[1]].records)
        if off is None or off > end:
            return 0 if inst.reset == "earliest" else end
        return off

    def log(self, msg):
        if self.args.verbose:
            sys.stderr.write("kafka-rest-emulator: %s\n" % msg)

    # ---- produce ----------------------------------------------------------------

    def produce(self, topic_name, body):
        if not isinstance(body, dict) or set(body) - {"records", "key_schema", "value_schema", "key_schema_id", "value_schema_id"}:
            raise ApiError(422, 42202, "Unrecognized field in the request: the body is {\"records\":[…]}.")
        records = body.get("records")
        if not isinstance(records, list) or not records:
            raise ApiError(422, 42202, "The field records must be a non-empty list.")
        for r in records:
            if not isinstance(r, dict) or "value" not in r or set(r) - {"key", "value", "partition"}:
                raise ApiError(422, 42202, "Every record is an object with a value and an optional key and partition.")
            p = r.get("partition")
            if p is not None and (not isinstance(p, int) or isinstance(p, bool)):
                raise ApiError(422, 42202, "A record's partition must be an integer.")
        with self.cond:
            t = self.topics.get(topic_name)
            created = t is None
            if created:
                t = Topic(self.root, topic_name, self.args.partitions)
                self.topics[topic_name] = t
                self.log("topic %s created with %d partitions" % (topic_name, len(t.partitions)))
                for g in self.groups.values():
                    if any(topic_name in i.topics for i in g.members):
                        self.rebalance(g)
            for r in records:
                p = r.get("partition")
                if p is not None and not 0 <= p < len(t.partitions):
                    raise ApiError(404, 40402, "Partition %d of topic %s not found." % (p, topic_name))
            offsets, touched = [], set()
            for r in records:
                key, value = r.get("key"), r["value"]
                size = len(compact(key)) + len(compact(value))
                p = r.get("partition")
                if p is None:
                    if key is None:
                        p = t.round_robin % len(t.partitions)
                        t.round_robin += 1
                    else:
                        p = (murmur2(compact(key).encode("utf-8")) & 0x7FFFFFFF) % len(t.partitions)
                if size > self.args.max_record_bytes:
                    offsets.append({"partition": p, "offset": None, "error_code": 50002,
                                    "error": "The message is %d bytes when serialized which is larger than the "
                                             "maximum request size you have configured (%d)."
                                             % (size, self.args.max_record_bytes)})
                    continue
                off = t.partitions[p].append(key, value, size)
                touched.add(p)
                offsets.append({"partition": p, "offset": off, "error_code": None, "error": None})
            for p in touched:
                t.partitions[p].sync()
            self.cond.notify_all()
        return {"key_schema_id": None, "value_schema_id": None, "offsets": offsets}

    # ---- consumers --------------------------------------------------------------

    def create_consumer(self, group, body, host):
        if not isinstance(body, dict):
            raise ApiError(422, 42202, "The body must be an object.")
        known = {"name", "format", "auto.offset.reset", "auto.commit.enable", "fetch.min.bytes",
                 "consumer.request.timeout.ms"}
        extra = set(body) - known
        if extra:
            raise ApiError(422, 42202, "Unrecognized field: %s" % sorted(extra)[0])
        name = body.get("name")
        fmt = body.get("format", "binary")
        reset = body.get("auto.offset.reset", "latest")
        auto = body.get("auto.commit.enable", "true")
        if name is not None and (not isinstance(name, str) or not NAME_RE.match(name)):
            raise ApiError(422, 42202, "The consumer name must be 1 to 249 letters, digits, '.', '_' or '-'.")
        if fmt != "json":
            raise ApiError(422, 42202, "This emulator serves the json format only, not %s." % compact(fmt))
        if reset not in ("earliest", "latest"):
            raise ApiError(422, 42202, "auto.offset.reset must be earliest or latest.")
        if auto not in ("true", "false", True, False):
            raise ApiError(422, 42202, "auto.commit.enable must be \"true\" or \"false\".")
        with self.cond:
            self.expire()
            g = self.group(group)
            if name is None:
                n = 0
                while any(i.name == "rest-consumer-%d" % n for i in g.members):
                    n += 1
                name = "rest-consumer-%d" % n
            if any(i.name == name for i in g.members):
                raise ApiError(409, 40902, "Consumer with specified consumer ID already exists in the specified "
                                           "consumer group.")
            inst = Instance(group, name, fmt, reset, auto in ("true", True))
            g.members.append(inst)
            self.log("instance %s/%s created" % (group, name))
        base = "http://%s/consumers/%s/instances/%s" % (host, urllib.parse.quote(group), urllib.parse.quote(name))
        return {"instance_id": name, "base_uri": base}

    def delete_consumer(self, group, name):
        with self.cond:
            inst = self.instance(group, name)
            g = self.groups[group]
            g.members.remove(inst)
            inst.expired = True
            self.rebalance(g)
            self.log("instance %s/%s deleted" % (group, name))

    def subscribe(self, group, name, body):
        if not isinstance(body, dict) or set(body) != {"topics"} or not isinstance(body["topics"], list) \
                or not body["topics"] or not all(isinstance(t, str) and NAME_RE.match(t) for t in body["topics"]):
            raise ApiError(422, 42202, "The body must be {\"topics\":[…]} with valid topic names.")
        with self.cond:
            inst = self.instance(group, name)
            inst.topics = sorted(set(body["topics"]))
            self.rebalance(self.groups[group])

    def subscription(self, group, name):
        with self.cond:
            return {"topics": list(self.instance(group, name).topics)}

    def unsubscribe(self, group, name):
        with self.cond:
            inst = self.instance(group, name)
            inst.topics = []
            self.rebalance(self.groups[group])

    def records(self, group, name, timeout_ms, max_bytes):
        deadline = time.monotonic() + timeout_ms / 1000.0
        with self.cond:
            inst = self.instance(group, name)
            if not inst.topics:
                raise ApiError(409, 40903, "Illegal state: Consumer is not subscribed to any topics or assigned "
                                           "any partitions")
            g = self.groups[group]
            if inst.auto_commit:
                self._commit_all(g, inst)
            while True:
                if inst.expired:
                    raise ApiError(404, 40403, "Consumer instance not found.")
                out = self._take(inst, max_bytes)
                left = deadline - time.monotonic()
                if out or left <= 0:
                    inst.last_used = time.monotonic()
                    return out
                inst.last_used = time.monotonic()
                self.cond.wait(min(left, 0.25))

    def _take(self, inst, max_bytes):
        out, used = [], 0
        n = len(inst.assigned)
        for k in range(n):
            tp = inst.assigned[(inst.rotate + k) % n]
            recs = self.topics[tp[0]].partitions[tp[1]].records
            pos = inst.position.get(tp, 0)
            while pos < len(recs) and len(out) < MAX_POLL_RECORDS:
                key, value, size = recs[pos]
                if out and used + size > max_bytes:
                    break
                out.append({"topic": tp[0], "key": key, "value": value, "partition": tp[1], "offset": pos})
                used += size
                pos += 1
            inst.position[tp] = pos
            if len(out) >= MAX_POLL_RECORDS or (out and used >= max_bytes):
                break
        if n:
            inst.rotate = (inst.rotate + 1) % n
        return out

    def _commit_all(self, g, inst):
        for tp, pos in inst.position.items():
            g.committed[tp] = pos
        g.save()

    def commit(self, group, name, body, key):
        with self.cond:
            inst = self.instance(group, name)
            g = self.groups[group]
            if body is None or body == {}:
                self._commit_all(g, inst)
                return
            if not isinstance(body, dict) or set(body) != {key} or not isinstance(body[key], list):
                raise ApiError(422, 42202, "The body must be {\"%s\":[{\"topic\",\"partition\",\"offset\"}…]}." % key)
            new = {}
            for o in body[key]:
                if not isinstance(o, dict) or set(o) - {"topic", "partition", "offset", "metadata"} \
                        or not isinstance(o.get("topic"), str) or not isinstance(o.get("partition"), int) \
                        or not isinstance(o.get("offset"), int) or isinstance(o.get("offset"), bool) \
                        or o["offset"] < 0:
                    raise ApiError(422, 42202, "Every offset is {\"topic\":…,\"partition\":…,\"offset\":…} with an "
                                               "offset of 0 or more.")
                t = self.topic(o["topic"])
                if not 0 <= o["partition"] < len(t.partitions):
                    raise ApiError(404, 40402, "Partition %d of topic %s not found." % (o["partition"], t.name))
                # The proxy commits the offset of the last record processed plus one:
                # Kafka's "next record to read".
                new[(o["topic"], o["partition"])] = o["offset"] + 1
            g.committed.update(new)
            g.save()

    def committed(self, group, name, body, key):
        if not isinstance(body, dict) or set(body) != {key} or not isinstance(body[key], list):
            raise ApiError(422, 42202, "The body must be {\"%s\":[{\"topic\",\"partition\"}…]}." % key)
        with self.cond:
            self.instance(group, name)
            g = self.groups[group]
            out = []
            for o in body[key]:
                if not isinstance(o, dict) or set(o) - {"topic", "partition"} or not isinstance(o.get("topic"), str) \
                        or not isinstance(o.get("partition"), int):
                    raise ApiError(422, 42202, "Every partition is {\"topic\":…,\"partition\":…}.")
                t = self.topic(o["topic"])
                if not 0 <= o["partition"] < len(t.partitions):
                    raise ApiError(404, 40402, "Partition %d of topic %s not found." % (o["partition"], t.name))
                off = g.committed.get((o["topic"], o["partition"]), -1)
                out.append({"topic": o["topic"], "partition": o["partition"], "offset": off, "metadata": ""})
            return {"offsets": out}

    # ---- metadata -------------------------------------------------------------

    def list_topics(self):
        with self.cond:
            return sorted(self.topics)

    def describe_topic(self, name):
        with self.cond:
            t = self.topic(name)
            parts = [{"partition": p, "leader": 0, "replicas": [{"broker": 0, "leader": True, "in_sync": True}]}
                     for p in range(len(t.partitions))]
            return {"name": name, "configs": {}, "partitions": parts}

    def expire_loop(self):
        step = max(0.05, min(1.0, self.args.instance_timeout_ms / 4000.0))
        while True:
            time.sleep(step)
            with self.cond:
                self.expire()


ROUTES = [
    ("GET", re.compile(r"^/topics$"), "list_topics"),
    ("GET", re.compile(r"^/topics/([^/]+)$"), "describe_topic"),
    ("POST", re.compile(r"^/topics/([^/]+)$"), "produce"),
    ("POST", re.compile(r"^/consumers/([^/]+)$"), "create_consumer"),
    ("DELETE", re.compile(r"^/consumers/([^/]+)/instances/([^/]+)$"), "delete_consumer"),
    ("POST", re.compile(r"^/consumers/([^/]+)/instances/([^/]+)/subscription$"), "subscribe"),
    ("GET", re.compile(r"^/consumers/([^/]+)/instances/([^/]+)/subscription$"), "subscription"),
    ("DELETE", re.compile(r"^/consumers/([^/]+)/instances/([^/]+)/subscription$"), "unsubscribe"),
    ("GET", re.compile(r"^/consumers/([^/]+)/instances/([^/]+)/records$"), "records"),
    ("POST", re.compile(r"^/consumers/([^/]+)/instances/([^/]+)/offsets$"), "commit"),
    ("GET", re.compile(r"^/consumers/([^/]+)/instances/([^/]+)/offsets$"), "committed"),
]


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that went away (timed out, detached) is not the emulator's error.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real proxy
    server_version = "kafka-rest-emulator/1.0"
    broker = None  # set in main()

    def log_message(self, fmt, *args):
        if self.broker.args.verbose:
            sys.stderr.write("kafka-rest-emulator: %s %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PUT(self):
        self.dispatch("PUT")

    # ---- plumbing ---------------------------------------------------------------

    def send(self, status, obj=None, ctype=CT_V2):
        data = b"" if obj is None else compact(obj).encode("utf-8")
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def read_body(self):
        """The raw body (bytes), from Content-Length or chunked encoding."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
                if len(out) > MAX_BODY:
                    raise ApiError(413, 413, "Request body too large.")
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ApiError(413, 413, "Request body too large.")
        return self.rfile.read(n) if n > 0 else b""

    def media_type(self, header):
        return (self.headers.get(header) or "").split(";")[0].strip().lower()

    def need_ctype(self, allowed):
        ct = self.media_type("Content-Type")
        if ct not in allowed:
            raise ApiError(415, 415, "HTTP 415 Unsupported Media Type: %s is not one of %s."
                           % (ct or "(none)", ", ".join(allowed)))

    def need_accept(self, allowed, default_ok=True):
        raw = self.headers.get("Accept")
        if raw is None or raw.strip() == "":
            if default_ok:
                return
            raise ApiError(406, 406, "HTTP 406 Not Acceptable: send Accept: %s." % allowed[0])
        offered = [a.split(";")[0].strip().lower() for a in raw.split(",")]
        if not any(a in allowed for a in offered):
            if any(a in (CT_BINARY_RECORDS, CT_AVRO_RECORDS) for a in offered):
                raise ApiError(406, 40601, "The requested embedded data format does not match the deserializer "
                                           "for this consumer instance (json).")
            raise ApiError(406, 406, "HTTP 406 Not Acceptable: %s is not %s." % (raw, " or ".join(allowed)))

    def json_body(self, raw, empty_ok=False):
        if not raw.strip():
            if empty_ok:
                return None
            raise ApiError(422, 42201, "The request body is empty; a JSON object is expected.")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ApiError(422, 42201, "The request body is not valid JSON: %s" % e)

    def dispatch(self, method):
        try:
            url = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(url.path)
            query = urllib.parse.parse_qs(url.query)
            raw = self.read_body()
            route, match, other_method = None, None, False
            for m, rx, name in ROUTES:
                mt = rx.match(path)
                if mt:
                    if m == method:
                        route, match = name, mt
                        break
                    other_method = True
            if route is None:
                if other_method:
                    raise ApiError(405, 405, "HTTP 405 Method Not Allowed")
                raise ApiError(404, 404, "HTTP 404 Not Found")
            for g in match.groups():
                if not NAME_RE.match(g):
                    raise ApiError(404, 404, "HTTP 404 Not Found: %s is not a valid name" % compact(g))
            getattr(self, "h_" + route)(raw, query, *match.groups())
        except ApiError as e:
            self.send(e.status, {"error_code": e.code, "message": e.message})
        except ConnectionError:
            self.close_connection = True
        except Exception as e:  # a bug here: answer like a server error, keep serving
            sys.stderr.write("kafka-rest-emulator: %s %s: %r\n" % (self.command, self.path, e))
            self.send(500, {"error_code": 50001, "message": "emulator error: %r" % e})

    # ---- endpoints --------------------------------------------------------------

    def h_list_topics(self, raw, query):
        self.need_accept(ACCEPT_V2)
        self.send(200, self.broker.list_topics())

    def h_describe_topic(self, raw, query, topic):
        self.need_accept(ACCEPT_V2)
        self.send(200, self.broker.describe_topic(topic))

    def h_produce(self, raw, query, topic):
        ct = self.media_type("Content-Type")
        if ct in (CT_BINARY_RECORDS, CT_AVRO_RECORDS):
            raise ApiError(415, 415, "HTTP 415 Unsupported Media Type: this emulator takes embedded JSON records "
                                     "(%s), not %s." % (CT_JSON_RECORDS, ct))
        self.need_ctype((CT_JSON_RECORDS,))
        self.need_accept(ACCEPT_V2)
        self.send(200, self.broker.produce(topic, self.json_body(raw)))

    def h_create_consumer(self, raw, query, group):
        self.need_ctype((CT_V2,))
        self.need_accept(ACCEPT_V2)
        host = self.headers.get("Host") or "127.0.0.1:%d" % self.broker.args.port
        self.send(200, self.broker.create_consumer(group, self.json_body(raw), host))

    def h_delete_consumer(self, raw, query, group, name):
        self.broker.delete_consumer(group, name)
        self.send(204)

    def h_subscribe(self, raw, query, group, name):
        self.need_ctype((CT_V2,))
        self.broker.subscribe(group, name, self.json_body(raw))
        self.send(204)

    def h_subscription(self, raw, query, group, name):
        self.need_accept(ACCEPT_V2)
        self.send(200, self.broker.subscription(group, name))

    def h_unsubscribe(self, raw, query, group, name):
        self.broker.unsubscribe(group, name)
        self.send(204)

    def h_records(self, raw, query, group, name):
        self.need_accept(ACCEPT_RECORDS_JSON, default_ok=False)

        def num(key, default, lo, hi):
            v = query.get(key, [None])[-1]
            if v is None:
                return default
            try:
                n = int(v)
            except ValueError:
                raise ApiError(400, 400, "The query parameter %s must be an integer." % key)
            return max(lo, min(hi, n))

        timeout = num("timeout", DEFAULT_FETCH_TIMEOUT_MS, 0, 300000)
        max_bytes = num("max_bytes", 64 * 1024 * 1024, 1, 64 * 1024 * 1024)
        self.send(200, self.broker.records(group, name, timeout, max_bytes), CT_JSON_RECORDS)

    def offsets_key(self):
        return "partitions" if self.broker.args.flavour == "redpanda" else "offsets"

    def h_commit(self, raw, query, group, name):
        body = None
        if raw.strip():
            self.need_ctype((CT_V2,))
            body = self.json_body(raw)
        self.broker.commit(group, name, body, self.offsets_key())
        self.send(204 if self.broker.args.flavour == "redpanda" else 200)

    def h_committed(self, raw, query, group, name):
        self.need_ctype((CT_V2,))
        self.need_accept(ACCEPT_V2)
        self.send(200, self.broker.committed(group, name, self.json_body(raw), "partitions"))


def main():
    ap = argparse.ArgumentParser(description="Kafka REST Proxy v2 emulator for tests (see docs/kafka.md).")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--data", required=True, help="folder for the partition logs and committed offsets")
    ap.add_argument("--partitions", type=int, default=3, help="partitions of a topic created on first use (3)")
    ap.add_argument("--instance-timeout-ms", type=int, default=300000,
                    help="consumer.instance.timeout.ms: idle instances are removed after this (300000)")
    ap.add_argument("--max-record-bytes", type=int, default=1048576,
                    help="a record larger than this (serialized key + value) fails with error_code 50002")
    ap.add_argument("--flavour", choices=("confluent", "redpanda"), default="confluent",
                    help="offsets bodies as Confluent ({\"offsets\":…}) or Redpanda ({\"partitions\":…}, 204)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.partitions < 1 or args.instance_timeout_ms < 1 or args.max_record_bytes < 1:
        ap.error("--partitions, --instance-timeout-ms and --max-record-bytes must be at least 1")

    broker = Broker(args)
    Handler.broker = broker
    server = Server((args.host, args.port), Handler)
    threading.Thread(target=broker.expire_loop, daemon=True).start()

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write("kafka-rest-emulator: listening on http://%s:%d, data in %s\n" % (args.host, args.port, broker.root))
    sys.stderr.flush()
    server.serve_forever(poll_interval=0.1)
    server.server_close()


if __name__ == "__main__":
    main()
