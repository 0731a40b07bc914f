//! One client connection: a reader task that parses and routes, a writer task that drains the
//! outbound buffer.
//!
//! ```text
//!   socket ──read──► reader task ──decode──► ClientOp ──route──► subscribers' Outbound
//!                     │  (owns subs, match cache,                    │ append under a short
//!                     │   dirty set of touched writers)              │ lock; no I/O, no await
//!                     └─ end of read batch: wake each dirty writer once
//!   socket ◄──write── writer task ◄── swap(Outbound.buf, spare) ◄── Notify
//! ```
//!
//! Why this shape:
//! - Publishers never wait on a subscriber's socket. Delivery appends to the subscriber's
//!   buffer; only its own writer task writes. A subscriber that stops reading grows its buffer
//!   up to `max_pending` and is then disconnected as a slow consumer; everyone else is served
//!   meanwhile. (nats-server makes the publisher flush inline and can stall it up to
//!   `write_deadline`.)
//! - A publisher whose receiver is merely behind (over 3/4 of `max_pending`) pauses for at most
//!   [`STALL_MAX`] after its read batch, so a fast producer does not needlessly push a healthy
//!   consumer over the limit.
//! - Waking writers once per read batch (deferred flush) turns N small writes into one.
//! - Where a message goes is decided by the routing engine (`deliver`), which every
//!   publisher shares; this module handles the client protocol around it: CONNECT and
//!   authentication, permissions, subscriptions, pings, limits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use chorus_proto::{ClientOp, Decoder, ProtoError, encode, subject};
use rustc_hash::FxHashMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::account::Account;
use crate::auth::{AuthError, Permissions};
use crate::conn::{CloseReason, Kind, Transport};
use crate::deliver::{self, Delivery, Lookup, MatchCache, Origin};
use crate::info::ConnectOpts;
use crate::interest;
use crate::listener::{ConnCtx, Stream};
use crate::server::ServerInner;
use crate::sub::{ClientShared, Msg, Subscription};

/// Longest pause imposed on a publisher whose receiver is close to `max_pending`.
const STALL_MAX: Duration = Duration::from_millis(5);
/// Publish-permission decisions cached per client before the cache is cleared.
const PUB_CACHE_MAX: usize = 1024;
/// Read buffer bounds: start small so 10k idle connections cost little, grow under load.
const READ_MIN: usize = 512;
const READ_MAX: usize = 64 * 1024;

/// The reader side of a connection: owns everything only this client's ops change.
struct Client {
    srv: Arc<ServerInner>,
    shared: Arc<ClientShared>,
    acc: Arc<Account>,
    /// Subject permissions of the authenticated user (`None` = everything allowed).
    perms: Option<Arc<Permissions>>,
    /// Publish decisions per subject, so a permitted publisher pays one hash lookup.
    pub_allowed: FxHashMap<Bytes, bool>,
    opts: ConnectOpts,
    connected: bool,
    auth_required: bool,
    decoder: Decoder,
    subs: FxHashMap<Bytes, Arc<Subscription>>,
    cache: MatchCache,
    /// What this client's publishes touched: receivers to wake, counters.
    delivery: Delivery,
    pings_out: u32,
    first_pong_sent: bool,
    last_in: Instant,
    in_msgs: u64,
    in_bytes: u64,
    /// Set when a read batch carried messages or subscription changes (nats-server's
    /// `last activity`).
    active: bool,
    max_subs: usize,
    ctx: ConnCtx,
    /// The account whose connection count includes this client.
    counted: Option<Arc<Account>>,
    /// When the user's credentials (JWT) expire, and what the client is told then.
    expires: Option<tokio::time::Instant>,
    expiry_text: &'static str,
}

