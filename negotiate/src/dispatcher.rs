//! `{hub}`: one URL, dispatched on method and headers as ASP.NET Core's
//! `HttpConnectionDispatcher` does: WebSocket upgrade, Server-Sent Events, long poll (GET),
//! send (POST) and end (DELETE).

use crate::admission::{admit, Denied};
use crate::connection::{Inbound, TransportConnection, TransportKind};
use crate::endpoint::Endpoint;
use crate::handler::ConnectionHandler;
use crate::identity::Credentials;
use crate::manager::{Attached, ClaimError, DisposeOnDrop, Slot};
use crate::query::Query;
use crate::request::ConnectRequest;
use crate::response::{rejection, text};
use crate::transport::long_polling::{self, Polled};
use crate::transport::sse;
use crate::transport::websocket::{self, End};
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rt_core::Outbox;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

const NO_ID: &str = "Connection ID required";
const UNKNOWN_ID: &str = "No Connection with that ID";
const CHANGED_TRANSPORT: &str = "Cannot change transports mid-connection";

pub(crate) async fn dispatch<H: ConnectionHandler>(
    State(endpoint): State<Arc<Endpoint<H>>>,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let query = Query::parse(parts.uri.query());
    let result = match parts.method {
        Method::GET if is_websocket_upgrade(&parts.headers) => {
            open_websocket(&endpoint, &mut parts, &query).await
        }
        Method::GET if accepts_event_stream(&parts.headers) => {
            open_event_stream(&endpoint, &parts.headers, &query, connect_request(&parts))
        }
        Method::GET if query.get("id").is_none() => connection_info(&endpoint, &parts, &query),
        Method::GET => long_poll(&endpoint, &parts.headers, &query, connect_request(&parts)).await,
        Method::POST => send(&endpoint, &parts.headers, &query, body).await,
        Method::DELETE => delete(&endpoint, &parts.headers, &query),
        _ => Ok(StatusCode::METHOD_NOT_ALLOWED.into_response()),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// A request the endpoint turns down, answered in .NET's words.
pub(crate) enum Refusal {
    Text(StatusCode, &'static str),
    Other(Box<Response>),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Text(status, message) => {
                let mut response = text(status, message);
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    // The unread rest of the body makes the connection unusable: say so, so
                    // the client does not reuse it into a broken pipe.
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                response
            }
            Self::Other(response) => *response,
        }
    }
}

impl From<Response> for Refusal {
    fn from(response: Response) -> Self {
        Self::Other(Box::new(response))
    }
}

impl From<Denied> for Refusal {
    fn from(denied: Denied) -> Self {
        let response = match &denied {
            Denied::Invalid(rejected) => rejection(rejected),
            _ => (
                denied.status(),
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                denied.to_string(),
            )
                .into_response(),
        };
        Self::Other(Box::new(response))
    }
}

type Answer = Result<Response, Refusal>;

/// The connection the request's `id` names, if the request may use it (see `admission`).
fn known<H: ConnectionHandler>(
    endpoint: &Endpoint<H>,
    headers: &HeaderMap,
    query: &Query,
    is_poll: bool,
) -> Result<Arc<Slot>, Refusal> {
    let token = query
        .get("id")
        .ok_or_else(|| Refusal::Text(StatusCode::BAD_REQUEST, NO_ID))?;
    let slot = endpoint
        .manager
        .get(token)
        .ok_or_else(|| Refusal::Text(StatusCode::NOT_FOUND, UNKNOWN_ID))?;
    if let Err(denied) = admit(&*endpoint.handler, &slot.identity, headers, query, is_poll) {
        tracing::debug!(connection_id = %slot.id.redacted(), %denied, "transport request refused");
        return Err(denied.into());
    }
    Ok(slot)
}

fn claim(slot: &Slot, transport: TransportKind) -> Result<(), Refusal> {
    slot.claim(transport).map_err(|error| match error {
        ClaimError::InUse => Refusal::Text(
            StatusCode::CONFLICT,
            "Connection ID is already in use by another request",
        ),
        ClaimError::OtherTransport => Refusal::Text(StatusCode::BAD_REQUEST, CHANGED_TRANSPORT),
    })
}

fn enabled<H>(endpoint: &Endpoint<H>, transport: TransportKind) -> Result<(), Refusal> {
    if endpoint.options.transports.allows(transport) {
        Ok(())
    } else {
        Err(Refusal::Text(
            StatusCode::NOT_FOUND,
            "This transport is not supported by this endpoint.",
        ))
    }
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .map(|v| {
                v.split(',').any(|t| {
                    t.split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .eq_ignore_ascii_case(token)
                })
            })
            .unwrap_or(false)
    })
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, header::UPGRADE, "websocket")
        && has_token(headers, header::CONNECTION, "upgrade")
}

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    has_token(headers, header::ACCEPT, "text/event-stream")
}

