#!/usr/bin/env python3
"""Record how the reference nats-server (v2.15.2) answers consumer requests, pulls and acks.

Like capture_reference.py (whose server, proxy and CLI helpers this reuses): runs
~/go/bin/nats-server -js on a free loopback port with a temporary store directory, sends the
scenarios below and writes what came back to tests/fixtures/consumers.json, which
tests/consumer_reference.rs replays through chorus-jetstream's consumer code.

    python3 crates/chorus-jetstream/tools/capture_consumers.py

Record shape: {"group", "note", "op", "subject", "reply", "headers", "body", "msgs": [...]}
where op is "req" (request/response), "pub" (plain publish into a stream, with its PubAck),
"pull" (a pull request and every message its inbox got), "ack" (a message to an ack subject
and the ack reply), "watch" (what a subscription got while waiting) or "cli" (what the `nats`
CLI sent, through the logging proxy). Each message is {"subject","reply","headers","body"}.
"""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import capture_reference as cr  # noqa: E402

OUT = os.path.join(cr.HERE, "..", "tests", "fixtures", "consumers.json")
RECORDS = []
# Each record carries "at_ms": when its operation started, in ms since its scenario began, so
# the replay can run the consumer on the same clock (timeouts, heartbeats, nak delays).
CLOCK = {"t0": 0.0, "op": 0.0}


def start_scenario():
    CLOCK["t0"] = time.time()


def mark():
    CLOCK["op"] = time.time()


