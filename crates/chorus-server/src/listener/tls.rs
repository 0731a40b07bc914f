//! TLS: a `tls { }` block turned into a rustls server configuration, the handshake with its
//! timeout, the NATS-style upgrade on the client port, and users mapped from client
//! certificates (`verify_and_map`).
//!
//! On the client port TLS follows nats-server (`server.go createClient`):
//! - by default the server sends INFO in plaintext (with `tls_required`), then the client
//!   starts the handshake; nothing else is read before it;
//! - `handshake_first`: the handshake comes before INFO; with a fallback delay (`auto` or a
//!   duration) a client that sends nothing within it gets the plaintext INFO first after all;
//! - `allow_non_tls`: INFO says `tls_available`, and the client's first byte decides (a TLS
//!   record starts with 0x16);
//! - the handshake must finish within `timeout` (2 s); a failure is logged (at debug level
//!   when it looks like a probe: a timeout or a first byte that is not TLS) and the connection
//!   is recorded as closed with "TLS Handshake Failure".
//!
//! Cipher suites and curves are those of rustls' *ring* provider (what async-nats uses, so one
//! crypto library is built). Go names map to it where they exist: the TLS 1.2 ECDHE-GCM and
//! ChaCha20 suites; CBC and RSA key-exchange suites do not exist in rustls and are skipped
//! with a warning. As in Go, `cipher_suites` only restricts TLS 1.2; TLS 1.3 keeps its suites.
//! `curve_preferences` maps X25519, CurveP256 and CurveP384; others are skipped with a warning.
//!
//! Certificate mapping follows nats-server's `checkClientTLSCertSubject`: e-mail addresses,
//! then DNS names, then URIs of the certificate's SAN, then its subject as Go prints a
//! distinguished name (`CN=alice,O=Org,C=US`, with and without the `DC=` components), then a
//! comparison of the subject's RDNs with each user name read as a DN, in any RDN order.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chorus_conf::TlsOptions;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::{ConnCtx, Handoff};
use crate::server::ServerInner;

/// A `tls { }` block that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("tls: {what} {path}: {source}")]
    Pem { what: &'static str, path: String, source: rustls::pki_types::pem::Error },
    #[error("tls: no certificate found in {0}")]
    NoCertificate(String),
    #[error("tls: missing 'cert_file' or 'key_file'")]
    MissingCertOrKey,
    #[error("tls: 'verify' needs a 'ca_file' with the certificate authorities of the clients")]
    VerifyWithoutCa,
    #[error("tls: no usable cipher suite in 'cipher_suites' and TLS 1.3 excluded")]
    NoCipherSuite,
    #[error("tls: no usable curve in 'curve_preferences'")]
    NoCurve,
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("tls: client verification: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// A failed server-side handshake.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("timeout")]
    Timeout,
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("certificate not pinned")]
    NotPinned,
}

impl HandshakeError {
    /// A timeout, a peer that did not speak TLS at all (a load balancer's probe, a client
    /// without TLS) or one that hung up mid-handshake: nats-server logs those at debug level.
    pub(crate) fn is_probe(&self) -> bool {
        match self {
            HandshakeError::Timeout => true,
            HandshakeError::Io(e) => {
                e.kind() == io::ErrorKind::UnexpectedEof
                    || e.get_ref()
                        .and_then(|e| e.downcast_ref::<rustls::Error>())
                        .is_some_and(|e| matches!(e, rustls::Error::InvalidMessage(_)))
            }
            HandshakeError::NotPinned => false,
        }
    }
}

/// Everything a listener needs to run TLS, built once from a `tls { }` block.
pub struct TlsSetup {
    pub acceptor: TlsAcceptor,
    pub timeout: Duration,
    pub handshake_first: bool,
    pub handshake_first_fallback: Option<Duration>,
    pub verify: bool,
    pub verify_and_map: bool,
    /// Lower-case hex SHA-256 of the SubjectPublicKeyInfo of the allowed client certificates.
    pinned: Vec<String>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("timeout", &self.timeout)
            .field("handshake_first", &self.handshake_first)
            .field("verify", &self.verify)
            .field("verify_and_map", &self.verify_and_map)
            .finish_non_exhaustive()
    }
}

