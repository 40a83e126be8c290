//! The seam between this process's router and the others' (Redis later; a loopback between
//! routers of one process for tests and for embedding several routers).
//!
//! What crosses it:
//! - **Messages**, published once per send (never once per recipient); each node delivers to
//!   its own members, encoding once per protocol present there.
//! - **Group interest**: a node subscribes to a group when its first local member joins and
//!   unsubscribes when its last one leaves (node-level refcounts), so a group message reaches
//!   only nodes with members.
//! - **Commands** on a connection another node owns (join, leave, who is it, close), answered
//!   by that node with a [`Reply`], as ASP.NET Core's Redis backplane acknowledges group
//!   changes.

use crate::message::Outbound;
use crate::router::MemberInfo;
use crate::session::Membership;
use crate::session::Session;
use crate::target::Target;
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use rt_core::Identity;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Weak};

/// Which router a message came from, so a node can skip its own publications.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

impl NodeId {
    /// Unique among the nodes of a cluster with overwhelming odds; not a secret.
    pub fn random() -> Self {
        Self(rand::random())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for NodeId {
    type Err = std::num::ParseIntError;

    /// The 16 hex digits that `Display` writes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(Self)
    }
}

/// A send that other nodes deliver to their own members.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub origin: NodeId,
    pub target: Target,
    pub message: Arc<Outbound>,
}

/// An action on a connection, run by the node that owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Join {
        connection_id: Arc<str>,
        group: Arc<str>,
        membership: Membership,
    },
    Leave {
        connection_id: Arc<str>,
        group: Arc<str>,
    },
    /// Whose connection it is (the ownership checks of the REST API).
    Identify { connection_id: Arc<str> },
    /// The groups the connection is in.
    Groups { connection_id: Arc<str> },
    /// An application's own action on a connection (see [`crate::Router::extend`]), run
    /// by the owner with the connection held live.
    Extension {
        connection_id: Arc<str>,
        name: Arc<str>,
        body: serde_json::Value,
    },
    /// A user's connections on the node that runs it (not about one connection: sent to
    /// each node where the user is).
    UserConnections { user: Arc<str> },
}

impl Command {
    /// The connection the command is about; `None` for commands about a node.
    pub fn connection_id(&self) -> Option<&str> {
        match self {
            Command::Join { connection_id, .. }
            | Command::Leave { connection_id, .. }
            | Command::Identify { connection_id }
            | Command::Groups { connection_id }
            | Command::Extension { connection_id, .. } => Some(connection_id),
            Command::UserConnections { .. } => None,
        }
    }
}

/// The owner's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    Done,
    Identity(Arc<Identity>),
    Groups(Vec<Arc<str>>),
    Connections(Vec<Arc<str>>),
    /// An extension's answer (its own success or refusal).
    Extension(serde_json::Value),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackplaneError {
    #[error("no node has that connection")]
    UnknownConnection,
    #[error("the backplane is unavailable: {0}")]
    Unavailable(String),
    #[error("the node that owns the connection did not answer in time")]
    Timeout,
}

/// The router side a backplane delivers into.
pub trait BackplaneHandler: Send + Sync + 'static {
    /// Deliver a message published by another node to this node's members.
    fn deliver(&self, envelope: &Envelope);
    /// Run a command if this node owns its connection; `None` if it does not.
    fn execute(&self, command: &Command) -> Option<Reply>;
}

/// Implementations must never wait in `publish`, `subscribe` or `unsubscribe`: they are called
/// on the send path and under a group's lock (which keeps one group's subscribe and unsubscribe
/// in order). Queue the work instead.
pub trait Backplane: Send + Sync + 'static {
    /// The node id this backplane is known by to the others, if it has one already (a
    /// configured cluster node); otherwise the router picks a random one.
    fn node(&self) -> Option<NodeId> {
        None
    }
    /// Called once, when the router is built.
    fn attach(&self, node: NodeId, handler: Weak<dyn BackplaneHandler>);
    fn publish(&self, envelope: Envelope);
    fn subscribe(&self, group: &str);
    fn unsubscribe(&self, group: &str);
    /// Resolves once every subscription asked for so far is active, so that a join that
    /// awaits it is reached by any send after it, from any node. Must not wait long when the
    /// network is away (the join stands locally).
    fn subscribed(&self) -> BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }
    /// Run `command` on the node that owns its connection and wait for that node's reply.
    fn command(&self, command: Command) -> BoxFuture<'static, Result<Reply, BackplaneError>>;

    // Bookkeeping for the cluster-wide views (who owns a connection, where a user is, the
    // members of a group). One process needs none of it: the defaults do nothing. Like
    // `publish`, these must queue rather than wait.

    /// `session` registered here; `first_of_user` when it is its user's first one here.
    fn connected(&self, _session: &Session, _first_of_user: bool) {}
    /// `session` is gone; `last_of_user` when its user has no other one here.
    fn disconnected(&self, _session: &Session, _last_of_user: bool) {}
    /// A member of this node joined `group` (or changed how it is in it).
    fn joined(&self, _group: &str, _member: &MemberInfo) {}
    fn left(&self, _group: &str, _connection_id: &str) {}
    /// The members of `group` on every node, in no particular order; `None` when this
    /// backplane keeps no cluster-wide presence (then this node's members are all of them).
    fn members(
        &self,
        _group: &str,
    ) -> Option<BoxFuture<'static, Result<Vec<MemberInfo>, BackplaneError>>> {
        None
    }
    /// `user`'s connections on the other nodes; `None` when there are no other nodes.
    fn user_connections(
        &self,
        _user: &str,
    ) -> Option<BoxFuture<'static, Result<Vec<Arc<str>>, BackplaneError>>> {
        None
    }
}

