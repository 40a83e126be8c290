//! The hub methods of collections: `Listen`, `Unlisten` and the streaming `StreamChanges`.

use super::feed::change_message;
use super::listen::{ListenFilter, Subscriber};
use super::schema::Method;
use super::service::Collections;
use super::stream::StreamEnd;
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

/// `StreamChanges`: the permission check, then the change stream as hub stream items.
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
    let mut stream = collections.feed.stream(collection, filter, from_seq);
    while let Some(next) = stream.next().await {
        let item = match next {
            Ok(change) => Ok(change_message(&change).to_json()),
            Err(StreamEnd::Replay(error)) => Err(HubError::Internal(error.to_string())),
            Err(StreamEnd::FellBehind { resume_from }) => Err(HubError::Refused(format!(
                "The change stream fell behind; resume with fromSeq {resume_from}."
            ))),
        };
        let last = item.is_err();
        if items.send(item).await.is_err() || last {
            return;
        }
    }
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