/// What the application may read of the request that connects a transport.
fn connect_request(parts: &Parts) -> Arc<ConnectRequest> {
    Arc::new(ConnectRequest::new(
        parts.uri.clone(),
        parts.headers.clone(),
    ))
}

/// Start the application side of a connection whose transport was just chosen.
fn start<H: ConnectionHandler>(
    endpoint: &Endpoint<H>,
    slot: &Slot,
    transport: TransportKind,
    request: Arc<ConnectRequest>,
) -> Arc<Attached> {
    let (inbound_tx, inbound) = crate::inbound::channel(endpoint.options.inbound_queue_chunks);
    let outbox = Outbox::new(endpoint.options.max_outbound_queue_bytes);
    let attached = {
        // What was sent before the transport started comes first (`send` keeps it within the
        // queue's capacity, so it all fits), and under the lock `send` takes, so no send
        // slips in between.
        let mut early = slot.early.lock();
        for chunk in std::mem::take(&mut early.chunks) {
            if inbound_tx.try_send(Inbound::Data(chunk)).is_err() {
                tracing::warn!(connection_id = %slot.id.redacted(), "dropped early input");
            }
        }
        early.bytes = 0;
        let attached = Attached::new(inbound_tx, outbox.clone());
        *slot.attached.lock() = Some(attached.clone());
        attached
    };
    let connection = TransportConnection {
        id: slot.id.clone(),
        transport,
        identity: slot.identity.clone(),
        inbound,
        outbox: outbox.clone(),
        stateful_reconnect: slot.stateful && transport == TransportKind::WebSockets,
        request,
    };
    let span = tracing::info_span!("connection", connection_id = %slot.id.redacted(), transport = transport.name());
    let application = endpoint.handler.on_connected(connection);
    tokio::spawn(
        async move {
            tracing::debug!("connected");
            application.await;
            // The transport writes what is queued, then ends.
            outbox.close();
        }
        .instrument(span),
    );
    attached
}

async fn open_websocket<H: ConnectionHandler>(
    endpoint: &Arc<Endpoint<H>>,
    parts: &mut Parts,
    query: &Query,
) -> Answer {
    enabled(endpoint, TransportKind::WebSockets)?;
    let upgrade = WebSocketUpgrade::from_request_parts(parts, &())
        .await
        .map_err(|refused| Refusal::from(refused.into_response()))?;
    let (slot, reattach) = match query.get("id") {
        // Without negotiate (`skipNegotiation`): the request itself creates the connection.
        None => {
            let credentials = Credentials::from_request(&parts.headers, query);
            let identity = endpoint
                .handler
                .authenticate(&credentials)
                .map_err(|refused| Refusal::from(rejection(&refused)))?;
            let slot = endpoint
                .manager
                .create_active(identity, TransportKind::WebSockets);
            (slot, false)
        }
        Some(_) => {
            let slot = known(endpoint, &parts.headers, query, false)?;
            match slot.claim(TransportKind::WebSockets) {
                Ok(()) => (slot, false),
                // Stateful reconnect: the same token inside the window takes the connection
                // over, with no negotiate and no handshake.
                Err(ClaimError::InUse) if slot.stateful && slot.attached().is_some() => {
                    (slot, true)
                }
                Err(_) => {
                    claim(&slot, TransportKind::WebSockets)?;
                    unreachable!("claim failed a moment ago")
                }
            }
        }
    };
    let options = &endpoint.options;
    let upgrade = upgrade
        .read_buffer_size(options.websocket_read_buffer_bytes)
        .write_buffer_size(options.websocket_write_buffer_bytes)
        .max_message_size(options.max_websocket_message_bytes)
        .max_frame_size(options.max_websocket_message_bytes);
    let failed = {
        let (endpoint, slot) = (endpoint.clone(), slot.clone());
        move |error: axum::Error| {
            tracing::debug!(connection_id = %slot.id.redacted(), %error, "WebSocket upgrade failed");
            if !reattach {
                endpoint.manager.dispose(&slot);
            }
        }
    };
    let endpoint = endpoint.clone();
    let request = connect_request(parts);
    Ok(upgrade
        .on_failed_upgrade(failed)
        .on_upgrade(move |socket| async move {
            let span = tracing::info_span!("websocket", connection_id = %slot.id.redacted());
            serve_websocket(&endpoint, &slot, socket, reattach, request)
                .instrument(span)
                .await;
        }))
}

