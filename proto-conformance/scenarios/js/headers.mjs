// Header round trip with nats.js: several values per key, case of keys, empty bodies.
import { connectTo, scenario, headers, collect } from "../../js/lib.mjs";

await scenario(async () => {
  const nc = await connectTo();
  const sub = nc.subscribe("js.hdr.>");
  await nc.flush();
  const h = headers();
  h.set("X-Single", "one");
  h.append("X-Multi", "a");
  h.append("X-Multi", "b");
  h.set("lower-case", "kept");
  nc.publish("js.hdr.a", "body", { headers: h });
  const onlyHeaders = headers();
  onlyHeaders.set("K", "v");
  nc.publish("js.hdr.b", undefined, { headers: onlyHeaders });
  nc.publish("js.hdr.c", "no headers");
  await nc.flush();
  const msgs = await collect(sub, 3);
  const infoHeaders = nc.info.headers;
  await nc.close();
  return { info_headers: infoHeaders, msgs };
});
