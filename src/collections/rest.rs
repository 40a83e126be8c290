//! `/api/{collection}`: list, create, read, replace, merge, delete; `_listen` and `_unlisten`.

use super::filter::{self, Predicate};
use super::listen::{ListenFilter, Subscriber};
use super::schema::{Collection, Method, WriteMode};
use super::service::Collections;
use super::store::{Document, Item, ListQuery, Refused};
use crate::api_error::ApiError;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use negotiate::Identity;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
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
            get(read).put(replace).patch(merge).delete(remove),
        )
        .route("/api/{collection}/_listen", post(listen))
        .route("/api/{collection}/_unlisten", post(unlisten))
        .with_state(collections)
}

/// The caller's identity, then the collection if the caller may use `method` on it.
fn admit<'a>(
    collections: &'a Collections,
    name: &str,
    method: Method,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(&'a Collection, Identity), ApiError> {
    let identity = collections.auth.identify_request(headers, query)?;
    let collection = collections.collection(name)?;
    collections.authorize(collection, method, &identity)?;
    Ok((collection, identity))
}

fn item_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::not_found("There is no item with that id."))
}

/// The item, with its version as the ETag for a later `If-Match`.
fn item_response(status: StatusCode, item: &Item) -> Response {
    let mut response = (status, Json(item.to_json())).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", item.version)) {
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
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (collection, _) = admit(&collections, &name, Method::Get, &headers, query.as_deref())?;
    let params = query_pairs(query.as_deref());
    let dialect = collections.dialect;
    let filter: Option<Predicate> = params
        .get("filter")
        .filter(|f| !f.trim().is_empty())
        .map(|text| filter::parse(text).map(|f| f.to_sql(dialect, 1)))
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
    if let Some(select) = params.get("select").filter(|s| !s.trim().is_empty()) {
        items = project(&collections, collection, items, select).await?;
    }
    Ok(match page.total {
        Some(count) => Json(json!({ "meta": { "count": count }, "items": items })).into_response(),
        None => Json(items).into_response(),
    })
}

/// `select=a,b,customer.name`: keep `id` and the named fields; a dotted path expands a lookup
/// to the target item's named fields (one level).
async fn project(
    collections: &Collections,
    collection: &Collection,
    items: Vec<Value>,
    select: &str,
) -> Result<Vec<Value>, ApiError> {
    let lookups: HashMap<&str, &str> = collection.lookups().collect();
    let mut plain = Vec::new();
    let mut expanded: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for field in select.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        match field.split_once('.') {
            None => plain.push(field),
            Some((lookup, inner)) => {
                if inner.contains('.') {
                    return Err(ApiError::bad_request(format!(
                        "select: '{field}' goes deeper than one lookup."
                    )));
                }
                if !lookups.contains_key(lookup) {
                    return Err(ApiError::bad_request(format!(
                        "select: '{lookup}' is not a lookup property of '{}'.",
                        collection.name
                    )));
                }
                expanded.entry(lookup).or_default().push(inner);
            }
        }
    }
    // One query per lookup property, for all items of the page.
    let mut targets: HashMap<&str, HashMap<Uuid, Value>> = HashMap::new();
    for lookup in expanded.keys() {
        let ids: Vec<Uuid> = items
            .iter()
            .filter_map(|item| item.get(*lookup)?.as_str()?.parse().ok())
            .collect();
        let found = collections.store.get_many(lookups[lookup], &ids).await?;
        targets.insert(lookup, found.iter().map(|t| (t.id, t.to_json())).collect());
    }
    Ok(items
        .into_iter()
        .map(|item| {
            let mut out = Map::new();
            out.insert("id".into(), item["id"].clone());
            for field in &plain {
                if let Some(value) = item.get(*field) {
                    out.insert((*field).to_owned(), value.clone());
                }
            }
            for (lookup, fields) in &expanded {
                let target = item
                    .get(*lookup)
                    .and_then(Value::as_str)
                    .and_then(|id| id.parse::<Uuid>().ok())
                    .and_then(|id| targets[lookup].get(&id));
                let value = match target {
                    None => item.get(*lookup).cloned().unwrap_or(Value::Null),
                    Some(target) => {
                        let mut picked = Map::new();
                        picked.insert("id".into(), target["id"].clone());
                        for field in fields {
                            if let Some(value) = target.get(*field) {
                                picked.insert((*field).to_owned(), value.clone());
                            }
                        }
                        Value::Object(picked)
                    }
                };
                out.insert((*lookup).to_owned(), value);
            }
            Value::Object(out)
        })
        .collect())
}

