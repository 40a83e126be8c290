//! A connection's streams: client-to-server uploads fed from StreamItems, and
//! server-to-client streams produced on their own tasks until they end or are cancelled.

use crate::dispatch::OpeningStream;
use crate::errors::{invocation_error, stream_error};
use crate::protocol::{Completion, Headers, HubMessage, HubValue, Outcome, StreamItem};
use crate::writer::Writer;
use futures_util::StreamExt;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

type UploadSender = mpsc::Sender<Result<HubValue, String>>;

pub(crate) struct Streams {
    /// Client-to-server streams by stream id.
    uploads: HashMap<String, UploadSender>,
    /// Server-to-client streams running, by invocation id.
    running: Arc<Mutex<HashMap<String, CancellationToken>>>,
    /// Cancelled when the connection ends: stops everything it started.
    ended: CancellationToken,
}

impl Streams {
    pub fn new() -> Self {
        Self {
            uploads: HashMap::new(),
            running: Arc::default(),
            ended: CancellationToken::new(),
        }
    }

    /// Run an upload method beside the connection; its Completion (for a blocking invocation)
    /// is sent when it returns.
    #[allow(clippy::too_many_arguments)]
    pub fn start_upload(
        &mut self,
        writer: &Writer,
        detailed: bool,
        target: String,
        invocation_id: Option<String>,
        running: impl Future<Output = Result<HubValue, crate::HubError>> + Send + 'static,
        stream_ids: Vec<String>,
        senders: Vec<UploadSender>,
    ) {
        self.uploads.extend(stream_ids.into_iter().zip(senders));
        let (writer, ended) = (writer.clone(), self.ended.clone());
        tokio::spawn(async move {
            let outcome = tokio::select! {
                () = ended.cancelled() => return,
                outcome = running => outcome,
            };
            if let Some(id) = invocation_id {
                writer.send(&HubMessage::Completion(match outcome {
                    Ok(value) => Completion::result(id, value),
                    Err(error) => Completion::error(id, invocation_error(&target, error, detailed)),
                }));
            }
        });
    }

    /// An item for an upload: waits while its buffer is full, which stops the connection
    /// reading (backpressure on the client, as .NET does).
    pub async fn upload_item(&mut self, stream_id: &str, item: HubValue) {
        let Some(sender) = self.uploads.get(stream_id) else {
            tracing::debug!("ignored an item for an unknown stream");
            return;
        };
        if sender.send(Ok(item)).await.is_err() {
            // The method returned without reading everything; later items go nowhere.
            self.uploads.remove(stream_id);
        }
    }

    /// The client completed an upload stream, possibly with an error.
    pub async fn upload_completed(&mut self, stream_id: &str, outcome: Outcome) {
        let Some(sender) = self.uploads.remove(stream_id) else {
            tracing::debug!("ignored a completion for an unknown stream");
            return;
        };
        if let Outcome::Error(error) = outcome {
            let _ = sender.send(Err(error)).await;
        }
    }

    /// Produce a server-to-client stream for `invocation_id`, once the method has opened it.
    pub fn start_stream(
        &self,
        writer: &Writer,
        detailed: bool,
        target: String,
        invocation_id: String,
        opening: OpeningStream,
    ) {
        let cancel = self.ended.child_token();
        {
            let mut running = self.running.lock();
            if running.contains_key(&invocation_id) {
                drop(running);
                writer.send(&HubMessage::Completion(Completion::error(
                    invocation_id.clone(),
                    format!("Invocation ID '{invocation_id}' is already in use."),
                )));
                return;
            }
            running.insert(invocation_id.clone(), cancel.clone());
        }
        let (writer, running, ended) = (writer.clone(), self.running.clone(), self.ended.clone());
        tokio::spawn(async move {
            let opened = tokio::select! {
                biased;
                () = cancel.cancelled() => Err(Outcome::Void),
                opened = opening => {
                    opened.map_err(|error| Outcome::Error(invocation_error(&target, error, detailed)))
                }
            };
            let outcome = match opened {
                Ok(items) => produce(&writer, &cancel, &invocation_id, items, detailed).await,
                Err(outcome) => outcome,
            };
            running.lock().remove(&invocation_id);
            // After a CancelInvocation the client still gets its Completion; after the
            // connection ended, nobody would.
            if !ended.is_cancelled() {
                writer.send(&HubMessage::Completion(Completion {
                    headers: Headers::new(),
                    invocation_id,
                    outcome,
                }));
            }
        });
    }

    /// CancelInvocation: stop that stream (unknown ids are ignored).
    pub fn cancel(&self, invocation_id: &str) {
        if let Some(cancel) = self.running.lock().get(invocation_id) {
            cancel.cancel();
        }
    }

    /// The connection ended: stop every stream and end every upload.
    pub fn end(&mut self) {
        self.ended.cancel();
        self.uploads.clear();
    }
}

/// Send the stream's items until it ends, fails or is cancelled; returns the Completion's
/// outcome.
async fn produce(
    writer: &Writer,
    cancel: &CancellationToken,
    invocation_id: &str,
    mut items: crate::dispatch::ItemStream,
    detailed: bool,
) -> Outcome {
    loop {
        let next = async {
            // Wait for room first: a long stream must not turn its own client into a slow
            // consumer.
            writer.outbox().writable().await;
            items.next().await
        };
        let item = tokio::select! {
            biased;
            () = cancel.cancelled() => return Outcome::Void,
            item = next => item,
        };
        match item {
            None => return Outcome::Void,
            Some(Ok(item)) => writer.send(&HubMessage::StreamItem(StreamItem {
                headers: Headers::new(),
                invocation_id: invocation_id.to_owned(),
                item,
            })),
            Some(Err(error)) => return Outcome::Error(stream_error(error, detailed)),
        }
    }
}
