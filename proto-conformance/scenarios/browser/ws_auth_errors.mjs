//! config: authorization { users: [ { user: "browser", password: "pw" } ] }
//! websocket: ws
// What a page sees when its credentials are wrong or missing.
import { errorCode } from "./_flow.mjs";

export async function run(nats, env) {
  const attempt = async (auth) => {
    try {
      const nc = await nats.connect({ servers: env.url, ...auth, timeout: 5000, reconnect: false });
      await nc.close();
      return "connected";
    } catch (err) {
      return errorCode(err);
    }
  };
  return {
    wrongPassword: await attempt({ user: "browser", pass: "nope" }),
    unknownUser: await attempt({ user: "mallory", pass: "pw" }),
    none: await attempt({}),
    right: await attempt({ user: "browser", pass: "pw" }),
  };
}
