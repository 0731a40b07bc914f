//! config: authorization { users: [ { user: "browser", password: "pw" } ] }
//! websocket: wss
// The whole flow over wss://, user and password.
import { flow } from "./_flow.mjs";

export async function run(nats, env) {
  return flow(nats, env, { user: "browser", pass: "pw" });
}
