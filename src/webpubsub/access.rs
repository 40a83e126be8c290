//! `GET /api/_rt/ws`: a Web PubSub client URL for the caller (PRODUCT.md section 2). The
//! token carries the caller's identity, every `webpubsub.*` role (rthub's channel rules are
//! the gate, as for SignalR) and the groups to join on connect (`group` query, repeatable,
//! checked against the channel rules now).

use super::token::{self, ClientClaims};
use super::WebPubSub;
use crate::api_error::ApiError;
use crate::channels::{ChannelError, ChannelKind};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use negotiate::{Credentials, Query};
use rt_core::IdentityKind;
use serde::Serialize;
use std::sync::Arc;

/// Where clients connect with rthub's tokens (Azure's `/client/hubs/{hub}` takes them too).
pub const CLIENT_PATH: &str = "/api/_rt/ws/client";

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientAccess {
    /// `baseUrl` with `?access_token=<token>`: what `new WebPubSubClient(url)` takes.
    url: String,
    /// The WebSocket endpoint.
    base_url: String,
    token: String,
}

pub(crate) async fn client_access(
    State(wps): State<Arc<WebPubSub>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw.as_deref());
    let credentials = Credentials::from_request(&headers, &query);
    let identity = wps
        .auth
        .identify(&credentials)
        .map_err(|refused| ApiError::unauthorized(refused.message))?;
    let mut groups = Vec::new();
    for (name, value) in form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
        if name != "group" {
            continue;
        }
        let channel = wps.channels.wire(&value).map_err(refusal)?;
        if channel.kind == ChannelKind::Private && !identity.is_server {
            return Err(refusal(ChannelError::PrivateJoin(channel.wire)));
        }
        groups.push(channel.wire);
    }
    let origin = wps.origin(&headers);
    let claims = ClientClaims {
        sub: identity.user_id.as_deref().map(str::to_owned),
        role: vec![
            "webpubsub.joinLeaveGroup".into(),
            "webpubsub.sendToGroup".into(),
        ],
        groups,
        kind: match identity.kind {
            IdentityKind::ServiceAccount => Some("serviceaccount".into()),
            IdentityKind::User => Some("user".into()),
            IdentityKind::Anonymous => None,
        },
        rthub_roles: identity.roles.iter().map(|r| r.to_string()).collect(),
        server: identity.is_server,
        ..ClientClaims::default()
    };
    let token = token::issue(
        &wps.signing_key,
        token::client_audience(&origin, &wps.config.hub),
        claims,
        wps.config.token_lifetime,
    );
    let base_url = format!("{}{CLIENT_PATH}", websocket_origin(&origin));
    let url = format!("{base_url}?access_token={token}");
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    Ok(if wants_json {
        Json(ClientAccess {
            url,
            base_url,
            token,
        })
        .into_response()
    } else {
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], url).into_response()
    })
}

/// `http(s)://host` as `ws(s)://host`.
pub fn websocket_origin(origin: &str) -> String {
    if let Some(rest) = origin.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = origin.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        origin.to_owned()
    }
}

fn refusal(error: ChannelError) -> ApiError {
    match error.refusal() {
        crate::channels::Refusal::NotOwner => ApiError::forbidden(error.to_string()),
        _ => ApiError::bad_request(error.to_string()),
    }
}
