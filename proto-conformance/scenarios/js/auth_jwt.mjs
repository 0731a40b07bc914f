// Operator mode (MEMORY resolver, JWTs minted by nats-io/jwt: ../_auth_fixtures_gen.go) through
// nats.js's jwtAuthenticator and credsAuthenticator. alice and bob are signed by a scoped
// signing key whose template confines each to choiros.user.{{name()}}.>; neither sees or
// writes the other's events, requests within one's own space work (allow_responses in the
// scope), and expired, not yet valid, revoked, tampered, wrongly signed JWTs and unknown
// accounts are refused.
// Config: sibling auth_jwt.conf.
import { connectTo, scenario, jwtAuthenticator, credsAuthenticator, collect } from "../../js/lib.mjs";
import { F } from "./_auth_fixtures.mjs";
import { attempt, watchErrors, trySubscribe } from "./_auth_flow.mjs";

const enc = new TextEncoder();
const creds = (name) => credsAuthenticator(enc.encode(F.creds[name]));

await scenario(async () => {
  const alice = await connectTo({ authenticator: jwtAuthenticator(F.jwt.alice, enc.encode(F.seed.alice)) });
  const bob = await connectTo({ authenticator: creds("bob") });
  const admin = await connectTo({ authenticator: creds("admin") });
  const aliceErrs = watchErrors(alice);
  const bobErrs = watchErrors(bob);

  const aliceSub = alice.subscribe("choiros.user.alice.>");
  const adminSub = admin.subscribe("choiros.>");
  alice.subscribe("choiros.user.alice.svc", { callback: (_e, m) => m.respond(`svc:${m.string()}`) });
  await alice.flush();
  await admin.flush();

  bob.publish("choiros.user.alice.event", "forged by bob");
  bob.publish("choiros.user.bob.event", "bob's own");
  alice.publish("choiros.user.alice.event", "alice's own");
  alice.publish("choiros.user.bob.event", "forged by alice");
  await bob.flush();
  await alice.flush();
  const aliceGot = await collect(aliceSub, 1);
  const adminGot = (await collect(adminSub, 2)).map((m) => m.data).sort();
  const reply = (await alice.request("choiros.user.alice.svc", "ping", { timeout: 2000 })).string();

  const subs = {
    bobOnAlice: await trySubscribe(bob, "choiros.user.alice.>"),
    bobOnAll: await trySubscribe(bob, ">"),
    bobOwn: await trySubscribe(bob, "choiros.user.bob.>"),
  };
  await alice.flush();
  await bob.flush();
  const result = { aliceGot, adminGot, reply, subs, aliceErrs: [...aliceErrs], bobErrs: [...bobErrs] };
  for (const nc of [alice, bob, admin]) await nc.close();

  result.logins = {
    bearerJwtOnly: await attempt({ authenticator: jwtAuthenticator(F.jwt.bearer) }),
    agentCreds: await attempt({ authenticator: creds("agent") }),
    carolCreds: await attempt({ authenticator: creds("carol") }),
    aliceJwtWithoutSeed: await attempt({ authenticator: jwtAuthenticator(F.jwt.alice) }),
    aliceJwtWithBobSeed: await attempt({ authenticator: jwtAuthenticator(F.jwt.alice, enc.encode(F.seed.bob)) }),
  };
  for (const bad of ["expired", "notyet", "revoked", "foreign", "tampered", "ghost", "scopedlimits"]) {
    result.logins[bad] = await attempt({ authenticator: creds(bad) });
  }
  result.logins.nothing = await attempt({});
  return result;
});
