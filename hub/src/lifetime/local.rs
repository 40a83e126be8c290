//! Group tables in this process's memory.
//!
//! A group's member list is copy-on-write (`Arc<[Seat]>`): a send clones the `Arc` under a
//! shard lock held for nanoseconds and fans out with no lock at all, so sends never wait for
//! joins and a large group never blocks its shard while frames are queued. Joins and leaves
//! copy the list, which is the right trade for channels that are sent to far more often than
//! they are joined.

use super::{Delivery, GroupError, LifetimeManager, Member, Membership};
use crate::broadcast::{Broadcast, Frames};
use async_trait::async_trait;
use dashmap::DashMap;
use negotiate::{PushError, RandomId};
use std::sync::Arc;

#[derive(Clone)]
struct Seat {
    member: Arc<Member>,
    membership: Membership,
}

#[derive(Default)]
pub struct LocalLifetimeManager {
    connections: DashMap<Arc<str>, Arc<Member>>,
    groups: DashMap<Arc<str>, Arc<[Seat]>>,
}

impl LocalLifetimeManager {
    pub fn new() -> Self {
        Self::default()
    }

    fn leave(&self, group: &str, connection_id: &str) {
        self.groups.remove_if_mut(group, |_, seats| {
            if seats
                .iter()
                .any(|s| s.member.connection_id.as_str() == connection_id)
            {
                *seats = seats
                    .iter()
                    .filter(|s| s.member.connection_id.as_str() != connection_id)
                    .cloned()
                    .collect();
            }
            seats.is_empty()
        });
    }

    /// Number of groups with at least one member.
    pub fn group_count(&self) -> usize {
        self.groups.len()
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
        let mut entry = self.groups.entry(name).or_insert_with(|| Arc::from([]));
        let seats = entry.value_mut();
        let mut updated: Vec<Seat> = Vec::with_capacity(seats.len() + 1);
        updated.extend(
            seats
                .iter()
                .filter(|s| s.member.connection_id.as_str() != connection_id)
                .cloned(),
        );
        updated.push(seat);
        *seats = updated.into();
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
        let seats = self.groups.get(group)?.clone();
        seats
            .iter()
            .find(|s| s.member.connection_id.as_str() == connection_id)
            .map(|s| s.membership)
    }

    async fn send_group(&self, group: &str, message: &Broadcast) -> Delivery {
        let Some(seats) = self.groups.get(group).map(|s| s.clone()) else {
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
