//! config: authorization { users: [ { user: "browser", password: "pw" } ] }
//! websocket: ws
// The same flow as ws_token, with user and password.
import { flow } from "./_flow.mjs";

export async function run(nats, env) {
  return flow(nats, env, { user: "browser", pass: "pw" });
}
