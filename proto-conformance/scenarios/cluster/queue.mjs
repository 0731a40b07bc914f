// Queue group across the cluster: one member on each node, N messages published on n1, each
// delivered to exactly one member in total (which node gets how many is random: not printed),
// while a plain subscriber on n2 gets them all.
//! nodes: 3
//! mixed: true
import { connectToNode, control, scenario } from "../../js/lib.mjs";

const N = 90;
await scenario(async () => {
  const seen = new Map();
  let total = 0;
  const members = [];
  for (const node of [1, 2, 3]) {
    const nc = await connectToNode(node, { name: `member-n${node}` });
    nc.subscribe("cl.q.work", {
      queue: "workers",
      callback: (_err, m) => {
        total++;
        seen.set(m.string(), (seen.get(m.string()) ?? 0) + 1);
      },
    });
    await nc.flush();
    members.push(nc);
  }
  const plainNc = await connectToNode(2);
  let plain = 0;
  plainNc.subscribe("cl.q.work", { callback: () => plain++ });
  // A marker the plain subscriber gets after everything else from n1 (same route, in order).
  const done = plainNc.subscribe("cl.q.done", { max: 1 });
  await plainNc.flush();
  // n1 sees the group's interest from both other nodes, the plain one and the marker from n2.
  await control("await-interest n1 cl.q.work 2");
  await control("await-interest n1 cl.q.done");
  const pub = await connectToNode(1);
  for (let i = 0; i < N; i++) pub.publish("cl.q.work", `job-${i}`);
  pub.publish("cl.q.done", "");
  await pub.flush();
  for await (const _ of done) break;
  // Queue deliveries to n3 or n1 members are not ordered with the marker: wait for the count,
  // then round-trip every member connection so anything already sent to it is in.
  const deadline = Date.now() + 5000;
  while (total < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  for (const nc of members) await nc.flush();
  for (const nc of [...members, plainNc, pub]) await nc.close();
  return {
    published: N,
    queue_total: total,
    distinct: seen.size,
    seen_twice: [...seen.values()].filter((v) => v > 1).length,
    plain_on_n2: plain,
  };
});
