//! The permission matrix through async-nats: several users in two accounts, each trying to
//! publish, subscribe and request on every subject of a list, every outcome asserted against a
//! table written per user. Once with `accounts {}` users and permissions from the config, once
//! in operator mode with JWTs (scoped signing keys with the ChoirOS template
//! `choiros.user.{{name()}}.>`, a plain signing key with claims permissions, the account key).
//!
//! Outcomes are read from events, never from silence: a publish is `delivered` when an
//! observer of the user's account receives it or `refused` when the server's
//! `Permissions Violation` reaches the user; a subscription `receives` what its account
//! publishes or is `refused`; a request gets its reply, `no responders`, `refused` (publish) or
//! `inbox refused` (the reply subscription). After each cell the other account's observer is
//! checked (after a round trip) to have seen nothing of it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Subscriber};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chorus_conf::Options;
use chorus_server::Server;
use futures::StreamExt;
use nkeys::KeyPair;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Upper bound for one outcome to show up; only a broken server ever waits this long.
const PATIENCE: Duration = Duration::from_secs(10);

async fn start_with(conf: &str) -> Server {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("auth.conf");
    std::fs::write(&path, conf).unwrap();
    let (mut o, _warnings) = Options::from_file(&path).expect("config parses");
    o.host = "127.0.0.1".into();
    o.port = 0;
    Server::start(o).await.expect("server starts")
}

/// How a user logs in.
#[derive(Clone)]
enum Cred {
    UserPass(&'static str, &'static str),
    /// A user JWT and the key that signs the nonce.
    Jwt(String, Arc<KeyPair>),
    /// A `.creds` file's text.
    Creds(String),
}

impl Cred {
    fn options(&self) -> ConnectOptions {
        match self {
            Cred::UserPass(u, p) => {
                ConnectOptions::with_user_and_password(u.to_string(), p.to_string())
            }
            Cred::Jwt(jwt, kp) => {
                let kp = kp.clone();
                ConnectOptions::with_jwt(jwt.clone(), move |nonce| {
                    let kp = kp.clone();
                    async move { kp.sign(&nonce).map_err(async_nats::AuthError::new) }
                })
            }
            Cred::Creds(text) => ConnectOptions::with_credentials(text).expect("creds parse"),
        }
    }
}

/// A connection and the server errors (-ERR) it received, in order.
struct Probe {
    client: Client,
    errors: mpsc::UnboundedReceiver<String>,
    /// Errors received while waiting for another one.
    stash: Vec<String>,
}

impl Probe {
    async fn connect(cred: &Cred, url: &str) -> Probe {
        let (tx, errors) = mpsc::unbounded_channel();
        let client = cred
            .options()
            .event_callback(move |ev| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = ev {
                        let _ = tx.send(e.to_string().to_lowercase());
                    }
                }
            })
            .connect(url)
            .await
            .expect("user connects");
        Probe { client, errors, stash: Vec::new() }
    }

    /// Waits for the permission violation `op` ("publish" / "subscription") on a subject
    /// starting with `subject`; other errors are kept for later waits.
    async fn violation(&mut self, op: &str, subject: &str) {
        self.first_violation(&[(op, subject)]).await;
    }

    /// Waits for the first of several violations; returns its index.
    async fn first_violation(&mut self, wanted: &[(&str, &str)]) -> usize {
        let wanted: Vec<String> = wanted
            .iter()
            .map(|(op, s)| format!("permissions violation for {op} to \"{}", s.to_lowercase()))
            .collect();
        let hit = |e: &String| wanted.iter().position(|w| e.contains(w));
        if let Some((i, w)) = self.stash.iter().enumerate().find_map(|(i, e)| Some((i, hit(e)?))) {
            self.stash.remove(i);
            return w;
        }
        loop {
            let e = self.errors.recv().await.expect("client alive");
            if let Some(w) = hit(&e) {
                return w;
            }
            self.stash.push(e);
        }
    }
}

/// An unrestricted client of one account, subscribed to the subjects the matrix publishes
/// on (not to `>`, which would answer every request with silence instead of no responders).
struct Observer {
    client: Client,
    all: futures::stream::SelectAll<Subscriber>,
}

impl Observer {
    async fn connect(cred: &Cred, url: &str, subjects: &[&str]) -> Observer {
        let client = cred.options().connect(url).await.expect("observer connects");
        let mut all = futures::stream::SelectAll::new();
        for s in subjects {
            all.push(client.subscribe(s.to_string()).await.unwrap());
        }
        round_trip(&client).await;
        Observer { client, all }
    }

