//! The hub's own actions (`/:send`, `/:closeConnections`, `/:generateToken`, `/:addToGroups`,
//! `/:removeFromGroups`) and one connection's close and existence.

use super::filter::Filter;
use super::send::{close, payload, send_to_all};
use super::{local_sessions, origin, redacted, select, status};
use super::{unknown_action, QueryParams, WebPubSub};
use crate::api_error::{ApiError, ApiPath as Path};
use crate::webpubsub::token::{client_audience, issue, ClientClaims};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use router::{Payload, Target};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

#[derive(Deserialize)]
pub(super) struct HubPath {
    // `hub` is checked by the layer in front (`auth::check_hub`).
    action: String,
}

#[derive(Deserialize)]
pub(super) struct ConnectionPath {
    connection: String,
}

/// `POST /api/hubs/{hub}/{action}`.
pub(super) async fn hub_action(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<HubPath>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query.as_deref());
    match path.action.as_str() {
        ":send" => send_to_all(&state, &query, &headers, body),
        ":closeConnections" => {
            let target = Target::All.excluding(query.excluded());
            close(&state, target, &query)?;
            Ok(status(StatusCode::NO_CONTENT))
        }
        ":generateToken" => generate_token(&state, &query, &headers),
        ":addToGroups" => bulk_groups(&state, &headers, body, true).await,
        ":removeFromGroups" => bulk_groups(&state, &headers, body, false).await,
        other => Err(unknown_action("POST", other)),
    }
}

/// The body of `:addToGroups` and `:removeFromGroups`.
#[derive(Deserialize)]
struct BulkGroups {
    groups: Vec<String>,
    #[serde(default)]
    filter: Option<String>,
}

/// `POST /api/hubs/{hub}/:addToGroups` (or `:removeFromGroups`) `{groups, filter}`: the
/// connections of this node the filter selects (all of them without one) join (or leave)
/// each group. 200, as the service answers.
async fn bulk_groups(
    state: &WebPubSub,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    join: bool,
) -> Result<Response, ApiError> {
    let Payload::Json(body) = payload(state, headers, body)? else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "The body is application/json: {\"groups\": [...], \"filter\": \"...\"}.",
        ));
    };
    let request: BulkGroups = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid body: {e}")))?;
    if request.groups.is_empty() {
        return Err(ApiError::bad_request(
            "groups must name at least one group.",
        ));
    }
    let channels = request
        .groups
        .iter()
        .map(|group| state.channels.wire(group))
        .collect::<Result<Vec<_>, _>>()?;
    let filter = match request.filter.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(Filter::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))?),
    };
    let sessions = local_sessions(state);
    let connections: Vec<Arc<str>> = match &filter {
        Some(filter) => select(sessions, filter, &[]),
        None => sessions.iter().map(|s| s.id().as_arc().clone()).collect(),
    };
    for channel in &channels {
        super::groups::each_connection(state, &connections, channel, join).await?;
    }
    Ok(status(StatusCode::OK))
}

#[derive(Serialize)]
struct ClientToken {
    token: String,
}

/// `POST /api/hubs/{hub}/:generateToken?userId&role…&group…&minutesToExpire`: a client
/// access token as the SDK signs one itself with a key (what it asks the service for when
/// it has only an Entra ID credential).
fn generate_token(
    state: &WebPubSub,
    query: &QueryParams,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    match query.one("clientType")? {
        None | Some("") => {}
        Some(kind) if kind.eq_ignore_ascii_case("default") => {}
        Some(kind) => {
            return Err(ApiError::bad_request(format!(
                "clientType '{kind}' is not supported: rthub speaks the default Web PubSub \
                 client protocols (not MQTT or Socket.IO)."
            )))
        }
    }
    let minutes = query
        .number("minutesToExpire", 1, 60 * 24 * 365)?
        .unwrap_or(60);
    let key = state.config.access_key.as_deref().ok_or_else(|| {
        // The layer in front refuses every request without a key; this is for completeness.
        ApiError::unauthorized("No Web PubSub access key is configured.")
    })?;
    let claims = ClientClaims {
        sub: query
            .one("userId")?
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
        role: query.all("role"),
        groups: query.all("group"),
        ..ClientClaims::default()
    };
    let audience = client_audience(&origin(state, headers), &state.config.hub);
    let token = issue(key, audience, claims, Duration::from_secs(minutes * 60));
    Ok(Json(ClientToken { token }).into_response())
}

/// `DELETE /api/hubs/{hub}/connections/{connectionId}?reason`: 204 whether or not the
/// connection exists, as the service answers.
pub(super) async fn close_connection(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<ConnectionPath>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query.as_deref());
    tracing::debug!(
        connection_id = %redacted(&path.connection),
        "Web PubSub REST: close a connection"
    );
    close(&state, Target::connection(&path.connection), &query)?;
    Ok(status(StatusCode::NO_CONTENT))
}

/// `HEAD /api/hubs/{hub}/connections/{connectionId}`: 200 if a node has it, else 404.
pub(super) async fn connection_exists(
    State(state): State<Arc<WebPubSub>>,
    Path(path): Path<ConnectionPath>,
) -> Result<Response, ApiError> {
    let found = state.router.identity(&path.connection).await;
    let found = found
        .map_err(crate::channels::ChannelError::from)?
        .is_some();
    Ok(status(if found {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }))
}
