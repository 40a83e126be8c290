//! Azure Web PubSub's data-plane REST API under `/api/hubs/{hub}` (API version 2024-12-01), so
//! that an application written for Azure with `@azure/web-pubsub`'s `WebPubSubServiceClient`
//! runs against rthub with only its connection string changed (`docs/DECISIONS.md`, "Web
//! PubSub REST API").
//!
//! Every request is authenticated as the service does it ([`auth`]): a Bearer JWT signed with
//! the access key whose `aud` is the request URL. The server acts as the server identity:
//! group names are rthub channel wire names (`app:room`) and the channel rules apply as to
//! any server caller (private channels allowed, entity channels and bad names 400).
//!
//! Azure's paths put actions in a segment of their own (`/:send`, `/:closeConnections`);
//! axum refuses routes whose segments start with `:` when routers are merged, so those
//! segments are captured (`{action}`) and dispatched here.

mod auth;
mod connections;
mod filter;
mod groups;
mod send;

use super::WebPubSub;
use crate::api_error::ApiError;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, head, post, put};
use axum::Router;
use filter::{Candidate, Filter};
use rt_core::Identity;
use std::sync::Arc;

/// The API version the server SDK 1.2.0 sends; `nextLink`s carry it.
pub const API_VERSION: &str = "2024-12-01";

pub fn routes(state: Arc<WebPubSub>) -> Router {
    // A message from the server may be as large as one from a client (the service's 1 MiB
    // by default): `[webpubsub] max_message_bytes` for both.
    let body_limit = state.config.max_message_bytes;
    Router::new()
        .route("/api/hubs/{hub}/{action}", post(connections::hub_action))
        .route(
            "/api/hubs/{hub}/connections/{connection}",
            delete(connections::close_connection).head(connections::connection_exists),
        )
        .route(
            "/api/hubs/{hub}/connections/{connection}/{action}",
            post(send::connection_action),
        )
        .route(
            "/api/hubs/{hub}/connections/{connection}/groups",
            delete(groups::remove_connection_from_all),
        )
        .route("/api/hubs/{hub}/groups/{group}", head(groups::group_exists))
        .route(
            "/api/hubs/{hub}/groups/{group}/{action}",
            post(send::group_action),
        )
        .route(
            "/api/hubs/{hub}/groups/{group}/connections",
            get(groups::list_connections),
        )
        .route(
            "/api/hubs/{hub}/groups/{group}/connections/{connection}",
            put(groups::add_connection).delete(groups::remove_connection),
        )
        .route("/api/hubs/{hub}/users/{user}", head(groups::user_exists))
        .route(
            "/api/hubs/{hub}/users/{user}/{action}",
            post(send::user_action),
        )
        .route(
            "/api/hubs/{hub}/users/{user}/groups",
            delete(groups::remove_user_from_all),
        )
        .route(
            "/api/hubs/{hub}/users/{user}/groups/{group}",
            put(groups::add_user).delete(groups::remove_user),
        )
        .route(
            "/api/hubs/{hub}/permissions/{permission}/connections/{connection}",
            put(groups::permissions)
                .delete(groups::permissions)
                .head(groups::permissions),
        )
        .method_not_allowed_fallback(crate::api_error::method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Who the data-plane API acts as: the server identity, with no user and no connection (the
/// same identity a server API key gives), so private channels are the server's to manage.
fn server_identity() -> Identity {
    Identity {
        is_server: true,
        authenticated: true,
        ..Identity::anonymous()
    }
}

/// An action segment (`:send`) this path does not have: the same 404 as an unknown path.
fn unknown_action(method: &str, action: &str) -> ApiError {
    ApiError::not_found(format!(
        "There is no Web PubSub operation {method} …/{action}."
    ))
}

/// An answer without a body (202 for sends, 204 for closes and removals, 200 for adds), as
/// the service gives them.
fn status(code: StatusCode) -> axum::response::Response {
    axum::response::IntoResponse::into_response(code)
}

/// A connection id as logs show it (ids of anonymous connections are bearer capabilities).
fn redacted(id: &str) -> &str {
    id.get(..6).unwrap_or("")
}

/// The query parameters of a request, in order, repeated ones kept (`excluded`, `role`,
/// `group`).
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn parse(query: Option<&str>) -> Self {
        Self(
            query
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        )
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }

    /// A parameter given at most once.
    fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self.0.iter().filter(|(key, _)| key == name);
        let first = values.next().map(|(_, value)| value.as_str());
        if values.next().is_some() {
            return Err(ApiError::bad_request(format!(
                "The query parameter '{name}' may be given once."
            )));
        }
        Ok(first)
    }

    /// A whole number in `min..=max`, if given.
    fn number(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, ApiError> {
        let Some(text) = self.one(name)? else {
            return Ok(None);
        };
        text.parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(format!("'{name}' must be a number from {min} to {max}."))
            })
    }

    /// `excluded`: connection ids a send or close leaves out.
    fn excluded(&self) -> Vec<Arc<str>> {
        self.0
            .iter()
            .filter(|(key, value)| key == "excluded" && !value.is_empty())
            .map(|(_, value)| Arc::from(value.as_str()))
            .collect()
    }

    /// `filter`: the service's OData filter over connections, in the subset rthub evaluates
    /// ([`filter`]); `None` when absent or empty.
    fn filter(&self) -> Result<Option<Filter>, ApiError> {
        match self.one("filter")? {
            Some(text) if !text.trim().is_empty() => Filter::parse(text)
                .map(Some)
                .map_err(|e| ApiError::bad_request(e.to_string())),
            _ => Ok(None),
        }
    }
}

