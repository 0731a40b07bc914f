// Queue groups with nats.js: three members on separate connections share the messages (each
// message to exactly one member), a plain subscriber gets every message.
import { connectTo, scenario } from "../../js/lib.mjs";

const N = 60;
await scenario(async () => {
  const members = [];
  const counts = [];
  const seen = new Map();
  for (let i = 0; i < 3; i++) {
    const c = await connectTo({ name: `member-${i}` });
    counts.push(0);
    c.subscribe("js.q.work", {
      queue: "workers",
      callback: (_err, m) => {
        counts[i]++;
        seen.set(m.string(), (seen.get(m.string()) ?? 0) + 1);
      },
    });
    await c.flush();
    members.push(c);
  }
  const plain = await connectTo();
  let plainCount = 0;
  plain.subscribe("js.q.work", { callback: () => plainCount++ });
  await plain.flush();
  const pub = await connectTo();
  for (let i = 0; i < N; i++) pub.publish("js.q.work", `job-${i}`);
  await pub.flush();
  // Drain every receiver: all delivered messages are processed before drain resolves.
  for (const c of members) await c.drain();
  await plain.drain();
  await pub.close();
  return {
    published: N,
    queue_total: counts.reduce((x, y) => x + y, 0),
    distinct_jobs: seen.size,
    delivered_twice: [...seen.values()].filter((v) => v > 1).length,
    members_with_messages_at_most_3: counts.filter((c) => c > 0).length <= 3,
    plain: plainCount,
  };
});
