//! JWTs minted by nats-io's own Go library (fixtures/go_jwt_v2_gen.go), so the decoder and
//! the trust chain are checked against the real claim format, not only our test encoder.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chorus_auth::{Authenticator, Credentials};
use chorus_conf::{Options, ResolverOptions};
use serde_json::Value;

const NONCE: &str = "go-interop-nonce";

fn vectors() -> Value {
    serde_json::from_str(include_str!("fixtures/go_jwt_v2.json")).unwrap()
}

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap()
}

fn auth(v: &Value) -> Authenticator {
    let o = Options {
        operator: vec![field(v, "operator").to_string()],
        resolver: Some(ResolverOptions::Memory),
        resolver_preload: vec![(
            field(v, "account_key").to_string(),
            field(v, "account").to_string(),
        )],
        ..Options::default()
    };
    Authenticator::from_options(&o).unwrap()
}

fn sign(seed: &str) -> String {
    let kp = nkeys::KeyPair::from_seed(seed).unwrap();
    URL_SAFE_NO_PAD.encode(kp.sign(NONCE.as_bytes()).unwrap())
}

fn creds<'a>(jwt: &'a str, sig: &'a str) -> Credentials<'a> {
    Credentials { jwt: Some(jwt), sig: Some(sig), nonce: Some(NONCE), ..Credentials::default() }
}

#[test]
fn scoped_user_from_go_gets_the_template() {
    let v = vectors();
    let a = auth(&v);
    let sig = sign(field(&v, "user_seed"));
    let id = a.authenticate(&creds(field(&v, "user"), &sig)).unwrap();
    assert_eq!(id.account.as_deref(), Some(field(&v, "account_key")));
    let p = id.permissions.unwrap();
    assert!(p.can_publish(b"choiros.user.ada.x"));
    assert!(!p.can_publish(b"choiros.user.eve.x"));
    let inbox = format!("_INBOX.{}.1", field(&v, "user_pub"));
    assert!(p.can_subscribe(inbox.as_bytes(), None));
}

#[test]
fn go_scoped_user_with_default_limits_is_refused_like_nats_server() {
    // NewUserClaims sets subs/data/payload to -1; without SetScoped(true) a scoped key's user
    // is not "empty" and nats-server refuses it.
    let v = vectors();
    let sig = sign(field(&v, "user_seed"));
    assert!(auth(&v).authenticate(&creds(field(&v, "scoped_with_limits"), &sig)).is_err());
}

#[test]
fn go_revocation_applies() {
    let v = vectors();
    let sig = sign(field(&v, "revoked_seed"));
    assert!(auth(&v).authenticate(&creds(field(&v, "revoked_user"), &sig)).is_err());
}

#[test]
fn go_claims_decode_with_response_permissions() {
    let v = vectors();
    let u =
        chorus_auth::jwt::decode::<chorus_auth::jwt::UserNats>(field(&v, "revoked_user")).unwrap();
    let p = u.nats.limits.permissions.to_options().unwrap();
    let resp = p.allow_responses.unwrap();
    assert_eq!(resp.max, 1);
    assert_eq!(resp.expires, std::time::Duration::from_secs(1));
    assert_eq!(p.publish.unwrap().allow, vec!["x.>".to_string()]);
    assert_eq!(u.nats.limits.subs, -1);
}
