//! [`RedisBackplane`]: the router's [`Backplane`] on Redis. It never waits on the send path:
//! publishes and bookkeeping go onto the writer's queue, subscriptions onto the reader's;
//! only commands and presence reads (which are async at the router too) talk to Redis
//! directly.

use super::connection::{Connection, Connector};
use super::incoming::{Handler, Pending, SubOp};
use super::keys::Keys;
use super::outgoing::Op;
use super::status::Status;
use super::wire::{self, NodeMessage};
use super::ClusterConfig;
use futures_util::future::BoxFuture;
use router::{
    Backplane, BackplaneError, BackplaneHandler, Command, Envelope, MemberInfo, NodeId, Reply,
    Session, Target,
};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, OnceCell};

/// A member as the group's presence hash keeps it.
#[derive(Serialize, Deserialize)]
pub(super) struct MemberRecord {
    pub node: NodeId,
    pub member: MemberInfo,
}

pub struct RedisBackplane {
    pub(super) config: ClusterConfig,
    pub(super) keys: Keys,
    pub(super) status: Arc<Status>,
    pub(super) handler: Arc<Handler>,
    pub(super) pending: Arc<Pending>,
    pub(super) ops: mpsc::UnboundedSender<Op>,
    pub(super) subs: mpsc::UnboundedSender<SubOp>,
    pub(super) client: Connector,
    /// For commands and presence reads; made on first use (Redis may be away at start).
    pub(super) query: OnceCell<Connection>,
    /// Command request ids.
    pub(super) numbers: AtomicU64,
}

impl RedisBackplane {
    fn node(&self) -> NodeId {
        self.status.node
    }

    pub(super) fn queue_heartbeat(&self) {
        self.queue(Op::Heartbeat);
    }

    fn queue(&self, op: Op) {
        // The writer only ends at shutdown; a send after it has nowhere to go.
        let _ = self.ops.send(op);
    }

    async fn query(&self) -> Result<Connection, BackplaneError> {
        self.query_connection().await.map_err(unavailable)
    }

    pub(super) async fn query_connection(&self) -> redis::RedisResult<Connection> {
        self.query
            .get_or_try_init(|| self.client.connect())
            .await
            .cloned()
    }

    /// Whether `node`'s heartbeat is recent.
    pub async fn is_live(&self, node: NodeId) -> Result<bool, BackplaneError> {
        let mut redis = self.query().await?;
        let seen: Option<u64> = redis::cmd("HGET")
            .arg(self.keys.nodes())
            .arg(node.to_string())
            .query_async(&mut redis)
            .await
            .map_err(unavailable)?;
        Ok(seen.is_some_and(|seen| {
            now_millis().saturating_sub(seen) < self.config.node_timeout.as_millis() as u64
        }))
    }

    /// Where `node` takes requests for its connections, if it is live and said so.
    pub async fn node_url(&self, node: NodeId) -> Result<Option<String>, BackplaneError> {
        if !self.is_live(node).await? {
            return Ok(None);
        }
        let mut redis = self.query().await?;
        redis::cmd("HGET")
            .arg(self.keys.node_urls())
            .arg(node.to_string())
            .query_async(&mut redis)
            .await
            .map_err(unavailable)
    }

    /// Which node owns `connection_id`, if one claims it (see [`Self::is_live`]).
    pub async fn owner(&self, connection_id: &str) -> Result<Option<NodeId>, BackplaneError> {
        let mut redis = self.query().await?;
        let owner: Option<String> = redis::cmd("GET")
            .arg(self.keys.connection_owner(connection_id))
            .query_async(&mut redis)
            .await
            .map_err(unavailable)?;
        Ok(owner.and_then(|text| text.parse().ok()))
    }

    async fn run_command(self: Arc<Self>, command: Command) -> Result<Reply, BackplaneError> {
        let Some(connection_id) = command.connection_id() else {
            return Err(BackplaneError::UnknownConnection); // node commands go by `ask`
        };
        let Some(owner) = self.owner(connection_id).await? else {
            return Err(BackplaneError::UnknownConnection);
        };
        if owner == self.node() {
            // A claim left from before; the router already looked here.
            return Err(BackplaneError::UnknownConnection);
        }
        self.ask(owner, command).await
    }

