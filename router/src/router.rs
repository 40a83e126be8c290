//! The router: register sessions, join and leave groups, send to targets, list members.

use crate::backplane::{Backplane, BackplaneError, BackplaneHandler, Command, Envelope};
use crate::backplane::{NoBackplane, NodeId};
use crate::encode::{EncodeOnce, Frame, ProtocolId};
use crate::message::Outbound;
use crate::observer::SessionObserver;
use crate::session::{Membership, Session};
use crate::stats::{Stats, StatsSnapshot};
use crate::tables::{Presence, Seat, Tables};
use crate::target::{Scope, Target};
use parking_lot::RwLock;
use rt_core::{Identity, IdentityKind, PushError};
use std::collections::HashSet;
use std::sync::Arc;

mod remote;
pub use remote::Extension;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    #[error("no connection with that id")]
    UnknownConnection,
    #[error(transparent)]
    Backplane(BackplaneError),
}

impl From<BackplaneError> for RouterError {
    fn from(error: BackplaneError) -> Self {
        match error {
            BackplaneError::UnknownConnection => RouterError::UnknownConnection,
            other => RouterError::Backplane(other),
        }
    }
}

/// The outcome of a send on this node, for logs, metrics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Sessions whose outbox took the frame.
    pub delivered: usize,
    /// Sessions closed as slow consumers by this send.
    pub overflowed: usize,
    /// Times the message was encoded (at most one per protocol present).
    pub encodings: usize,
}

/// One member of a group, as presence lists show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberInfo {
    pub connection_id: Arc<str>,
    pub identity: Arc<Identity>,
    pub protocol: ProtocolId,
    pub read_only: bool,
}

impl MemberInfo {
    fn of(session: &Session, membership: Membership) -> Self {
        Self {
            connection_id: session.id().as_arc().clone(),
            identity: session.identity().clone(),
            protocol: session.protocol(),
            read_only: membership.read_only,
        }
    }
}

/// A page of a group's members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// Members of the group on this node.
    pub count: usize,
    pub members: Vec<MemberInfo>,
}

struct Inner {
    node: NodeId,
    tables: Tables,
    observers: RwLock<Vec<Arc<dyn SessionObserver>>>,
    extensions: RwLock<std::collections::HashMap<Arc<str>, Arc<dyn Extension>>>,
    backplane: Arc<dyn Backplane>,
    stats: Stats,
}

/// Cheap to clone: clones share one group space.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

impl Router {
    /// A router on its own (no other process).
    pub fn new() -> Self {
        Self::with_backplane(Arc::new(NoBackplane))
    }

    /// A router that shares its group space with other nodes through `backplane`.
    pub fn with_backplane(backplane: Arc<dyn Backplane>) -> Self {
        let node = backplane.node().unwrap_or_else(NodeId::random);
        let inner = Arc::new(Inner {
            node,
            tables: Tables::default(),
            observers: RwLock::new(Vec::new()),
            extensions: RwLock::default(),
            backplane: backplane.clone(),
            stats: Stats::default(),
        });
        let handler: Arc<dyn BackplaneHandler> = inner.clone();
        backplane.attach(node, Arc::downgrade(&handler));
        Self { inner }
    }

    pub fn node(&self) -> NodeId {
        self.inner.node
    }

    /// Hear every session's connect and disconnect from now on.
    pub fn observe(&self, observer: Arc<dyn SessionObserver>) {
        self.inner.observers.write().push(observer);
    }

    /// Make `session` reachable until the returned guard is dropped (or
    /// [`Registration::unregister`]ed): then it leaves every group and observers hear it.
    #[must_use = "dropping the registration disconnects the session"]
    pub fn register(&self, session: Arc<Session>) -> Registration {
        let id = session.id().as_arc().clone();
        self.inner
            .tables
            .sessions
            .insert(id.clone(), session.clone());
        let mut first_of_user = false;
        if let (IdentityKind::User, Some(user)) =
            (session.identity().kind, &session.identity().user_id)
        {
            let seat = Seat {
                session: session.clone(),
                membership: Membership::default(),
            };
            Tables::seat(&self.inner.tables.users, user.clone(), seat, |presence| {
                first_of_user = presence == Presence::First;
            });
        }
        self.inner.backplane.connected(&session, first_of_user);
        self.inner
            .stats
            .session(session.protocol(), session.transport(), 1);
        for observer in self.observers() {
            observer.connected(&session);
        }
        Registration {
            router: self.clone(),
            session,
        }
    }

