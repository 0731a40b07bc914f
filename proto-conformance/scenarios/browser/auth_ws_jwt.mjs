//! websocket: ws
// Operator mode from a browser page: nats.ws's jwtAuthenticator (with a seed, and alone for a
// bearer JWT) and credsAuthenticator against the JWTs of ../_auth_fixtures_gen.go (config:
// sibling auth_ws_jwt.conf). alice (scoped signing key, template choiros.user.{{name()}}.>)
// reads her own events and is refused bob's; refused JWTs give AUTHORIZATION_VIOLATION.
import { errorCode } from "./_flow.mjs";
import { F } from "./_auth_fixtures.mjs";

export async function run(nats, env) {
  const sc = nats.StringCodec();
  const enc = new TextEncoder();
  const opts = (authenticator) => ({ servers: env.url, authenticator, timeout: 5000, reconnect: false });
  const attempt = async (authenticator) => {
    try {
      const nc = await nats.connect(opts(authenticator));
      await nc.flush();
      await nc.close();
      return "connected";
    } catch (e) {
      return errorCode(e);
    }
  };

  const alice = await nats.connect(opts(nats.jwtAuthenticator(F.jwt.alice, enc.encode(F.seed.alice))));
  const bob = await nats.connect(opts(nats.credsAuthenticator(enc.encode(F.creds.bob))));
  const sub = alice.subscribe("choiros.user.alice.>");
  await alice.flush();
  bob.publish("choiros.user.alice.ev", sc.encode("forged"));
  await bob.flush();
  alice.publish("choiros.user.alice.ev", sc.encode("mine"));
  await alice.flush();
  const got = [];
  for await (const m of sub) {
    got.push(sc.decode(m.data));
    break;
  }
  let spy;
  const bad = bob.subscribe("choiros.user.alice.>");
  try {
    for await (const _ of bad) break;
    spy = "allowed";
  } catch (e) {
    spy = errorCode(e);
  }
  await alice.close();
  await bob.close();
  const logins = {};
  logins.bearer = await attempt(nats.jwtAuthenticator(F.jwt.bearer));
  for (const name of ["admin", "expired", "revoked", "tampered", "foreign", "ghost"]) {
    logins[name] = await attempt(nats.credsAuthenticator(enc.encode(F.creds[name])));
  }
  return { got, spy, logins };
}
