//! Scale-out on Redis: several rthub processes as one group space (DECISIONS.md, "Cluster").
//!
//! - A group send is one script call: next offset, capped stream append, publish with
//!   `(epoch, offset)`. Each node subscribes to a group while it has members there and fills
//!   any gap in the offsets from the group's stream, so group delivery survives a lost
//!   subscription and Redis restarts are detected (a new epoch) instead of skipped silently.
//! - Sends to a connection or a user go to the nodes that have them (an owner key per
//!   connection, a node set per user); sends to everyone, to everyone.
//! - Commands on another node's connection (join, leave, identify) go to its owner's channel
//!   and wait for its reply.
//! - Presence is a hash per group; a heartbeat per node lets readers skip dead nodes' members.
//! - Change-feed deliveries never cross Redis: each node reads the change log itself.

mod backplane;
pub mod config;
mod connection;
pub mod forward;
mod incoming;
mod janitor;
mod keys;
mod outgoing;
mod status;
mod wire;

pub use backplane::RedisBackplane;
pub use config::ClusterConfig;
pub use status::{Status, StatusMetrics};

use backplane::{now_millis, Shared};
use connection::Connector;
use incoming::Reader;
use keys::Keys;
use outgoing::{Scripts, Writer};
use std::sync::Arc;
use tokio::sync::{mpsc, OnceCell};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster.redis: {0}")]
    Url(#[from] redis::RedisError),
}

/// This node's part of a cluster: the backplane for the router, and what `/readyz` reports.
pub struct Cluster {
    pub backplane: Arc<dyn router::Backplane>,
    pub status: Arc<Status>,
    inner: Arc<RedisBackplane>,
}

impl Cluster {
    /// Start the writer, the reader and the heartbeat. Does not wait for Redis: a node
    /// starts (and serves locally) while Redis is away, and joins the others when it is back.
    pub fn start(config: ClusterConfig, shutdown: CancellationToken) -> Result<Self, ClusterError> {
        let client = Connector::open(&config.client_url(), config.is_redis_cluster())?;
        let keys = Keys::new(&config.prefix, config.partitions);
        let status = Arc::new(Status::new(config.node_id));
        let (ops, ops_queue) = mpsc::unbounded_channel();
        let (subs, subs_queue) = mpsc::unbounded_channel();
        let inner = Arc::new(RedisBackplane {
            config: config.clone(),
            keys: keys.clone(),
            status: status.clone(),
            handler: Arc::default(),
            pending: Arc::default(),
            ops: ops.clone(),
            subs,
            client: client.clone(),
            query: OnceCell::new(),
            numbers: std::sync::atomic::AtomicU64::new(1),
        });
        let writer = Writer {
            config: config.clone(),
            keys: keys.clone(),
            status: status.clone(),
            scripts: Scripts::new(),
            // Unique per node and start: a group whose offsets restart under this node gets
            // an epoch no earlier one had.
            epoch: format!("{}{:x}", config.node_id, now_millis()),
        };
        tokio::spawn(writer.run(ops_queue, client.clone()));
        let reader = Reader::new(
            keys.clone(),
            status.clone(),
            inner.handler.clone(),
            inner.pending.clone(),
            ops,
        );
        tokio::spawn(reader.run(client.clone(), subs_queue));
        tokio::spawn(heartbeat(inner.clone(), shutdown.clone()));
        tokio::spawn(janitor::run(inner.clone(), shutdown));
        tracing::info!(node = %config.node_id, prefix = %config.prefix, "cluster: joining through Redis");
        Ok(Self {
            backplane: Arc::new(Shared(inner.clone())),
            status,
            inner,
        })
    }

    pub fn node(&self) -> router::NodeId {
        self.status.node
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// The Redis side of this node: owners, node addresses, liveness.
    pub fn backplane(&self) -> &Arc<RedisBackplane> {
        &self.inner
    }
}

/// Every node's heartbeat in one hash; on shutdown this node leaves it, so the others stop
/// listing its members at once rather than after `node_timeout`.
async fn heartbeat(backplane: Arc<RedisBackplane>, shutdown: CancellationToken) {
    let node = backplane.status.node.to_string();
    let key = backplane.keys.nodes();
    let mut every = tokio::time::interval(backplane.config.heartbeat_every());
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = every.tick() => {}
        }
        backplane.queue_heartbeat();
    }
    if let Ok(mut redis) = backplane.query_connection().await {
        let _: redis::RedisResult<()> = redis::cmd("HDEL")
            .arg(&key)
            .arg(&node)
            .query_async(&mut redis)
            .await;
    }
}
