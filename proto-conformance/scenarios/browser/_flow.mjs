// What every browser scenario checks, in a real page with nats.ws (see ../../js/browser.mjs).
// Observations are facts a web application relies on: payloads, subjects, header values,
// error codes, that a reconnect happened. Never timings.

/** The next `n` messages of a subscription as {subject, data}, or throw after `ms`. */
export async function take(sub, n, ms = 5000) {
  const out = [];
  const timer = setTimeout(() => sub.unsubscribe(), ms);
  for await (const m of sub) {
    out.push({ subject: m.subject, data: new TextDecoder().decode(m.data) });
    if (out.length === n) break;
  }
  clearTimeout(timer);
  if (out.length < n) throw new Error(`got ${out.length} of ${n} messages on ${sub.getSubject()}`);
  return out;
}

export async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The error code nats.ws gives (its `code`), else the message. */
export function errorCode(err) {
  return err?.code ?? String(err?.message ?? err);
}

/** Connect, publish/subscribe, request/reply, headers, no responders, 900 KiB, and (with
 *  `restart`) survive a server restart: the whole life of a web page's connection. */
export async function flow(nats, env, auth, { restart = true } = {}) {
  const sc = nats.StringCodec();
  const obs = {};
  const nc = await nats.connect({
    servers: env.url,
    ...auth,
    timeout: 5000,
    reconnectTimeWait: 200,
    maxReconnectAttempts: -1,
  });
  obs.info = nc.info;

  const sub = nc.subscribe("browser.>");
  await nc.flush();
  nc.publish("browser.a", sc.encode("one"));
  nc.publish("browser.b.c", sc.encode("two"));
  obs.pubsub = await take(sub, 2);

  nc.subscribe("svc.upper", {
    callback: (_err, m) => m.respond(sc.encode(sc.decode(m.data).toUpperCase())),
  });
  await nc.flush();
  const r = await nc.request("svc.upper", sc.encode("hello from the browser"), { timeout: 3000 });
  obs.request = sc.decode(r.data);

  const hsub = nc.subscribe("hdr", { max: 1 });
  await nc.flush();
  const h = nats.headers();
  h.set("X-Trace", "t-1");
  nc.publish("hdr", sc.encode("with header"), { headers: h });
  for await (const m of hsub) {
    obs.headers = { trace: m.headers?.get("X-Trace"), data: sc.decode(m.data) };
  }

  try {
    await nc.request("nobody.home", sc.encode("?"), { timeout: 2000 });
    obs.noResponders = "answered";
  } catch (err) {
    obs.noResponders = errorCode(err);
  }

  // 900 KiB: over the 4 KB frames a browser gets, and back.
  const big = new Uint8Array(900 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 251;
  const bsub = nc.subscribe("browser.big.echo", { max: 1 });
  await nc.flush();
  nc.publish("browser.big.echo", big);
  for await (const m of bsub) {
    let same = m.data.length === big.length;
    for (let i = 0; same && i < big.length; i++) same = m.data[i] === big[i];
    obs.big = { length: m.data.length, same };
  }

  if (restart) {
    const events = [];
    (async () => {
      for await (const s of nc.status()) events.push(s.type);
    })();
    const rsub = nc.subscribe("after.restart");
    await nc.flush();
    await env.restart();
    await waitFor(() => events.includes("reconnect"), 20000, "a reconnect");
    await nc.flush();
    nc.publish("after.restart", sc.encode("still here"));
    obs.afterRestart = await take(rsub, 1);
    obs.events = { disconnect: events.includes("disconnect"), reconnect: true };
  }
  await nc.close();
  obs.closed = (await nc.closed()) ?? null;
  return obs;
}
