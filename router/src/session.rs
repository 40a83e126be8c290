//! One connection of any protocol as the router sees it: who it is, how its frames are made,
//! where they go, and the groups it is in.

use crate::encode::{Encoder, ProtocolId};
use indexmap::IndexMap;
use parking_lot::{Mutex, MutexGuard};
use rt_core::{Identity, Outbox, RandomId};
use std::sync::Arc;

/// How a connection belongs to a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Membership {
    /// Receives but may not send (private channels joined with `readOnly: true`).
    pub read_only: bool,
}

pub struct Session {
    id: RandomId,
    identity: Arc<Identity>,
    encoder: Arc<dyn Encoder>,
    outbox: Outbox,
    /// How the connection reaches this server (`websockets`, `sse`, …), for metrics.
    transport: &'static str,
    state: Mutex<SessionState>,
}

#[derive(Default)]
pub(crate) struct SessionState {
    /// The groups this session is in: leaving everything on disconnect touches only those,
    /// and the membership check is one lookup here.
    pub groups: IndexMap<Arc<str>, Membership>,
    /// Set on disconnect, under this lock: no group, subscription or command may take the
    /// session after that.
    pub gone: bool,
}

impl Session {
    pub fn new(
        id: RandomId,
        identity: Arc<Identity>,
        encoder: Arc<dyn Encoder>,
        outbox: Outbox,
    ) -> Arc<Self> {
        Self::on_transport(id, identity, encoder, outbox, "unknown")
    }

    /// [`Session::new`] naming the transport the connection uses.
    pub fn on_transport(
        id: RandomId,
        identity: Arc<Identity>,
        encoder: Arc<dyn Encoder>,
        outbox: Outbox,
        transport: &'static str,
    ) -> Arc<Self> {
        Arc::new(Self {
            id,
            identity,
            encoder,
            outbox,
            transport,
            state: Mutex::new(SessionState::default()),
        })
    }

    pub fn transport(&self) -> &'static str {
        self.transport
    }

    pub fn id(&self) -> &RandomId {
        &self.id
    }

    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    pub fn protocol(&self) -> ProtocolId {
        self.encoder.protocol()
    }

    pub fn encoder(&self) -> &dyn Encoder {
        &*self.encoder
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// How this session is in `group`, if it is.
    pub fn membership(&self, group: &str) -> Option<Membership> {
        self.state.lock().groups.get(group).copied()
    }

    /// The groups this session is in, in the order it joined them.
    pub fn groups(&self) -> Vec<(Arc<str>, Membership)> {
        let state = self.state.lock();
        state.groups.iter().map(|(g, m)| (g.clone(), *m)).collect()
    }

    pub fn is_gone(&self) -> bool {
        self.state.lock().gone
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id.redacted())
            .field("protocol", &self.protocol())
            .finish_non_exhaustive()
    }
}
