//! The hub methods of collections: `Listen`, `Unlisten` and the streaming `StreamChanges`.

use super::feed::change_payload;
use super::listen::{accepts, ListenFilter, Subscriber, Subscriptions};
use super::schema::Method;
use super::service::Collections;
use crate::api_error::ApiError;
use futures_util::Stream;
use hub::{Caller, HubError, HubMethods};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;

fn refused(error: ApiError) -> HubError {
    HubError::Refused(error.message)
}

/// May this connection listen to `collection`?
fn check(collections: &Collections, caller: &Caller, collection: &str) -> Result<String, HubError> {
    let found = collections.collection(collection).map_err(refused)?;
    collections
        .authorize(found, Method::Listen, &caller.identity)
        .map_err(refused)?;
    Ok(found.name.clone())
}

/// Ends a stream's subscription however the stream ends.
struct Forget(Arc<Subscriptions>, Subscriber);

impl Drop for Forget {
    fn drop(&mut self) {
        self.0.forget(&self.1);
    }
}

/// How many changes of the log are read per query during a replay.
const REPLAY_BATCH: i64 = 500;

/// First the changes after `from_seq` in the log, then live ones, with no gap and no duplicate:
/// the live subscription opens before the replay reads the log, and live changes the replay
/// already sent are skipped by `seq`.
async fn produce(
    collections: Arc<Collections>,
    caller: Caller,
    collection: String,
    filter: ListenFilter,
    from_seq: Option<i64>,
    items: mpsc::Sender<Result<Value, HubError>>,
) {
    let collection = match check(&collections, &caller, &collection) {
        Ok(name) => name,
        Err(error) => {
            let _ = items.send(Err(error)).await;
            return;
        }
    };
    let subscriptions = collections.feed.subscriptions().clone();
    let (subscriber, mut live) = subscriptions.open_stream(&collection, filter.clone());
    let _forget = Forget(subscriptions, subscriber);
    let lookups = collections.feed.lookups(&collection).to_vec();
    let mut cursor = from_seq.unwrap_or(i64::MIN);
    if let Some(from) = from_seq {
        cursor = from;
        loop {
            let batch = match collections.store.changes_after(cursor, REPLAY_BATCH).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, "StreamChanges: replay failed");
                    let _ = items.send(Err(HubError::Internal(error.to_string()))).await;
                    return;
                }
            };
            let full = batch.len() as i64 == REPLAY_BATCH;
            for change in batch {
                cursor = change.seq;
                if change.collection == collection
                    && accepts(&filter, &change, &lookups)
                    && items.send(Ok(change_payload(&change))).await.is_err()
                {
                    return;
                }
            }
            if !full {
                break;
            }
        }
    }
    while let Some(change) = live.recv().await {
        if change.seq <= cursor {
            continue;
        }
        cursor = change.seq;
        if items.send(Ok(change_payload(&change))).await.is_err() {
            return;
        }
    }
    // The feed dropped this stream: it fell more than a buffer behind.
    let _ = items
        .send(Err(HubError::Refused(format!(
            "The change stream fell behind; resume with fromSeq {cursor}."
        ))))
        .await;
}

pub fn hub_methods(collections: Arc<Collections>, methods: HubMethods) -> HubMethods {
    let (listen, unlisten, stream) = (collections.clone(), collections.clone(), collections);
    methods
        .method(
            "Listen",
            move |caller: Caller, (collection, filter): (String, Option<ListenFilter>)| {
                let outcome = check(&listen, &caller, &collection).map(|name| {
                    listen.feed.subscriptions().listen(
                        &name,
                        Subscriber::Connection(caller.connection_id.as_arc().clone()),
                        filter.unwrap_or_default(),
                    );
                });
                async move { outcome }
            },
        )
        .method(
            "Unlisten",
            move |caller: Caller, (collection, filter): (String, Option<ListenFilter>)| {
                let outcome = check(&unlisten, &caller, &collection).map(|name| {
                    unlisten.feed.subscriptions().unlisten(
                        &name,
                        &Subscriber::Connection(caller.connection_id.as_arc().clone()),
                        &filter.unwrap_or_default(),
                    );
                });
                async move { outcome }
            },
        )
        .stream(
            "StreamChanges",
            move |caller: Caller,
                  (collection, filter, from_seq): (String, Option<ListenFilter>, Option<i64>)|
                  -> std::pin::Pin<Box<dyn Stream<Item = Result<Value, HubError>> + Send>> {
                let (tx, rx) = mpsc::channel(16);
                tokio::spawn(produce(
                    stream.clone(),
                    caller,
                    collection,
                    filter.unwrap_or_default(),
                    from_seq,
                    tx,
                ));
                Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|item| (item, rx))
                }))
            },
        )
}
