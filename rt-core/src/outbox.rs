//! A connection's outbound queue: frames wait here until its transport writes them.
//!
//! Bounded by bytes, never by waiting: producers (a group fan-out, the hub connection) push
//! without blocking, so one slow client can never stall a sender or the other members of a group.
//! The policy when a connection falls behind by more than its limit: its queue is dropped, the
//! farewell frame (set by the layer above, a hub `Close` carrying an error) is queued alone, and
//! the transport closes the connection after writing it.
//!
//! The queue is a `VecDeque` behind a short mutex that is never held across an await: it costs
//! nothing until the first frame, which keeps idle connections small, and the writer takes
//! everything queued at once so it can write a batch and flush once.

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("the connection is closing")]
    Closed,
    #[error("the connection's outbound queue is full; it is being closed as a slow consumer")]
    Overflow,
}

/// What the transport's writer should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Write the frames now in the batch, then ask again.
    Frames,
    /// Everything has been written: close the transport normally.
    Close,
    /// Close the transport at once without writing anything else.
    Abort,
}

/// Frames are text unless the hub protocol switched the connection to binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferFormat {
    Text,
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Open,
    /// Drain what is queued, then close.
    Closing,
    Aborted,
}

struct State {
    queue: VecDeque<Bytes>,
    bytes: usize,
    status: Status,
    farewell: Option<Bytes>,
    overflowed: bool,
    /// Replay: messages kept until the client acknowledges them (SignalR stateful reconnect,
    /// Web PubSub reliable).
    replay: Option<Box<Replay>>,
    /// The sequence id the next sequenced message gets; ids start at 1.
    next_id: u64,
    /// The writer waits (see [`Outbox::hold`]).
    held: bool,
}

/// Encodes the message a protocol puts before a replay (SignalR's `Sequence`) for the first
/// replayed sequence id.
pub type SequenceEncoder = Box<dyn Fn(u64) -> Bytes + Send + Sync>;

/// A frame with a hole for its recipient's sequence id (Web PubSub reliable puts
/// `"sequenceId":N` inside each message): encoded once per protocol, then per recipient one
/// copy with the decimal digits of the id between `head` and `tail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    pub head: Bytes,
    pub tail: Bytes,
}

impl Stamped {
    /// The frame as the recipient with sequence id `id` gets it.
    pub fn stamp(&self, id: u64) -> Bytes {
        let digits = id.to_string();
        let mut frame = Vec::with_capacity(self.head.len() + digits.len() + self.tail.len());
        frame.extend_from_slice(&self.head);
        frame.extend_from_slice(digits.as_bytes());
        frame.extend_from_slice(&self.tail);
        Bytes::from(frame)
    }
}

/// What a producer hands over: a frame every recipient shares, or one to be stamped.
enum Outgoing<'a> {
    Whole(Bytes),
    Stamped(&'a Stamped),
}

struct Replay {
    /// Sent (or queued) messages by sequence id, oldest first.
    frames: VecDeque<(u64, Bytes)>,
    bytes: usize,
    /// Written before the replayed messages; `None` where the ids travel inside them.
    preamble: Option<SequenceEncoder>,
    /// More unacknowledged messages than this make the connection a slow consumer.
    max_messages: usize,
}

struct Shared {
    state: Mutex<State>,
    writer_wakeup: Notify,
    /// Wakes producers waiting in [`Outbox::writable`] after the writer took a batch.
    space: Notify,
    binary: AtomicBool,
    limit: usize,
}

/// Cheap to clone; every clone is the same queue.
#[derive(Clone)]
pub struct Outbox(Arc<Shared>);

