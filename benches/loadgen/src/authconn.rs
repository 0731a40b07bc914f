//! Authenticated connect storms: how many full NKey or JWT handshakes per second a server
//! completes. Each connection reads INFO, signs its nonce with the user's NKey, sends CONNECT
//! (`nkey` + `sig`, or `jwt` + `sig`) and PING, and counts once the PONG is back, i.e. the
//! server verified the signature (and, in operator mode, the operator -> account -> user
//! chain) and registered the client. Then it is closed (on loopback, Linux reuses the
//! TIME_WAIT ports of outgoing connections: `tcp_tw_reuse` 2, the default).
//!
//! `authconf` writes what both servers need for that: a config fragment and a credentials
//! file, with fresh keys. In JWT mode the JWTs are minted here, encoded as
//! github.com/nats-io/jwt v2 does (the same claims nats-server decodes).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::{StreamExt, TryStreamExt, stream};
use nkeys::KeyPair;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::host_port;

const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// NKey users in `authorization {}`, or operator mode with user JWTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Nkey,
    Jwt,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "nkey" => Ok(Mode::Nkey),
            "jwt" => Ok(Mode::Jwt),
            _ => bail!("--mode must be nkey or jwt, not {s:?}"),
        }
    }
}

/// Writes `<dir>/auth-<mode>.conf` (a server config fragment) and `<dir>/auth-<mode>.creds`.
pub fn write_config(mode: Mode, dir: &Path) -> Result<Value> {
    let user = KeyPair::new_user();
    let seed = user.seed().context("user seed")?;
    let (conf, creds) = match mode {
        Mode::Nkey => {
            let conf =
                format!("authorization {{\n  users: [ {{ nkey: {} }} ]\n}}\n", user.public_key());
            (conf, format!("{seed}\n"))
        }
        Mode::Jwt => {
            let op = KeyPair::new_operator();
            let acc = KeyPair::new_account();
            let op_jwt = encode(
                json!({"sub": op.public_key(), "name": "BENCH-OP",
                       "nats": {"type": "operator", "version": 2}}),
                &op,
            )?;
            let acc_jwt = encode(
                json!({"sub": acc.public_key(), "name": "BENCH",
                       "nats": {"type": "account", "version": 2,
                                "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1,
                                           "exports": -1, "wildcards": true, "conn": -1,
                                           "leaf": -1}}}),
                &op,
            )?;
            let user_jwt = encode(
                json!({"sub": user.public_key(), "name": "bench",
                       "nats": {"type": "user", "version": 2, "pub": {}, "sub": {},
                                "subs": -1, "data": -1, "payload": -1}}),
                &acc,
            )?;
            let conf = format!(
                "operator: {op_jwt}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {acc_jwt}\n}}\n",
                acc.public_key()
            );
            let creds = format!(
                "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
                 -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
            );
            (conf, creds)
        }
    };
    let tag = if mode == Mode::Nkey { "nkey" } else { "jwt" };
    let conf_path = dir.join(format!("auth-{tag}.conf"));
    let creds_path = dir.join(format!("auth-{tag}.creds"));
    std::fs::write(&conf_path, conf).with_context(|| format!("writing {conf_path:?}"))?;
    std::fs::write(&creds_path, creds).with_context(|| format!("writing {creds_path:?}"))?;
    Ok(json!({"mode": "authconf", "conf": conf_path, "creds": creds_path}))
}

/// Signs `claims` as `signer` the way github.com/nats-io/jwt v2 encodes a JWT.
fn encode(mut claims: Value, signer: &KeyPair) -> Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    claims["iss"] = json!(signer.public_key());
    claims["iat"] = json!(now);
    claims["jti"] = json!(format!("BENCH{now}{}", claims["sub"].as_str().unwrap_or_default()));
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?);
    let input = format!("{header}.{body}");
    let sig = signer.sign(input.as_bytes()).context("signing a JWT")?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// A user's credentials: a seed alone (NKey user) or a creds file (JWT and seed).
