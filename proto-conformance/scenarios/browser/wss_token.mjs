//! config: authorization { token: "s3cret" }
//! websocket: wss
// The whole flow over wss:// (the test CA's server certificate, accepted by Chromium by its
// public key), token auth.
import { flow } from "./_flow.mjs";

export async function run(nats, env) {
  return flow(nats, env, { token: "s3cret" });
}
