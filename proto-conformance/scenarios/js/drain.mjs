// Drain: every message already published is delivered before the connection closes, and
// closed() resolves without an error. Subscription drain does the same for one subscription.
import { connectTo, scenario, describeError } from "../../js/lib.mjs";

await scenario(async () => {
  const nc = await connectTo();
  const pub = await connectTo();
  let a = 0;
  let b = 0;
  const subA = nc.subscribe("js.drain.a", { callback: () => a++ });
  const subB = nc.subscribe("js.drain.b", { callback: () => b++ });
  await nc.flush();
  for (let i = 0; i < 100; i++) {
    pub.publish("js.drain.a", `a${i}`);
    pub.publish("js.drain.b", `b${i}`);
  }
  await pub.flush();
  await subB.drain();
  const bAfterSubDrain = b;
  const closed = nc.closed();
  await nc.drain();
  const closeErr = await closed;
  await pub.close();
  return {
    a,
    b: bAfterSubDrain,
    subA_closed: subA.isClosed(),
    subB_closed: subB.isClosed(),
    conn_closed: nc.isClosed(),
    close_error: describeError(closeErr),
  };
});
