//! Who is connected and who is in which group: the seam a backplane (Redis) replaces.
//!
//! Membership tables are protocol-neutral: a [`Member`] is any connection with an outbox and
//! an [`Encoder`], whatever protocol it speaks.

mod local;

pub use local::LocalLifetimeManager;

use crate::broadcast::{Broadcast, Encoder};
use async_trait::async_trait;
use negotiate::{Identity, Outbox, RandomId};
use parking_lot::Mutex;
use std::sync::Arc;

/// One connection as the group tables see it.
pub struct Member {
    pub connection_id: RandomId,
    pub identity: Arc<Identity>,
    pub encoder: Arc<dyn Encoder>,
    pub outbox: Outbox,
    /// The groups this member is in, so leaving everything on disconnect touches only those.
    pub(crate) groups: Mutex<MemberGroups>,
}

#[derive(Default)]
pub(crate) struct MemberGroups {
    pub names: Vec<Arc<str>>,
    /// Set on disconnect: no group may take the member after that.
    pub gone: bool,
}

impl Member {
    pub fn new(
        connection_id: RandomId,
        identity: Arc<Identity>,
        encoder: Arc<dyn Encoder>,
        outbox: Outbox,
    ) -> Arc<Self> {
        Arc::new(Self {
            connection_id,
            identity,
            encoder,
            outbox,
            groups: Mutex::new(MemberGroups::default()),
        })
    }
}

/// How a connection belongs to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// Receives but may not send (private channels joined with `readOnly: true`).
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("no connection with that id")]
    UnknownConnection,
}

/// The outcome of a send, for logs, metrics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Members whose outbox took the frame.
    pub delivered: usize,
    /// Members closed as slow consumers by this send.
    pub overflowed: usize,
    /// Times the message was encoded (at most one per protocol present).
    pub encodings: usize,
}

#[async_trait]
pub trait LifetimeManager: Send + Sync + 'static {
    async fn on_connected(&self, member: Arc<Member>);
    async fn on_disconnected(&self, connection_id: &RandomId);
    async fn add_to_group(
        &self,
        connection_id: &str,
        group: &str,
        membership: Membership,
    ) -> Result<(), GroupError>;
    async fn remove_from_group(&self, connection_id: &str, group: &str) -> Result<(), GroupError>;
    async fn membership(&self, connection_id: &str, group: &str) -> Option<Membership>;
    async fn send_group(&self, group: &str, message: &Broadcast) -> Delivery;
    async fn send_connection(&self, connection_id: &str, message: &Broadcast) -> Delivery;
    /// One message to several connections, encoded at most once per protocol.
    async fn send_connections(&self, connection_ids: &[Arc<str>], message: &Broadcast) -> Delivery;
    /// Whether the connection is connected (to this process or, with a backplane, anywhere).
    async fn is_connected(&self, connection_id: &str) -> bool;
    /// The identity a connected connection belongs to.
    async fn identity(&self, connection_id: &str) -> Option<Arc<Identity>>;
    async fn send_all(&self, message: &Broadcast) -> Delivery;
    /// Connections on this process.
    fn connection_count(&self) -> usize;
}