/// The connections among `candidates` (sessions of this node) that `filter` selects, but the
/// `excluded` ones.
fn select(
    candidates: impl IntoIterator<Item = Arc<router::Session>>,
    filter: &Filter,
    excluded: &[Arc<str>],
) -> Vec<Arc<str>> {
    candidates
        .into_iter()
        .filter(|session| {
            let id = session.id().as_str();
            if excluded.iter().any(|e| **e == *id) {
                return false;
            }
            let groups: Vec<Arc<str>> = session.groups().into_iter().map(|(g, _)| g).collect();
            filter.matches(&Candidate {
                connection_id: id,
                user_id: session.identity().user_id.as_deref(),
                protocol: session.protocol().as_str(),
                groups: &groups,
            })
        })
        .map(|session| session.id().as_arc().clone())
        .collect()
}

/// Every session of this node.
fn local_sessions(state: &WebPubSub) -> Vec<Arc<router::Session>> {
    state.router.sessions(0, usize::MAX).1
}

/// `scheme://host` the caller reached this server at (`public_url` when configured), without
/// a trailing `/`, for the URLs answers carry.
fn origin(state: &WebPubSub, headers: &HeaderMap) -> String {
    state.origin(headers).trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_keep_repeats_and_check_numbers() {
        let query = QueryParams::parse(Some(
            "excluded=a&excluded=b&excluded=&role=x&minutesToExpire=5&top=0&filter=",
        ));
        assert_eq!(
            query.excluded(),
            vec![Arc::<str>::from("a"), Arc::from("b")]
        );
        assert_eq!(query.all("role"), ["x"]);
        assert_eq!(query.number("minutesToExpire", 1, 100).unwrap(), Some(5));
        assert!(query.number("top", 1, 100).is_err());
        assert_eq!(query.number("absent", 1, 100).unwrap(), None);
        assert_eq!(
            query.filter().unwrap(),
            None,
            "an empty filter is no filter"
        );
        let filter = QueryParams::parse(Some("filter=userId%20eq%20'a'"));
        assert!(filter.filter().unwrap().is_some());
        assert!(QueryParams::parse(Some("filter=length(userId)%20gt%201"))
            .filter()
            .is_err());
        assert!(QueryParams::parse(Some("reason=a&reason=b"))
            .one("reason")
            .is_err());
    }
}
