//! What the router counts for metrics, per protocol: sessions by transport, messages and
//! bytes in and out, slow-consumer closes, and named events (handshakes, closes) that the
//! protocol endpoints report. Counting costs an atomic add per protocol per send, not per
//! recipient; readers take a [`StatsSnapshot`].

use crate::encode::{ProtocolId, Slot};
use dashmap::DashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

#[derive(Default)]
struct Counters {
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    slow_consumer_closes: AtomicU64,
}

/// Open now, and opened ever.
#[derive(Default)]
struct SessionCounts(AtomicI64, AtomicU64);

#[derive(Default)]
pub(crate) struct Stats {
    protocols: DashMap<ProtocolId, Arc<Counters>>,
    /// Sessions now, and ever, by protocol and transport.
    sessions: DashMap<(ProtocolId, &'static str), SessionCounts>,
    /// `(family, protocol, label)`: handshakes by outcome, closes by reason.
    events: DashMap<(&'static str, ProtocolId, &'static str), Arc<AtomicU64>>,
}

/// Counters as of one moment, for a scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub protocols: Vec<ProtocolStats>,
    pub sessions: Vec<SessionStats>,
    pub events: Vec<EventStats>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolStats {
    pub protocol: ProtocolId,
    pub messages_out: u64,
    pub bytes_out: u64,
    pub messages_in: u64,
    pub bytes_in: u64,
    pub slow_consumer_closes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStats {
    pub protocol: ProtocolId,
    pub transport: &'static str,
    pub open: i64,
    pub opened: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStats {
    pub family: &'static str,
    pub protocol: ProtocolId,
    pub label: &'static str,
    pub count: u64,
}

impl Stats {
    fn counters(&self, protocol: ProtocolId) -> Arc<Counters> {
        if let Some(counters) = self.protocols.get(&protocol) {
            return counters.clone();
        }
        self.protocols.entry(protocol).or_default().clone()
    }

    pub fn sent(&self, slots: &[Slot]) {
        for slot in slots {
            if slot.delivered == 0 && slot.overflowed == 0 {
                continue;
            }
            let counters = self.counters(slot.protocol);
            let bytes = slot.frame.as_ref().map_or(0, |f| f.len() as u64);
            counters.messages_out.fetch_add(slot.delivered, Relaxed);
            counters
                .bytes_out
                .fetch_add(slot.delivered * bytes, Relaxed);
            counters
                .slow_consumer_closes
                .fetch_add(slot.overflowed, Relaxed);
        }
    }

    pub fn received(&self, protocol: ProtocolId, messages: u64, bytes: u64) {
        let counters = self.counters(protocol);
        counters.messages_in.fetch_add(messages, Relaxed);
        counters.bytes_in.fetch_add(bytes, Relaxed);
    }

    pub fn session(&self, protocol: ProtocolId, transport: &'static str, delta: i64) {
        let entry = self.sessions.entry((protocol, transport)).or_default();
        entry.0.fetch_add(delta, Relaxed);
        if delta > 0 {
            entry.1.fetch_add(delta as u64, Relaxed);
        }
    }

    pub fn event(&self, family: &'static str, protocol: ProtocolId, label: &'static str) {
        let counter = self
            .events
            .entry((family, protocol, label))
            .or_default()
            .clone();
        counter.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let mut snapshot = StatsSnapshot {
            protocols: self
                .protocols
                .iter()
                .map(|entry| ProtocolStats {
                    protocol: *entry.key(),
                    messages_out: entry.messages_out.load(Relaxed),
                    bytes_out: entry.bytes_out.load(Relaxed),
                    messages_in: entry.messages_in.load(Relaxed),
                    bytes_in: entry.bytes_in.load(Relaxed),
                    slow_consumer_closes: entry.slow_consumer_closes.load(Relaxed),
                })
                .collect(),
            sessions: self
                .sessions
                .iter()
                .map(|entry| SessionStats {
                    protocol: entry.key().0,
                    transport: entry.key().1,
                    open: entry.0.load(Relaxed),
                    opened: entry.1.load(Relaxed),
                })
                .collect(),
            events: self
                .events
                .iter()
                .map(|entry| EventStats {
                    family: entry.key().0,
                    protocol: entry.key().1,
                    label: entry.key().2,
                    count: entry.load(Relaxed),
                })
                .collect(),
        };
        snapshot.protocols.sort_by_key(|p| p.protocol.as_str());
        snapshot
            .sessions
            .sort_by_key(|s| (s.protocol.as_str(), s.transport));
        snapshot
            .events
            .sort_by_key(|e| (e.family, e.protocol.as_str(), e.label));
        snapshot
    }
}
