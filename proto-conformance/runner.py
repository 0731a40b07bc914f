#!/usr/bin/env python3
"""Differential conformance runner: the same client scenarios against nats-server and Chorus.

For every scenario the runner starts a fresh reference server and a fresh Chorus with the same
generated config file on free loopback ports, runs the scenario against each, normalises what the
clients observed (ids, ports, versions, timestamps, inboxes...) and compares the two.

Scenario kinds (one directory each under scenarios/):
  raw/*.txt   raw protocol transcripts in a small DSL (see README.md)
  cli/*.txt   the `nats` CLI, one command per line (see README.md)
  js/*.mjs    nats.js v3 scripts printing one JSON observation
  rust/*.rs   async-nats scenarios compiled into the chorus-conformance binary
  browser/*.mjs  nats.ws inside Chromium (js/browser.mjs), over the WebSocket listener
  cluster/    `nodes: N` clusters: *.txt raw, *.cli CLI, *.mjs nats.js (see README.md);
              `mixed: true` adds a third variant, Chorus as n1 with nats-server n2..nN

Stdlib only (Python 3.11). Binaries come from the environment, set by ./run:
  NATS_SERVER_BIN  reference nats-server (default: GOBIN, GOPATH/bin, ~/go/bin, PATH)
  CHORUS_BIN       server under test (default: $CARGO_TARGET_DIR or target/, release/chorus)
  NATS_BIN         nats CLI (found like nats-server)     NODE_BIN  node (default: node)
  CONFORMANCE_RUST_BIN  chorus-conformance binary (default: target dir, debug/)
  CHROMIUM_BIN     browser for browser/ scenarios (default: /usr/bin/chromium)
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

ROOT = Path(__file__).resolve().parent
SCENARIOS = ROOT / "scenarios"
WORK = ROOT / ".work"
KINDS = ("raw", "cli", "js", "rust", "browser", "cluster")
REF_LABEL = "nats-server"
SUT_LABEL = "chorus"
MIXED_LABEL = "mixed"  # a cluster with Chorus as n1 and nats-server as the other nodes

DEFAULT_TIMEOUT = {"raw": 20.0, "cli": 60.0, "js": 60.0, "rust": 60.0, "browser": 90.0}
CLUSTER_TIMEOUT = 60.0  # any DSL with `nodes:` > 1: starting, killing, re-meshing take time
# The test PKI of chorus-server's tests: wss scenarios use its server certificate.
CERTS = ROOT.parent / "crates" / "chorus-server" / "tests" / "certs"
STEP_TIMEOUT = 5.0  # one barrier, one INFO, one CLI await: longer means the server hung
QUIET_MS = 300  # a quiet period only ever ends reads where the server is expected to stay silent


class ScenarioSyntaxError(Exception):
    """The scenario file itself is malformed: always reported as a broken scenario."""


class ScenarioAbort(Exception):
    """The run cannot go on (a hung server, a dead connection the script still needs)."""


class ServerStartError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    # Bind to port 0 and release it. Another process could take the port before the server
    # binds it; that shows as a start failure, never as a wrong result.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_listening(port: int) -> bool | None:
    """Whether 127.0.0.1:port is in LISTEN state, read from /proc so no client connection is
    made (a probe connection would count against max_connections). None if /proc is absent."""
    want = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[1] == want and parts[3] == "0A":
                    return True
        return False
    except OSError:
        return None


LIVE_SERVERS: set[Server] = set()


class Server:
    """One server process on free loopback ports, killed by its own pid on stop()."""

    def __init__(self, label: str, binary: str, workdir: Path):
        self.label = label
        self.binary = binary
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.monitor_port = 0
        self.ws_port = 0  # set from the scenario's config (browser scenarios)
        self.cluster_port = 0  # cluster nodes: the route listener, also waited for at start
        self.fixed_ports = False  # cluster nodes: all ports picked up front (routes need them)
        self.log_path = workdir / f"{label}.log"
        self.starts: list[tuple[Path, list[str]]] = []

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    def start(self, config: Path, flags: list[str], deadline: float, same_ports: bool = False) -> None:
        if not same_ports and not self.fixed_ports:
            self.port = free_port()
            while self.port == self.ws_port:
                self.port = free_port()
            self.monitor_port = free_port()
            while self.monitor_port in (self.port, self.ws_port):
                self.monitor_port = free_port()
        self.starts.append((config, list(flags)))
        extra = list(flags)
        if ("-js" in extra or "--jetstream" in extra) and "-sd" not in extra:
            extra += ["-sd", str(self.workdir / f"{self.label}-store")]
        cmd = [
            self.binary, "-c", str(config), "-a", "127.0.0.1",
            "-p", str(self.port), "-m", str(self.monitor_port), *extra,
        ]  # fmt: skip
        log = open(self.log_path, "ab" if self.starts[:-1] else "wb")
        log.write(f"# {shlex.join(cmd)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=self.workdir, start_new_session=True,
        )  # fmt: skip
        log.close()
        LIVE_SERVERS.add(self)
        while True:
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"{self.label} exited with {self.proc.returncode} at start: {self.log_tail()}"
                )
            ports = [self.port] + [p for p in (self.ws_port, self.cluster_port) if p]
            up = all(is_listening(p) for p in ports) if is_listening(self.port) is not None else None
            if up is None:  # no /proc: fall back to a probe connection
                try:
                    for p in ports:
                        socket.create_connection(("127.0.0.1", p), timeout=0.2).close()
                    up = True
                except OSError:
                    up = False
            if up:
                return
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{self.label} not listening on {self.port}: {self.log_tail()}"
                )
            time.sleep(0.01)

    def restart(self, deadline: float) -> None:
        """Stop, then start again with the same config, flags and ports (clients reconnect)."""
        config, flags = self.starts[-1]
        self.stop()
        self.start(config, flags, deadline, same_ports=True)

    def kill(self) -> None:
        """SIGKILL, as a scenario step (no shutdown: the peers see the routes drop). proc is
        None afterwards, so the end-of-scenario crash check passes it over."""
        proc, self.proc = self.proc, None
        LIVE_SERVERS.discard(self)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)

    def log_tail(self, n: int = 6) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-n:]) or "(empty log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        LIVE_SERVERS.discard(self)
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.terminate()
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass


def stop_all_servers() -> None:
    for s in list(LIVE_SERVERS):
        s.stop()


MESH_TIMEOUT = 10.0  # a cluster forming, or re-forming after a restart
JS_TIMEOUT = 30.0  # a JetStream meta leader (nats-server: 4-9 s election timeouts) or stream leader
ROUTES_MODES = ("all", "seed", "n1")


class ClusterError(Exception):
    """The cluster did not form (or re-form) in time, or a control step could not be done."""


class Cluster:
    """N servers of one variant forming one cluster (`nodes: N`): node k is server_name nK with
    its own client, monitor and cluster ports, all picked before any node starts (every node's
    config lists the others' cluster URLs). Each node gets its own config file: `server_name`,
    the scenario's config, then the generated `cluster { }` block."""

    def __init__(self, sc: Scenario, binaries: list[str], workdir: Path):
        self.sc = sc
        self.workdir = workdir
        self.nodes: list[Server] = []
        taken: set[int] = set()

        def pick() -> int:
            port = free_port()
            while port in taken:
                port = free_port()
            taken.add(port)
            return port

        for k, binary in enumerate(binaries, 1):
            node = Server(f"n{k}", binary, workdir)
            node.port, node.monitor_port, node.cluster_port = pick(), pick(), pick()
            node.fixed_ports = True
            self.nodes.append(node)

    def config_text(self, k: int) -> str:
        sc = self.sc
        creds = f"{sc.route_credentials}@" if sc.route_credentials else ""
        urls = [f"nats://{creds}127.0.0.1:{n.cluster_port}" for n in self.nodes]
        if sc.routes_mode == "seed":  # n1 lists nobody, the others only n1: the rest is gossip
            urls = [] if k == 1 else urls[:1]
        elif sc.routes_mode == "n1":  # n1 lists the others, they list nobody
            urls = urls[1:] if k == 1 else []
        node = self.nodes[k - 1]
        extra = "".join(f"  {line}\n" for line in sc.cluster_lines)
        return (
            f"# generated by proto-conformance for {sc.id}, node n{k}\n"
            f"server_name: n{k}\n{sc.config}"
            f"cluster {{\n  name: {sc.cluster_name}\n  listen: 127.0.0.1:{node.cluster_port}\n"
            f"  routes: [{', '.join(urls)}]\n{extra}}}\n"
        )

    def start(self) -> None:
        for k, node in enumerate(self.nodes, 1):
            config = self.workdir / f"n{k}.conf"
            config.write_text(self.config_text(k))
            node.start(config, self.sc.flags, time.monotonic() + 10)
        self.await_mesh()

    def node(self, name: str) -> Server:
        m = re.fullmatch(r"n(\d+)", name)
        if not m or not 1 <= int(m.group(1)) <= len(self.nodes):
            raise ScenarioSyntaxError(f"no node {name!r} (nodes are n1..n{len(self.nodes)})")
        return self.nodes[int(m.group(1)) - 1]

    def routes_per_remote(self) -> int:
        """Route connections to each peer once formed: the pool (cluster `pool_size`, default 3)
        plus the pinned $SYS connection; one connection with `pool_size: -1`."""
        pool = 3
        for line in self.sc.cluster_lines:
            m = re.search(r"\bpool_size\s*[:=]\s*(-?\d+)", line)
            if m:
                pool = int(m.group(1))
        return 1 if pool < 1 else pool + 1

    def await_mesh(self, timeout: float = MESH_TIMEOUT) -> None:
        """Until every live node has all other live nodes as remotes, with all their route
        connections up (/varz `remotes` and `routes`)."""
        live = [n for n in self.nodes if n.proc is not None]
        want_remotes = len(live) - 1
        want_routes = want_remotes * self.routes_per_remote()
        deadline = time.monotonic() + timeout
        while True:
            state = []
            for n in live:
                try:
                    varz = http_json(n.monitor_url + "/varz")
                    state.append((n.label, varz.get("remotes"), varz.get("routes")))
                except (OSError, ValueError, urllib.error.URLError) as e:
                    state.append((n.label, f"monitor: {e}", None))
            if all(r == want_remotes and c == want_routes for _, r, c in state):
                return
            if time.monotonic() > deadline:
                got = ", ".join(f"{lbl} remotes={r} routes={c}" for lbl, r, c in state)
                raise ClusterError(
                    f"cluster did not form within {timeout:g}s: {got} "
                    f"(want remotes={want_remotes} routes={want_routes} on each)"
                )
            time.sleep(0.05)

    def await_interest(self, name: str, subject: str, count: int, absent: bool) -> None:
        """Until `count` distinct remote servers have a route subscription on `subject` as
        `name` sees it (/routez?subs=1), or with `absent` until none has."""
        node = self.node(name)
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            have: set[str] = set()
            try:
                routez = http_json(node.monitor_url + "/routez?subs=1")
                for r in routez.get("routes") or []:
                    if subject in (r.get("subscriptions_list") or []):
                        have.add(str(r.get("remote_id") or r.get("remote_name")))
                err = ""
            except (OSError, ValueError, urllib.error.URLError) as e:
                err = f" (monitor: {e})"
            if not err and (not have if absent else len(have) >= count):
                return
            if time.monotonic() > deadline:
                verb = "await-no-interest" if absent else "await-interest"
                raise ClusterError(
                    f"{verb} {name} {subject}: timed out, {len(have)} remote(s) with interest"
                    f"{err}"
                )
            time.sleep(0.02)

    def await_jetstream(self, stream: str | None = None) -> None:
        """Until every live node's /jsz names a meta leader with all nodes in the meta group
        (or, with `stream`, until a live node reports a live leader for that stream)."""
        live = [n for n in self.nodes if n.proc is not None]
        names = {f"n{k + 1}" for k, n in enumerate(self.nodes) if n.proc is not None}
        deadline = time.monotonic() + JS_TIMEOUT
        while True:
            state = []
            for n in live:
                path = "/jsz?streams=true" if stream else "/jsz"
                try:
                    jsz = http_json(n.monitor_url + path)
                except (OSError, ValueError, urllib.error.URLError) as e:
                    state.append((n.label, f"monitor: {e}"))
                    continue
                if stream is None:
                    meta = jsz.get("meta_cluster") or {}
                    ok = meta.get("leader") in names and meta.get("cluster_size") == len(self.nodes)
                    state.append((n.label, "ok" if ok else f"meta {meta}"))
                else:
                    leaders = {
                        (s.get("cluster") or {}).get("leader")
                        for a in jsz.get("account_details") or []
                        for s in a.get("stream_detail") or []
                        if s.get("name") == stream
                    }
                    state.append((n.label, "ok" if leaders & names else f"leaders {leaders}"))
            if stream is None and all(v == "ok" for _, v in state):
                return
            if stream is not None and any(v == "ok" for _, v in state):
                return
            if time.monotonic() > deadline:
                got = ", ".join(f"{lbl}: {v}" for lbl, v in state)
                what = f"a leader for stream {stream}" if stream else "a JetStream meta leader"
                raise ClusterError(f"no {what} within {JS_TIMEOUT:g}s: {got}")
            time.sleep(0.1)

    def control(self, words: list[str]) -> None:
        """The cluster steps every kind shares; raises ClusterError when one cannot be done."""
        verb, args = words[0], words[1:]
        if verb in ("kill", "restart") and len(args) == 1:
            node = self.node(args[0])
            if verb == "kill":
                node.kill()
                return
            config, flags = node.starts[-1]
            node.stop()
            try:
                node.start(config, flags, time.monotonic() + 10, same_ports=True)
            except ServerStartError as e:
                raise ClusterError(f"restart {args[0]}: {e}") from None
        elif verb == "await-mesh" and not args:
            self.await_mesh()
        elif verb == "await-jetstream" and len(args) <= 1:
            self.await_jetstream(args[0] if args else None)
        elif verb in ("await-interest", "await-no-interest") and len(args) in (2, 3):
            absent = verb == "await-no-interest"
            if absent and len(args) == 3:
                raise ScenarioSyntaxError("await-no-interest NODE SUBJECT")
            self.await_interest(args[0], args[1], int(args[2]) if len(args) == 3 else 1, absent)
        else:
            raise ScenarioSyntaxError(f"cannot parse cluster step {' '.join(words)!r}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


CONTROL_VERBS = (
    "kill",
    "restart",
    "await-mesh",
    "await-jetstream",
    "await-interest",
    "await-no-interest",
)


def http_json(url: str, timeout: float = 1.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


# --------------------------------------------------------------------------------------------
# Normalisation

# Keys whose values differ between any two runs or any two implementations by design.
VOLATILE_KEYS = {
    "server_id", "server_name", "version", "go", "git_commit", "port", "client_id", "cid",
    "nonce", "xkey", "connect_urls", "ws_connect_urls", "leafnode_urls", "now", "start",
    "uptime", "rtt", "idle", "last_activity", "created", "ts", "time",
    # The JetStream API level follows `version`: Chorus reports the level of the nats-server
    # version it claims (2.11 -> 1), the reference its own.
    "api_lvl",
}  # fmt: skip

# In cluster scenarios (`nodes:`) server names are the generated n1..nN, the same for every
# variant, and connect_urls say which nodes a server advertises: both are compared (the URLs
# with ports normalised, sorted). What identifies a route connection is volatile.
CLUSTER_KEPT_KEYS = {"server_name", "connect_urls", "ws_connect_urls"}
CLUSTER_VOLATILE_KEYS = {"rid", "remote_id"}
SORTED_URL_KEYS = {"connect_urls", "ws_connect_urls"}

# Keys only Chorus sends, by design (its own version beside the nats-compatible `version`).
# Dropped before comparing; any other extra key is a difference.
EXTENSION_KEYS = {"chorus"}

SERVER_ID_RE = re.compile(r"\b[NX][A-Z2-7]{55}\b")
INBOX_RE = re.compile(r"_INBOX\.[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*")
ISO_TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
CLOCK_RE = re.compile(r"(?<![\d:])\d{2}:\d{2}:\d{2}(?:\.\d+)?(?![\d:])")
DURATION_RE = re.compile(r"(?<![\w.])(?:\d+(?:\.\d+)?(?:ns|µs|us|ms|h|m|s))+(?![A-Za-z])")


def normalise_text(text: str, ports: dict[int, str]) -> str:
    for port, name in ports.items():
        text = re.sub(rf"(?<!\d){port}(?!\d)", name, text)
    text = SERVER_ID_RE.sub("<server-id>", text)
    text = INBOX_RE.sub("_INBOX.<id>", text)
    text = ISO_TS_RE.sub("<timestamp>", text)
    text = CLOCK_RE.sub("<time>", text)
    text = DURATION_RE.sub("<duration>", text)
    return text


def normalise_json(value, ports: dict[int, str], cluster: bool = False):
    if isinstance(value, dict):
        volatile = (VOLATILE_KEYS - CLUSTER_KEPT_KEYS) | CLUSTER_VOLATILE_KEYS if cluster else VOLATILE_KEYS
        out = {}
        for k, v in value.items():
            if k in EXTENSION_KEYS:
                continue
            if k in volatile:
                out[k] = f"<{k}>"
            elif cluster and k in SORTED_URL_KEYS and isinstance(v, list):
                out[k] = sorted(normalise_json(u, ports, cluster) for u in v)
            else:
                out[k] = normalise_json(v, ports, cluster)
        return out
    if isinstance(value, list):
        return [normalise_json(v, ports, cluster) for v in value]
    if isinstance(value, str):
        return normalise_text(value, ports)
    if isinstance(value, int) and not isinstance(value, bool) and value in ports:
        return ports[value]  # a port number as a JSON number (/varz cluster_port, ...)
    return value


def json_lines(value) -> list[str]:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False).splitlines()


# --------------------------------------------------------------------------------------------
# Scenario results


@dataclass
class Outcome:
    """What one run of one scenario against one server observed."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # failed expects, errors, timeouts

    def problem(self, text: str) -> None:
        self.problems.append(text)
        self.lines.append(f"!! {text}")


@dataclass
class Scenario:
    kind: str
    name: str
    path: Path
    config: str = ""
    flags: list[str] = field(default_factory=list)
    timeout: float = 0.0
    skip: str | None = None  # reason, printed; only for things the environment lacks
    broken: str | None = None  # cannot run at all (e.g. its binary failed to build): a failure
    websocket: str = "ws"  # browser scenarios: "ws" or "wss" (TLS with the test PKI)
    ws_port: int = 0  # browser scenarios: the WebSocket port both servers get, in turn
    ws_config: str = ""  # browser scenarios: extra lines inside the websocket block
    runtime: str = "chromium"  # browser scenarios: "chromium" (nats.ws) or "node" (nats.js v3)
    runner: str = ""  # which DSL runs it: the kind, except in cluster/ (by file suffix)
    nodes: int = 1  # > 1: a cluster of that many servers per variant
    mixed: bool = False  # cluster: also run Chorus as n1 with nats-server as the other nodes
    cluster_name: str = "conformance"
    cluster_lines: list[str] = field(default_factory=list)  # extra lines in cluster { }
    routes_mode: str = "all"  # all | seed | n1: which nodes list which routes (ROUTES_MODES)
    route_credentials: str = ""  # user:pass the nodes put in their route URLs

    def __post_init__(self) -> None:
        self.runner = self.runner or self.kind

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass
class Context:
    server: Server  # node 1 of a cluster
    workdir: Path
    deadline: float
    verbose: bool
    cluster: Cluster | None = None

    @property
    def nodes(self) -> list[Server]:
        return self.cluster.nodes if self.cluster else [self.server]

    @property
    def ports(self) -> dict[int, str]:
        if self.cluster:
            ports = {}
            for k, n in enumerate(self.cluster.nodes, 1):
                ports[n.port] = f"<n{k}-port>"
                ports[n.monitor_port] = f"<n{k}-monitor-port>"
                ports[n.cluster_port] = f"<n{k}-cluster-port>"
            return ports
        ports = {self.server.port: "<port>", self.server.monitor_port: "<monitor-port>"}
        if self.server.ws_port:
            ports[self.server.ws_port] = "<ws-port>"
        return ports

    def normalise_json(self, value):
        return normalise_json(value, self.ports, cluster=self.cluster is not None)

    def control(self, words: list[str], where: str) -> None:
        """A cluster step (kill, restart, await-mesh, await-interest...): ScenarioAbort if it
        cannot be done, ScenarioSyntaxError outside a cluster scenario."""
        if self.cluster is None:
            raise ScenarioSyntaxError(f"{where}: {words[0]} needs a cluster (nodes: N)")
        try:
            self.cluster.control(words)
        except ClusterError as e:
            raise ScenarioAbort(f"{where}: {e}") from None

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def step_deadline(self, seconds: float = STEP_TIMEOUT) -> float:
        return min(self.deadline, time.monotonic() + seconds)


def parse_header_line(sc: Scenario, key: str, value: str) -> bool:
    """Directives every kind shares. Returns False for an unknown key."""
    if key == "config":
        sc.config += value + "\n"
    elif key == "flags":
        sc.flags += shlex.split(value)
    elif key == "timeout":
        sc.timeout = float(value)
    elif key == "nodes":
        if not value.isdigit() or int(value) < 1:
            raise ScenarioSyntaxError(f"nodes: {value!r} (a number of servers)")
        sc.nodes = int(value)
    elif key == "mixed":
        if value not in ("true", "false"):
            raise ScenarioSyntaxError(f"mixed: {value!r} (true or false)")
        sc.mixed = value == "true"
    elif key == "cluster":
        sc.cluster_lines.append(value)
    elif key == "cluster-name":
        sc.cluster_name = value
    elif key == "routes":
        if value not in ROUTES_MODES:
            raise ScenarioSyntaxError(f"routes: {value!r} (one of {', '.join(ROUTES_MODES)})")
        sc.routes_mode = value
    elif key == "route-credentials":
        if ":" not in value:
            raise ScenarioSyntaxError(f"route-credentials: {value!r} (user:password)")
        sc.route_credentials = value
    else:
        return False
    return True


HEADER_KEYS = (
    "config", "flags", "timeout",
    "nodes", "mixed", "cluster", "cluster-name", "routes", "route-credentials",
)  # fmt: skip


def is_header_line(line: str) -> bool:
    key, sep, _ = line.partition(":")
    return bool(sep) and key in HEADER_KEYS


def read_text_headers(sc: Scenario) -> None:
    """`config:`, `flags:` and `timeout:` lines of a raw or cli scenario, read once."""
    for line in sc.path.read_text().splitlines():
        s = line.strip()
        if is_header_line(s):
            key, _, value = s.partition(":")
            parse_header_line(sc, key, value.strip())


def load_sibling_conf(sc: Scenario) -> None:
    conf = sc.path.with_suffix(".conf")
    if conf.exists():
        sc.config = conf.read_text() + sc.config


# --------------------------------------------------------------------------------------------
# Raw protocol transcripts

ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\", "0": b"\0", "s": b" "}


def unescape(text: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out += ch.encode()
            i += 1
            continue
        if i + 1 >= len(text):
            raise ScenarioSyntaxError(f"dangling backslash in {text!r}")
        nxt = text[i + 1]
        if nxt in ESCAPES:
            out += ESCAPES[nxt]
            i += 2
        elif nxt == "x":
            try:
                out.append(int(text[i + 2 : i + 4], 16))
            except ValueError:
                raise ScenarioSyntaxError(f"bad \\x escape in {text!r}") from None
            i += 4
        else:
            raise ScenarioSyntaxError(f"unknown escape \\{nxt} in {text!r}")
    return bytes(out)


def escape(data: bytes) -> str:
    out = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif b == 0x0D:
            out.append("\\r")
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x09:
            out.append("\\t")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def payload_size(op: str, args: list[bytes]) -> int | None:
    """Payload length announced by a PUB/HPUB/MSG/HMSG control line, None if not parseable."""
    try:
        if op in ("PUB", "MSG", "HPUB", "HMSG") and args:
            return int(args[-1])
    except ValueError:
        return None
    return None


class Framer:
    """Splits a byte stream into protocol frames: control lines, and for messages the payload.

    Used for both directions: on what the client sends (to know whether an op is left half
    sent, whether CONNECT went out, how many PINGs were sent) and on what the server sends (so
    a PONG inside a payload is not taken for the barrier's PONG)."""

    def __init__(self, message_ops: tuple[str, ...]):
        self.message_ops = message_ops
        self.buf = b""
        self.need_payload: int | None = None

    def feed(self, data: bytes) -> list[tuple[bytes, bytes | None]]:
        """Returns complete frames as (control line, payload or None)."""
        self.buf += data
        frames = []
        while True:
            if self.need_payload is not None:
                n = self.need_payload
                if len(self.buf) < n + 2:
                    break
                ctrl, payload = self.pending_ctrl, self.buf[:n]
                # A payload not followed by CRLF is a protocol error; keep what follows as the
                # next frame so nothing the server sent disappears from the transcript.
                self.buf = self.buf[n + 2 :] if self.buf[n : n + 2] == b"\r\n" else self.buf[n:]
                self.need_payload = None
                frames.append((ctrl, payload))
                continue
            idx = self.buf.find(b"\r\n")
            if idx < 0:
                break
            line, self.buf = self.buf[:idx], self.buf[idx + 2 :]
            parts = line.split()
            op = parts[0].decode("latin1").upper() if parts else ""
            size = payload_size(op, parts[1:]) if op in self.message_ops else None
            if size is not None and size >= 0:
                self.pending_ctrl = line
                self.need_payload = size
                continue
            frames.append((line, None))
        return frames

    @property
    def partial(self) -> bool:
        return bool(self.buf) or self.need_payload is not None

    def flush_partial(self) -> bytes:
        rest = self.buf
        if self.need_payload is not None:
            rest = self.pending_ctrl + b"\r\n" + rest
        self.buf, self.need_payload = b"", None
        return rest


@dataclass
class RawStep:
    lineno: int
    conn: str
    verb: str  # send | connect | quiet | await-close | close | sleep | expect | mask
    data: bytes = b""
    text: str = ""
    mods: set[str] = field(default_factory=set)
    repeat: int = 1
    number: float = 0.0
    negate: bool = False
    node: int = 1  # cluster: the node the connection goes to (`@name/n2`)
    route: bool = False  # to that node's cluster (route) port instead (`@name/n2/route`)


CONN_RE = re.compile(r"^@([A-Za-z0-9_]+)(?:/n(\d+)(/route)?)?\s+")
SEND_RE = re.compile(r"^((?:[a-z]+|x\d+)(?:\s+(?:[a-z]+|x\d+))*\s+)?(>>|>)(?: (.*))?$")
SEND_MODS = {"bytewise", "nowait", "quiet"}


def parse_raw(sc: Scenario) -> list[RawStep]:
    steps: list[RawStep] = []
    # Where each connection goes: bound by its first mention (`@c2/n3`, default n1), for good.
    targets: dict[str, tuple[int, bool]] = {}
    for lineno, raw_line in enumerate(sc.path.read_text().splitlines(), 1):
        line = raw_line.rstrip("\n")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if is_header_line(stripped):
            continue
        where = f"{sc.path.name}:{lineno}"
        if stripped.split()[0] in CONTROL_VERBS:
            steps.append(RawStep(lineno, "", "control", text=stripped))
            continue
        conn = "c1"
        target: tuple[int, bool] | None = None
        m = CONN_RE.match(stripped)
        if m:
            conn = m.group(1)
            if m.group(2):
                target = (int(m.group(2)), bool(m.group(3)))
                if not 1 <= target[0] <= sc.nodes or (target[1] and sc.nodes < 2):
                    raise ScenarioSyntaxError(
                        f"{where}: @{conn}/n{target[0]}{'/route' if target[1] else ''}: "
                        f"the scenario has {sc.nodes} node(s)"
                        + ("" if sc.nodes > 1 else "; /route needs a cluster")
                    )
            stripped = stripped[m.end() :]
        # sleep and mask name no connection: they bind nothing.
        if stripped.split()[0] in ("sleep", "mask") and not m:
            bound = (1, False)
        else:
            bound = targets.setdefault(conn, target or (1, False))
        if target is not None and target != bound:
            raise ScenarioSyntaxError(f"{where}: @{conn} is already bound to n{bound[0]}")
        m = SEND_RE.match(stripped)
        if m:
            step = RawStep(lineno, conn, "send", node=bound[0], route=bound[1])
            for word in (m.group(1) or "").split():
                if word.startswith("x") and word[1:].isdigit():
                    step.repeat = int(word[1:])
                elif word in SEND_MODS:
                    step.mods.add(word)
                else:
                    raise ScenarioSyntaxError(f"{where}: unknown send modifier {word!r}")
            body = unescape(m.group(3) or "")
            step.data = body if m.group(2) == ">>" else body + b"\r\n"
            step.text = m.group(3) or ""
            steps.append(step)
            continue
        word, _, rest = stripped.partition(" ")
        rest = rest.strip()
        n_before = len(steps)
        if word in ("connect", "close"):
            steps.append(RawStep(lineno, conn, word))
        elif word == "await":
            if not rest:
                raise ScenarioSyntaxError(f"{where}: await needs a line or /regex/")
            steps.append(RawStep(lineno, conn, "await", text=rest))
        elif word in ("quiet", "sleep", "await-close"):
            default = {"quiet": QUIET_MS, "sleep": 0, "await-close": STEP_TIMEOUT}[word]
            try:
                number = float(rest) if rest else default
            except ValueError:
                raise ScenarioSyntaxError(f"{where}: {word} takes a number") from None
            steps.append(RawStep(lineno, conn, word, number=number))
        elif word == "expect":
            negate = rest.startswith("not ")
            if negate:
                rest = rest[4:].strip()
            if not rest:
                raise ScenarioSyntaxError(
                    f"{where}: expect needs a line, /regex/, closed or nothing"
                )
            steps.append(RawStep(lineno, conn, "expect", text=rest, negate=negate))
        elif word == "mask":
            m2 = re.fullmatch(r"/(.*)/\s*->\s*(.*)", rest)
            if not m2:
                raise ScenarioSyntaxError(f"{where}: mask takes /regex/ -> replacement")
            steps.append(RawStep(lineno, conn, "mask", text=m2.group(1), data=m2.group(2).encode()))
        else:
            raise ScenarioSyntaxError(f"{where}: cannot parse {raw_line!r}")
        for step in steps[n_before:]:
            step.node, step.route = bound
    return steps


def line_matches(text: str, line: str) -> bool:
    """An expect/await argument: `/REGEX/` searches, anything else is the exact line."""
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        return re.search(text[1:-1], line) is not None
    return text == line


class RawConn:
    def __init__(self, name: str, ctx: Context, node: int = 1, route: bool = False):
        self.name = name
        self.ctx = ctx
        self.node = node
        self.route = route
        self.sock: socket.socket | None = None
        self.closed = False  # the server closed (EOF or reset)
        self.sent = Framer(("PUB", "HPUB"))
        self.recv = Framer(("MSG", "HMSG"))
        self.connect_sent = False
        self.frames: list[tuple[bytes, bytes | None]] = []  # received, not yet recorded
        # Cumulative: the server answers every PING with one PONG, in order, so once as many
        # PONGs came back as PINGs went out, everything before the last PING is in.
        self.pings = 0
        self.pongs = 0
        # Frames that arrived after the end of the current step (behind the barrier's PONG, or
        # behind the INFO on connect): they go to the next recording, wherever TCP happened to
        # split the stream, so recordings do not depend on segment boundaries.
        self.carry: list[tuple[bytes, bytes | None]] = []
        self.cut_target = -1
        self.cut: int | None = None

    def open(self) -> None:
        server = self.ctx.nodes[self.node - 1]
        port = server.cluster_port if self.route else server.port
        try:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError as e:
            raise ScenarioAbort(f"{self.name}: cannot connect: {e}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def ready(self) -> bool:
        """Whether a PING can be slipped in as a barrier without changing what happens."""
        return (
            self.sock is not None
            and not self.closed
            and self.connect_sent
            and not self.sent.partial
        )

    def note_sent(self, data: bytes) -> None:
        for ctrl, _ in self.sent.feed(data):
            op = ctrl.split()[0].upper() if ctrl.split() else b""
            if op == b"CONNECT":
                self.connect_sent = True
            elif op == b"PING":
                self.pings += 1

    def send(self, data: bytes, bytewise: bool) -> None:
        assert self.sock is not None
        chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
        try:
            for chunk in chunks:
                self.sock.sendall(chunk)
                self.note_sent(chunk)
                if bytewise:
                    time.sleep(0.002)  # give the server a chance to read each byte on its own
        except OSError:
            # The server went away mid-send; the read side records the close.
            self.read_until(lambda: self.closed, time.monotonic() + 1.0)

    def _read_once(self, timeout: float) -> bool:
        """One recv. Returns False on timeout."""
        assert self.sock is not None
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except (TimeoutError, BlockingIOError):
            return False
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            data = b""
        if not data:
            rest = self.recv.flush_partial()
            if rest:
                self.frames.append((rest + b" <no CRLF>", None))
            self.frames.append((b"<closed>", None))
            self.closed = True
            return True
        for frame in self.recv.feed(data):
            self.frames.append(frame)
            if frame[1] is None and frame[0].strip().upper() == b"PONG":
                self.pongs += 1
                if self.pongs == self.cut_target:
                    self.cut = len(self.frames)
        return True

    def read_until(self, done: Callable[[], bool], deadline: float) -> bool:
        while not done():
            if self.closed:
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._read_once(left)
        return True

    def read_quiet(self, quiet_ms: float, deadline: float) -> None:
        while not self.closed and time.monotonic() < deadline:
            if not self._read_once(min(quiet_ms / 1000, deadline - time.monotonic())):
                return

    def barrier(self) -> None:
        """Two PINGs, read until both PONGs: everything the server queued for this connection
        before it saw them is in. Two, because a server may send more right after a PONG (the
        INFO with connect_info follows the first PONG); the second PONG puts that inside the
        step too. The barrier's own PONGs are taken out of the recording."""
        assert self.sock is not None
        self.pings += 2
        self.cut_target, self.cut = self.pings, None
        try:
            self.sock.sendall(b"PING\r\nPING\r\n")
        except OSError:
            pass
        if not self.read_until(lambda: self.pongs >= self.pings, self.ctx.step_deadline()):
            if not self.closed:
                self.frames.append((b"<timeout: no PONG within %ds>" % STEP_TIMEOUT, None))
                raise ScenarioAbort(f"{self.name}: server did not answer PING")
            return
        assert self.cut is not None
        head, self.carry = self.frames[: self.cut], self.frames[self.cut :] + self.carry
        strip = 2
        for i in range(len(head) - 1, -1, -1):
            ctrl, payload = head[i]
            if strip and payload is None and ctrl.strip().upper() == b"PONG":
                del head[i]
                strip -= 1
        self.frames = head

    def split_after_first(self) -> None:
        """Only the first frame belongs to this step (the INFO of a new connection)."""
        self.frames, self.carry = self.frames[:1], self.frames[1:] + self.carry

    def take(self, masks: list[tuple[re.Pattern, str]]) -> list[str]:
        """Renders and clears what was received. One publish fans out to the subscriptions of a
        connection in an order no server promises, so between two non-message frames messages
        are grouped by sid (stable: the order within one subscription is kept)."""
        out: list[str] = []
        run: list[tuple[str, list[str]]] = []  # (sid, rendered lines) of consecutive messages

        def flush_run() -> None:
            run.sort(key=lambda item: item[0])
            for _, rendered in run:
                out.extend(rendered)
            run.clear()

        for ctrl, payload in self.frames:
            if self.ctx.cluster and payload is None and ctrl.strip().upper() == b"PING":
                # The server's timer PINGs (nats-server's first RTT probe ~2 s after CONNECT):
                # cluster steps take seconds, so where one lands depends on timing.
                continue
            line = self.render_ctrl(ctrl)
            for pat, repl in masks:
                line = pat.sub(repl, line)
            if payload is None:
                flush_run()
                out.append(line)
                continue
            parts = line.split()
            sid = parts[2] if len(parts) > 2 else ""
            run.append((sid, [line, "  " + escape(payload)]))
        flush_run()
        self.frames, self.carry = self.carry, []
        return out

    def render_ctrl(self, ctrl: bytes) -> str:
        if ctrl[:5].upper() == b"INFO ":
            try:
                info = json.loads(ctrl[5:])
            except ValueError:
                return escape(ctrl)
            norm = self.ctx.normalise_json(info)
            return "INFO " + json.dumps(norm, sort_keys=True, separators=(",", ":"))
        return escape(ctrl)

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


def run_raw(sc: Scenario, ctx: Context) -> Outcome:
    steps = parse_raw(sc)
    out = Outcome()
    conns: dict[str, RawConn] = {}
    last: dict[str, list[str]] = {}  # latest recording per connection, what expect looks at
    masks: list[tuple[re.Pattern, str]] = []

    def record(conn: RawConn) -> None:
        lines = conn.take(masks)
        last[conn.name] = lines
        out.lines.extend(f"@{conn.name} < {ln}" for ln in lines)

    def get(name: str) -> RawConn:
        conn = conns.get(name)
        if conn is None:
            conn = conns[name] = RawConn(name, ctx, step.node, step.route)
            out.lines.append(f"@{name} connect")
            conn.open()
            # The INFO line arrives unasked; wait for exactly one line (or a close).
            if (
                not conn.read_until(lambda: bool(conn.frames), ctx.step_deadline())
                and not conn.closed
            ):
                conn.frames.append((b"<timeout: no INFO>", None))
                record(conn)
                raise ScenarioAbort(f"{name}: no INFO within {STEP_TIMEOUT:g}s")
            conn.split_after_first()
            record(conn)
        return conn

    def settle_others(acting: str | None) -> None:
        # In a cluster only the acting connection's node: a barrier on another node says
        # nothing about what is still on a route. Cross-node deliveries are waited for with
        # `@conn await`.
        node = conns[acting].node if acting in conns else 1
        for name, other in conns.items():
            if name != acting and other.ready and other.node == node:
                other.barrier()
                record(other)

    def rendered(conn: RawConn) -> list[str]:
        lines = []
        for ctrl, payload in conn.frames:
            line = conn.render_ctrl(ctrl)
            for pat, repl in masks:
                line = pat.sub(repl, line)
            lines.append(line)
            if payload is not None:
                lines.append("  " + escape(payload))
        return lines

    try:
        for step in steps:
            if time.monotonic() > ctx.deadline:
                raise ScenarioAbort("scenario timeout")
            if step.verb == "control":
                out.lines.append(step.text)
                words = step.text.split()
                ctx.control(words, f"{sc.path.name}:{step.lineno}")
                if words[0] == "kill":
                    # Its connections see the close now, not at some later step.
                    for other in conns.values():
                        if other.node == int(words[1][1:]) and other.sock and not other.closed:
                            other.read_until(lambda c=other: c.closed, ctx.step_deadline())
                            record(other)
                continue
            if step.verb == "sleep":
                out.lines.append(f"sleep {step.number:g}")
                time.sleep(step.number / 1000)
                continue
            if step.verb == "mask":
                masks.append((re.compile(step.text), step.data.decode()))
                continue
            if step.verb == "expect":
                check_expect(step, last.get(step.conn, []), out, sc)
                continue
            conn = get(step.conn)
            if step.verb == "connect":
                continue
            if step.verb == "close":
                out.lines.append(f"@{conn.name} close")
                conn.close()
                conn.closed = True
                settle_others(conn.name)
                continue
            if step.verb == "quiet":
                out.lines.append(f"@{conn.name} quiet")
                conn.read_quiet(step.number, ctx.step_deadline())
                record(conn)
                continue
            if step.verb == "await":
                # Until a line matching arrives (a delivery from another node), then the
                # barrier as after any step: whatever was queued before is in this recording.
                out.lines.append(f"@{conn.name} await {step.text}")
                found = conn.read_until(
                    lambda c=conn: any(line_matches(step.text, ln) for ln in rendered(c)),
                    ctx.step_deadline(),
                )
                if found and conn.ready:
                    conn.barrier()
                record(conn)
                if not found:
                    raise ScenarioAbort(
                        f"line {step.lineno}: await {step.text} on @{conn.name}: "
                        + ("connection closed" if conn.closed else f"nothing within {STEP_TIMEOUT:g}s")
                    )
                continue
            if step.verb == "await-close":
                out.lines.append(f"@{conn.name} await-close")
                if not conn.read_until(lambda c=conn: c.closed, ctx.step_deadline(step.number)):
                    conn.frames.append((b"<still open>", None))
                record(conn)
                continue
            # send
            shown = escape(step.data)
            prefix = " ".join(sorted(step.mods) + ([f"x{step.repeat}"] if step.repeat > 1 else []))
            out.lines.append(f"@{conn.name} {prefix + ' ' if prefix else ''}> {shown}")
            if conn.closed:
                out.lines.append(f"@{conn.name} <not sent: connection closed>")
                continue
            conn.send(step.data * step.repeat, "bytewise" in step.mods)
            if "nowait" in step.mods:
                continue
            if conn.ready and "quiet" not in step.mods:
                conn.barrier()
            else:
                conn.read_quiet(QUIET_MS, ctx.step_deadline())
            record(conn)
            settle_others(conn.name)
        # Whatever is still on the wire belongs to the transcript too.
        for conn in conns.values():
            if conn.ready:
                conn.barrier()
            elif not conn.closed and conn.sock is not None:
                conn.read_quiet(QUIET_MS, ctx.step_deadline())
            while conn.frames or conn.carry:
                record(conn)
    except ScenarioAbort as e:
        for conn in conns.values():
            while conn.frames or conn.carry:
                record(conn)
        out.problem(str(e))
    finally:
        for conn in conns.values():
            conn.close()
    return out


def check_expect(step: RawStep, lines: list[str], out: Outcome, sc: Scenario) -> None:
    text = step.text
    if text == "closed":
        ok = "<closed>" in lines
    elif text == "nothing":
        ok = not lines
    elif len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        pat = re.compile(text[1:-1])
        ok = any(pat.search(ln) for ln in lines)
    else:
        ok = text in lines
    if ok == step.negate:
        got = " | ".join(lines) if lines else "nothing"
        neg = "not " if step.negate else ""
        out.problem(f"line {step.lineno}: expect {neg}{text} on @{step.conn}, got: {got}")


# --------------------------------------------------------------------------------------------
# nats CLI scenarios


@dataclass
class BgProc:
    name: str
    proc: subprocess.Popen
    out_path: Path
    err_path: Path


def cli_env(ctx: Context) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    home = ctx.workdir / "home"
    home.mkdir(exist_ok=True)
    # The CLI reads contexts from the user's config dir: give it an empty one.
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), NO_COLOR="1", TERM="dumb")
    return env


def cli_argv(cmd: str, ctx: Context) -> list[str]:
    subst = {
        "$URL": ctx.server.url,
        "$PORT": str(ctx.server.port),
        "$MONITOR": ctx.server.monitor_url,
        # Files next to the CLI scenarios (creds files of the auth_* scenarios).
        "$SCENARIO_DIR": str(SCENARIOS / "cli"),
    }
    if ctx.cluster:
        for k, n in enumerate(ctx.cluster.nodes, 1):
            subst.update({f"$URL{k}": n.url, f"$PORT{k}": str(n.port), f"$MONITOR{k}": n.monitor_url})
        subst["$URLS"] = ",".join(n.url for n in ctx.cluster.nodes)
    keys = sorted(subst, key=len, reverse=True)  # $URLS and $URL1 before $URL
    argv = []
    for word in shlex.split(cmd):
        for k in keys:
            word = word.replace(k, subst[k])
        argv.append(word)
    if argv and argv[0] == "nats":
        argv[0] = os.environ.get("NATS_BIN") or go_tool("nats") or "nats"
    return argv


def render_output(
    label: str, data: bytes, ctx: Context, keep: re.Pattern | None, masks: list
) -> list[str]:
    text = normalise_text(data.decode("utf-8", errors="replace"), ctx.ports)
    lines = [ln.rstrip() for ln in text.replace("\r", "").split("\n")]
    for pat, repl in masks:
        lines = [pat.sub(repl, ln) for ln in lines]
    while lines and not lines[-1]:
        lines.pop()
    if keep is not None:
        lines = [ln for ln in lines if keep.search(ln)]
    return [f"{label}| {ln}" for ln in lines]


def monitor_get(ctx: Context, path: str, timeout: float = 1.0, server: Server | None = None):
    return http_json((server or ctx.server).monitor_url + path, timeout)


def await_sub(ctx: Context, subject: str, count: int, server: Server | None = None) -> str | None:
    """Poll the monitor until `count` client subscriptions on `subject` exist. A CLI prints its
    'Subscribing on' line before it subscribes, so its output cannot tell us."""
    deadline = ctx.step_deadline()
    last_err = ""
    while time.monotonic() < deadline:
        try:
            connz = monitor_get(ctx, "/connz?subs=1", server=server)
            n = sum(
                (c.get("subscriptions_list") or []).count(subject)
                for c in connz.get("connections") or []
            )
            if n >= count:
                return None
            last_err = f"{n} subscription(s) on {subject}"
        except (OSError, ValueError, urllib.error.URLError) as e:
            last_err = f"monitor: {e}"
        time.sleep(0.02)
    return f"await-sub {subject}: timed out ({last_err})"


CLI_COLON_RE = re.compile(r"^(run|bg|await-output)(?:\s+([A-Za-z0-9_-]+))?:\s*(.*)$")


def run_cli(sc: Scenario, ctx: Context) -> Outcome:
    out = Outcome()
    env = cli_env(ctx)
    bgs: dict[str, BgProc] = {}
    keep: re.Pattern | None = None
    masks: list[tuple[re.Pattern, str]] = []
    last: list[str] = []
    lines = sc.path.read_text().splitlines()
    steps = []
    for lineno, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if is_header_line(s):
            continue
        steps.append((lineno, s))

    def finish(label: str, rc: int | None, stdout: bytes, stderr: bytes) -> None:
        nonlocal keep, last
        rec = [f"{label}exit={rc if rc is not None else 'timeout'}"]
        rec += render_output("out", stdout, ctx, keep, masks)
        rec += render_output("err", stderr, ctx, keep, masks)
        keep = None
        last = rec
        out.lines.extend(rec)

    try:
        for lineno, s in steps:
            where = f"{sc.path.name}:{lineno}"
            if time.monotonic() > ctx.deadline:
                raise ScenarioAbort("scenario timeout")
            m = CLI_COLON_RE.match(s)
            verb, name, rest = (m.group(1), m.group(2), m.group(3)) if m else ("", "", "")
            words = s.split()
            if verb == "run" and not name:
                out.lines.append(f"$ {rest}")
                try:
                    p = subprocess.run(
                        cli_argv(rest, ctx), env=env, cwd=ctx.workdir, capture_output=True,
                        stdin=subprocess.DEVNULL, timeout=min(ctx.remaining(), 30),
                    )  # fmt: skip
                    finish("", p.returncode, p.stdout, p.stderr)
                except subprocess.TimeoutExpired as e:
                    finish("", None, e.stdout or b"", e.stderr or b"")
                    raise ScenarioAbort(f"{where}: command timed out") from None
            elif verb == "bg" and name:
                if name in bgs:
                    raise ScenarioSyntaxError(f"{where}: {name} is already running")
                out.lines.append(f"$ [{name}] {rest} &")
                op, ep = ctx.workdir / f"{name}.out", ctx.workdir / f"{name}.err"
                with open(op, "wb") as fo, open(ep, "wb") as fe:
                    proc = subprocess.Popen(
                        cli_argv(rest, ctx), env=env, cwd=ctx.workdir, stdout=fo, stderr=fe,
                        stdin=subprocess.DEVNULL, start_new_session=True,
                    )  # fmt: skip
                bgs[name] = BgProc(name, proc, op, ep)
            elif verb == "await-output" and name:
                bg = bgs.get(name)
                if bg is None:
                    raise ScenarioSyntaxError(f"{where}: no background command {name}")
                want = rest.encode()
                deadline = ctx.step_deadline()
                while want not in bg.out_path.read_bytes() + bg.err_path.read_bytes():
                    if time.monotonic() > deadline or bg.proc.poll() is not None:
                        raise ScenarioAbort(f"{where}: {bg.name} never printed {rest!r}")
                    time.sleep(0.02)
            elif words[0] == "await-sub":
                args, server = words[1:], None
                if ctx.cluster and args and re.fullmatch(r"n\d+", args[0]):
                    server, args = ctx.cluster.node(args[0]), args[1:]
                if len(args) not in (1, 2):
                    raise ScenarioSyntaxError(f"{where}: await-sub [NODE] SUBJECT [COUNT]")
                err = await_sub(ctx, args[0], int(args[1]) if len(args) == 2 else 1, server)
                if err:
                    raise ScenarioAbort(f"{where}: {err}")
            elif words[0] in CONTROL_VERBS:
                out.lines.append(s)
                ctx.control(words, where)
            elif words[0] == "wait" and len(words) == 2:
                bg = bgs.pop(words[1], None)
                if bg is None:
                    raise ScenarioSyntaxError(f"{where}: no background command {words[1]}")
                try:
                    rc = bg.proc.wait(timeout=min(ctx.remaining(), 30))
                except subprocess.TimeoutExpired:
                    kill_group(bg.proc)
                    rc = None
                finish(f"[{bg.name}] ", rc, bg.out_path.read_bytes(), bg.err_path.read_bytes())
                if rc is None:
                    raise ScenarioAbort(f"{where}: {bg.name} did not finish")
            elif words[0] == "keep":
                m = re.fullmatch(r"keep\s+/(.*)/", s)
                if not m:
                    raise ScenarioSyntaxError(f"{where}: keep /regex/")
                keep = re.compile(m.group(1))
            elif words[0] == "mask":
                m = re.fullmatch(r"mask\s+/(.*)/\s*->\s*(.*)", s)
                if not m:
                    raise ScenarioSyntaxError(f"{where}: mask /regex/ -> replacement")
                masks.append((re.compile(m.group(1)), m.group(2)))
            elif words[0] == "sleep" and len(words) == 2:
                time.sleep(float(words[1]) / 1000)
            elif words[0] == "expect":
                check_cli_expect(where, s[len("expect") :].strip(), last, out)
            else:
                raise ScenarioSyntaxError(f"{where}: cannot parse {s!r}")
    except ScenarioAbort as e:
        out.problem(str(e))
    finally:
        for bg in bgs.values():
            if bg.proc.poll() is None:
                kill_group(bg.proc)
                out.problem(f"background command {bg.name} was still running (never waited)")
    return out


def check_cli_expect(where: str, text: str, last: list[str], out: Outcome) -> None:
    negate = text.startswith("not ")
    if negate:
        text = text[4:].strip()
    m = re.fullmatch(r"exit\s+(\d+)", text)
    if m:
        ok = bool(last) and last[0].endswith(f"exit={m.group(1)}")
    elif len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        pat = re.compile(text[1:-1])
        ok = any(pat.search(ln) for ln in last)
    else:
        raise ScenarioSyntaxError(f"{where}: expect exit N or expect /regex/")
    if ok == negate:
        out.problem(f"{where}: expect {'not ' if negate else ''}{text} failed: {' | '.join(last)}")


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a child we started in its own session, by its own pid (its group id)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


# --------------------------------------------------------------------------------------------
# Client-library scenarios (nats.js, async-nats): one JSON observation on stdout


def parse_comment_header(sc: Scenario) -> None:
    """`//! key: value` lines at the top of a .mjs/.rs scenario (config, flags, timeout)."""
    for line in sc.path.read_text().splitlines():
        s = line.strip()
        if not s:
            continue
        if not s.startswith("//"):
            break
        m = re.match(
            r"//!\s*(config|flags|timeout|skip|websocket|websocket-config|runtime|nodes|mixed"
            r"|cluster|cluster-name|routes|route-credentials):\s?(.*)$",
            s,
        )
        if m:
            if m.group(1) == "skip":
                sc.skip = m.group(2).strip()
            elif m.group(1) == "websocket":
                if m.group(2).strip() not in ("ws", "wss"):
                    raise ScenarioSyntaxError(f"websocket: {m.group(2).strip()!r} (ws or wss)")
                sc.websocket = m.group(2).strip()
            elif m.group(1) == "runtime":
                if m.group(2).strip() not in ("chromium", "node"):
                    raise ScenarioSyntaxError(f"runtime: {m.group(2).strip()!r} (chromium or node)")
                sc.runtime = m.group(2).strip()
            elif m.group(1) == "websocket-config":
                sc.ws_config += f"  {m.group(2).strip()}\n"
            else:
                parse_header_line(sc, m.group(1), m.group(2).rstrip())


def run_json_program(argv: list[str], env: dict[str, str], ctx: Context) -> Outcome:
    out = Outcome()
    timeout = max(1.0, ctx.remaining())
    try:
        p = subprocess.run(
            argv, env=env, cwd=ctx.workdir, capture_output=True, timeout=timeout,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        out.lines.append("<timeout>")
        tail = (e.stderr or b"").decode(errors="replace").strip().splitlines()[-3:]
        out.problem(f"timed out after {timeout:.0f}s {' | '.join(tail)}")
        return out
    stderr = p.stderr.decode(errors="replace").strip()
    if p.returncode != 0:
        out.lines.append(f"exit={p.returncode}")
        # First lines: the error message and where it was thrown.
        head = " | ".join(ln.strip() for ln in stderr.splitlines()[:2])
        out.problem(f"exited {p.returncode}: {head}")
        return out
    text = p.stdout.decode(errors="replace").strip()
    try:
        obs = json.loads(text.splitlines()[-1]) if text else None
    except ValueError:
        obs = None
    if obs is None:
        out.problem(f"no JSON observation on stdout: {text[-200:]!r}")
        return out
    out.lines = json_lines(ctx.normalise_json(obs))
    if ctx.verbose and stderr:
        out.lines += [f"stderr| {ln}" for ln in stderr.splitlines()]
    return out


def run_js(sc: Scenario, ctx: Context) -> Outcome:
    env = dict(os.environ)
    env.update(NATS_URL=ctx.server.url, NATS_MONITOR_URL=ctx.server.monitor_url)
    node = os.environ.get("NODE_BIN", "node")
    if ctx.cluster is None:
        return run_json_program([node, str(sc.path)], env, ctx)
    # A cluster: every node's URLs, and cluster steps over the control channel (js/lib.mjs
    # `control("kill n1")`: `@@kill n1` on stdout, answered `ok` or the error on stdin).
    nodes = ctx.cluster.nodes
    env.update(
        NATS_URLS=",".join(n.url for n in nodes),
        NATS_MONITOR_URLS=",".join(n.monitor_url for n in nodes),
        NATS_CLUSTER_URLS=",".join(f"nats://127.0.0.1:{n.cluster_port}" for n in nodes),
    )

    def on_control(cmd: str, out: Outcome) -> str:
        try:
            ctx.control(cmd.split(), "control")
            return "ok"
        except (ScenarioAbort, ScenarioSyntaxError) as e:
            out.problem(str(e))
            return f"error: {e}"

    return run_controlled_program([node, str(sc.path)], env, ctx, on_control)


def chromium_bin() -> str:
    return os.environ.get("CHROMIUM_BIN") or "/usr/bin/chromium"


def run_browser(sc: Scenario, ctx: Context) -> Outcome:
    """js/browser.mjs runs the scenario in Chromium. It may ask for a server restart mid-run
    (`@@restart` on stdout, answered `ok` on stdin); its last stdout line is the observation."""
    scheme = sc.websocket
    env = dict(os.environ)
    env.update(
        NATS_WS_URL=f"{scheme}://127.0.0.1:{ctx.server.ws_port}",
        NATS_URL=ctx.server.url,
        BROWSER_SCENARIO_TIMEOUT_MS=str(int(max(1.0, ctx.remaining() - 2) * 1000)),
    )
    if scheme == "wss":
        env["NATS_WS_CERT"] = str(CERTS / "server.pem")
    node = os.environ.get("NODE_BIN", "node")
    argv = [node, str(ROOT / "js" / "browser.mjs"), str(sc.path)]
    if sc.runtime == "node":
        argv.insert(2, "--node")

    def on_control(cmd: str, out: Outcome) -> str:
        if cmd != "restart":
            out.problem(f"unknown control request @@{cmd}")
            return f"error: unknown request {cmd}"
        try:
            ctx.server.restart(time.monotonic() + 10)
            return "ok"
        except ServerStartError as e:
            answer = f"restart failed: {e}"
            out.problem(answer)
            return answer

    return run_controlled_program(argv, env, ctx, on_control)


def run_controlled_program(
    argv: list[str], env: dict[str, str], ctx: Context, on_control: Callable[[str, Outcome], str]
) -> Outcome:
    """Like run_json_program, for a program that may ask the runner for something mid-run: a
    stdout line `@@REQUEST` is handed to on_control, whose answer goes back as one stdin line.
    The last other stdout line is the observation."""
    import selectors

    out = Outcome()
    proc = subprocess.Popen(
        argv, env=env, cwd=ctx.workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout and proc.stdin and proc.stderr
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    stdout, stderr, pending = [], b"", b""
    open_streams = 2
    try:
        while open_streams:
            left = ctx.remaining()
            if left <= 0:
                kill_group(proc)
                out.lines.append("<timeout>")
                tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
                out.problem(f"timed out {' | '.join(tail)}")
                return out
            for key, _ in sel.select(timeout=min(left, 0.5)):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                if key.data == "err":
                    stderr += chunk
                    continue
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    text = line.decode(errors="replace")
                    if text.startswith("@@"):
                        answer = on_control(text[2:], out)
                        try:
                            proc.stdin.write((answer + "\n").encode())
                            proc.stdin.flush()
                        except OSError:
                            pass  # it exited meanwhile: its exit status tells
                    else:
                        stdout.append(text)
        proc.wait(timeout=max(1.0, ctx.remaining()))
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out.problem("scenario program did not exit")
        return out
    finally:
        sel.close()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            try:
                f.close()
            except OSError:
                pass
    err_text = stderr.decode(errors="replace").strip()
    if proc.returncode != 0:
        out.lines.append(f"exit={proc.returncode}")
        head = " | ".join(ln.strip() for ln in err_text.splitlines()[:2])
        out.problem(f"exited {proc.returncode}: {head}")
        if ctx.verbose:
            out.lines += [f"stderr| {ln}" for ln in err_text.splitlines()]
        return out
    try:
        obs = json.loads(stdout[-1]) if stdout else None
    except ValueError:
        obs = None
    if obs is None:
        out.problem(f"no JSON observation on stdout: {' '.join(stdout)[-200:]!r}")
        return out
    out.lines = json_lines(ctx.normalise_json(obs)) + out.lines
    if ctx.verbose and err_text:
        out.lines += [f"stderr| {ln}" for ln in err_text.splitlines()]
    return out


def rust_bin() -> Path | None:
    explicit = os.environ.get("CONFORMANCE_RUST_BIN")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT.parent / "target")
    cand = target / "debug" / "chorus-conformance"
    return cand if cand.exists() else None


def run_rust(sc: Scenario, ctx: Context) -> Outcome:
    binary = rust_bin()
    assert binary is not None  # discover() skips rust scenarios without a binary
    env = dict(os.environ)
    argv = [str(binary), "--url", ctx.server.url, "--scenario", sc.name]
    return run_json_program(argv, env, ctx)


# --------------------------------------------------------------------------------------------
# Discovery and the comparison loop

RUNNERS: dict[str, Callable[[Scenario, Context], Outcome]] = {
    "raw": run_raw,
    "cli": run_cli,
    "js": run_js,
    "rust": run_rust,
    "browser": run_browser,
}
PATTERNS = {"raw": "*.txt", "cli": "*.txt", "js": "*.mjs", "rust": "*.rs", "browser": "*.mjs"}
# scenarios/cluster/ holds several DSLs, told apart by suffix.
CLUSTER_SUFFIXES = {".txt": "raw", ".cli": "cli", ".mjs": "js"}


def discover(filter_: str | None) -> list[Scenario]:
    found = []
    for kind in KINDS:
        if kind == "cluster":
            paths = [
                p for p in sorted((SCENARIOS / kind).glob("*")) if p.suffix in CLUSTER_SUFFIXES
            ]
        else:
            paths = sorted((SCENARIOS / kind).glob(PATTERNS[kind]))
        for path in paths:
            if path.name.startswith("_"):
                continue  # helpers, not scenarios
            runner = CLUSTER_SUFFIXES[path.suffix] if kind == "cluster" else kind
            sc = Scenario(kind, path.stem, path, runner=runner)
            if filter_ and filter_ not in sc.id:
                continue
            load_sibling_conf(sc)
            try:
                if sc.runner in ("js", "rust", "browser"):
                    parse_comment_header(sc)
                else:
                    read_text_headers(sc)
                if kind == "cluster" and sc.nodes < 2:
                    raise ScenarioSyntaxError("cluster/ scenarios need a `nodes: N` header, N >= 2")
                if sc.mixed and sc.nodes < 2:
                    raise ScenarioSyntaxError("mixed: true needs a cluster (nodes: N)")
            except ScenarioSyntaxError as e:
                sc.broken = str(e)
            if kind == "rust" and os.environ.get("CONFORMANCE_RUST_BUILD_FAILED"):
                sc.broken = os.environ["CONFORMANCE_RUST_BUILD_FAILED"]
            elif kind == "rust" and sc.skip is None and rust_bin() is None:
                sc.skip = "chorus-conformance binary not built (proto-conformance/run builds it)"
            if sc.runner == "js" and sc.skip is None and not (ROOT / "js" / "node_modules").is_dir():
                sc.skip = "proto-conformance/js/node_modules missing (proto-conformance/install)"
            if kind == "browser" and sc.skip is None:
                if not (ROOT / "js" / "node_modules" / "playwright-core").is_dir():
                    sc.skip = "playwright-core missing in js/node_modules (proto-conformance/install)"
                elif sc.runtime == "chromium" and not Path(chromium_bin()).is_file():
                    sc.skip = f"no {chromium_bin()} (proto-conformance/install --browser)"
            if (
                sc.runner == "cli"
                and sc.skip is None
                and not (os.environ.get("NATS_BIN") or go_tool("nats"))
            ):
                sc.skip = "nats CLI not found (proto-conformance/install)"
            found.append(sc)
    return found


def run_one(
    sc: Scenario, label: str, binaries: list[str], workdir: Path, verbose: bool
) -> Outcome:
    """Fresh servers (one, or a cluster of len(binaries) nodes), the scenario, the servers
    stopped: whatever happens in between."""
    sdir = workdir / label
    sdir.mkdir(parents=True, exist_ok=True)
    timeout = sc.timeout or (CLUSTER_TIMEOUT if sc.nodes > 1 else DEFAULT_TIMEOUT[sc.runner])
    deadline = time.monotonic() + timeout
    cluster: Cluster | None = None
    if sc.nodes > 1:
        cluster = Cluster(sc, binaries, sdir)
        servers = cluster.nodes
    else:
        servers = [Server(label, binaries[0], sdir)]
        servers[0].ws_port = sc.ws_port
    try:
        try:
            if cluster:
                cluster.start()
            else:
                servers[0].start(workdir / "server.conf", sc.flags, time.monotonic() + 10)
        except (ServerStartError, ClusterError) as e:
            o = Outcome()
            o.problem(str(e))
            return o
        ctx = Context(servers[0], sdir, deadline, verbose, cluster)
        outcome = RUNNERS[sc.runner](sc, ctx)
        for server in servers:
            if server.proc is not None and server.proc.poll() is not None:
                name = f"{label} {server.label}" if cluster else label
                outcome.problem(f"{name} died during the scenario: {server.log_tail()}")
        return outcome
    except ScenarioSyntaxError as e:
        o = Outcome()
        o.problem(f"scenario syntax: {e}")
        return o
    finally:
        for server in servers:
            server.stop()


def prepare_config(sc: Scenario, workdir: Path) -> None:
    """One config file, written before either server starts; both servers get this very file."""
    if sc.runner == "raw":
        parse_raw(sc)  # syntax errors show before any server starts
    if sc.kind == "browser":
        # nats-server has no flag for the WebSocket port: it goes in the config, and the two
        # servers (which run one after the other) get the same one.
        sc.ws_port = free_port()
        tls = (
            f'  tls {{ cert_file: "{CERTS / "server.pem"}", key_file: "{CERTS / "server-key.pem"}" }}\n'
            if sc.websocket == "wss"
            else "  no_tls: true\n"
        )
        ws_block = f'websocket {{\n  listen: "127.0.0.1:{sc.ws_port}"\n{tls}{sc.ws_config}}}\n'
    else:
        ws_block = ""
    body = f"# generated by proto-conformance for {sc.id}\n{sc.config}{ws_block}"
    # A cluster's nodes get their own files (LABEL/nK.conf): this plus server_name and cluster.
    (workdir / "server.conf").write_text(body)


def clip(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def line_difference(exp: str, act: str) -> str:
    """What differs between two lines, compactly: key by key for INFO lines, else the text
    around the first differing character."""
    ie, ia = exp.find("< INFO {"), act.find("< INFO {")
    if ie >= 0 and ia >= 0:
        try:
            je, ja = json.loads(exp[ie + 7 :]), json.loads(act[ia + 7 :])
        except ValueError:
            je = ja = None
        if isinstance(je, dict) and isinstance(ja, dict):
            parts = [f"missing {k}" for k in sorted(je.keys() - ja.keys())]
            parts += [f"extra {k}={json.dumps(ja[k])}" for k in sorted(ja.keys() - je.keys())]
            parts += [
                f"{k}: expected {json.dumps(je[k])}, got {json.dumps(ja[k])}"
                for k in sorted(je.keys() & ja.keys())
                if je[k] != ja[k]
            ]
            return f"{exp[:ie].strip()} INFO differs: " + "; ".join(parts)
    i = 0
    while i < min(len(exp), len(act)) and exp[i] == act[i]:
        i += 1
    start = max(0, i - 40)
    pre = "..." if start else ""
    return f"expected {pre + exp[start : i + 60]!r}, got {pre + act[start : i + 60]!r}"


def short_diff(ref: list[str], got: list[str]) -> str:
    sm = difflib.SequenceMatcher(a=ref, b=got, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace":
            return clip(f"line {i1 + 1}: {line_difference(ref[i1].strip(), got[j1].strip())}")
        exp = ref[i1].strip() if i1 < i2 else "(nothing)"
        act = got[j1].strip() if j1 < j2 else "(nothing)"
        return clip(f"line {i1 + 1}: expected {exp!r}, got {act!r}")
    return "outputs differ"


def go_tool(name: str) -> str | None:
    """A tool `go install` put in GOBIN or GOPATH/bin (where ./install puts them), else PATH."""
    dirs = [os.environ.get("GOBIN"), os.environ.get("GOPATH") and f"{os.environ['GOPATH']}/bin"]
    dirs.append(str(Path.home() / "go" / "bin"))
    for d in dirs:
        if d and (Path(d) / name).is_file():
            return str(Path(d) / name)
    return shutil.which(name)


def default_chorus() -> str | None:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT.parent / "target")
    cand = target / "release" / "chorus"
    return str(cand) if cand.is_file() else None


def print_block(title: str, lines: list[str]) -> None:
    print(f"    --- {title}")
    for ln in lines:
        print(f"    {ln}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--filter", help="run only scenarios whose kind/name contains SUBSTR")
    ap.add_argument("--only-ref", action="store_true", help="run just the reference server")
    ap.add_argument("-v", "--verbose", action="store_true", help="print full transcripts")
    ap.add_argument("--list", action="store_true", help="list scenarios and exit")
    ap.add_argument("--repeat", type=int, default=1, help="run everything N times (flake hunt)")
    args = ap.parse_args()

    ref_bin = os.environ.get("NATS_SERVER_BIN") or go_tool("nats-server")
    sut_bin = os.environ.get("CHORUS_BIN") or default_chorus()
    if not os.environ.get("NATS_BIN") and go_tool("nats"):
        os.environ["NATS_BIN"] = go_tool("nats") or ""
    if not ref_bin:
        print("NATS_SERVER_BIN not set and no nats-server on PATH (run proto-conformance/install)")
        return 2
    if not sut_bin and not args.only_ref:
        print("CHORUS_BIN not set and no target/release/chorus (proto-conformance/run builds it)")
        return 2

    scenarios = discover(args.filter)
    if args.list:
        for sc in scenarios:
            print(sc.id + (f"  (skip: {sc.skip})" if sc.skip else ""))
        return 0
    if not scenarios:
        print("no scenario matches")
        print("0 passed, 0 failed")
        return 1

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    run_dir = WORK / "last"
    shutil.rmtree(run_dir, ignore_errors=True)
    tally = Tally()
    started = time.monotonic()
    try:
        for _ in range(args.repeat):
            for sc in scenarios:
                run_scenario(sc, ref_bin, sut_bin, run_dir, args, tally)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        tally.failed += 1
    finally:
        stop_all_servers()
    print(f"({time.monotonic() - started:.1f}s, logs and configs in {run_dir})")
    print(tally.summary())
    return 1 if tally.failed else 0


@dataclass
class Tally:
    """Counts result lines: one per scenario per server."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def ok(self, label: str, sc: Scenario) -> None:
        self.passed += 1
        print(f"ok   {label} {sc.id}", flush=True)

    def fail(self, label: str, sc: Scenario, reason: str) -> None:
        self.failed += 1
        print(f"FAIL {label} {sc.id}: {reason}", flush=True)

    def skip(self, label: str, sc: Scenario, reason: str) -> None:
        self.skipped += 1
        print(f"skip {label} {sc.id}: {reason}", flush=True)

    def summary(self) -> str:
        text = f"{self.passed} passed, {self.failed} failed"
        return text + (f", {self.skipped} skipped" if self.skipped else "")


def run_scenario(
    sc: Scenario, ref_bin: str, sut_bin: str | None, run_dir: Path, args, tally: Tally
) -> None:
    """The reference first: its run must pass on its own (expects, no errors); then Chorus,
    whose observation must equal the reference's; then, for `mixed: true` clusters, Chorus as
    n1 among nats-servers, compared with the reference the same way."""
    variants: list[tuple[str, list[str]]] = []  # (label, binary of each node)
    if not args.only_ref:
        assert sut_bin is not None
        variants.append((SUT_LABEL, [sut_bin] * sc.nodes))
        if sc.mixed:
            variants.append((MIXED_LABEL, [sut_bin] + [ref_bin] * (sc.nodes - 1)))
    if sc.skip:
        for label in [REF_LABEL] + [v[0] for v in variants]:
            tally.skip(label, sc, sc.skip)
        return
    workdir = run_dir / sc.kind / sc.name
    workdir.mkdir(parents=True, exist_ok=True)
    ref: Outcome | None = None
    try:
        if sc.broken:
            raise ScenarioSyntaxError(sc.broken)
        prepare_config(sc, workdir)
    except ScenarioSyntaxError as e:
        ref = Outcome()
        ref.problem(str(e))
    if ref is None:
        ref = run_one(sc, REF_LABEL, [ref_bin] * sc.nodes, workdir, args.verbose)
    if ref.problems:
        tally.fail(REF_LABEL, sc, f"broken scenario: {clip(ref.problems[0])}")
    else:
        tally.ok(REF_LABEL, sc)
    if args.verbose:
        print_block(f"{REF_LABEL} transcript", ref.lines)
    for label, binaries in variants:
        if ref.problems:
            tally.skip(label, sc, "reference run is broken, nothing to compare")
            continue
        got = run_one(sc, label, binaries, workdir, args.verbose)
        same = got.lines == ref.lines
        # Servers that did not start (or a cluster that did not form) observed nothing: no diff.
        not_run = bool(got.lines) and all(ln.startswith("!! ") for ln in got.lines)
        if got.problems:
            diff = "" if same or not_run else f"; {short_diff(ref.lines, got.lines)}"
            tally.fail(label, sc, clip(got.problems[0], 200) + diff)
        elif not same:
            tally.fail(label, sc, short_diff(ref.lines, got.lines))
        else:
            tally.ok(label, sc)
        if args.verbose:
            print_block(f"{label} transcript", got.lines)
        if not same and not not_run:
            diff = list(difflib.unified_diff(ref.lines, got.lines, REF_LABEL, label, lineterm=""))
            print_block("diff", diff[2:] if args.verbose else diff[2:40])


if __name__ == "__main__":
    sys.exit(main())
