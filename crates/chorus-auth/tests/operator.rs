//! Operator mode end to end: JWTs minted here with fresh NKeys, checked by `Authenticator`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chorus_auth::{AuthConfigError, Authenticator, Credentials, OperatorError};
use chorus_conf::{Options, ResolverOptions};
use nkeys::KeyPair;
use serde_json::{Value, json};

const NONCE: &str = "Xy9_nonce-from-info";

/// Signs `claims` as `signer`, as github.com/nats-io/jwt v2 encodes.
fn encode(mut claims: Value, signer: &KeyPair) -> String {
    claims["iss"] = json!(signer.public_key());
    claims["jti"] = json!("test");
    if claims.get("iat").is_none() {
        claims["iat"] = json!(now() - 10);
    }
    let h = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let input = format!("{h}.{c}");
    let sig = URL_SAFE_NO_PAD.encode(signer.sign(input.as_bytes()).unwrap());
    format!("{input}.{sig}")
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn operator_jwt(op: &KeyPair, signing: &[&KeyPair]) -> String {
    let keys: Vec<String> = signing.iter().map(|k| k.public_key()).collect();
    encode(
        json!({"sub": op.public_key(), "name": "OP",
               "nats": {"type": "operator", "version": 2, "signing_keys": keys}}),
        op,
    )
}

fn account_jwt(acc: &KeyPair, issuer: &KeyPair, nats: Value) -> String {
    let mut n = json!({"type": "account", "version": 2, "limits": {"conn": -1}});
    n.as_object_mut().unwrap().extend(nats.as_object().unwrap().clone());
    encode(json!({"sub": acc.public_key(), "name": "CHOIROS", "nats": n}), issuer)
}

fn user_jwt(user: &KeyPair, name: &str, issuer: &KeyPair, extra: Value, nats: Value) -> String {
    let mut n = json!({"type": "user", "version": 2});
    n.as_object_mut().unwrap().extend(nats.as_object().unwrap().clone());
    let mut c = json!({"sub": user.public_key(), "name": name, "nats": n});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    encode(c, issuer)
}

fn sign_nonce(user: &KeyPair) -> String {
    URL_SAFE_NO_PAD.encode(user.sign(NONCE.as_bytes()).unwrap())
}

fn creds<'a>(jwt: &'a str, sig: &'a str) -> Credentials<'a> {
    Credentials { jwt: Some(jwt), sig: Some(sig), nonce: Some(NONCE), ..Credentials::default() }
}

struct Setup {
    op: KeyPair,
    op_signing: KeyPair,
    acc: KeyPair,
    acc_signing: KeyPair,
    scoped: KeyPair,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            op: KeyPair::new_operator(),
            op_signing: KeyPair::new_operator(),
            acc: KeyPair::new_account(),
            acc_signing: KeyPair::new_account(),
            scoped: KeyPair::new_account(),
        }
    }

    /// The account, issued by the operator's signing key, with a plain and a scoped signing
    /// key, and `revocations`.
    fn account(&self, revocations: Value) -> String {
        account_jwt(
            &self.acc,
            &self.op_signing,
            json!({
                "signing_keys": [
                    self.acc_signing.public_key(),
                    {"kind": "user_scope", "key": self.scoped.public_key(), "role": "choiros",
                     "template": {"pub": {"allow": ["choiros.user.{{name()}}.>"]},
                                  "sub": {"allow": ["choiros.user.{{name()}}.>",
                                                    "_INBOX.{{subject()}}.>"]}}}
                ],
                "revocations": revocations,
            }),
        )
    }

    fn options(&self, account: String) -> Options {
        Options {
            operator: vec![operator_jwt(&self.op, &[&self.op_signing])],
            resolver: Some(ResolverOptions::Memory),
            resolver_preload: vec![(self.acc.public_key(), account)],
            ..Options::default()
        }
    }

    fn auth(&self) -> Authenticator {
        Authenticator::from_options(&self.options(self.account(json!({})))).unwrap()
    }
}

