//! Accounts: the unit of subject isolation. Every client is bound to one; messages cross
//! accounts only through exports and imports, as in nats-server.
//!
//! Layout:
//! - [`Account`]: the subscription list, plus what routing needs beyond it: [`Routing`]
//!   (imports, exports, mappings), the shadow list of stream imports, the response map of
//!   service imports, limits and the connection count.
//! - [`transform`]: subject transforms (mappings, import `to` subjects).
//! - [`system`]: the system account's requests (account JWT updates) and applying account
//!   claims (limits, exports, imports) to accounts and their connected clients.
//!
//! How messages cross (nats-server's design, kept so behaviour matches):
//! - Stream import (B imports `from` of A, seen in B as `to`): when a client of B subscribes
//!   to something overlapping `to`, a *shadow* of that subscription is put in A's shadow list
//!   on the matching `from` subject. A message published in A that matches the shadow is
//!   delivered straight to B's client, with the subject mapped to B's side. Shadows are never
//!   re-published in B, so stream imports cannot loop.
//! - Service import (B imports A's service `to`, published in B as `from`): a publish in B on
//!   `from` is re-published in A on `to`, with the reply replaced by a fresh `_R_.xxxxxx.yyyyyy`
//!   subject that A maps back to the requester's reply (the response map). Only that exact
//!   subject maps back, and it is dropped after the first response (singleton) or after the
//!   response threshold without traffic (stream, chunked), so responders never reach anything
//!   else in B.
//! - Mappings rewrite a published subject before routing.
//!
//! An account with none of these pays one relaxed atomic load per publish ([`Account::flags`]).

pub mod system;
pub mod transform;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_conf::{ExportKind, ResponseType};
use chorus_proto::subject::{subject_is_subset_of, subjects_overlap};
use chorus_sublist::Sublist;
use rustc_hash::FxHashMap;

use crate::sub::{SubRef, Subscription};
use transform::Transform;

/// The account clients land in when no accounts are configured, as in nats-server.
pub const GLOBAL_ACCOUNT: &str = "$G";
/// The system account nats-server creates unless `no_system_account` is set.
pub const SYSTEM_ACCOUNT: &str = "$SYS";

/// [`Account::flags`] bits: what routing must look at besides the sublist.
pub const F_MAPPINGS: u8 = 1;
pub const F_SERVICE_IMPORTS: u8 = 2;
pub const F_SHADOWS: u8 = 4;
pub const F_RESPONSES: u8 = 8;
/// Not a publish-path bit: subscriptions need shadows.
const F_STREAM_IMPORTS: u8 = 16;
/// The system account: `$SYS.` requests are answered by the server.
pub const F_SYSTEM: u8 = 32;

/// nats-server's `DEFAULT_SERVICE_EXPORT_RESPONSE_THRESHOLD`.
pub const DEFAULT_RESPONSE_THRESHOLD: Duration = Duration::from_secs(120);

const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Who may import an export.
#[derive(Debug, Clone, Default)]
pub struct ExportAuth {
    /// Accounts allowed by name; empty (with no token position) = public.
    pub approved: Vec<String>,
    /// `account_token_position`: the importer's name must be this (1-based) token.
    pub token_pos: Option<u32>,
    /// JWT exports with `token_req`: importers need an activation token.
    pub token_req: bool,
}

impl ExportAuth {
    /// nats-server's checkAuth; `activated`: the import carries a valid activation token.
    fn allows(&self, importer: &str, subject: &str, activated: bool) -> bool {
        if let Some(p) = self.token_pos.filter(|p| *p > 0) {
            return subject.split('.').nth(p as usize - 1) == Some(importer);
        }
        if self.token_req {
            return activated;
        }
        self.approved.is_empty() || self.approved.iter().any(|a| a == importer)
    }
}

#[derive(Debug, Clone)]
pub struct StreamExport {
    pub subject: String,
    pub auth: ExportAuth,
}

#[derive(Debug)]
pub struct ServiceExport {
    pub subject: String,
    pub auth: ExportAuth,
    pub response: ResponseType,
    pub threshold: Duration,
}

/// A stream import of this account from `acc`.
#[derive(Debug)]
pub struct StreamImport {
    pub acc: Arc<Account>,
    /// The exporter's subject.
    pub from: String,
    /// The subject seen in the importing account.
    pub to: String,
    tr: Option<Transform>,
    rtr: Option<Transform>,
    /// `from` has wildcards and `to` is the same: deliver the published subject.
    use_pub: bool,
}