/// Go's names for the TLS 1.3 suites differ from the IANA names rustls prints.
fn go_suite_name(s: &SupportedCipherSuite) -> String {
    let name = format!("{:?}", s.suite());
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

fn provider_for(t: &TlsOptions) -> Result<CryptoProvider, TlsConfigError> {
    let mut p = rustls::crypto::ring::default_provider();
    if !t.cipher_suites.is_empty() {
        let mut keep: Vec<SupportedCipherSuite> = Vec::new();
        for want in &t.cipher_suites {
            match p.cipher_suites.iter().find(|s| go_suite_name(s) == *want) {
                Some(s) => {
                    if !keep.iter().any(|k| k.suite() == s.suite()) {
                        keep.push(*s);
                    }
                }
                None => tracing::warn!("tls: cipher suite {want} is not available, skipped"),
            }
        }
        // As in Go, the list orders and restricts TLS 1.2; TLS 1.3 keeps all its suites.
        for s in p.cipher_suites.iter().filter(|s| matches!(s, SupportedCipherSuite::Tls13(_))) {
            if !keep.iter().any(|k| k.suite() == s.suite()) {
                keep.push(*s);
            }
        }
        if keep.is_empty() {
            return Err(TlsConfigError::NoCipherSuite);
        }
        p.cipher_suites = keep;
    }
    if !t.curve_preferences.is_empty() {
        let all = p.kx_groups.clone();
        let mut keep = Vec::new();
        for c in &t.curve_preferences {
            let want = match c.as_str() {
                "X25519" => Some(rustls::NamedGroup::X25519),
                "CurveP256" => Some(rustls::NamedGroup::secp256r1),
                "CurveP384" => Some(rustls::NamedGroup::secp384r1),
                _ => None,
            };
            match want.and_then(|w| all.iter().find(|g| g.name() == w)) {
                Some(g) => keep.push(*g),
                None => tracing::warn!("tls: curve {c} is not available, skipped"),
            }
        }
        if keep.is_empty() {
            return Err(TlsConfigError::NoCurve);
        }
        p.kx_groups = keep;
    }
    Ok(p)
}

fn pem_err(
    what: &'static str,
    path: &Path,
) -> impl FnOnce(rustls::pki_types::pem::Error) -> TlsConfigError {
    let path = path.display().to_string();
    move |source| TlsConfigError::Pem { what, path, source }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_err("certificate file", path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err("certificate file", path))?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate(path.display().to_string()));
    }
    Ok(certs)
}

