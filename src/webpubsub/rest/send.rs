//! Sends: to everyone (`POST /:send`, dispatched with the other hub actions in
//! `connections.rs`), a group, a user, a connection; and the closes of a group's or a user's
//! connections, which share their paths.
//!
//! A group send is a channel message from the server ([`ChannelService::send`]): SignalR,
//! Web PubSub and `/realtime` members of the channel get it as any server send to it. Sends to
//! users, connections and everyone are not about a group: they go as
//! [`Outbound::Direct`] (Web PubSub's `from: "server"` message; SignalR's `message` with a
//! null group). The answer is 202 with no body, as the service's: handed to the router, not
//! necessarily delivered.

use super::filter::Filter;
use super::{local_sessions, redacted, select, server_identity, status, unknown_action};
use super::{QueryParams, WebPubSub};
use crate::api_error::{ApiError, ApiPath as Path};
use crate::channels::{ChannelService, Sender};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use router::{DirectMessage, Disconnect, GroupMessage, Outbound, Payload, Scope, Target};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
pub(super) struct ConnectionPath {
    connection: String,
    action: String,
}

#[derive(Deserialize)]
pub(super) struct GroupPath {
    group: String,
    action: String,
}

#[derive(Deserialize)]
pub(super) struct UserPath {
    user: String,
    action: String,
}

/// A request body as a message: `application/json` (dataType json; it must parse),
/// `text/plain` (text; UTF-8), `application/octet-stream` (binary). Anything else is 415,
/// as the service answers.
pub(super) fn payload(
    state: &WebPubSub,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Payload, ApiError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let body = body.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
            ApiError::too_large(format!(
                "The message is larger than {} bytes ([webpubsub] max_message_bytes).",
                state.config.max_message_bytes
            ))
        }
        other => ApiError::bad_request(format!("The body could not be read: {other}")),
    })?;
    match media_type.as_deref() {
        Some("application/json") => serde_json::from_slice(&body)
            .map(Payload::Json)
            .map_err(|e| ApiError::bad_request(format!("The body is not valid JSON: {e}"))),
        Some("text/plain") => String::from_utf8(body.to_vec())
            .map(|text| Payload::Text(text.into()))
            .map_err(|_| ApiError::bad_request("A text/plain body must be UTF-8.")),
        Some("application/octet-stream") => Ok(Payload::Binary(body)),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Messages are application/json, text/plain or application/octet-stream.",
        )),
    }
}

/// What every send checks before the body: `messageTtlSeconds` (0-300, as the service takes
/// it; nothing is held for later here, so it changes nothing) and `filter`.
fn send_query(query: &QueryParams) -> Result<Option<Filter>, ApiError> {
    query.number("messageTtlSeconds", 0, 300)?;
    query.filter()
}

/// `POST /api/hubs/{hub}/:send`. With a filter, the connections of this node it selects.
pub(super) fn send_to_all(
    state: &WebPubSub,
    query: &QueryParams,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let filter = send_query(query)?;
    let data = payload(state, headers, body)?;
    let target = match filter {
        None => Target::All.excluding(query.excluded()),
        Some(filter) => {
            let ids = select(local_sessions(state), &filter, &query.excluded());
            Target::Connections(ids)
        }
    };
    direct(state, target, data);
    Ok(status(StatusCode::ACCEPTED))
}

/// A filter picks connections of this node, so a filtered send stays on it; every other send
/// reaches every node.
fn scope_of(target: &Target) -> Scope {
    match target {
        Target::Connections(_) => Scope::Local,
        _ => Scope::Cluster,
    }
}

fn direct(state: &WebPubSub, target: Target, data: Payload) {
    let message = Arc::new(Outbound::Direct(DirectMessage { data }));
    let scope = scope_of(&target);
    let delivery = state.router.send(target, scope, message);
    tracing::debug!(
        delivered = delivery.delivered,
        "Web PubSub REST: sent from the server"
    );
}