    /// Everything this observer has received so far (after a round trip through the server).
    async fn drain(&mut self) -> Vec<String> {
        round_trip(&self.client).await;
        let mut out = Vec::new();
        while let Some(Some(m)) = futures::FutureExt::now_or_never(self.all.next()) {
            out.push(String::from_utf8_lossy(&m.payload).into_owned());
        }
        out
    }
}

/// A round trip through the server on an unrestricted client: the server handles one
/// connection's ops in order, so everything routed to it before is in when this returns.
async fn round_trip(c: &Client) {
    let inbox = c.new_inbox();
    let mut sub = c.subscribe(inbox.clone()).await.unwrap();
    c.publish(inbox, "rt".into()).await.unwrap();
    c.flush().await.unwrap();
    tokio::time::timeout(PATIENCE, sub.next()).await.expect("round trip").unwrap();
    sub.unsubscribe().await.unwrap();
}

/// One user of the matrix and what it is expected to be allowed.
struct Actor {
    name: &'static str,
    account: &'static str,
    cred: Cred,
    /// Subjects it may publish to; `None` = all.
    publish: Option<Vec<&'static str>>,
    /// Subscriptions it may make (`"subject queue"` for queue subscriptions); `None` = all.
    subscribe: Option<Vec<&'static str>>,
    /// Whether it may subscribe to its request inbox (`_INBOX.>`).
    inbox: bool,
}

/// A responder: an unrestricted (or reply-only) client answering `{label}:{subject}`.
struct Responder {
    account: &'static str,
    cred: Cred,
    label: &'static str,
    subjects: Vec<&'static str>,
}

struct Matrix {
    actors: Vec<Actor>,
    /// Observer credentials per account (two accounts).
    observers: Vec<(&'static str, Cred)>,
    responders: Vec<Responder>,
    /// Subjects published to (pub cells; sub cells subscribe to them literally).
    events: Vec<&'static str>,
    /// Wildcard subscriptions checked with a subject their account publishes on.
    wildcards: Vec<(&'static str, &'static str)>,
    /// Queue subscriptions `(subject, queue)`, checked with a publish on the subject.
    queues: Vec<(&'static str, &'static str)>,
    requests: Vec<&'static str>,
}

fn allowed(list: &Option<Vec<&'static str>>, subject: &str) -> bool {
    // A queue subscription is also allowed by an entry for its subject alone.
    let plain = subject.split(' ').next().unwrap_or(subject);
    if subject != plain && list.as_ref().is_some_and(|l| l.contains(&plain)) {
        return true;
    }
    list.as_ref().is_none_or(|l| l.contains(&subject))
}

impl Matrix {
    fn expected(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for a in &self.actors {
            for s in &self.events {
                let p = if allowed(&a.publish, s) { "delivered" } else { "refused" };
                m.insert(format!("{} pub {s}", a.name), p.to_string());
                let r = if allowed(&a.subscribe, s) { "receives" } else { "refused" };
                m.insert(format!("{} sub {s}", a.name), r.to_string());
            }
            for (w, _) in &self.wildcards {
                let r = if allowed(&a.subscribe, w) { "receives" } else { "refused" };
                m.insert(format!("{} sub {w}", a.name), r.to_string());
            }
            for (subject, queue) in &self.queues {
                let key = format!("{subject} {queue}");
                let r = if allowed(&a.subscribe, &key) { "receives" } else { "refused" };
                m.insert(format!("{} qsub {key}", a.name), r.to_string());
            }
            for s in &self.requests {
                let r = if !a.inbox {
                    "inbox refused".to_string()
                } else if !allowed(&a.publish, s) {
                    "refused".to_string()
                } else {
                    self.responders
                        .iter()
                        .find(|r| r.account == a.account && r.subjects.contains(s))
                        .map_or("no responders".to_string(), |r| format!("{}:{s}", r.label))
                };
                m.insert(format!("{} req {s}", a.name), r);
            }
        }
        m
    }