    /// `user`'s connections on the other nodes where the user is.
    async fn user_connections_elsewhere(
        self: Arc<Self>,
        user: Arc<str>,
    ) -> Result<Vec<Arc<str>>, BackplaneError> {
        let mut redis = self.query().await?;
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.user_nodes(&user))
            .query_async(&mut redis)
            .await
            .map_err(unavailable)?;
        let asks = nodes
            .iter()
            .filter_map(|node| node.parse::<NodeId>().ok())
            .filter(|node| *node != self.node())
            .map(|node| {
                let command = Command::UserConnections { user: user.clone() };
                self.ask(node, command)
            });
        let mut connections = Vec::new();
        for answer in futures_util::future::join_all(asks).await {
            match answer {
                Ok(Reply::Connections(ids)) => connections.extend(ids),
                // A node that left: the user is not there any more.
                Ok(_) | Err(BackplaneError::UnknownConnection) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(connections)
    }

    /// Send `command` to `owner` and wait for its reply.
    async fn ask(&self, owner: NodeId, command: Command) -> Result<Reply, BackplaneError> {
        let request = self.numbers.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.pending.insert(request, reply);
        let body = wire::encode(&NodeMessage::Command {
            request,
            from: self.node(),
            command,
        });
        let result = async {
            let mut redis = self.query().await?;
            let receivers: u64 = redis::cmd("PUBLISH")
                .arg(self.keys.node_channel(owner))
                .arg(body)
                .query_async(&mut redis)
                .await
                .map_err(unavailable)?;
            // On a Redis Cluster the count is the receiving shard's alone: no answer there
            // is the command timeout's to tell.
            if receivers == 0 && !self.config.is_redis_cluster() {
                return Err(BackplaneError::UnknownConnection); // that node is gone
            }
            match tokio::time::timeout(self.config.command_timeout, answer).await {
                Ok(Ok(Some(reply))) => Ok(reply),
                Ok(Ok(None)) => Err(BackplaneError::UnknownConnection),
                Ok(Err(_)) => Err(BackplaneError::Unavailable("shutting down".into())),
                Err(_) => Err(BackplaneError::Timeout),
            }
        }
        .await;
        self.pending.remove(&request);
        result
    }

    async fn read_members(
        self: Arc<Self>,
        group: String,
    ) -> Result<Vec<MemberInfo>, BackplaneError> {
        let mut redis = self.query().await?;
        let key = self.keys.group_members(&group);
        type Records = Vec<(String, Vec<u8>)>;
        type Heartbeats = Vec<(String, u64)>;
        let (records, nodes): (Records, Heartbeats) = redis::pipe()
            .cmd("HGETALL")
            .arg(&key)
            .cmd("HGETALL")
            .arg(self.keys.nodes())
            .query_async(&mut redis)
            .await
            .map_err(unavailable)?;
        let now = now_millis();
        let live: Vec<NodeId> = nodes
            .into_iter()
            .filter(|(_, seen)| {
                now.saturating_sub(*seen) < self.config.node_timeout.as_millis() as u64
            })
            .filter_map(|(node, _)| node.parse().ok())
            .collect();
        let mut members = Vec::with_capacity(records.len());
        let mut dead = Vec::new();
        for (connection_id, record) in records {
            match wire::decode::<MemberRecord>(&record) {
                // This node's members come from its own tables.
                Ok(record) if record.node == self.node() => {}
                Ok(record) if live.contains(&record.node) => members.push(record.member),
                _ => dead.push(connection_id),
            }
        }
        if !dead.is_empty() {
            // Left by nodes that died: tidy up for the next reader.
            let _: redis::RedisResult<()> = redis::cmd("HDEL")
                .arg(&key)
                .arg(&dead)
                .query_async(&mut redis)
                .await;
        }
        Ok(members)
    }
}

fn unavailable(error: redis::RedisError) -> BackplaneError {
    BackplaneError::Unavailable(error.to_string())
}

pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Where a target's envelope goes.
/// Where a target's envelope goes (the key is an `Arc` clone, so the envelope can move on).
enum Route {
    Group(Arc<str>),
    Connection(Arc<str>),
    User(Arc<str>),
    All,
}

fn route(target: &Target) -> Route {
    match target {
        Target::Group(group) | Target::GroupExcept { group, .. } => Route::Group(group.clone()),
        Target::Groups(groups) if groups.len() == 1 => Route::Group(groups[0].clone()),
        Target::Connection(id) => Route::Connection(id.clone()),
        Target::Connections(ids) if ids.len() == 1 => Route::Connection(ids[0].clone()),
        Target::User(user) => Route::User(user.clone()),
        Target::Excluding { target, .. } => route(target),
        // Several groups: one message, each connection once, so not one per group stream.
        Target::All | Target::Groups(_) | Target::Connections(_) => Route::All,
    }
}

/// `RedisBackplane` behind an `Arc`, so command futures can own it.
pub struct Shared(pub Arc<RedisBackplane>);

impl Backplane for Shared {
    fn node(&self) -> Option<NodeId> {
        Some(self.0.node())
    }