class Client:
    """A NATS client that keeps every message it receives, per subscription."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
        self.readline()
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                   "protocol": 1, "lang": "python-capture", "version": "0"}
        self.sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
        self.sid = 0
        self.inbox_n = 0
        self.got = []
        self.flush()

    def readline(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def readn(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def sub(self, subject):
        self.sid += 1
        self.sock.sendall(b"SUB %s %d\r\n" % (subject.encode(), self.sid))
        return self.sid

    def flush(self):
        self.sock.sendall(b"PING\r\n")
        self.pump(until_pong=True)

    def pump(self, seconds=0.0, until_pong=False):
        end = time.time() + seconds
        while True:
            if until_pong:
                self.sock.settimeout(5)
            else:
                left = end - time.time()
                if left <= 0 and b"\r\n" not in self.buf:
                    return
                self.sock.settimeout(max(left, 0.001))
            try:
                line = self.readline()
            except socket.timeout:
                return
            finally:
                self.sock.settimeout(None)
            parts = line.split(b" ")
            op = parts[0]
            if op == b"PING":
                self.sock.sendall(b"PONG\r\n")
            elif op == b"PONG":
                if until_pong:
                    return
            elif op in (b"MSG", b"HMSG"):
                subj = parts[1].decode()
                sid = int(parts[2])
                if op == b"MSG":
                    reply = parts[3].decode() if len(parts) == 5 else None
                    data = self.readn(int(parts[-1]))
                    hdr = None
                else:
                    reply = parts[3].decode() if len(parts) == 6 else None
                    hlen, tlen = int(parts[-2]), int(parts[-1])
                    data = self.readn(tlen)
                    hdr, data = data[:hlen].decode(), data[hlen:]
                self.got.append({"sid": sid, "subject": subj, "reply": reply, "headers": hdr,
                                 "body": data.decode("utf-8", "surrogateescape")})

    def publish(self, subject, body="", reply=None, headers=None):
        if isinstance(body, str):
            body = body.encode()
        r = (" " + reply) if reply else ""
        if headers is None:
            self.sock.sendall(b"PUB %s%s %d\r\n" % (subject.encode(), r.encode(), len(body)) + body
                              + b"\r\n")
        else:
            h = headers.encode()
            self.sock.sendall(b"HPUB %s%s %d %d\r\n" % (subject.encode(), r.encode(), len(h),
                                                       len(h) + len(body)) + h + body + b"\r\n")

    def inbox(self):
        self.inbox_n += 1
        return "_I.%d" % self.inbox_n

    def take(self, pred):
        mine = [m for m in self.got if pred(m)]
        self.got = [m for m in self.got if not pred(m)]
        for m in mine:
            m.pop("sid", None)
        return mine

    def exchange(self, subject, body="", wait=0.3, want=None, headers=None):
        """Publishes with a fresh inbox; returns what the inbox got within `wait` seconds
        (or as soon as `want` messages arrived)."""
        inbox = self.inbox()
        sid = self.sub(inbox)
        self.publish(subject, body, inbox, headers)
        end = time.time() + wait
        while time.time() < end:
            self.pump(min(0.02, max(end - time.time(), 0.001)))
            if want is not None and len([m for m in self.got if m["sid"] == sid]) >= want:
                break
        self.sock.sendall(b"UNSUB %d\r\n" % sid)
        return inbox, self.take(lambda m: m["sid"] == sid)

    def close(self):
        self.sock.close()


def rec(group, note, op, subject, body, msgs, reply=None, headers=None, extra=None):
    if not isinstance(body, str):
        body = json.dumps(body, separators=(",", ":"))
    r = {"group": group, "note": note, "op": op, "subject": subject, "reply": reply,
         "headers": headers, "body": body, "msgs": msgs,
         "at_ms": int((CLOCK["op"] - CLOCK["t0"]) * 1000)}
    if extra:
        r.update(extra)
    RECORDS.append(r)


def req(c, group, note, subject, body="", wait=1.0):
    mark()
    if not isinstance(body, str):
        body = json.dumps(body, separators=(",", ":"))
    inbox, msgs = c.exchange(subject, body, wait=wait, want=1)
    rec(group, note, "req", subject, body, msgs, reply=inbox)
    return json.loads(msgs[0]["body"]) if msgs and msgs[0]["body"] else None


def pub(c, group, note, subject, body, headers=None):
    mark()
    inbox, msgs = c.exchange(subject, body, wait=1.0, want=1, headers=headers)
    rec(group, note, "pub", subject, body, msgs, reply=inbox, headers=headers)


def pull(c, group, note, stream, consumer, body, wait, want=None):
    if not isinstance(body, str):
        body = json.dumps(body, separators=(",", ":"))
    subject = "$JS.API.CONSUMER.MSG.NEXT.%s.%s" % (stream, consumer)
    mark()
    start = time.time()
    inbox, msgs = c.exchange(subject, body, wait=wait, want=want)
    rec(group, note, "pull", subject, body, msgs, reply=inbox,
        extra={"elapsed_ms": int((time.time() - start) * 1000)})
    return msgs


def ack(c, group, note, ack_subject, body, want_reply=True):
    mark()
    if want_reply:
        inbox, msgs = c.exchange(ack_subject, body, wait=0.5, want=1)
    else:
        c.publish(ack_subject, body)
        c.flush()
        inbox, msgs = None, []
    rec(group, note, "ack", ack_subject, body, msgs, reply=inbox)


def watch(c, group, note, subject_prefix, seconds, sid):
    mark()
    c.pump(seconds)
    msgs = c.take(lambda m: m["sid"] == sid)
    rec(group, note, "watch", subject_prefix, "", msgs, extra={"seconds": seconds})
    return msgs


def create(c, group, note, stream, cfg, subject=None, action=None):
    body = {"stream_name": stream, "config": cfg}
    if action is not None:
        body["action"] = action
    if subject is None:
        name = cfg.get("durable_name") or cfg.get("name")
        subject = "$JS.API.CONSUMER.CREATE.%s.%s" % (stream, name) if name else \
            "$JS.API.CONSUMER.CREATE.%s" % stream
    return req(c, group, note, subject, body)


def info(c, group, note, stream, consumer):
    return req(c, group, note, "$JS.API.CONSUMER.INFO.%s.%s" % (stream, consumer), "")


def stream_create(c, group, cfg):
    req(c, group, "stream " + cfg["name"], "$JS.API.STREAM.CREATE." + cfg["name"], cfg)


def cli(server, group, note, *args):
    mark()
    before = len(cr.RECORDS)
    p = cr.cli(server, group, note, *args)
    for r in cr.RECORDS[before:]:
        r["op"] = "cli"
        r["at_ms"] = int((CLOCK["op"] - CLOCK["t0"]) * 1000)
        RECORDS.append(r)
    return p


# --- Scenarios ------------------------------------------------------------------------------------

def choiros():
    """The ChoirOS consumers via the nats CLI, then AGENT_POOL's nak/redeliver/max_deliver."""
    s = cr.Server()
    start_scenario()
    g = "choiros"
    try:
        cli(s, g, "USER_EVENTS R1", "stream", "add", "USER_EVENTS", "--subjects",
            "choiros.user.>", "--retention", "limits", "--max-age", "720h", "--storage", "file",
            "--replicas", "1", "--defaults")
        pool = ["consumer", "add", "USER_EVENTS", "AGENT_POOL", "--filter",
                "choiros.user.*.action.COMMAND", "--deliver", "all", "--ack", "explicit",
                "--max-deliver", "3"]
        sync = ["consumer", "add", "USER_EVENTS", "SYNC_WORKER", "--filter",
                "choiros.user.*.file.*", "--deliver", "all", "--ack", "explicit"]
        # As written the CLI wants to prompt for push or pull; without a terminal it stops.
        cli(s, g, "AGENT_POOL as written", *pool)
        cli(s, g, "AGENT_POOL pull defaults", *pool, "--pull", "--defaults")
        cli(s, g, "SYNC_WORKER as written", *sync)
        cli(s, g, "SYNC_WORKER pull defaults", *sync, "--pull", "--defaults")
        c = Client(s.port)
        adv = c.sub("$JS.EVENT.ADVISORY.CONSUMER.>")
        c.flush()
        req(c, g, "names", "$JS.API.CONSUMER.NAMES.USER_EVENTS", "")
        req(c, g, "list", "$JS.API.CONSUMER.LIST.USER_EVENTS", "")
        pub(c, g, "command 1", "choiros.user.u1.action.COMMAND", "do-1")
        pub(c, g, "file event", "choiros.user.u1.file.saved", "f-1")
        pub(c, g, "command 2", "choiros.user.u2.action.COMMAND", "do-2")
        info(c, g, "pool info after publish", "USER_EVENTS", "AGENT_POOL")
        # Message 1: delivered, nak, nak, third delivery acked.
        for i in range(3):
            msgs = pull(c, g, "pool pull m1 #%d" % (i + 1), "USER_EVENTS", "AGENT_POOL",
                        {"batch": 1, "expires": 500_000_000}, wait=1.0, want=1)
            body = "+ACK" if i == 2 else "-NAK"
            ack(c, g, "pool %s m1 #%d" % (body, i + 1), msgs[0]["reply"], body)
            if i < 2:
                info(c, g, "pool info after nak #%d" % (i + 1), "USER_EVENTS", "AGENT_POOL")
        info(c, g, "pool info after m1 acked", "USER_EVENTS", "AGENT_POOL")
        # Message 2: three deliveries, all nak'ed; the fourth attempt hits max_deliver.
        for i in range(3):
            msgs = pull(c, g, "pool pull m2 #%d" % (i + 1), "USER_EVENTS", "AGENT_POOL",
                        {"batch": 1, "expires": 500_000_000}, wait=1.0, want=1)
            ack(c, g, "pool -NAK m2 #%d" % (i + 1), msgs[0]["reply"], "-NAK")
        pull(c, g, "pool pull after max deliver", "USER_EVENTS", "AGENT_POOL",
             {"batch": 1, "expires": 300_000_000}, wait=0.8)
        watch(c, g, "advisories", "$JS.EVENT.ADVISORY.", 0.3, adv)
        info(c, g, "pool info after max deliver", "USER_EVENTS", "AGENT_POOL")
        # SYNC_WORKER sees only the file event.
        msgs = pull(c, g, "sync pull", "USER_EVENTS", "SYNC_WORKER", {"batch": 5, "no_wait": True},
                    wait=0.5)
        ack(c, g, "sync ack", msgs[0]["reply"], "+ACK")
        info(c, g, "sync info", "USER_EVENTS", "SYNC_WORKER")
        c.close()
    finally:
        s.stop()


