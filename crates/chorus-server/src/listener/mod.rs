//! Listeners: the client port (plain TCP or TLS) and the WebSocket port. A listener accepts
//! a socket, sets up its transport (the NATS TLS upgrade, the WebSocket upgrade and frame
//! pumps) and hands a plain byte stream to the client code through a [`Handoff`], with what
//! it learned on the way in a [`ConnCtx`]. Listeners never call into the client code
//! themselves: the server gives them the handoff.
//!
//! - [`tls`]: `tls { }` as a rustls configuration, the NATS TLS upgrade (INFO first, or
//!   `handshake_first`), users mapped from client certificates.
//! - [`websocket`]: the WebSocket upgrade (origins, cookies, permessage-deflate) and the frame
//!   pumps.

pub mod tls;
pub mod websocket;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::conn::Transport;
use crate::server::ServerInner;
use crate::sub::ClientShared;

/// A byte stream a listener hands over (TCP, TLS over TCP, or a WebSocket pipe).
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Where a listener hands a connection once its transport is ready.
pub(crate) type Handoff = fn(
    Arc<ServerInner>,
    Box<dyn Stream>,
    SocketAddr,
    ConnCtx,
) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the listener learned before the client protocol started.
#[derive(Debug, Default)]
pub(crate) struct ConnCtx {
    pub transport: Transport,
    /// TLS was negotiated (client port, or wss).
    pub tls: bool,
    /// The client port's TLS handshake came before INFO (`handshake_first`).
    pub tls_first: bool,
    /// A client id given by the listener (the TLS upgrade sends INFO before the handshake).
    pub cid: Option<u64>,
    /// The listener already sent INFO.
    pub info_sent: bool,
    /// WebSocket: `X-Forwarded-For`, shown in the log prefix as nats-server does.
    pub forwarded_ip: Option<IpAddr>,
    /// WebSocket: credentials from cookies, for what CONNECT lacks.
    pub cookies: websocket::Cookies,
    /// `verify_and_map`: the verified client certificate's identities.
    pub cert: Option<tls::CertIdentity>,
    /// Receives the shared half once it exists (the WebSocket pumps read the close reason).
    pub shared: Option<Arc<OnceLock<Arc<ClientShared>>>>,
}

/// Binds a listener as Go's `net.Listen` does for nats-server: the accept backlog is the
/// kernel's maximum (`somaxconn` caps the value), not a small default. With a small backlog,
/// a connect storm overflows the queue; the kernel then drops the clients' final handshake
/// ACKs and, since NATS servers speak first, those clients wait for INFO for as long as the
/// SYN-ACK retransmits take (tens of seconds).
pub(crate) async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let sock = if a.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        sock.set_reuseaddr(true)?;
        match sock.bind(a) {
            Ok(()) => return sock.listen(u16::MAX.into()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "address resolves to nothing")
    }))
}

/// Accepts connections on the client port until shutdown or lame duck: plain TCP straight to
/// `plain`, TLS through the upgrade first.
pub(crate) async fn accept_loop(
    srv: Arc<ServerInner>,
    listener: TcpListener,
    tls: Option<Arc<tls::TlsSetup>>,
    handoff: Handoff,
) {
    loop {
        let (stream, addr) = tokio::select! {
            _ = srv.shutdown.cancelled() => return,
            _ = srv.accept_stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::error!("Error accepting client connection: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        spawn(&srv, stream, addr, tls.as_ref(), handoff);
    }
}

fn spawn(
    srv: &Arc<ServerInner>,
    stream: TcpStream,
    addr: SocketAddr,
    tls: Option<&Arc<tls::TlsSetup>>,
    handoff: Handoff,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        Some(t) => tokio::spawn(tls::serve_client(srv.clone(), stream, addr, t.clone(), handoff)),
        None => tokio::spawn(handoff(srv.clone(), Box::new(stream), addr, ConnCtx::default())),
    };
}