impl Outbox {
    pub fn new(limit_bytes: usize) -> Self {
        Self(Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                status: Status::Open,
                farewell: None,
                overflowed: false,
                replay: None,
                next_id: 1,
                held: false,
            }),
            writer_wakeup: Notify::new(),
            space: Notify::new(),
            binary: AtomicBool::new(false),
            limit: limit_bytes,
        }))
    }

    /// Queue one complete message: it takes the next sequence id (kept for replay when replay
    /// is on). Never waits.
    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        self.enqueue(Outgoing::Whole(frame), true)
    }

    /// Queue a message stamped with the next sequence id. Never waits.
    pub fn push_stamped(&self, frame: &Stamped) -> Result<(), PushError> {
        self.enqueue(Outgoing::Stamped(frame), true)
    }

    /// Queue a frame that is never replayed: the handshake reply, Ping, Close, Ack, Sequence.
    pub fn push_control(&self, frame: Bytes) -> Result<(), PushError> {
        self.enqueue(Outgoing::Whole(frame), false)
    }

    fn enqueue(&self, frame: Outgoing<'_>, sequenced: bool) -> Result<(), PushError> {
        let mut state = self.0.state.lock();
        if state.status != Status::Open {
            return Err(PushError::Closed);
        }
        let limit = self.0.limit;
        let replay_bytes = state.replay.as_ref().map_or(0, |r| r.bytes);
        // A single frame larger than the limit still goes out on an idle connection; the limit
        // is about a backlog, not about one message.
        let backlog = state.bytes.max(replay_bytes);
        let too_many = sequenced
            && state
                .replay
                .as_ref()
                .is_some_and(|r| r.frames.len() >= r.max_messages);
        let frame = match frame {
            Outgoing::Whole(frame) => frame,
            // Stamped under the lock: the id and the queue position must agree.
            Outgoing::Stamped(stamped) => stamped.stamp(state.next_id),
        };
        if too_many || (backlog > 0 && backlog + frame.len() > limit) {
            state.queue.clear();
            state.bytes = 0;
            state.replay = None;
            state.overflowed = true;
            if let Some(farewell) = state.farewell.take() {
                state.queue.push_back(farewell);
            }
            state.status = Status::Closing;
            drop(state);
            self.0.writer_wakeup.notify_one();
            return Err(PushError::Overflow);
        }
        if sequenced {
            let id = state.next_id;
            state.next_id += 1;
            if let Some(replay) = state.replay.as_mut() {
                replay.frames.push_back((id, frame.clone()));
                replay.bytes += frame.len();
            }
        }
        state.bytes += frame.len();
        state.queue.push_back(frame);
        drop(state);
        self.0.writer_wakeup.notify_one();
        Ok(())
    }

    /// Keep the writer from writing until [`Outbox::release`]: frames queue up meanwhile. Lets
    /// the layer above make a connection reachable (group tables) before its first frame, and
    /// still put that frame first.
    pub fn hold(&self) {
        self.0.state.lock().held = true;
    }

    /// Put `frame` before everything queued and let the writer go.
    pub fn release_with_first(&self, frame: Bytes) {
        self.release_with_front(vec![frame]);
    }

    /// Put `frames`, in order, before everything queued (a replay before the live frames that
    /// queued up meanwhile) and let the writer go. They are never replayed themselves.
    pub fn release_with_front(&self, frames: Vec<Bytes>) {
        let mut state = self.0.state.lock();
        if state.status == Status::Open {
            for frame in frames.into_iter().rev() {
                state.bytes += frame.len();
                state.queue.push_front(frame);
            }
        }
        state.held = false;
        drop(state);
        self.0.writer_wakeup.notify_one();
    }

    /// Turn on replay: from now on messages are numbered from 1 and kept until acknowledged,
    /// so they can be replayed on a new socket, after `preamble`'s frame when there is one.
    pub fn enable_replay(&self, preamble: Option<SequenceEncoder>) {
        let mut state = self.0.state.lock();
        state.next_id = 1;
        state.replay = Some(Box::new(Replay {
            frames: VecDeque::new(),
            bytes: 0,
            preamble,
            max_messages: usize::MAX,
        }));
    }

    /// With replay on: at most `messages` unacknowledged messages (Web PubSub's 1000).
    pub fn limit_unacked(&self, messages: usize) {
        if let Some(replay) = self.0.state.lock().replay.as_mut() {
            replay.max_messages = messages;
        }
    }

    /// The client has every hub message up to `sequence_id`.
    pub fn ack(&self, sequence_id: u64) {
        let mut state = self.0.state.lock();
        if let Some(replay) = state.replay.as_mut() {
            while let Some((id, frame)) = replay.frames.front() {
                if *id > sequence_id {
                    break;
                }
                replay.bytes -= frame.len();
                replay.frames.pop_front();
            }
        }
        drop(state);
        self.0.space.notify_waiters();
    }

    /// A new socket took over: what it writes first is the preamble (SignalR's `Sequence` with
    /// the oldest unacknowledged id, or the next id when nothing is pending) and every
    /// unacknowledged message. Whatever was queued for the old socket is dropped: its messages
    /// are among those replayed.
    /// Returns false when stateful reconnect is off or the connection is closing.
    pub fn reattach(&self) -> bool {
        {
            let mut guard = self.0.state.lock();
            let state = &mut *guard;
            if state.status != Status::Open {
                return false;
            }
            let Some(replay) = state.replay.as_ref() else {
                return false;
            };
            let first = replay.frames.front().map_or(state.next_id, |(id, _)| *id);
            let mut queue = VecDeque::with_capacity(replay.frames.len() + 1);
            if let Some(preamble) = &replay.preamble {
                queue.push_back(preamble(first));
            }
            queue.extend(replay.frames.iter().map(|(_, frame)| frame.clone()));
            state.bytes = queue.iter().map(Bytes::len).sum();
            state.queue = queue;
        }
        self.0.writer_wakeup.notify_one();
        true
    }

    /// Queue a last (control) frame and close after it is written.
    pub fn push_and_close(&self, frame: Bytes) {
        let mut state = self.0.state.lock();
        if state.status == Status::Open {
            state.bytes += frame.len();
            state.queue.push_back(frame);
            state.status = Status::Closing;
        }
        drop(state);
        self.0.writer_wakeup.notify_one();
    }

    /// The frame written before closing a slow consumer.
    pub fn set_farewell(&self, frame: Bytes) {
        self.0.state.lock().farewell = Some(frame);
    }

    /// Close once what is queued has been written.
    pub fn close(&self) {
        let mut state = self.0.state.lock();
        if state.status == Status::Open {
            state.status = Status::Closing;
        }
        drop(state);
        self.0.writer_wakeup.notify_one();
        self.0.space.notify_waiters();
    }

    /// Drop everything and close now (the peer is gone).
    pub fn abort(&self) {
        let mut state = self.0.state.lock();
        state.queue = VecDeque::new();
        state.bytes = 0;
        state.status = Status::Aborted;
        drop(state);
        self.0.writer_wakeup.notify_one();
        self.0.space.notify_waiters();
    }

    /// For producers that can wait (a stream's items, as opposed to a fan-out): return once
    /// the queue is at most half full, or closed. Keeps one long stream from making its own
    /// client a slow consumer.
    pub async fn writable(&self) {
        loop {
            let space = self.0.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            {
                let state = self.0.state.lock();
                let replay_bytes = state.replay.as_ref().map_or(0, |r| r.bytes);
                if state.status != Status::Open || state.bytes.max(replay_bytes) <= self.0.limit / 2
                {
                    return;
                }
            }
            space.await;
        }
    }

    pub fn is_open(&self) -> bool {
        self.0.state.lock().status == Status::Open
    }

    /// Whether this connection was closed for falling behind.
    pub fn overflowed(&self) -> bool {
        self.0.state.lock().overflowed
    }

    pub fn set_transfer_format(&self, format: TransferFormat) {
        self.0
            .binary
            .store(format == TransferFormat::Binary, Ordering::Relaxed);
    }

    pub fn transfer_format(&self) -> TransferFormat {
        if self.0.binary.load(Ordering::Relaxed) {
            TransferFormat::Binary
        } else {
            TransferFormat::Text
        }
    }

    /// For the transport's writer (one per connection): wait until there is something to do,
    /// then move every queued frame into `batch`. Cancel-safe: nothing is taken until it returns.
    pub async fn next(&self, batch: &mut VecDeque<Bytes>) -> Next {
        loop {
            let wakeup = self.0.writer_wakeup.notified();
            tokio::pin!(wakeup);
            wakeup.as_mut().enable();
            {
                let mut state = self.0.state.lock();
                if state.status == Status::Aborted {
                    return Next::Abort;
                }
                if !state.queue.is_empty() && !state.held {
                    std::mem::swap(&mut state.queue, batch);
                    state.bytes = 0;
                    drop(state);
                    self.0.space.notify_waiters();
                    return Next::Frames;
                }
                if state.status == Status::Closing && state.queue.is_empty() {
                    return Next::Close;
                }
            }
            wakeup.await;
        }
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.0.state.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[tokio::test]
    async fn frames_come_out_in_order_as_one_batch() {
        let outbox = Outbox::new(1000);
        outbox.push(frame(1)).unwrap();
        outbox.push(frame(2)).unwrap();
        let mut batch = VecDeque::new();
        assert_eq!(outbox.next(&mut batch).await, Next::Frames);
        assert_eq!(batch.iter().map(Bytes::len).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(outbox.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn overflow_drops_the_backlog_and_keeps_only_the_farewell() {
        let outbox = Outbox::new(10);
        outbox.set_farewell(Bytes::from_static(b"bye"));
        outbox.push(frame(6)).unwrap();
        assert_eq!(outbox.push(frame(6)), Err(PushError::Overflow));
        assert!(outbox.overflowed());
        assert_eq!(outbox.push(frame(1)), Err(PushError::Closed));
        let mut batch = VecDeque::new();
        assert_eq!(outbox.next(&mut batch).await, Next::Frames);
        assert_eq!(batch.pop_front().unwrap(), Bytes::from_static(b"bye"));
        assert!(batch.is_empty());
        assert_eq!(outbox.next(&mut batch).await, Next::Close);
    }

    #[tokio::test]
    async fn one_large_frame_on_an_idle_queue_is_accepted() {
        let outbox = Outbox::new(10);
        outbox.push(frame(100)).unwrap();
        assert!(outbox.is_open());
    }

    #[tokio::test]
    async fn close_drains_first_and_abort_does_not() {
        let outbox = Outbox::new(100);
        outbox.push(frame(1)).unwrap();
        outbox.close();
        let mut batch = VecDeque::new();
        assert_eq!(outbox.next(&mut batch).await, Next::Frames);
        assert_eq!(outbox.next(&mut batch).await, Next::Close);

        let outbox = Outbox::new(100);
        outbox.push(frame(1)).unwrap();
        outbox.abort();
        assert_eq!(outbox.next(&mut batch).await, Next::Abort);
    }

    fn sequence(id: u64) -> Bytes {
        Bytes::from(format!("seq{id}"))
    }

    async fn take(outbox: &Outbox) -> Vec<Bytes> {
        let mut batch = VecDeque::new();
        assert_eq!(outbox.next(&mut batch).await, Next::Frames);
        batch.into_iter().collect()
    }

    #[tokio::test]
    async fn reattach_replays_unacknowledged_hub_messages_after_a_sequence() {
        let outbox = Outbox::new(1000);
        outbox.enable_replay(Some(Box::new(sequence)));
        outbox.push_control(Bytes::from_static(b"ping")).unwrap();
        for text in ["a", "b", "c"] {
            outbox.push(Bytes::from(text)).unwrap();
        }
        assert_eq!(take(&outbox).await, ["ping", "a", "b", "c"]);
        outbox.ack(1);
        assert!(outbox.reattach());
        assert_eq!(take(&outbox).await, ["seq2", "b", "c"]);
        outbox.ack(3);
        assert!(outbox.reattach());
        assert_eq!(
            take(&outbox).await,
            ["seq4"],
            "nothing pending: the next id"
        );
    }

    #[tokio::test]
    async fn stamped_frames_carry_their_recipients_ids_and_replay_without_a_preamble() {
        let outbox = Outbox::new(1000);
        outbox.enable_replay(None);
        let stamped = Stamped {
            head: Bytes::from_static(b"{\"sequenceId\":"),
            tail: Bytes::from_static(b",\"data\":1}"),
        };
        outbox.push_control(Bytes::from_static(b"pong")).unwrap();
        outbox.push_stamped(&stamped).unwrap();
        outbox.push_stamped(&stamped).unwrap();
        assert_eq!(
            take(&outbox).await,
            [
                "pong",
                r#"{"sequenceId":1,"data":1}"#,
                r#"{"sequenceId":2,"data":1}"#
            ]
        );
        outbox.ack(1);
        assert!(outbox.reattach());
        assert_eq!(take(&outbox).await, [r#"{"sequenceId":2,"data":1}"#]);
        outbox.limit_unacked(2);
        outbox.push_stamped(&stamped).unwrap();
        assert_eq!(outbox.push_stamped(&stamped), Err(PushError::Overflow));
        assert!(outbox.overflowed());
    }

    #[tokio::test]
    async fn without_stateful_reconnect_there_is_nothing_to_reattach() {
        let outbox = Outbox::new(1000);
        outbox.push(frame(1)).unwrap();
        assert!(!outbox.reattach());
    }

    #[tokio::test]
    async fn unacknowledged_messages_count_toward_the_limit() {
        let outbox = Outbox::new(10);
        outbox.enable_replay(Some(Box::new(sequence)));
        outbox.push(frame(6)).unwrap();
        take(&outbox).await;
        assert_eq!(outbox.push(frame(6)), Err(PushError::Overflow));
    }

    #[tokio::test]
    async fn a_held_outbox_writes_nothing_until_released_with_its_first_frame() {
        let outbox = Outbox::new(100);
        outbox.hold();
        outbox.push(Bytes::from_static(b"broadcast")).unwrap();
        let writer = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let mut batch = VecDeque::new();
                outbox.next(&mut batch).await;
                batch.into_iter().collect::<Vec<_>>()
            })
        };
        tokio::task::yield_now().await;
        assert!(!writer.is_finished());
        outbox.release_with_first(Bytes::from_static(b"handshake"));
        assert_eq!(writer.await.unwrap(), ["handshake", "broadcast"]);
    }

    #[tokio::test]
    async fn a_waiting_producer_resumes_when_the_writer_takes_a_batch() {
        let outbox = Outbox::new(10);
        outbox.push(frame(8)).unwrap();
        let producer = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.writable().await })
        };
        tokio::task::yield_now().await;
        assert!(!producer.is_finished());
        let mut batch = VecDeque::new();
        assert_eq!(outbox.next(&mut batch).await, Next::Frames);
        producer.await.unwrap();
    }

    #[tokio::test]
    async fn the_writer_wakes_for_a_frame_pushed_while_it_waits() {
        let outbox = Outbox::new(100);
        let writer = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let mut batch = VecDeque::new();
                let next = outbox.next(&mut batch).await;
                (next, batch.len())
            })
        };
        tokio::task::yield_now().await;
        outbox.push(frame(3)).unwrap();
        assert_eq!(writer.await.unwrap(), (Next::Frames, 1));
    }
}