/// Serves one accepted connection until it closes.
pub(crate) async fn run<S>(srv: Arc<ServerInner>, stream: S, addr: SocketAddr, ctx: ConnCtx)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let opts = srv.opts();
    let cid = ctx.cid.unwrap_or_else(|| srv.alloc_cid());
    let shared = Arc::new(ClientShared::new(
        cid,
        addr,
        Kind::Client,
        ctx.transport,
        opts.max_pending,
        srv.shutdown.child_token(),
        Arc::downgrade(&srv.gacc),
    ));
    if let Some(slot) = &ctx.shared {
        let _ = slot.set(shared.clone());
    }
    let (rd, wr) = tokio::io::split(stream);
    let writer = tokio::spawn(crate::sub::write_loop(
        shared.clone(),
        wr,
        opts.write_deadline,
        srv.stats.clone(),
    ));

    let auth = srv.auth();
    let ws_override = ctx.transport == Transport::Websocket
        && opts.websocket.as_ref().is_some_and(crate::listener::websocket::auth_override);
    let info = (!ctx.info_sent).then(|| srv.client_info_json(cid, addr, &auth, &ctx));
    let mut client = Client {
        acc: srv.gacc.clone(),
        perms: None,
        pub_allowed: FxHashMap::default(),
        shared: shared.clone(),
        opts: ConnectOpts::default(),
        connected: false,
        auth_required: auth.required() || ws_override,
        decoder: Decoder::new(opts.max_control_line, opts.max_payload),
        subs: FxHashMap::default(),
        cache: MatchCache::default(),
        delivery: Delivery::seeded(cid),
        pings_out: 0,
        first_pong_sent: false,
        last_in: Instant::now(),
        in_msgs: 0,
        in_bytes: 0,
        active: false,
        max_subs: opts.max_subscriptions,
        srv: srv.clone(),
        ctx,
        counted: None,
        expires: None,
        expiry_text: "User Authentication Expired",
    };

    let registered = srv.register_client(shared.clone());
    // INFO goes first, even to a client we are about to refuse, as nats-server does.
    if let Some(info) = info {
        let mut line = BytesMut::new();
        encode::info(&mut line, &info);
        shared.send_now(&line);
    }
    if !registered {
        tracing::warn!("{} - maximum connections exceeded", client.prefix());
        client.send_err("maximum connections exceeded");
        shared.close(CloseReason::MaxConnectionsExceeded, true);
    } else {
        tracing::debug!("{} - Client connection created", client.prefix());
        client.read_loop(rd, &opts).await;
    }
    client.cleanup();
    let _ = writer.await;
    if registered {
        srv.unregister_client(&shared);
    }
}

/// [`run`] for a connection a listener set up (TLS, WebSocket): the listeners hand their
/// streams over through this, so they do not depend on the client code.
pub(crate) fn handoff(
    srv: Arc<ServerInner>,
    stream: Box<dyn Stream>,
    addr: SocketAddr,
    ctx: ConnCtx,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(run(srv, stream, addr, ctx))
}

impl Client {
    fn prefix(&self) -> String {
        let (a, c) = (self.shared.addr, &self.ctx);
        let label = if c.transport == Transport::Websocket { "wid" } else { "cid" };
        match c.forwarded_ip {
            Some(ip) => format!("{ip}/{}:{} - {label}:{}", a.ip(), a.port(), self.shared.cid),
            None => format!("{}:{} - {label}:{}", a.ip(), a.port(), self.shared.cid),
        }
    }

    async fn read_loop<R: AsyncRead + Send>(&mut self, rd: R, opts: &chorus_conf::Options) {
        tokio::pin!(rd);
        let mut buf = BytesMut::with_capacity(READ_MIN);
        let mut target = READ_MIN;
        let ping_interval = opts.ping_interval.max(Duration::from_millis(10));
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let auth_deadline = tokio::time::Instant::now() + opts.authorization.timeout;
        let kill = self.shared.kill.clone();
        loop {
            if buf.capacity() - buf.len() < target / 2 {
                buf.reserve(target);
            }
            let awaiting_auth = self.auth_required && !self.connected;
            let n = tokio::select! {
                biased;
                _ = kill.cancelled() => return,
                r = rd.read_buf(&mut buf) => match r {
                    Ok(0) => {
                        self.shared.close(CloseReason::ClientClosed, false);
                        return;
                    }
                    Ok(n) => n,
                    Err(_) => {
                        self.shared.close(CloseReason::ReadError, false);
                        return;
                    }
                },
                _ = ping.tick() => {
                    self.ping_timer(ping_interval, opts.ping_max);
                    self.flush_dirty();
                    continue;
                }
                _ = sleep_until_opt(self.expires) => {
                    tracing::debug!("{} - {}", self.prefix(), self.expiry_text);
                    self.send_err(self.expiry_text);
                    self.flush_dirty();
                    self.shared.close(CloseReason::AuthenticationExpired, true);
                    return;
                }
                _ = tokio::time::sleep_until(auth_deadline), if awaiting_auth => {
                    tracing::debug!("{} - Authentication Timeout", self.prefix());
                    self.send_err("Authentication Timeout");
                    self.flush_dirty();
                    self.shared.close(CloseReason::AuthenticationTimeout, true);
                    return;
                }
            };
            if n >= target && target < READ_MAX {
                target *= 2;
            } else if n < target / 4 && target > READ_MIN {
                target /= 2;
            }
            self.last_in = Instant::now();
            let res = self.process_buffer(&mut buf);
            self.flush_counters();
            self.flush_dirty();
            if let Err(reason) = res {
                self.shared.close(reason, true);
                return;
            }
            if buf.is_empty() && buf.capacity() > 4 * READ_MAX {
                buf = BytesMut::with_capacity(READ_MIN);
            }
            if let Some(c) = self.delivery.take_stall() {
                let drained = c.drained.notified();
                if c.out_counts().2 > c.stall_at && !c.is_closing() {
                    let _ = tokio::time::timeout(STALL_MAX, drained).await;
                }
            }
        }
    }

