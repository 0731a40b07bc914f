//! Which options may change on a configuration reload (SIGHUP), after nats-server's
//! `diffOptions` in `server/reload.go`.

use std::fmt::Debug;

use crate::blocks::{JetStreamOptions, WebsocketOptions};
use crate::error::ConfError;
use crate::options::Options;

struct Diff {
    changed: Vec<&'static str>,
}

impl Diff {
    /// A change the server can apply while running.
    fn allow<T: PartialEq>(&mut self, name: &'static str, old: &T, new: &T) {
        if old != new {
            self.changed.push(name);
        }
    }

    /// A change that needs a restart.
    fn deny<T: PartialEq + Debug>(
        &mut self,
        name: &'static str,
        old: &T,
        new: &T,
    ) -> Result<(), ConfError> {
        if old != new {
            return Err(ConfError::Reload {
                option: name,
                detail: format!("old={old:?}, new={new:?}"),
            });
        }
        Ok(())
    }
}

impl Options {
    /// Names (config keys) of the options that differ between `self` (running) and `new`,
    /// or an error naming the first changed option nats-server cannot reload.
    pub fn reload_diff(&self, new: &Options) -> Result<Vec<&'static str>, ConfError> {
        let (o, n) = (self, new);
        let mut d = Diff { changed: Vec::new() };

        // Logging.
        d.allow("debug", &o.debug, &n.debug);
        d.allow("trace", &o.trace, &n.trace);
        d.allow("trace_verbose", &o.trace_verbose, &n.trace_verbose);
        d.allow("trace_headers", &o.trace_headers, &n.trace_headers);
        d.allow("logtime", &o.logtime, &n.logtime);
        d.allow("logtime_utc", &o.logtime_utc, &n.logtime_utc);
        d.allow("log_file", &o.log_file, &n.log_file);
        d.allow("syslog", &o.syslog, &n.syslog);
        d.allow("remote_syslog", &o.remote_syslog, &n.remote_syslog);
        d.deny("log_size_limit", &o.log_size_limit, &n.log_size_limit)?;
        d.deny("log_max_num", &o.log_max_num, &n.log_max_num)?;

        // Client listener and limits.
        // A new port of 0 ("random") is ignored by nats-server rather than refused.
        if n.port != 0 {
            d.deny("port", &o.port, &n.port)?;
        }
        d.deny("host", &o.host, &n.host)?;
        d.deny("server_name", &o.server_name, &n.server_name)?;
        d.allow("client_advertise", &o.client_advertise, &n.client_advertise);
        d.deny("http_host", &o.http_host, &n.http_host)?;
        d.deny("http_port", &o.http_port, &n.http_port)?;
        d.deny("https_port", &o.https_port, &n.https_port)?;
        d.deny("http_base_path", &o.http_base_path, &n.http_base_path)?;
        d.allow("max_connections", &o.max_connections, &n.max_connections);
        d.deny("max_subscriptions", &o.max_subscriptions, &n.max_subscriptions)?;
        d.allow("max_payload", &o.max_payload, &n.max_payload);
        d.deny("max_pending", &o.max_pending, &n.max_pending)?;
        d.allow("max_control_line", &o.max_control_line, &n.max_control_line);
        d.allow("ping_interval", &o.ping_interval, &n.ping_interval);
        d.allow("ping_max", &o.ping_max, &n.ping_max);
        d.allow("write_deadline", &o.write_deadline, &n.write_deadline);
        d.deny("write_timeout", &o.write_timeout, &n.write_timeout)?;
        d.deny("lame_duck_duration", &o.lame_duck_duration, &n.lame_duck_duration)?;
        d.deny("lame_duck_grace_period", &o.lame_duck_grace_period, &n.lame_duck_grace_period)?;
        d.deny("no_header_support", &o.no_header_support, &n.no_header_support)?;
        d.deny("disable_sublist_cache", &o.disable_sublist_cache, &n.disable_sublist_cache)?;
        d.allow("pid_file", &o.pid_file, &n.pid_file);
        d.allow("ports_file_dir", &o.ports_file_dir, &n.ports_file_dir);
        d.deny("prof_port", &o.prof_port, &n.prof_port)?;
        d.allow("prof_block_rate", &o.prof_block_rate, &n.prof_block_rate);
        d.allow("connect_error_reports", &o.connect_error_reports, &n.connect_error_reports);
        d.allow("reconnect_error_reports", &o.reconnect_error_reports, &n.reconnect_error_reports);
        d.allow("max_traced_msg_len", &o.max_traced_msg_len, &n.max_traced_msg_len);
        d.deny("max_closed_clients", &o.max_closed_clients, &n.max_closed_clients)?;
        d.deny("max_sub_tokens", &o.max_sub_tokens, &n.max_sub_tokens)?;
        d.allow("no_fast_producer_stall", &o.no_fast_producer_stall, &n.no_fast_producer_stall);
        d.deny("proxy_protocol", &o.proxy_protocol, &n.proxy_protocol)?;
        d.allow("server_tags", &o.server_tags, &n.server_tags);
        d.allow("server_metadata", &o.server_metadata, &n.server_metadata);
        d.deny("feature_flags", &o.feature_flags, &n.feature_flags)?;