impl StreamImport {
    /// The subject an importer's client sees for a message published on `subject` in the
    /// exporting account.
    pub fn deliver_subject(&self, subject: &[u8]) -> Option<Bytes> {
        if let Some(tr) = &self.tr {
            let s = std::str::from_utf8(subject).ok()?;
            Some(Bytes::from(tr.apply(s)))
        } else if self.use_pub {
            None
        } else {
            Some(Bytes::copy_from_slice(self.to.as_bytes()))
        }
    }
}

/// A service import of this account from `acc`.
#[derive(Debug)]
pub struct ServiceImport {
    pub acc: Arc<Account>,
    /// Local subject: where this account's clients send requests.
    pub from: String,
    /// The exporter's subject.
    pub to: String,
    tr: Option<Transform>,
    use_pub: bool,
    pub export: Arc<ServiceExport>,
    pub share: bool,
}

impl ServiceImport {
    /// The subject in the exporting account for a request published on `subject`.
    pub fn target(&self, subject: &[u8]) -> Bytes {
        if let Some(tr) = &self.tr
            && let Ok(s) = std::str::from_utf8(subject)
        {
            return Bytes::from(tr.apply(s));
        }
        if self.use_pub {
            Bytes::copy_from_slice(subject)
        } else {
            Bytes::copy_from_slice(self.to.as_bytes())
        }
    }
}

#[derive(Debug)]
struct Mapping {
    src: String,
    wildcard: bool,
    /// Cumulative weights (ascending) and their transforms; `None` keeps the subject.
    dests: Vec<(u8, Option<Transform>)>,
}

/// Imports, exports and mappings of one account, replaced as a whole when they change.
#[derive(Debug, Default)]
pub struct Routing {
    pub stream_imports: Vec<Arc<StreamImport>>,
    pub service_imports: Vec<Arc<ServiceImport>>,
    pub stream_exports: Vec<StreamExport>,
    pub service_exports: Vec<Arc<ServiceExport>>,
    mappings: Vec<Mapping>,
}

/// A stream-import shadow of a client's subscription, living in the exporter's shadow list.
#[derive(Debug)]
pub struct Shadow {
    pub root: Arc<Subscription>,
    pub import: Arc<StreamImport>,
    /// The subject in the exporter's list.
    pub subject: Bytes,
}

#[derive(Debug, Clone)]
pub struct ShadowRef(pub Arc<Shadow>);

impl PartialEq for ShadowRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Where a response on a `_R_` subject of this account goes.
#[derive(Debug, Clone)]
pub struct Response {
    /// The requester's account and reply subject.
    pub dest: Arc<Account>,
    pub to: Bytes,
    pub kind: ResponseType,
    threshold: Duration,
    last: Instant,
}

#[derive(Debug)]
struct Responses {
    map: FxHashMap<Bytes, Response>,
    /// Expired entries (no response within the threshold) are swept at most once a second,
    /// so a flood of unanswered requests costs memory until the threshold, never a sweep per
    /// request.
    last_sweep: Instant,
}

impl Default for Responses {
    fn default() -> Self {
        Responses { map: FxHashMap::default(), last_sweep: Instant::now() }
    }
}

/// Account limits (`limits {}` in config, `limits` in account claims); `None` = unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: Option<usize>,
    pub max_subscriptions: Option<usize>,
    pub max_payload: Option<usize>,
}

#[derive(Debug)]
pub struct Account {
    pub name: String,
    pub sublist: Sublist<SubRef>,
    flags: AtomicU8,
    pub(crate) shadows: Sublist<ShadowRef>,
    routing: RwLock<Arc<Routing>>,
    responses: Mutex<Responses>,
    /// `_R_.xxxxxx.`: the prefix of this account's response subjects.
    resp_prefix: String,
    limits: RwLock<Limits>,
    /// Clients bound to this account.
    pub(crate) conns: AtomicUsize,
    /// Local interest: subscriptions of this server's clients per (subject, queue), what the
    /// routes are told (see `interest`).
    pub(crate) interest: Mutex<FxHashMap<(Bytes, Option<Bytes>), u32>>,
    /// Routes were told this account's response subjects (`_R_.xxxxxx.>`) come here.
    pub(crate) responses_advertised: std::sync::atomic::AtomicBool,
}

