//! `[realtime]` in the config file.

use crate::config::{positive, ConfigError};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRealtime {
    global: Option<bool>,
    ping_secs: Option<u64>,
    retry_ms: Option<u64>,
    event_retention_secs: Option<u64>,
    max_event_bytes: Option<usize>,
    max_queue_bytes: Option<usize>,
    max_replay_events: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// Every valid API key sees all of `/realtime` and may publish (RestDB's
    /// `{"realtime":{"global":true}}`).
    pub global: bool,
    /// The `event: ping` interval; the stock RestDB clients reconnect after 20–25 s without one.
    pub ping: Duration,
    /// The `retry:` an EventSource waits before reconnecting.
    pub retry: Duration,
    /// How long custom events are kept for resuming streams.
    pub event_retention: Duration,
    /// The largest `data` of a custom event, as JSON.
    pub max_event_bytes: usize,
    /// How far a stream may fall behind before it is closed (it then resumes from its last id).
    pub max_queue_bytes: usize,
    /// The most events one resume replays; an older `Last-Event-ID` is told to reload.
    pub max_replay_events: usize,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self::resolve(FileRealtime::default())
            .unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
}

impl RealtimeConfig {
    pub fn resolve(file: FileRealtime) -> Result<Self, ConfigError> {
        Ok(Self {
            global: file.global.unwrap_or(false),
            ping: Duration::from_secs(positive(
                file.ping_secs.unwrap_or(10),
                "realtime.ping_secs",
            )?),
            retry: Duration::from_millis(positive(
                file.retry_ms.unwrap_or(3000),
                "realtime.retry_ms",
            )?),
            event_retention: Duration::from_secs(positive(
                file.event_retention_secs.unwrap_or(3600),
                "realtime.event_retention_secs",
            )?),
            max_event_bytes: positive(
                file.max_event_bytes.unwrap_or(64 * 1024) as u64,
                "realtime.max_event_bytes",
            )? as usize,
            max_queue_bytes: positive(
                file.max_queue_bytes.unwrap_or(1024 * 1024) as u64,
                "realtime.max_queue_bytes",
            )? as usize,
            max_replay_events: positive(
                file.max_replay_events.unwrap_or(10_000) as u64,
                "realtime.max_replay_events",
            )? as usize,
        })
    }
}
