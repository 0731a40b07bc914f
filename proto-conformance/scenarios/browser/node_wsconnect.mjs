//! config: authorization { token: "s3cret" }
//! websocket: ws
//! runtime: node
// Not a browser: nats.js v3 (`wsconnect` of @nats-io/nats-core) under Node, over Node's own
// WebSocket, through the same flow as the pages (restart included).
import { flow } from "./_flow.mjs";

export async function run(nats, env) {
  return flow(nats, env, { token: "s3cret" });
}