        // TLS is reloadable as a whole; `allow_non_tls` is not.
        d.allow("tls", &o.tls, &n.tls);
        d.deny("allow_non_tls", &o.allow_non_tls, &n.allow_non_tls)?;
        d.allow("ocsp", &o.ocsp, &n.ocsp);
        d.allow("ocsp_cache", &o.ocsp_cache, &n.ocsp_cache);

        // Authorization and accounts.
        let (oa, na) = (&o.authorization, &n.authorization);
        d.allow("authorization.token", &oa.token, &na.token);
        d.allow("authorization.user", &oa.user, &na.user);
        d.allow("authorization.password", &oa.password, &na.password);
        d.allow("authorization.users", &oa.users, &na.users);
        d.allow("authorization.nkeys", &oa.nkeys, &na.nkeys);
        d.allow("authorization.timeout", &oa.timeout, &na.timeout);
        d.allow(
            "authorization.default_permissions",
            &oa.default_permissions,
            &na.default_permissions,
        );
        d.deny("authorization.auth_callout", &oa.auth_callout, &na.auth_callout)?;
        d.deny("authorization.proxy_required", &oa.proxy_required, &na.proxy_required)?;
        if oa.no_auth_user != na.no_auth_user {
            // Only dropping no_auth_user together with its user can be applied live.
            let removed_with_user = match (&oa.no_auth_user, &na.no_auth_user) {
                (Some(old), None) => !na.users.iter().any(|u| &u.user == old),
                _ => false,
            };
            if !removed_with_user {
                d.deny("no_auth_user", &oa.no_auth_user, &na.no_auth_user)?;
            }
            d.changed.push("no_auth_user");
        }
        d.allow("accounts", &o.accounts, &n.accounts);
        d.allow("mappings", &o.mappings, &n.mappings);
        if o.system_account != n.system_account
            && !(o.system_account.as_deref() == Some(crate::options::DEFAULT_SYSTEM_ACCOUNT)
                && n.system_account.is_none())
        {
            d.deny("system_account", &o.system_account, &n.system_account)?;
        }
        d.deny("no_system_account", &o.no_system_account, &n.no_system_account)?;
        d.deny("operator", &o.operator, &n.operator)?;
        d.deny("trusted_keys", &o.trusted_keys, &n.trusted_keys)?;
        if o.resolver.is_some() != n.resolver.is_some() {
            return Err(ConfError::Reload {
                option: "resolver",
                detail: "config reload does not support moving to or from an account resolver"
                    .to_string(),
            });
        }
        d.allow("resolver", &o.resolver, &n.resolver);
        d.allow("resolver_tls", &o.resolver_tls, &n.resolver_tls);
        d.allow("resolver_preload", &o.resolver_preload, &n.resolver_preload);
        d.deny(
            "resolver_pinned_accounts",
            &o.resolver_pinned_accounts,
            &n.resolver_pinned_accounts,
        )?;
        d.allow("default_sentinel", &o.default_sentinel, &n.default_sentinel);
        d.deny("default_js_domain", &o.default_js_domain, &n.default_js_domain)?;

