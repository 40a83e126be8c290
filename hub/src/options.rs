//! Settings of the hub layer; defaults mirror ASP.NET Core's `HubOptions`.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct HubOptions {
    /// Server `Ping` cadence (not on long polling). Clients time out after 30 s of silence, so
    /// keep this at or below 15 s.
    pub keep_alive: Duration,
    /// A client silent this long (after its first Ping) is closed.
    pub client_timeout: Duration,
    /// The handshake must arrive within this.
    pub handshake_timeout: Duration,
    /// Largest inbound hub message (and handshake); larger closes the connection.
    pub max_message_bytes: usize,
    /// ASP.NET Core's `EnableDetailedErrors`: error Completions and error Closes carry the
    /// failure's type and message (`InvalidOperationException: …`) instead of only the generic
    /// sentence. Off by default, as there: details can leak server internals.
    pub enable_detailed_errors: bool,
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            keep_alive: Duration::from_secs(15),
            client_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(15),
            max_message_bytes: 32 * 1024,
            enable_detailed_errors: false,
        }
    }
}
