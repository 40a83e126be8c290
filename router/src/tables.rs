//! Who is connected, who is in which group, which connections each user has.
//!
//! A group is an insertion-ordered map from connection id to seat: join, leave and lookups are
//! O(1) (the copy-on-write seat array that came before made filling a 19,000-member group take
//! seconds). A send fans out over a snapshot (`Arc<[Seat]>`) of the map, taken under the shard
//! lock for nanoseconds and walked with no lock at all, so sends never wait for joins. Churn
//! only invalidates the snapshot; the first send after it rebuilds it once, which costs what
//! the fan-out itself costs (a pass over the members).

use crate::session::{Membership, Session};
use dashmap::DashMap;
use indexmap::IndexMap;
use parking_lot::Mutex;
use std::sync::Arc;

#[derive(Clone)]
pub(crate) struct Seat {
    pub session: Arc<Session>,
    pub membership: Membership,
}

/// The members of one group (or one user's connections).
#[derive(Default)]
pub(crate) struct Seats {
    pub seats: IndexMap<Arc<str>, Seat>,
    /// Messages sent to the group on this node since it got its first member here (one count
    /// per send, whatever the number of members), for channel message rates.
    pub messages: std::sync::atomic::AtomicU64,
    /// The seats as of the last send, or `None` after churn. Behind its own lock so that
    /// senders, who hold the shard only for reading, can rebuild it.
    snapshot: Mutex<Option<Arc<[Seat]>>>,
}

impl Seats {
    fn changed(&mut self) {
        *self.snapshot.get_mut() = None;
    }

    pub fn snapshot(&self) -> Arc<[Seat]> {
        let mut snapshot = self.snapshot.lock();
        snapshot
            .get_or_insert_with(|| self.seats.values().cloned().collect())
            .clone()
    }
}

/// Whether a join or leave changed whether this node has members of the group (what a
/// backplane's node-level subscription follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    Unchanged,
    First,
    Last,
}

#[derive(Default)]
pub(crate) struct Tables {
    pub sessions: DashMap<Arc<str>, Arc<Session>>,
    pub groups: DashMap<Arc<str>, Seats>,
    pub users: DashMap<Arc<str>, Seats>,
}

impl Tables {
    /// Seat `session` in `name`. `on_presence` runs under the group's lock, so backplane
    /// subscribe and unsubscribe calls for one group happen in the order of the table changes.
    pub fn seat(
        table: &DashMap<Arc<str>, Seats>,
        name: Arc<str>,
        seat: Seat,
        on_presence: impl FnOnce(Presence),
    ) {
        let mut seats = table.entry(name).or_default();
        let first = seats.seats.is_empty();
        // A second join replaces the seat (a new readOnly flag) and keeps its place.
        seats.seats.insert(seat.session.id().as_arc().clone(), seat);
        seats.changed();
        on_presence(if first {
            Presence::First
        } else {
            Presence::Unchanged
        });
    }

    pub fn unseat(
        table: &DashMap<Arc<str>, Seats>,
        name: &str,
        connection_id: &str,
        on_presence: impl FnOnce(Presence),
    ) {
        table.remove_if_mut(name, |_, seats| {
            if seats.seats.swap_remove(connection_id).is_some() {
                seats.changed();
            }
            let empty = seats.seats.is_empty();
            if empty {
                on_presence(Presence::Last);
            }
            empty
        });
    }

    pub fn snapshot(table: &DashMap<Arc<str>, Seats>, name: &str) -> Option<Arc<[Seat]>> {
        table.get(name).map(|seats| seats.snapshot())
    }

    /// The snapshot of a group a message is being sent to, counting the send.
    pub fn sending_to(table: &DashMap<Arc<str>, Seats>, name: &str) -> Option<Arc<[Seat]>> {
        table.get(name).map(|seats| {
            seats
                .messages
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            seats.snapshot()
        })
    }
}
