//! Group and user membership, their existence, a group's connections, and permissions.
//!
//! Joins and leaves go through [`ChannelService`](crate::channels::ChannelService) as the
//! server identity: names must be channel wire names (`app:room`), private channels are the
//! server's to join, entity channels are refused (400, PRODUCT.md section 4).
//!
//! A user is its connections: adding a user to a group adds the user's connections of this
//! node that are open now (the router knows a user's connections per node; connections that
//! open later do not inherit it, and neither do the user's connections on other nodes). The
//! existence checks of groups and users look at this node too.

use super::{origin, redacted, server_identity, status, QueryParams, WebPubSub, API_VERSION};
use crate::api_error::{ApiError, ApiPath as Path};
use crate::channels::{Channel, ChannelError, On};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The largest page of a group's connections, as the service allows.
const MAX_PAGE: u64 = 200;

#[derive(Deserialize)]
pub(super) struct GroupPath {
    group: String,
}

#[derive(Deserialize)]
pub(super) struct GroupConnectionPath {
    group: String,
    connection: String,
}

#[derive(Deserialize)]
pub(super) struct ConnectionPath {
    connection: String,
}

#[derive(Deserialize)]
pub(super) struct UserPath {
    user: String,
}

#[derive(Deserialize)]
pub(super) struct UserGroupPath {
    user: String,
    group: String,
}

