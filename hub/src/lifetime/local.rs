//! Group tables in this process's memory.
//!
//! A group is an insertion-ordered map from connection id to seat: join, leave and the
//! membership check (every `SendToGroup` to a private channel asks it) are O(1), where the
//! copy-on-write seat array that came before made filling a 19,000-member group take seconds.
//! A send fans out over a snapshot (`Arc<[Seat]>`) of the map, taken under the shard lock for
//! nanoseconds and walked with no lock at all, so sends never wait for joins. Churn only
//! invalidates the snapshot; the first send after it rebuilds it once, which costs what the
//! fan-out itself costs (a pass over the members).

use super::{Delivery, GroupError, LifetimeManager, Member, Membership};
use crate::broadcast::{Broadcast, Frames};
use async_trait::async_trait;
use dashmap::DashMap;
use indexmap::IndexMap;
use negotiate::{PushError, RandomId};
use parking_lot::Mutex;
use std::sync::Arc;

#[derive(Clone)]
struct Seat {
    member: Arc<Member>,
    membership: Membership,
}

#[derive(Default)]
struct Group {
    seats: IndexMap<Arc<str>, Seat>,
    /// The seats as of the last send, or `None` after churn. Behind its own lock so that
    /// senders, who hold the shard only for reading, can rebuild it.
    snapshot: Mutex<Option<Arc<[Seat]>>>,
}

impl Group {
    fn changed(&mut self) {
        *self.snapshot.get_mut() = None;
    }

    fn snapshot(&self) -> Arc<[Seat]> {
        let mut snapshot = self.snapshot.lock();
        snapshot
            .get_or_insert_with(|| self.seats.values().cloned().collect())
            .clone()
    }
}

#[derive(Default)]
pub struct LocalLifetimeManager {
    connections: DashMap<Arc<str>, Arc<Member>>,
    groups: DashMap<Arc<str>, Group>,
}

impl LocalLifetimeManager {
    pub fn new() -> Self {
        Self::default()
    }

    fn leave(&self, group: &str, connection_id: &str) {
        self.groups.remove_if_mut(group, |_, group| {
            if group.seats.swap_remove(connection_id).is_some() {
                group.changed();
            }
            group.seats.is_empty()
        });
    }

    /// Number of groups with at least one member.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    fn seats(&self, group: &str) -> Option<Arc<[Seat]>> {
        self.groups.get(group).map(|g| g.snapshot())
    }
}

fn deliver<'a>(members: impl Iterator<Item = &'a Arc<Member>>, message: &Broadcast) -> Delivery {
    let mut frames = Frames::new(message);
    let mut delivery = Delivery::default();
    for member in members {
        let Some(frame) = frames.for_encoder(&member.encoder) else {
            continue;
        };
        match member.outbox.push(frame) {
            Ok(()) => delivery.delivered += 1,
            Err(PushError::Overflow) => {
                delivery.overflowed += 1;
                tracing::warn!(
                    connection_id = %member.connection_id.redacted(),
                    "closing a slow consumer: its outbound queue is full"
                );
            }
            Err(PushError::Closed) => {}
        }
    }
    delivery.encodings = frames.encodings;
    delivery
}

#[async_trait]
impl LifetimeManager for LocalLifetimeManager {
    async fn on_connected(&self, member: Arc<Member>) {
        self.connections
            .insert(member.connection_id.as_arc().clone(), member);
    }

    async fn on_disconnected(&self, connection_id: &RandomId) {
        let Some((_, member)) = self.connections.remove(connection_id.as_str()) else {
            return;
        };
        let names = {
            let mut groups = member.groups.lock();
            groups.gone = true;
            std::mem::take(&mut groups.names)
        };
        for group in names {
            self.leave(&group, connection_id.as_str());
        }
    }

    async fn add_to_group(
        &self,
        connection_id: &str,
        group: &str,
        membership: Membership,
    ) -> Result<(), GroupError> {
        let member = self
            .connections
            .get(connection_id)
            .map(|m| m.clone())
            .ok_or(GroupError::UnknownConnection)?;
        // Lock order: the member's list, then a group shard. Disconnect takes the member's list
        // first too, so a join racing a disconnect either lands before it (and is undone by it)
        // or sees `gone`.
        let mut groups = member.groups.lock();
        if groups.gone {
            return Err(GroupError::UnknownConnection);
        }
        let name: Arc<str> = match groups.names.iter().find(|g| &***g == group) {
            Some(existing) => existing.clone(),
            None => {
                let name: Arc<str> = Arc::from(group);
                groups.names.push(name.clone());
                name
            }
        };
        let seat = Seat {
            member: member.clone(),
            membership,
        };
        let mut group = self.groups.entry(name).or_default();
        // A second join replaces the seat (a new readOnly flag) and keeps its place.
        group
            .seats
            .insert(member.connection_id.as_arc().clone(), seat);
        group.changed();
        Ok(())
    }

    async fn remove_from_group(&self, connection_id: &str, group: &str) -> Result<(), GroupError> {
        let member = self
            .connections
            .get(connection_id)
            .map(|m| m.clone())
            .ok_or(GroupError::UnknownConnection)?;
        let mut groups = member.groups.lock();
        groups.names.retain(|g| &**g != group);
        self.leave(group, connection_id);
        Ok(())
    }

    async fn membership(&self, connection_id: &str, group: &str) -> Option<Membership> {
        let group = self.groups.get(group)?;
        group.seats.get(connection_id).map(|s| s.membership)
    }

    async fn send_group(&self, group: &str, message: &Broadcast) -> Delivery {
        let Some(seats) = self.seats(group) else {
            return Delivery::default();
        };
        deliver(seats.iter().map(|s| &s.member), message)
    }

    async fn send_connection(&self, connection_id: &str, message: &Broadcast) -> Delivery {
        let Some(member) = self.connections.get(connection_id).map(|m| m.clone()) else {
            return Delivery::default();
        };
        deliver(std::iter::once(&member), message)
    }

    async fn send_connections(&self, connection_ids: &[Arc<str>], message: &Broadcast) -> Delivery {
        let members: Vec<Arc<Member>> = connection_ids
            .iter()
            .filter_map(|id| self.connections.get(&**id).map(|m| m.clone()))
            .collect();
        deliver(members.iter(), message)
    }

    async fn is_connected(&self, connection_id: &str) -> bool {
        self.connections.contains_key(connection_id)
    }

    async fn identity(&self, connection_id: &str) -> Option<Arc<negotiate::Identity>> {
        self.connections
            .get(connection_id)
            .map(|m| m.identity.clone())
    }

    async fn send_all(&self, message: &Broadcast) -> Delivery {
        let members: Vec<Arc<Member>> = self.connections.iter().map(|m| m.clone()).collect();
        deliver(members.iter(), message)
    }

    fn connection_count(&self) -> usize {
        self.connections.len()
    }
}

#[cfg(test)]
mod tests;