impl Account {
    pub fn new(name: &str, cache: bool) -> Self {
        let sublist = if cache { Sublist::new() } else { Sublist::without_cache() };
        let mut p = String::from("_R_.");
        let mut rn: u64 = rand::random();
        for _ in 0..6 {
            p.push(DIGITS[(rn % 62) as usize] as char);
            rn /= 62;
        }
        p.push('.');
        Account {
            name: name.to_string(),
            sublist,
            flags: AtomicU8::new(0),
            shadows: if cache { Sublist::new() } else { Sublist::without_cache() },
            routing: RwLock::new(Arc::default()),
            responses: Mutex::default(),
            resp_prefix: p,
            limits: RwLock::default(),
            conns: AtomicUsize::new(0),
            interest: Mutex::default(),
            responses_advertised: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// `_R_.xxxxxx.`: where responses to this account's service-import requests go.
    pub(crate) fn response_prefix(&self) -> &str {
        &self.resp_prefix
    }

    /// `F_*` bits of the publish path; zero means plain sublist routing.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.flags.load(Ordering::Relaxed) & !F_STREAM_IMPORTS
    }

    /// Whether new subscriptions need stream-import shadows.
    #[inline]
    pub fn has_stream_imports(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & F_STREAM_IMPORTS != 0
    }

    fn set_flag(&self, f: u8, on: bool) {
        if on {
            self.flags.fetch_or(f, Ordering::Relaxed);
        } else {
            self.flags.fetch_and(!f, Ordering::Relaxed);
        }
    }

    pub(crate) fn set_system(&self, on: bool) {
        self.set_flag(F_SYSTEM, on);
    }

    pub fn is_system(&self) -> bool {
        self.flags() & F_SYSTEM != 0
    }

    pub fn routing(&self) -> Arc<Routing> {
        self.routing.read().unwrap().clone()
    }

    pub(crate) fn set_routing(&self, r: Routing) {
        self.set_flag(F_MAPPINGS, !r.mappings.is_empty());
        self.set_flag(F_SERVICE_IMPORTS, !r.service_imports.is_empty());
        self.set_flag(F_STREAM_IMPORTS, !r.stream_imports.is_empty());
        *self.routing.write().unwrap() = Arc::new(r);
    }

    pub fn limits(&self) -> Limits {
        *self.limits.read().unwrap()
    }

    pub(crate) fn set_limits(&self, l: Limits) {
        *self.limits.write().unwrap() = l;
    }

    /// Counts a client in unless `max_connections` is reached.
    pub(crate) fn add_conn(&self) -> bool {
        let max = self.limits().max_connections;
        let mut cur = self.conns.load(Ordering::Relaxed);
        loop {
            if max.is_some_and(|m| cur >= m) {
                return false;
            }
            match self.conns.compare_exchange(cur, cur + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(c) => cur = c,
            }
        }
    }

    pub(crate) fn remove_conn(&self) {
        let _ = self.conns.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| c.checked_sub(1));
    }

    pub fn num_connections(&self) -> usize {
        self.conns.load(Ordering::Relaxed)
    }

    /// The mapped subject of a publish, if a mapping applies (nats-server's
    /// `selectMappedSubject`).
    pub fn map_subject(&self, subject: &[u8]) -> Option<Bytes> {
        let routing = self.routing();
        let s = std::str::from_utf8(subject).ok()?;
        let m = routing.mappings.iter().find(|m| {
            if m.wildcard { subject_is_subset_of(subject, m.src.as_bytes()) } else { m.src == s }
        })?;
        let d = if m.dests.len() == 1 && m.dests[0].0 >= 100 {
            &m.dests[0]
        } else {
            let w: u8 = rand::random_range(0..100);
            m.dests.iter().find(|(cw, _)| w < *cw)?
        };
        Some(match &d.1 {
            Some(tr) => Bytes::from(tr.apply(s)),
            None => Bytes::copy_from_slice(subject),
        })
    }

    /// The stream imports a subscription on `subject` in this account needs shadows for, with
    /// the subject of each shadow in the exporting account (nats-server's
    /// `addShadowSubscriptions`).
    pub fn shadow_targets(&self, subject: &str) -> Vec<(Arc<StreamImport>, String)> {
        let routing = self.routing();
        let mut out = Vec::new();
        if routing.stream_imports.is_empty() {
            return out;
        }
        let sb = subject.as_bytes();
        let has_wc = subject.split('.').any(|t| t == "*" || t == ">");
        for im in &routing.stream_imports {
            let reverse = |s: &str| match (&im.rtr, im.use_pub) {
                (Some(r), false) => r.apply(s),
                _ => s.to_string(),
            };
            if subject == im.to {
                out.push((im.clone(), im.from.clone()));
            } else if subject_is_subset_of(sb, im.to.as_bytes()) {
                // Narrower than the import: the matching part of `from`.
                out.push((im.clone(), reverse(subject)));
            } else if has_wc && subject_is_subset_of(im.to.as_bytes(), sb) {
                out.push((im.clone(), im.from.clone()));
            } else if has_wc && subjects_overlap(sb, im.to.as_bytes()) {
                let overlap = overlap_subject(subject, &im.to);
                out.push((im.clone(), reverse(&overlap)));
            }
        }
        out
    }