        // Cluster: everything but where it listens.
        match (&o.cluster, &n.cluster) {
            (Some(oc), Some(nc)) => {
                d.deny("cluster.host", &oc.host, &nc.host)?;
                d.deny("cluster.port", &oc.port, &nc.port)?;
                d.allow("cluster.routes", &oc.routes, &nc.routes);
                let mut oc2 = oc.clone();
                oc2.routes.clone_from(&nc.routes);
                d.allow("cluster", &oc2, nc);
            }
            (None, None) => {}
            _ => {
                let (op, np) = (
                    o.cluster.as_ref().and_then(|c| c.port),
                    n.cluster.as_ref().and_then(|c| c.port),
                );
                d.deny("cluster.port", &op, &np)?;
                d.allow("cluster", &o.cluster, &n.cluster);
            }
        }

        reload_jetstream(&mut d, &o.jetstream, &n.jetstream)?;
        reload_websocket(&mut d, &o.websocket, &n.websocket)?;

        d.deny("leafnodes", &o.leafnodes, &n.leafnodes)?;
        d.deny("gateway", &o.gateway, &n.gateway)?;
        d.deny("mqtt", &o.mqtt, &n.mqtt)?;
        d.allow("proxies", &o.proxies, &n.proxies);
        Ok(d.changed)
    }
}

fn reload_jetstream(
    d: &mut Diff,
    o: &JetStreamOptions,
    n: &JetStreamOptions,
) -> Result<(), ConfError> {
    d.allow("jetstream", &o.enabled, &n.enabled);
    let disabling = o.enabled && !n.enabled;
    if o.enabled && o.store_dir != n.store_dir && !disabling {
        return Err(ConfError::Reload {
            option: "jetstream.store_dir",
            detail: "config reload not supported for jetstream storage directory".to_string(),
        });
    }
    for (name, old, new) in [
        ("jetstream.max_memory_store", o.max_memory_store, n.max_memory_store),
        ("jetstream.max_file_store", o.max_file_store, n.max_file_store),
    ] {
        if old == new {
            continue;
        }
        if o.enabled && !disabling {
            match (old, new) {
                (Some(a), Some(b)) if b > a => {}
                (None, Some(_)) => {
                    return Err(ConfError::Reload {
                        option: name,
                        detail: "config reload not supported for jetstream dynamic max memory \
                                 and store"
                            .to_string(),
                    });
                }
                _ => {
                    return Err(ConfError::Reload {
                        option: name,
                        detail: "config reload not supported for decreasing jetstream max \
                                 memory and store"
                            .to_string(),
                    });
                }
            }
        }
        d.changed.push(name);
    }
    d.allow("jetstream.limits", &o.limits, &n.limits);
    d.allow("jetstream.meta_compact", &o.meta_compact, &n.meta_compact);
    d.allow("jetstream.meta_compact_size", &o.meta_compact_size, &n.meta_compact_size);
    d.allow("jetstream.meta_compact_sync", &o.meta_compact_sync, &n.meta_compact_sync);
    if n.enabled {
        d.deny("jetstream.max_concurrent_io", &o.max_concurrent_io, &n.max_concurrent_io)?;
    }
    // Every other JetStream setting needs a restart.
    let strip = |j: &JetStreamOptions| {
        let mut j = j.clone();
        j.enabled = false;
        j.store_dir = None;
        j.max_memory_store = None;
        j.max_file_store = None;
        j.limits = Default::default();
        j.meta_compact = None;
        j.meta_compact_size = None;
        j.meta_compact_sync = false;
        j.max_concurrent_io = None;
        j
    };
    let (so, sn) = (strip(o), strip(n));
    if so.domain != sn.domain {
        d.deny("jetstream.domain", &so.domain, &sn.domain)?;
    }
    d.deny("jetstream.sync_interval", &so.sync_interval, &sn.sync_interval)?;
    d.deny("jetstream", &so, &sn)
}

fn reload_websocket(
    d: &mut Diff,
    o: &Option<WebsocketOptions>,
    n: &Option<WebsocketOptions>,
) -> Result<(), ConfError> {
    // Only the WebSocket TLS configuration may change live.
    let strip = |w: &Option<WebsocketOptions>| {
        w.clone().map(|mut w| {
            w.tls = None;
            w
        })
    };
    d.deny("websocket", &strip(o), &strip(n))?;
    let tls = |w: &Option<WebsocketOptions>| w.as_ref().and_then(|w| w.tls.clone());
    d.allow("websocket.tls", &tls(o), &tls(n));
    Ok(())
}