#[test]
fn user_issued_by_the_account_connects_into_it() {
    let s = Setup::new();
    let a = s.auth();
    assert!(a.required());
    assert!(a.needs_nonce());
    let user = KeyPair::new_user();
    let jwt = user_jwt(
        &user,
        "alice",
        &s.acc,
        json!({}),
        json!({"pub": {"allow": ["orders.>"], "deny": ["orders.secret"]},
               "sub": {"allow": ["_INBOX.>"]}}),
    );
    let sig = sign_nonce(&user);
    let id = a.authenticate(&creds(&jwt, &sig)).unwrap();
    assert_eq!(id.account.as_deref(), Some(s.acc.public_key().as_str()));
    assert_eq!(id.name.as_deref(), Some(user.public_key().as_str()));
    let p = id.permissions.expect("permissions from the claims");
    assert!(p.can_publish(b"orders.new"));
    assert!(!p.can_publish(b"orders.secret"));
    assert!(!p.can_publish(b"billing.x"));
    assert!(p.can_subscribe(b"_INBOX.abc", None));
    assert!(!p.can_subscribe(b"orders.new", None));
    assert_eq!(s.auth().operator().unwrap().account_keys().len(), 1);
}

#[test]
fn nonce_signature_is_required_and_checked() {
    let s = Setup::new();
    let a = s.auth();
    let user = KeyPair::new_user();
    let jwt = user_jwt(&user, "u", &s.acc, json!({}), json!({}));
    let other = KeyPair::new_user();
    let forged = sign_nonce(&other);
    assert!(a.authenticate(&creds(&jwt, &forged)).is_err());
    let no_sig = Credentials { sig: None, ..creds(&jwt, "") };
    assert!(a.authenticate(&no_sig).is_err());
    let sig = sign_nonce(&user);
    let wrong_nonce = Credentials { nonce: Some("other"), ..creds(&jwt, &sig) };
    assert!(a.authenticate(&wrong_nonce).is_err());
    assert!(a.authenticate(&creds(&jwt, &sig)).is_ok());
    // Without any JWT nothing gets in, not even with a signed nonce.
    let bare = Credentials { jwt: None, ..creds(&jwt, &sig) };
    assert!(a.authenticate(&bare).is_err());
    // Unrestricted users get no permission set.
    assert!(a.authenticate(&creds(&jwt, &sig)).unwrap().permissions.is_none());
}

#[test]
fn bearer_token_skips_the_nonce_unless_the_account_forbids_it() {
    let s = Setup::new();
    let user = KeyPair::new_user();
    let jwt = user_jwt(&user, "b", &s.acc, json!({}), json!({"bearer_token": true}));
    let c = Credentials { jwt: Some(&jwt), nonce: Some(NONCE), ..Credentials::default() };
    assert!(s.auth().authenticate(&c).is_ok());
    let strict =
        account_jwt(&s.acc, &s.op, json!({"limits": {"conn": -1, "disallow_bearer": true}}));
    let a = Authenticator::from_options(&s.options(strict)).unwrap();
    assert!(a.authenticate(&c).is_err());
}

#[test]
fn expired_and_not_yet_valid_users_are_refused() {
    let s = Setup::new();
    let a = s.auth();
    let user = KeyPair::new_user();
    let sig = sign_nonce(&user);
    let expired = user_jwt(&user, "u", &s.acc, json!({"exp": now() - 5}), json!({}));
    assert!(a.authenticate(&creds(&expired, &sig)).is_err());
    let early = user_jwt(&user, "u", &s.acc, json!({"nbf": now() + 3600}), json!({}));
    assert!(a.authenticate(&creds(&early, &sig)).is_err());
    let valid = user_jwt(&user, "u", &s.acc, json!({"exp": now() + 3600}), json!({}));
    assert!(a.authenticate(&creds(&valid, &sig)).is_ok());
}

#[test]
fn expired_account_refuses_its_users() {
    let s = Setup::new();
    let acc = encode(
        json!({"sub": s.acc.public_key(), "exp": now() - 1,
               "nats": {"type": "account", "version": 2}}),
        &s.op,
    );
    let a = Authenticator::from_options(&s.options(acc)).unwrap();
    let user = KeyPair::new_user();
    let jwt = user_jwt(&user, "u", &s.acc, json!({}), json!({}));
    assert!(a.authenticate(&creds(&jwt, &sign_nonce(&user))).is_err());
}