struct Creds {
    key: KeyPair,
    jwt: Option<String>,
}

fn read_creds(path: &Path) -> Result<Creds> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
    let line = |prefix: &str| text.lines().map(str::trim).find(|l| l.starts_with(prefix));
    let seed = line("SU").with_context(|| format!("no user seed in {path:?}"))?;
    let key = KeyPair::from_seed(seed).context("parsing the seed")?;
    Ok(Creds { key, jwt: line("eyJ").map(String::from) })
}

pub async fn run(url: &str, creds: &Path, count: u64, concurrency: usize) -> Result<Value> {
    let addr = host_port(url)?;
    let creds = std::sync::Arc::new(read_creds(creds)?);
    let start = Instant::now();
    let done: Vec<()> = stream::iter(0..count)
        .map(|i| {
            let (addr, creds) = (addr.clone(), creds.clone());
            async move {
                tokio::time::timeout(STEP_TIMEOUT, handshake(&addr, &creds))
                    .await
                    .with_context(|| format!("connection {i}: handshake timed out"))?
                    .with_context(|| format!("connection {i}"))
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    Ok(json!({
        "mode": "authconn",
        "auth": if creds.jwt.is_some() { "jwt" } else { "nkey" },
        "count": done.len(),
        "concurrency": concurrency,
        "secs": secs,
        "conns_per_sec": done.len() as f64 / secs,
    }))
}

async fn handshake(addr: &str, creds: &Creds) -> Result<()> {
    let stream = TcpStream::connect(addr).await.context("connecting")?;
    stream.set_nodelay(true)?;
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::with_capacity(4096, rd).lines();
    let info = lines.next_line().await?.context("closed before INFO")?;
    let json_text =
        info.strip_prefix("INFO ").with_context(|| format!("expected INFO, got {info:?}"))?;
    let info: Value = serde_json::from_str(json_text).context("INFO is not JSON")?;
    let nonce = info["nonce"].as_str().context("INFO has no nonce")?;
    let sig =
        URL_SAFE_NO_PAD.encode(creds.key.sign(nonce.as_bytes()).context("signing the nonce")?);
    let mut connect = json!({
        "verbose": false, "pedantic": false, "lang": "rust", "version": "0", "protocol": 1,
        "name": "chorus-loadgen", "sig": sig,
    });
    match &creds.jwt {
        Some(jwt) => connect["jwt"] = json!(jwt),
        None => connect["nkey"] = json!(creds.key.public_key()),
    }
    wr.write_all(format!("CONNECT {connect}\r\nPING\r\n").as_bytes())
        .await
        .context("sending CONNECT")?;
    loop {
        let line = lines.next_line().await?.context("closed before PONG")?;
        match line.as_str() {
            "PONG" => return Ok(()),
            "PING" => wr.write_all(b"PONG\r\n").await?,
            l if l.starts_with("-ERR") => bail!("server refused the login: {l}"),
            l => ensure!(l.starts_with("INFO ") || l == "+OK", "unexpected {l:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_and_creds_round_trip() {
        let dir = std::env::temp_dir().join(format!("authconn-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for mode in [Mode::Nkey, Mode::Jwt] {
            let out = write_config(mode, &dir).unwrap();
            let conf = std::fs::read_to_string(out["conf"].as_str().unwrap()).unwrap();
            let creds = read_creds(Path::new(out["creds"].as_str().unwrap())).unwrap();
            match mode {
                Mode::Nkey => {
                    assert!(conf.contains(&creds.key.public_key()));
                    assert!(creds.jwt.is_none());
                }
                Mode::Jwt => {
                    let jwt = creds.jwt.unwrap();
                    let claims = jwt.split('.').nth(1).unwrap();
                    let claims: Value =
                        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
                    assert_eq!(claims["sub"], json!(creds.key.public_key()));
                    assert!(conf.contains("resolver: MEMORY"));
                }
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(Mode::parse("token").is_err());
    }
}