    fn process_buffer(&mut self, buf: &mut BytesMut) -> Result<(), CloseReason> {
        loop {
            let op = match self.decoder.decode(buf) {
                Ok(Some(op)) => op,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.protocol_error(e)),
            };
            if tracing::enabled!(tracing::Level::TRACE) {
                self.trace_in(&op);
            }
            if self.auth_required && !self.connected && !matches!(op, ClientOp::Connect(_)) {
                self.auth_violation();
                return Err(CloseReason::AuthenticationViolation);
            }
            match op {
                ClientOp::Pub { subject, reply, payload } => {
                    self.process_pub(subject, reply, None, payload)
                }
                ClientOp::HPub { subject, reply, headers, payload } => {
                    // nats-server closes (without -ERR) a client that sends HPUB without
                    // having announced header support in CONNECT.
                    if !self.opts.headers {
                        tracing::error!("{} - message headers not supported", self.prefix());
                        return Err(CloseReason::ProtocolViolation);
                    }
                    self.process_pub(subject, reply, Some(headers), payload)
                }
                ClientOp::Sub { subject, queue, sid } => self.process_sub(subject, queue, sid),
                ClientOp::Unsub { sid, max } => self.process_unsub(sid, max),
                ClientOp::Ping => self.process_ping(),
                ClientOp::Pong => {
                    self.pings_out = 0;
                }
                ClientOp::Connect(json) => self.process_connect(&json)?,
                ClientOp::Info(_) | ClientOp::Ok => {}
                ClientOp::Err(text) => {
                    tracing::error!(
                        "{} - Client Error {}",
                        self.prefix(),
                        String::from_utf8_lossy(&text)
                    );
                    return Err(CloseReason::ParseError);
                }
            }
        }
    }

    /// `-V`: inbound operations as nats-server traces them (`<<- [PUB foo 5]`), with
    /// passwords and tokens in CONNECT masked.
    fn trace_in(&self, op: &ClientOp) {
        let s = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
        let line = match op {
            ClientOp::Connect(j) => format!("CONNECT {}", mask_secrets(&s(j))),
            ClientOp::Pub { subject, reply, payload } => match reply {
                Some(r) => format!("PUB {} {} {}", s(subject), s(r), payload.len()),
                None => format!("PUB {} {}", s(subject), payload.len()),
            },
            ClientOp::HPub { subject, reply, headers, payload } => {
                let total = headers.len() + payload.len();
                match reply {
                    Some(r) => format!("HPUB {} {} {} {total}", s(subject), s(r), headers.len()),
                    None => format!("HPUB {} {} {total}", s(subject), headers.len()),
                }
            }
            ClientOp::Sub { subject, queue: Some(q), sid } => {
                format!("SUB {} {} {}", s(subject), s(q), s(sid))
            }
            ClientOp::Sub { subject, queue: None, sid } => format!("SUB {} {}", s(subject), s(sid)),
            ClientOp::Unsub { sid, max: Some(m) } => format!("UNSUB {} {m}", s(sid)),
            ClientOp::Unsub { sid, max: None } => format!("UNSUB {}", s(sid)),
            ClientOp::Ping => "PING".into(),
            ClientOp::Pong => "PONG".into(),
            ClientOp::Info(j) => format!("INFO {}", s(j)),
            ClientOp::Ok => "+OK".into(),
            ClientOp::Err(t) => format!("-ERR {}", s(t)),
        };
        tracing::trace!("{} - <<- [{line}]", self.prefix());
        if let ClientOp::Pub { payload, .. } | ClientOp::HPub { payload, .. } = op {
            tracing::trace!("{} - <<- MSG_PAYLOAD: [{:?}]", self.prefix(), s(payload));
        }
    }

    fn protocol_error(&mut self, e: ProtoError) -> CloseReason {
        if let Some(text) = e.client_message() {
            self.send_err(text);
        }
        match e {
            ProtoError::MaxPayload { size, max } => {
                tracing::error!("{} - maximum payload exceeded: {size} vs {max}", self.prefix());
                CloseReason::MaxPayloadExceeded
            }
            ProtoError::MaxControlLine => {
                tracing::error!("{} - maximum control line exceeded", self.prefix());
                CloseReason::MaxControlLineExceeded
            }
            ProtoError::UnknownOp => {
                tracing::error!("{} - Client parser ERROR", self.prefix());
                CloseReason::ParseError
            }
            ProtoError::BadArgs { .. } => {
                tracing::error!("{} - {e}", self.prefix());
                CloseReason::ProtocolViolation
            }
        }
    }

    fn auth_violation(&mut self) {
        tracing::error!("{} - authentication error", self.prefix());
        self.send_err("Authorization Violation");
    }

    fn process_connect(&mut self, json: &[u8]) -> Result<(), CloseReason> {
        let mut opts: ConnectOpts = match serde_json::from_slice(json) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("{} - CONNECT parse error: {e}", self.prefix());
                return Err(CloseReason::ProtocolViolation);
            }
        };
        if self.ctx.transport == Transport::Websocket {
            self.ctx.cookies.apply(&mut opts);
        }
        if self.auth_required {
            let nonce = self.srv.nonce_for(self.shared.cid);
            match authenticate(&self.srv, &self.ctx, &mut opts, &nonce) {
                Ok(id) => self.bind_identity(id)?,
                Err(AuthError::Violation) => {
                    self.auth_violation();
                    return Err(CloseReason::AuthenticationViolation);
                }
            }
        }
        if opts.protocol < 0 || opts.protocol > crate::info::PROTO {
            self.send_err("invalid client protocol");
            return Err(CloseReason::BadClientProtocolVersion);
        }
        if opts.no_responders && !opts.headers {
            self.send_err("no responders requires headers support");
            return Err(CloseReason::NoRespondersRequiresHeaders);
        }
        {
            let mut m = self.shared.meta.lock().unwrap();
            // nats-server's first RTT estimate: from accept to CONNECT.
            m.rtt = Some(self.shared.start.elapsed().unwrap_or_default());
            m.name = opts.name.clone();
            m.lang = opts.lang.clone();
            m.version = opts.version.clone();
        }
        self.shared.headers.store(opts.headers, Ordering::Relaxed);
        self.opts = opts;
        self.connected = true;
        self.active = true;
        if self.opts.verbose {
            self.send_proto(encode::OK);
        }
        Ok(())
    }

    /// Binds the authenticated user's account and permissions to this connection.
    fn bind_identity(&mut self, id: crate::auth::Identity) -> Result<(), CloseReason> {
        let Some(acc) = self.srv.account(id.account.as_deref()) else {
            tracing::error!(
                "{} - account {:?} of user {:?} does not exist",
                self.prefix(),
                id.account,
                id.name
            );
            self.send_err("Failed Account Registration");
            return Err(CloseReason::AuthenticationViolation);
        };
        if let Some(prev) = self.counted.take() {
            prev.remove_conn();
        }
        if !acc.add_conn() {
            tracing::error!("{} - maximum account active connections exceeded", self.prefix());
            self.send_err("maximum account active connections exceeded");
            return Err(CloseReason::MaxAccountConnectionsExceeded);
        }
        self.counted = Some(acc.clone());
        *self.shared.account.lock().unwrap() = Arc::downgrade(&acc);
        let limits = acc.limits();
        if let Some(m) = pick_min(limits.max_subscriptions, id.max_subs) {
            self.max_subs = if self.max_subs == 0 { m } else { self.max_subs.min(m) };
        }
        if let Some(m) = pick_min(limits.max_payload, id.max_payload) {
            let mc = self.srv.opts().max_control_line;
            self.decoder.set_limits(mc, self.decoder.max_payload().min(m));
        }
        // The earlier of the user's and the account's expiry, with nats-server's wording.
        let user_first = match (id.expires, id.account_expires) {
            (Some(u), Some(a)) => u <= a,
            (u, _) => u.is_some(),
        };
        if let Some(exp) = if user_first { id.expires } else { id.account_expires } {
            let now = SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let left = Duration::from_secs(u64::try_from(exp).unwrap_or(0)).saturating_sub(now);
            self.expires = Some(tokio::time::Instant::now() + left);
            self.expiry_text = if user_first {
                "User Authentication Expired"
            } else {
                "Account Authentication Expired"
            };
        }
        *self.shared.jwt_user.lock().unwrap() = id.jwt_user.clone();
        let old = std::mem::replace(&mut self.acc, acc.clone());
        if !Arc::ptr_eq(&acc, &old) && !self.subs.is_empty() {
            // Subscriptions made before CONNECT live in the old account: move them.
            let subs: Vec<_> = self.subs.values().cloned().collect();
            interest::rebind(&self.srv, &old, &acc, &subs);
        }
        self.cache.clear();
        self.pub_allowed.clear();
        if let Some(p) = &id.permissions {
            let _ = self.shared.perms.set(p.clone());
        }
        self.perms = id.permissions;
        self.shared.meta.lock().unwrap().user = id.name;
        Ok(())
    }

    /// Publish permission, with reply permissions (`allow_responses`) for subjects this
    /// client received as a request's reply subject.
    fn can_publish(&mut self, subject: &Bytes) -> bool {
        let Some(p) = &self.perms else { return true };
        if let Some(&ok) = self.pub_allowed.get(subject) {
            if ok {
                return true;
            }
        } else {
            let ok = p.can_publish(subject);
            if self.pub_allowed.len() >= PUB_CACHE_MAX {
                self.pub_allowed.clear();
            }
            self.pub_allowed.insert(Bytes::copy_from_slice(subject), ok);
            if ok {
                return true;
            }
        }
        if p.responses().is_none() || p.publish_denied(subject) {
            return false;
        }
        let mut replies = self.shared.replies.lock().unwrap();
        let now = Instant::now();
        replies.retain(|_, (_, deadline)| *deadline > now);
        match replies.get_mut(&subject[..]) {
            Some((left, _)) => {
                *left -= 1;
                if *left == 0 {
                    replies.remove(&subject[..]);
                }
                true
            }
            None => false,
        }
    }

    fn process_ping(&mut self) {
        self.send_proto(encode::PONG);
        // The first PING after CONNECT gets the async INFO with connect_info, as nats-server
        // sends to clients that speak protocol 1.
        if self.connected && self.opts.protocol >= 1 && !self.first_pong_sent() {
            self.shared.async_info.store(true, Ordering::Release);
            let info =
                self.srv.connect_info_json(self.shared.cid, self.shared.addr, &self.acc, &self.ctx);
            let mut line = BytesMut::new();
            encode::info(&mut line, &info);
            self.send_proto(&line);
        }
    }

    fn first_pong_sent(&mut self) -> bool {
        std::mem::replace(&mut self.first_pong_sent, true)
    }

    fn ping_timer(&mut self, interval: Duration, ping_max: u32) {
        if self.last_in.elapsed() < interval && self.pings_out == 0 {
            return;
        }
        if self.pings_out + 1 > ping_max {
            tracing::debug!("{} - Stale Client Connection - Closing", self.prefix());
            self.send_err("Stale Connection");
            self.flush_dirty();
            self.shared.close(CloseReason::StaleConnection, true);
            return;
        }
        self.pings_out += 1;
        self.send_proto(encode::PING);
    }

    fn send_proto(&mut self, bytes: &[u8]) {
        deliver::send_proto(&mut self.delivery, &self.shared, bytes);
    }

    fn send_err(&mut self, text: &str) {
        let mut b = BytesMut::with_capacity(text.len() + 10);
        encode::err(&mut b, text);
        self.send_proto(&b);
    }

    fn flush_dirty(&mut self) {
        self.delivery.flush();
    }

    /// Publishes this batch's counters to the shared figures: atomics once per read batch,
    /// not once per message.
    fn flush_counters(&mut self) {
        if self.in_msgs > 0 {
            self.shared.in_msgs.fetch_add(self.in_msgs, Ordering::Relaxed);
            self.shared.in_bytes.fetch_add(self.in_bytes, Ordering::Relaxed);
            self.srv.stats.in_msgs.fetch_add(self.in_msgs, Ordering::Relaxed);
            self.srv.stats.in_bytes.fetch_add(self.in_bytes, Ordering::Relaxed);
            self.in_msgs = 0;
            self.in_bytes = 0;
        }
        self.delivery.add_counts(&self.srv.stats);
        if std::mem::take(&mut self.active) {
            *self.shared.last_activity.lock().unwrap() = SystemTime::now();
        }
    }

    fn process_pub(
        &mut self,
        subject: Bytes,
        reply: Option<Bytes>,
        headers: Option<Bytes>,
        payload: Bytes,
    ) {
        self.in_msgs += 1;
        self.in_bytes += (payload.len() + headers.as_ref().map_or(0, |h| h.len())) as u64;
        self.active = true;
        if self.opts.pedantic && !subject::is_valid_literal_subject(&subject) {
            self.send_err("Invalid Publish Subject");
        }
        if !self.can_publish(&subject) {
            let subj = String::from_utf8_lossy(&subject).into_owned();
            tracing::error!("{} - Publish Violation - Subject {subj:?}", self.prefix());
            self.send_err(&format!("Permissions Violation for Publish to {subj:?}"));
            return;
        }
        if self.opts.verbose {
            self.send_proto(encode::OK);
        }
        let msg = Msg {
            subject: &subject,
            reply: reply.as_deref(),
            hdr: headers.as_deref(),
            payload: &payload,
        };
        let from = Origin::client(&self.shared, self.opts.echo);
        let delivered = self.delivery.publish(
            &self.srv,
            &from,
            &self.acc,
            msg,
            Lookup::Cached(&mut self.cache),
        );
        if !delivered
            && self.opts.no_responders
            && let Some(reply) = reply
        {
            self.delivery.no_responders(&self.shared, &self.acc, &subject, &reply);
        }
    }

    fn process_sub(&mut self, subject: Bytes, queue: Option<Bytes>, sid: Bytes) {
        self.active = true;
        if let Some(p) = &self.perms
            && !p.can_subscribe(&subject, queue.as_deref())
        {
            let subj = String::from_utf8_lossy(&subject).into_owned();
            let sid_s = String::from_utf8_lossy(&sid).into_owned();
            let (err, log) = match &queue {
                Some(q) => {
                    let q = String::from_utf8_lossy(q).into_owned();
                    (
                        format!(
                            "Permissions Violation for Subscription to {subj:?} using queue {q:?}"
                        ),
                        format!(
                            "Subscription Violation - Subject {subj:?}, Queue: {q:?}, SID {sid_s}"
                        ),
                    )
                }
                None => (
                    format!("Permissions Violation for Subscription to {subj:?}"),
                    format!("Subscription Violation - Subject {subj:?}, SID {sid_s}"),
                ),
            };
            tracing::error!("{} - {log}", self.prefix());
            self.send_err(&err);
            return;
        }
        if self.subs.contains_key(&sid) {
            // nats-server keeps the existing subscription for a reused sid.
            if self.opts.verbose {
                self.send_proto(encode::OK);
            }
            return;
        }
        if self.max_subs > 0 && self.subs.len() >= self.max_subs {
            self.prune_removed_subs();
            if self.subs.len() >= self.max_subs {
                tracing::error!("{} - maximum subscriptions exceeded", self.prefix());
                self.send_err("maximum subscriptions exceeded");
                return;
            }
        }
        let valid = subject::is_valid_subject(&subject)
            && queue.as_ref().is_none_or(|q| subject::is_valid_queue_name(q));
        if !valid {
            self.send_err("Invalid Subject");
            return;
        }
        // Copy out of the read buffer: a long-lived subscription must not pin it.
        let subject = Bytes::copy_from_slice(&subject);
        let queue = queue.map(|q| Bytes::copy_from_slice(&q));
        let sid = Bytes::copy_from_slice(&sid);
        let sub = Arc::new(Subscription::new(self.shared.clone(), subject, queue, sid.clone()));
        if interest::subscribe(&self.srv, &self.acc, &sub).is_err() {
            self.send_err("Invalid Subject");
            return;
        }
        self.subs.insert(sid, sub);
        self.shared.num_subs.store(self.subs.len() as u64, Ordering::Relaxed);
        if self.opts.verbose {
            self.send_proto(encode::OK);
        }
    }

    fn process_unsub(&mut self, sid: Bytes, max: Option<u64>) {
        self.active = true;
        if let Some(sub) = self.subs.get(&sid).cloned() {
            let delivered = sub.delivered.load(Ordering::Relaxed);
            match max {
                Some(m) if m > 0 && m > delivered => sub.max.store(m, Ordering::Relaxed),
                _ => {
                    interest::unsubscribe(&self.srv, &self.acc, &sub);
                    self.subs.remove(&sid);
                    self.shared.num_subs.store(self.subs.len() as u64, Ordering::Relaxed);
                }
            }
        }
        if self.opts.verbose {
            self.send_proto(encode::OK);
        }
    }

    /// Drops map entries of subscriptions that auto-unsubscribed.
    fn prune_removed_subs(&mut self) {
        self.subs.retain(|_, s| !s.removed.load(Ordering::Relaxed));
        self.shared.num_subs.store(self.subs.len() as u64, Ordering::Relaxed);
    }

    fn cleanup(&mut self) {
        let subs: Vec<_> = self.subs.drain().map(|(_, s)| s).collect();
        interest::unsubscribe_all(&self.srv, &self.acc, subs);
        if let Some(acc) = self.counted.take() {
            acc.remove_conn();
        }
        self.cache.clear();
        self.flush_counters();
        let reason = self.shared.close_reason().unwrap_or(CloseReason::ClientClosed);
        tracing::debug!("{} - Client connection closed: {}", self.prefix(), reason.as_str());
    }
}

