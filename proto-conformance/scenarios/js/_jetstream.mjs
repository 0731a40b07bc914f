// JetStream, KV and object store clients (nats.js v3) for the JetStream scenarios. `js/lib.mjs` re-exports
// only the core client; these resolve against the same `js/node_modules`, so they share its
// nats-core instance.
export * from "../../js/node_modules/@nats-io/jetstream/lib/mod.js";
export { Kvm } from "../../js/node_modules/@nats-io/kv/lib/mod.js";
export { Objm } from "../../js/node_modules/@nats-io/obj/lib/mod.js";

/** A JetStream API error as a caller sees it: class, API code and err_code. */
export function describeJsError(err) {
  if (!err) return null;
  const api = err.apiError ? err.apiError() : err.api_error;
  const d = { name: err.constructor?.name ?? typeof err };
  if (api) {
    d.code = api.code;
    d.err_code = api.err_code;
    d.description = api.description;
  } else {
    d.message = String(err.message ?? err);
  }
  return d;
}
