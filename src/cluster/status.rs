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

/// The node's cluster figures for `/metrics`: `cluster_redis_up` and the counters of
/// `/readyz`'s `cluster` part.
pub struct StatusMetrics {
    pub status: std::sync::Arc<Status>,
    descs: Vec<prometheus::core::Desc>,
}

const FAMILIES: [(&str, &str); 4] = [
    (
        "cluster_redis_up",
        "1 when this node writes to and is subscribed to Redis, else 0.",
    ),
    (
        "cluster_dropped_operations_total",
        "Operations dropped because Redis was away longer than the queue holds.",
    ),
    (
        "cluster_filled_messages_total",
        "Group messages read from the group streams to fill gaps.",
    ),
    (
        "cluster_lost_messages_total",
        "Group messages that could not be recovered (trimmed, or the stream started again).",
    ),
];

impl StatusMetrics {
    pub fn new(status: std::sync::Arc<Status>) -> Self {
        let descs = FAMILIES
            .iter()
            .filter_map(|(name, help)| {
                prometheus::core::Desc::new(
                    (*name).into(),
                    (*help).into(),
                    vec![],
                    Default::default(),
                )
                .ok()
            })
            .collect();
        Self { status, descs }
    }
}

impl prometheus::core::Collector for StatusMetrics {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let status = &self.status;
        let values = [
            u64::from(status.is_up()),
            status.dropped.load(Ordering::Relaxed),
            status.filled.load(Ordering::Relaxed),
            status.lost.load(Ordering::Relaxed),
        ];
        let mut families = Vec::with_capacity(FAMILIES.len());
        for ((name, help), value) in FAMILIES.iter().zip(values) {
            let collected = if name.ends_with("_total") {
                prometheus::IntCounter::new(*name, *help).map(|counter| {
                    counter.inc_by(value);
                    prometheus::core::Collector::collect(&counter)
                })
            } else {
                prometheus::IntGauge::new(*name, *help).map(|gauge| {
                    gauge.set(value as i64);
                    prometheus::core::Collector::collect(&gauge)
                })
            };
            if let Ok(mut family) = collected {
                families.append(&mut family);
            }
        }
        families
    }
}
