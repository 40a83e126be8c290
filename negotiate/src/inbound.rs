//! The per-connection inbound queue: transports push chunks, the application reads them in
//! order, and a full queue makes transports wait (backpressure onto the socket or POST).
//!
//! Why not `tokio::sync::mpsc`: its channel allocates a 32-slot block and a cache-padded
//! channel up front, ~1.5 KB that every idle connection keeps. This queue allocates nothing
//! until a chunk arrives and gives a grown buffer back once drained, so an idle connection
//! costs one small `Arc`.

use crate::connection::Inbound;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::Notify;

/// A drained buffer larger than this is released (a burst should not stay resident).
const RETAINED_CHUNKS: usize = 4;

struct State {
    chunks: VecDeque<Inbound>,
    senders: usize,
    receiver_alive: bool,
}

struct Shared {
    state: Mutex<State>,
    capacity: usize,
    /// The receiver waits here for a chunk or for the last sender to go.
    readable: Notify,
    /// Senders wait here for room or for the receiver to go.
    writable: Notify,
}

/// Creates a queue holding at most `capacity` chunks.
pub fn channel(capacity: usize) -> (InboundSender, InboundReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            chunks: VecDeque::new(),
            senders: 1,
            receiver_alive: true,
        }),
        capacity: capacity.max(1),
        readable: Notify::new(),
        writable: Notify::new(),
    });
    (
        InboundSender {
            shared: shared.clone(),
        },
        InboundReceiver { shared },
    )
}

/// The application has stopped reading; the chunk was not queued.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

pub struct InboundSender {
    shared: Arc<Shared>,
}

impl InboundSender {
    /// Queues a chunk, waiting while the queue is full.
    pub async fn send(&self, chunk: Inbound) -> Result<(), Closed> {
        loop {
            let room = self.shared.writable.notified();
            tokio::pin!(room);
            // Registered before the check, so a pop between check and await still wakes us.
            room.as_mut().enable();
            {
                let mut state = self.shared.state.lock();
                if !state.receiver_alive {
                    return Err(Closed);
                }
                if state.chunks.len() < self.shared.capacity {
                    state.chunks.push_back(chunk);
                    drop(state);
                    self.shared.readable.notify_one();
                    return Ok(());
                }
            }
            room.await;
        }
    }
}

impl InboundSender {
    /// Queues a chunk if there is room now, without waiting (input that arrived before the
    /// application started, queued before anyone could be waiting).
    pub(crate) fn try_send(&self, chunk: Inbound) -> Result<(), Inbound> {
        {
            let mut state = self.shared.state.lock();
            if !state.receiver_alive || state.chunks.len() >= self.shared.capacity {
                return Err(chunk);
            }
            state.chunks.push_back(chunk);
        }
        self.shared.readable.notify_one();
        Ok(())
    }
}

impl Clone for InboundSender {
    fn clone(&self) -> Self {
        self.shared.state.lock().senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for InboundSender {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.state.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.shared.readable.notify_one();
        }
    }
}

pub struct InboundReceiver {
    shared: Arc<Shared>,
}

impl InboundReceiver {
    /// The next chunk; `None` once every sender is gone and the queue is drained. Cancel-safe:
    /// a chunk is taken only when it is returned.
    pub async fn recv(&mut self) -> Option<Inbound> {
        loop {
            // `notify_one` stores a permit when nobody waits, so a send between the check
            // below and the await is not missed.
            let readable = self.shared.readable.notified();
            {
                let mut state = self.shared.state.lock();
                let was_full = state.chunks.len() >= self.shared.capacity;
                if let Some(chunk) = state.chunks.pop_front() {
                    if state.chunks.is_empty() && state.chunks.capacity() > RETAINED_CHUNKS {
                        state.chunks = VecDeque::new();
                    }
                    drop(state);
                    // Senders wait only on a full queue (registered before they saw it full),
                    // so only the pop that makes room needs to wake them: no lock per chunk.
                    if was_full {
                        self.shared.writable.notify_waiters();
                    }
                    return Some(chunk);
                }
                if state.senders == 0 {
                    return None;
                }
            }
            readable.await;
        }
    }
}

impl Drop for InboundReceiver {
    fn drop(&mut self) {
        self.shared.state.lock().receiver_alive = false;
        self.shared.writable.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    fn data(text: &'static str) -> Inbound {
        Inbound::Data(Bytes::from_static(text.as_bytes()))
    }

    #[tokio::test]
    async fn chunks_arrive_in_order_and_the_end_follows_the_last_sender() {
        let (tx, mut rx) = channel(4);
        let second = tx.clone();
        tx.send(data("a")).await.unwrap();
        second.send(data("b")).await.unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some(data("a")));
        assert_eq!(rx.recv().await, Some(data("b")));
        let end = tokio::spawn(async move { rx.recv().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(second);
        assert_eq!(end.await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_full_queue_makes_the_sender_wait_until_there_is_room() {
        let (tx, mut rx) = channel(1);
        tx.send(data("a")).await.unwrap();
        let blocked = tokio::spawn(async move {
            tx.send(data("b")).await.unwrap();
            tx
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!blocked.is_finished(), "the second send waits for room");
        assert_eq!(rx.recv().await, Some(data("a")));
        let _tx = blocked.await.unwrap();
        assert_eq!(rx.recv().await, Some(data("b")));
    }

    #[tokio::test]
    async fn senders_learn_that_the_receiver_is_gone() {
        let (tx, rx) = channel(1);
        tx.send(data("a")).await.unwrap();
        let blocked = {
            let tx = tx.clone();
            tokio::spawn(async move { tx.send(data("b")).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(rx);
        assert_eq!(blocked.await.unwrap(), Err(Closed));
        assert_eq!(tx.send(data("c")).await, Err(Closed));
    }

    #[tokio::test]
    async fn a_drained_burst_gives_its_buffer_back() {
        let (tx, mut rx) = channel(64);
        for _ in 0..32 {
            tx.send(data("x")).await.unwrap();
        }
        for _ in 0..32 {
            rx.recv().await.unwrap();
        }
        assert_eq!(rx.shared.state.lock().chunks.capacity(), 0);
    }

    #[tokio::test]
    async fn recv_is_cancel_safe() {
        let (tx, mut rx) = channel(2);
        assert!(tokio::time::timeout(Duration::from_millis(10), rx.recv())
            .await
            .is_err());
        tx.send(data("a")).await.unwrap();
        assert_eq!(rx.recv().await, Some(data("a")));
    }
}
