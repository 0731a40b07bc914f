// What nats.js v3 sends for a KV bucket and a ChoirOS stream, for capture_reference.py.
// Run with NATS_URL set; the modules come from proto-conformance/js (CHORUS_JS_MODULES
// overrides the node_modules directory).
const path = require("path");
const nm = process.env.CHORUS_JS_MODULES ||
  path.join(__dirname, "..", "..", "..", "proto-conformance", "js", "node_modules");
const { connect } = require(path.join(nm, "@nats-io/transport-node"));
const { jetstreamManager, StorageType, RetentionPolicy } = require(path.join(nm, "@nats-io/jetstream/lib/mod.js"));
const { Kvm } = require(path.join(nm, "@nats-io/kv/lib/mod.js"));

(async () => {
  const nc = await connect({ servers: process.env.NATS_URL });
  const jsm = await jetstreamManager(nc);
  const kvm = new Kvm(nc);
  await kvm.create("JSKV", { history: 5 });
  await kvm.create("JSKV_TTL", { ttl: 60_000, max_bytes: 1024 * 1024 });
  const hour = 3_600_000_000_000;
  await jsm.streams.add({
    name: "ORCHESTRATOR",
    subjects: ["choiros.orchestrator.>"],
    retention: RetentionPolicy.Limits,
    max_age: 24 * hour,
    storage: StorageType.Memory,
    num_replicas: 1,
  });
  await jsm.streams.add({
    name: "AGENT_INBOX",
    subjects: ["choiros.agent.*.inbox"],
    retention: RetentionPolicy.Workqueue,
    max_msgs_per_subject: 1000,
    storage: StorageType.Memory,
    num_replicas: 1,
  });
  await nc.close();
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
