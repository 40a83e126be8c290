//! Transports: each turns its kind of HTTP exchange into the connection's inbound channel and
//! drains the connection's outbox onto the wire.

pub(crate) mod long_polling;
pub(crate) mod sse;
pub(crate) mod websocket;