def validation():
    s = cr.Server()
    start_scenario()
    g = "validation"
    c = Client(s.port)
    try:
        stream_create(c, g, {"name": "S", "subjects": ["s.>"]})
        stream_create(c, g, {"name": "WQ", "subjects": ["wq.>"], "retention": "workqueue"})
        stream_create(c, g, {"name": "LIM", "subjects": ["lim.>"], "max_consumers": 1,
                             "consumer_limits": {"max_ack_pending": 100,
                                                 "inactive_threshold": 60_000_000_000}})
        S = "S"
        cases = [
            ("durable pull explicit", {"durable_name": "D1", "ack_policy": "explicit"}),
            ("durable pull none", {"durable_name": "D2"}),
            ("durable ack all", {"durable_name": "D3", "ack_policy": "all"}),
            ("ephemeral named", {"name": "E1", "ack_policy": "explicit"}),
            ("push durable", {"durable_name": "P1", "deliver_subject": "out.p1",
                              "ack_policy": "explicit", "idle_heartbeat": 5_000_000_000,
                              "flow_control": True}),
            ("push ack none", {"durable_name": "P2", "deliver_subject": "out.p2"}),
            ("backoff", {"durable_name": "B1", "ack_policy": "explicit",
                         "backoff": [1_000_000_000, 5_000_000_000], "max_deliver": 4}),
            ("backoff > max_deliver", {"durable_name": "B2", "ack_policy": "explicit",
                                       "backoff": [1, 2, 3], "max_deliver": 2}),
            ("backoff negative", {"durable_name": "B3", "ack_policy": "explicit",
                                  "backoff": [-1]}),
            ("ack_wait negative", {"durable_name": "B4", "ack_policy": "explicit",
                                   "ack_wait": -1}),
            ("negatives defaulted", {"durable_name": "N1", "ack_policy": "explicit",
                                     "max_deliver": -5, "max_waiting": -1, "max_ack_pending": -7,
                                     "max_batch": -1, "max_expires": -1, "max_bytes": -1,
                                     "inactive_threshold": -1}),
            ("pedantic negative", {"durable_name": "N2", "max_deliver": -5}, None, None, True),
            ("deliver wildcard", {"durable_name": "X1", "deliver_subject": "out.*"}),
            ("deliver cycle", {"durable_name": "X2", "deliver_subject": "s.x"}),
            ("push max_waiting", {"durable_name": "X3", "deliver_subject": "out.x3",
                                  "max_waiting": 5}),
            ("push max_ack_pending ack none", {"durable_name": "X4", "deliver_subject": "out.x4",
                                               "max_ack_pending": 5}),
            ("small heartbeat", {"durable_name": "X5", "deliver_subject": "out.x5",
                                 "idle_heartbeat": 50_000_000}),
            ("fc without heartbeat", {"durable_name": "X6", "deliver_subject": "out.x6",
                                      "flow_control": True}),
            ("pull rate limit", {"durable_name": "X7", "rate_limit_bps": 1000}),
            ("pull heartbeat", {"durable_name": "X8", "idle_heartbeat": 1_000_000_000}),
            ("pull flow control", {"durable_name": "X9", "flow_control": True}),
            ("max_expires tiny", {"durable_name": "X10", "max_expires": 10}),
            ("both filters", {"durable_name": "F1", "filter_subject": "s.a",
                              "filter_subjects": ["s.b"]}),
            ("empty filter", {"durable_name": "F2", "filter_subjects": ["s.a", ""]}),
            ("overlapping filters", {"durable_name": "F3", "filter_subjects": ["s.*", "s.a"]}),
            ("bad filter", {"durable_name": "F4", "filter_subject": "s..a"}),
            ("filter outside stream", {"durable_name": "F5", "filter_subject": "other.x"}),
            ("multi filters", {"durable_name": "F6", "filter_subjects": ["s.a", "s.b.>"]}),
            ("all with start seq", {"durable_name": "DP1", "opt_start_seq": 5}),
            ("by seq without seq", {"durable_name": "DP2", "deliver_policy": "by_start_sequence"}),
            ("by time without time", {"durable_name": "DP3", "deliver_policy": "by_start_time"}),
            ("by time with seq", {"durable_name": "DP4", "deliver_policy": "by_start_time",
                                  "opt_start_time": "2024-01-01T00:00:00Z", "opt_start_seq": 2}),
            ("last per subject no filter", {"durable_name": "DP5",
                                            "deliver_policy": "last_per_subject"}),
            ("new with time", {"durable_name": "DP6", "deliver_policy": "new",
                               "opt_start_time": "2024-01-01T00:00:00Z"}),
            ("by seq ok", {"durable_name": "DP7", "deliver_policy": "by_start_sequence",
                           "opt_start_seq": 3}),
            ("by time ok", {"durable_name": "DP8", "deliver_policy": "by_start_time",
                            "opt_start_time": "2024-01-01T00:00:00.5+02:00"}),
            ("sample bad", {"durable_name": "SM1", "sample_freq": "abc"}),
            ("sample negative", {"durable_name": "SM2", "sample_freq": "-5"}),
            ("sample ok", {"durable_name": "SM3", "sample_freq": "50%"}),
            ("durable name mismatch", {"durable_name": "A", "name": "B"},
             "$JS.API.CONSUMER.CREATE.S.A"),
            ("durable not subject", {"durable_name": "A"}, "$JS.API.CONSUMER.CREATE.S.B"),
            ("legacy durable not set", {"name": "LD"}, "$JS.API.CONSUMER.DURABLE.CREATE.S.LD"),
            ("legacy durable ok", {"durable_name": "LD"}, "$JS.API.CONSUMER.DURABLE.CREATE.S.LD"),
            ("legacy durable mismatch", {"durable_name": "LX"},
             "$JS.API.CONSUMER.DURABLE.CREATE.S.LY"),
            ("legacy ephemeral with durable", {"durable_name": "LE"},
             "$JS.API.CONSUMER.CREATE.S"),
            ("filter in subject", {"name": "FS", "filter_subject": "s.a"},
             "$JS.API.CONSUMER.CREATE.S.FS.s.a"),
            ("filter subject mismatch", {"name": "FS2", "filter_subject": "s.b"},
             "$JS.API.CONSUMER.CREATE.S.FS2.s.a"),
            ("filters with subject filter", {"name": "FS3", "filter_subjects": ["s.a"]},
             "$JS.API.CONSUMER.CREATE.S.FS3.s.a"),
            ("path separator", {"name": "a\\b"}, "$JS.API.CONSUMER.CREATE.S.a\\b"),
            ("name with dot legacy", {"name": "a.b"}, "$JS.API.CONSUMER.CREATE.S"),
            ("replicas 3", {"durable_name": "R3", "num_replicas": 3}),
            ("replicas -1", {"durable_name": "RN", "num_replicas": -1}),
            ("description too long", {"durable_name": "DL", "description": "d" * 4097}),
            ("metadata too long", {"durable_name": "ML", "metadata": {"k": "v" * (128 * 1024)}}),
            ("priority without groups", {"durable_name": "PR1", "priority_policy": "overflow"}),
            ("priority bad group", {"durable_name": "PR2", "priority_policy": "overflow",
                                    "priority_groups": ["a.b"]}),
            ("priority empty group", {"durable_name": "PR3", "priority_policy": "overflow",
                                      "priority_groups": [""]}),
            ("groups without policy", {"durable_name": "PR4", "priority_groups": ["g"]}),
            ("pinned ttl without policy", {"durable_name": "PR5", "priority_timeout": 5}),
            ("push with priority", {"durable_name": "PR6", "deliver_subject": "out.pr6",
                                    "priority_policy": "overflow", "priority_groups": ["g"]}),
            ("pinned ok", {"durable_name": "PR7", "ack_policy": "explicit",
                           "priority_policy": "pinned_client", "priority_groups": ["g1"]}),
            ("flow control ack pull", {"durable_name": "FC1", "ack_policy": "flow_control"}),
            ("flow control ack push", {"durable_name": "FC2", "ack_policy": "flow_control",
                                       "deliver_subject": "out.fc2", "max_ack_pending": 10}),
            ("pause until", {"durable_name": "PA1", "pause_until": "2099-01-01T00:00:00Z"}),
            ("unknown field", {"durable_name": "U1", "bogus": 1}),
            ("bad ack policy", {"durable_name": "U2", "ack_policy": "Explicit"}),
            ("headers only", {"durable_name": "H1", "headers_only": True, "max_bytes": 1000,
                              "max_batch": 10, "max_expires": 5_000_000_000,
                              "description": "d", "metadata": {"team": "x"}}),
        ]
        for case in cases:
            note, cfg = case[0], case[1]
            subject = case[2] if len(case) > 2 else None
            pedantic = case[4] if len(case) > 4 else False
            name = cfg.get("durable_name") or cfg.get("name")
            if subject is None:
                subject = "$JS.API.CONSUMER.CREATE.%s.%s" % (S, name)
            body = {"stream_name": S, "config": cfg}
            if pedantic:
                body["pedantic"] = True
            req(c, g, note, subject, body)
        # Legacy ephemeral without name: the server picks one.
        req(c, g, "legacy ephemeral", "$JS.API.CONSUMER.CREATE.S",
            {"stream_name": "S", "config": {"ack_policy": "explicit"}})
        req(c, g, "stream mismatch", "$JS.API.CONSUMER.CREATE.S.M1",
            {"stream_name": "T", "config": {"name": "M1"}})
        req(c, g, "stream missing", "$JS.API.CONSUMER.CREATE.NOPE.M1",
            {"stream_name": "NOPE", "config": {"name": "M1"}})
        req(c, g, "not json", "$JS.API.CONSUMER.CREATE.S.M1", "{nope")
        req(c, g, "empty body", "$JS.API.CONSUMER.CREATE.S.M1", "")
        # Actions.
        base = {"durable_name": "AC", "ack_policy": "explicit", "filter_subject": "s.ac"}
        create(c, g, "update missing", S, base, action="update")
        create(c, g, "create new", S, base, action="create")
        create(c, g, "create same", S, base, action="create")
        create(c, g, "create different", S, dict(base, description="x"), action="create")
        create(c, g, "update description", S, dict(base, description="x"), action="update")
        create(c, g, "update max ack pending", S, dict(base, description="x",
                                                      max_ack_pending=5))
        create(c, g, "update deliver policy", S, dict(base, deliver_policy="new"))
        create(c, g, "update ack policy", S, dict(base, ack_policy="all"))
        create(c, g, "update to push", S, dict(base, deliver_subject="out.ac"))
        create(c, g, "update filter", S, dict(base, filter_subject="s.ac2"))
        create(c, g, "update max waiting", S, dict(base, max_waiting=10))
        create(c, g, "update backoff too long", S, dict(base, backoff=[1, 2], max_deliver=1))
        create(c, g, "push update deliver subject", S, {
            "durable_name": "P1", "deliver_subject": "out.p1b", "ack_policy": "explicit",
            "idle_heartbeat": 5_000_000_000, "flow_control": True})
        # Workqueue rules.
        W = "WQ"
        for note, cfg in [
            ("wq ack none", {"durable_name": "W0"}),
            ("wq push ack none", {"durable_name": "W0", "deliver_subject": "out.w0"}),
            ("wq deliver last", {"durable_name": "W0", "ack_policy": "explicit",
                                 "deliver_policy": "last"}),
            ("wq first unfiltered", {"durable_name": "W1", "ack_policy": "explicit"}),
            ("wq second unfiltered", {"durable_name": "W2", "ack_policy": "explicit"}),
            ("wq filtered vs unfiltered", {"durable_name": "W3", "ack_policy": "explicit",
                                           "filter_subject": "wq.a"}),
        ]:
            create(c, g, note, W, cfg)
        req(c, g, "wq delete W1", "$JS.API.CONSUMER.DELETE.WQ.W1", "")
        for note, cfg in [
            ("wq filtered a", {"durable_name": "W4", "ack_policy": "explicit",
                               "filter_subject": "wq.a.>"}),
            ("wq filtered overlap", {"durable_name": "W5", "ack_policy": "explicit",
                                     "filter_subject": "wq.*.x"}),
            ("wq filtered b", {"durable_name": "W6", "ack_policy": "explicit",
                               "filter_subjects": ["wq.b", "wq.c"]}),
            ("wq update overlapping", {"durable_name": "W6", "ack_policy": "explicit",
                                       "filter_subjects": ["wq.b", "wq.a.z"]}),
        ]:
            create(c, g, note, W, cfg)
        # Stream consumer limits and max consumers.
        L = "LIM"
        create(c, g, "limits defaults", L, {"durable_name": "L1", "ack_policy": "explicit"})
        create(c, g, "limits max consumers", L, {"durable_name": "L2", "ack_policy": "explicit"})
        req(c, g, "lim delete L1", "$JS.API.CONSUMER.DELETE.LIM.L1", "")
        create(c, g, "limits ack pending excess", L, {"durable_name": "L3",
                                                     "ack_policy": "explicit",
                                                     "max_ack_pending": 1000})
        create(c, g, "limits inactive excess", L, {"durable_name": "L4",
                                                  "inactive_threshold": 120_000_000_000})
        # Read endpoints.
        req(c, g, "names", "$JS.API.CONSUMER.NAMES.S", "")
        req(c, g, "names offset", "$JS.API.CONSUMER.NAMES.S", {"offset": 20})
        req(c, g, "names missing stream", "$JS.API.CONSUMER.NAMES.NOPE", "")
        req(c, g, "list missing stream", "$JS.API.CONSUMER.LIST.NOPE", "")
        req(c, g, "info missing consumer", "$JS.API.CONSUMER.INFO.S.NOPE", "")
        req(c, g, "info missing stream", "$JS.API.CONSUMER.INFO.NOPE.X", "")
        req(c, g, "info with body", "$JS.API.CONSUMER.INFO.S.D1", {"x": 1})
        req(c, g, "info D1", "$JS.API.CONSUMER.INFO.S.D1", "")
        req(c, g, "delete with body", "$JS.API.CONSUMER.DELETE.S.D1", {"x": 1})
        req(c, g, "delete missing", "$JS.API.CONSUMER.DELETE.S.NOPE", "")
        req(c, g, "delete D2", "$JS.API.CONSUMER.DELETE.S.D2", "")
        req(c, g, "pause", "$JS.API.CONSUMER.PAUSE.S.D1", {"pause_until": "2099-01-01T00:00:00Z"})
        req(c, g, "info paused", "$JS.API.CONSUMER.INFO.S.D1", "")
        req(c, g, "unpause", "$JS.API.CONSUMER.PAUSE.S.D1", "")
        req(c, g, "pause missing", "$JS.API.CONSUMER.PAUSE.S.NOPE", "")
    finally:
        c.close()
        s.stop()


