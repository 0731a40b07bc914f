//! The system account: what the server answers there, and account JWTs turned into accounts.
//!
//! - `handle`: `$SYS.REQ.ACCOUNT.<key>.CLAIMS.UPDATE` (and the older
//!   `$SYS.ACCOUNT.<key>.CLAIMS.UPDATE`) in operator mode; with the `full` resolver also
//!   `$SYS.REQ.CLAIMS.UPDATE`. The reply is nats-server's `ServerAPIClaimUpdateResponse`
//!   (`{"server":{..},"data":{"account","code":200,"message":"jwt updated"}}` or an `error`
//!   with code 500 and a description); with the full resolver
//!   `$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP` answers with the stored account JWT (empty when
//!   unknown). With the MEMORY resolver an update for an account the
//!   server does not know is "jwt update skipped", as in nats-server.
//! - `configure_jwt_accounts`: limits, exports and imports of account claims.
//! - `apply_update`: a changed account applied to its connected clients: revoked users get
//!   `User Authentication Revoked`, users of an expired account `Account Authentication
//!   Expired`, users whose signing key was removed (or bearer users the account now refuses)
//!   `Authorization Violation`, and clients beyond a lowered `conn` limit (newest first) the
//!   account connections error; all are disconnected.
//!
//! With the full resolver and `allow_delete`, `$SYS.REQ.CLAIMS.DELETE` (generic claims
//! self-signed by the operator or a signing key, `nats.accounts` listing keys) deletes
//! accounts: their files are renamed `.jwt.deleted` (removed with `hard_delete`) and their
//! clients disconnected with `Account Authentication Expired`.
//!
//! Exports with `token_req` are importable with an activation token (checked once when the
//! account is configured; its expiry does not yet end the import later).
//!
//! Not yet: lookups and packs between servers, server events
//! (`$SYS.SERVER.*`, connect/disconnect advisories).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chorus_auth::jwt::AccountClaims;
use chorus_auth::{Trust, UpdateError, Updated};
use chorus_conf::ResponseType;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::{
    Account, DEFAULT_RESPONSE_THRESHOLD, ExportAuth, Limits, RoutingBuilder, ServiceExport,
    StreamExport,
};
use crate::conn::CloseReason;
use crate::server::ServerInner;

#[derive(Serialize)]
struct ServerInfo<'a> {
    name: &'a str,
    host: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
    ver: &'a str,
    jetstream: bool,
    flags: u64,
    seq: u64,
    time: String,
}

#[derive(Serialize)]
struct Status<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    account: &'a str,
    code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

#[derive(Serialize)]
struct Response<'a> {
    server: ServerInfo<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Status<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Status<'a>>,
}

fn respond(srv: &ServerInner, account: &str, r: Result<&str, String>) -> Vec<u8> {
    let opts = srv.opts();
    let js = opts.jetstream.enabled;
    let server = ServerInfo {
        name: &srv.name,
        host: &opts.host,
        id: &srv.id,
        domain: opts.jetstream.domain.as_deref().filter(|_| js),
        ver: crate::info::COMPAT_VERSION,
        jetstream: js,
        flags: u64::from(js),
        seq: srv.sys_seq.fetch_add(1, Ordering::Relaxed) + 1,
        time: chorus_jetstream::go::rfc3339(SystemTime::now()),
    };
    let (data, error) = match r {
        Ok(message) => {
            tracing::debug!("{message} - {account}");
            (Some(Status { account, code: 200, message: Some(message), description: None }), None)
        }
        Err(description) => {
            tracing::error!("{description} - {account}");
            (
                None,
                Some(Status { account, code: 500, message: None, description: Some(description) }),
            )
        }
    };
    serde_json::to_vec(&Response { server, data, error }).expect("json")
}

