//! The WebSocket upgrade at `/api/_rt/ws/client` and `/client/hubs/{hub}`: the subprotocol,
//! the access token (or the reconnection token of a recovering client), the `connect` event,
//! and the start of a connection: registered, its token's groups joined, `system/connected`
//! first.

use super::connection::{self, Logical};
use super::token::{self, ClientClaims};
use super::upstream::{ConnectRefusal, ConnectRequest, ConnectionContext};
use super::WebPubSub;
use crate::api_error::ApiError;
use crate::channels::On;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use negotiate::Query;
use router::Session;
use rt_core::{Identity, Outbox, RandomId};
use std::collections::HashMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use webpubsub::frames;
use webpubsub::roles::Permissions;
use webpubsub::Subprotocol;

pub(crate) async fn connect_rthub(
    State(wps): State<Arc<WebPubSub>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    connect(wps, upgrade, raw, headers).await
}

pub(crate) async fn connect_azure(
    State(wps): State<Arc<WebPubSub>>,
    Path(hub): Path<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !hub.eq_ignore_ascii_case(&wps.config.hub) {
        return ApiError::not_found(format!(
            "There is no hub '{hub}': this server's hub is '{}'.",
            wps.config.hub
        ))
        .into_response();
    }
    connect(wps, upgrade, raw, headers).await
}

/// The subprotocol the client asked for, of the two this server speaks.
fn subprotocol(headers: &HeaderMap) -> Option<Subprotocol> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|name| Subprotocol::from_name(name.trim()))
}

async fn connect(
    wps: Arc<WebPubSub>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    raw: Option<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return ApiError::bad_request(
            "This is the Web PubSub WebSocket endpoint: connect with a WebSocket client.",
        )
        .into_response();
    };
    let Some(subprotocol) = subprotocol(&headers) else {
        return ApiError::bad_request(format!(
            "Ask for the WebSocket subprotocol {} or {}.",
            webpubsub::JSON,
            webpubsub::JSON_RELIABLE
        ))
        .into_response();
    };
    // The socket takes messages up to four times the limit, so that one a little too large
    // is read whole and refused with a 1009 that reaches the client (cut off mid-frame, the
    // unread rest would reset the TCP connection before the Close arrives).
    let hard_limit = wps.config.max_message_bytes.saturating_mul(4);
    // Small socket buffers, as SignalR's: tungstenite's 128 KiB defaults are kept per idle
    // connection, and the read buffer never bounds a message's size.
    let defaults = negotiate::ConnectionOptions::default();
    let upgrade = upgrade
        .protocols([subprotocol.name()])
        .read_buffer_size(defaults.websocket_read_buffer_bytes)
        .write_buffer_size(defaults.websocket_write_buffer_bytes)
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit);
    let query = Query::parse(raw.as_deref());
    if let (Some(id), Some(reconnection)) = (
        query.get("awps_connection_id"),
        query.get("awps_reconnection_token"),
    ) {
        return recover(wps, upgrade, subprotocol, id, reconnection);
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let presented = query.get("access_token").or(bearer).unwrap_or("");
    let claims = match token::verify(&wps.signing_key, presented, &wps.config.hub) {
        Ok(claims) => claims,
        Err(error) => return ApiError::unauthorized(error.to_string()).into_response(),
    };
    let id = RandomId::generate();
    let mut identity = claims.identity();
    let mut roles = claims.role.clone();
    let mut groups = claims.groups.clone();
    let context = ConnectionContext {
        hub: wps.config.hub.as_str().into(),
        connection_id: id.as_arc().clone(),
        user_id: identity.user_id.clone(),
        subprotocol: subprotocol.name(),
    };
    let request = ConnectRequest {
        context: context.clone(),
        claims: claim_lists(&claims),
        query: query_lists(raw.as_deref()),
        headers: header_lists(&headers),
        subprotocols: vec![subprotocol.name().to_owned()],
    };
    let context = match wps.upstream.connect(&request).await {
        Ok(None) => context,
        Ok(Some(answer)) => {
            if let Some(user) = answer.user_id.filter(|u| !u.is_empty()) {
                identity.user_id = Some(user.as_str().into());
                if identity.kind == rt_core::IdentityKind::Anonymous {
                    identity.kind = rt_core::IdentityKind::User;
                }
            }
            // As the service: the handler's roles and groups add to the token's.
            for role in answer.roles.unwrap_or_default() {
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
            for group in answer.groups.unwrap_or_default() {
                if !groups.contains(&group) {
                    groups.push(group);
                }
            }
            ConnectionContext {
                user_id: identity.user_id.clone(),
                ..context
            }
        }
        Err(refusal) => return connect_refused(refusal),
    };
    let permissions = Permissions::from_roles(roles.iter().map(String::as_str));
    upgrade
        .on_upgrade(move |socket| async move {
            let setup = Setup {
                id,
                subprotocol,
                identity,
                permissions,
                groups,
                context,
            };
            start(wps, socket, setup).await
        })
        .into_response()
}

fn connect_refused(refusal: ConnectRefusal) -> Response {
    tracing::debug!(%refusal, "the event handler refused a Web PubSub connection");
    match &refusal {
        ConnectRefusal::BadRequest(text) => ApiError::bad_request(text.clone()),
        ConnectRefusal::Unauthorized(text) => ApiError::unauthorized(text.clone()),
        ConnectRefusal::Forbidden(text) => ApiError::forbidden(text.clone()),
        ConnectRefusal::Failed(_) => ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "event_handler_failed",
            "The event handler did not accept the connection.",
        ),
    }
    .into_response()
}

