//! config: accounts {
//! config:   A { users: [
//! config:     { user: alice, password: a, permissions: { publish: ["choiros.user.alice.>"], subscribe: ["choiros.user.alice.>", "_INBOX.>"] } }
//! config:     { user: bob, password: b, permissions: { publish: ["choiros.user.bob.>"], subscribe: ["choiros.user.bob.>", "_INBOX.>"] } }
//! config:     { user: svc, password: s, permissions: { subscribe: ["svc.>"], allow_responses: true } }
//! config:     { user: ro, password: r, permissions: { publish: { deny: [">"] }, subscribe: { allow: ["choiros.>", "public.>", "_INBOX.>"], deny: ["choiros.user.bob.>"] } } }
//! config:     { user: admin, password: x }
//! config:     { user: obs, password: o }
//! config:     { user: resp, password: o }
//! config:   ] }
//! config:   B { users: [ { user: carol, password: c }, { user: obsb, password: o }, { user: respb, password: o } ] }
//! config: }
//! websocket: ws
//! timeout: 120
// A permission matrix run by nats.ws in Chromium: six users in two accounts, each trying to
// publish, subscribe and request on subjects of their own, of another user, of a service and a
// public one. For every cell the page records what happened: whether a publish reached an
// observer of the user's account (and never one of the other account), whether a
// subscription was refused or receives what its account publishes (and never what the other
// account publishes), and how a request ended (reply, refused, no responders).
// admin's request to svc.echo is answered by svc through allow_responses alone.
// The ChoirOS rule: alice only on choiros.user.alice.>, bob only on choiros.user.bob.>.
import { errorCode } from "./_flow.mjs";

const USERS = {
  alice: { pass: "a", acc: "A" },
  bob: { pass: "b", acc: "A" },
  svc: { pass: "s", acc: "A" },
  ro: { pass: "r", acc: "A" },
  admin: { pass: "x", acc: "A" },
  carol: { pass: "c", acc: "B" },
};
const EVENTS = ["choiros.user.alice.ev", "choiros.user.bob.ev", "svc.echo", "public.news"];
const REQUESTS = ["choiros.user.alice.svc", "choiros.user.bob.svc", "svc.echo", "public.svc"];

export async function run(nats, env) {
  const sc = nats.StringCodec();
  const connect = (user, pass) =>
    nats.connect({ servers: env.url, user, pass, timeout: 5000, reconnect: false });

  // Observers subscribed to everything in each account, recording payloads.
  const observers = {};
  for (const [acc, user] of [["A", "obs"], ["B", "obsb"]]) {
    const nc = await connect(user, "o");
    const seen = [];
    nc.subscribe(">", { callback: (_e, m) => seen.push(sc.decode(m.data)) });
    await nc.flush();
    observers[acc] = { nc, seen };
  }
  // Responders: a plain user per account, and the reply-only service in A.
  for (const [acc, user] of [["A", "resp"], ["B", "respb"]]) {
    const nc = await connect(user, "o");
    const subjects = acc === "A" ? REQUESTS.filter((s) => s !== "svc.echo") : REQUESTS;
    for (const s of subjects) {
      nc.subscribe(s, { callback: (_e, m) => m.respond(sc.encode(`${acc}:${m.subject}`)) });
    }
    await nc.flush();
  }
  const svcResponder = await connect("svc", "s");
  svcResponder.subscribe("svc.echo", {
    callback: (_e, m) => m.reply && m.respond(sc.encode("svc:echo")),
  });
  await svcResponder.flush();

  const flushAll = async (...ncs) => {
    for (const nc of ncs) await nc.flush();
  };
  const matrix = {};
  for (const [user, { pass, acc }] of Object.entries(USERS)) {
    const other = acc === "A" ? "B" : "A";
    const nc = await connect(user, pass);
    const errors = [];
    (async () => {
      for await (const s of nc.status()) {
        if (s.type === "error" && s.permissionContext) {
          errors.push(`${s.permissionContext.operation} ${s.permissionContext.subject}`);
        }
      }
    })();
    const row = { pub: {}, sub: {}, req: {} };

    for (const subject of EVENTS) {
      const marker = `${user}->${subject}`;
      nc.publish(subject, sc.encode(marker));
      await flushAll(nc, observers.A.nc, observers.B.nc);
      const home = observers[acc].seen.includes(marker);
      const leaked = observers[other].seen.includes(marker);
      const refused = errors.includes(`publish ${subject}`);
      row.pub[subject] = leaked ? "LEAKED" : home ? "delivered" : refused ? "refused" : "lost";
    }

    for (const subject of EVENTS) {
      const sub = nc.subscribe(subject);
      const got = [];
      let err = null;
      const done = (async () => {
        try {
          for await (const m of sub) got.push(sc.decode(m.data));
        } catch (e) {
          err = errorCode(e);
        }
      })();
      await nc.flush();
      if (err !== null || sub.isClosed()) {
        await done; // a refused subscription ends its iterator with the error
        row.sub[subject] = err ?? "closed";
        continue;
      }
      observers[acc].nc.publish(subject, sc.encode(`home:${subject}`));
      observers[other].nc.publish(subject, sc.encode(`away:${subject}`));
      await flushAll(observers.A.nc, observers.B.nc, nc);
      sub.unsubscribe();
      await done;
      row.sub[subject] = got.length ? got.join(",") : err ?? "nothing";
    }

    for (const subject of REQUESTS) {
      try {
        const r = await nc.request(subject, sc.encode("q"), { timeout: 3000 });
        row.req[subject] = sc.decode(r.data);
      } catch (e) {
        row.req[subject] = errorCode(e);
      }
    }
    await nc.flush();
    row.errors = [...errors].sort();
    await nc.close();
    matrix[user] = row;
  }
  return matrix;
}
