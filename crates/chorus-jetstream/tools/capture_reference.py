#!/usr/bin/env python3
"""Record how the reference nats-server answers JetStream API requests and publishes.

Runs ~/go/bin/nats-server (v2.15.2) with JetStream on a free loopback port and a temporary
store directory, sends the scenarios below, and writes every request/response pair to
tests/fixtures/reference.json. Requests made by the `nats` CLI (v0.5.0) are captured byte for
byte through a small logging TCP proxy between the CLI and the server.

The fixtures are data, not expectations written by hand: tests/reference.rs replays them
through chorus-jetstream and compares. Re-run after changing scenarios:

    python3 crates/chorus-jetstream/tools/capture_reference.py

Each group runs against a fresh server so groups do not see each other's streams.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "reference.json")
SERVER = os.path.expanduser("~/go/bin/nats-server")
CLI = os.path.expanduser("~/go/bin/nats")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, conf_extra=None):
        self.dir = tempfile.mkdtemp(prefix="chorus-js-ref-")
        self.port = free_port()
        sd = os.path.join(self.dir, "js")
        if conf_extra is None:
            args = ["-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", sd]
        else:
            conf = os.path.join(self.dir, "server.conf")
            with open(conf, "w") as f:
                f.write(conf_extra.replace("$PORT", str(self.port)).replace("$SD", sd))
            args = ["-c", conf]
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen([SERVER] + args, stdout=self.log, stderr=self.log)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Conn:
    """A minimal NATS client: enough for request/reply with headers."""

    def __init__(self, port, user=None, password=None):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
        self.readline()  # INFO
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                   "protocol": 1, "lang": "python-capture", "version": "0"}
        if user:
            connect["user"], connect["pass"] = user, password
        self.sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nSUB _R.> 1\r\nPING\r\n")
        while self.readline() != b"PONG":
            pass
        self.n = 0

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

    def request(self, subject, body=b"", headers=None, replies=1, timeout=1.0):
        """Returns a list of (headers, body) replies (bytes or None for headers)."""
        self.n += 1
        reply = "_R.%d" % self.n
        if isinstance(body, str):
            body = body.encode()
        if headers is None:
            self.sock.sendall(b"PUB %s %s %d\r\n" % (subject.encode(), reply.encode(), len(body))
                              + body + b"\r\n")
        else:
            hdr = headers.encode() if isinstance(headers, str) else headers
            self.sock.sendall(b"HPUB %s %s %d %d\r\n" % (subject.encode(), reply.encode(), len(hdr),
                                                         len(hdr) + len(body)) + hdr + body + b"\r\n")
        out = []
        self.sock.settimeout(timeout)
        try:
            while len(out) < replies:
                line = self.readline()
                if line == b"PING":
                    self.sock.sendall(b"PONG\r\n")
                    continue
                parts = line.split(b" ")
                if parts[0] == b"MSG":
                    data = self.readn(int(parts[-1]))
                    if parts[1].decode() == reply:
                        out.append((None, data))
                elif parts[0] == b"HMSG":
                    hlen, tlen = int(parts[-2]), int(parts[-1])
                    data = self.readn(tlen)
                    if parts[1].decode() == reply:
                        out.append((data[:hlen], data[hlen:]))
        except socket.timeout:
            pass
        finally:
            self.sock.settimeout(None)
        return out

    def close(self):
        self.sock.close()


RECORDS = []


def record(group, note, subject, body, headers=None, replies=None, source="raw"):
    rec = {"group": group, "note": note, "source": source, "subject": subject,
           "headers": headers, "body": body, "replies": []}
    for h, b in replies or []:
        rec["replies"].append({"headers": h.decode() if h is not None else None,
                               "body": b.decode("utf-8", "surrogateescape")})
    RECORDS.append(rec)


def req(conn, group, note, subject, body="", headers=None, replies=1, timeout=1.0):
    if not isinstance(body, str):
        body = json.dumps(body, separators=(",", ":"))
    got = conn.request(subject, body, headers, replies=replies, timeout=timeout)
    record(group, note, subject, body, headers, got)
    return got


def create(conn, group, note, cfg, subject_name=None):
    name = subject_name if subject_name is not None else cfg.get("name", "")
    return req(conn, group, note, "$JS.API.STREAM.CREATE." + name, cfg)


def update(conn, group, note, cfg, subject_name=None):
    name = subject_name if subject_name is not None else cfg.get("name", "")
    return req(conn, group, note, "$JS.API.STREAM.UPDATE." + name, cfg)


def delete(conn, group, name):
    return req(conn, group, "delete " + name, "$JS.API.STREAM.DELETE." + name, "")


def pub(conn, group, note, subject, body="", headers=None):
    got = conn.request(subject, body, headers, replies=1, timeout=1.0)
    record(group, note, subject, body, headers, got)
    return got


def hdrs(*pairs):
    s = "NATS/1.0\r\n"
    for k, v in pairs:
        s += "%s: %s\r\n" % (k, v)
    return s + "\r\n"


# --- The nats CLI through a logging proxy -------------------------------------------------------

class Proxy:
    """Forwards one port to the server and logs PUB/HPUB and MSG/HMSG frames per direction."""

    def __init__(self, upstream_port):
        self.up = upstream_port
        self.port = free_port()
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", self.port))
        self.lsock.listen(8)
        self.events = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.up))
            threading.Thread(target=self.pump, args=(c, u, "c2s"), daemon=True).start()
            threading.Thread(target=self.pump, args=(u, c, "s2c"), daemon=True).start()

    def pump(self, src, dst, direction):
        buf = b""
        while True:
            try:
                chunk = src.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            dst.sendall(chunk)
            buf += chunk
            buf = self.parse(buf, direction)

    def parse(self, buf, direction):
        while b"\r\n" in buf:
            line, rest = buf.split(b"\r\n", 1)
            parts = line.split(b" ")
            op = parts[0].upper()
            if op in (b"PUB", b"HPUB", b"MSG", b"HMSG"):
                total = int(parts[-1])
                hlen = int(parts[-2]) if op in (b"HPUB", b"HMSG") else 0
                if len(rest) < total + 2:
                    return buf
                data, buf = rest[:total], rest[total + 2:]
                subj = parts[1].decode()
                if op in (b"PUB", b"HPUB"):
                    reply = parts[2].decode() if len(parts) == (5 if op == b"HPUB" else 4) else None
                else:
                    reply = parts[3].decode() if len(parts) == (6 if op == b"HMSG" else 5) else None
                with self.lock:
                    self.events.append({"dir": direction, "subject": subj, "reply": reply,
                                        "headers": data[:hlen].decode() if hlen else None,
                                        "body": data[hlen:].decode("utf-8", "surrogateescape")})
            else:
                buf = rest
        return buf

    def close(self):
        self.lsock.close()


def cli(server, group, note, *args, command=None, source="nats-cli"):
    proxy = Proxy(server.port)
    env = dict(os.environ, NATS_URL="nats://127.0.0.1:%d" % proxy.port, NATS_CONTEXT="",
               HOME=server.dir)
    cmd = command if command is not None else [CLI] + list(args)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
    time.sleep(0.2)
    proxy.close()
    with proxy.lock:
        events = list(proxy.events)
    # Keep what the CLI itself said when it failed: some seed commands never reach the server.
    if p.returncode != 0:
        RECORDS.append({"group": group, "note": note, "source": source + "-exit",
                        "args": list(args), "exit_code": p.returncode,
                        "stderr": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""})
    for ev in events:
        if ev["dir"] != "c2s" or not ev["subject"].startswith("$JS.API."):
            continue
        replies = [(e["headers"].encode() if e["headers"] else None, e["body"].encode())
                   for e in events if e["dir"] == "s2c" and e["subject"] == ev["reply"]]
        record(group, note, ev["subject"], ev["body"], ev["headers"], replies, source=source)
    return p


# --- Scenarios ------------------------------------------------------------------------------------

def choiros_streams():
    """The five ChoirOS streams exactly as /work/shared/seed describes them, via the nats CLI."""
    s = Server()
    try:
        g = "choiros"
        cli(s, g, "USER_EVENTS as written (R3)", "stream", "add", "USER_EVENTS",
            "--subjects", "choiros.user.>", "--retention", "limits", "--max-age", "720h",
            "--storage", "file", "--replicas", "3", "--defaults")
        streams = [
            ("USER_EVENTS", ["--subjects", "choiros.user.>", "--retention", "limits",
                             "--max-age", "720h", "--storage", "file"]),
            ("AGENT_EVENTS", ["--subjects", "choiros.agent.>", "--retention", "limits",
                              "--max-age", "168h", "--storage", "file"]),
            ("CITATIONS", ["--subjects", "choiros.citation.>", "--retention", "limits",
                           "--max-age", "0", "--storage", "file"]),
            # The seed says `--retention workqueue`, which this CLI rejects (see below).
            ("AGENT_INBOX", ["--subjects", "choiros.agent.*.inbox", "--retention", "work",
                             "--max-msgs-per-subject", "1000", "--storage", "memory"]),
            ("ORCHESTRATOR", ["--subjects", "choiros.orchestrator.>", "--retention", "limits",
                              "--max-age", "24h", "--storage", "memory"]),
        ]
        cli(s, g, "AGENT_INBOX as written", "stream", "add", "AGENT_INBOX",
            "--subjects", "choiros.agent.*.inbox", "--retention", "workqueue",
            "--max-msgs-per-subject", "1000", "--storage", "memory", "--replicas", "1",
            "--defaults")
        for name, flags in streams:
            cli(s, g, name + " R1", "stream", "add", name, *flags, "--replicas", "1", "--defaults")
        cli(s, g, "kv add CONFIG", "kv", "add", "CONFIG", "--history", "5")
        cli(s, g, "kv add SESSIONS", "kv", "add", "SESSIONS", "--ttl", "1h", "--storage", "memory",
            "--max-value-size", "1024")
        cli(s, g, "kv add MARKERS", "kv", "add", "MARKERS", "--marker-ttl", "5s")
        cli(s, g, "object add FILES", "object", "add", "FILES")
        c = Conn(s.port)
        req(c, g, "names", "$JS.API.STREAM.NAMES", "")
        req(c, g, "names filtered", "$JS.API.STREAM.NAMES", {"subject": "choiros.agent.x.inbox"})
        req(c, g, "info", "$JS.API.INFO", "")
        c.close()

        g = "choiros-reverse"
        s.stop()
        s = Server()
        cli(s, g, "AGENT_INBOX first", "stream", "add", "AGENT_INBOX", "--subjects",
            "choiros.agent.*.inbox", "--retention", "work", "--max-msgs-per-subject", "1000",
            "--storage", "memory", "--replicas", "1", "--defaults")
        cli(s, g, "AGENT_EVENTS after", "stream", "add", "AGENT_EVENTS", "--subjects",
            "choiros.agent.>", "--retention", "limits", "--max-age", "168h", "--storage", "file",
            "--replicas", "1", "--defaults")
        cli(s, g, "AGENT_EVENTS explicit subjects", "stream", "add", "AGENT_EVENTS",
            "--subjects", "choiros.agent.*.started,choiros.agent.*.progress,"
            "choiros.agent.*.result,choiros.agent.*.error",
            "--retention", "limits", "--max-age", "168h", "--storage", "file", "--replicas", "1",
            "--defaults")
    finally:
        s.stop()


def natsjs():
    """KV buckets and ChoirOS streams as nats.js v3 creates them."""
    s = Server()
    try:
        script = os.path.join(HERE, "natsjs_streams.cjs")
        cli(s, "nats.js", "kv and streams", command=["node", script], source="nats.js")
    finally:
        s.stop()


def validation():
    s = Server()
    c = Conn(s.port)
    g = "validation"
    long = "N" * 256
    try:
        cases = [
            ("minimal", {"name": "V1"}),
            ("minimal again, same config", {"name": "V1"}),
            ("same name different config", {"name": "V1", "subjects": ["other"]}),
            ("name too long", {"name": long}),
            ("name 255", {"name": "M" * 255, "subjects": ["m255"]}),
            ("description too long", {"name": "VD", "description": "d" * 4097}),
            ("metadata too large", {"name": "VM", "metadata": {"k": "v" * (128 * 1024)}}),
            ("metadata ok", {"name": "VM2", "metadata": {"owner": "team", "a": "b"}}),
            ("bad retention", {"name": "VR", "retention": "forever"}),
            ("bad discard case", {"name": "VDC", "discard": "NEW", "subjects": ["vdc"]}),
            ("bad storage", {"name": "VS", "storage": "disk"}),
            ("bad compression", {"name": "VC", "compression": "zstd"}),
            ("unknown field", {"name": "VU", "bogus": 1}),
            ("not json", "{name"),
            ("replicas 6", {"name": "VRP", "num_replicas": 6}),
            ("replicas -1", {"name": "VRP", "num_replicas": -1}),
            ("replicas 3", {"name": "VRP", "num_replicas": 3}),
            ("negative limits default", {"name": "VN", "max_msgs": -5, "max_bytes": -7,
                                         "max_msgs_per_subject": -2, "max_msg_size": -3,
                                         "max_consumers": -9, "subjects": ["vn"]}),
            ("pedantic negative", {"name": "VP", "max_msgs": -5, "pedantic": True}),
            ("max_age negative", {"name": "VA", "max_age": -1}),
            ("max_age 50ms", {"name": "VA", "max_age": 50_000_000}),
            ("max_age 1s defaults dupes", {"name": "VA1", "max_age": 1_000_000_000,
                                           "subjects": ["va1"]}),
            ("max_age 1s pedantic", {"name": "VA2", "max_age": 1_000_000_000, "pedantic": True}),
            ("dupes > max_age", {"name": "VA3", "max_age": 1_000_000_000,
                                 "duplicate_window": 2_000_000_000}),
            ("dupes negative", {"name": "VA4", "duplicate_window": -5}),
            ("dupes 50ms", {"name": "VA5", "duplicate_window": 50_000_000}),
            ("dupes 10s", {"name": "VA6", "duplicate_window": 10_000_000_000,
                           "subjects": ["va6"]}),
            ("deny purge and rollup", {"name": "VR1", "deny_purge": True,
                                       "allow_rollup_hdrs": True}),
            ("counter discard new", {"name": "VK", "allow_msg_counter": True, "discard": "new"}),
            ("counter ttl", {"name": "VK", "allow_msg_counter": True, "allow_msg_ttl": True}),
            ("counter schedules", {"name": "VK", "allow_msg_counter": True,
                                   "allow_msg_schedules": True}),
            ("counter interest", {"name": "VK", "allow_msg_counter": True,
                                  "retention": "interest"}),
            ("counter ok", {"name": "VK", "allow_msg_counter": True, "subjects": ["vk.>"]}),
            ("discard new per subject w/o new", {"name": "VDN", "discard_new_per_subject": True,
                                                 "max_msgs_per_subject": 1}),
            ("discard new per subject w/o max", {"name": "VDN", "discard_new_per_subject": True,
                                                 "discard": "new"}),
            ("sdm ttl 500ms", {"name": "VT", "subject_delete_marker_ttl": 500_000_000}),
            ("sdm ttl negative", {"name": "VT", "subject_delete_marker_ttl": -1}),
            ("sdm ttl defaults ttl+rollup", {"name": "VT", "subject_delete_marker_ttl": 5_000_000_000,
                                             "deny_purge": True, "subjects": ["vt"]}),
            ("sdm ttl pedantic no ttl", {"name": "VT2", "subject_delete_marker_ttl": 5_000_000_000,
                                         "pedantic": True}),
            ("schedules discard new", {"name": "VS1", "allow_msg_schedules": True,
                                       "discard": "new"}),
            ("schedules default rollup", {"name": "VS2", "allow_msg_schedules": True,
                                          "subjects": ["vs2.>"]}),
            ("async memory", {"name": "VPM", "persist_mode": "async", "storage": "memory"}),
            ("async atomic", {"name": "VPM", "persist_mode": "async", "allow_atomic": True}),
            ("async ok", {"name": "VPM", "persist_mode": "async", "subjects": ["vpm"]}),
            ("bad persist mode", {"name": "VPM2", "persist_mode": "later"}),
            ("ttl and batch flags", {"name": "VF", "allow_msg_ttl": True, "allow_atomic": True,
                                     "allow_batched": True, "subjects": ["vf"]}),
            ("invalid subject", {"name": "VSJ", "subjects": ["foo..bar"]}),
            ("duplicate subjects", {"name": "VSJ", "subjects": ["a", "a"]}),
            ("overlapping own subjects", {"name": "VSJ", "subjects": ["foo.*", "foo.bar"]}),
            ("capture all w/o no_ack", {"name": "VSJ", "subjects": [">"]}),
            ("capture all no_ack", {"name": "VALL", "subjects": [">"], "no_ack": True}),
            ("delete VALL", None),
            ("js api subject", {"name": "VSJ", "subjects": ["$JS.API.>"]}),
            ("js event subject ok", {"name": "VJE", "subjects": ["$JS.EVENT.ADVISORY.>"]}),
            ("sys subject", {"name": "VSJ", "subjects": ["$SYS.>"]}),
            ("sys account subject ok", {"name": "VSA", "subjects": ["$SYS.ACCOUNT.>"]}),
            ("overlap with V1", {"name": "VO", "subjects": ["V1"]}),
            ("overlap wildcard", {"name": "VO", "subjects": ["*"]}),
            ("sealed create", {"name": "VSE", "sealed": True}),
            ("mirror_direct w/o mirror", {"name": "VMD", "mirror_direct": True}),
            ("placement preferred", {"name": "VPL", "placement": {"preferred": "x"}}),
            ("placement empty dropped", {"name": "VPL", "placement": {}, "subjects": ["vpl"]}),
            ("placement cluster kept", {"name": "VPL2", "placement": {"cluster": "c1"},
                                        "subjects": ["vpl2"]}),
            ("name mismatch", {"name": "VX1"}, "VX2"),
            ("path separator", {"name": "a\\b"}, "a\\b"),
            ("max_msg_size above max_payload", {"name": "VMS", "max_msg_size": 2 * 1024 * 1024,
                                                "subjects": ["vms"]}),
            ("first_seq", {"name": "VFS", "first_seq": 100, "subjects": ["vfs"]}),
            ("transform bad source", {"name": "VTR", "subject_transform": {"src": "a..b",
                                                                           "dest": "x"}}),
            ("transform bad dest", {"name": "VTR", "subject_transform": {"src": "a.*",
                                                                         "dest": "x.$2"}}),
            ("transform unknown fn", {"name": "VTR", "subject_transform": {
                "src": "a.*", "dest": "x.{{nope(1)}}"}}),
            ("transform ok", {"name": "VTR", "subjects": ["vtr.*"], "subject_transform": {
                "src": "vtr.*", "dest": "vtrx.{{wildcard(1)}}"}}),
            ("republish cycle", {"name": "VRE", "subjects": ["vre.>"],
                                 "republish": {"src": ">", "dest": "vre.x.>"}}),
            ("republish bad transform", {"name": "VRE", "subjects": ["vre.>"],
                                         "republish": {"src": "vre.*", "dest": "out.$3"}}),
            ("republish empty src", {"name": "VRE", "subjects": ["vre.>"],
                                     "republish": {"dest": "out.>"}}),
            ("mirror with subjects", {"name": "VMI", "mirror": {"name": "V1"}, "subjects": ["x"]}),
            ("mirror with first_seq", {"name": "VMI", "mirror": {"name": "V1"}, "first_seq": 5}),
            ("mirror with sources", {"name": "VMI", "mirror": {"name": "V1"},
                                     "sources": [{"name": "V1"}]}),
            ("mirror counter", {"name": "VMI", "mirror": {"name": "V1"},
                                "allow_msg_counter": True}),
            ("mirror bad name", {"name": "VMI", "mirror": {"name": "a.b"}}),
            ("mirror filter and transforms", {"name": "VMI", "mirror": {
                "name": "V1", "filter_subject": "V1",
                "subject_transforms": [{"src": "V1", "dest": "x"}]}}),
            ("mirror sdm", {"name": "VMI", "mirror": {"name": "V1"},
                            "subject_delete_marker_ttl": 5_000_000_000}),
            ("mirror overlapping transforms", {"name": "VMI", "mirror": {
                "name": "V1", "subject_transforms": [{"src": "a.*", "dest": ""},
                                                     {"src": "a.b", "dest": ""}]}}),
            ("mirror ok", {"name": "VMI", "mirror": {"name": "V1"}}),
            ("mirror update not allowed", None),
            ("source duplicate", {"name": "VSO", "sources": [{"name": "V1"}, {"name": "V1"}]}),
            ("source bad name", {"name": "VSO", "sources": [{"name": "a*"}]}),
            ("source filter and transforms", {"name": "VSO", "sources": [{
                "name": "V1", "filter_subject": "V1",
                "subject_transforms": [{"src": "V1", "dest": "x"}]}]}),
            ("source overlapping transforms", {"name": "VSO", "sources": [{
                "name": "V1", "subject_transforms": [{"src": "a.>", "dest": ""},
                                                     {"src": "a.b", "dest": ""}]}]}),
            ("source ok", {"name": "VSO", "sources": [{"name": "V1"}, {
                "name": "V1", "filter_subject": "V1", "opt_start_seq": 3}]}),
            ("external delivery wildcard", {"name": "VEX", "sources": [{
                "name": "X", "external": {"api": "$JS.hub.API", "deliver": "dlv.*"}}]}),
            ("external api overlaps", {"name": "VEX", "sources": [{
                "name": "X", "external": {"api": "$JS.API", "deliver": ""}}]}),
            ("external ok", {"name": "VEX", "sources": [{
                "name": "X", "external": {"api": "$JS.hub.API", "deliver": ""}}]}),
            ("source schedules", {"name": "VSS", "sources": [{"name": "V1"}],
                                  "allow_msg_schedules": True}),
            ("cycle via sources", {"name": "VSO2", "sources": [{"name": "VSO"}],
                                   "subjects": ["V1"]}),
            ("opt_start_time offset", {"name": "VOT", "sources": [{
                "name": "V1", "opt_start_time": "2024-01-02T03:04:05.5+02:00"}]}),
        ]
        for case in cases:
            note, cfg = case[0], case[1]
            if note == "delete VALL":
                delete(c, g, "VALL")
                continue
            if note == "mirror update not allowed":
                update(c, g, note, {"name": "VMI", "mirror": {"name": "VSO"}})
                continue
            if isinstance(cfg, str):
                req(c, g, note, "$JS.API.STREAM.CREATE.VJ", cfg)
                continue
            create(c, g, note, cfg, case[2] if len(case) > 2 else None)
        req(c, g, "names", "$JS.API.STREAM.NAMES", "")
        req(c, g, "names offset", "$JS.API.STREAM.NAMES", {"offset": 3})
        req(c, g, "info V1", "$JS.API.STREAM.INFO.V1", "")
        req(c, g, "info missing", "$JS.API.STREAM.INFO.NOPE", "")
        req(c, g, "delete missing", "$JS.API.STREAM.DELETE.NOPE", "")
        req(c, g, "delete with body", "$JS.API.STREAM.DELETE.V1", {"x": 1})
        req(c, g, "account info", "$JS.API.INFO", "")
    finally:
        c.close()
        s.stop()


def updates():
    s = Server()
    c = Conn(s.port)
    g = "update"
    try:
        base = {"name": "U", "subjects": ["u.>"], "storage": "file", "allow_msg_ttl": True,
                "deny_delete": True}
        create(c, g, "base", base)
        create(c, g, "other", {"name": "U2", "subjects": ["u2.>"]})
        create(c, g, "wq", {"name": "UW", "subjects": ["uw"], "retention": "workqueue"})
        update(c, g, "missing", {"name": "NOPE"})
        update(c, g, "name mismatch", dict(base, name="U"), "U2")
        update(c, g, "invalid name", {"name": "a.b"}, "U")
        update(c, g, "storage change", dict(base, storage="memory"))
        update(c, g, "to workqueue", dict(base, retention="workqueue"))
        update(c, g, "from workqueue", {"name": "UW", "subjects": ["uw"], "retention": "limits"})
        update(c, g, "to interest", dict(base, retention="interest"))
        update(c, g, "back to limits", dict(base, retention="limits"))
        update(c, g, "cancel deny delete", dict(base, deny_delete=False))
        update(c, g, "disable ttl", dict(base, allow_msg_ttl=False))
        update(c, g, "counter", dict(base, allow_msg_counter=True))
        update(c, g, "persist async", dict(base, persist_mode="async"))
        update(c, g, "replicas 3", dict(base, num_replicas=3))
        update(c, g, "overlap other", dict(base, subjects=["u.>", "u2.x"]))
        update(c, g, "add subject", dict(base, subjects=["u.>", "uu"], max_msgs=10,
                                         description="more"))
        update(c, g, "deny purge", dict(base, subjects=["u.>", "uu"], deny_purge=True))
        update(c, g, "cancel deny purge", dict(base, subjects=["u.>", "uu"], deny_purge=False))
        update(c, g, "seal", dict(base, subjects=["u.>", "uu"], deny_purge=True, sealed=True,
                                  max_age=3_600_000_000_000, allow_rollup_hdrs=False))
        update(c, g, "unseal", dict(base, subjects=["u.>", "uu"], deny_purge=True))
        pub(c, g, "publish to sealed", "u.a", "x")
        req(c, g, "purge sealed", "$JS.API.STREAM.PURGE.U", "")
        req(c, g, "msg delete sealed", "$JS.API.STREAM.MSG.DELETE.U", {"seq": 1})
    finally:
        c.close()
        s.stop()


def publishing():
    s = Server()
    c = Conn(s.port)
    g = "publish"
    try:
        create(c, g, "P", {"name": "P", "subjects": ["p.>"]})
        pub(c, g, "plain", "p.a", "one")
        pub(c, g, "msg id", "p.a", "two", hdrs(("Nats-Msg-Id", "m1")))
        pub(c, g, "dup msg id", "p.a", "two", hdrs(("Nats-Msg-Id", "m1")))
        pub(c, g, "expected stream wrong", "p.a", "x", hdrs(("Nats-Expected-Stream", "Q")))
        pub(c, g, "expected stream right", "p.a", "three", hdrs(("Nats-Expected-Stream", "P")))
        pub(c, g, "expected last seq wrong", "p.a", "x", hdrs(("Nats-Expected-Last-Sequence", "1")))
        pub(c, g, "expected last seq right", "p.b", "four",
            hdrs(("Nats-Expected-Last-Sequence", "3")))
        pub(c, g, "expected last subj seq 0 new", "p.new", "five",
            hdrs(("Nats-Expected-Last-Subject-Sequence", "0")))
        pub(c, g, "expected last subj seq 0 again", "p.new", "x",
            hdrs(("Nats-Expected-Last-Subject-Sequence", "0")))
        pub(c, g, "expected last subj seq other subject", "p.other", "six",
            hdrs(("Nats-Expected-Last-Subject-Sequence", "5"),
                 ("Nats-Expected-Last-Subject-Sequence-Subject", "p.new")))
        pub(c, g, "expected subj subject alone", "p.other", "x",
            hdrs(("Nats-Expected-Last-Subject-Sequence-Subject", "p.new")))
        pub(c, g, "expected last msg id wrong", "p.a", "x",
            hdrs(("Nats-Expected-Last-Msg-Id", "zzz")))
        pub(c, g, "msg id m2", "p.a", "seven", hdrs(("Nats-Msg-Id", "m2")))
        pub(c, g, "expected last msg id wrong after id", "p.a", "x",
            hdrs(("Nats-Expected-Last-Msg-Id", "m1")))
        pub(c, g, "expected last msg id right", "p.a", "eight",
            hdrs(("Nats-Expected-Last-Msg-Id", "m2")))
        pub(c, g, "rollup not allowed", "p.a", "x", hdrs(("Nats-Rollup", "sub")))
        pub(c, g, "ttl not allowed", "p.a", "x", hdrs(("Nats-TTL", "5s")))
        pub(c, g, "incr not counter", "p.a", "", hdrs(("Nats-Incr", "1")))
        pub(c, g, "source header", "p.a", "x", hdrs(("Nats-Stream-Source", "X 1")))
        pub(c, g, "lowercase header is not a header", "p.a", "nine",
            hdrs(("nats-expected-stream", "Q")))
        pub(c, g, "junk last seq", "p.a", "x", hdrs(("Nats-Expected-Last-Sequence", "abc")))
        pub(c, g, "stream-wide dup with different subject", "p.z", "two",
            hdrs(("Nats-Msg-Id", "m1")))
        # Reads.
        req(c, g, "msg get seq", "$JS.API.STREAM.MSG.GET.P", {"seq": 2})
        req(c, g, "msg get last", "$JS.API.STREAM.MSG.GET.P", {"last_by_subj": "p.new"})
        req(c, g, "msg get next", "$JS.API.STREAM.MSG.GET.P", {"seq": 3, "next_by_subj": "p.a"})
        req(c, g, "msg get missing", "$JS.API.STREAM.MSG.GET.P", {"seq": 999})
        req(c, g, "msg get conflicting", "$JS.API.STREAM.MSG.GET.P",
            {"seq": 1, "last_by_subj": "p.a"})
        req(c, g, "msg get empty", "$JS.API.STREAM.MSG.GET.P", "")
        req(c, g, "msg get batch", "$JS.API.STREAM.MSG.GET.P", {"seq": 1, "batch": 2})
        req(c, g, "msg get no headers", "$JS.API.STREAM.MSG.GET.P", {"seq": 2, "no_hdr": True})
        req(c, g, "info", "$JS.API.STREAM.INFO.P", "")
        req(c, g, "info subjects", "$JS.API.STREAM.INFO.P", {"subjects_filter": ">"})
        req(c, g, "msg delete", "$JS.API.STREAM.MSG.DELETE.P", {"seq": 1})
        req(c, g, "msg delete no erase", "$JS.API.STREAM.MSG.DELETE.P", {"seq": 4, "no_erase": True})
        req(c, g, "msg delete again", "$JS.API.STREAM.MSG.DELETE.P", {"seq": 1})
        req(c, g, "msg delete empty", "$JS.API.STREAM.MSG.DELETE.P", "")
        req(c, g, "info deleted", "$JS.API.STREAM.INFO.P", {"deleted_details": True})
        req(c, g, "list", "$JS.API.STREAM.LIST", "")
        req(c, g, "purge seq+keep", "$JS.API.STREAM.PURGE.P", {"seq": 3, "keep": 1})
        req(c, g, "purge filter keep", "$JS.API.STREAM.PURGE.P", {"filter": "p.a", "keep": 1})
        req(c, g, "purge seq", "$JS.API.STREAM.PURGE.P", {"seq": 3})
        req(c, g, "purge all", "$JS.API.STREAM.PURGE.P", "")
        req(c, g, "info after purge", "$JS.API.STREAM.INFO.P", "")

        create(c, g, "limits stream", {"name": "PL", "subjects": ["pl.>"], "max_msg_size": 10,
                                       "max_msgs": 2, "discard": "new"})
        pub(c, g, "too big", "pl.a", "01234567890")
        pub(c, g, "header counts to size", "pl.a", "0123", hdrs(("X", "y")))
        pub(c, g, "fits 1", "pl.a", "0123456789")
        pub(c, g, "fits 2", "pl.b", "1")
        pub(c, g, "max msgs", "pl.c", "2")
        create(c, g, "bytes stream", {"name": "PB", "subjects": ["pb.>"], "max_bytes": 100,
                                      "discard": "new"})
        pub(c, g, "bytes 1", "pb.a", "x" * 40)
        pub(c, g, "bytes 2", "pb.a", "x" * 40)
        create(c, g, "per subject stream", {"name": "PS", "subjects": ["ps.>"],
                                            "max_msgs_per_subject": 1, "discard": "new",
                                            "discard_new_per_subject": True,
                                            "allow_rollup_hdrs": True})
        pub(c, g, "ps 1", "ps.a", "1")
        pub(c, g, "ps 2", "ps.a", "2")
        pub(c, g, "ps rollup passes", "ps.a", "3", hdrs(("Nats-Rollup", "sub")))
        pub(c, g, "ps other subject", "ps.b", "4")
        create(c, g, "rollup ttl stream", {"name": "PR", "subjects": ["pr.>"],
                                           "allow_rollup_hdrs": True, "allow_msg_ttl": True,
                                           "allow_direct": True})
        pub(c, g, "pr 1", "pr.a", "1")
        pub(c, g, "pr 2", "pr.b", "2", hdrs(("Foo", "bar")))
        pub(c, g, "rollup sub", "pr.a", "3", hdrs(("Nats-Rollup", "sub")))
        pub(c, g, "rollup bogus", "pr.a", "x", hdrs(("Nats-Rollup", "bogus")))
        pub(c, g, "rollup upper", "pr.c", "4", hdrs(("Nats-Rollup", "SUB")))
        pub(c, g, "ttl 5s", "pr.t", "5", hdrs(("Nats-TTL", "5s")))
        pub(c, g, "ttl never", "pr.t", "6", hdrs(("Nats-TTL", "never")))
        pub(c, g, "ttl 10", "pr.t", "7", hdrs(("Nats-TTL", "10")))
        pub(c, g, "ttl 500ms", "pr.t", "x", hdrs(("Nats-TTL", "500ms")))
        pub(c, g, "ttl junk", "pr.t", "x", hdrs(("Nats-TTL", "abc")))
        pub(c, g, "ttl 0", "pr.t", "8", hdrs(("Nats-TTL", "0")))
        pub(c, g, "ttl 1h30m", "pr.t", "9", hdrs(("Nats-TTL", "1h30m")))
        req(c, g, "info pr", "$JS.API.STREAM.INFO.PR", "")
        req(c, g, "direct seq", "$JS.API.DIRECT.GET.PR", {"seq": 2})
        req(c, g, "direct last", "$JS.API.DIRECT.GET.PR", {"last_by_subj": "pr.t"})
        req(c, g, "direct subject form", "$JS.API.DIRECT.GET.PR.pr.b", "")
        req(c, g, "direct missing", "$JS.API.DIRECT.GET.PR", {"seq": 999})
        req(c, g, "direct empty", "$JS.API.DIRECT.GET.PR", "")
        req(c, g, "direct bad", "$JS.API.DIRECT.GET.PR", {"seq": 1, "last_by_subj": "pr.a"})
        req(c, g, "direct batch", "$JS.API.DIRECT.GET.PR", {"seq": 1, "batch": 3}, replies=4)
        req(c, g, "direct multi", "$JS.API.DIRECT.GET.PR", {"multi_last": ["pr.*"]}, replies=8)
        req(c, g, "direct no hdr", "$JS.API.DIRECT.GET.PR", {"seq": 2, "no_hdr": True})
        create(c, g, "counter stream", {"name": "PC", "subjects": ["pc.>"],
                                        "allow_msg_counter": True})
        pub(c, g, "counter incr", "pc.a", "", hdrs(("Nats-Incr", "5")))
        pub(c, g, "counter incr again", "pc.a", "", hdrs(("Nats-Incr", "-2")))
        pub(c, g, "counter missing incr", "pc.a", "x")
        pub(c, g, "counter payload", "pc.a", "x", hdrs(("Nats-Incr", "1")))
        pub(c, g, "counter bad incr", "pc.a", "", hdrs(("Nats-Incr", "one")))
        pub(c, g, "counter with expected", "pc.a", "", hdrs(("Nats-Incr", "1"),
                                                             ("Nats-Expected-Last-Sequence", "2")))
    finally:
        c.close()
        s.stop()


LIMITS_CONF = """
listen: 127.0.0.1:$PORT
jetstream {
  store_dir: "$SD"
  max_memory_store: 64MB
  max_file_store: 256MB
  limits { duplicate_window: "1m" }
}
accounts {
  A {
    jetstream {
      max_mem: 1MB
      max_file: 10MB
      max_streams: 5
      max_consumers: 5
      max_bytes_required: true
      store_max_stream_bytes: 8MB
    }
    users [ { user: a, password: a } ]
  }
}
"""


def limits():
    s = Server(LIMITS_CONF)
    c = Conn(s.port, "a", "a")
    g = "limits"
    try:
        req(c, g, "account info", "$JS.API.INFO", "")
        create(c, g, "no max_bytes", {"name": "L1"})
        create(c, g, "above stream max", {"name": "L1", "max_bytes": 9 * 1024 * 1024})
        create(c, g, "above account file", {"name": "L1", "max_bytes": 20 * 1024 * 1024,
                                            "storage": "memory"})
        create(c, g, "max consumers above", {"name": "L1", "max_bytes": 1024,
                                             "max_consumers": 10})
        create(c, g, "dupes default to limit", {"name": "L1", "max_bytes": 1024})
        create(c, g, "dupes above limit", {"name": "L2", "max_bytes": 1024,
                                           "duplicate_window": 120_000_000_000})
        create(c, g, "pedantic dupes", {"name": "L2", "max_bytes": 1024, "pedantic": True})
        create(c, g, "L2", {"name": "L2", "max_bytes": 1024 * 1024})
        create(c, g, "L3 reserve", {"name": "L3", "max_bytes": 8 * 1024 * 1024})
        create(c, g, "account file exhausted", {"name": "L4", "max_bytes": 1024 * 1024})
        update(c, g, "update grows past account", {"name": "L2", "max_bytes": 2 * 1024 * 1024})
        update(c, g, "update within", {"name": "L2", "max_bytes": 512 * 1024})
        create(c, g, "memory L5", {"name": "L5", "max_bytes": 1024, "storage": "memory"})
        create(c, g, "memory L6", {"name": "L6", "max_bytes": 1024, "storage": "memory"})
        create(c, g, "sixth stream", {"name": "L7", "max_bytes": 1024, "storage": "memory"})
        req(c, g, "account info after", "$JS.API.INFO", "")
    finally:
        c.close()
        s.stop()


def main():
    choiros_streams()
    natsjs()
    validation()
    updates()
    publishing()
    limits()
    with open(OUT, "w") as f:
        json.dump(RECORDS, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote %d records to %s" % (len(RECORDS), os.path.relpath(OUT)))


if __name__ == "__main__":
    sys.exit(main())
