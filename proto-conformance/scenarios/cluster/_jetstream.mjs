// JetStream and KV clients (nats.js v3) for the cluster scenarios, resolved against js/'s
// node_modules (the same nats-core instance as js/lib.mjs).
export * from "../../js/node_modules/@nats-io/jetstream/lib/mod.js";
export { Kvm } from "../../js/node_modules/@nats-io/kv/lib/mod.js";
