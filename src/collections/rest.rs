//! `/api/{collection}`: list, create, read, replace, merge, delete; `_listen` and `_unlisten`.

use super::filter::{self, Predicate};
use super::listen::{ListenFilter, Subscriber, Subscriptions};
use super::permit::Permitted;
use super::schema::{Collection, Method, WriteMode};
use super::select::Selection;
use super::service::Collections;
use super::store::{Document, Item, ListQuery, Refused};
use crate::api_error::ApiError;
use crate::api_error::ApiPath as Path;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use negotiate::Identity;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

pub const MAX_PAGE_SIZE: u32 = 1000;
pub const DEFAULT_PAGE_SIZE: u32 = 10;

type Shared = State<Arc<Collections>>;

pub fn routes(collections: Arc<Collections>) -> Router {
    Router::new()
        .route("/api/{collection}", get(list).post(create))
        .route(
            "/api/{collection}/{id}",
            get(read).put(write).patch(write).delete(remove),
        )
        .route("/api/{collection}/_listen", post(listen))
        .route("/api/{collection}/_unlisten", post(unlisten))
        .route_layer(axum::middleware::from_fn(reserved))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(collections)
}

/// A collection path asked with a method it does not take; under `/api/_…` the path is no
/// collection at all (see [`reserved`]).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    if uri.path().starts_with("/api/_") {
        return crate::api_error::unknown_endpoint(&method, uri.path());
    }
    crate::api_error::method_not_allowed(method, uri).await
}

/// `/api/_…` paths are the server's own (`/api/_rt/…`, `/api/_auth`): one that reaches the
/// collection routes is an unknown endpoint, not a collection named `_rt`.
async fn reserved(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if request.uri().path().starts_with("/api/_") {
        return crate::api_error::unknown_endpoint(request.method(), request.uri().path())
            .into_response();
    }
    next.run(request).await
}

fn item_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::not_found("There is no item with that id."))
}

/// The item, with its version as the ETag for a later `If-Match`.
fn item_response(status: StatusCode, item: &Item) -> Response {
    versioned(status, item.to_json(), item.version)
}

/// A view of an item at `version`, with that version as the ETag.
fn versioned(status: StatusCode, body: Value, version: i64) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

async fn body_object(body: Body, limit: usize) -> Result<Document, ApiError> {
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(format!("The body is larger than {limit} bytes.")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::bad_request("The body must be a JSON object.")),
        Err(error) => Err(ApiError::bad_request(format!(
            "The body is not valid JSON: {error}"
        ))),
    }
}

/// `If-Match: 3` or `If-Match: "3"` (the ETag we hand out).
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or_else(|| ApiError::bad_request("If-Match must be an item's _version."))
}

fn check_version(expected: Option<i64>, current: &Item) -> Result<(), Refused> {
    match expected {
        Some(version) if version != current.version => Err(Refused::VersionMismatch {
            current: current.version,
        }),
        _ => Ok(()),
    }
}

fn query_pairs(raw: Option<&str>) -> HashMap<String, String> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn number(
    params: &HashMap<String, String>,
    name: &str,
    default: u32,
    max: u32,
) -> Result<u32, ApiError> {
    match params.get(name) {
        None => Ok(default),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("{name} must be a number from 1 to {max}."))
            }),
    }
}

async fn list(
    State(collections): Shared,
    Path(_): Path<String>,
    permitted: Permitted,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let collection = permitted.collection(&collections)?;
    let identity = &permitted.identity;
    let params = query_pairs(query.as_deref());
    let selection = selection(&collections, collection, &params, identity)?;
    let dialect = collections.dialect;
    let filter: Option<Predicate> = params
        .get("filter")
        .filter(|f| !f.trim().is_empty())
        .map(|text| {
            let parsed = filter::parse(text).map_err(|e| e.to_string())?;
            parsed.to_sql(dialect, 1).map_err(|e| e.to_string())
        })
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("filter: {e}")))?;
    let taken = filter.as_ref().map_or(0, |f| f.params.len());
    let order = params
        .get("sortBy")
        .filter(|s| !s.trim().is_empty())
        .map(|text| filter::parse_sort(text).map(|s| s.to_sql(dialect, taken + 1)))
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("sortBy: {e}")))?;
    let list_query = ListQuery {
        filter,
        order,
        page_no: number(&params, "pageNo", 1, u32::MAX)?,
        page_size: number(&params, "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?,
        count: params
            .get("count")
            .is_some_and(|c| c.eq_ignore_ascii_case("true")),
    };
    let page = collections
        .store
        .list(&collection.name, &list_query)
        .await?;
    let mut items: Vec<Value> = page.items.iter().map(Item::to_json).collect();
    if let Some(selection) = selection {
        items = selection.apply(&collections, items).await?;
    }
    Ok(match page.total {
        Some(count) => Json(json!({ "meta": { "count": count }, "items": items })).into_response(),
        None => Json(items).into_response(),
    })
}

