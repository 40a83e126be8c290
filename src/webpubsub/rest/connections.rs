//! The hub's own actions (`/:send`, `/:closeConnections`, `/:generateToken`, the filtered bulk
//! group operations) and one connection's close and existence.

use super::send::{close, send_to_all};
use super::{origin, redacted, status, unknown_action, QueryParams, WebPubSub};
use crate::api_error::{ApiError, ApiPath as Path};
use crate::webpubsub::token::{client_audience, issue, ClientClaims};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use router::Target;
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
        // Both select their connections with an OData filter, which rthub does not evaluate.
        ":addToGroups" | ":removeFromGroups" => Err(ApiError::bad_request(
            "filter is not supported by rthub, so neither are :addToGroups and \
             :removeFromGroups: add or remove each connection (PUT or DELETE \
             /groups/{group}/connections/{connectionId}) or user.",
        )),
        other => Err(unknown_action("POST", other)),
    }
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
) -> Response {
    let found = state.router.identity(&path.connection).await.is_some();
    status(if found {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}
