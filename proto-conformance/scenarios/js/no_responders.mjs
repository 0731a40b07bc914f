// A request nobody listens to fails fast with a no-responders error (server 503 status),
// not a timeout; the connection stays usable.
import { connectTo, scenario, describeError, RequestError } from "../../js/lib.mjs";

await scenario(async () => {
  const nc = await connectTo();
  const obs = {};
  try {
    await nc.request("js.nobody.home", "hi", { timeout: 3000 });
    obs.result = "answered";
  } catch (err) {
    obs.error = describeError(err);
    obs.is_request_error = err instanceof RequestError;
    obs.is_no_responders = err instanceof RequestError && err.isNoResponders();
  }
  // Still connected afterwards.
  const rtt = await nc.rtt();
  obs.still_connected = typeof rtt === "number" && !nc.isClosed();
  await nc.close();
  return obs;
});
