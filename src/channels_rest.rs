//! The channels REST API: `POST /api/_rt/join`, `/api/_rt/leave`, `/api/_rt/send`, with the
//! rules of PRODUCT.md section 4 and connection ownership (section 3).

use crate::api_error::ApiError;
use crate::auth::Authenticator;
use crate::channels::{channel_message, Channel, ChannelKind, Channels};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use hub::{LifetimeManager, Membership};
use negotiate::Identity;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub struct ChannelsApi {
    pub channels: Channels,
    pub lifetime: Arc<dyn LifetimeManager>,
    /// Resolves the ids clients name connections by (a version 0 client's is its token).
    pub connections: negotiate::Connections,
    pub auth: Authenticator,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JoinBody {
    connection_id: String,
    channel: String,
    #[serde(default)]
    read_only: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LeaveBody {
    connection_id: String,
    channel: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    channel: String,
    body: Value,
}

pub fn routes(api: Arc<ChannelsApi>) -> Router {
    Router::new()
        .route("/api/_rt/join", post(join))
        .route("/api/_rt/leave", post(leave))
        .route("/api/_rt/send", post(send))
        .with_state(api)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Invalid body: {e}")))
}

impl ChannelsApi {
    fn channel(&self, name: &str) -> Result<Channel, ApiError> {
        self.channels
            .bare(name)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// The public id of the connection `presented` names, if the caller may act on it: a
    /// client only on connections of its own identity; anonymous connections are bearer
    /// capabilities (whoever knows the 128-bit id); the server may act on any.
    async fn owned(&self, caller: &Identity, presented: &str) -> Result<String, ApiError> {
        let connection_id = self.connections.public_id(presented).into_owned();
        let owner = self
            .lifetime
            .identity(&connection_id)
            .await
            .ok_or_else(|| ApiError::not_found("There is no connection with that id."))?;
        if crate::auth::may_act_on(caller, &owner) {
            Ok(connection_id)
        } else {
            Err(ApiError::forbidden(
                "That connection belongs to another identity.",
            ))
        }
    }
}

/// Private channels are managed by the server identity only; a client gets 400.
fn server_only(channel: &Channel, caller: &Identity, action: &str) -> Result<(), ApiError> {
    if channel.kind == ChannelKind::Private && !caller.is_server {
        return Err(ApiError::bad_request(format!(
            "Channel '{}' is private: only the server can {action} it.",
            channel.wire
        )));
    }
    Ok(())
}

async fn join(
    State(api): State<Arc<ChannelsApi>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let caller = api.auth.identify_request(&headers, query.as_deref())?;
    let body: JoinBody = parse(&body)?;
    let channel = api.channel(&body.channel)?;
    server_only(&channel, &caller, "join connections to")?;
    let connection_id = api.owned(&caller, &body.connection_id).await?;
    api.lifetime
        .add_to_group(
            &connection_id,
            &channel.wire,
            Membership {
                read_only: body.read_only,
            },
        )
        .await
        .map_err(|_| ApiError::not_found("There is no connection with that id."))?;
    Ok(Json(json!({ "joined": true, "group": channel.wire })))
}

async fn leave(
    State(api): State<Arc<ChannelsApi>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let caller = api.auth.identify_request(&headers, query.as_deref())?;
    let body: LeaveBody = parse(&body)?;
    let channel = api.channel(&body.channel)?;
    let connection_id = api.owned(&caller, &body.connection_id).await?;
    api.lifetime
        .remove_from_group(&connection_id, &channel.wire)
        .await
        .map_err(|_| ApiError::not_found("There is no connection with that id."))?;
    Ok(Json(json!({ "left": true, "group": channel.wire })))
}

async fn send(
    State(api): State<Arc<ChannelsApi>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let caller = api.auth.identify_request(&headers, query.as_deref())?;
    let body: SendBody = parse(&body)?;
    let channel = api.channel(&body.channel)?;
    server_only(&channel, &caller, "send to")?;
    let message = channel_message(&channel.wire, body.body, caller.user_id.as_deref(), None);
    let delivery = api.lifetime.send_group(&channel.wire, &message).await;
    Ok(Json(
        json!({ "sent": true, "delivered": delivery.delivered }),
    ))
}