/// One process on its own.
#[derive(Debug, Default)]
pub struct NoBackplane;

impl Backplane for NoBackplane {
    fn attach(&self, _: NodeId, _: Weak<dyn BackplaneHandler>) {}
    fn publish(&self, _: Envelope) {}
    fn subscribe(&self, _: &str) {}
    fn unsubscribe(&self, _: &str) {}
    fn command(&self, _: Command) -> BoxFuture<'static, Result<Reply, BackplaneError>> {
        Box::pin(std::future::ready(Err(BackplaneError::UnknownConnection)))
    }
}

struct LoopbackNode {
    id: NodeId,
    handler: Weak<dyn BackplaneHandler>,
    groups: HashSet<Arc<str>>,
}

/// Routers of one process joined as if by a network: what one publishes, the others whose
/// members are in the target's groups deliver; commands reach the node that owns the
/// connection. Delivery is synchronous (deterministic tests); it only pushes onto outboxes.
#[derive(Default)]
pub struct LoopbackNetwork {
    nodes: Mutex<Vec<LoopbackNode>>,
}

impl LoopbackNetwork {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A backplane for one more router on this network.
    pub fn backplane(self: &Arc<Self>) -> Arc<LoopbackBackplane> {
        Arc::new(LoopbackBackplane {
            network: self.clone(),
            node: Mutex::new(None),
        })
    }

    /// Whether `node` is subscribed to `group` (for tests of the refcounts).
    pub fn is_subscribed(&self, node: NodeId, group: &str) -> bool {
        self.nodes
            .lock()
            .iter()
            .any(|n| n.id == node && n.groups.contains(group))
    }

    /// The handlers other than `origin` that `target` concerns, taken out of the lock so a
    /// delivery that publishes again cannot deadlock.
    fn recipients(&self, origin: NodeId, target: &Target) -> Vec<Arc<dyn BackplaneHandler>> {
        let nodes = self.nodes.lock();
        nodes
            .iter()
            .filter(|n| n.id != origin)
            .filter(|n| match target.groups() {
                Some(groups) => groups.iter().any(|g| n.groups.contains(g)),
                None => true,
            })
            .filter_map(|n| n.handler.upgrade())
            .collect()
    }
}

pub struct LoopbackBackplane {
    network: Arc<LoopbackNetwork>,
    node: Mutex<Option<NodeId>>,
}

impl LoopbackBackplane {
    fn with_node(&self, f: impl FnOnce(&mut LoopbackNode)) {
        let Some(id) = *self.node.lock() else { return };
        if let Some(node) = self.network.nodes.lock().iter_mut().find(|n| n.id == id) {
            f(node);
        }
    }
}

impl Backplane for LoopbackBackplane {
    fn attach(&self, node: NodeId, handler: Weak<dyn BackplaneHandler>) {
        *self.node.lock() = Some(node);
        self.network.nodes.lock().push(LoopbackNode {
            id: node,
            handler,
            groups: HashSet::new(),
        });
    }

    fn publish(&self, envelope: Envelope) {
        for handler in self.network.recipients(envelope.origin, &envelope.target) {
            handler.deliver(&envelope);
        }
    }

    fn subscribe(&self, group: &str) {
        self.with_node(|node| {
            node.groups.insert(group.into());
        });
    }

    fn unsubscribe(&self, group: &str) {
        self.with_node(|node| {
            node.groups.remove(group);
        });
    }

    fn command(&self, command: Command) -> BoxFuture<'static, Result<Reply, BackplaneError>> {
        let origin = *self.node.lock();
        let handlers: Vec<Arc<dyn BackplaneHandler>> = {
            let nodes = self.network.nodes.lock();
            nodes
                .iter()
                .filter(|n| Some(n.id) != origin)
                .filter_map(|n| n.handler.upgrade())
                .collect()
        };
        let reply = handlers
            .iter()
            .find_map(|handler| handler.execute(&command))
            .ok_or(BackplaneError::UnknownConnection);
        Box::pin(std::future::ready(reply))
    }

    fn user_connections(
        &self,
        user: &str,
    ) -> Option<BoxFuture<'static, Result<Vec<Arc<str>>, BackplaneError>>> {
        let origin = *self.node.lock();
        let handlers: Vec<Arc<dyn BackplaneHandler>> = {
            let nodes = self.network.nodes.lock();
            nodes
                .iter()
                .filter(|n| Some(n.id) != origin)
                .filter_map(|n| n.handler.upgrade())
                .collect()
        };
        let command = Command::UserConnections { user: user.into() };
        let mut connections = Vec::new();
        for handler in handlers {
            if let Some(Reply::Connections(ids)) = handler.execute(&command) {
                connections.extend(ids);
            }
        }
        Some(Box::pin(std::future::ready(Ok(connections))))
    }
}