    fn observers(&self) -> Vec<Arc<dyn SessionObserver>> {
        self.inner.observers.read().clone()
    }

    fn unregister(&self, session: &Arc<Session>) {
        let id = session.id().as_str();
        // Only the registration that put this session in the table removes it (a session id
        // reused by a new registration is not this one's to remove).
        self.inner
            .tables
            .sessions
            .remove_if(id, |_, current| Arc::ptr_eq(current, session));
        let groups = {
            let mut state = session.state();
            state.gone = true;
            std::mem::take(&mut state.groups)
        };
        for (group, _) in groups {
            self.inner.unseat_group(&group, id);
        }
        let mut last_of_user = false;
        if let (IdentityKind::User, Some(user)) =
            (session.identity().kind, &session.identity().user_id)
        {
            Tables::unseat(&self.inner.tables.users, user, id, |presence| {
                last_of_user = presence == Presence::Last;
            });
        }
        self.inner.backplane.disconnected(session, last_of_user);
        self.inner
            .stats
            .session(session.protocol(), session.transport(), -1);
        for observer in self.observers() {
            observer.disconnected(session);
        }
    }

    /// The session with this id on this node.
    pub fn session(&self, connection_id: &str) -> Option<Arc<Session>> {
        self.inner
            .tables
            .sessions
            .get(connection_id)
            .map(|s| s.clone())
    }

    /// Run `f` with the session while it cannot disconnect: a disconnect waits until `f`
    /// returns, and observers hear it after. Whatever `f` attaches to the session (a change
    /// subscription) is therefore either seen by the observers' cleanup or never made. `None`
    /// when there is no such session here, or it is already gone.
    pub fn with_live_session<R>(
        &self,
        connection_id: &str,
        f: impl FnOnce(&Arc<Session>) -> R,
    ) -> Option<R> {
        let session = self.session(connection_id)?;
        let state = session.state();
        if state.gone {
            return None;
        }
        let result = f(&session);
        drop(state);
        Some(result)
    }

    /// Put a connection of any node in `group`. Joining again replaces the membership.
    pub async fn join(
        &self,
        connection_id: &str,
        group: &str,
        membership: Membership,
    ) -> Result<(), RouterError> {
        if let Some(session) = self.session(connection_id) {
            self.inner.join_local(&session, group, membership)?;
            self.inner.backplane.subscribed().await;
            return Ok(());
        }
        let command = Command::Join {
            connection_id: connection_id.into(),
            group: group.into(),
            membership,
        };
        self.inner.backplane.command(command).await?;
        Ok(())
    }

    /// Put a session of this node in `group` at once (a protocol endpoint joining the session
    /// it just registered; no backplane round trip).
    pub fn join_session(
        &self,
        session: &Arc<Session>,
        group: &str,
        membership: Membership,
    ) -> Result<(), RouterError> {
        self.inner.join_local(session, group, membership)
    }

    /// Take a connection of any node out of `group` (a no-op when it is not in it).
    pub async fn leave(&self, connection_id: &str, group: &str) -> Result<(), RouterError> {
        if let Some(session) = self.session(connection_id) {
            self.inner.leave_local(&session, group);
            return Ok(());
        }
        let command = Command::Leave {
            connection_id: connection_id.into(),
            group: group.into(),
        };
        self.inner.backplane.command(command).await?;
        Ok(())
    }

    /// How a connection of this node is in `group`.
    pub fn membership(&self, connection_id: &str, group: &str) -> Option<Membership> {
        self.session(connection_id)?.membership(group)
    }

    /// Deliver `message` to `target`: here, and with [`Scope::Cluster`] through the backplane
    /// (one publication, whatever the number of recipients). Never waits; a recipient whose
    /// queue is full is closed alone.
    pub fn send(&self, target: Target, scope: Scope, message: Arc<Outbound>) -> Delivery {
        let delivery = self.inner.deliver(&target, &message);
        if scope == Scope::Cluster {
            self.inner.backplane.publish(Envelope {
                origin: self.inner.node,
                target,
                message,
            });
        }
        delivery
    }

