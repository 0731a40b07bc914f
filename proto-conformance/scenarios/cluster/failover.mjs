// Failover: a nats.js client given only n1's URL learns the others from INFO connect_urls;
// when n1 dies it reconnects to a survivor, resubscribes, and a publish from n2 reaches it.
//! nodes: 3
//! mixed: true
import { connect, connectToNode, control, nodeUrl, scenario } from "../../js/lib.mjs";

await scenario(async () => {
  const nc = await connect({
    servers: nodeUrl(1),
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    timeout: 5000,
  });
  const statuses = [];
  const reconnected = (async () => {
    for await (const s of nc.status()) {
      statuses.push(s.type);
      if (s.type === "reconnect") return s;
    }
  })();
  const sub = nc.subscribe("cl.fail.x");
  await nc.flush();
  // The servers this client knows about before the failure (connect_urls of n1's INFO).
  const known = nc.protocol.servers.getServers().map((s) => s.listen);
  await control("kill n1");
  await reconnected;
  await nc.flush();
  const now = nc.getServer();
  // The resubscription reached the survivor; n2 routes to it (or delivers locally).
  await control("await-mesh");
  const p2 = await connectToNode(2);
  const target = now === nodeUrl(2).replace("nats://", "") ? null : "n2";
  if (target) await control(`await-interest n2 cl.fail.x`);
  p2.publish("cl.fail.x", "after-failover");
  await p2.flush();
  const got = [];
  const timer = setTimeout(() => sub.unsubscribe(), 5000);
  for await (const m of sub) {
    got.push(m.string());
    break;
  }
  clearTimeout(timer);
  await p2.close();
  await nc.close();
  const urls = [1, 2, 3].map((k) => nodeUrl(k).replace("nats://", ""));
  return {
    known_servers: known.map((s) => `n${urls.indexOf(s) + 1}`).sort(),
    saw_disconnect: statuses.includes("disconnect"),
    reconnected_to_survivor: [urls[1], urls[2]].includes(now),
    received: got,
  };
});
