//! The change feed of this process: reads the change log in `seq` order and hands each change
//! to the subscriptions it matches.
//!
//! Woken by this process's own writes, by other processes' (PostgreSQL `LISTEN`) and once a
//! second regardless; each wake-up reads everything after the last `seq` delivered, so a lost
//! wake-up costs at most a second and never a change.

use super::listen::{Subscriber, Subscriptions};
use super::store::{timestamp, Change, SharedStore};
use crate::realtime::EventLog;
use router::{ChangeMessage, Outbound, Router, Scope, Target};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Changes read per query.
const BATCH: i64 = 500;
/// The safety net for lost wake-ups, and the pace at which orphaned changes (written by a
/// process that died before numbering them) get numbered.
const TICK: Duration = Duration::from_secs(1);
/// How often old changes are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

pub struct ChangeFeed {
    store: SharedStore,
    subscriptions: Arc<Subscriptions>,
    router: Router,
    /// `/realtime`'s positions: every change also goes to the streams that may see it.
    realtime: Arc<EventLog>,
    /// Lookup property names by collection, for `lookupIds` filters.
    lookups: HashMap<String, Vec<String>>,
    local_writes: Notify,
    /// The last `seq` delivered, for the lag metric.
    delivered: std::sync::atomic::AtomicI64,
    /// Commit to delivery, for `rthub_change_delivery_delay_seconds`.
    delay: prometheus::Histogram,
}

/// A change of the log as the router carries it (each protocol's encoder shapes it).
pub fn change_message(change: &Change) -> ChangeMessage {
    ChangeMessage {
        collection: change.collection.as_str().into(),
        operation: change.operation,
        id: change.id.to_string().into(),
        data: change.data.clone(),
        seq: change.seq,
        ts: timestamp(&change.ts).into(),
    }
}

impl ChangeFeed {
    pub fn new(
        store: SharedStore,
        subscriptions: Arc<Subscriptions>,
        router: Router,
        realtime: Arc<EventLog>,
        lookups: HashMap<String, Vec<String>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            subscriptions,
            router,
            realtime,
            lookups,
            local_writes: Notify::new(),
            delivered: std::sync::atomic::AtomicI64::new(0),
            delay: prometheus::Histogram::with_opts(
                prometheus::HistogramOpts::new(
                    "change_delivery_delay_seconds",
                    "From a change's commit to its delivery by this node's change feed.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
            )
            .unwrap_or_else(|e| unreachable!("constant histogram options: {e}")),
        })
    }

    pub fn subscriptions(&self) -> &Arc<Subscriptions> {
        &self.subscriptions
    }

    pub fn lookups(&self, collection: &str) -> &[String] {
        self.lookups.get(collection).map_or(&[], Vec::as_slice)
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// The last `seq` this feed delivered.
    pub fn delivered(&self) -> i64 {
        self.delivered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The commit-to-delivery histogram, to register with the metrics.
    pub fn delay_histogram(&self) -> &prometheus::Histogram {
        &self.delay
    }

    /// This process committed a write.
    pub fn wrote(&self) {
        self.local_writes.notify_one();
    }

    /// Deliver every change after `start` until `shutdown`; prune changes older than
    /// `retention`. `start` is read before the server takes requests (see
    /// [`super::store::Store::last_seq`]), so no change acknowledged by this server is skipped.
    pub fn spawn(self: &Arc<Self>, start: i64, retention: Duration, shutdown: CancellationToken) {
        let feed = self.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move { feed.run(start, stop).await });
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(PRUNE_EVERY);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = every.tick() => {}
                }
                let cutoff = chrono::Utc::now()
                    - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
                match store.prune_changes(cutoff).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "pruned old changes"),
                    Err(error) => tracing::warn!(%error, "could not prune old changes"),
                }
            }
        });
    }

    async fn run(self: Arc<Self>, mut last: i64, shutdown: CancellationToken) {
        self.delivered
            .store(last, std::sync::atomic::Ordering::Relaxed);
        let mut remote = self.store.change_notifications();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let number = tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.local_writes.notified() => true,
                changed = async {
                    match remote.as_mut() {
                        Some(remote) => remote.changed().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if changed.is_err() {
                        remote = None;
                    }
                    false
                }
                _ = tick.tick() => true,
            };
            if number {
                if let Err(error) = self.store.sequence_changes().await {
                    tracing::warn!(%error, "change feed: numbering changes failed");
                }
            }
            last = self.deliver_after(last).await;
            self.delivered
                .store(last, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Deliver every numbered change after `last`; the new last.
    async fn deliver_after(&self, mut last: i64) -> i64 {
        loop {
            match self.store.changes_after(last, BATCH).await {
                Ok(batch) => {
                    let full = batch.len() as i64 == BATCH;
                    for change in batch {
                        last = change.seq;
                        self.deliver(Arc::new(change)).await;
                    }
                    if !full {
                        return last;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "change feed: reading the change log failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return last;
                }
            }
        }
    }

    async fn deliver(&self, change: Arc<Change>) {
        let delay = (chrono::Utc::now() - change.ts)
            .to_std()
            .unwrap_or_default();
        self.delay.observe(delay.as_secs_f64());
        let subscribers = self
            .subscriptions
            .matching(&change, self.lookups(&change.collection));
        let mut connections = Vec::new();
        for subscriber in subscribers {
            match subscriber {
                Subscriber::Connection(id) => connections.push(id),
                Subscriber::Stream(id) => {
                    if !self.subscriptions.push_to_stream(id, &change) {
                        tracing::debug!(stream = id, "a change stream fell behind or ended");
                    }
                }
            }
        }
        // Local: every node reads the change log itself and delivers to its own listeners.
        let message = Arc::new(Outbound::Change(change_message(&change)));
        if !connections.is_empty() {
            self.router.send(
                Target::Connections(connections),
                Scope::Local,
                message.clone(),
            );
        }
        self.realtime.deliver_change(&message);
    }
}