    /// A fresh response subject for a request into this account through a service import,
    /// remembered until its response (or the threshold) so the response can go back.
    pub(crate) fn new_response(
        &self,
        dest: Arc<Account>,
        reply: &[u8],
        export: &ServiceExport,
    ) -> Bytes {
        let mut s = String::with_capacity(self.resp_prefix.len() + 6);
        s.push_str(&self.resp_prefix);
        let mut rn: u64 = rand::random();
        for _ in 0..6 {
            s.push(DIGITS[(rn % 62) as usize] as char);
            rn /= 62;
        }
        let key = Bytes::from(s);
        let now = Instant::now();
        let mut r = self.responses.lock().unwrap();
        if now.duration_since(r.last_sweep) >= Duration::from_secs(1) {
            r.map.retain(|_, v| now.duration_since(v.last) < v.threshold);
            r.last_sweep = now;
        }
        r.map.insert(
            key.clone(),
            Response {
                dest,
                to: Bytes::copy_from_slice(reply),
                kind: export.response,
                threshold: export.threshold,
                last: now,
            },
        );
        self.set_flag(F_RESPONSES, true);
        key
    }

    /// The response mapping for a publish on `subject`, if it is one of this account's live
    /// response subjects.
    pub(crate) fn response_for(&self, subject: &[u8]) -> Option<Response> {
        if !subject.starts_with(self.resp_prefix.as_bytes()) {
            return None;
        }
        let mut r = self.responses.lock().unwrap();
        let e = r.map.get_mut(subject)?;
        let now = Instant::now();
        if now.duration_since(e.last) >= e.threshold {
            r.map.remove(subject);
            return None;
        }
        e.last = now;
        Some(e.clone())
    }

    /// Forgets a response subject (after a singleton's response, an empty chunked/stream
    /// terminator, or a request nobody received).
    pub(crate) fn remove_response(&self, subject: &[u8]) {
        let mut r = self.responses.lock().unwrap();
        r.map.remove(subject);
        if r.map.is_empty() {
            self.set_flag(F_RESPONSES, false);
        }
    }

    #[cfg(test)]
    pub(crate) fn num_responses(&self) -> usize {
        self.responses.lock().unwrap().map.len()
    }

    pub(crate) fn insert_shadow(&self, sh: &Arc<Shadow>) -> bool {
        let ok = self
            .shadows
            .insert(&sh.subject, sh.root.queue.as_deref(), ShadowRef(sh.clone()))
            .is_ok();
        if ok {
            self.set_flag(F_SHADOWS, true);
        }
        ok
    }

    pub(crate) fn remove_shadow(&self, sh: &Arc<Shadow>) {
        let _ = self.shadows.remove(&sh.subject, sh.root.queue.as_deref(), &ShadowRef(sh.clone()));
        if self.shadows.count() == 0 {
            self.set_flag(F_SHADOWS, false);
        }
    }

    /// Whether an export of this account lets `importer` import `subject`
    /// (nats-server's `checkStreamImportAuthorized` / `checkServiceImportAuthorized`).
    pub fn stream_export_for(&self, importer: &str, subject: &str, activated: bool) -> bool {
        let r = self.routing();
        find_export(
            r.stream_exports.iter().map(|e| (&e.subject, &e.auth)),
            importer,
            subject,
            activated,
        )
        .is_some()
    }

    pub fn service_export_for(
        &self,
        importer: &str,
        subject: &str,
        activated: bool,
    ) -> Option<Arc<ServiceExport>> {
        let r = self.routing();
        let i = find_export(
            r.service_exports.iter().map(|e| (&e.subject, &e.auth)),
            importer,
            subject,
            activated,
        )?;
        Some(r.service_exports[i].clone())
    }
}

/// An exact subject match first, else the first export the subject is a subset of.
fn find_export<'a>(
    exports: impl Iterator<Item = (&'a String, &'a ExportAuth)> + Clone,
    importer: &str,
    subject: &str,
    activated: bool,
) -> Option<usize> {
    if let Some((i, (_, auth))) = exports.clone().enumerate().find(|(_, (s, _))| *s == subject) {
        return auth.allows(importer, subject, activated).then_some(i);
    }
    let (i, (_, auth)) = exports
        .enumerate()
        .find(|(_, (s, _))| subject_is_subset_of(subject.as_bytes(), s.as_bytes()))?;
    auth.allows(importer, subject, activated).then_some(i)
}

