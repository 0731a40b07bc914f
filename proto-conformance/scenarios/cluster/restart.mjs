// A node restart: n2 is killed (the others drop it: remotes 1), started again on the same
// ports, the cluster re-forms (remotes 2 everywhere) and traffic flows between every pair of
// nodes again, including the restarted one.
//! nodes: 3
//! mixed: true
import { connectToNode, control, monitor, scenario } from "../../js/lib.mjs";

const remotes = async () => {
  const out = {};
  for (const k of [1, 2, 3]) {
    try {
      const v = await monitor(k, "/varz");
      out[`n${k}`] = { remotes: v.remotes, routes: v.routes };
    } catch {
      out[`n${k}`] = "down";
    }
  }
  return out;
};

/** Every node publishes to every other node's subscriber: which deliveries happened. */
async function matrix() {
  const conns = [];
  const subs = [];
  for (const k of [1, 2, 3]) {
    const nc = await connectToNode(k);
    subs.push(nc.subscribe(`cl.rs.n${k}`));
    await nc.flush();
    conns.push(nc);
  }
  for (const i of [1, 2, 3])
    for (const j of [1, 2, 3]) if (i !== j) await control(`await-interest n${i} cl.rs.n${j}`);
  for (const i of [1, 2, 3])
    for (const j of [1, 2, 3]) if (i !== j) conns[i - 1].publish(`cl.rs.n${j}`, `n${i}->n${j}`);
  for (const nc of conns) await nc.flush();
  const got = [];
  for (const sub of subs) {
    const timer = setTimeout(() => sub.unsubscribe(), 5000);
    let n = 0;
    for await (const m of sub) {
      got.push(m.string());
      if (++n === 2) break;
    }
    clearTimeout(timer);
  }
  for (const nc of conns) await nc.close();
  return got.sort();
}

await scenario(async () => {
  const before = await matrix();
  const n2 = await connectToNode(2);
  const closed = n2.closed();
  await control("kill n2");
  const n2Closed = (await closed) instanceof Error ? "closed with error" : "closed";
  await control("await-mesh");
  const whileDown = await remotes();
  await control("restart n2");
  await control("await-mesh");
  const after = await remotes();
  return { before, n2_client: n2Closed, while_down: whileDown, after, traffic_after: await matrix() };
});
