//! The channels REST API (PRODUCT.md sections 3 and 4): `POST /api/_rt/join`, `/api/_rt/leave`,
//! `/api/_rt/send`, and `GET /api/_rt/channels/{channel}/members` for the server identity.

use super::{ChannelError, ChannelService, On, Refusal, Sender};
use crate::api_error::{ApiError, ApiPath as Path};
use crate::auth::extract::{Caller, ServerCaller};
use crate::auth::Authenticator;
use axum::extract::{FromRef, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use router::Payload;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

/// Largest page of `members`.
pub const MAX_MEMBERS_PAGE: usize = 1000;
const DEFAULT_MEMBERS_PAGE: usize = 100;

pub struct ChannelsApi {
    pub channels: ChannelService,
    /// Resolves the ids clients name connections by (a version 0 client's is its token).
    pub connections: negotiate::Connections,
    pub auth: Authenticator,
}

impl FromRef<Arc<ChannelsApi>> for Authenticator {
    fn from_ref(api: &Arc<ChannelsApi>) -> Self {
        api.auth.clone()
    }
}

// The bodies and answers are types (not `json!`) so that the OpenAPI description derives
// from what the handlers really read and write (`ToSchema`). A channel's pattern is the
// names PRODUCT.md section 4 allows (the attribute takes a literal only).

/// `POST /api/_rt/join`: add a connection to a channel (the bare name, without the prefix).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct JoinBody {
    connection_id: String,
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    channel: String,
    /// Receive but never send.
    #[serde(default)]
    read_only: bool,
}

/// `POST /api/_rt/leave`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LeaveBody {
    connection_id: String,
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    channel: String,
}

/// `POST /api/_rt/send`: `body` goes to every member of the channel.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendBody {
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    channel: String,
    body: Value,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Joined {
    joined: bool,
    /// The channel's wire name (`<api-name>:<channel>`).
    group: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Left {
    left: bool,
    group: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Sent {
    sent: bool,
    /// Members it was handed to on this node.
    delivered: usize,
}

/// A page of `GET /api/_rt/channels/{channel}/members`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MembersPage {
    count: usize,
    page_no: usize,
    page_size: usize,
    members: Vec<super::service::MemberView>,
}

pub fn routes(api: Arc<ChannelsApi>) -> Router {
    Router::new()
        .route("/api/_rt/join", post(join))
        .route("/api/_rt/leave", post(leave))
        .route("/api/_rt/send", post(send))
        .route("/api/_rt/channels/{channel}/members", get(members))
        .with_state(api)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Invalid body: {e}")))
}

/// A channel rule's refusal over REST: 400 for names and rules (PRODUCT.md section 4), 403
/// for another identity's connection, 404 for an unknown one.
impl From<ChannelError> for ApiError {
    fn from(error: ChannelError) -> Self {
        let message = error.to_string();
        match error.refusal() {
            Refusal::BadRequest | Refusal::Rule => ApiError::bad_request(message),
            Refusal::NotOwner => ApiError::forbidden(message),
            Refusal::NotFound => ApiError::not_found(message),
            Refusal::Unavailable => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
        }
    }
}

async fn join(
    State(api): State<Arc<ChannelsApi>>,
    Caller(caller): Caller,
    body: axum::body::Bytes,
) -> Result<Json<Joined>, ApiError> {
    let body: JoinBody = parse(&body)?;
    let channel = api.channels.bare(&body.channel)?;
    let connection_id = api.connections.public_id(&body.connection_id);
    let connection = On::Named(&connection_id);
    api.channels
        .join(&caller, connection, &channel, body.read_only)
        .await?;
    Ok(Json(Joined {
        joined: true,
        group: channel.wire,
    }))
}

async fn leave(
    State(api): State<Arc<ChannelsApi>>,
    Caller(caller): Caller,
    body: axum::body::Bytes,
) -> Result<Json<Left>, ApiError> {
    let body: LeaveBody = parse(&body)?;
    let channel = api.channels.bare(&body.channel)?;
    let connection_id = api.connections.public_id(&body.connection_id);
    let connection = On::Named(&connection_id);
    api.channels.leave(&caller, connection, &channel).await?;
    Ok(Json(Left {
        left: true,
        group: channel.wire,
    }))
}

async fn send(
    State(api): State<Arc<ChannelsApi>>,
    Caller(caller): Caller,
    body: axum::body::Bytes,
) -> Result<Json<Sent>, ApiError> {
    let body: SendBody = parse(&body)?;
    let channel = api.channels.bare(&body.channel)?;
    let sender = Sender {
        identity: &caller,
        connection_id: None,
        echo: true,
    };
    let delivery = api
        .channels
        .send(sender, &channel, Payload::Json(body.body))?;
    Ok(Json(Sent {
        sent: true,
        delivered: delivery.delivered,
    }))
}

/// `?pageNo=1&pageSize=100`: `{count, pageNo, pageSize, members: [{connectionId, userId,
/// protocol, readOnly}]}` for the members on this node.
async fn members(
    State(api): State<Arc<ChannelsApi>>,
    ServerCaller(caller): ServerCaller,
    Path(channel): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<MembersPage>, ApiError> {
    let channel = api.channels.bare(&channel)?;
    let params: Vec<(String, String)> = query
        .as_deref()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let page_no = page_param(&params, "pageNo", 1, usize::MAX)?;
    let page_size = page_param(&params, "pageSize", DEFAULT_MEMBERS_PAGE, MAX_MEMBERS_PAGE)?;
    let page = api
        .channels
        .members(&caller, None, &channel, page_no, page_size)
        .await?;
    Ok(Json(MembersPage {
        count: page.count,
        page_no,
        page_size,
        members: page.members,
    }))
}

pub(crate) fn page_param(
    params: &[(String, String)],
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match params.iter().find(|(key, _)| key == name) {
        None => Ok(default),
        Some((_, text)) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("{name} must be a number from 1 to {max}."))
            }),
    }
}
