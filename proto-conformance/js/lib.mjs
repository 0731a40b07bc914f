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