    fn attach(&self, node: NodeId, handler: Weak<dyn BackplaneHandler>) {
        debug_assert_eq!(node, self.0.node());
        let _ = self.0.handler.set(handler);
    }

    fn publish(&self, envelope: Envelope) {
        let this = &self.0;
        // The envelope is encoded once, where it is: moved, never cloned.
        let op = match route(&envelope.target) {
            Route::Group(group) => Op::Group {
                group,
                number: 0, // numbered by the writer, in queue order
                body: wire::group_body(this.node(), &envelope),
            },
            Route::Connection(connection_id) => Op::Connection {
                connection_id,
                body: wire::encode(&NodeMessage::Deliver(envelope)),
            },
            Route::User(user) => Op::User {
                user,
                body: wire::encode(&NodeMessage::Deliver(envelope)),
            },
            Route::All => Op::All(wire::encode(&NodeMessage::Deliver(envelope))),
        };
        this.queue(op);
    }

    fn subscribe(&self, group: &str) {
        let _ = self.0.subs.send(SubOp::Subscribe(group.into()));
    }

    fn unsubscribe(&self, group: &str) {
        let _ = self.0.subs.send(SubOp::Unsubscribe(group.into()));
    }

    fn subscribed(&self) -> BoxFuture<'static, ()> {
        let (done, wait) = oneshot::channel();
        let _ = self.0.subs.send(SubOp::Barrier(done));
        // With Redis away the reader answers at once; this bounds a slow Redis.
        let limit = self.0.config.command_timeout;
        let node = self.0.node();
        Box::pin(async move {
            if tokio::time::timeout(limit, wait).await.is_err() {
                tracing::warn!(%node, "cluster: a join was acknowledged before its subscription was active (Redis is slow)");
            }
        })
    }

    fn command(&self, command: Command) -> BoxFuture<'static, Result<Reply, BackplaneError>> {
        Box::pin(self.0.clone().run_command(command))
    }

    fn connected(&self, session: &Session, first_of_user: bool) {
        self.0.queue(Op::Owner {
            connection_id: session.id().as_arc().clone(),
            owned: true,
        });
        if let (true, Some(user)) = (first_of_user, &session.identity().user_id) {
            self.0.queue(Op::UserHere {
                user: user.clone(),
                here: true,
            });
        }
    }

    fn disconnected(&self, session: &Session, last_of_user: bool) {
        self.0.queue(Op::Owner {
            connection_id: session.id().as_arc().clone(),
            owned: false,
        });
        if let (true, Some(user)) = (last_of_user, &session.identity().user_id) {
            self.0.queue(Op::UserHere {
                user: user.clone(),
                here: false,
            });
        }
    }

    fn joined(&self, group: &str, member: &MemberInfo) {
        let record = MemberRecord {
            node: self.0.node(),
            member: member.clone(),
        };
        self.0.queue(Op::Member {
            group: group.into(),
            connection_id: member.connection_id.clone(),
            record: Some(wire::encode(&record)),
        });
    }

    fn left(&self, group: &str, connection_id: &str) {
        self.0.queue(Op::Member {
            group: group.into(),
            connection_id: connection_id.into(),
            record: None,
        });
    }

    fn members(
        &self,
        group: &str,
    ) -> Option<BoxFuture<'static, Result<Vec<MemberInfo>, BackplaneError>>> {
        Some(Box::pin(self.0.clone().read_members(group.to_owned())))
    }

    fn user_connections(
        &self,
        user: &str,
    ) -> Option<BoxFuture<'static, Result<Vec<Arc<str>>, BackplaneError>>> {
        Some(Box::pin(
            self.0.clone().user_connections_elsewhere(user.into()),
        ))
    }
}
