//! The router's reach beyond this node: what asks another node (a connection's identity or
//! groups, a user's connections, the members of a group, an application's extension) and
//! what this node answers when another asks (`BackplaneHandler`).

use super::{Inner, MemberInfo, Members, Router, RouterError};
use crate::backplane::{BackplaneError, BackplaneHandler, Command, Envelope, Reply};
use crate::session::Session;
use crate::tables::Tables;
use rt_core::Identity;
use std::sync::Arc;

/// An application's own action on a connection, run on the node that owns it (a change
/// subscription, say), so that it works whichever node the request reached. `body` says
/// what to do; the answer, success or refusal, is the extension's own JSON.
pub trait Extension: Send + Sync + 'static {
    fn run(&self, session: &Arc<Session>, body: &serde_json::Value) -> serde_json::Value;
}

impl Router {
    /// The identity of a connection on any node; `Ok(None)` when no node has it, an error
    /// when the backplane could not tell (Redis away, the owner silent): callers answer
    /// "unavailable" then, not "no such connection".
    pub async fn identity(
        &self,
        connection_id: &str,
    ) -> Result<Option<Arc<Identity>>, RouterError> {
        if let Some(session) = self.session(connection_id) {
            return Ok(Some(session.identity().clone()));
        }
        let command = Command::Identify {
            connection_id: connection_id.into(),
        };
        match self.inner.backplane.command(command).await {
            Ok(Reply::Identity(identity)) => Ok(Some(identity)),
            Ok(_) | Err(BackplaneError::UnknownConnection) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// The groups a connection of any node is in.
    pub async fn groups_of(&self, connection_id: &str) -> Result<Vec<Arc<str>>, RouterError> {
        if let Some(session) = self.session(connection_id) {
            return Ok(session.groups().into_iter().map(|(g, _)| g).collect());
        }
        let command = Command::Groups {
            connection_id: connection_id.into(),
        };
        match self.inner.backplane.command(command).await? {
            Reply::Groups(groups) => Ok(groups),
            _ => Err(RouterError::UnknownConnection),
        }
    }

    /// The ids of `user`'s connections on every node: this node's first, in the order they
    /// connected.
    pub async fn cluster_user_connections(&self, user: &str) -> Result<Vec<Arc<str>>, RouterError> {
        let mut connections = self.user_connections(user);
        if let Some(elsewhere) = self.inner.backplane.user_connections(user) {
            connections.extend(elsewhere.await?);
        }
        Ok(connections)
    }

    /// Make `extension` reachable as `name` by [`Router::extend`] from every node (each node
    /// registers the same extensions).
    pub fn add_extension(&self, name: &str, extension: Arc<dyn Extension>) {
        self.inner.extensions.write().insert(name.into(), extension);
    }

    /// Run the extension `name` on a connection of any node, with the connection held live
    /// (see [`Router::with_live_session`]).
    pub async fn extend(
        &self,
        connection_id: &str,
        name: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, RouterError> {
        if self.session(connection_id).is_some() {
            return self
                .inner
                .run_extension(connection_id, name, &body)
                .ok_or(RouterError::UnknownConnection);
        }
        let command = Command::Extension {
            connection_id: connection_id.into(),
            name: name.into(),
            body,
        };
        match self.inner.backplane.command(command).await? {
            Reply::Extension(answer) => Ok(answer),
            _ => Err(RouterError::UnknownConnection),
        }
    }

    /// The members of `group` on every node: this node's first, in join order, then the
    /// others' ordered by connection id (a stable order for paging). Without a backplane
    /// that keeps presence, the same as [`Router::members`].
    pub async fn cluster_members(
        &self,
        group: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Members, RouterError> {
        let Some(everywhere) = self.inner.backplane.members(group) else {
            return Ok(self.members(group, offset, limit));
        };
        let local = self.members(group, 0, usize::MAX).members;
        let mut remote: Vec<MemberInfo> = everywhere
            .await?
            .into_iter()
            .filter(|m| self.session(&m.connection_id).is_none())
            .collect();
        remote.sort_unstable_by(|a, b| a.connection_id.cmp(&b.connection_id));
        let count = local.len() + remote.len();
        let members = local
            .into_iter()
            .chain(remote)
            .skip(offset)
            .take(limit)
            .collect();
        Ok(Members { count, members })
    }
}

impl Inner {
    /// `None` when there is no such live session here, or no such extension.
    fn run_extension(
        &self,
        connection_id: &str,
        name: &str,
        body: &serde_json::Value,
    ) -> Option<serde_json::Value> {
        let extension = self.extensions.read().get(name).cloned()?;
        let session = self.tables.sessions.get(connection_id).map(|s| s.clone())?;
        let state = session.state();
        if state.gone {
            return None;
        }
        let answer = extension.run(&session, body);
        drop(state);
        Some(answer)
    }
}

impl BackplaneHandler for Inner {
    fn deliver(&self, envelope: &Envelope) {
        if envelope.origin != self.node {
            Inner::deliver(self, &envelope.target, &envelope.message);
        }
    }

    fn execute(&self, command: &Command) -> Option<Reply> {
        let connection_id = match command {
            Command::UserConnections { user } => {
                let ids = Tables::snapshot(&self.tables.users, user)
                    .map(|seats| {
                        seats
                            .iter()
                            .map(|seat| seat.session.id().as_arc().clone())
                            .collect()
                    })
                    .unwrap_or_default();
                return Some(Reply::Connections(ids));
            }
            Command::Extension {
                connection_id,
                name,
                body,
            } => {
                return self
                    .run_extension(connection_id, name, body)
                    .map(Reply::Extension);
            }
            other => other.connection_id()?,
        };
        let session = self.tables.sessions.get(connection_id).map(|s| s.clone())?;
        match command {
            Command::Join {
                group, membership, ..
            } => self
                .join_local(&session, group, *membership)
                .ok()
                .map(|()| Reply::Done),
            Command::Leave { group, .. } => {
                self.leave_local(&session, group);
                Some(Reply::Done)
            }
            Command::Identify { .. } => Some(Reply::Identity(session.identity().clone())),
            Command::Groups { .. } => Some(Reply::Groups(
                session.groups().into_iter().map(|(g, _)| g).collect(),
            )),
            Command::Extension { .. } | Command::UserConnections { .. } => None,
        }
    }
}