impl TlsSetup {
    /// Loads the files and builds the rustls configuration; every error is reported at start,
    /// as nats-server refuses to start with an unusable TLS block.
    pub fn from_options(t: &TlsOptions) -> Result<TlsSetup, TlsConfigError> {
        let (cert_file, key_file) = match (&t.cert_file, &t.key_file, t.certs.first()) {
            (Some(c), Some(k), _) => (c.clone(), k.clone()),
            (None, None, Some(pair)) => {
                if t.certs.len() > 1 {
                    tracing::warn!(
                        "tls: several 'certs': only the first is served (no SNI choice)"
                    );
                }
                (pair.cert_file.clone(), pair.key_file.clone())
            }
            _ => return Err(TlsConfigError::MissingCertOrKey),
        };
        let certs = load_certs(&cert_file)?;
        let key =
            PrivateKeyDer::from_pem_file(&key_file).map_err(pem_err("key file", &key_file))?;
        let provider = Arc::new(provider_for(t)?);
        let versions: &[&'static rustls::SupportedProtocolVersion] =
            if t.min_version.as_deref() == Some("1.3") {
                &[&rustls::version::TLS13]
            } else {
                &[&rustls::version::TLS13, &rustls::version::TLS12]
            };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)?;
        let verify = t.verify || t.verify_and_map;
        let builder = if verify {
            let Some(ca) = &t.ca_file else {
                return Err(TlsConfigError::VerifyWithoutCa);
            };
            let mut roots = RootCertStore::empty();
            for c in load_certs(ca)? {
                roots.add(c)?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()?;
            builder.with_client_cert_verifier(v)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder.with_single_cert(certs, key)?;
        Ok(TlsSetup {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            timeout: t.timeout,
            handshake_first: t.handshake_first,
            handshake_first_fallback: t.handshake_first_fallback.filter(|d| !d.is_zero()),
            verify,
            verify_and_map: t.verify_and_map,
            pinned: t.pinned_certs.clone(),
            provider,
        })
    }

    fn sha256_hex(&self, data: &[u8]) -> Option<String> {
        let hash = self.provider.cipher_suites.iter().find_map(|s| match s {
            SupportedCipherSuite::Tls13(t)
                if t.common.hash_provider.algorithm()
                    == rustls::crypto::hash::HashAlgorithm::SHA256 =>
            {
                Some(t.common.hash_provider)
            }
            _ => None,
        })?;
        let out = hash.hash(data);
        Some(out.as_ref().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The server side of a handshake within the configured timeout. With `verify_and_map`
    /// the verified client certificate's identities come back too.
    pub async fn handshake<S>(
        &self,
        stream: S,
    ) -> Result<(TlsStream<S>, Option<CertIdentity>), HandshakeError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let s = match tokio::time::timeout(self.timeout, self.acceptor.accept(stream)).await {
            Ok(r) => r?,
            Err(_) => return Err(HandshakeError::Timeout),
        };
        let leaf = s.get_ref().1.peer_certificates().and_then(|c| c.first()).cloned();
        if !self.pinned.is_empty() {
            let spki = leaf.as_ref().and_then(|c| parse_cert(c).map(|p| p.spki.to_vec()));
            let ok =
                spki.and_then(|k| self.sha256_hex(&k)).is_some_and(|h| self.pinned.contains(&h));
            if !ok {
                return Err(HandshakeError::NotPinned);
            }
        }
        // An unreadable certificate maps to no user (the CONNECT is then refused).
        let ident = self.verify_and_map.then(|| {
            leaf.as_ref().and_then(|c| parse_cert(c)).map(|p| p.identity).unwrap_or_default()
        });
        let conn = s.get_ref().1;
        tracing::trace!(
            "TLS handshake complete: {:?}, {:?}",
            conn.protocol_version(),
            conn.negotiated_cipher_suite().map(|s| go_suite_name(&s))
        );
        Ok((s, ident))
    }
}

/// Logs a failed handshake the way nats-server does and records the connection as closed.
pub(crate) fn handshake_failed(
    srv: &ServerInner,
    cid: u64,
    addr: SocketAddr,
    label: &str,
    e: &HandshakeError,
) {
    if e.is_probe() {
        tracing::debug!("{}:{} - {label}:{cid} - TLS handshake error: {e}", addr.ip(), addr.port());
    } else {
        tracing::error!("{}:{} - {label}:{cid} - TLS handshake error: {e}", addr.ip(), addr.port());
    }
    srv.record_failed_connection(cid, addr, "TLS Handshake Failure");
}

/// Waits until `tcp` has a byte to read, at most `delay`; returns that byte if any.
async fn peek_first(tcp: &TcpStream, delay: Duration) -> Option<u8> {
    let mut b = [0u8; 1];
    match tokio::time::timeout(delay, tcp.peek(&mut b)).await {
        Ok(Ok(1)) => Some(b[0]),
        _ => None,
    }
}

/// A connection on the client port when `tls { }` is configured: the NATS TLS upgrade, then
/// the client protocol over the encrypted stream.
pub(crate) async fn serve_client(
    srv: Arc<ServerInner>,
    tcp: TcpStream,
    addr: SocketAddr,
    setup: Arc<TlsSetup>,
    handoff: Handoff,
) {
    let opts = srv.opts();
    let cid = srv.alloc_cid();
    let mut ctx = ConnCtx { cid: Some(cid), ..ConnCtx::default() };
    let mut tls_first = setup.handshake_first;
    if tls_first && let Some(delay) = setup.handshake_first_fallback {
        tls_first = peek_first(&tcp, delay).await.is_some();
    }
    let mut tcp = tcp;
    let mut tls = true;
    if !tls_first {
        let info = srv.client_info_json(cid, addr, &srv.auth(), &ctx);
        let mut line = BytesMut::new();
        chorus_proto::encode::info(&mut line, &info);
        let sent = tokio::time::timeout(setup.timeout, tcp.write_all(&line)).await;
        if !matches!(sent, Ok(Ok(()))) {
            srv.record_failed_connection(cid, addr, "Write Error");
            return;
        }
        ctx.info_sent = true;
        if opts.allow_non_tls {
            tls = peek_first(&tcp, setup.timeout).await == Some(0x16);
        }
    }
    ctx.tls_first = tls_first;
    if !tls {
        handoff(srv, Box::new(tcp), addr, ctx).await;
        return;
    }
    let hs = tokio::select! {
        r = setup.handshake(tcp) => r,
        _ = srv.shutdown.cancelled() => return,
    };
    match hs {
        Ok((stream, ident)) => {
            ctx.tls = true;
            ctx.cert = ident;
            handoff(srv, Box::new(stream), addr, ctx).await;
        }
        Err(e) => handshake_failed(&srv, cid, addr, "cid", &e),
    }
}

// ---- client certificate mapping -----------------------------------------------------------

/// What a verified client certificate says about its holder, for `verify_and_map`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertIdentity {
    pub emails: Vec<String>,
    pub dns_names: Vec<String>,
    pub uris: Vec<String>,
    /// The subject as Go prints it (`CN=alice,O=Org`), and with the `DC=` components appended.
    pub subject: String,
    pub subject_with_dcs: Option<String>,
    /// The subject's RDNs in string order (last in the certificate first): `(type, value)`.
    pub rdns: Vec<Vec<(String, String)>>,
}

impl CertIdentity {
    /// The first configured user this certificate names, in nats-server's order of evidence.
    pub fn map_user<'a>(&self, users: &[&'a str]) -> Option<&'a str> {
        let exact = |c: &str| users.iter().copied().find(|u| *u == c);
        let san = self.emails.iter().chain(&self.dns_names).chain(&self.uris);
        if let Some(u) = san.filter_map(|c| exact(c)).next() {
            return Some(u);
        }
        if let Some(u) = users
            .iter()
            .copied()
            .find(|u| parse_dn(u).is_some_and(|dn| rdns_match(&dn, &self.rdns)))
        {
            return Some(u);
        }
        if let Some(u) = self.subject_with_dcs.as_deref().and_then(exact) {
            return Some(u);
        }
        exact(&self.subject)
    }
}

