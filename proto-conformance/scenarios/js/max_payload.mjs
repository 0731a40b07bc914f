//! config: max_payload: 1024
// max_payload from the server's INFO is enforced by nats.js before anything is sent: the
// client throws, the connection stays up, a payload of exactly max_payload goes through.
import { connectTo, scenario, describeError, collect } from "../../js/lib.mjs";

await scenario(async () => {
  const nc = await connectTo();
  const sub = nc.subscribe("js.big");
  await nc.flush();
  const obs = { max_payload: nc.info.max_payload };
  nc.publish("js.big", new Uint8Array(1024));
  try {
    nc.publish("js.big", new Uint8Array(1025));
    obs.oversize = "accepted";
  } catch (err) {
    obs.oversize = describeError(err);
  }
  await nc.flush();
  const got = await collect(sub, 1);
  obs.delivered_sizes = got.map((m) => m.data.length);
  obs.closed = nc.isClosed();
  await nc.close();
  return obs;
});
