// Key-value buckets with nats.js v3 (@nats-io/kv): create, put/get, create conflicts,
// update with revisions, delete, purge, status. Watchers, history and keys: kv_watch.mjs.
//! flags: -js
import { connectTo, scenario } from "../../js/lib.mjs";
import { Kvm, describeJsError } from "./_jetstream.mjs";

async function attempt(fn) {
  try {
    return { ok: await fn() };
  } catch (err) {
    return { error: describeJsError(err) };
  }
}

const entry = (e) => e === null ? null : {
  key: e.key, revision: e.revision, operation: e.operation, value: e.string(),
};

await scenario(async () => {
  const nc = await connectTo();
  const kvm = new Kvm(nc);
  const kv = await kvm.create("cfg", { history: 5 });
  const obs = {};
  obs.puts = [await kv.put("theme", "dark"), await kv.put("theme", "light"), await kv.put("lang", "en")];
  obs.get = entry(await kv.get("theme"));
  obs.missing = entry(await kv.get("nope"));
  obs.create_existing = await attempt(() => kv.create("theme", "again"));
  obs.create_new = await attempt(() => kv.create("fresh", "new"));
  obs.update_ok = await attempt(() => kv.update("theme", "blue", 2));
  obs.update_stale = await attempt(() => kv.update("theme", "stale", 2));
  obs.delete = await kv.delete("theme");
  obs.after_delete = entry(await kv.get("theme"));
  obs.recreate = await attempt(() => kv.create("theme", "back"));
  await kv.purge("lang");
  obs.after_purge = entry(await kv.get("lang"));
  const st = await kv.status();
  obs.status = { bucket: st.bucket, values: st.values, history: st.history, backingStore: st.backingStore };
  obs.destroy = await kv.destroy();
  await nc.close();
  return obs;
});