/// Answers a request published in the system account; `None` when the server has no
/// interest in `subject` (the message then only reaches ordinary subscribers).
pub(crate) fn handle(srv: &Arc<ServerInner>, subject: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
    let subject = std::str::from_utf8(subject).ok()?;
    let auth = srv.auth();
    let trust = auth.trust()?;
    let full = trust.tracks_updates();
    let toks: Vec<&str> = subject.split('.').collect();
    if full && toks == ["$SYS", "REQ", "CLAIMS", "DELETE"] {
        let token = String::from_utf8_lossy(payload);
        let system = crate::server::system_account_name(&srv.opts(), &auth);
        return Some(match trust.delete(&token, system.as_deref()) {
            Ok(keys) => {
                for k in &keys {
                    remove_account(srv, k);
                }
                let msg = format!("deleted {} accounts", keys.len());
                respond(srv, "", Ok(&msg))
            }
            Err(e) => respond(srv, "", Err(e)),
        });
    }
    if full && let ["$SYS", "REQ", "ACCOUNT", key, "CLAIMS", "LOOKUP"] = toks.as_slice() {
        // The stored JWT, or an empty reply when there is none (nats-server's dir resolver).
        return Some(trust.account_jwt(key).unwrap_or_default().into_bytes());
    }
    let key = match toks.as_slice() {
        ["$SYS", "REQ", "ACCOUNT", key, "CLAIMS", "UPDATE"] => Some(*key),
        ["$SYS", "ACCOUNT", key, "CLAIMS", "UPDATE"] => Some(*key),
        ["$SYS", "REQ", "CLAIMS", "UPDATE"] if full => None,
        _ => return None,
    };
    let token = String::from_utf8_lossy(payload);
    if !full {
        // nats-server's accountClaimUpdate (resolvers that do not track updates).
        let key = key.unwrap_or_default();
        if payload.is_empty() {
            let e = "jwt update error - request body is empty".to_string();
            return Some(respond(srv, key, Err(e)));
        }
        if trust.account(key).is_none() {
            // Only accounts the server has are updated.
            if let Err(e) = chorus_auth::jwt::decode::<chorus_auth::jwt::AccountNats>(&token) {
                let e = format!("jwt update resulted in error - {e}");
                return Some(respond(srv, key, Err(e)));
            }
            return Some(respond(srv, key, Ok("jwt update skipped")));
        }
    }
    let subject_of = || {
        chorus_auth::jwt::decode::<chorus_auth::jwt::AccountNats>(&token)
            .map(|c| c.sub)
            .unwrap_or_else(|_| "n/a".to_string())
    };
    let result = trust.update(&token, key);
    let account = match (&result, key) {
        (Err(UpdateError::Decode(_)), _) if full => "n/a".to_string(),
        (_, Some(k)) => k.to_string(),
        (_, None) => subject_of(),
    };
    Some(match result {
        Ok(Updated::Changed(claims)) => {
            apply_update(srv, trust, &claims);
            respond(srv, &account, Ok("jwt updated"))
        }
        Ok(Updated::Unchanged) => respond(srv, &account, Ok("jwt updated")),
        Err(e) => respond(srv, &account, Err(e.to_string())),
    })
}

/// A deleted account (nats-server's removeCb): locked out (no connections, subscriptions or
/// payload), its imports dropped, its clients disconnected as expired.
fn remove_account(srv: &Arc<ServerInner>, key: &str) {
    let Some(acc) = srv.account(Some(key)) else { return };
    acc.set_limits(Limits {
        max_connections: Some(0),
        max_subscriptions: Some(0),
        max_payload: Some(0),
    });
    acc.set_routing(super::Routing::default());
    let clients: Vec<_> = srv
        .clients
        .lock()
        .unwrap()
        .values()
        .filter(|c| c.account().is_some_and(|a| Arc::ptr_eq(&a, &acc)))
        .cloned()
        .collect();
    for c in clients {
        c.err_and_close("Account Authentication Expired", CloseReason::AuthenticationExpired);
    }
}

/// Limits, exports and imports of every account JWT the trust chain holds.
/// `srv`: the running server, when there is one (accounts that gain stream imports rebuild
/// their subscriptions' shadows).
pub(crate) fn configure_jwt_accounts(
    srv: Option<&ServerInner>,
    trust: &Trust,
    accounts: &FxHashMap<String, Arc<Account>>,
) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let claims: Vec<(Arc<Account>, Arc<AccountClaims>)> =
        accounts.iter().filter_map(|(k, a)| trust.account(k).map(|c| (a.clone(), c))).collect();
    for (acc, c) in &claims {
        let (streams, services) = exports_of(c);
        super::set_exports(acc, streams, services);
        acc.set_limits(limits_of(c));
    }
    for (acc, c) in &claims {
        let current = acc.routing();
        let mut b = RoutingBuilder {
            stream_exports: current.stream_exports.clone(),
            service_exports: current.service_exports.clone(),
            ..Default::default()
        };
        for im in &c.nats.imports {
            let Some(exp) = accounts.get(&im.account) else {
                tracing::debug!("Import of {:?} from unknown account {:?}", im.subject, im.account);
                continue;
            };
            let activated = !im.token.is_empty()
                && trust.account(&im.account).is_some_and(|ec| {
                    let subj = if im.kind == "service" && !im.to.is_empty() {
                        &im.to
                    } else {
                        &im.subject
                    };
                    chorus_auth::operator::activation_valid(
                        &im.token, &ec, &c.sub, subj, &im.kind, now,
                    )
                });
            let r = match im.kind.as_str() {
                "stream" => {
                    let local = (!im.local_subject.is_empty()).then_some(im.local_subject.as_str());
                    let prefix = (!im.to.is_empty() && local.is_none()).then_some(im.to.as_str());
                    super::stream_import(&acc.name, exp, &im.subject, local, prefix, activated)
                        .map(|si| b.stream_imports.push(Arc::new(si)))
                }
                "service" => {
                    let local = [im.local_subject.as_str(), im.to.as_str()]
                        .into_iter()
                        .find(|s| !s.is_empty());
                    super::service_import(&acc.name, exp, &im.subject, local, im.share, activated)
                        .map(|si| b.service_imports.push(Arc::new(si)))
                }
                _ => continue,
            };
            if let Err(e) = r {
                // nats-server marks such an import invalid and carries on.
                tracing::debug!("Account {:?}: {e}", acc.name);
            }
        }
        let mappings: Vec<chorus_conf::MappingOptions> = c
            .nats
            .mappings
            .iter()
            .map(|(src, dests)| chorus_conf::MappingOptions {
                subject: src.clone(),
                destinations: dests
                    .iter()
                    .map(|d| chorus_conf::MapDestination {
                        subject: d.subject.clone(),
                        weight: if d.weight == 0 { 100 } else { d.weight },
                        cluster: (!d.cluster.is_empty()).then(|| d.cluster.clone()),
                    })
                    .collect(),
            })
            .collect();
        match super::mappings_from_options(&mappings) {
            Ok(m) => b.mappings = m,
            Err(e) => tracing::error!("Account {:?}: {e}", acc.name),
        }
        let changed = imports_differ(&current, &b);
        acc.set_routing(b.build());
        if changed && let Some(srv) = srv {
            crate::interest::refresh_shadows(srv, acc);
        }
    }
}

