//! A change stream: first the changes after a `seq` from the change log, then live ones, with
//! no gap and no duplicate. Written once, in no protocol's types: `StreamChanges` (SignalR)
//! maps it to stream items, and Web PubSub reliable recovery and `/realtime`'s
//! `Last-Event-ID` resume from a `seq` the same way.

use super::feed::ChangeFeed;
use super::listen::{accepts, ListenFilter, Subscriber, Subscriptions};
use super::store::{Change, StoreError};
use std::sync::Arc;
use tokio::sync::mpsc;

/// How many changes of the log are read per query during a replay.
const REPLAY_BATCH: i64 = 500;
/// Changes the producer may be ahead of the consumer (it waits, the feed does not).
const AHEAD: usize = 16;

/// Why a stream ended before its consumer let go of it.
#[derive(Debug)]
pub enum StreamEnd {
    /// Reading the change log failed.
    Replay(StoreError),
    /// The live feed dropped the stream: it fell more than a buffer behind. Resuming from
    /// `resume_from` loses nothing.
    FellBehind { resume_from: i64 },
}

/// The changes of one collection that pass a filter, in `seq` order.
pub struct ChangeStream {
    items: mpsc::Receiver<Result<Arc<Change>, StreamEnd>>,
}

impl ChangeStream {
    /// The next change; `Some(Err)` once when the stream ends early, then `None`.
    pub async fn next(&mut self) -> Option<Result<Arc<Change>, StreamEnd>> {
        self.items.recv().await
    }
}

/// Ends a stream's live subscription however the stream ends.
struct Forget(Arc<Subscriptions>, Subscriber);

impl Drop for Forget {
    fn drop(&mut self) {
        self.0.forget(&self.1);
    }
}

impl ChangeFeed {
    /// The changes of `collection` passing `filter`: after `from_seq` from the log (when
    /// given), then live. The live subscription opens before the replay reads the log, and
    /// live changes the replay already yielded are skipped by `seq`. Permission is the
    /// caller's check.
    pub fn stream(
        self: &Arc<Self>,
        collection: String,
        filter: ListenFilter,
        from_seq: Option<i64>,
    ) -> ChangeStream {
        let (tx, items) = mpsc::channel(AHEAD);
        tokio::spawn(produce(self.clone(), collection, filter, from_seq, tx));
        ChangeStream { items }
    }
}

type Items = mpsc::Sender<Result<Arc<Change>, StreamEnd>>;

async fn produce(
    feed: Arc<ChangeFeed>,
    collection: String,
    filter: ListenFilter,
    from_seq: Option<i64>,
    items: Items,
) {
    let subscriptions = feed.subscriptions().clone();
    let (subscriber, mut live) = subscriptions.open_stream(&collection, filter.clone());
    let _forget = Forget(subscriptions, subscriber);
    let mut cursor = i64::MIN;
    if let Some(from) = from_seq {
        match replay(&feed, &collection, &filter, from, &items).await {
            Some(Ok(last)) => cursor = last,
            Some(Err(error)) => {
                tracing::warn!(%error, "change stream: replay failed");
                let _ = items.send(Err(StreamEnd::Replay(error))).await;
                return;
            }
            // The consumer went away.
            None => return,
        }
    }
    while let Some(change) = live.recv().await {
        if change.seq <= cursor {
            continue;
        }
        cursor = change.seq;
        if items.send(Ok(change)).await.is_err() {
            return;
        }
    }
    let resume_from = cursor.max(from_seq.unwrap_or(0));
    let _ = items.send(Err(StreamEnd::FellBehind { resume_from })).await;
}

/// Yield the logged changes after `from`; the last `seq` read, or `None` when the consumer
/// left.
async fn replay(
    feed: &ChangeFeed,
    collection: &str,
    filter: &ListenFilter,
    from: i64,
    items: &Items,
) -> Option<Result<i64, StoreError>> {
    let lookups = feed.lookups(collection);
    let mut cursor = from;
    loop {
        let batch = match feed.store().changes_after(cursor, REPLAY_BATCH).await {
            Ok(batch) => batch,
            Err(error) => return Some(Err(error)),
        };
        let full = batch.len() as i64 == REPLAY_BATCH;
        for change in batch {
            cursor = change.seq;
            if change.collection == collection
                && accepts(filter, &change, lookups)
                && items.send(Ok(Arc::new(change))).await.is_err()
            {
                return None;
            }
        }
        if !full {
            return Some(Ok(cursor));
        }
    }
}