def pulls():
    s = cr.Server()
    start_scenario()
    g = "pull"
    c = Client(s.port)
    try:
        stream_create(c, g, {"name": "P", "subjects": ["p.>"]})
        create(c, g, "C1", "P", {"durable_name": "C1", "ack_policy": "explicit"})
        create(c, g, "C2 limits", "P", {"durable_name": "C2", "ack_policy": "explicit",
                                        "max_batch": 5, "max_expires": 1_000_000_000,
                                        "max_bytes": 100})
        create(c, g, "C3 max waiting 1", "P", {"durable_name": "C3", "ack_policy": "explicit",
                                               "max_waiting": 1})
        create(c, g, "PUSH", "P", {"durable_name": "PUSH", "deliver_subject": "out.push"})
        pull(c, g, "no wait empty", "P", "C1", {"batch": 1, "no_wait": True}, wait=0.3, want=1)
        pull(c, g, "expires empty", "P", "C1", {"batch": 2, "expires": 200_000_000}, wait=0.6,
             want=1)
        for i in range(3):
            pub(c, g, "msg %d" % (i + 1), "p.%d" % (i + 1), "payload-%d" % (i + 1))
        info(c, g, "C1 info 3 pending", "P", "C1")
        msgs = pull(c, g, "batch 2 no wait", "P", "C1", {"batch": 2, "no_wait": True}, wait=0.3,
                    want=2)
        info(c, g, "C1 info 2 delivered", "P", "C1")
        pull(c, g, "batch 5 no wait rest", "P", "C1", {"batch": 5, "no_wait": True}, wait=0.3,
             want=2)
        info(c, g, "C1 info all delivered", "P", "C1")
        ack(c, g, "ack second", msgs[1]["reply"], "+ACK")
        info(c, g, "C1 info gap acked", "P", "C1")
        ack(c, g, "ack first", msgs[0]["reply"], "+ACK")
        info(c, g, "C1 info floor moved", "P", "C1")
        pull(c, g, "plain batch text", "P", "C1", "1", wait=0.3)
        pull(c, g, "bad heartbeat", "P", "C1", {"batch": 1, "expires": 1_000_000_000,
                                                 "idle_heartbeat": 600_000_000}, wait=0.3, want=1)
        pull(c, g, "bad json", "P", "C1", "{\"batch\":\"x\"}", wait=0.3, want=1)
        pull(c, g, "exceeds batch", "P", "C2", {"batch": 6}, wait=0.3, want=1)
        pull(c, g, "exceeds expires", "P", "C2", {"batch": 1, "expires": 2_000_000_000},
             wait=0.3, want=1)
        pull(c, g, "exceeds bytes", "P", "C2", {"batch": 1, "max_bytes": 101}, wait=0.3, want=1)
        pull(c, g, "max bytes too small", "P", "C2", {"batch": 1, "max_bytes": 10}, wait=0.3,
             want=1)
        pull(c, g, "max bytes batch completed", "P", "C2", {"batch": 1, "max_bytes": 99},
             wait=0.3, want=2)
        pull(c, g, "push consumer", "P", "PUSH", {"batch": 1}, wait=0.3, want=1)
        # C3: drain its three messages, then one request waits and the next is refused.
        pull(c, g, "C3 drain", "P", "C3", {"batch": 3, "no_wait": True}, wait=0.3, want=3)
        mark()
        inbox = c.inbox()
        wsid = c.sub(inbox)
        c.publish("$JS.API.CONSUMER.MSG.NEXT.P.C3", json.dumps({"batch": 1,
                                                               "expires": 3_000_000_000}), inbox)
        c.flush()
        rec(g, "C3 waiting request", "pull", "$JS.API.CONSUMER.MSG.NEXT.P.C3",
            json.dumps({"batch": 1, "expires": 3_000_000_000}), [], reply=inbox)
        pull(c, g, "C3 exceeds max waiting", "P", "C3", {"batch": 1, "expires": 1_000_000_000},
             wait=0.3, want=1)
        info(c, g, "C3 info one waiting", "P", "C3")
        req(c, g, "C3 delete", "$JS.API.CONSUMER.DELETE.P.C3", "")
        mark()
        c.pump(0.3)
        rec(g, "C3 deleted status", "watch", inbox, "", c.take(lambda m: m["sid"] == wsid))
        # Heartbeats on a pull request.
        create(c, g, "C4", "P", {"durable_name": "C4", "ack_policy": "explicit",
                                 "deliver_policy": "new"})
        pull(c, g, "pull heartbeats", "P", "C4", {"batch": 1, "expires": 1_100_000_000,
                                                  "idle_heartbeat": 500_000_000}, wait=1.6)
        # Nak, term, progress on C1 with a fourth message.
        pub(c, g, "msg 4", "p.4", "payload-4")
        m = pull(c, g, "C1 pull 4", "P", "C1", {"batch": 1, "no_wait": True}, wait=0.3, want=1)
        ack(c, g, "progress 4", m[0]["reply"], "+WPI")
        ack(c, g, "nak 4", m[0]["reply"], "-NAK")
        m = pull(c, g, "C1 redelivery 4", "P", "C1", {"batch": 1, "no_wait": True}, wait=0.3,
                 want=1)
        info(c, g, "C1 info redelivered", "P", "C1")
        ack(c, g, "nak delay 4", m[0]["reply"], "-NAK {\"delay\": 200000000}")
        pull(c, g, "C1 delayed not yet", "P", "C1", {"batch": 1, "no_wait": True}, wait=0.1)
        time.sleep(0.3)
        m = pull(c, g, "C1 delayed redelivery", "P", "C1", {"batch": 1, "expires": 500_000_000},
                 wait=0.8, want=1)
        ack(c, g, "term 4", m[0]["reply"], "+TERM done with it")
        info(c, g, "C1 info after term", "P", "C1")
        ack(c, g, "ack garbage sequence", "$JS.ACK.P.C1.1.99.99.0.0", "+ACK")
    finally:
        c.close()
        s.stop()