/// Same RDNs, each with the same attributes (types case-insensitive), in any RDN order.
fn rdns_match(a: &[Vec<(String, String)>], b: &[Vec<(String, String)>]) -> bool {
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    let same_rdn = |x: &Vec<(String, String)>, y: &Vec<(String, String)>| {
        x.len() == y.len()
            && x.iter().all(|(t, v)| y.iter().any(|(t2, v2)| t.eq_ignore_ascii_case(t2) && v == v2))
    };
    let mut used = vec![false; b.len()];
    a.iter().all(|x| {
        let hit = b.iter().enumerate().find(|(i, y)| !used[*i] && same_rdn(x, y));
        hit.map(|(i, _)| used[i] = true).is_some()
    })
}

/// An RFC 4514 distinguished name (`CN=alice,O=Org`), as ldap.ParseDN reads a user name.
fn parse_dn(s: &str) -> Option<Vec<Vec<(String, String)>>> {
    let mut rdns = vec![Vec::new()];
    let mut chars = s.chars().peekable();
    loop {
        let mut typ = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            typ.push(c);
        }
        let typ = typ.trim().to_string();
        if typ.is_empty() || typ.contains([',', '+']) {
            return None;
        }
        let mut val = String::new();
        let mut end = None;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let a = chars.next()?;
                    if a.is_ascii_hexdigit() && chars.peek().is_some_and(char::is_ascii_hexdigit) {
                        let b = chars.next()?;
                        let v = u8::from_str_radix(&format!("{a}{b}"), 16).ok()?;
                        val.push(v as char);
                    } else {
                        val.push(a);
                    }
                }
                ',' | ';' | '+' => {
                    end = Some(c);
                    break;
                }
                c => val.push(c),
            }
        }
        rdns.last_mut()?.push((typ, val.trim().to_string()));
        match end {
            None => return Some(rdns),
            Some('+') => {}
            Some(_) => rdns.push(Vec::new()),
        }
    }
}

/// What is read from a certificate.
struct ParsedCert<'a> {
    spki: &'a [u8],
    identity: CertIdentity,
}

/// One DER element: tag, content, the whole TLV, and what follows it.
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// Minimal DER reading: the TLV at the front of `b`.
fn der_next(b: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, after_tag) = b.split_first()?;
    let (&l0, mut rest) = after_tag.split_first()?;
    let len = if l0 < 0x80 {
        l0 as usize
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let l = rest[..n].iter().fold(0usize, |acc, &x| (acc << 8) | x as usize);
        rest = &rest[n..];
        l
    };
    if rest.len() < len {
        return None;
    }
    let header = b.len() - rest.len();
    Some((tag, &rest[..len], &b[..header + len], &rest[len..]))
}