async fn read(
    State(collections): Shared,
    Path((name, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (collection, _) = admit(&collections, &name, Method::Get, &headers, query.as_deref())?;
    let item = collections
        .store
        .get(&collection.name, item_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("There is no item with that id."))?;
    Ok(item_response(StatusCode::OK, &item))
}

async fn create(
    State(collections): Shared,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (collection, _) = admit(
        &collections,
        &name,
        Method::Post,
        &headers,
        query.as_deref(),
    )?;
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

async fn write(
    collections: &Collections,
    name: &str,
    id: &str,
    method: Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Body,
) -> Result<Response, ApiError> {
    let (collection, _) = admit(collections, name, method, headers, query)?;
    let id = item_id(id)?;
    let expected = if_match(headers)?;
    let body = body_object(body, collections.max_body_bytes).await?;
    let mode = if method == Method::Patch {
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

async fn replace(
    State(collections): Shared,
    Path((name, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    write(
        &collections,
        &name,
        &id,
        Method::Put,
        &headers,
        query.as_deref(),
        body,
    )
    .await
}

async fn merge(
    State(collections): Shared,
    Path((name, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    write(
        &collections,
        &name,
        &id,
        Method::Patch,
        &headers,
        query.as_deref(),
        body,
    )
    .await
}

async fn remove(
    State(collections): Shared,
    Path((name, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (collection, _) = admit(
        &collections,
        &name,
        Method::Delete,
        &headers,
        query.as_deref(),
    )?;
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

/// `{ connectionId, type, id?, lookupIds? }`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListenBody {
    connection_id: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    id: Option<Uuid>,
    #[serde(default)]
    lookup_ids: Option<Vec<Uuid>>,
}

async fn listen_request(
    collections: &Collections,
    name: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Body,
) -> Result<(String, Subscriber, ListenFilter), ApiError> {
    let (collection, identity) = admit(collections, name, Method::Listen, headers, query)?;
    let body = body_object(body, 64 * 1024).await?;
    let body: ListenBody = serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::bad_request(format!("Invalid body: {e}")))?;
    if let Some(kind) = body.kind.as_deref() {
        if kind != "signalr" && kind != "ws" {
            return Err(ApiError::bad_request("type is 'signalr' or 'ws'."));
        }
    }
    let connection_id = collections.connections.public_id(&body.connection_id);
    let owner = collections
        .lifetime
        .identity(&connection_id)
        .await
        .ok_or_else(|| ApiError::not_found("There is no connection with that id."))?;
    if !crate::auth::may_act_on(&identity, &owner) {
        return Err(ApiError::forbidden(
            "That connection belongs to another identity.",
        ));
    }
    let filter = ListenFilter {
        id: body.id,
        lookup_ids: body.lookup_ids.unwrap_or_default().into_iter().collect(),
    };
    Ok((
        collection.name.clone(),
        Subscriber::Connection(connection_id.into()),
        filter,
    ))
}

async fn listen(
    State(collections): Shared,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (collection, subscriber, filter) =
        listen_request(&collections, &name, &headers, query.as_deref(), body).await?;
    collections
        .feed
        .subscriptions()
        .listen(&collection, subscriber, filter);
    Ok(Json(json!({ "listening": true })).into_response())
}

async fn unlisten(
    State(collections): Shared,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (collection, subscriber, filter) =
        listen_request(&collections, &name, &headers, query.as_deref(), body).await?;
    collections
        .feed
        .subscriptions()
        .unlisten(&collection, &subscriber, &filter);
    Ok(Json(json!({ "listening": false })).into_response())
}
