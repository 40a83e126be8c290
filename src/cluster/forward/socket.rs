//! Forwarding a WebSocket: open one to the node that has the connection first (so that its
//! refusal, a 404 or a 401, reaches the client as the HTTP answer it would have got there),
//! then accept the client's and pipe messages both ways. A Close is passed on with its code
//! and reason; a socket that breaks without one breaks the other too, so each end sees what
//! it would have seen without this node in between (a reliable Web PubSub client recovers
//! after an abnormal closure, and not after a 1008).

use super::{is_hop_header, FORWARDED};
use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use router::NodeId;
use std::borrow::Cow;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self as ts, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Largest message (and frame) relayed: as large as either end takes by default; the node
/// that has the connection applies the endpoint's own limit (and closes with 1009).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// After one side's Close, how long the other has to answer with its own.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

type Upstream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Headers the WebSocket handshake of each hop makes for itself.
fn is_handshake_header(name: &header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "sec-websocket-key"
            | "sec-websocket-version"
            | "sec-websocket-extensions"
            | "sec-websocket-accept"
            | "content-length"
    )
}

/// `Err` gives the request back when the owner cannot be reached at all (it died since its
/// last heartbeat): this node then answers as for any connection it does not have.
pub(super) async fn pipe(
    node: NodeId,
    target: &str,
    request: Request,
) -> Result<Response, Request> {
    let (mut parts, body) = request.into_parts();
    let url = target
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1);
    let mut outgoing = match url.into_client_request() {
        Ok(outgoing) => outgoing,
        Err(error) => return Ok(unreachable_owner(&error)),
    };
    for (name, value) in &parts.headers {
        if !is_hop_header(name) && !is_handshake_header(name) {
            outgoing.headers_mut().append(name.clone(), value.clone());
        }
    }
    if let Ok(value) = HeaderValue::from_str(&node.to_string()) {
        outgoing.headers_mut().insert(FORWARDED, value);
    }
    // The endpoints' small socket buffers (tungstenite's defaults cost ~137 KB per idle
    // socket, and a forwarded connection has two here).
    let buffers = negotiate::ConnectionOptions::default();
    let config = WebSocketConfig::default()
        .read_buffer_size(buffers.websocket_read_buffer_bytes)
        .write_buffer_size(buffers.websocket_write_buffer_bytes)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    // Before the client's upgrade is taken from the request, so that it can still be
    // served here.
    let (upstream, answer) =
        match tokio_tungstenite::connect_async_with_config(outgoing, Some(config), true).await {
            Ok(connected) => connected,
            Err(ts::Error::Http(refused)) => return Ok(refusal(*refused)),
            Err(ts::Error::Io(error)) => {
                tracing::debug!(%error, "the node that had a connection is gone");
                return Err(Request::from_parts(parts, body));
            }
            Err(error) => return Ok(unreachable_owner(&error)),
        };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    // The subprotocol the owner chose (Web PubSub's), which the client asked for.
    let chosen = answer
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(|v| Cow::Owned(v.to_owned()));
    let upgrade = match chosen {
        Some(protocol) => upgrade.protocols([protocol]),
        None => upgrade,
    };
    Ok(upgrade
        .read_buffer_size(buffers.websocket_read_buffer_bytes)
        .write_buffer_size(buffers.websocket_write_buffer_bytes)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |client| relay(client, upstream)))
}

/// The owner's HTTP answer to the handshake, as the client's.
fn refusal(refused: ts::http::Response<Option<Vec<u8>>>) -> Response {
    let (parts, body) = refused.into_parts();
    let mut response = Response::new(axum::body::Body::from(body.unwrap_or_default()));
    *response.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if !is_hop_header(name) && !name.as_str().starts_with("access-control-") {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

fn unreachable_owner(error: &ts::Error) -> Response {
    tracing::warn!(%error, "cannot open a WebSocket to the node that has a connection");
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "The server that has this connection did not answer.",
    )
        .into_response()
}

/// How one direction of the pipe ended.
enum End {
    /// A Close went through: the other direction gets [`CLOSE_WAIT`] to finish.
    Closed,
    /// The socket failed or ended without a Close.
    Broken,
}

async fn relay(client: WebSocket, upstream: Upstream) {
    let (mut to_client, mut from_client) = client.split();
    let (mut to_owner, mut from_owner) = upstream.split();
    let inbound = async {
        while let Some(Ok(message)) = from_client.next().await {
            let (message, closing) = match message {
                ws::Message::Text(text) => match Utf8Bytes::try_from(bytes::Bytes::from(text)) {
                    Ok(text) => (ts::Message::Text(text), false),
                    Err(_) => return End::Broken,
                },
                ws::Message::Binary(data) => (ts::Message::Binary(data), false),
                ws::Message::Close(frame) => (ts::Message::Close(frame.map(owner_close)), true),
                // Each hop answers its own pings.
                ws::Message::Ping(_) | ws::Message::Pong(_) => continue,
            };
            if to_owner.send(message).await.is_err() {
                return End::Broken;
            }
            if closing {
                return End::Closed;
            }
        }
        End::Broken
    };
    let outbound = async {
        while let Some(Ok(message)) = from_owner.next().await {
            let (message, closing) = match message {
                ts::Message::Text(text) => {
                    match ws::Utf8Bytes::try_from(bytes::Bytes::from(text)) {
                        Ok(text) => (ws::Message::Text(text), false),
                        Err(_) => return End::Broken,
                    }
                }
                ts::Message::Binary(data) => (ws::Message::Binary(data), false),
                ts::Message::Close(frame) => (ws::Message::Close(frame.map(client_close)), true),
                ts::Message::Ping(_) | ts::Message::Pong(_) | ts::Message::Frame(_) => continue,
            };
            if to_client.send(message).await.is_err() {
                return End::Broken;
            }
            if closing {
                return End::Closed;
            }
        }
        End::Broken
    };
    // A broken side ends both at once (dropping a socket without a Close is what tells its
    // peer it broke); a closed one lets the other finish its close handshake.
    let closed = {
        tokio::pin!(inbound, outbound);
        tokio::select! {
            end = &mut inbound => match end {
                End::Closed => {
                    let _ = tokio::time::timeout(CLOSE_WAIT, outbound).await;
                    true
                }
                End::Broken => false,
            },
            end = &mut outbound => match end {
                End::Closed => {
                    let _ = tokio::time::timeout(CLOSE_WAIT, inbound).await;
                    true
                }
                End::Broken => false,
            },
        }
    };
    if closed {
        // Each side's answer to the Close it sent (queued when it arrived) goes out now.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            let _ = to_client.close().await;
            let _ = to_owner.close().await;
        })
        .await;
    }
}

fn owner_close(frame: ws::CloseFrame) -> ts::protocol::CloseFrame {
    ts::protocol::CloseFrame {
        code: CloseCode::from(frame.code),
        reason: Utf8Bytes::try_from(bytes::Bytes::from(frame.reason)).unwrap_or_default(),
    }
}

fn client_close(frame: ts::protocol::CloseFrame) -> ws::CloseFrame {
    ws::CloseFrame {
        code: u16::from(frame.code),
        reason: ws::Utf8Bytes::try_from(bytes::Bytes::from(frame.reason)).unwrap_or_default(),
    }
}
