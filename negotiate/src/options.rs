//! Settings of the connection layer. Defaults mirror ASP.NET Core's `HttpConnectionDispatcherOptions`
//! where one exists.

use std::time::Duration;

/// Which transports the endpoint serves; `availableTransports` lists exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    pub websockets: bool,
    pub server_sent_events: bool,
    pub long_polling: bool,
}

impl Default for Transports {
    fn default() -> Self {
        Self {
            websockets: true,
            server_sent_events: true,
            long_polling: true,
        }
    }
}

impl Transports {
    pub fn allows(&self, transport: crate::TransportKind) -> bool {
        match transport {
            crate::TransportKind::WebSockets => self.websockets,
            crate::TransportKind::ServerSentEvents => self.server_sent_events,
            crate::TransportKind::LongPolling => self.long_polling,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    /// How long a negotiated connection may stay unused before it is disposed.
    pub disconnect_timeout: Duration,
    pub transports: Transports,
    /// Bytes that may wait in one connection's outbound queue. A connection whose queue would
    /// grow past this is a slow consumer: its queue is dropped, it gets a farewell frame (a
    /// hub `Close` with an error) and it is closed. Other connections never wait for it.
    pub max_outbound_queue_bytes: usize,
    /// Inbound chunks (WebSocket messages, POST bodies) buffered before the transport stops
    /// reading from the peer, which applies backpressure to it.
    pub inbound_queue_chunks: usize,
    /// Largest single WebSocket message accepted; larger is a protocol error (close 1009).
    pub max_websocket_message_bytes: usize,
    /// tungstenite's defaults (128 KiB read, 128 KiB write buffers) cost ~137 KB per idle
    /// connection. The read buffer is allocated per connection and kept while idle, and
    /// it bounds only the bytes taken per read, never the message size (a frame reserves its
    /// own length), so 1 KiB: SignalR messages are mostly far smaller, and the suite's S1
    /// measured 3 KB per idle connection saved against 4 KiB (docs/BENCHMARKS.md).
    pub websocket_read_buffer_bytes: usize,
    pub websocket_write_buffer_bytes: usize,
    /// How long to wait for the peer's Close frame after sending ours.
    pub close_timeout: Duration,
    /// How long a long poll waits for data before answering empty (the JS client gives up on a
    /// poll after 100 s).
    pub long_poll_timeout: Duration,
    /// Largest body accepted on a send (POST).
    pub max_send_bytes: usize,
    /// Honour `useStatefulReconnect=true` in negotiate (never volunteered).
    pub allow_stateful_reconnect: bool,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        Self {
            disconnect_timeout: Duration::from_secs(15),
            transports: Transports::default(),
            max_outbound_queue_bytes: 1024 * 1024,
            inbound_queue_chunks: 16,
            max_websocket_message_bytes: 1024 * 1024,
            websocket_read_buffer_bytes: 1024,
            websocket_write_buffer_bytes: 0,
            close_timeout: Duration::from_secs(5),
            long_poll_timeout: Duration::from_secs(90),
            max_send_bytes: 1024 * 1024,
            allow_stateful_reconnect: false,
        }
    }
}