fn found(yes: bool) -> Response {
    status(if yes {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

/// `HEAD /api/hubs/{hub}/groups/{group}`: 200 when the group has a member on any node.
pub(super) async fn group_exists(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<GroupPath>,
) -> Result<Response, ApiError> {
    let channel = state.channels.wire(&path.group)?;
    let members = state.router.cluster_members(&channel.wire, 0, 0).await;
    let members = members.map_err(crate::channels::ChannelError::from)?;
    Ok(found(members.count > 0))
}

/// `HEAD /api/hubs/{hub}/users/{userId}`: 200 when the user has a connection on any node.
pub(super) async fn user_exists(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<UserPath>,
) -> Result<Response, ApiError> {
    Ok(found(
        !user_connections(&state, &path.user).await?.is_empty(),
    ))
}

/// The user's connections on every node.
async fn user_connections(state: &WebPubSub, user: &str) -> Result<Vec<Arc<str>>, ApiError> {
    let connections = state.router.cluster_user_connections(user).await;
    Ok(connections.map_err(ChannelError::from)?)
}

/// `PUT /api/hubs/{hub}/groups/{group}/connections/{connectionId}`: 200, or 404 for a
/// connection no node has.
pub(super) async fn add_connection(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<GroupConnectionPath>,
) -> Result<Response, ApiError> {
    let channel = state.channels.wire(&path.group)?;
    let identity = server_identity();
    state
        .channels
        .join(&identity, On::Named(&path.connection), &channel, false)
        .await?;
    tracing::debug!(connection_id = %redacted(&path.connection), group = %channel.wire, "Web PubSub REST: joined");
    Ok(status(StatusCode::OK))
}

/// `DELETE /api/hubs/{hub}/groups/{group}/connections/{connectionId}`: 204, or 404 for a
/// connection no node has.
pub(super) async fn remove_connection(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<GroupConnectionPath>,
) -> Result<Response, ApiError> {
    let channel = state.channels.wire(&path.group)?;
    let identity = server_identity();
    state
        .channels
        .leave(&identity, On::Named(&path.connection), &channel)
        .await?;
    Ok(status(StatusCode::NO_CONTENT))
}

/// Take a connection of any node out of every channel it is in. Groups that are not
/// channels (none today; a protocol's own bookkeeping, should one appear) are left alone.
async fn leave_all(state: &WebPubSub, connection: &str) -> Result<(), ApiError> {
    let groups = match state.router.groups_of(connection).await {
        Ok(groups) => groups,
        Err(router::RouterError::UnknownConnection) => return Ok(()),
        Err(error) => return Err(ChannelError::from(error).into()),
    };
    for group in groups {
        if state.channels.wire(&group).is_ok() {
            // The connection may close meanwhile: then it is out of every group anyway.
            let _ = state.router.leave(connection, &group).await;
        }
    }
    Ok(())
}

/// `DELETE /api/hubs/{hub}/connections/{connectionId}/groups`: 204.
pub(super) async fn remove_connection_from_all(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<ConnectionPath>,
) -> Result<Response, ApiError> {
    leave_all(&state, &path.connection).await?;
    Ok(status(StatusCode::NO_CONTENT))
}

/// `PUT /api/hubs/{hub}/users/{userId}/groups/{group}`: the user's open connections on every
/// node join; 404 when it has none (as the emulator answers for an unknown user).
pub(super) async fn add_user(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<UserGroupPath>,
) -> Result<Response, ApiError> {
    let channel = state.channels.wire(&path.group)?;
    let connections = user_connections(&state, &path.user).await?;
    if connections.is_empty() {
        return Err(ApiError::not_found("That user has no connection."));
    }
    each_connection(&state, &connections, &channel, true).await?;
    Ok(status(StatusCode::OK))
}

/// `DELETE /api/hubs/{hub}/users/{userId}/groups/{group}`: 204.
pub(super) async fn remove_user(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<UserGroupPath>,
) -> Result<Response, ApiError> {
    let channel = state.channels.wire(&path.group)?;
    let connections = user_connections(&state, &path.user).await?;
    each_connection(&state, &connections, &channel, false).await?;
    Ok(status(StatusCode::NO_CONTENT))
}

/// Join (or leave) each of `connections` to `channel`; one that closed meanwhile is skipped.
pub(super) async fn each_connection(
    state: &WebPubSub,
    connections: &[Arc<str>],
    channel: &Channel,
    join: bool,
) -> Result<(), ApiError> {
    let identity = server_identity();
    for connection in connections {
        let on = On::Named(connection);
        let done = if join {
            state.channels.join(&identity, on, channel, false).await
        } else {
            state.channels.leave(&identity, on, channel).await
        };
        match done {
            Ok(()) | Err(ChannelError::UnknownConnection) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// `DELETE /api/hubs/{hub}/users/{userId}/groups`: 204.
pub(super) async fn remove_user_from_all(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<UserPath>,
) -> Result<Response, ApiError> {
    for connection in user_connections(&state, &path.user).await? {
        leave_all(&state, &connection).await?;
    }
    Ok(status(StatusCode::NO_CONTENT))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    connection_id: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<Arc<str>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MemberPage {
    value: Vec<Member>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
}

/// `GET /api/hubs/{hub}/groups/{group}/connections?maxpagesize&top&continuationToken`: the
/// members on this node in join order, `{value: [{connectionId, userId}], nextLink}`. The
/// continuation token is the position of the next member (a page may shift when members
/// leave in between, as any offset does).
pub(super) async fn list_connections(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<GroupPath>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let channel = state.channels.wire(&path.group)?;
    let query = QueryParams::parse(query.as_deref());
    let page_size = query
        .number("maxpagesize", 1, MAX_PAGE)?
        .unwrap_or(MAX_PAGE);
    let top = query.number("top", 1, i32::MAX as u64)?;
    let offset = match query.one("continuationToken")? {
        None | Some("") => 0,
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request("The continuationToken is not one of ours."))?,
    };
    let limit = top.map_or(page_size, |top| top.min(page_size)) as usize;
    let page = state
        .router
        .cluster_members(&channel.wire, offset, limit)
        .await;
    let page = page.map_err(crate::channels::ChannelError::from)?;
    let next = offset + page.members.len();
    let remaining = top.map(|top| top - page.members.len() as u64);
    let next_link = (next < page.count && remaining != Some(0)).then(|| {
        let mut link = format!(
            "{}{}?maxpagesize={page_size}&continuationToken={next}&api-version={API_VERSION}",
            origin(&state, &headers),
            uri.path()
        );
        if let Some(remaining) = remaining {
            link.push_str(&format!("&top={remaining}"));
        }
        link
    });
    let value = page
        .members
        .into_iter()
        .map(|member| Member {
            connection_id: member.connection_id,
            user_id: member.identity.user_id.clone(),
        })
        .collect();
    Ok(Json(MemberPage { value, next_link }).into_response())
}

/// `PUT`, `DELETE` and `HEAD /api/hubs/{hub}/permissions/{permission}/connections/{id}`:
/// rthub has no per-connection permissions to grant, revoke or check; its channel rules
/// decide (regular channels are open to every connection, private ones to those the server
/// joins), so every form is a 400 that says so rather than an answer that would mislead.
pub(super) async fn permissions() -> ApiError {
    ApiError::bad_request(
        "Per-connection permissions are not supported by rthub: channel rules decide \
         (regular channels are open; private channels are joined by the server, readOnly or \
         not). Join connections with PUT /groups/{group}/connections/{connectionId}.",
    )
}