#[test]
fn revocations_cut_off_users_issued_before_them() {
    let s = Setup::new();
    let revoked_user = KeyPair::new_user();
    let fresh_user = KeyPair::new_user();
    let t = now();
    let acc = s.account(json!({revoked_user.public_key(): t}));
    let a = Authenticator::from_options(&s.options(acc)).unwrap();
    let old = user_jwt(&revoked_user, "r", &s.acc, json!({"iat": t - 100}), json!({}));
    assert!(a.authenticate(&creds(&old, &sign_nonce(&revoked_user))).is_err());
    // A JWT reissued after the revocation time is good again.
    let reissued = user_jwt(&revoked_user, "r", &s.acc, json!({"iat": t + 1}), json!({}));
    assert!(a.authenticate(&creds(&reissued, &sign_nonce(&revoked_user))).is_ok());
    let other = user_jwt(&fresh_user, "f", &s.acc, json!({"iat": t - 100}), json!({}));
    assert!(a.authenticate(&creds(&other, &sign_nonce(&fresh_user))).is_ok());

    // `*` revokes everyone issued up to then.
    let all = s.account(json!({"*": t}));
    let a = Authenticator::from_options(&s.options(all)).unwrap();
    assert!(a.authenticate(&creds(&other, &sign_nonce(&fresh_user))).is_err());
}

