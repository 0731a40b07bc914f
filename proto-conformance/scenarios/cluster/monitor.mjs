// /varz cluster section and /routez on a formed cluster: key sets (per connection kind) and
// the deterministic values; route interest from n2 (plain) and n3 (queue) as n1 lists it.
//! nodes: 3
//! mixed: true
import { connectToNode, control, monitor, scenario } from "../../js/lib.mjs";

const shape = (o) =>
  Object.keys(o)
    .sort()
    .map((k) => `${k}:${Array.isArray(o[k]) ? "array" : o[k] === null ? "null" : typeof o[k]}`)
    .join(" ");

/** Distinct shapes of the route entries, each with how many connections have it. */
function shapes(routes) {
  const count = new Map();
  for (const r of routes) count.set(shape(r), (count.get(shape(r)) ?? 0) + 1);
  return [...count].sort().map(([s, n]) => ({ keys: s, connections: n }));
}

await scenario(async () => {
  const n2 = await connectToNode(2);
  n2.subscribe("cl.mon.plain");
  await n2.flush();
  const n3 = await connectToNode(3);
  n3.subscribe("cl.mon.q", { queue: "grp" });
  n3.subscribe("cl.mon.q", { queue: "grp" });
  await n3.flush();
  await control("await-interest n1 cl.mon.plain");
  await control("await-interest n1 cl.mon.q");

  const varz = {};
  for (const k of [1, 2, 3]) {
    const v = await monitor(k, "/varz");
    varz[`n${k}`] = {
      cluster: v.cluster,
      routes: v.routes,
      remotes: v.remotes,
      connect_urls: v.connect_urls,
      system_account: v.system_account,
    };
  }
  const routez = await monitor(1, "/routez");
  const withSubs = await monitor(1, "/routez?subs=1");
  const detail = await monitor(1, "/routez?subs=detail");
  const ours = (l) => (l ?? []).filter((s) => (s.subject ?? s).startsWith("cl.mon."));
  const perRemote = {};
  for (const r of routez.routes) {
    const key = `${r.remote_name} ${r.account ?? "(pooled)"}`;
    perRemote[key] = (perRemote[key] ?? 0) + 1;
  }
  const result = {
    varz,
    routez: {
      top_keys: shape(routez),
      server_name: routez.server_name,
      num_routes: routez.num_routes,
      route_shapes: shapes(routez.routes),
      connections_per_remote: perRemote,
      compression: [...new Set(routez.routes.map((r) => r.compression))].sort(),
    },
    routez_subs: {
      route_shapes: shapes(withSubs.routes),
      subjects: withSubs.routes
        .flatMap((r) => ours(r.subscriptions_list).map((s) => `${r.remote_name} ${s}`))
        .sort(),
    },
    routez_detail: {
      route_shapes: shapes(detail.routes),
      entries: detail.routes
        .flatMap((r) => ours(r.subscriptions_list_detail).map((d) => ({ from: r.remote_name, ...d })))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    },
  };
  await n2.close();
  await n3.close();
  return result;
});