async fn serve_websocket<H: ConnectionHandler>(
    endpoint: &Endpoint<H>,
    slot: &Arc<Slot>,
    socket: axum::extract::ws::WebSocket,
    reattach: bool,
    request: Arc<ConnectRequest>,
) {
    let attached = match (reattach, slot.attached()) {
        (false, _) => start(endpoint, slot, TransportKind::WebSockets, request),
        (true, Some(attached)) => attached,
        (true, None) => return,
    };
    let replaced = CancellationToken::new();
    if let Some(previous) = attached.socket.lock().replace(replaced.clone()) {
        previous.cancel();
    }
    // The outbox has one reader: wait for the replaced socket's task to let go.
    let _writer = attached.writer.lock().await;
    let inbound = if slot.stateful {
        attached.inbound.lock().clone()
    } else {
        // The socket task owns the only sender: the application's inbound ends with it.
        attached.inbound.lock().take()
    };
    let Some(inbound) = inbound else {
        return;
    };
    if reattach {
        attached.poll.lock().idle_since = None;
        if !attached.outbox.reattach() || inbound.send(Inbound::Reattached).await.is_err() {
            endpoint.manager.dispose(slot);
            return;
        }
        tracing::debug!("stateful reconnect: socket re-attached");
    }
    // Boxed: inline, the socket loop's state (~1.2 KB) was laid out beside this function's
    // own instead of in place of it, and every idle connection paid for both.
    let end = Box::pin(websocket::serve(
        socket,
        inbound,
        attached.outbox.clone(),
        endpoint.options.close_timeout,
        replaced,
    ))
    .await;
    match end {
        End::Replaced => {}
        End::PeerClosed | End::Broken if slot.stateful && attached.outbox.is_open() => {
            // The client may come back with the same token within the disconnect timeout.
            attached.poll.lock().idle_since = Some(Instant::now());
            tracing::debug!(?end, "socket dropped; waiting for a stateful reconnect");
        }
        _ => endpoint.manager.dispose(slot),
    }
}

fn connection_info<H: ConnectionHandler>(
    endpoint: &Endpoint<H>,
    parts: &Parts,
    query: &Query,
) -> Answer {
    let credentials = Credentials::from_request(&parts.headers, query);
    match endpoint
        .handler
        .connection_info(&credentials, &parts.headers)
    {
        None => Err(Refusal::Text(StatusCode::BAD_REQUEST, NO_ID)),
        Some(Err(refused)) => Err(Refusal::from(rejection(&refused))),
        Some(Ok(info)) => Ok(crate::response::json(StatusCode::OK, &info)),
    }
}

fn open_event_stream<H: ConnectionHandler>(
    endpoint: &Arc<Endpoint<H>>,
    headers: &HeaderMap,
    query: &Query,
    request: Arc<ConnectRequest>,
) -> Answer {
    enabled(endpoint, TransportKind::ServerSentEvents)?;
    let slot = known(endpoint, headers, query, false)?;
    claim(&slot, TransportKind::ServerSentEvents)?;
    let attached = start(endpoint, &slot, TransportKind::ServerSentEvents, request);
    // No reconnect window for SSE: when the GET ends, the connection ends.
    let on_end = DisposeOnDrop {
        manager: endpoint.manager.clone(),
        slot,
    };
    Ok(sse::response(attached.outbox.clone(), on_end))
}