/// Whether the stream imports about to be set differ from the current ones.
pub(crate) fn imports_differ(current: &super::Routing, new: &RoutingBuilder) -> bool {
    let key = |i: &super::StreamImport| (i.acc.name.clone(), i.from.clone(), i.to.clone());
    current.stream_imports.len() != new.stream_imports.len()
        || current.stream_imports.iter().zip(&new.stream_imports).any(|(a, b)| key(a) != key(b))
}

fn limits_of(c: &AccountClaims) -> Limits {
    let n = |name| c.nats.limit(name).and_then(|v| usize::try_from(v).ok());
    Limits { max_connections: n("conn"), max_subscriptions: n("subs"), max_payload: n("payload") }
}

fn exports_of(c: &AccountClaims) -> (Vec<StreamExport>, Vec<Arc<ServiceExport>>) {
    let mut streams = Vec::new();
    let mut services = Vec::new();
    for e in &c.nats.exports {
        let auth = ExportAuth {
            approved: Vec::new(),
            token_pos: (e.account_token_position > 0).then_some(e.account_token_position),
            token_req: e.token_req,
        };
        match e.kind.as_str() {
            "stream" => streams.push(StreamExport { subject: e.subject.clone(), auth }),
            "service" => services.push(Arc::new(ServiceExport {
                subject: e.subject.clone(),
                auth,
                response: match e.response_type.as_str() {
                    "Stream" => ResponseType::Streamed,
                    "Chunked" => ResponseType::Chunked,
                    _ => ResponseType::Singleton,
                },
                threshold: if e.response_threshold > 0 {
                    Duration::from_nanos(e.response_threshold as u64)
                } else {
                    DEFAULT_RESPONSE_THRESHOLD
                },
            })),
            _ => {}
        }
    }
    (streams, services)
}

/// Applies a changed account JWT: the account's routing and limits, the imports of every
/// account (exports may have changed), then the account's connected clients.
pub(crate) fn apply_update(srv: &Arc<ServerInner>, trust: &Trust, claims: &AccountClaims) {
    let acc = srv.account_or_create(&claims.sub);
    configure_jwt_accounts(Some(srv), trust, &srv.accounts());
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let mut clients: Vec<_> = srv
        .clients
        .lock()
        .unwrap()
        .values()
        .filter(|c| c.account().is_some_and(|a| Arc::ptr_eq(&a, &acc)))
        .cloned()
        .collect();
    clients.sort_by_key(|c| c.cid);
    if claims.expired(now) {
        for c in clients {
            c.err_and_close("Account Authentication Expired", CloseReason::AuthenticationExpired);
        }
        return;
    }
    let max = acc.limits().max_connections;
    let mut count = 0usize;
    for c in clients {
        if max.is_some_and(|m| count >= m) {
            c.err_and_close(
                "maximum account active connections exceeded",
                CloseReason::MaxAccountConnectionsExceeded,
            );
            continue;
        }
        count += 1;
        let Some(u) = c.jwt_user.lock().unwrap().clone() else { continue };
        if u.bearer && chorus_auth::operator::disallows_bearer(claims) {
            c.err_and_close("Authorization Violation", CloseReason::AuthenticationViolation);
        } else if chorus_auth::operator::revoked(claims, &u.key, u.iat) {
            c.err_and_close("User Authentication Revoked", CloseReason::Revocation);
        } else if !chorus_auth::operator::signs_for(claims, &u.issuer) {
            c.err_and_close("Authorization Violation", CloseReason::AuthenticationViolation);
        }
    }
}