    /// The members of `group` on this node, `limit` of them from `offset` on, in join order.
    pub fn members(&self, group: &str, offset: usize, limit: usize) -> Members {
        let Some(seats) = Tables::snapshot(&self.inner.tables.groups, group) else {
            return Members::default();
        };
        Members {
            count: seats.len(),
            members: seats
                .iter()
                .skip(offset)
                .take(limit)
                .map(|seat| MemberInfo::of(&seat.session, seat.membership))
                .collect(),
        }
    }

    /// The ids of `user`'s connections on this node (sessions of identity kind `User`), in the
    /// order they connected: what acting on "every connection of a user" needs beyond a send
    /// (joining or leaving groups), since those go by connection id.
    pub fn user_connections(&self, user: &str) -> Vec<Arc<str>> {
        Tables::snapshot(&self.inner.tables.users, user)
            .map(|seats| {
                seats
                    .iter()
                    .map(|seat| seat.session.id().as_arc().clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sessions on this node.
    pub fn connection_count(&self) -> usize {
        self.inner.tables.sessions.len()
    }

    /// This node's sessions, `limit` of them from `offset` on, ordered by connection id (a
    /// stable order, so pages do not shift as the map rehashes), with the total count.
    pub fn sessions(&self, offset: usize, limit: usize) -> (usize, Vec<Arc<Session>>) {
        let mut all: Vec<Arc<Session>> = self
            .inner
            .tables
            .sessions
            .iter()
            .map(|s| s.clone())
            .collect();
        all.sort_unstable_by(|a, b| a.id().as_str().cmp(b.id().as_str()));
        let count = all.len();
        (count, all.into_iter().skip(offset).take(limit).collect())
    }

    /// Groups with at least one member on this node.
    pub fn group_count(&self) -> usize {
        self.inner.tables.groups.len()
    }

    /// Each group with members on this node: its name, how many, and the messages sent to it
    /// here since it got its first member here.
    pub fn for_each_group(&self, mut visit: impl FnMut(&str, usize, u64)) {
        for group in self.inner.tables.groups.iter() {
            let messages = group.messages.load(std::sync::atomic::Ordering::Relaxed);
            visit(group.key(), group.seats.len(), messages);
        }
    }

    /// Bytes waiting in this node's outboxes.
    pub fn queued_bytes(&self) -> usize {
        let sessions = &self.inner.tables.sessions;
        sessions.iter().map(|s| s.outbox().queued_bytes()).sum()
    }

    /// The counters so far (see [`StatsSnapshot`]).
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// A protocol endpoint read `messages` messages of `bytes` bytes from its clients.
    pub fn count_received(&self, protocol: ProtocolId, messages: u64, bytes: u64) {
        self.inner.stats.received(protocol, messages, bytes);
    }

    /// A protocol endpoint's event for metrics: `family` is what happened (`handshake`,
    /// `close`), `label` how (`ok`, `timeout`, `client`, …).
    pub fn count_event(&self, family: &'static str, protocol: ProtocolId, label: &'static str) {
        self.inner.stats.event(family, protocol, label);
    }
}

impl Inner {
    fn join_local(
        &self,
        session: &Arc<Session>,
        group: &str,
        membership: Membership,
    ) -> Result<(), RouterError> {
        // Lock order: the session, then a group shard. Disconnect takes the session first too,
        // so a join racing a disconnect either lands before it (and is undone by it) or sees
        // `gone`.
        let mut state = session.state();
        if state.gone {
            return Err(RouterError::UnknownConnection);
        }
        let name: Arc<str> = match state.groups.get_key_value(group) {
            Some((existing, _)) => existing.clone(),
            None => group.into(),
        };
        state.groups.insert(name.clone(), membership);
        let seat = Seat {
            session: session.clone(),
            membership,
        };
        let backplane = &self.backplane;
        Tables::seat(&self.tables.groups, name, seat, |presence| {
            if presence == Presence::First {
                backplane.subscribe(group);
            }
        });
        backplane.joined(group, &MemberInfo::of(session, membership));
        Ok(())
    }

    fn leave_local(&self, session: &Arc<Session>, group: &str) {
        let mut state = session.state();
        if state.groups.swap_remove(group).is_some() {
            self.unseat_group(group, session.id().as_str());
        }
    }

    fn unseat_group(&self, group: &str, connection_id: &str) {
        let backplane = &self.backplane;
        // Callers only unseat what the session's own table says it is in.
        Tables::unseat(&self.tables.groups, group, connection_id, |presence| {
            if presence == Presence::Last {
                backplane.unsubscribe(group);
            }
        });
        backplane.left(group, connection_id);
    }

    /// The local part of a send.
    fn deliver(&self, target: &Target, message: &Outbound) -> Delivery {
        let mut frames = EncodeOnce::new(message);
        let mut delivery = Delivery::default();
        self.recipients(target, &mut |session| {
            push(session, &mut frames, &mut delivery)
        });
        delivery.encodings = frames.encodings();
        self.stats.sent(frames.slots());
        delivery
    }

    /// Call `to` once for each local connection `target` names.
    fn recipients(&self, target: &Target, to: &mut dyn FnMut(&Session)) {
        let tables = &self.tables;
        match target {
            Target::All => {
                let sessions: Vec<Arc<Session>> =
                    tables.sessions.iter().map(|s| s.clone()).collect();
                for session in &sessions {
                    to(session);
                }
            }
            Target::Group(group) => {
                if let Some(seats) = Tables::sending_to(&tables.groups, group) {
                    for seat in seats.iter() {
                        to(&seat.session);
                    }
                }
            }
            Target::GroupExcept { group, except } => {
                if let Some(seats) = Tables::sending_to(&tables.groups, group) {
                    for seat in seats
                        .iter()
                        .filter(|s| s.session.id().as_str() != &**except)
                    {
                        to(&seat.session);
                    }
                }
            }
            Target::Groups(groups) => {
                let mut seen = HashSet::new();
                for group in groups {
                    let Some(seats) = Tables::sending_to(&tables.groups, group) else {
                        continue;
                    };
                    for seat in seats.iter() {
                        if seen.insert(seat.session.id().as_arc().clone()) {
                            to(&seat.session);
                        }
                    }
                }
            }
            Target::Connection(id) => {
                if let Some(session) = tables.sessions.get(&**id).map(|s| s.clone()) {
                    to(&session);
                }
            }
            Target::Connections(ids) => {
                let mut seen = HashSet::new();
                for id in ids {
                    if !seen.insert(id) {
                        continue;
                    }
                    if let Some(session) = tables.sessions.get(&**id).map(|s| s.clone()) {
                        to(&session);
                    }
                }
            }
            Target::User(user) => {
                if let Some(seats) = Tables::snapshot(&tables.users, user) {
                    for seat in seats.iter() {
                        to(&seat.session);
                    }
                }
            }
            Target::Excluding { target, except } => {
                let mut inner = |session: &Session| {
                    if !except.iter().any(|id| **id == *session.id().as_str()) {
                        to(session);
                    }
                };
                self.recipients(target, &mut inner);
            }
        }
    }
}

fn push(session: &Session, frames: &mut EncodeOnce<'_>, delivery: &mut Delivery) {
    let closing = matches!(frames.message(), Outbound::Close(_));
    let slot = frames.slot(session.encoder());
    let pushed = match (&slot.frame, closing) {
        (Some(Frame::Whole(frame)), true) => {
            session.outbox().push_and_close(frame.clone());
            Ok(())
        }
        (_, true) => {
            session.outbox().close();
            Ok(())
        }
        (Some(frame), false) => frame.push_to(session.outbox()),
        (None, false) => return,
    };
    match pushed {
        Ok(()) => {
            slot.delivered += 1;
            delivery.delivered += 1;
        }
        Err(PushError::Overflow) => {
            slot.overflowed += 1;
            delivery.overflowed += 1;
            tracing::warn!(
                connection_id = %session.id().redacted(),
                protocol = %session.protocol(),
                "closing a slow consumer: its outbound queue is full"
            );
        }
        Err(PushError::Closed) => {}
    }
}

/// Keeps a session registered; dropping it disconnects the session from the router.
pub struct Registration {
    router: Router,
    session: Arc<Session>,
}

impl Registration {
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Disconnect now (the same as dropping it).
    pub fn unregister(self) {}
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.router.unregister(&self.session);
    }
}