fn oid_string(oid: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for (i, &b) in oid.iter().enumerate() {
        acc = (acc << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            if parts.is_empty() && i < oid.len() {
                let first = if acc < 80 { acc / 40 } else { 2 };
                parts.push(first);
                parts.push(acc - first * 40);
            } else {
                parts.push(acc);
            }
            acc = 0;
        }
    }
    parts.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

fn der_string(tag: u8, v: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, T61String, NumericString, VisibleString
        0x0c | 0x13 | 0x16 | 0x14 | 0x12 | 0x1a => Some(String::from_utf8_lossy(v).into_owned()),
        // BMPString: UTF-16BE
        0x1e => {
            let units: Vec<u16> =
                v.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

/// Go's short names for the attributes `pkix.Name` knows, in the order `ToRDNSequence` emits.
const GO_NAME_ORDER: &[(&str, &str)] = &[
    ("2.5.4.6", "C"),
    ("2.5.4.8", "ST"),
    ("2.5.4.7", "L"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
];
const OID_DC: &str = "0.9.2342.19200300.100.1.25";

/// Attribute names as an LDAP DN spells them.
fn ldap_type(oid: &str) -> String {
    match oid {
        OID_DC => "DC".into(),
        "0.9.2342.19200300.100.1.1" => "UID".into(),
        "1.2.840.113549.1.9.1" => "emailAddress".into(),
        _ => GO_NAME_ORDER
            .iter()
            .find(|(o, _)| *o == oid)
            .map_or_else(|| oid.to_string(), |(_, n)| n.to_string()),
    }
}

fn escape_dn_value(v: &str) -> String {
    let n = v.chars().count();
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let esc = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => i == 0 || i + 1 == n,
            '#' => i == 0,
            _ => false,
        };
        if esc {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn parse_cert(der: &[u8]) -> Option<ParsedCert<'_>> {
    let (_, cert, _, _) = der_next(der)?;
    let (_, tbs, _, _) = der_next(cert)?;
    let (tag, _, _, mut rest) = der_next(tbs)?;
    if tag == 0xa0 {
        rest = der_next(rest)?.3; // the serial number after the version
    }
    rest = der_next(rest)?.3; // signature algorithm
    rest = der_next(rest)?.3; // issuer
    rest = der_next(rest)?.3; // validity
    let (_, subject, _, r) = der_next(rest)?;
    let (_, _, spki, mut rest) = der_next(r)?;

    let mut attrs: Vec<Vec<(String, String)>> = Vec::new(); // certificate order
    let mut set_iter = subject;
    while !set_iter.is_empty() {
        let (_, set, _, r) = der_next(set_iter)?;
        set_iter = r;
        let mut rdn = Vec::new();
        let mut atv_iter = set;
        while !atv_iter.is_empty() {
            let (_, atv, _, r) = der_next(atv_iter)?;
            atv_iter = r;
            let (_, oid, _, r) = der_next(atv)?;
            let (vtag, val, _, _) = der_next(r)?;
            rdn.push((oid_string(oid), der_string(vtag, val).unwrap_or_default()));
        }
        attrs.push(rdn);
    }

    let mut id = CertIdentity::default();
    while !rest.is_empty() {
        let (tag, content, _, r) = der_next(rest)?;
        rest = r;
        if tag != 0xa3 {
            continue;
        }
        let (_, mut exts, _, _) = der_next(content)?;
        while !exts.is_empty() {
            let (_, ext, _, r) = der_next(exts)?;
            exts = r;
            let (_, oid, _, mut er) = der_next(ext)?;
            let (mut t, mut v, _, r2) = der_next(er)?;
            if t == 0x01 {
                er = r2;
                (t, v, _, _) = der_next(er)?;
            }
            if oid != [0x55, 0x1d, 0x11] || t != 0x04 {
                continue;
            }
            let (_, mut names, _, _) = der_next(v)?;
            while !names.is_empty() {
                let (nt, nv, _, r) = der_next(names)?;
                names = r;
                let s = String::from_utf8_lossy(nv).into_owned();
                match nt {
                    0x81 => id.emails.push(s),
                    0x82 => id.dns_names.push(s),
                    0x86 => id.uris.push(s),
                    _ => {}
                }
            }
        }
    }

    // Go's pkix.Name keeps one value per CN/SERIALNUMBER (the last) and lists per other type.
    let mut go_rdns: Vec<String> = Vec::new();
    for (oid, name) in GO_NAME_ORDER {
        let mut values: Vec<&str> =
            attrs.iter().flatten().filter(|(o, _)| o == oid).map(|(_, v)| v.as_str()).collect();
        if matches!(*name, "CN" | "SERIALNUMBER") && values.len() > 1 {
            values = vec![values[values.len() - 1]];
        }
        if values.iter().all(|v| v.is_empty()) {
            continue;
        }
        let rdn: Vec<String> =
            values.iter().map(|v| format!("{name}={}", escape_dn_value(v))).collect();
        go_rdns.push(rdn.join("+"));
    }
    go_rdns.reverse();
    id.subject = go_rdns.join(",");
    let dcs: Vec<String> = attrs
        .iter()
        .flatten()
        .filter(|(o, _)| o == OID_DC)
        .map(|(_, v)| format!("DC={v}"))
        .collect();
    if !dcs.is_empty() {
        id.subject_with_dcs = Some(format!("{},{}", id.subject, dcs.join(",")));
    }
    id.rdns = attrs
        .iter()
        .rev()
        .map(|rdn| rdn.iter().map(|(o, v)| (ldap_type(o), v.clone())).collect())
        .collect();
    Some(ParsedCert { spki, identity: id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_parsing_and_matching() {
        let dn = parse_dn("CN=alice, O=Acme\\, Inc,C=US").unwrap();
        assert_eq!(
            dn,
            vec![
                vec![("CN".to_string(), "alice".to_string())],
                vec![("O".to_string(), "Acme, Inc".to_string())],
                vec![("C".to_string(), "US".to_string())],
            ]
        );
        let cert = vec![
            vec![("C".to_string(), "US".to_string())],
            vec![("cn".to_string(), "alice".to_string())],
            vec![("O".to_string(), "Acme, Inc".to_string())],
        ];
        assert!(rdns_match(&dn, &cert), "any RDN order, type case-insensitive");
        let other = parse_dn("CN=bob,O=Acme\\, Inc,C=US").unwrap();
        assert!(!rdns_match(&other, &cert));
        assert!(
            parse_dn("no equals sign").is_none()
                || !rdns_match(&parse_dn("x").unwrap_or_default(), &cert)
        );
        let multi = parse_dn("OU=a+OU=b,CN=x").unwrap();
        assert_eq!(multi[0].len(), 2);
    }

    #[test]
    fn oids_and_escaping() {
        assert_eq!(oid_string(&[0x55, 0x04, 0x03]), "2.5.4.3");
        assert_eq!(
            oid_string(&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19]),
            OID_DC
        );
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]),
            "1.2.840.113549.1.9.1"
        );
        assert_eq!(escape_dn_value(" a,b#"), "\\ a\\,b#");
        assert_eq!(escape_dn_value("#x "), "\\#x\\ ");
    }

    fn test_cert(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/certs/{name}.pem", env!("CARGO_MANIFEST_DIR"));
        CertificateDer::from_pem_file(path).unwrap().to_vec()
    }

    #[test]
    fn identities_of_the_test_certificates() {
        let der = test_cert("alice");
        let alice = parse_cert(&der).unwrap().identity;
        assert_eq!(alice.emails, vec!["alice@example.com"]);
        assert_eq!(alice.subject, "CN=alice,O=Chorus Test");
        assert_eq!(alice.subject_with_dcs, None);
        let der = test_cert("bob");
        let bob = parse_cert(&der).unwrap();
        // As Go prints it (checked against nats-server's verify_and_map with this certificate).
        assert_eq!(bob.identity.subject, "CN=bob,OU=dev,O=Chorus Test,C=US");
        assert!(bob.identity.emails.is_empty() && bob.identity.dns_names.is_empty());
        assert_eq!(bob.identity.rdns[0], vec![("CN".to_string(), "bob".to_string())]);
        assert_eq!(bob.spki[0], 0x30, "the SubjectPublicKeyInfo is a whole DER SEQUENCE");
        assert_eq!(
            bob.identity.map_user(&["x", "O=Chorus Test,CN=bob,OU=dev,C=US"]),
            Some("O=Chorus Test,CN=bob,OU=dev,C=US")
        );
        assert_eq!(bob.identity.map_user(&["CN=bob,OU=dev,O=Chorus Test"]), None);
        let der = test_cert("server");
        let server = parse_cert(&der).unwrap().identity;
        assert_eq!(server.dns_names, vec!["localhost"]);
        assert!(parse_cert(b"\x30\x03\x02\x01").is_none(), "truncated DER is refused");
    }

    #[test]
    fn go_suite_names() {
        let p = rustls::crypto::ring::default_provider();
        let names: Vec<String> = p.cipher_suites.iter().map(go_suite_name).collect();
        assert!(names.contains(&"TLS_AES_128_GCM_SHA256".to_string()), "{names:?}");
        assert!(names.contains(&"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string()));
        for n in &names {
            assert!(chorus_conf::SECURE_CIPHER_SUITES.contains(&n.as_str()), "{n}");
        }
    }
}
