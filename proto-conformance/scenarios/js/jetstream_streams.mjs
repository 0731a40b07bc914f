// JetStream streams with nats.js v3: create, publish with acks (dedupe, expectations),
// info, message get/delete, purge, names, the ChoirOS overlap and replica errors, delete.
//! flags: -js
import { connectTo, scenario } from "../../js/lib.mjs";
import {
  jetstream, jetstreamManager, StorageType, RetentionPolicy, describeJsError,
} from "./_jetstream.mjs";

async function attempt(fn) {
  try {
    return { ok: await fn() };
  } catch (err) {
    return { error: describeJsError(err) };
  }
}

const ack = (a) => ({ stream: a.stream, seq: a.seq, duplicate: a.duplicate });
const state = (i) => ({
  messages: i.state.messages, bytes: i.state.bytes, first_seq: i.state.first_seq,
  last_seq: i.state.last_seq, num_deleted: i.state.num_deleted ?? 0,
  num_subjects: i.state.num_subjects ?? 0,
});

await scenario(async () => {
  const nc = await connectTo();
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const obs = {};

  const created = await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
  obs.created = { name: created.config.name, storage: created.config.storage,
    retention: created.config.retention, replicas: created.config.num_replicas,
    duplicate_window: created.config.duplicate_window, state: state(created) };

  obs.acks = [];
  for (const s of ["orders.a", "orders.b", "orders.a"]) obs.acks.push(ack(await js.publish(s, s)));
  obs.acks.push(ack(await js.publish("orders.c", "once", { msgID: "m1" })));
  obs.acks.push(ack(await js.publish("orders.c", "twice", { msgID: "m1" })));
  obs.acks.push(ack(await js.publish("orders.c", "next", { expect: { lastSequence: 4 } })));
  obs.wrong_last = await attempt(() => js.publish("orders.c", "x", { expect: { lastSequence: 1 } }));
  obs.wrong_stream = await attempt(() => js.publish("orders.c", "x", { expect: { streamName: "NOPE" } }));
  obs.subject_seq = await attempt(async () =>
    ack(await js.publish("orders.b", "y", { expect: { lastSubjectSequence: 2 } })));

  const m = await jsm.streams.getMessage("ORDERS", { seq: 2 });
  obs.get = { subject: m.subject, seq: m.seq, data: m.string() };
  const last = await jsm.streams.getMessage("ORDERS", { last_by_subj: "orders.a" });
  obs.last_a = { seq: last.seq, data: last.string() };
  obs.missing = await attempt(() => jsm.streams.getMessage("ORDERS", { seq: 99 }));

  obs.deleted = await jsm.streams.deleteMessage("ORDERS", 1);
  obs.deleted_again = await attempt(() => jsm.streams.deleteMessage("ORDERS", 1));
  obs.after_delete = state(await jsm.streams.info("ORDERS"));
  const purge = await jsm.streams.purge("ORDERS", { filter: "orders.c" });
  obs.purge = { success: purge.success, purged: purge.purged };
  obs.after_purge = state(await jsm.streams.info("ORDERS"));
  const subj = await jsm.streams.info("ORDERS", { subjects_filter: ">" });
  obs.subjects = subj.state.subjects;

  obs.r3 = await attempt(() => jsm.streams.add({ name: "R3", subjects: ["r3"], num_replicas: 3 }));
  await jsm.streams.add({ name: "AGENT_EVENTS", subjects: ["choiros.agent.>"], max_age: 168 * 3600e9 });
  obs.inbox_overlap = await attempt(() => jsm.streams.add({
    name: "AGENT_INBOX", subjects: ["choiros.agent.*.inbox"], retention: RetentionPolicy.Workqueue,
    max_msgs_per_subject: 1000, storage: StorageType.Memory,
  }));
  obs.inbox_publish = ack(await js.publish("choiros.agent.a1.inbox", "task"));
  obs.no_stream = await attempt(() => js.publish("nobody.here", "x"));

  obs.names = [];
  for await (const n of jsm.streams.names()) obs.names.push(n);
  obs.names.sort();
  const ai = await jsm.getAccountInfo();
  obs.account = { streams: ai.streams, consumers: ai.consumers, storage: ai.storage, memory: ai.memory };

  obs.delete = await jsm.streams.delete("ORDERS");
  obs.info_deleted = await attempt(() => jsm.streams.info("ORDERS"));
  // Leave the store empty (repeated runs reuse the store directory).
  obs.cleanup = await jsm.streams.delete("AGENT_EVENTS");
  await nc.close();
  return obs;
});