#[test]
fn tampered_and_wrongly_signed_jwts_are_refused() {
    let s = Setup::new();
    let a = s.auth();
    let user = KeyPair::new_user();
    let sig = sign_nonce(&user);
    let jwt = user_jwt(&user, "u", &s.acc, json!({}), json!({"pub": {"allow": ["a"]}}));
    // Swap the claims for wider ones, keeping the signature.
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["nats"]["pub"]["allow"] = json!([">"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    assert!(a.authenticate(&creds(&tampered, &sig)).is_err());
    // Issued by an unknown account key that claims to be ours via `issuer_account`.
    let rogue = KeyPair::new_account();
    let j = user_jwt(&user, "u", &rogue, json!({}), json!({"issuer_account": s.acc.public_key()}));
    assert!(a.authenticate(&creds(&j, &sig)).is_err());
    // Issued by an account nobody preloaded.
    let j = user_jwt(&user, "u", &rogue, json!({}), json!({}));
    assert!(a.authenticate(&creds(&j, &sig)).is_err());
    // An account JWT presented as a user JWT.
    assert!(a.authenticate(&creds(&s.account(json!({})), &sig)).is_err());
    assert!(a.authenticate(&creds("not.a.jwt", &sig)).is_err());
}

#[test]
fn account_signing_key_needs_issuer_account() {
    let s = Setup::new();
    let a = s.auth();
    let user = KeyPair::new_user();
    let sig = sign_nonce(&user);
    let good = user_jwt(
        &user,
        "u",
        &s.acc_signing,
        json!({}),
        json!({"issuer_account": s.acc.public_key()}),
    );
    let id = a.authenticate(&creds(&good, &sig)).unwrap();
    assert_eq!(id.account.as_deref(), Some(s.acc.public_key().as_str()));
    // The signing key is not an account of its own.
    let no_issuer_account = user_jwt(&user, "u", &s.acc_signing, json!({}), json!({}));
    assert!(a.authenticate(&creds(&no_issuer_account, &sig)).is_err());
}

#[test]
fn scoped_signing_key_template_replaces_user_permissions() {
    let s = Setup::new();
    let a = s.auth();
    let user = KeyPair::new_user();
    let sig = sign_nonce(&user);
    let jwt =
        user_jwt(&user, "ada", &s.scoped, json!({}), json!({"issuer_account": s.acc.public_key()}));
    let id = a.authenticate(&creds(&jwt, &sig)).unwrap();
    let p = id.permissions.expect("template permissions");
    assert!(p.can_publish(b"choiros.user.ada.notes"));
    assert!(!p.can_publish(b"choiros.user.bob.notes"));
    assert!(!p.can_publish(b"choiros.user.ada"));
    assert!(p.can_subscribe(b"choiros.user.ada.x", None));
    let inbox = format!("_INBOX.{}.1", user.public_key());
    assert!(p.can_subscribe(inbox.as_bytes(), None));
    assert!(!p.can_subscribe(b"_INBOX.other.1", None));

    // A scoped user may not bring permissions of its own.
    let greedy = user_jwt(
        &user,
        "ada",
        &s.scoped,
        json!({}),
        json!({"issuer_account": s.acc.public_key(), "pub": {"allow": [">"]}}),
    );
    assert!(a.authenticate(&creds(&greedy, &sig)).is_err());

    // A name that makes an invalid subject drops the allow entry: nothing left means deny all.
    let spaced =
        user_jwt(&user, "a b", &s.scoped, json!({}), json!({"issuer_account": s.acc.public_key()}));
    let p = a.authenticate(&creds(&spaced, &sig)).unwrap().permissions.unwrap();
    assert!(!p.can_publish(b"choiros.user.a.x"));
    assert!(!p.can_publish(b"anything"));
}

#[test]
fn account_default_permissions_apply_to_users_without_their_own() {
    let s = Setup::new();
    let acc = account_jwt(
        &s.acc,
        &s.op,
        json!({"default_permissions": {"pub": {"deny": ["admin.>"]}, "sub": {}}}),
    );
    let a = Authenticator::from_options(&s.options(acc)).unwrap();
    let user = KeyPair::new_user();
    let jwt = user_jwt(&user, "u", &s.acc, json!({}), json!({}));
    let p = a.authenticate(&creds(&jwt, &sign_nonce(&user))).unwrap().permissions.unwrap();
    assert!(p.can_publish(b"orders.x"));
    assert!(!p.can_publish(b"admin.reboot"));
}

#[test]
fn configuration_errors() {
    let s = Setup::new();
    // An account issued by a key the operator does not know.
    let rogue_op = KeyPair::new_operator();
    let acc = account_jwt(&s.acc, &rogue_op, json!({}));
    let err = Authenticator::from_options(&s.options(acc)).unwrap_err();
    assert!(matches!(err, AuthConfigError::Operator(OperatorError::Untrusted(_))), "{err}");
    // Preloaded under another account's key.
    let mut o = s.options(s.account(json!({})));
    o.resolver_preload[0].0 = KeyPair::new_account().public_key();
    assert!(matches!(
        Authenticator::from_options(&o),
        Err(AuthConfigError::Operator(OperatorError::Subject { .. }))
    ));
    // No resolver at all.
    let mut o = s.options(s.account(json!({})));
    o.resolver = None;
    assert!(matches!(
        Authenticator::from_options(&o),
        Err(AuthConfigError::Operator(OperatorError::NoResolver))
    ));
    // An operator JWT signed by someone else.
    let mut o = s.options(s.account(json!({})));
    o.operator = vec![encode(
        json!({"sub": s.op.public_key(), "nats": {"type": "operator", "version": 2}}),
        &rogue_op,
    )];
    assert!(matches!(
        Authenticator::from_options(&o),
        Err(AuthConfigError::Operator(OperatorError::NotSelfSigned(_)))
    ));
}

#[test]
fn operator_jwt_from_a_decorated_file() {
    let s = Setup::new();
    let dir = std::env::temp_dir().join(format!("chorus-auth-op-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("op.jwt");
    let text = format!(
        "-----BEGIN NATS OPERATOR JWT-----\n{}\n------END NATS OPERATOR JWT------\n",
        operator_jwt(&s.op, &[&s.op_signing])
    );
    std::fs::write(&path, text).unwrap();
    let mut o = s.options(s.account(json!({})));
    o.operator = vec![path.to_string_lossy().into_owned()];
    let a = Authenticator::from_options(&o).unwrap();
    let user = KeyPair::new_user();
    let jwt = user_jwt(&user, "u", &s.acc, json!({}), json!({}));
    assert!(a.authenticate(&creds(&jwt, &sign_nonce(&user))).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("chorus-auth-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn full_resolver(dir: &std::path::Path, allow_delete: bool) -> ResolverOptions {
    ResolverOptions::Dir(chorus_conf::DirResolverOptions {
        kind: chorus_conf::DirResolverKind::Full,
        dir: dir.to_path_buf(),
        allow_delete,
        hard_delete: false,
        limit: 0,
        ttl: None,
        interval: None,
        timeout: None,
    })
}

#[test]
fn full_resolver_loads_the_directory_and_takes_newer_updates_only() {
    use chorus_auth::{UpdateError, Updated};
    let s = Setup::new();
    let dir = temp_dir("full");
    let t = now();
    let first = account_jwt(&s.acc, &s.op_signing, json!({}));
    std::fs::write(dir.join(format!("{}.jwt", s.acc.public_key())), &first).unwrap();
    std::fs::write(dir.join("README.txt"), "not a jwt").unwrap();
    let o = Options {
        operator: vec![operator_jwt(&s.op, &[&s.op_signing])],
        resolver: Some(full_resolver(&dir, false)),
        ..Options::default()
    };
    let a = Authenticator::from_options(&o).unwrap();
    let trust = a.operator().unwrap();
    assert!(trust.tracks_updates());
    assert_eq!(trust.account_keys(), vec![s.acc.public_key()]);
    let user = KeyPair::new_user();
    let ujwt = user_jwt(&user, "u", &s.acc, json!({"iat": t - 50}), json!({}));
    assert!(a.authenticate(&creds(&ujwt, &sign_nonce(&user))).is_ok());

    // Newer claims revoke the user and are written to the directory.
    let newer = encode(
        json!({"sub": s.acc.public_key(), "iat": t,
               "nats": {"type": "account", "version": 2, "revocations": {user.public_key(): t}}}),
        &s.op_signing,
    );
    let key = s.acc.public_key();
    assert!(matches!(trust.update(&newer, Some(&key)), Ok(Updated::Changed(_))));
    assert!(a.authenticate(&creds(&ujwt, &sign_nonce(&user))).is_err());
    let on_disk = std::fs::read_to_string(dir.join(format!("{key}.jwt"))).unwrap();
    assert_eq!(on_disk, newer);
    // An older one is ignored, the same one too.
    let older = encode(
        json!({"sub": key, "iat": t - 1000, "nats": {"type": "account", "version": 2}}),
        &s.op_signing,
    );
    assert!(matches!(trust.update(&older, Some(&key)), Ok(Updated::Unchanged)));
    assert!(matches!(trust.update(&newer, None), Ok(Updated::Unchanged)));
    // Wrong subject, untrusted issuer, garbage.
    let other = KeyPair::new_account().public_key();
    assert_eq!(trust.update(&newer, Some(&other)).unwrap_err(), UpdateError::Subject);
    let rogue = account_jwt(&s.acc, &KeyPair::new_operator(), json!({}));
    assert_eq!(trust.update(&rogue, Some(&key)).unwrap_err(), UpdateError::Untrusted);
    assert!(matches!(trust.update("x.y.z", None), Err(UpdateError::Decode(_))));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn account_delete_requests() {
    let s = Setup::new();
    let dir = temp_dir("del");
    let key = s.acc.public_key();
    let o = Options {
        operator: vec![operator_jwt(&s.op, &[&s.op_signing])],
        resolver: Some(full_resolver(&dir, true)),
        resolver_preload: vec![(key.clone(), s.account(json!({})))],
        ..Options::default()
    };
    let a = Authenticator::from_options(&o).unwrap();
    let trust = a.operator().unwrap();
    let req = |signer: &KeyPair, accs: Value| {
        encode(json!({"sub": signer.public_key(), "nats": {"accounts": accs}}), signer)
    };
    let e = trust.delete(&req(&s.acc, json!([key])), None).unwrap_err();
    assert!(e.ends_with("not trusted"), "{e}");
    let e = trust.delete(&req(&s.op, json!("x")), None).unwrap_err();
    assert!(e.ends_with("malformed request"), "{e}");
    let e = trust.delete(&req(&s.op, json!([key])), Some(&key)).unwrap_err();
    assert!(e.ends_with("not allowed to delete system account"), "{e}");
    assert_eq!(trust.delete(&req(&s.op_signing, json!([key])), None).unwrap(), vec![key.clone()]);
    assert!(trust.account(&key).is_none());
    assert!(dir.join(format!("{key}.jwt.deleted")).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn activation_tokens() {
    use chorus_auth::operator::activation_valid;
    let s = Setup::new();
    let exporter: chorus_auth::jwt::AccountClaims =
        chorus_auth::jwt::decode(&s.account(json!({}))).unwrap();
    let importer = KeyPair::new_account().public_key();
    let act = |signer: &KeyPair, sub: &str, subject: &str, kind: &str, extra: Value| {
        let mut n = json!({"type": "activation", "version": 2, "subject": subject, "kind": kind});
        n.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        encode(json!({"sub": sub, "nats": n}), signer)
    };
    let t = now();
    let good = act(&s.acc, &importer, "orders.>", "stream", json!({}));
    assert!(activation_valid(&good, &exporter, &importer, "orders.eu", "stream", t));
    assert!(!activation_valid(&good, &exporter, &importer, "billing", "stream", t));
    assert!(!activation_valid(&good, &exporter, &importer, "orders.eu", "service", t));
    assert!(!activation_valid(&good, &exporter, "AOTHER", "orders.eu", "stream", t));
    // Through the exporter's signing key, naming the exporter.
    let signed = act(
        &s.acc_signing,
        &importer,
        "orders.>",
        "stream",
        json!({"issuer_account": s.acc.public_key()}),
    );
    assert!(activation_valid(&signed, &exporter, &importer, "orders.x", "stream", t));
    let rogue = act(&KeyPair::new_account(), &importer, "orders.>", "stream", json!({}));
    assert!(!activation_valid(&rogue, &exporter, &importer, "orders.x", "stream", t));
}