/// The `select` of a read, checked before anything is read (see [`Selection`]).
fn selection<'a>(
    collections: &Collections,
    collection: &'a Collection,
    params: &'a HashMap<String, String>,
    caller: &Identity,
) -> Result<Option<Selection<'a>>, ApiError> {
    params
        .get("select")
        .filter(|s| !s.trim().is_empty())
        .map(|select| Selection::parse(collections, collection, select, caller))
        .transpose()
}

async fn read(
    State(collections): Shared,
    Path((_, id)): Path<(String, String)>,
    permitted: Permitted,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let collection = permitted.collection(&collections)?;
    let params = query_pairs(query.as_deref());
    let selection = selection(&collections, collection, &params, &permitted.identity)?;
    let item = collections
        .store
        .get(&collection.name, item_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("There is no item with that id."))?;
    let Some(selection) = selection else {
        return Ok(item_response(StatusCode::OK, &item));
    };
    let mut views = selection.apply(&collections, vec![item.to_json()]).await?;
    let view = views.pop().unwrap_or(Value::Null);
    Ok(versioned(StatusCode::OK, view, item.version))
}

async fn create(
    State(collections): Shared,
    Path(_): Path<String>,
    permitted: Permitted,
    body: Body,
) -> Result<Response, ApiError> {
    let collection = permitted.collection(&collections)?;
    let body = body_object(body, collections.max_body_bytes).await?;
    let data = collection
        .validate(WriteMode::Create, body, None)
        .map_err(|errors| {
            ApiError::from(super::store::StoreError::Refused(Refused::Invalid(errors)))
        })?;
    let item = collections.store.create(&collection.name, data).await?;
    collections.feed.wrote();
    Ok(item_response(StatusCode::CREATED, &item))
}

/// `PUT` (replace) and `PATCH` (merge) of one item.
async fn write(
    State(collections): Shared,
    Path((_, id)): Path<(String, String)>,
    permitted: Permitted,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let collection = permitted.collection(&collections)?;
    let id = item_id(&id)?;
    let expected = if_match(&headers)?;
    let body = body_object(body, collections.max_body_bytes).await?;
    let mode = if permitted.method == Method::Patch {
        WriteMode::Patch
    } else {
        WriteMode::Replace
    };
    let update = |current: &Item| {
        check_version(expected, current)?;
        collection
            .validate(mode, body.clone(), Some(&current.data))
            .map_err(Refused::Invalid)
    };
    let item = collections
        .store
        .update(&collection.name, id, &update)
        .await?;
    collections.feed.wrote();
    Ok(item_response(StatusCode::OK, &item))
}

async fn remove(
    State(collections): Shared,
    Path((_, id)): Path<(String, String)>,
    permitted: Permitted,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let collection = permitted.collection(&collections)?;
    let id = item_id(&id)?;
    let expected = if_match(&headers)?;
    let precondition = |current: &Item| check_version(expected, current);
    let item = collections
        .store
        .delete(&collection.name, id, &precondition)
        .await?;
    collections.feed.wrote();
    Ok(item_response(StatusCode::OK, &item))
}

