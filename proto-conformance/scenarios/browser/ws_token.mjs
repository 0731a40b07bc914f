//! config: authorization { token: "s3cret" }
//! websocket: ws
// nats.ws in Chromium over ws://, token auth: pub/sub, request/reply, headers, no responders,
// a 900 KiB payload, and a server restart the page reconnects through.
import { flow } from "./_flow.mjs";

export async function run(nats, env) {
  return flow(nats, env, { token: "s3cret" });
}
