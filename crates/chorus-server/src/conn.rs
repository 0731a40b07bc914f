//! Leaf types of a connection: what kind of peer it is, which listener it came in on, and
//! why it ended, and the server-wide traffic counters. Nothing here imports the rest of the crate, so every room (listeners, client,
//! route, deliver, monitor) can name these without pulling anything else in.

/// What is on the other end, as nats-server's `kind`: it decides what a message from the
/// connection may reach (a route's messages never go to another route) and how a delivery to
/// it is encoded (`MSG`/`HMSG` to a client, `RMSG`/`HMSG` with the account to a route).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kind {
    /// An application connection (TCP, TLS or WebSocket).
    #[default]
    Client,
    /// A route to another server of the cluster.
    Router,
    /// The server's own subscriber (JetStream, `$SYS`): no socket.
    System,
}

/// The listener a client connection came in on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    #[default]
    Tcp,
    Websocket,
}

/// Why a connection ended, worded as nats-server's `ClosedState` (shown in /connz).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ClientClosed,
    AuthenticationTimeout,
    AuthenticationViolation,
    AuthenticationExpired,
    SlowConsumerPendingBytes,
    SlowConsumerWriteDeadline,
    WriteError,
    ReadError,
    ParseError,
    ProtocolViolation,
    StaleConnection,
    MaxPayloadExceeded,
    MaxConnectionsExceeded,
    MaxControlLineExceeded,
    BadClientProtocolVersion,
    NoRespondersRequiresHeaders,
    ServerShutdown,
    MaxAccountConnectionsExceeded,
    Revocation,
    DuplicateRoute,
    RouteRemoved,
    ClusterNameConflict,
    DuplicateServerName,
    WrongPort,
    MissingAccount,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::AuthenticationTimeout => "Authentication Timeout",
            CloseReason::AuthenticationViolation => "Authentication Failure",
            CloseReason::AuthenticationExpired => "Authentication Expired",
            CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::WriteError => "Write Error",
            CloseReason::ReadError => "Read Error",
            CloseReason::ParseError => "Parse Error",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            CloseReason::BadClientProtocolVersion => "Bad Client Protocol Version",
            CloseReason::NoRespondersRequiresHeaders => "No Responders Requires Headers",
            CloseReason::ServerShutdown => "Server Shutdown",
            CloseReason::MaxAccountConnectionsExceeded => "Maximum Account Connections Exceeded",
            CloseReason::Revocation => "Credentials Revoked",
            CloseReason::DuplicateRoute => "Duplicate Route",
            CloseReason::RouteRemoved => "Route Removed",
            CloseReason::ClusterNameConflict => "Cluster Name Conflict",
            CloseReason::DuplicateServerName => "Duplicate Server Name",
            CloseReason::WrongPort => "Incorrect Port",
            CloseReason::MissingAccount => "Missing Account",
        }
    }
}

/// Server-wide counters (the /varz figures), shared by every connection's tasks.
#[derive(Debug, Default)]
pub struct Stats {
    pub in_msgs: std::sync::atomic::AtomicU64,
    pub in_bytes: std::sync::atomic::AtomicU64,
    pub out_msgs: std::sync::atomic::AtomicU64,
    pub out_bytes: std::sync::atomic::AtomicU64,
    pub out_bytes_flushed: std::sync::atomic::AtomicU64,
    pub slow_consumers: std::sync::atomic::AtomicU64,
    pub total_connections: std::sync::atomic::AtomicU64,
    /// The part of the message figures that came from or went to routes.
    pub in_route_msgs: std::sync::atomic::AtomicU64,
    pub in_route_bytes: std::sync::atomic::AtomicU64,
    pub out_route_msgs: std::sync::atomic::AtomicU64,
    pub out_route_bytes: std::sync::atomic::AtomicU64,
}
