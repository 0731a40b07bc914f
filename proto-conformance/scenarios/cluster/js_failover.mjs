// An R3 stream on three nodes loses its leader: every publish acknowledged before, and every
// one acknowledged by the new leader after (retried with the same Nats-Msg-Id until acked),
// is read back once, in order, from a survivor; the killed node comes back and catches up.
//! nodes: 3
//! flags: -js
//! timeout: 120
import { connectToNode, control, nodeUrl, scenario } from "../../js/lib.mjs";
import { jetstream, jetstreamManager, AckPolicy } from "./_jetstream.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function retry(fn, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(250);
    }
  }
}

await scenario(async () => {
  await control("await-jetstream");
  const nc1 = await connectToNode(1);
  const jsm = await jetstreamManager(nc1);
  const si = await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"], num_replicas: 3 });
  const obs = { replicas: si.config.num_replicas, cluster_replicas: si.cluster.replicas.length };
  await jsm.consumers.add("ORDERS", { durable_name: "all", ack_policy: AckPolicy.Explicit });
  const js1 = jetstream(nc1, { timeout: 2000 });
  const before = [];
  for (let i = 1; i <= 50; i++) {
    // The new stream's subjects reach n1's interest a moment after the create answer.
    before.push((await retry(() => js1.publish(`orders.${i % 5}`, `m${i}`, { msgID: `m${i}` }))).seq);
  }
  obs.acked_before = before.length;
  obs.sequences_in_order = before.every((s, i) => s === i + 1);
  const leader = (await jsm.streams.info("ORDERS")).cluster.leader;
  const k = Number(leader.slice(1));
  await control(`kill n${k}`);
  const survivor = k === 1 ? 2 : 1;
  const nc = await connectToNode(survivor);
  const js = jetstream(nc, { timeout: 2000 });
  const after = [];
  for (let i = 51; i <= 80; i++) {
    after.push((await retry(() => js.publish(`orders.${i % 5}`, `m${i}`, { msgID: `m${i}` }))).seq);
  }
  obs.acked_after = after.length;
  obs.after_in_order = after.every((s, i) => s === i + 51);
  const jsm2 = await retry(() => jetstreamManager(nc, { timeout: 2000 }));
  const info = await retry(() => jsm2.streams.info("ORDERS"));
  obs.new_leader_is_a_survivor = info.cluster.leader !== leader;
  obs.messages = info.state.messages;
  const got = [];
  await retry(async () => {
    const c = await js.consumers.get("ORDERS", "all");
    const iter = await c.fetch({ max_messages: 80 - got.length, expires: 5000 });
    for await (const m of iter) {
      got.push(m.string());
      m.ack();
      if (got.length === 80) break;
    }
    if (got.length < 80) throw new Error(`${got.length} of 80 so far`);
  });
  obs.read_back_once_in_order = got.length === 80 && got.every((p, i) => p === `m${i + 1}`);
  await control(`restart n${k}`);
  await control("await-mesh");
  const back = await retry(async () => {
    const i = await jsm2.streams.info("ORDERS");
    const r = i.cluster.replicas.find((x) => x.name === leader);
    if (i.cluster.leader !== leader && !(r && r.current)) throw new Error("not caught up");
    return true;
  });
  obs.restarted_replica_current = back;
  await jsm2.streams.delete("ORDERS");
  await nc.close();
  await nc1.close();
  return obs;
}, { timeoutMs: 110000 });
