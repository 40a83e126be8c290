//! What the web console reads that no other API tells: this node's connections, its channels
//! with member counts, and the loaded schema. For the server identity only (401 without
//! credentials, 403 for a client's), like presence.

use crate::api_error::ApiError;
use crate::auth::extract::ServerCaller;
use crate::auth::Authenticator;
use crate::channels::rest::{page_param, MAX_MEMBERS_PAGE};
use crate::collections::schema::Schema;
use axum::extract::{FromRef, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

const DEFAULT_PAGE: usize = 100;

pub struct ConsoleApi {
    pub router: router::Router,
    pub schema: Arc<Schema>,
    pub auth: Authenticator,
    /// Channel groups are `<api_name>:<channel>`; the console shows the bare channel.
    pub api_name: String,
}

impl FromRef<Arc<ConsoleApi>> for Authenticator {
    fn from_ref(api: &Arc<ConsoleApi>) -> Self {
        api.auth.clone()
    }
}

pub fn routes(api: Arc<ConsoleApi>) -> Router {
    Router::new()
        .route("/api/_rt/connections", get(connections))
        .route("/api/_rt/channels", get(channels))
        .route("/api/_rt/schema", get(schema))
        .with_state(api)
}

fn pages(query: Option<&str>) -> Result<(usize, usize), ApiError> {
    let params: Vec<(String, String)> = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let page_no = page_param(&params, "pageNo", 1, usize::MAX)?;
    let page_size = page_param(&params, "pageSize", DEFAULT_PAGE, MAX_MEMBERS_PAGE)?;
    Ok((page_no, page_size))
}

/// `?pageNo=1&pageSize=100`: `{count, pageNo, pageSize, connections: [{connectionId, protocol,
/// transport, userId, groups, queuedBytes}]}`, ordered by connection id.
async fn connections(
    State(api): State<Arc<ConsoleApi>>,
    ServerCaller(_): ServerCaller,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (page_no, page_size) = pages(query.as_deref())?;
    let offset = (page_no - 1).saturating_mul(page_size);
    let (count, sessions) = api.router.sessions(offset, page_size);
    let connections: Vec<Value> = sessions
        .iter()
        .map(|s| {
            let groups: Vec<Arc<str>> = s.groups().into_iter().map(|(g, _)| g).collect();
            json!({
                "connectionId": s.id().as_str(),
                "protocol": s.protocol().as_str(),
                "transport": s.transport(),
                "userId": s.identity().user_id,
                "isServer": s.identity().is_server,
                "groups": groups,
                "queuedBytes": s.outbox().queued_bytes(),
            })
        })
        .collect();
    Ok(Json(json!({
        "count": count,
        "pageNo": page_no,
        "pageSize": page_size,
        "connections": connections,
    })))
}

/// `?pageNo=1&pageSize=100`: `{count, pageNo, pageSize, channels: [{channel, group,
/// members, messages}]}` for the groups with members on this node, by name (`messages`: sent
/// to the channel here since it got its first member here; the console turns it into a rate). Internal groups (users',
/// collections' listeners: their names contain '/') are not channels and are left out.
async fn channels(
    State(api): State<Arc<ConsoleApi>>,
    ServerCaller(_): ServerCaller,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (page_no, page_size) = pages(query.as_deref())?;
    let mut groups: Vec<(String, usize, u64)> = Vec::new();
    api.router.for_each_group(|name, members, messages| {
        if !name.contains('/') {
            groups.push((name.to_owned(), members, messages));
        }
    });
    groups.sort_unstable();
    let prefix = format!("{}:", api.api_name);
    let count = groups.len();
    let offset = (page_no - 1).saturating_mul(page_size);
    let channels: Vec<Value> = groups
        .into_iter()
        .skip(offset)
        .take(page_size)
        .map(|(group, members, messages)| {
            let channel = group.strip_prefix(&prefix).unwrap_or(&group).to_owned();
            json!({ "channel": channel, "group": group, "members": members, "messages": messages })
        })
        .collect();
    Ok(Json(json!({
        "count": count,
        "pageNo": page_no,
        "pageSize": page_size,
        "channels": channels,
    })))
}

/// `{collections: [{name, properties: [{name, type, required, target?}]}]}`.
async fn schema(State(api): State<Arc<ConsoleApi>>, ServerCaller(_): ServerCaller) -> Json<Value> {
    let collections: Vec<Value> = api
        .schema
        .collections()
        .map(|c| {
            let properties: Vec<Value> = c
                .properties
                .iter()
                .map(|p| {
                    let mut property = json!({
                        "name": p.name,
                        "type": p.kind,
                        "required": p.required,
                    });
                    if let (Some(target), Some(map)) = (&p.target, property.as_object_mut()) {
                        map.insert("target".into(), json!(target));
                    }
                    property
                })
                .collect();
            json!({ "name": c.name, "properties": properties })
        })
        .collect();
    Json(json!({ "collections": collections }))
}
