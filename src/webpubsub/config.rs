//! `[webpubsub]` in the config file: the hub, its access key, the event handler and the limits
//! of reliable connections (Azure's, by default).

use crate::config::{positive, ConfigError};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWebPubSub {
    hub: Option<String>,
    access_key: Option<String>,
    event_handler: Option<String>,
    user_events: Option<Vec<String>>,
    system_events: Option<Vec<String>>,
    event_timeout_secs: Option<u64>,
    recovery_secs: Option<u64>,
    max_unacked_messages: Option<usize>,
    max_unacked_bytes: Option<usize>,
    max_message_bytes: Option<usize>,
    token_lifetime_secs: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct WebPubSubConfig {
    /// The one hub: `/client/hubs/{hub}` and `/api/hubs/{hub}/…`; other hub names are 404.
    pub hub: String,
    /// Signs client tokens and authenticates the server SDK (`AccessKey=` of the connection
    /// string). `None` until [`WebPubSubConfig::with_default_key`] picks the server key.
    pub access_key: Option<String>,
    /// Where `event` messages and the system events go (CloudEvents over HTTP), if anywhere.
    pub event_handler: Option<String>,
    /// The user events sent to the handler: `*` for all, or names.
    pub user_events: Vec<String>,
    /// The system events sent to the handler: of `connect`, `connected`, `disconnected`.
    pub system_events: Vec<String>,
    /// How long the handler may take to answer.
    pub event_timeout: Duration,
    /// How long a dropped reliable connection is kept for recovery (groups and unacked
    /// messages).
    pub recovery: Duration,
    /// Unacknowledged messages a reliable connection may have before it is closed.
    pub max_unacked_messages: usize,
    /// Bytes of unacknowledged (or unwritten) messages before the connection is closed.
    pub max_unacked_bytes: usize,
    /// The largest message a client may send.
    pub max_message_bytes: usize,
    /// How long a token from `GET /api/_rt/ws` is good for opening a connection.
    pub token_lifetime: Duration,
}

pub const SYSTEM_EVENTS: [&str; 3] = ["connect", "connected", "disconnected"];

impl Default for WebPubSubConfig {
    fn default() -> Self {
        Self::resolve(FileWebPubSub::default())
            .unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

impl WebPubSubConfig {
    pub fn resolve(file: FileWebPubSub) -> Result<Self, ConfigError> {
        let hub = file.hub.unwrap_or_else(|| "app".into());
        // Azure's hub names: a letter first, then letters, digits and `_`, at most 128.
        let valid_hub = hub.len() <= 128
            && hub.starts_with(|c: char| c.is_ascii_alphabetic())
            && hub.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_hub {
            return Err(invalid(
                "webpubsub.hub",
                "a letter, then letters, digits or '_' (at most 128)",
            ));
        }
        if let Some(key) = &file.access_key {
            if key.len() < 16 {
                return Err(invalid("webpubsub.access_key", "at least 16 characters"));
            }
        }
        if let Some(url) = &file.event_handler {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "webpubsub.event_handler",
                    "an http:// or https:// URL",
                ));
            }
        }
        let system_events = file
            .system_events
            .unwrap_or_else(|| SYSTEM_EVENTS.map(str::to_owned).to_vec());
        if let Some(unknown) = system_events
            .iter()
            .find(|e| !SYSTEM_EVENTS.contains(&e.as_str()))
        {
            return Err(invalid(
                "webpubsub.system_events",
                format!("'{unknown}' is not one of connect, connected, disconnected"),
            ));
        }
        Ok(Self {
            hub,
            access_key: file.access_key,
            event_handler: file.event_handler,
            user_events: file.user_events.unwrap_or_else(|| vec!["*".into()]),
            system_events,
            event_timeout: Duration::from_secs(positive(
                file.event_timeout_secs.unwrap_or(30),
                "webpubsub.event_timeout_secs",
            )?),
            recovery: Duration::from_secs(positive(
                file.recovery_secs.unwrap_or(30),
                "webpubsub.recovery_secs",
            )?),
            max_unacked_messages: positive(
                file.max_unacked_messages.unwrap_or(1000) as u64,
                "webpubsub.max_unacked_messages",
            )? as usize,
            max_unacked_bytes: positive(
                file.max_unacked_bytes.unwrap_or(16 * 1024 * 1024) as u64,
                "webpubsub.max_unacked_bytes",
            )? as usize,
            max_message_bytes: positive(
                file.max_message_bytes.unwrap_or(1024 * 1024) as u64,
                "webpubsub.max_message_bytes",
            )? as usize,
            token_lifetime: Duration::from_secs(positive(
                file.token_lifetime_secs.unwrap_or(3600),
                "webpubsub.token_lifetime_secs",
            )?),
        })
    }

    /// Use `key` (the first server API key) when no access key is configured, so that the
    /// development server's printed key also makes the connection string.
    pub fn with_default_key(mut self, key: Option<&str>) -> Self {
        if self.access_key.is_none() {
            self.access_key = key.map(str::to_owned);
        }
        self
    }

    /// Whether user event `name` goes to the event handler.
    pub fn forwards_user_event(&self, name: &str) -> bool {
        self.event_handler.is_some() && self.user_events.iter().any(|e| e == "*" || e == name)
    }

    /// Whether system event `name` goes to the event handler.
    pub fn forwards_system_event(&self, name: &str) -> bool {
        self.event_handler.is_some() && self.system_events.iter().any(|e| e == name)
    }
}
