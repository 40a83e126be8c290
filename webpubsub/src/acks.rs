//! The ack ids a connection's requests succeeded with: a repeat is answered `Duplicate`
//! without running it again. Bounded like the service's cache: the oldest are forgotten.

use std::collections::{HashSet, VecDeque};

#[derive(Debug)]
pub struct AckIds {
    seen: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl Default for AckIds {
    fn default() -> Self {
        Self::with_capacity(1000)
    }
}

impl AckIds {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            seen: HashSet::with_capacity(capacity.min(64)),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn contains(&self, ack_id: u64) -> bool {
        self.seen.contains(&ack_id)
    }

    /// Remember a request that succeeded (a failed one may be retried with its id).
    pub fn insert(&mut self, ack_id: u64) {
        if self.seen.insert(ack_id) {
            self.order.push_back(ack_id);
            if self.order.len() > self.capacity {
                if let Some(oldest) = self.order.pop_front() {
                    self.seen.remove(&oldest);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_ids_are_forgotten_past_the_capacity() {
        let mut ids = AckIds::with_capacity(2);
        ids.insert(1);
        ids.insert(2);
        ids.insert(2);
        assert!(ids.contains(1) && ids.contains(2));
        ids.insert(3);
        assert!(!ids.contains(1) && ids.contains(2) && ids.contains(3));
    }
}
