//! One Web PubSub connection: a router session that outlives its sockets on the reliable
//! protocol. A socket that breaks leaves the connection parked for `recovery_secs` with its
//! groups and its unacknowledged messages; a client that comes back with the reconnection
//! token takes it over and gets those messages again with their original `sequenceId`s.

use super::upstream::ConnectionContext;
use super::WebPubSub;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use router::{Registration, Session};
use rt_core::{Identity, Next, Outbox};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use webpubsub::roles::Permissions;
use webpubsub::{AckIds, Subprotocol};

/// How long a closing socket waits for the peer's Close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) struct Logical {
    pub id: Arc<str>,
    pub subprotocol: Subprotocol,
    pub identity: Arc<Identity>,
    pub permissions: Permissions,
    pub context: ConnectionContext,
    pub session: Arc<Session>,
    pub outbox: Outbox,
    pub acks: Mutex<AckIds>,
    /// The reliable protocol's: what a recovering client must show.
    pub reconnection_token: Option<String>,
    /// Dropping it unregisters the session (leaves every group); taken once, when the
    /// connection ends.
    registration: Mutex<Option<Registration>>,
    /// The socket serving the connection now: cancelled when another takes over.
    socket: Mutex<CancellationToken>,
    /// Counts sockets, so a parked connection's timer knows whether one came back.
    generation: AtomicU64,
    /// The close code the writer sends when the server ends the connection.
    close_code: AtomicU16,
    /// No socket serves it: it waits for its client to recover it.
    parked: AtomicBool,
}

impl Logical {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        subprotocol: Subprotocol,
        identity: Arc<Identity>,
        permissions: Permissions,
        context: ConnectionContext,
        registration: Registration,
        outbox: Outbox,
        reconnection_token: Option<String>,
    ) -> Self {
        let session = registration.session().clone();
        Self {
            id: session.id().as_arc().clone(),
            subprotocol,
            identity,
            permissions,
            context,
            session,
            outbox,
            acks: Mutex::new(AckIds::default()),
            reconnection_token,
            registration: Mutex::new(Some(registration)),
            socket: Mutex::new(CancellationToken::new()),
            generation: AtomicU64::new(0),
            // A close by the server ends a reliable connection for good: 1008 tells its client
            // not to try recovering it (and keep the `system/disconnected` reason it got).
            close_code: AtomicU16::new(if subprotocol.is_reliable() {
                1008
            } else {
                1000
            }),
            parked: AtomicBool::new(false),
        }
    }

    /// End the connection from the server: `frame` (a `system/disconnected`) is its last,
    /// then a Close with `code`. Not recoverable.
    pub fn close_with(&self, code: u16, frame: bytes::Bytes) {
        self.close_code.store(code, Ordering::Relaxed);
        self.outbox.push_and_close(frame);
    }

    /// A new socket serves the connection: the previous one (if any) stops.
    fn attach(&self) -> (u64, CancellationToken) {
        let token = CancellationToken::new();
        let previous = std::mem::replace(&mut *self.socket.lock(), token.clone());
        previous.cancel();
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.parked.store(false, Ordering::SeqCst);
        (generation, token)
    }

    pub fn is_parked(&self) -> bool {
        self.parked.load(Ordering::SeqCst)
    }
}

/// This process's Web PubSub connections by id, live or parked for recovery.
#[derive(Default)]
pub struct Connections {
    by_id: dashmap::DashMap<Arc<str>, Arc<Logical>>,
    /// Put before every reconnection token: in a cluster, this node's id, so that a node
    /// that gets a recovery for a connection it does not have can send it to the one that
    /// does (`cluster::forward`). Set once, at start-up.
    token_prefix: std::sync::OnceLock<String>,
}