/// The subject both `sub` and `to` match, made as specific as `to` (nats-server's token
/// rewriting in addShadowSubscriptions).
fn overlap_subject(sub: &str, to: &str) -> String {
    let mut toks: Vec<&str> = sub.split('.').collect();
    let im: Vec<&str> = to.split('.').collect();
    for (i, t) in toks.iter_mut().enumerate() {
        if i >= im.len() {
            break;
        }
        if *t == "*" && im[i] != ">" {
            *t = im[i];
        }
    }
    let last = toks.len() - 1;
    if toks[last] == ">" && im.len() >= toks.len() {
        toks[last] = im[last];
        toks.extend_from_slice(&im[toks.len()..]);
    }
    toks.join(".")
}

/// Why an import or export of the configuration cannot be set up (nats-server's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("Error adding stream import {0:?}: stream import not authorized")]
    StreamNotAuthorized(String),
    #[error("Error adding service import {0:?}: service import not authorized")]
    ServiceNotAuthorized(String),
    #[error(
        "Error adding stream import {0:?}: stream import prefix can not contain wildcard tokens"
    )]
    BadPrefix(String),
    #[error("Error adding {kind} import {subject:?}: {err}")]
    Transform { kind: &'static str, subject: String, err: String },
    #[error("Error adding {kind} import {subject:?}: import forms a cycle")]
    Cycle { kind: &'static str, subject: String },
    #[error("Error adding mapping for {src:?} to {dest:?} : {err}")]
    Mapping { src: String, dest: String, err: String },
}

/// Builds the exports of every account from its options (first pass).
pub fn exports_from_options(
    a: &chorus_conf::AccountOptions,
) -> (Vec<StreamExport>, Vec<Arc<ServiceExport>>) {
    let mut streams = Vec::new();
    let mut services = Vec::new();
    for e in &a.exports {
        let auth = ExportAuth {
            approved: e.accounts.clone(),
            token_pos: e.account_token_position,
            token_req: false,
        };
        match e.kind {
            ExportKind::Stream => streams.push(StreamExport { subject: e.subject.clone(), auth }),
            ExportKind::Service => services.push(Arc::new(ServiceExport {
                subject: e.subject.clone(),
                auth,
                response: e.response_type.unwrap_or(ResponseType::Singleton),
                threshold: e.response_threshold.unwrap_or(DEFAULT_RESPONSE_THRESHOLD),
            })),
        }
    }
    (streams, services)
}

/// A stream import of `importer` from `exporter` (whose exports are already set).
pub fn stream_import(
    importer: &str,
    exporter: &Arc<Account>,
    from: &str,
    to: Option<&str>,
    prefix: Option<&str>,
    activated: bool,
) -> Result<StreamImport, ImportError> {
    if !exporter.stream_export_for(importer, from, activated) {
        return Err(ImportError::StreamNotAuthorized(from.to_string()));
    }
    let cycle = |s: &str| {
        let mut visited = vec![importer.to_string()];
        stream_cycle(exporter, s, &mut visited)
    };
    let to = match (prefix.filter(|p| !p.is_empty()), to.filter(|t| !t.is_empty())) {
        (Some(p), _) => {
            if p.split('.').any(|t| t == "*" || t == ">") {
                return Err(ImportError::BadPrefix(from.to_string()));
            }
            let p = p.trim_end_matches('.');
            format!("{p}.{from}")
        }
        (None, Some(t)) => t.to_string(),
        (None, None) => from.to_string(),
    };
    if cycle(&to) || cycle(from) {
        return Err(ImportError::Cycle { kind: "stream", subject: from.to_string() });
    }
    let has_wc = from.split('.').any(|t| t == "*" || t == ">");
    let (mut tr, mut use_pub, mut to_sub) = (None, false, to.clone());
    if has_wc {
        if to == from {
            use_pub = true;
        } else {
            let t = Transform::strict(from, &transform::tokenize(&to)).map_err(|e| {
                ImportError::Transform {
                    kind: "stream",
                    subject: from.to_string(),
                    err: format!(
                        "failed to create mapping transform for stream import subject from \
                         {from:?} to {to:?}: {e}"
                    ),
                }
            })?;
            to_sub = transform::untokenize(&to);
            tr = Some(t);
        }
    }
    let rtr = tr.as_ref().and_then(Transform::reverse);
    Ok(StreamImport { acc: exporter.clone(), from: from.to_string(), to: to_sub, tr, rtr, use_pub })
}

/// A service import of `importer` from `exporter`: requests on `local` go to the exporter's
/// `remote`.
pub fn service_import(
    importer: &str,
    exporter: &Arc<Account>,
    remote: &str,
    local: Option<&str>,
    share: bool,
    activated: bool,
) -> Result<ServiceImport, ImportError> {
    let Some(export) = exporter.service_export_for(importer, remote, activated) else {
        return Err(ImportError::ServiceNotAuthorized(remote.to_string()));
    };
    let local = local.filter(|l| !l.is_empty()).unwrap_or(remote);
    let from_t = if remote.split('.').any(|t| t == "*" || t == ">") {
        transform::untokenize(local)
    } else {
        local.to_string()
    };
    let mut visited = vec![importer.to_string()];
    if service_cycle(exporter, &from_t, &mut visited) {
        return Err(ImportError::Cycle { kind: "service", subject: remote.to_string() });
    }
    let has_wc = local.split('.').any(|t| t == "*" || t == ">");
    let (mut tr, mut use_pub) = (None, false);
    if has_wc {
        if local == remote {
            use_pub = true;
        } else {
            let t = Transform::new(local, &transform::tokenize(remote)).map_err(|e| {
                ImportError::Transform {
                    kind: "service",
                    subject: remote.to_string(),
                    err: e.to_string(),
                }
            })?;
            tr = Some(t);
        }
    }
    Ok(ServiceImport {
        acc: exporter.clone(),
        from: local.to_string(),
        to: remote.to_string(),
        tr,
        use_pub,
        export,
        share,
    })
}

/// nats-server's cycle searches give up (as a cycle) past this many accounts.
const MAX_CYCLE_SEARCH: usize = 1024;

/// Whether importing `to` from `acc` would close a loop of stream imports
/// (nats-server's `checkStreamImportsForCycles`); `visited` holds the accounts on the path.
fn stream_cycle(acc: &Account, to: &str, visited: &mut Vec<String>) -> bool {
    if visited.len() >= MAX_CYCLE_SEARCH {
        return true;
    }
    let r = acc.routing();
    if !r.stream_exports.iter().any(|e| subject_is_subset_of(to.as_bytes(), e.subject.as_bytes())) {
        return false;
    }
    for si in &r.stream_imports {
        if subjects_overlap(to.as_bytes(), si.to.as_bytes()) {
            if visited.contains(&si.acc.name) {
                return true;
            }
            visited.push(acc.name.clone());
            let t = if subject_is_subset_of(si.to.as_bytes(), to.as_bytes()) { &si.to } else { to };
            if stream_cycle(&si.acc, t, visited) {
                return true;
            }
        }
    }
    false
}

/// The same for service imports (nats-server's `checkServiceImportsForCycles`).
fn service_cycle(acc: &Account, from: &str, visited: &mut Vec<String>) -> bool {
    if visited.len() >= MAX_CYCLE_SEARCH {
        return true;
    }
    let r = acc.routing();
    for si in &r.service_imports {
        if subjects_overlap(from.as_bytes(), si.to.as_bytes()) {
            if visited.contains(&si.acc.name) {
                return true;
            }
            visited.push(acc.name.clone());
            let f = if subject_is_subset_of(si.from.as_bytes(), from.as_bytes()) {
                &si.from
            } else {
                from
            };
            if service_cycle(&si.acc, f, visited) {
                return true;
            }
        }
    }
    false
}

/// Compiles `mappings {}` entries (weights made cumulative; the remainder below 100 keeps the
/// original subject, as nats-server does).
pub fn mappings_from_options(
    opts: &[chorus_conf::MappingOptions],
) -> Result<Vec<MappingSet>, ImportError> {
    let mut out = Vec::new();
    for m in opts {
        let mut dests: Vec<(u8, Option<Transform>)> = Vec::new();
        for d in m.destinations.iter().filter(|d| d.cluster.is_none()) {
            let tr = Transform::new(&m.subject, &d.subject).map_err(|e| ImportError::Mapping {
                src: m.subject.clone(),
                dest: d.subject.clone(),
                err: e.to_string(),
            })?;
            dests.push((d.weight, Some(tr)));
        }
        let total: u32 = dests.iter().map(|d| u32::from(d.0)).sum();
        if total < 100 {
            dests.push(((100 - total) as u8, None));
        }
        dests.sort_by_key(|d| d.0);
        let mut acc = 0u8;
        for d in &mut dests {
            acc = acc.saturating_add(d.0);
            d.0 = acc;
        }
        let wildcard = m.subject.split('.').any(|t| t == "*" || t == ">");
        out.push(MappingSet(Mapping { src: m.subject.clone(), wildcard, dests }));
    }
    Ok(out)
}

/// A compiled mapping, ready for [`RoutingBuilder`].
#[derive(Debug)]
pub struct MappingSet(Mapping);

/// Assembles a [`Routing`].
#[derive(Debug, Default)]
pub struct RoutingBuilder {
    pub stream_imports: Vec<Arc<StreamImport>>,
    pub service_imports: Vec<Arc<ServiceImport>>,
    pub stream_exports: Vec<StreamExport>,
    pub service_exports: Vec<Arc<ServiceExport>>,
    pub mappings: Vec<MappingSet>,
}

impl RoutingBuilder {
    pub fn build(self) -> Routing {
        Routing {
            stream_imports: self.stream_imports,
            service_imports: self.service_imports,
            stream_exports: self.stream_exports,
            service_exports: self.service_exports,
            mappings: self.mappings.into_iter().map(|m| m.0).collect(),
        }
    }
}

/// Sets only the exports of an account, keeping its imports and mappings (first pass of a
/// configuration, so imports can check them).
pub(crate) fn set_exports(
    acc: &Account,
    streams: Vec<StreamExport>,
    services: Vec<Arc<ServiceExport>>,
) {
    let old = acc.routing();
    acc.set_routing(Routing {
        stream_imports: old.stream_imports.clone(),
        service_imports: old.service_imports.clone(),
        stream_exports: streams,
        service_exports: services,
        mappings: Vec::new(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exporter(streams: &[(&str, &[&str])], services: &[(&str, &[&str])]) -> Arc<Account> {
        let a = Arc::new(Account::new("A", true));
        let auth = |accs: &[&str]| ExportAuth {
            approved: accs.iter().map(|s| s.to_string()).collect(),
            token_pos: None,
            token_req: false,
        };
        set_exports(
            &a,
            streams
                .iter()
                .map(|(s, accs)| StreamExport { subject: s.to_string(), auth: auth(accs) })
                .collect(),
            services
                .iter()
                .map(|(s, accs)| {
                    Arc::new(ServiceExport {
                        subject: s.to_string(),
                        auth: auth(accs),
                        response: ResponseType::Singleton,
                        threshold: DEFAULT_RESPONSE_THRESHOLD,
                    })
                })
                .collect(),
        );
        a
    }

    #[test]
    fn export_authorization() {
        let a = exporter(&[("pub.>", &[]), ("priv.>", &["B"])], &[("svc.*", &["B"])]);
        assert!(a.stream_export_for("C", "pub.x", false));
        assert!(a.stream_export_for("B", "priv.x", false));
        assert!(!a.stream_export_for("C", "priv.x", false));
        assert!(!a.stream_export_for("B", "other", false));
        assert!(a.service_export_for("B", "svc.q", false).is_some());
        assert!(a.service_export_for("C", "svc.q", false).is_none());
        let e = ExportAuth { approved: vec![], token_pos: Some(2), token_req: false };
        assert!(e.allows("B", "x.B.y", false));
        assert!(!e.allows("C", "x.B.y", false));
        let t = ExportAuth { approved: vec![], token_pos: None, token_req: true };
        assert!(!t.allows("B", "x", false));
        assert!(t.allows("B", "x", true));
    }

    #[test]
    fn stream_import_with_prefix_maps_both_ways() {
        let a = exporter(&[("foo.>", &[])], &[]);
        let im = stream_import("B", &a, "foo.>", None, Some("pre"), false).unwrap();
        assert_eq!(im.to, "pre.foo.>");
        assert_eq!(im.deliver_subject(b"foo.x.y").unwrap(), "pre.foo.x.y");
        let b = Account::new("B", true);
        b.set_routing(Routing { stream_imports: vec![Arc::new(im)], ..Routing::default() });
        let t = b.shadow_targets("pre.foo.bar");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].1, "foo.bar");
        assert_eq!(b.shadow_targets(">")[0].1, "foo.>");
        assert_eq!(b.shadow_targets("pre.*.z")[0].1, "foo.z");
        assert!(b.shadow_targets("other.>").is_empty());
        assert!(matches!(
            stream_import("B", &a, "foo.>", None, Some("p.*"), false),
            Err(ImportError::BadPrefix(_))
        ));
        assert!(matches!(
            stream_import("B", &a, "bar", None, None, false),
            Err(ImportError::StreamNotAuthorized(_))
        ));
    }

    #[test]
    fn literal_stream_import_with_to() {
        let a = exporter(&[("news", &[])], &[]);
        let im = stream_import("B", &a, "news", Some("local.news"), None, false).unwrap();
        assert_eq!(im.deliver_subject(b"news").unwrap(), "local.news");
        let b = Account::new("B", true);
        b.set_routing(Routing { stream_imports: vec![Arc::new(im)], ..Routing::default() });
        assert_eq!(b.shadow_targets("local.news")[0].1, "news");
        assert_eq!(b.shadow_targets("local.>")[0].1, "news");
    }

    #[test]
    fn service_import_targets_and_responses() {
        let a = exporter(&[], &[("svc.>", &[])]);
        let si = service_import("B", &a, "svc.>", Some("api.>"), false, false).unwrap();
        assert_eq!(si.target(b"api.add"), "svc.add");
        let b = Arc::new(Account::new("B", true));
        let r = a.new_response(b.clone(), b"_INBOX.1", &si.export);
        assert!(r.starts_with(b"_R_."));
        assert_eq!(r.len(), "_R_.xxxxxx.yyyyyy".len());
        assert_eq!(a.flags() & F_RESPONSES, F_RESPONSES);
        let got = a.response_for(&r).unwrap();
        assert_eq!(got.to, "_INBOX.1");
        assert!(a.response_for(b"_R_.other.subject").is_none());
        assert_eq!(a.num_responses(), 1);
        a.remove_response(&r);
        assert_eq!(a.num_responses(), 0);
        assert!(a.response_for(&r).is_none());
        assert_eq!(a.flags() & F_RESPONSES, 0);
        // Past the response threshold a response subject maps nowhere.
        let quick = ServiceExport {
            subject: "svc.>".into(),
            auth: ExportAuth::default(),
            response: ResponseType::Streamed,
            threshold: Duration::ZERO,
        };
        let r = a.new_response(b, b"_INBOX.2", &quick);
        assert!(a.response_for(&r).is_none());
    }

    #[test]
    fn mappings_plain_wildcard_and_weighted() {
        use chorus_conf::{MapDestination, MappingOptions};
        let d = |s: &str, w: u8| MapDestination { subject: s.into(), weight: w, cluster: None };
        let ms = mappings_from_options(&[
            MappingOptions { subject: "a".into(), destinations: vec![d("b", 100)] },
            MappingOptions { subject: "x.*.*".into(), destinations: vec![d("y.$2.$1", 100)] },
            MappingOptions { subject: "w".into(), destinations: vec![d("w1", 0)] },
        ])
        .unwrap();
        let acc = Account::new("A", true);
        acc.set_routing(RoutingBuilder { mappings: ms, ..Default::default() }.build());
        assert_eq!(acc.flags() & F_MAPPINGS, F_MAPPINGS);
        assert_eq!(acc.map_subject(b"a").unwrap(), "b");
        assert_eq!(acc.map_subject(b"x.1.2").unwrap(), "y.2.1");
        assert!(acc.map_subject(b"c").is_none());
        // Weight 0 for w1: the remaining 100 keep the subject.
        assert_eq!(acc.map_subject(b"w").unwrap(), "w");
    }

    #[test]
    fn import_cycles_are_refused() {
        let a = exporter(&[("foo", &[])], &[("svc", &[])]);
        let b = Arc::new(Account::new("B", true));
        set_exports(
            &b,
            vec![StreamExport { subject: "foo".into(), auth: ExportAuth::default() }],
            vec![Arc::new(ServiceExport {
                subject: "svc".into(),
                auth: ExportAuth::default(),
                response: ResponseType::Singleton,
                threshold: DEFAULT_RESPONSE_THRESHOLD,
            })],
        );
        // B imports foo and svc from A; then A importing them back from B is a cycle.
        let bs = stream_import("B", &a, "foo", None, None, false).unwrap();
        let bv = service_import("B", &a, "svc", None, false, false).unwrap();
        let current = b.routing();
        b.set_routing(
            RoutingBuilder {
                stream_imports: vec![Arc::new(bs)],
                service_imports: vec![Arc::new(bv)],
                stream_exports: current.stream_exports.clone(),
                service_exports: current.service_exports.clone(),
                ..Default::default()
            }
            .build(),
        );
        assert_eq!(
            stream_import("A", &b, "foo", None, None, false).unwrap_err().to_string(),
            r#"Error adding stream import "foo": import forms a cycle"#
        );
        assert_eq!(
            service_import("A", &b, "svc", None, false, false).unwrap_err().to_string(),
            r#"Error adding service import "svc": import forms a cycle"#
        );
    }

    #[test]
    fn overlap_rewrites_wildcards_to_the_import() {
        assert_eq!(overlap_subject("*.foo.>", "pre.*.bar"), "pre.foo.bar");
        assert_eq!(overlap_subject("a.>", "a.b.c"), "a.b.c");
    }
}