    async fn run(&self, url: &str) -> BTreeMap<String, String> {
        let mut observers: HashMap<&str, Observer> = HashMap::new();
        for (acc, cred) in &self.observers {
            observers.insert(acc, Observer::connect(cred, url, &self.events).await);
        }
        let mut keep = Vec::new();
        for r in &self.responders {
            let c = r.cred.options().connect(url).await.expect("responder connects");
            for s in &r.subjects {
                let mut sub = c.subscribe(s.to_string()).await.unwrap();
                let (c2, label) = (c.clone(), r.label);
                tokio::spawn(async move {
                    while let Some(m) = sub.next().await {
                        if let Some(reply) = m.reply {
                            let body = format!("{label}:{}", m.subject);
                            c2.publish(reply, body.into()).await.unwrap();
                        }
                    }
                });
            }
            c.flush().await.unwrap();
            keep.push(c);
        }
        // The responders' subscriptions are in once each has answered an observer.
        for r in &self.responders {
            let obs = &observers[r.account];
            for s in &r.subjects {
                let reply = obs.client.request(s.to_string(), "warmup".into()).await;
                assert!(reply.is_ok(), "responder {} on {s} answers: {reply:?}", r.label);
            }
        }

        let mut out = BTreeMap::new();
        for a in &self.actors {
            let other = self.observers.iter().map(|(acc, _)| *acc).find(|x| *x != a.account);
            let other = other.expect("two accounts");
            let mut u = Probe::connect(&a.cred, url).await;
            for s in &self.events {
                let o = self.pub_cell(&mut u, a, s, &mut observers, other).await;
                out.insert(format!("{} pub {s}", a.name), o);
            }
            for s in &self.events {
                let o = Self::sub_cell(&mut u, s, None, s, a.account, other, &mut observers).await;
                out.insert(format!("{} sub {s}", a.name), o);
            }
            for (w, s) in &self.wildcards {
                let o = Self::sub_cell(&mut u, w, None, s, a.account, other, &mut observers).await;
                out.insert(format!("{} sub {w}", a.name), o);
            }
            for (s, q) in &self.queues {
                let o =
                    Self::sub_cell(&mut u, s, Some(q), s, a.account, other, &mut observers).await;
                out.insert(format!("{} qsub {s} {q}", a.name), o);
            }
            for s in &self.requests {
                // A fresh connection per request: the client subscribes its reply inbox on its
                // first request, and that subscription is part of what is tested.
                let mut r = Probe::connect(&a.cred, url).await;
                let o = request_cell(&mut r, s).await;
                out.insert(format!("{} req {s}", a.name), o);
            }
        }
        out
    }

