// Implicit routes (gossip): only n2 and n3 list a route, to n1; n1 lists none. The full mesh
// still forms (n2 and n3 learn of each other from n1), the n2-n3 routes are not configured,
// and traffic flows n2 -> n3 directly.
//! nodes: 3
//! mixed: true
//! routes: seed
import { connectToNode, control, monitor, scenario } from "../../js/lib.mjs";

await scenario(async () => {
  const view = {};
  for (const k of [1, 2, 3]) {
    const r = await monitor(k, "/routez");
    const byRemote = {};
    for (const c of r.routes) {
      const e = (byRemote[c.remote_name] ??= { connections: 0, is_configured: new Set() });
      e.connections++;
      e.is_configured.add(c.is_configured);
      // Who dialed is fixed only where one side has no route to the other configured.
      if (k === 1 || c.remote_name === "n1") (e.did_solicit ??= new Set()).add(c.did_solicit);
    }
    for (const e of Object.values(byRemote)) {
      e.is_configured = [...e.is_configured].sort();
      if (e.did_solicit) e.did_solicit = [...e.did_solicit].sort();
    }
    view[`n${k}`] = byRemote;
  }
  const sub = await connectToNode(3);
  const s = sub.subscribe("cl.gossip.x", { max: 1 });
  await sub.flush();
  await control("await-interest n2 cl.gossip.x");
  const pub = await connectToNode(2);
  pub.publish("cl.gossip.x", "n2->n3");
  await pub.flush();
  const got = [];
  const timer = setTimeout(() => s.unsubscribe(), 5000);
  for await (const m of s) got.push(m.string());
  clearTimeout(timer);
  await pub.close();
  await sub.close();
  return { routes: view, received: got };
});