impl Connections {
    pub(crate) fn insert(&self, logical: Arc<Logical>) {
        self.by_id.insert(logical.id.clone(), logical);
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Logical>> {
        self.by_id.get(id).map(|l| l.clone())
    }

    /// Whether this process has the connection `id` (live or parked).
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Logical>> {
        self.by_id
            .iter()
            .map(|entry| entry.value().clone())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Start every reconnection token from now on with `prefix` (only the first call counts).
    pub fn set_token_prefix(&self, prefix: String) {
        let _ = self.token_prefix.set(prefix);
    }

    /// A fresh reconnection token: the prefix, then a [`RandomId`]'s 128 random bits.
    pub(crate) fn new_reconnection_token(&self) -> String {
        let random = rt_core::RandomId::generate();
        match self.token_prefix.get() {
            Some(prefix) => format!("{prefix}{}", random.as_str()),
            None => random.as_str().to_owned(),
        }
    }
}

/// How a socket's exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SocketEnd {
    /// The peer sent a Close: it is not coming back.
    Goodbye,
    /// The socket failed or ended without a Close: a reliable client may recover.
    Broken,
    /// The server closed the connection (its last frame and a Close were written).
    Closed,
    /// Another socket took the connection over.
    Replaced,
}

/// Serve `logical` on `socket` until the socket ends; then park the connection for
/// recovery, or end it.
pub(crate) async fn run(wps: Arc<WebPubSub>, logical: Arc<Logical>, socket: WebSocket) {
    let (generation, replaced) = logical.attach();
    let end = serve(&wps, &logical, socket, replaced).await;
    tracing::debug!(connection_id = %logical.session.id().redacted(), ?end, "a Web PubSub socket ended");
    match end {
        SocketEnd::Replaced => {}
        SocketEnd::Broken if logical.subprotocol.is_reliable() && logical.outbox.is_open() => {
            let recovery = wps.config.recovery;
            logical.parked.store(true, Ordering::SeqCst);
            tokio::spawn(async move {
                tokio::time::sleep(recovery).await;
                if logical.generation.load(Ordering::SeqCst) == generation {
                    tracing::debug!(
                        connection_id = %logical.session.id().redacted(),
                        "a dropped Web PubSub connection was not recovered in time"
                    );
                    finish(
                        &wps,
                        &logical,
                        Some("The connection was not recovered in time."),
                    );
                }
            });
        }
        SocketEnd::Goodbye | SocketEnd::Broken => finish(&wps, &logical, None),
        SocketEnd::Closed => finish(&wps, &logical, Some("The server closed the connection.")),
    }
}

/// The connection is over: it leaves every group, observers and the event handler hear it.
pub(crate) fn finish(wps: &WebPubSub, logical: &Logical, reason: Option<&str>) {
    let Some(registration) = logical.registration.lock().take() else {
        return;
    };
    wps.connections.by_id.remove(&logical.id);
    logical.outbox.abort();
    drop(registration);
    wps.upstream.disconnected(&logical.context, reason);
}

async fn serve(
    wps: &Arc<WebPubSub>,
    logical: &Arc<Logical>,
    socket: WebSocket,
    replaced: CancellationToken,
) -> SocketEnd {
    let (sink, mut stream) = socket.split();
    let stop = CancellationToken::new();
    let mut writer = tokio::spawn(write(sink, logical.clone(), stop.clone()));
    let end = loop {
        tokio::select! {
            () = replaced.cancelled() => break SocketEnd::Replaced,
            written = &mut writer => {
                return match written {
                    Ok((sink, WriterEnd::Closed)) => {
                        // Let the peer's Close arrive so the TCP connection ends cleanly.
                        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                            while let Some(Ok(message)) = stream.next().await {
                                if matches!(message, Message::Close(_)) {
                                    break;
                                }
                            }
                        })
                        .await;
                        drop(sink);
                        SocketEnd::Closed
                    }
                    _ => SocketEnd::Broken,
                };
            }
            received = stream.next() => match received {
                Some(Ok(Message::Text(text))) if text.len() > wps.config.max_message_bytes => {
                    logical.close_with(1009, too_big(wps));
                }
                Some(Ok(Message::Text(text))) => {
                    super::handle::message(wps, logical, text.as_bytes()).await;
                }
                Some(Ok(Message::Binary(_))) => logical.close_with(
                    1003,
                    webpubsub::frames::disconnected("The JSON subprotocol requires text messages."),
                ),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) => break SocketEnd::Goodbye,
                None => break SocketEnd::Broken,
                Some(Err(error)) => {
                    tracing::debug!(connection_id = %logical.session.id().redacted(), %error, "Web PubSub read failed");
                    if is_too_big(&error) {
                        logical.close_with(1009, too_big(wps));
                        // The writer says why and closes; the reader is done.
                        let _ = tokio::time::timeout(CLOSE_TIMEOUT, &mut writer).await;
                        return SocketEnd::Closed;
                    }
                    break SocketEnd::Broken;
                }
            },
        }
    };
    stop.cancel();
    if let Ok((mut sink, _)) = writer.await {
        if end == SocketEnd::Goodbye {
            let _ = sink.close().await;
        }
    }
    end
}

fn too_big(wps: &WebPubSub) -> bytes::Bytes {
    webpubsub::frames::disconnected(&format!(
        "A message is at most {} bytes.",
        wps.config.max_message_bytes
    ))
}

fn is_too_big(error: &axum::Error) -> bool {
    use std::error::Error as _;
    error
        .source()
        .and_then(|source| source.downcast_ref::<tokio_tungstenite::tungstenite::Error>())
        .is_some_and(|e| matches!(e, tokio_tungstenite::tungstenite::Error::Capacity(_)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriterEnd {
    /// Asked to stop (the reader ended, or another socket took over).
    Stopped,
    /// The connection is over and the Close was sent.
    Closed,
    /// The socket could not be written.
    Broken,
}

type Sink = SplitSink<WebSocket, Message>;

/// Write what the outbox has, a batch per flush, until told to stop or the connection ends.
async fn write(
    mut sink: Sink,
    logical: Arc<Logical>,
    stop: CancellationToken,
) -> (Sink, WriterEnd) {
    let outbox = &logical.outbox;
    let mut batch = VecDeque::new();
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return (sink, WriterEnd::Stopped),
            next = outbox.next(&mut batch) => match next {
                Next::Frames => {
                    for frame in batch.drain(..) {
                        let Ok(text) = Utf8Bytes::try_from(frame) else {
                            tracing::error!("dropped a Web PubSub frame that is not UTF-8");
                            continue;
                        };
                        if sink.feed(Message::Text(text)).await.is_err() {
                            return (sink, WriterEnd::Broken);
                        }
                    }
                    if sink.flush().await.is_err() {
                        return (sink, WriterEnd::Broken);
                    }
                }
                Next::Close => {
                    // A slow consumer's state is gone: 1008 tells the client not to recover.
                    let code = if outbox.overflowed() {
                        1008
                    } else {
                        logical.close_code.load(Ordering::Relaxed)
                    };
                    let close = Message::Close(Some(CloseFrame {
                        code,
                        reason: Utf8Bytes::from_static(""),
                    }));
                    let _ = sink.send(close).await;
                    return (sink, WriterEnd::Closed);
                }
                Next::Abort => return (sink, WriterEnd::Stopped),
            },
        }
    }
}
