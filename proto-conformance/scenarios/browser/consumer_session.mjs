//! flags: -js
//! websocket: ws
// A ChoirOS browser session (seed design): the page creates an ephemeral push consumer on its
// own user's events in USER_EVENTS, reads and acks them, gets new ones live, then an ordered
// consumer replays the same history; after the page unsubscribes the server removes the
// ephemeral consumer once its inactive threshold passed.
import { waitFor } from "./_flow.mjs";

export async function run(nats, env) {
  const sc = nats.StringCodec();
  const obs = {};
  const nc = await nats.connect({ servers: env.url, timeout: 5000 });
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: "USER_EVENTS", subjects: ["choiros.user.>"] });
  const js = nc.jetstream();
  for (const [u, e] of [["u1", "login"], ["u2", "login"], ["u1", "action.COMMAND"], ["u1", "file.saved"]]) {
    await js.publish(`choiros.user.${u}.${e}`, sc.encode(`${u}:${e}`));
  }

  const opts = nats.consumerOpts();
  opts.deliverTo(nats.createInbox());
  opts.ackExplicit();
  opts.manualAck();
  opts.deliverAll();
  opts.inactiveEphemeralThreshold(500);
  const sub = await js.subscribe("choiros.user.u1.>", opts);
  const seen = [];
  const done = (async () => {
    for await (const m of sub) {
      seen.push([m.subject, sc.decode(m.data), m.info.streamSequence, m.info.redelivered]);
      m.ack();
      if (seen.length === 4) break;
    }
  })();
  await waitFor(() => seen.length === 3, 5000, "the session's history");
  await js.publish("choiros.user.u2.action.COMMAND", sc.encode("not mine"));
  await js.publish("choiros.user.u1.action.COMMAND", sc.encode("u1:live"));
  await done;
  obs.session = seen;
  const name = (await sub.consumerInfo()).name;

  const oopts = nats.consumerOpts();
  oopts.orderedConsumer();
  const ordered = await js.subscribe("choiros.user.u1.>", oopts);
  const replay = [];
  for await (const m of ordered) {
    replay.push(sc.decode(m.data));
    if (replay.length === 4) break;
  }
  obs.ordered = replay;

  // The server drops the unbound ephemeral after its inactive threshold.
  const before = [];
  for await (const c of jsm.consumers.list("USER_EVENTS")) before.push(c.name === name);
  obs.listed_before = before.includes(true);
  let gone = false;
  for (let i = 0; i < 100 && !gone; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      await jsm.consumers.info("USER_EVENTS", name);
    } catch (err) {
      gone = err?.api_error?.err_code ?? String(err?.message ?? err);
    }
  }
  obs.after_threshold = gone;
  await jsm.streams.delete("USER_EVENTS");
  await nc.close();
  return obs;
}
