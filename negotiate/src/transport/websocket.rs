//! The WebSocket transport: one task per connection reads the socket into the inbound channel
//! and writes the outbox onto the socket, a whole batch before each flush.

use crate::connection::Inbound;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use rt_core::{Next, Outbox, TransferFormat};
use std::collections::VecDeque;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How the exchange ended: decides how the socket is closed, and whether the connection may
/// wait for another socket (stateful reconnect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The application is done (or the connection was disposed): a normal Close (1000) was
    /// sent and the peer's awaited.
    Finished,
    /// The peer sent a Close, which was answered.
    PeerClosed,
    /// The socket failed.
    Broken,
    /// A newer socket took over this connection.
    Replaced,
}

/// Serve the connection on `socket` until one of the [`End`]s. Never ends the connection
/// itself: the caller decides between disposing it and waiting for a reconnect.
pub(crate) async fn serve(
    mut socket: WebSocket,
    inbound: crate::inbound::InboundSender,
    outbox: Outbox,
    close_timeout: Duration,
    replaced: CancellationToken,
) -> End {
    let mut batch = VecDeque::new();
    let end = loop {
        tokio::select! {
            // Writing first keeps a reader that floods us from starving its own replies.
            biased;
            () = replaced.cancelled() => break End::Replaced,
            next = outbox.next(&mut batch) => match next {
                Next::Frames => {
                    if write_batch(&mut socket, &mut batch, outbox.transfer_format()).await.is_err() {
                        break End::Broken;
                    }
                }
                Next::Close | Next::Abort => break End::Finished,
            },
            received = socket.next() => match received {
                Some(Ok(Message::Text(text))) => {
                    if inbound.send(Inbound::Data(text.into())).await.is_err() {
                        break End::Finished;
                    }
                }
                Some(Ok(Message::Binary(data))) => {
                    if inbound.send(Inbound::Data(data)).await.is_err() {
                        break End::Finished;
                    }
                }
                // tungstenite answers pings itself; pongs carry nothing for us.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => break End::PeerClosed,
                Some(Err(error)) => {
                    tracing::debug!(%error, "WebSocket read failed");
                    if is_too_big(&error) {
                        // Say why instead of dropping the socket (1009: message too big).
                        let close = Message::Close(Some(CloseFrame {
                            code: 1009,
                            reason: Utf8Bytes::from_static("message too big"),
                        }));
                        let _ = socket.send(close).await;
                    }
                    break End::Broken;
                }
            },
        }
    };
    drop(inbound);
    match end {
        End::Finished => {
            let close = Message::Close(Some(CloseFrame {
                code: 1000,
                reason: Utf8Bytes::from_static(""),
            }));
            if socket.send(close).await.is_ok() {
                // Wait (bounded) for the peer's Close so the TCP connection ends cleanly.
                let _ = tokio::time::timeout(close_timeout, async {
                    while let Some(Ok(message)) = socket.next().await {
                        if matches!(message, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
            }
        }
        End::PeerClosed => {
            let _ = socket.close().await;
        }
        End::Broken | End::Replaced => {}
    }
    end
}

fn is_too_big(error: &axum::Error) -> bool {
    use std::error::Error as _;
    error
        .source()
        .and_then(|source| source.downcast_ref::<tokio_tungstenite::tungstenite::Error>())
        .is_some_and(|e| matches!(e, tokio_tungstenite::tungstenite::Error::Capacity(_)))
}

async fn write_batch(
    socket: &mut WebSocket,
    batch: &mut VecDeque<Bytes>,
    format: TransferFormat,
) -> Result<(), axum::Error> {
    for frame in batch.drain(..) {
        let message = match format {
            TransferFormat::Binary => Message::Binary(frame),
            TransferFormat::Text => match Utf8Bytes::try_from(frame) {
                Ok(text) => Message::Text(text),
                Err(_) => {
                    // A text protocol that produced invalid UTF-8 is a bug above us; never put
                    // it on the wire, where it would kill the client's connection.
                    tracing::error!("dropped an outbound text frame that is not UTF-8");
                    continue;
                }
            },
        };
        socket.feed(message).await?;
    }
    socket.flush().await
}
