// A user JWT that expires while its connection is open (operator mode; config: sibling
// auth_jwt_expiry.conf). The user is minted here, signed with the account seed of
// ../_auth_fixtures_gen.go, valid for 3 seconds: it logs in and works, then nats-server
// disconnects it with 'User Authentication Expired'. A login with it after expiry is refused.
import { connectTo, scenario, jwtAuthenticator, nkeys, describeError, collect } from "../../js/lib.mjs";
import { F } from "./_auth_fixtures.mjs";

const enc = new TextEncoder();
const b64url = (bytes) => Buffer.from(bytes).toString("base64url");

/** A user JWT as github.com/nats-io/jwt v2 encodes it, signed by `signer`. */
function userJwt(signer, user, name, exp) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    jti: `EXPIRY${now}${name}`,
    iat: now,
    iss: signer.getPublicKey(),
    name,
    sub: user.getPublicKey(),
    exp,
    nats: { pub: {}, sub: {}, subs: -1, data: -1, payload: -1, type: "user", version: 2 },
  };
  const head = b64url(enc.encode(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" })));
  const body = b64url(enc.encode(JSON.stringify(claims)));
  const sig = b64url(signer.sign(enc.encode(`${head}.${body}`)));
  return `${head}.${body}.${sig}`;
}

await scenario(async () => {
  const account = nkeys.fromSeed(enc.encode(F.tenant_seed));
  const user = nkeys.createUser();
  const exp = Math.floor(Date.now() / 1000) + 3;
  const jwt = userJwt(account, user, "shortlived", exp);
  const auth = () => jwtAuthenticator(jwt, user.getSeed());

  const nc = await connectTo({ authenticator: auth() });
  const statuses = [];
  (async () => {
    for await (const s of nc.status()) {
      if (s.type === "error") statuses.push(describeError(s.error));
    }
  })();
  const sub = nc.subscribe("live");
  nc.publish("live", "before expiry");
  const before = (await collect(sub, 1)).map((m) => m.data);
  // Whichever comes first: the server closing the connection, or 10 s (far past the expiry).
  const outcome = await Promise.race([
    nc.closed().then((err) => ({ closed: describeError(err) })),
    new Promise((r) => setTimeout(() => r({ stillOpenAfterExpiry: true }), 10000)),
  ]);
  if (!nc.isClosed()) await nc.close();
  // nats-server refuses a JWT once `exp` < now (whole seconds): wait until that holds.
  const wait = (exp + 1) * 1000 + 200 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  let relogin;
  try {
    const again = await connectTo({ authenticator: auth() });
    await again.close();
    relogin = "connected";
  } catch (err) {
    relogin = describeError(err);
  }
  return { before, outcome, statuses, relogin };
}, { timeoutMs: 30000 });
