// Shared helpers for the nats.js scenarios in ../scenarios/js/.
//
// A scenario imports everything from here (so its bare imports resolve against this
// directory's node_modules), runs one flow against the server in $NATS_URL and hands a plain
// JSON-able observation to `scenario()`, which prints it as one line on stdout. The runner
// normalises and compares the observations of the two servers. Print facts a client can rely
// on (payloads, subjects, counts, error classes), never timings.
export * from "@nats-io/transport-node";
import { connect } from "@nats-io/transport-node";

export const SERVER_URL = process.env.NATS_URL;

/** Connect to the server under test. Reconnecting would only hide a dead server. */
export function connectTo(opts = {}) {
  if (!SERVER_URL) throw new Error("NATS_URL is not set");
  return connect({ servers: SERVER_URL, reconnect: false, timeout: 5000, ...opts });
}

/** Run `fn`, print its observation as JSON, exit 0; any throw exits 1 with the stack. */
export async function scenario(fn, { timeoutMs = 20000 } = {}) {
  const timer = setTimeout(() => {
    console.error(`scenario did not finish within ${timeoutMs} ms`);
    process.exit(3);
  }, timeoutMs);
  try {
    const observation = await fn();
    process.stdout.write(JSON.stringify(observation) + "\n");
    clearTimeout(timer);
    process.exit(0);
  } catch (err) {
    console.error(err?.stack ?? String(err));
    process.exit(1);
  }
}

/** Next `n` messages of a subscription as {subject, data, reply}, or throw after timeoutMs. */
export async function collect(sub, n, timeoutMs = 5000) {
  const out = [];
  if (n === 0) return out;
  const timer = setTimeout(() => sub.unsubscribe(), timeoutMs);
  for await (const m of sub) {
    out.push(describeMsg(m));
    if (out.length === n) break;
  }
  clearTimeout(timer);
  if (out.length < n) throw new Error(`got ${out.length} of ${n} messages on ${sub.getSubject()}`);
  return out;
}

export function describeMsg(m) {
  const d = { subject: m.subject, data: m.string() };
  if (m.reply) d.reply = m.reply;
  if (m.headers) d.headers = describeHeaders(m.headers);
  return d;
}

export function describeHeaders(h) {
  const d = { entries: [] };
  for (const [k, v] of h) d.entries.push([k, v]);
  if (h.code) d.code = h.code;
  if (h.description) d.description = h.description;
  return d;
}

/** Error class names and messages, following `cause`: what a caller can branch on. */
export function describeError(err) {
  if (err === undefined || err === null) return null;
  const d = { name: err.constructor?.name ?? typeof err, message: String(err.message ?? err) };
  if (err.cause) d.cause = describeError(err.cause);
  return d;
}

// ------------------------------------------------------------------------------------------
// Cluster scenarios (`//! nodes: N`): the runner sets NATS_URLS / NATS_MONITOR_URLS /
// NATS_CLUSTER_URLS (node 1 first, comma-separated; NATS_URL is node 1) and answers cluster
// steps asked for with `control()`.

const list = (v) => (v ?? "").split(",").filter(Boolean);
export const SERVER_URLS = list(process.env.NATS_URLS ?? SERVER_URL);
export const MONITOR_URLS = list(process.env.NATS_MONITOR_URLS ?? process.env.NATS_MONITOR_URL);
export const CLUSTER_URLS = list(process.env.NATS_CLUSTER_URLS);

function nodeIndex(node) {
  const k = typeof node === "number" ? node : Number(String(node).replace(/^n/, ""));
  if (!(k >= 1 && k <= SERVER_URLS.length)) throw new Error(`no node ${node} (have ${SERVER_URLS.length})`);
  return k - 1;
}

/** The client URL of node `node` (1-based number or "n2"). */
export function nodeUrl(node) {
  return SERVER_URLS[nodeIndex(node)];
}

/** Connect to one node; no reconnect, like connectTo(). */
export function connectToNode(node, opts = {}) {
  return connect({ servers: nodeUrl(node), reconnect: false, timeout: 5000, ...opts });
}

/** GET a monitoring endpoint of one node, parsed. */
export async function monitor(node, path) {
  const r = await fetch(MONITOR_URLS[nodeIndex(node)] + path);
  if (!r.ok) throw new Error(`GET ${path} on n${nodeIndex(node) + 1}: HTTP ${r.status}`);
  return r.json();
}

// The control channel: one request line `@@<step>` on stdout, one answer line on stdin.
let stdinLines = null;
async function nextStdinLine() {
  if (stdinLines === null) {
    const { createInterface } = await import("node:readline");
    stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  }
  const { value, done } = await stdinLines.next();
  return done ? "<stdin closed>" : value;
}

/** A cluster step done by the runner, exactly as in the raw/cli DSLs: "kill n1",
 * "restart n2", "await-mesh", "await-interest n1 SUBJECT [N]", "await-no-interest n1 SUBJECT".
 * Throws with the runner's reason when it could not be done. */
export async function control(step) {
  process.stdout.write(`@@${step}\n`);
  const answer = await nextStdinLine();
  if (answer !== "ok") throw new Error(`control ${step}: ${answer}`);
}
