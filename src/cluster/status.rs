//! Whether this node reaches Redis, for `/readyz`, the metrics and the logs: a change of
//! state is logged once, not every retry.

use router::NodeId;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub struct Status {
    pub node: NodeId,
    /// The writer's connection works.
    writer_up: AtomicBool,
    /// The subscriber's connection works.
    reader_up: AtomicBool,
    /// Operations dropped because Redis was away too long.
    dropped: AtomicU64,
    /// Group messages that could not be recovered (trimmed from the stream, or an epoch
    /// change).
    lost: AtomicU64,
    /// Gaps filled from the streams.
    filled: AtomicU64,
}

impl Status {
    pub fn new(node: NodeId) -> Self {
        Self {
            node,
            writer_up: AtomicBool::new(false),
            reader_up: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            filled: AtomicU64::new(0),
        }
    }

    /// Both connections to Redis work.
    pub fn is_up(&self) -> bool {
        self.writer_up.load(Ordering::Relaxed) && self.reader_up.load(Ordering::Relaxed)
    }

    pub fn up(&self) {
        if !self.writer_up.swap(true, Ordering::Relaxed) {
            tracing::info!(node = %self.node, "cluster: writing to Redis");
        }
    }

    pub fn down(&self, doing: &str, error: &redis::RedisError) {
        if self.writer_up.swap(false, Ordering::Relaxed) {
            tracing::warn!(node = %self.node, %error, doing, "cluster: Redis is unreachable; delivering locally and queueing for the other nodes");
        } else {
            tracing::debug!(node = %self.node, %error, doing, "cluster: Redis still unreachable");
        }
    }

    pub fn reader(&self, up: bool, error: Option<&redis::RedisError>) {
        let was = self.reader_up.swap(up, Ordering::Relaxed);
        match (was, up, error) {
            (false, true, _) => {
                tracing::info!(node = %self.node, "cluster: subscribed to Redis")
            }
            (true, false, Some(error)) => {
                tracing::warn!(node = %self.node, %error, "cluster: lost the Redis subscription; reconnecting")
            }
            (true, false, None) => {
                tracing::warn!(node = %self.node, "cluster: lost the Redis subscription; reconnecting")
            }
            _ => {}
        }
    }

    pub fn dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub fn lost(&self, n: u64) {
        self.lost.fetch_add(n, Ordering::Relaxed);
    }

    pub fn filled(&self, n: u64) {
        self.filled.fetch_add(n, Ordering::Relaxed);
    }

    /// `/readyz`'s `cluster` part.
    pub fn report(&self) -> serde_json::Value {
        serde_json::json!({
            "node": self.node.to_string(),
            "redis": if self.is_up() { "up" } else { "down" },
            "droppedOperations": self.dropped.load(Ordering::Relaxed),
            "filledMessages": self.filled.load(Ordering::Relaxed),
            "lostMessages": self.lost.load(Ordering::Relaxed),
        })
    }
}
