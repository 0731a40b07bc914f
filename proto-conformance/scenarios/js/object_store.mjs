// The object store with nats.js v3 (@nats-io/obj): a 600 KiB blob in 128 KiB chunks put and
// read back (an ordered push consumer on the chunks), a small one, info, list, delete, and
// reading a deleted object.
//! flags: -js
import { connectTo, scenario } from "../../js/lib.mjs";
import { Objm } from "./_jetstream.mjs";

const meta = (i) => i && ({ name: i.name, size: i.size, chunks: i.chunks, digest: i.digest, deleted: !!i.deleted });

await scenario(async () => {
  const nc = await connectTo();
  const os = await new Objm(nc).create("blobs");
  const data = new Uint8Array(600 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (Math.imul(i, 2654435761) >>> 13) & 0xff;
  const obs = {};
  obs.put = meta(await os.putBlob({ name: "big.bin" }, data));
  obs.put_small = meta(await os.putBlob({ name: "notes/small.txt" }, new TextEncoder().encode("hello")));
  const back = await os.getBlob("big.bin");
  obs.round_trip = back !== null && back.length === data.length && back.every((b, i) => b === data[i]);
  obs.small = new TextDecoder().decode(await os.getBlob("notes/small.txt"));
  obs.info = meta(await os.info("big.bin"));
  obs.list = (await os.list()).map((i) => i.name).sort();
  await os.delete("big.bin");
  obs.after_delete = (await os.list()).map((i) => i.name).sort();
  obs.get_deleted = await os.getBlob("big.bin");
  obs.info_deleted = meta(await os.info("big.bin"));
  const st = await os.status();
  obs.status = { bucket: st.bucket, sealed: st.sealed, backingStore: st.backingStore };
  obs.destroy = await os.destroy();
  await nc.close();
  return obs;
});