    async fn pub_cell(
        &self,
        u: &mut Probe,
        a: &Actor,
        s: &str,
        observers: &mut HashMap<&str, Observer>,
        other: &str,
    ) -> String {
        let marker = format!("{}->{s}", a.name);
        u.client.publish(s.to_string(), marker.clone().into()).await.unwrap();
        u.client.flush().await.unwrap();
        let home = observers.get_mut(a.account).unwrap();
        let outcome = tokio::time::timeout(PATIENCE, async {
            loop {
                tokio::select! {
                    m = home.all.next() => {
                        if m.unwrap().payload == marker.as_bytes() {
                            return "delivered";
                        }
                    }
                    _ = u.violation("publish", s) => return "refused",
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{} pub {s}: neither delivered nor refused", a.name));
        let away = observers.get_mut(other).unwrap();
        if away.drain().await.contains(&marker) {
            return "LEAKED to the other account".into();
        }
        outcome.to_string()
    }

    /// Subscribes `sub_subject`, then has the user's account publish on `pub_subject` until
    /// the subscription delivers or the server refuses it (the subscription may reach the
    /// server after a publish). A receiving subscription must then see nothing the other
    /// account publishes on the same subject.
    async fn sub_cell(
        u: &mut Probe,
        sub_subject: &str,
        queue: Option<&str>,
        pub_subject: &str,
        account: &str,
        other: &str,
        observers: &mut HashMap<&str, Observer>,
    ) -> String {
        let mut sub = match queue {
            Some(q) => u.client.queue_subscribe(sub_subject.to_string(), q.to_string()).await,
            None => u.client.subscribe(sub_subject.to_string()).await,
        }
        .unwrap();
        u.client.flush().await.unwrap();
        let home = observers[account].client.clone();
        let probe = format!("home:{pub_subject}");
        let outcome = tokio::time::timeout(PATIENCE, async {
            loop {
                home.publish(pub_subject.to_string(), probe.clone().into()).await.unwrap();
                home.flush().await.unwrap();
                tokio::select! {
                    m = sub.next() => {
                        assert_eq!(m.unwrap().payload, probe.as_bytes());
                        return "receives";
                    }
                    _ = u.violation("subscription", sub_subject) => return "refused",
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("sub {sub_subject}: neither receives nor refused"));
        if outcome == "receives" {
            let away = &observers[other].client;
            away.publish(pub_subject.to_string(), format!("away:{pub_subject}").into())
                .await
                .unwrap();
            round_trip(away).await;
            let end = format!("end:{pub_subject}");
            home.publish(pub_subject.to_string(), end.clone().into()).await.unwrap();
            home.flush().await.unwrap();
            // Whatever the other account's publish routed here is queued before `end`.
            loop {
                let m = tokio::time::timeout(PATIENCE, sub.next()).await.unwrap().unwrap();
                let body = String::from_utf8_lossy(&m.payload).into_owned();
                if body == end {
                    break;
                }
                if body.starts_with("away:") {
                    return "LEAKED from the other account".into();
                }
            }
        }
        sub.unsubscribe().await.unwrap();
        outcome.to_string()
    }
}

async fn request_cell(r: &mut Probe, s: &str) -> String {
    let client = r.client.clone();
    let subject = s.to_string();
    let req = async move { client.request(subject, "q".into()).await };
    let refusals = [("publish", s), ("subscription", "_INBOX.")];
    tokio::time::timeout(PATIENCE, async {
        tokio::select! {
            res = req => match res {
                Ok(m) => String::from_utf8_lossy(&m.payload).into_owned(),
                Err(e) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => {
                    "no responders".into()
                }
                Err(e) => format!("error: {e}"),
            },
            i = r.first_violation(&refusals) => {
                if i == 0 { "refused".into() } else { "inbox refused".into() }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("req {s}: no outcome"))
}

// ------------------------------------------------------------------------------------------
// Users and permissions from the config

const CONF: &str = r#"
accounts {
  A { users: [
    { user: alice, password: a, permissions: { publish: ["choiros.user.alice.>"], subscribe: ["choiros.user.alice.>", "_INBOX.>"] } }
    { user: bob, password: b, permissions: { publish: ["choiros.user.bob.>"], subscribe: ["choiros.user.bob.>", "_INBOX.>"] } }
    { user: svc, password: s, permissions: { subscribe: ["svc.>"], allow_responses: true } }
    { user: ro, password: r, permissions: { publish: { deny: [">"] }, subscribe: { allow: ["choiros.>", "public.>", "_INBOX.>"], deny: ["choiros.user.bob.>"] } } }
    { user: pubonly, password: p, permissions: { publish: { allow: ["public.>", "nobody.>"] }, subscribe: ["public.news"] } }
    { user: worker, password: w, permissions: { publish: ["jobs.>"], subscribe: { allow: ["jobs.* workers", "_INBOX.>"], deny: ["jobs.secret"] } } }
    { user: admin, password: x }
    { user: obs, password: o }
    { user: resp, password: o }
  ] }
  B { users: [ { user: carol, password: c }, { user: obsb, password: o }, { user: respb, password: o } ] }
}
"#;

const ALICE_EV: &str = "choiros.user.alice.ev";
const BOB_EV: &str = "choiros.user.bob.ev";
const ALICE_SVC: &str = "choiros.user.alice.svc";
const BOB_SVC: &str = "choiros.user.bob.svc";

#[tokio::test]
async fn config_users_permission_matrix() {
    let s = start_with(CONF).await;
    let up = Cred::UserPass;
    let actor = |name, account, cred, publish, subscribe, inbox| Actor {
        name,
        account,
        cred,
        publish,
        subscribe,
        inbox,
    };
    let m = Matrix {
        actors: vec![
            actor(
                "alice",
                "A",
                up("alice", "a"),
                Some(vec![ALICE_EV, ALICE_SVC]),
                Some(vec![ALICE_EV]),
                true,
            ),
            actor(
                "bob",
                "A",
                up("bob", "b"),
                Some(vec![BOB_EV, BOB_SVC]),
                Some(vec![BOB_EV]),
                true,
            ),
            actor("svc", "A", up("svc", "s"), Some(vec![]), Some(vec!["svc.echo"]), false),
            actor(
                "ro",
                "A",
                up("ro", "r"),
                Some(vec![]),
                Some(vec![ALICE_EV, "public.news", "choiros.>", "choiros.user.*.ev"]),
                true,
            ),
            actor(
                "pubonly",
                "A",
                up("pubonly", "p"),
                Some(vec!["public.news", "public.svc", "nobody.svc"]),
                Some(vec!["public.news"]),
                false,
            ),
            actor(
                "worker",
                "A",
                up("worker", "w"),
                Some(vec!["jobs.new"]),
                Some(vec!["jobs.new workers"]),
                true,
            ),
            actor("admin", "A", up("admin", "x"), None, None, true),
            actor("carol", "B", up("carol", "c"), None, None, true),
        ],
        observers: vec![("A", up("obs", "o")), ("B", up("obsb", "o"))],
        responders: vec![
            Responder {
                account: "A",
                cred: up("resp", "o"),
                label: "A",
                subjects: vec![ALICE_SVC, BOB_SVC, "public.svc"],
            },
            // Reply-only: svc answers through allow_responses alone.
            Responder {
                account: "A",
                cred: up("svc", "s"),
                label: "svc",
                subjects: vec!["svc.echo"],
            },
            Responder {
                account: "B",
                cred: up("respb", "o"),
                label: "B",
                subjects: vec![ALICE_SVC, BOB_SVC, "svc.echo", "public.svc"],
            },
        ],
        events: vec![ALICE_EV, BOB_EV, "svc.echo", "public.news", "jobs.new"],
        wildcards: vec![
            (">", "public.news"),
            ("choiros.>", ALICE_EV),
            ("choiros.user.*.ev", ALICE_EV),
        ],
        queues: vec![("jobs.new", "workers"), ("jobs.new", "thieves"), ("jobs.secret", "workers")],
        requests: vec![ALICE_SVC, BOB_SVC, "svc.echo", "public.svc", "nobody.svc"],
    };
    let got = m.run(&s.client_url()).await;
    assert_eq!(got, m.expected());
    s.shutdown().await;
}

/// A subscription wider than a denied subject is accepted, but the denied subject is never
/// delivered to it; the rest of the wildcard is.
#[tokio::test]
async fn wide_subscription_never_delivers_a_denied_subject() {
    let s = start_with(CONF).await;
    let url = s.client_url();
    let ro = Probe::connect(&Cred::UserPass("ro", "r"), &url).await;
    let bob = Probe::connect(&Cred::UserPass("bob", "b"), &url).await;
    let alice = Probe::connect(&Cred::UserPass("alice", "a"), &url).await;
    let mut wide = ro.client.subscribe("choiros.>").await.unwrap();
    ro.client.flush().await.unwrap();
    // Retry until the subscription is in (alice's event arrives), then bob's is published
    // before a final marker of alice's: the per-connection order puts bob's first if at all.
    loop {
        alice.client.publish(ALICE_EV, "probe".into()).await.unwrap();
        alice.client.flush().await.unwrap();
        tokio::select! {
            m = wide.next() => { assert_eq!(m.unwrap().payload, "probe"); break; }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    bob.client.publish(BOB_EV, "bob's secret".into()).await.unwrap();
    bob.client.flush().await.unwrap();
    // bob's publish is processed before a request of his own comes back.
    let mut bobs = bob.client.subscribe(BOB_EV).await.unwrap();
    bob.client.publish(BOB_EV, "sync".into()).await.unwrap();
    bob.client.flush().await.unwrap();
    while tokio::time::timeout(PATIENCE, bobs.next()).await.unwrap().unwrap().payload != "sync" {}
    alice.client.publish(ALICE_EV, "end".into()).await.unwrap();
    alice.client.flush().await.unwrap();
    let mut seen = Vec::new();
    loop {
        let m = tokio::time::timeout(PATIENCE, wide.next()).await.unwrap().unwrap();
        seen.push(String::from_utf8_lossy(&m.payload).into_owned());
        if m.payload == "end" {
            break;
        }
    }
    assert!(!seen.iter().any(|p| p.contains("bob")), "denied subject delivered: {seen:?}");
    s.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// Operator mode: JWTs minted here as github.com/nats-io/jwt v2 encodes them

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn encode(mut claims: Value, signer: &KeyPair) -> String {
    claims["iss"] = json!(signer.public_key());
    claims["jti"] = json!(format!("{:x}", rand_id()));
    claims["iat"] = json!(now() - 10);
    let h = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let input = format!("{h}.{c}");
    let sig = URL_SAFE_NO_PAD.encode(signer.sign(input.as_bytes()).unwrap());
    format!("{input}.{sig}")
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed) ^ (now() as u64).rotate_left(20)
}

/// The creds file text nsc and `jwt.FormatUserConfig` write.
fn creds_text(jwt: &str, kp: &KeyPair) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        kp.seed().unwrap()
    )
}

/// An operator with one signing key, account TENANT (a plain and a scoped signing key with
/// the ChoirOS template) and account OTHER.
struct Operator {
    tenant: KeyPair,
    tenant_sk: KeyPair,
    scoped: KeyPair,
    other: KeyPair,
    conf: String,
}

impl Operator {
    fn new() -> Operator {
        let op = KeyPair::new_operator();
        let op_sk = KeyPair::new_operator();
        let (tenant, tenant_sk, scoped, other) = (
            KeyPair::new_account(),
            KeyPair::new_account(),
            KeyPair::new_account(),
            KeyPair::new_account(),
        );
        let op_jwt = encode(
            json!({"sub": op.public_key(), "name": "OP",
                   "nats": {"type": "operator", "version": 2,
                            "signing_keys": [op_sk.public_key()]}}),
            &op,
        );
        let tenant_jwt = encode(
            json!({"sub": tenant.public_key(), "name": "TENANT",
                   "nats": {"type": "account", "version": 2, "limits": {"conn": -1},
                     "signing_keys": [
                       tenant_sk.public_key(),
                       {"kind": "user_scope", "key": scoped.public_key(), "role": "choiros",
                        "template": {
                          "pub": {"allow": ["choiros.user.{{name()}}.>"]},
                          "sub": {"allow": ["choiros.user.{{name()}}.>", "_INBOX.>"]},
                          "resp": {"max": 1, "ttl": 60_000_000_000_i64}}}]}}),
            &op_sk,
        );
        let other_jwt = encode(
            json!({"sub": other.public_key(), "name": "OTHER",
                   "nats": {"type": "account", "version": 2, "limits": {"conn": -1}}}),
            &op,
        );
        let conf = format!(
            "operator: {op_jwt}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {tenant_jwt}\n  {}: {other_jwt}\n}}\n",
            tenant.public_key(),
            other.public_key()
        );
        Operator { tenant, tenant_sk, scoped, other, conf }
    }

    /// A user JWT named `name`, signed by `signer` for `account` (issuer_account when the
    /// signer is not the account key), with `nats` merged into its claims.
    fn user(
        &self,
        name: &str,
        signer: &KeyPair,
        account: &KeyPair,
        nats: Value,
    ) -> (String, KeyPair) {
        let kp = KeyPair::new_user();
        let mut n = json!({"type": "user", "version": 2});
        if signer.public_key() != account.public_key() {
            n["issuer_account"] = json!(account.public_key());
        }
        n.as_object_mut().unwrap().extend(nats.as_object().unwrap().clone());
        let jwt = encode(json!({"sub": kp.public_key(), "name": name, "nats": n}), signer);
        (jwt, kp)
    }

    /// A user of the scoped key: its permissions come from the template alone.
    fn scoped_user(&self, name: &str) -> Cred {
        let (jwt, kp) = self.user(name, &self.scoped, &self.tenant, json!({}));
        Cred::Jwt(jwt, Arc::new(kp))
    }

    /// A user signed by an account key with no permissions, as a creds file.
    fn plain_user(&self, name: &str, account: &KeyPair) -> Cred {
        let (jwt, kp) = self.user(name, account, account, json!({}));
        Cred::Creds(creds_text(&jwt, &kp))
    }
}

#[tokio::test]
async fn jwt_scoped_templates_permission_matrix() {
    let op = Operator::new();
    let s = start_with(&op.conf).await;
    let (agent_jwt, agent_kp) = op.user(
        "agent",
        &op.tenant_sk,
        &op.tenant,
        json!({"pub": {"allow": ["agents.>"], "deny": ["agents.secret"]},
               "sub": {"allow": ["agents.>", "_INBOX.>"]}}),
    );
    const DAVE_EV: &str = "choiros.user.dave.ev";
    let scoped = |name: &'static str, ev: &'static str, svc: &'static str| Actor {
        name,
        account: "A",
        cred: op.scoped_user(name),
        publish: Some(vec![ev, svc]),
        subscribe: Some(vec![ev]),
        inbox: true,
    };
    let m = Matrix {
        actors: vec![
            scoped("alice", ALICE_EV, ALICE_SVC),
            scoped("bob", BOB_EV, BOB_SVC),
            scoped("dave", DAVE_EV, "choiros.user.dave.svc"),
            Actor {
                name: "agent",
                account: "A",
                cred: Cred::Jwt(agent_jwt, Arc::new(agent_kp)),
                publish: Some(vec!["agents.job", "agents.svc"]),
                subscribe: Some(vec!["agents.job", "agents.secret", "agents.>"]),
                inbox: true,
            },
            Actor {
                name: "admin",
                account: "A",
                cred: op.plain_user("admin", &op.tenant),
                publish: None,
                subscribe: None,
                inbox: true,
            },
            Actor {
                name: "carol",
                account: "B",
                cred: op.plain_user("carol", &op.other),
                publish: None,
                subscribe: None,
                inbox: true,
            },
        ],
        observers: vec![
            ("A", op.plain_user("obs", &op.tenant)),
            ("B", op.plain_user("obsb", &op.other)),
        ],
        responders: vec![
            // alice's own service, answering through the template's response permission.
            Responder {
                account: "A",
                cred: op.scoped_user("alice"),
                label: "alice",
                subjects: vec![ALICE_SVC],
            },
            Responder {
                account: "A",
                cred: op.plain_user("resp", &op.tenant),
                label: "A",
                subjects: vec![BOB_SVC, "agents.svc", "public.svc"],
            },
            Responder {
                account: "B",
                cred: op.plain_user("respb", &op.other),
                label: "B",
                subjects: vec![ALICE_SVC, BOB_SVC, "agents.svc", "public.svc"],
            },
        ],
        events: vec![ALICE_EV, BOB_EV, DAVE_EV, "agents.job", "agents.secret", "public.news"],
        wildcards: vec![
            (">", "public.news"),
            ("choiros.user.*.ev", ALICE_EV),
            ("agents.>", "agents.job"),
        ],
        queues: vec![("agents.job", "pool")],
        requests: vec![ALICE_SVC, BOB_SVC, "agents.svc", "public.svc", "nobody.svc"],
    };
    let got = m.run(&s.client_url()).await;
    assert_eq!(got, m.expected());
    s.shutdown().await;
}

/// Many users signed by the scoped key: each reads and writes only its own
/// `choiros.user.<name>.>`, while an account-level observer sees every user's events once.
#[tokio::test]
async fn scoped_users_only_ever_see_their_own_subjects() {
    let op = Operator::new();
    let s = start_with(&op.conf).await;
    let url = s.client_url();
    let names: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
    let mut users = Vec::new();
    for n in &names {
        let p = Probe::connect(&op.scoped_user(n), &url).await;
        let sub = p.client.subscribe(format!("choiros.user.{n}.>")).await.unwrap();
        users.push((n.clone(), p, sub));
    }
    let mut obs = Observer::connect(&op.plain_user("obs", &op.tenant), &url, &["choiros.>"]).await;
    // Every user writes into every user's space (its own included).
    for (me, p, _) in users.iter_mut() {
        for target in &names {
            let subject = format!("choiros.user.{target}.event");
            p.client.publish(subject.clone(), format!("{me}->{target}").into()).await.unwrap();
            p.client.flush().await.unwrap();
            if target != me {
                p.violation("publish", &subject).await;
            }
        }
        // Wider subscriptions are refused outright.
        for wide in [">", "choiros.>", "choiros.user.*.event", "choiros.user.u9.>"] {
            let _s = p.client.subscribe(wide.to_string()).await.unwrap();
            p.violation("subscription", wide).await;
        }
    }
    let mut seen = obs.drain().await;
    seen.sort();
    let mut own: Vec<String> = names.iter().map(|n| format!("{n}->{n}")).collect();
    own.sort();
    assert_eq!(seen, own, "only each user's own writes got through");
    // Each user's subscription has exactly its own event (an end marker from the account
    // observer closes the stream of each).
    for (me, _p, sub) in users.iter_mut() {
        obs.client.publish(format!("choiros.user.{me}.end"), "end".into()).await.unwrap();
        obs.client.flush().await.unwrap();
        let mut got = Vec::new();
        loop {
            let m = tokio::time::timeout(PATIENCE, sub.next()).await.unwrap().unwrap();
            if m.payload == "end" {
                break;
            }
            got.push(String::from_utf8_lossy(&m.payload).into_owned());
        }
        assert_eq!(got, vec![format!("{me}->{me}")]);
    }
    s.shutdown().await;
}

/// A user JWT that expires while connected: the server says `User Authentication Expired`
/// and closes the connection, as nats-server does; a login after that is refused.
#[tokio::test]
async fn connection_is_closed_when_its_user_jwt_expires() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let op = Operator::new();
    let s = start_with(&op.conf).await;
    let kp = KeyPair::new_user();
    let exp = now() + 2;
    let jwt = encode(
        json!({"sub": kp.public_key(), "name": "brief", "exp": exp,
               "nats": {"type": "user", "version": 2}}),
        &op.tenant,
    );
    let login = || async {
        let stream = tokio::net::TcpStream::connect(s.client_addr()).await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        let mut info = String::new();
        r.read_line(&mut info).await.unwrap();
        let v: Value = serde_json::from_str(&info[5..]).unwrap();
        let sig = URL_SAFE_NO_PAD.encode(kp.sign(v["nonce"].as_str().unwrap().as_bytes()).unwrap());
        let connect = json!({"verbose": false, "jwt": jwt, "sig": sig});
        w.write_all(format!("CONNECT {connect}\r\nPING\r\n").as_bytes()).await.unwrap();
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(PATIENCE, r.read_line(&mut line)).await.unwrap().unwrap();
            if n == 0 {
                break;
            }
            lines.push(line.trim_end().to_string());
        }
        lines
    };
    assert_eq!(login().await, vec!["PONG", "-ERR 'User Authentication Expired'"]);
    // `exp` < now is refused at login (whole seconds, as nats-server compares).
    while now() <= exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(login().await, vec!["-ERR 'Authorization Violation'"]);
    s.shutdown().await;
}

/// KV buckets per user through JetStream in one account: each user's permissions cover only
/// the API and `$KV` subjects of its own bucket. alice reads and writes hers; every attempt
/// on bob's (bucket info, direct and stream gets, a put, a watch) is refused by the server,
/// and bob's value is unchanged.
#[tokio::test]
async fn kv_buckets_stay_private_under_subject_permissions() {
    use async_nats::jetstream;
    let store = tempfile::tempdir().unwrap();
    let own = |u: &str| {
        format!(
            r#"publish: ["$JS.API.STREAM.INFO.KV_{u}", "$JS.API.STREAM.MSG.GET.KV_{u}", "$JS.API.DIRECT.GET.KV_{u}.>", "$KV.{u}.>"]
               subscribe: ["_INBOX.>", "$KV.{u}.>"]"#
        )
    };
    let conf = format!(
        "jetstream {{ store_dir: {:?} }}\nauthorization {{ users: [\n  {{ user: admin, password: x }}\n  \
         {{ user: alice, password: a, permissions: {{ {} }} }}\n  \
         {{ user: bob, password: b, permissions: {{ {} }} }}\n] }}\n",
        store.path(),
        own("alice"),
        own("bob")
    );
    let s = start_with(&conf).await;
    let url = s.client_url();
    let admin = Cred::UserPass("admin", "x").options().connect(&url).await.unwrap();
    let ajs = jetstream::new(admin);
    for bucket in ["alice", "bob"] {
        let kv = ajs
            .create_key_value(jetstream::kv::Config {
                bucket: bucket.into(),
                history: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        kv.put("secret", format!("{bucket}'s secret").into()).await.unwrap();
    }

    let mut alice = Probe::connect(&Cred::UserPass("alice", "a"), &url).await;
    let js = jetstream::new(alice.client.clone());
    let mine = js.get_key_value("alice").await.expect("alice opens her bucket");
    assert_eq!(mine.get("secret").await.unwrap().unwrap(), "alice's secret");
    mine.put("note", "mine".into()).await.expect("alice writes her bucket");
    assert_eq!(mine.get("note").await.unwrap().unwrap(), "mine");

    // Each attempt on bob's bucket ends in the server's permission violation.
    let js2 = js.clone();
    let open = tokio::spawn(async move { js2.get_key_value("bob").await.map(|_| ()) });
    alice.violation("publish", "$JS.API.STREAM.INFO.KV_bob").await;
    open.abort();
    for subject in ["$JS.API.DIRECT.GET.KV_bob.$KV.bob.secret", "$JS.API.STREAM.MSG.GET.KV_bob"] {
        let c = alice.client.clone();
        let req = tokio::spawn(async move { c.request(subject, "{}".into()).await.map(|_| ()) });
        alice.violation("publish", subject).await;
        req.abort();
    }
    alice.client.publish("$KV.bob.secret", "overwritten by alice".into()).await.unwrap();
    alice.client.flush().await.unwrap();
    alice.violation("publish", "$KV.bob.secret").await;
    let _watch = alice.client.subscribe("$KV.bob.>").await.unwrap();
    alice.violation("subscription", "$KV.bob.>").await;

    let theirs = ajs.get_key_value("bob").await.unwrap();
    assert_eq!(theirs.get("secret").await.unwrap().unwrap(), "bob's secret");
    assert!(theirs.get("note").await.unwrap().is_none(), "alice's write stayed in her bucket");
    s.shutdown().await;
}
