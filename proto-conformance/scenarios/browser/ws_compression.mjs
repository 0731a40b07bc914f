//! websocket: ws
//! websocket-config: compression: true
// Chromium offers permessage-deflate; with `compression: true` both directions are
// compressed (no context takeover), including the 900 KiB payload.
import { flow } from "./_flow.mjs";

export async function run(nats, env) {
  // What the browser negotiated (nats.ws keeps its WebSocket at protocol.transport.socket).
  let extensions = null;
  const probe = await nats.connect({ servers: env.url, timeout: 5000 });
  extensions = probe.protocol?.transport?.socket?.extensions ?? "(not visible)";
  await probe.close();
  return { extensions, ...(await flow(nats, env, {}, { restart: false })) };
}