def push():
    s = cr.Server()
    start_scenario()
    g = "push"
    c = Client(s.port)
    try:
        stream_create(c, g, {"name": "Q", "subjects": ["q.>"]})
        pub(c, g, "msg 1", "q.1", "one")
        out = c.sub("out.q")
        c.flush()
        create(c, g, "push hb fc", "Q", {"durable_name": "PQ", "deliver_subject": "out.q",
                                         "ack_policy": "explicit",
                                         "idle_heartbeat": 300_000_000, "flow_control": True})
        watch(c, g, "deliveries and heartbeats", "out.q", 0.8, out)
        info(c, g, "PQ info", "Q", "PQ")
    finally:
        c.close()
        s.stop()


def workqueue():
    s = cr.Server()
    start_scenario()
    g = "workqueue"
    c = Client(s.port)
    try:
        stream_create(c, g, {"name": "WQ", "subjects": ["wq.>"], "retention": "workqueue"})
        create(c, g, "W", "WQ", {"durable_name": "W", "ack_policy": "explicit"})
        pub(c, g, "msg 1", "wq.a", "1")
        pub(c, g, "msg 2", "wq.b", "2")
        m = pull(c, g, "pull 2", "WQ", "W", {"batch": 2, "no_wait": True}, wait=0.3, want=2)
        ack(c, g, "ack 2", m[1]["reply"], "+ACK")
        req(c, g, "stream info after ack", "$JS.API.STREAM.INFO.WQ", "")
        info(c, g, "W info", "WQ", "W")
    finally:
        c.close()
        s.stop()


def main():
    choiros()
    validation()
    pulls()
    push()
    workqueue()
    with open(OUT, "w") as f:
        json.dump(RECORDS, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote %d records to %s" % (len(RECORDS), os.path.relpath(OUT)))


if __name__ == "__main__":
    sys.exit(main())
