// Publish/subscribe with nats.js: the INFO a client sees, wildcards, payload kinds, reply
// subjects, processed counts.
import { connectTo, scenario, collect } from "../../js/lib.mjs";

await scenario(async () => {
  const nc = await connectTo({ name: "conformance-pub-sub" });
  const info = nc.info;
  const star = nc.subscribe("js.ps.*");
  const full = nc.subscribe("js.ps.>");
  const exact = nc.subscribe("js.ps.a");
  await nc.flush();
  nc.publish("js.ps.a", "text");
  nc.publish("js.ps.b", new Uint8Array([104, 105]));
  nc.publish("js.ps.c.d", "deep", { reply: "js.reply.here" });
  nc.publish("js.ps.a");
  await nc.flush();
  const obs = {
    // `chorus` is the one INFO key only Chorus sends (its own version), by design.
    info_keys: Object.keys(info).filter((k) => k !== "chorus").sort(),
    info: { proto: info.proto, headers: info.headers, max_payload: info.max_payload },
    star: await collect(star, 3),
    full: await collect(full, 4),
    exact: await collect(exact, 2),
  };
  obs.processed = { star: star.getProcessed(), full: full.getProcessed(), exact: exact.getProcessed() };
  await nc.close();
  return obs;
});