struct Setup {
    id: RandomId,
    subprotocol: Subprotocol,
    identity: Identity,
    permissions: Permissions,
    groups: Vec<String>,
    context: ConnectionContext,
}

async fn start(wps: Arc<WebPubSub>, socket: WebSocket, setup: Setup) {
    let config = &wps.config;
    let outbox = Outbox::new(config.max_unacked_bytes);
    outbox.set_farewell(frames::disconnected(
        "The connection fell too far behind and was closed.",
    ));
    let reliable = setup.subprotocol.is_reliable();
    if reliable {
        outbox.enable_replay(None);
        outbox.limit_unacked(config.max_unacked_messages);
    }
    // Reachable in the group tables before its first frame, which is still `connected`.
    outbox.hold();
    let identity = Arc::new(setup.identity);
    let session = Session::on_transport(
        setup.id,
        identity.clone(),
        wps.encoder(setup.subprotocol),
        outbox.clone(),
        "websockets",
    );
    let registration = wps.router.register(session.clone());
    let own = session.id().as_str();
    // The token's (or the connect handler's) groups: chosen by the access key's holder or
    // checked when rthub issued the token, so they are joined with the server's authority.
    let server = Identity {
        is_server: true,
        authenticated: true,
        ..Identity::default()
    };
    for group in &setup.groups {
        let joined = match wps.channels.wire(group) {
            Ok(channel) => {
                wps.channels
                    .join(&server, On::Own(own), &channel, false)
                    .await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = joined {
            tracing::debug!(connection_id = %session.id().redacted(), %group, %error, "a token's group was not joined");
        }
    }
    let reconnection_token = reliable.then(|| wps.connections.new_reconnection_token());
    outbox.release_with_first(frames::connected(
        identity.user_id.as_deref(),
        own,
        reconnection_token.as_deref(),
    ));
    let logical = Arc::new(Logical::new(
        setup.subprotocol,
        identity,
        setup.permissions,
        setup.context,
        registration,
        outbox,
        reconnection_token,
    ));
    wps.connections.insert(logical.clone());
    tracing::debug!(
        connection_id = %session.id().redacted(),
        subprotocol = setup.subprotocol.name(),
        "a Web PubSub connection opened"
    );
    wps.upstream.connected(&logical.context);
    connection::run(wps, logical, socket).await;
}

/// A reliable client coming back: take the connection over and write its unacknowledged
/// messages again; otherwise accept and close with 1008, which tells the client to start
/// afresh (an HTTP error would make it keep trying).
fn recover(
    wps: Arc<WebPubSub>,
    upgrade: WebSocketUpgrade,
    subprotocol: Subprotocol,
    id: &str,
    reconnection: &str,
) -> Response {
    let logical = wps.connections.get(id).filter(|logical| {
        logical.subprotocol == subprotocol
            && logical
                .reconnection_token
                .as_deref()
                .is_some_and(|token| bool::from(token.as_bytes().ct_eq(reconnection.as_bytes())))
    });
    upgrade
        .on_upgrade(move |mut socket| async move {
            let Some(logical) = logical else {
                return refuse_recovery(&mut socket, "There is no such connection to recover.").await;
            };
            let outbox = &logical.outbox;
            outbox.hold();
            if !outbox.reattach() {
                outbox.release_with_front(Vec::new());
                return refuse_recovery(&mut socket, "The connection can no longer be recovered.")
                    .await;
            }
            outbox.release_with_first(frames::connected(
                logical.identity.user_id.as_deref(),
                &logical.id,
                logical.reconnection_token.as_deref(),
            ));
            tracing::debug!(connection_id = %logical.session.id().redacted(), "a Web PubSub connection recovered");
            connection::run(wps, logical, socket).await;
        })
        .into_response()
}

/// Only a Close: the client keeps the `system/disconnected` reason its connection ended with.
async fn refuse_recovery(socket: &mut WebSocket, reason: &'static str) {
    tracing::debug!(reason, "refused a Web PubSub recovery");
    let close = Message::Close(Some(CloseFrame {
        code: 1008,
        reason: Utf8Bytes::from_static(reason),
    }));
    let _ = socket.send(close).await;
}

/// The token's claims as the service passes them to the `connect` handler: lists of strings.
fn claim_lists(claims: &ClientClaims) -> HashMap<String, Vec<String>> {
    let mut lists = HashMap::new();
    if let Some(sub) = &claims.sub {
        lists.insert("sub".to_owned(), vec![sub.clone()]);
    }
    if !claims.role.is_empty() {
        lists.insert("role".to_owned(), claims.role.clone());
    }
    if !claims.groups.is_empty() {
        lists.insert("webpubsub.group".to_owned(), claims.groups.clone());
    }
    lists.insert("aud".to_owned(), vec![claims.aud.clone()]);
    lists.insert("exp".to_owned(), vec![claims.exp.to_string()]);
    lists
}

fn query_lists(raw: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut lists: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        // The token is a credential: the handler gets the claims instead.
        if name != "access_token" {
            lists
                .entry(name.into_owned())
                .or_default()
                .push(value.into_owned());
        }
    }
    lists
}

fn header_lists(headers: &HeaderMap) -> HashMap<String, Vec<String>> {
    let mut lists: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in headers {
        if name == header::AUTHORIZATION || name == header::COOKIE {
            continue;
        }
        if let Ok(value) = value.to_str() {
            lists
                .entry(name.as_str().to_owned())
                .or_default()
                .push(value.to_owned());
        }
    }
    lists
}
