// Push consumers with nats.js v3: a durable push consumer read with consume() and acked
// (ackAck), an ordered push consumer, a deliver group over two queue subscriptions, pause and
// resume, info and names. Also a pull consumer next to them (the design's AGENT_POOL).
//! flags: -js
import { connectTo, scenario } from "../../js/lib.mjs";
import { jetstream, jetstreamManager, AckPolicy, DeliverPolicy, describeJsError } from "./_jetstream.mjs";

const pick = (i) => ({
  name: i.name, push_bound: i.push_bound ?? false, num_pending: i.num_pending,
  num_ack_pending: i.num_ack_pending, delivered: i.delivered.stream_seq,
  ack_floor: i.ack_floor.stream_seq, deliver_subject: i.config.deliver_subject ?? null,
  deliver_group: i.config.deliver_group ?? null,
});

async function take(iter, n) {
  const out = [];
  for await (const m of iter) {
    out.push(m);
    if (out.length === n) break;
  }
  return out;
}

await scenario(async () => {
  const nc = await connectTo();
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const obs = {};
  await jsm.streams.add({ name: "USER_EVENTS", subjects: ["choiros.user.>"] });
  for (let i = 1; i <= 6; i++) {
    const kind = i % 2 ? "action.COMMAND" : "file.saved";
    await js.publish(`choiros.user.u${i}.${kind}`, `e${i}`);
  }

  // The design's AGENT_POOL (pull) beside a browser session's push consumer.
  await jsm.consumers.add("USER_EVENTS", {
    durable_name: "AGENT_POOL", filter_subject: "choiros.user.*.action.COMMAND",
    deliver_policy: DeliverPolicy.All, ack_policy: AckPolicy.Explicit, max_deliver: 3,
  });
  const pool = await js.consumers.get("USER_EVENTS", "AGENT_POOL");
  const batch = await pool.fetch({ max_messages: 3, expires: 2000 });
  obs.pool = [];
  for await (const m of batch) {
    obs.pool.push([m.subject, m.string(), m.info.deliveryCount]);
    m.ack();
  }

  await jsm.consumers.add("USER_EVENTS", {
    durable_name: "SESSION", deliver_subject: "choiros.deliver.session",
    ack_policy: AckPolicy.Explicit, filter_subject: "choiros.user.>",
    flow_control: true, idle_heartbeat: 1_000_000_000,
  });
  obs.session_unbound = pick(await jsm.consumers.info("USER_EVENTS", "SESSION"));
  const session = await js.consumers.getPushConsumer("USER_EVENTS", "SESSION");
  const msgs = await session.consume();
  obs.session = [];
  for (const m of await take(msgs, 6)) {
    obs.session.push([m.subject, m.string(), m.seq, m.info.pending]);
    obs.session.push(await m.ackAck());
  }
  obs.session_bound = pick(await jsm.consumers.info("USER_EVENTS", "SESSION"));
  await msgs.close();

  const ordered = await js.consumers.getPushConsumer("USER_EVENTS", {
    filter_subjects: ["choiros.user.*.file.>"],
  });
  const oms = await ordered.consume();
  obs.ordered = (await take(oms, 3)).map((m) => [m.subject, m.string()]);
  await oms.close();

  // A deliver group split across two queue subscribers.
  await jsm.consumers.add("USER_EVENTS", {
    durable_name: "GROUP", deliver_subject: "choiros.deliver.group", deliver_group: "g",
    ack_policy: AckPolicy.None,
  });
  const a = nc.subscribe("choiros.deliver.group", { queue: "g" });
  const b = nc.subscribe("choiros.deliver.group", { queue: "g" });
  const got = [];
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`group got ${got.length} of 6`)), 5000);
    for (const s of [a, b]) {
      (async () => {
        for await (const m of s) {
          got.push(m.string());
          if (got.length === 6) { clearTimeout(t); resolve(); }
        }
      })();
    }
  });
  obs.group = got.sort();
  obs.group_info = pick(await jsm.consumers.info("USER_EVENTS", "GROUP"));

  const p = await jsm.consumers.pause("USER_EVENTS", "SESSION", new Date("2999-01-01T00:00:00Z"));
  obs.pause = { paused: p.paused, pause_until: p.pause_until };
  const r = await jsm.consumers.resume("USER_EVENTS", "SESSION");
  obs.resume = { paused: r.paused };
  try {
    await jsm.consumers.pause("USER_EVENTS", "NOPE", new Date("2999-01-01T00:00:00Z"));
  } catch (err) {
    obs.pause_missing = describeJsError(err);
  }
  const names = [];
  // The ordered consumer's generated name differs per run.
  for await (const n of jsm.consumers.list("USER_EVENTS")) {
    names.push(n.name.startsWith("oc_") ? "oc_<generated>" : n.name);
  }
  obs.names = names.sort();
  for (const n of ["AGENT_POOL", "SESSION", "GROUP"]) await jsm.consumers.delete("USER_EVENTS", n);
  await jsm.streams.delete("USER_EVENTS");
  await nc.close();
  return obs;
});
