//! What the connection layer hands to the layer above: a duplex stream of bytes.

use crate::identity::Identity;
use bytes::Bytes;
use rt_core::Outbox;
use rt_core::RandomId;
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    WebSockets,
    ServerSentEvents,
    LongPolling,
}

impl TransportKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::WebSockets => "WebSockets",
            Self::ServerSentEvents => "ServerSentEvents",
            Self::LongPolling => "LongPolling",
        }
    }

    /// Server-Sent Events carry text only.
    pub fn supports_binary(self) -> bool {
        self != Self::ServerSentEvents
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What arrives from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A chunk of the inbound byte stream.
    Data(Bytes),
    /// Stateful reconnect: a new socket replaced a dropped one. Whatever partial input the old
    /// socket left is gone; the client resends from its next `Sequence`.
    Reattached,
}

/// One client connection, transport-neutral. Inbound bytes arrive in arbitrary chunks (a chunk
/// is a WebSocket message or a POST body): message boundaries are the hub protocol's business.
pub struct TransportConnection {
    /// The public id (`connectionId` in negotiate).
    pub id: RandomId,
    pub transport: TransportKind,
    pub identity: Arc<Identity>,
    /// Ends (`None`) when the peer is gone.
    pub inbound: crate::inbound::InboundReceiver,
    pub outbox: Outbox,
    /// Negotiated stateful reconnect on a WebSocket: a dropped socket may be replaced within
    /// the disconnect timeout. The hub turns it on only with handshake version 2.
    pub stateful_reconnect: bool,
    /// The request that connected the transport (headers, cookies, query string).
    pub request: Arc<crate::request::ConnectRequest>,
}

impl TransportConnection {
    /// Long polling has its own liveness (the poll cycle): no pings, no client timeout.
    pub fn has_inherent_keep_alive(&self) -> bool {
        self.transport == TransportKind::LongPolling
    }
}