async fn long_poll<H: ConnectionHandler>(
    endpoint: &Arc<Endpoint<H>>,
    headers: &HeaderMap,
    query: &Query,
    request: Arc<ConnectRequest>,
) -> Answer {
    enabled(endpoint, TransportKind::LongPolling)?;
    let slot = known(endpoint, headers, query, true)?;
    match slot.transport() {
        None => {
            claim(&slot, TransportKind::LongPolling)?;
            let attached = start(endpoint, &slot, TransportKind::LongPolling, request);
            attached.poll.lock().idle_since = Some(Instant::now());
            // The first poll answers at once: the client sends its handshake only after it.
            return Ok(long_polling::response(StatusCode::OK, Bytes::new()));
        }
        Some(TransportKind::LongPolling) => {}
        Some(_) => return Err(Refusal::Text(StatusCode::BAD_REQUEST, CHANGED_TRANSPORT)),
    }
    let Some(attached) = slot.attached() else {
        return Err(Refusal::Text(StatusCode::NOT_FOUND, UNKNOWN_ID));
    };
    Ok(
        match long_polling::poll(attached, endpoint.options.long_poll_timeout).await {
            Polled::Data(body) => long_polling::response(StatusCode::OK, body),
            Polled::Superseded => long_polling::response(StatusCode::NO_CONTENT, Bytes::new()),
            Polled::Ended => {
                endpoint.manager.dispose(&slot);
                long_polling::response(StatusCode::NO_CONTENT, Bytes::new())
            }
        },
    )
}

/// `POST {hub}?id=…`: the body goes into the connection's inbound byte stream as it is (it may
/// hold several messages, or part of one). Before a transport started the connection, as
/// ASP.NET Core does, it is kept and fed to the application when the connection starts.
async fn send<H: ConnectionHandler>(
    endpoint: &Arc<Endpoint<H>>,
    headers: &HeaderMap,
    query: &Query,
    body: Body,
) -> Answer {
    let slot = known(endpoint, headers, query, false)?;
    if slot.transport() == Some(TransportKind::WebSockets) {
        return Err(Refusal::Text(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST requests are not allowed for WebSocket connections.",
        ));
    }
    let gone = || Refusal::Text(StatusCode::NOT_FOUND, UNKNOWN_ID);
    let bytes = axum::body::to_bytes(body, endpoint.options.max_send_bytes)
        .await
        .map_err(|_| {
            Refusal::Text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is too large or could not be read.",
            )
        })?;
    let attached = {
        // `start` takes the same lock to drain what waits here: a send lands either in the
        // early input or after it, never beside it.
        let mut early = slot.early.lock();
        match slot.attached() {
            Some(attached) => attached,
            None => {
                let options = &endpoint.options;
                if early.chunks.len() >= options.inbound_queue_chunks
                    || early.bytes + bytes.len() > options.max_send_bytes
                {
                    return Err(Refusal::Text(
                        StatusCode::BAD_REQUEST,
                        "The connection has not started a transport yet, and holds no more input until it does.",
                    ));
                }
                if !bytes.is_empty() {
                    early.bytes += bytes.len();
                    early.chunks.push(bytes);
                }
                return Ok(text(StatusCode::OK, ""));
            }
        }
    };
    let sender = attached.inbound.lock().clone().ok_or_else(gone)?;
    if !bytes.is_empty() {
        sender
            .send(Inbound::Data(bytes))
            .await
            .map_err(|_| gone())?;
    }
    Ok(text(StatusCode::OK, ""))
}

fn delete<H: ConnectionHandler>(
    endpoint: &Endpoint<H>,
    headers: &HeaderMap,
    query: &Query,
) -> Answer {
    let slot = known(endpoint, headers, query, false)?;
    if slot.transport() != Some(TransportKind::LongPolling) {
        return Err(Refusal::Text(
            StatusCode::BAD_REQUEST,
            "Cannot terminate this connection using the DELETE endpoint.",
        ));
    }
    tracing::debug!(connection_id = %slot.id.redacted(), "ended by DELETE");
    endpoint.manager.dispose(&slot);
    Ok(text(StatusCode::ACCEPTED, ""))
}