/// The smaller of two optional limits.
fn pick_min(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The CONNECT credentials check, with what the transport adds: the websocket block's own
/// authorization (or its `no_auth_user`) for WebSocket clients, and the user a verified client
/// certificate names under `verify_and_map`.
fn authenticate(
    srv: &ServerInner,
    ctx: &ConnCtx,
    c: &mut ConnectOpts,
    nonce: &str,
) -> Result<crate::auth::Identity, AuthError> {
    let o = srv.opts();
    let auth = srv.auth();
    // A user named by the transport gets that user's account and permissions.
    let named = |name: Option<String>| match name.as_deref().and_then(|n| auth.user_identity(n)) {
        Some(id) => id,
        None => crate::auth::Identity { name, ..Default::default() },
    };
    if ctx.transport == Transport::Websocket
        && let Some(r) = crate::listener::websocket::authenticate(&o, c)
    {
        return r.map(named);
    }
    if let Some(id) = &ctx.cert {
        let users: Vec<&str> = o.authorization.users.iter().map(|u| u.user.as_str()).collect();
        return match id.map_user(&users) {
            Some(u) => Ok(named(Some(u.to_string()))),
            None => Err(AuthError::Violation),
        };
    }
    auth.identify(c, Some(nonce))
}

impl From<AuthError> for CloseReason {
    fn from(_: AuthError) -> Self {
        CloseReason::AuthenticationViolation
    }
}

/// Masks the values of `pass`, `auth_token`, `sig` and `jwt` in a CONNECT JSON for logs.
fn mask_secrets(json: &str) -> String {
    let Ok(serde_json::Value::Object(mut m)) = serde_json::from_str::<serde_json::Value>(json)
    else {
        return "[unparsable]".to_string();
    };
    for k in ["pass", "auth_token", "sig", "jwt"] {
        if let Some(v) = m.get_mut(k) {
            *v = serde_json::Value::String("[REDACTED]".into());
        }
    }
    serde_json::Value::Object(m).to_string()
}
