// Request/reply with nats.js: a callback responder, headers on the reply, a request with an
// explicit timeout, and the responder seeing an inbox reply subject.
import { connectTo, scenario, headers, describeMsg } from "../../js/lib.mjs";

await scenario(async () => {
  const svc = await connectTo({ name: "responder" });
  const seen = [];
  svc.subscribe("js.svc.echo", {
    callback: (err, m) => {
      if (err) throw err;
      seen.push({ subject: m.subject, data: m.string(), reply_is_inbox: m.reply.startsWith("_INBOX.") });
      const h = headers();
      h.set("Served-By", "echo");
      m.respond(`echo: ${m.string()}`, { headers: h });
    },
  });
  await svc.flush();
  const nc = await connectTo({ name: "requester" });
  const replies = [];
  for (const body of ["one", "two", ""]) {
    const r = await nc.request("js.svc.echo", body, { timeout: 2000 });
    replies.push(describeMsg(r));
  }
  await nc.close();
  await svc.close();
  return { replies, seen };
});