// A type, so that the OpenAPI description derives from it.
/// `{ connectionId, type, id?, lookupIds? }`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ListenBody {
    connection_id: String,
    /// `signalr` or `ws`: the protocol of the connection.
    #[serde(rename = "type", default)]
    #[schema(pattern = "^(signalr|ws)$")]
    kind: Option<String>,
    /// Only changes of this item.
    #[serde(default)]
    id: Option<Uuid>,
    /// Only changes of items any of whose lookups (before or after the write) holds one of
    /// these ids.
    #[serde(default)]
    lookup_ids: Option<Vec<Uuid>>,
}

/// The answer of `_listen` (`true`) and `_unlisten` (`false`).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Listening {
    listening: bool,
}

async fn listen_request(
    collections: &Collections,
    permitted: Permitted,
    body: Body,
    listen: bool,
) -> Result<ListenRequest, ApiError> {
    let collection = permitted.collection(collections)?;
    let body = body_object(body, 64 * 1024).await?;
    let body: ListenBody = serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::bad_request(format!("Invalid body: {e}")))?;
    if let Some(kind) = body.kind.as_deref() {
        if kind != "signalr" && kind != "ws" {
            return Err(ApiError::bad_request("type is 'signalr' or 'ws'."));
        }
    }
    let connection_id = collections.connections.public_id(&body.connection_id);
    let filter = ListenFilter {
        id: body.id,
        lookup_ids: body.lookup_ids.unwrap_or_default().into_iter().collect(),
    };
    Ok(ListenRequest {
        collection: collection.name.clone(),
        identity: permitted.identity,
        connection_id: connection_id.into_owned(),
        filter,
        listen,
    })
}

/// A `_listen` or `_unlisten` as the connection's node runs it (the router's extension
/// [`LISTEN_EXTENSION`]), so that it works whichever node the request reached.
#[derive(serde::Serialize, Deserialize)]
struct ListenRequest {
    collection: String,
    identity: Identity,
    connection_id: String,
    filter: ListenFilter,
    listen: bool,
}

/// The router extension that runs `_listen` and `_unlisten` on the connection's node.
pub const LISTEN_EXTENSION: &str = "collections.listen";

/// Changes a connection's subscriptions while it cannot disconnect (the router holds its
/// disconnect off meanwhile), so a connection that ends during the request leaves nothing
/// behind: the subscription is made before its disconnect's cleanup runs, or not at all.
pub struct ListenExtension(pub Arc<Subscriptions>);

impl router::Extension for ListenExtension {
    fn run(&self, session: &Arc<router::Session>, body: &Value) -> Value {
        let Ok(request) = ListenRequest::deserialize(body) else {
            return json!({"refused": "bad_request"});
        };
        if !crate::auth::may_act_on(&request.identity, session.identity()) {
            return json!({"refused": "forbidden"});
        }
        let subscriber = Subscriber::Connection(session.id().as_arc().clone());
        if request.listen {
            self.0
                .listen(&request.collection, subscriber, request.filter);
        } else {
            self.0
                .unlisten(&request.collection, &subscriber, &request.filter);
        }
        json!({"done": true})
    }
}

impl ListenRequest {
    async fn run(self, collections: &Collections) -> Result<Response, ApiError> {
        let listening = self.listen;
        let connection_id = self.connection_id.clone();
        let body = serde_json::to_value(&self).map_err(ApiError::internal)?;
        let answer = collections
            .router
            .extend(&connection_id, LISTEN_EXTENSION, body)
            .await
            .map_err(|error| ApiError::from(crate::channels::ChannelError::from(error)))?;
        match answer["refused"].as_str() {
            None => Ok(Json(Listening { listening }).into_response()),
            Some("forbidden") => Err(ApiError::forbidden(
                "That connection belongs to another identity.",
            )),
            Some(_) => Err(ApiError::bad_request(
                "The node that has the connection refused the request.",
            )),
        }
    }
}

async fn listen(
    State(collections): Shared,
    Path(_): Path<String>,
    permitted: Permitted,
    body: Body,
) -> Result<Response, ApiError> {
    let request = listen_request(&collections, permitted, body, true).await?;
    request.run(&collections).await
}

async fn unlisten(
    State(collections): Shared,
    Path(_): Path<String>,
    permitted: Permitted,
    body: Body,
) -> Result<Response, ApiError> {
    let request = listen_request(&collections, permitted, body, false).await?;
    request.run(&collections).await
}
