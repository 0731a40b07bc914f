//! websocket: ws
//! websocket-config: allowed_origins: ["http://app.example:8000"]
// The page's origin (http://127.0.0.1:<port>) is not allowed: the upgrade gets 403 and the
// connection fails; nothing else is served.
import { errorCode } from "./_flow.mjs";

export async function run(nats, env) {
  try {
    const nc = await nats.connect({ servers: env.url, timeout: 3000, reconnect: false });
    await nc.close();
    return { connected: true };
  } catch (err) {
    return { connected: false, error: errorCode(err) };
  }
}
