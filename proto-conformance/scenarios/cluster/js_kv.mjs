// A KV bucket with three replicas: written on one node, read and watched on the others;
// create conflicts, revisions and history hold cluster-wide.
//! nodes: 3
//! flags: -js
//! timeout: 60
import { connectToNode, control, scenario } from "../../js/lib.mjs";
import { Kvm, jetstreamManager } from "./_jetstream.mjs";

async function attempt(fn) {
  try {
    return { ok: await fn() };
  } catch (err) {
    return { error: String(err?.constructor?.name) };
  }
}

await scenario(async () => {
  await control("await-jetstream");
  const [a, b, c] = [await connectToNode(1), await connectToNode(2), await connectToNode(3)];
  const kv1 = await new Kvm(a).create("cfg", { history: 5, replicas: 3 });
  const kv2 = await new Kvm(b).open("cfg");
  const kv3 = await new Kvm(c).open("cfg");
  const obs = {};
  obs.puts = [await kv1.put("theme", "dark"), await kv2.put("theme", "light"), await kv3.put("lang", "en")];
  const e = await kv3.get("theme");
  obs.get = { key: e.key, revision: e.revision, value: e.string() };
  obs.create_existing = await attempt(() => kv2.create("theme", "again"));
  obs.update_stale = await attempt(() => kv1.update("theme", "x", 1));
  obs.update_ok = await attempt(() => kv3.update("theme", "blue", 2));
  const hist = [];
  for await (const h of await kv2.history({ key: "theme" })) hist.push([h.revision, h.operation, h.string()]);
  obs.history = hist;
  await kv1.delete("lang");
  obs.deleted = (await kv2.get("lang"))?.operation ?? null;
  const keys = [];
  for await (const k of await kv3.keys()) keys.push(k);
  obs.keys = keys.sort();
  const si = await (await jetstreamManager(b)).streams.info("KV_cfg");
  obs.stream = { replicas: si.config.num_replicas, messages: si.state.messages, cluster_replicas: si.cluster.replicas.length };
  await (await jetstreamManager(a)).streams.delete("KV_cfg");
  for (const nc of [a, b, c]) await nc.close();
  return obs;
});
