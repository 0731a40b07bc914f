// KV watchers with nats.js v3 (@nats-io/kv, ordered push consumers): last values then updates
// in order, updates only, one key, all history; keys and history.
//! flags: -js
import { connectTo, scenario } from "../../js/lib.mjs";
import { Kvm } from "./_jetstream.mjs";

const e = (x) => [x.key, x.string(), x.operation, x.revision];

// A watcher can be iterated only once: keep one iterator per watcher and pull from it.
const iters = new Map();
async function take(w, n) {
  if (!iters.has(w)) iters.set(w, w[Symbol.asyncIterator]());
  const it = iters.get(w);
  const out = [];
  const timer = setTimeout(() => w.stop(), 5000);
  while (out.length < n) {
    const r = await it.next();
    if (r.done) throw new Error(`watch ended after ${out.length} of ${n}`);
    out.push(e(r.value));
  }
  clearTimeout(timer);
  return out;
}

await scenario(async () => {
  const nc = await connectTo();
  const kv = await new Kvm(nc).create("watched", { history: 10 });
  await kv.put("a", "1");
  await kv.put("b", "1");
  await kv.put("a", "2");
  const last = await kv.watch();
  const updates = await kv.watch({ include: "updates" });
  const onlyB = await kv.watch({ key: "b" });
  const initial = await take(last, 2);
  await kv.put("c", "3");
  await kv.delete("a");
  await kv.put("b", "4");
  await kv.purge("c");
  const obs = {
    initial,
    changes: await take(last, 4),
    updates: await take(updates, 4),
    only_b: await take(onlyB, 2),
  };
  const hist = await kv.watch({ include: "history" });
  obs.history_watch = await take(hist, 6); // the purge of c rolled up its put
  const keys = [];
  for await (const k of await kv.keys()) keys.push(k);
  obs.keys = keys.sort();
  const h = [];
  for await (const x of await kv.history({ key: "a" })) h.push(e(x));
  obs.history_a = h;
  for (const w of [last, updates, onlyB, hist]) w.stop();
  await kv.destroy();
  await nc.close();
  return obs;
});