/// `POST /api/hubs/{hub}/connections/{connectionId}/:send`: 404 for a connection no node has
/// (as the emulator answers), else 202.
pub(super) async fn connection_action(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<ConnectionPath>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    if path.action != ":send" {
        return Err(unknown_action("POST", &path.action));
    }
    let query = QueryParams::parse(query.as_deref());
    query.number("messageTtlSeconds", 0, 300)?;
    let data = payload(&state, &headers, body)?;
    let identity = state.router.identity(&path.connection).await;
    if identity
        .map_err(crate::channels::ChannelError::from)?
        .is_none()
    {
        return Err(ApiError::not_found("There is no connection with that id."));
    }
    tracing::debug!(
        connection_id = %redacted(&path.connection),
        "Web PubSub REST: send to a connection"
    );
    direct(&state, Target::connection(&path.connection), data);
    Ok(status(StatusCode::ACCEPTED))
}

/// `POST /api/hubs/{hub}/groups/{group}/:send` and `…/:closeConnections`.
pub(super) async fn group_action(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<GroupPath>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query.as_deref());
    let channel = state.channels.wire(&path.group)?;
    match path.action.as_str() {
        ":send" => {
            let filter = send_query(&query)?;
            let data = payload(&state, &headers, body)?;
            let excluded = query.excluded();
            let target = match filter {
                None if excluded.is_empty() => None,
                None => Some(Target::group(&channel.wire).excluding(excluded)),
                Some(filter) => {
                    let members = state.router.members(&channel.wire, 0, usize::MAX).members;
                    let sessions = members
                        .iter()
                        .filter_map(|member| state.router.session(&member.connection_id));
                    Some(Target::Connections(select(sessions, &filter, &excluded)))
                }
            };
            send_to_group(&state.channels, &state.router, &channel, data, target)?;
            Ok(status(StatusCode::ACCEPTED))
        }
        ":closeConnections" => {
            let target = Target::group(&channel.wire).excluding(query.excluded());
            close(&state, target, &query)?;
            Ok(status(StatusCode::NO_CONTENT))
        }
        other => Err(unknown_action("POST", other)),
    }
}

/// A server message to a channel. With `excluded` ids or a filter (`target`, the members
/// that get it) the channel service, which knows neither, is asked only for the rules: for
/// the server, with no sending connection, they are the name rules `wire` already applied, so
/// the message it would make goes to those members.
fn send_to_group(
    channels: &ChannelService,
    router: &router::Router,
    channel: &crate::channels::Channel,
    data: Payload,
    target: Option<Target>,
) -> Result<(), ApiError> {
    let delivery = match target {
        None => {
            let identity = server_identity();
            let sender = Sender {
                identity: &identity,
                connection_id: None,
                echo: true,
            };
            channels.send(sender, channel, data)?
        }
        Some(target) => {
            let message = Arc::new(GroupMessage::new(channel.wire.as_str(), data).into());
            let scope = scope_of(&target);
            router.send(target, scope, message)
        }
    };
    tracing::debug!(group = %channel.wire, delivered = delivery.delivered, "Web PubSub REST: sent to a group");
    Ok(())
}

/// `POST /api/hubs/{hub}/users/{userId}/:send` and `…/:closeConnections`.
pub(super) async fn user_action(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<UserPath>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query.as_deref());
    let target = Target::User(path.user.as_str().into()).excluding(query.excluded());
    match path.action.as_str() {
        ":send" => {
            let filter = send_query(&query)?;
            let data = payload(&state, &headers, body)?;
            let target = match filter {
                None => target,
                Some(filter) => {
                    let connections = state.router.user_connections(&path.user);
                    let sessions = connections.iter().filter_map(|id| state.router.session(id));
                    Target::Connections(select(sessions, &filter, &query.excluded()))
                }
            };
            direct(&state, target, data);
            Ok(status(StatusCode::ACCEPTED))
        }
        ":closeConnections" => {
            close(&state, target, &query)?;
            Ok(status(StatusCode::NO_CONTENT))
        }
        other => Err(unknown_action("POST", other)),
    }
}

/// Close `target`'s connections on every node, with the `reason` of the query: each protocol
/// writes its last frame (SignalR's `Close`, Web PubSub's `system/disconnected`) and closes.
pub(super) fn close(
    state: &WebPubSub,
    target: Target,
    query: &QueryParams,
) -> Result<(), ApiError> {
    let reason = query
        .one("reason")?
        .filter(|r| !r.is_empty())
        .map(Arc::from);
    let message = Arc::new(Outbound::Close(Disconnect { reason }));
    let delivery = state.router.send(target, Scope::Cluster, message);
    tracing::debug!(
        closed = delivery.delivered,
        "Web PubSub REST: closed connections"
    );
    Ok(())
}
