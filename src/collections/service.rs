//! What the REST endpoints and hub methods of collections share: the schema, the store, the
//! change feed, and the rules for who may do what.

use super::feed::ChangeFeed;
use super::filter::Dialect;
use super::schema::{Collection, Method, Schema};
use super::store::{Refused, SharedStore, StoreError};
use crate::api_error::ApiError;
use crate::auth::Authenticator;
use axum::http::StatusCode;
use negotiate::Identity;
use router::Router;
use serde_json::json;
use std::sync::Arc;

pub struct Collections {
    pub schema: Arc<Schema>,
    pub store: SharedStore,
    pub dialect: Dialect,
    pub feed: Arc<ChangeFeed>,
    /// The group space: `_listen` finds connections here.
    pub router: Router,
    /// Resolves the ids clients name connections by (a version 0 client's is its token).
    pub connections: negotiate::Connections,
    pub auth: Authenticator,
    /// Largest request body accepted on writes.
    pub max_body_bytes: usize,
}

impl Collections {
    pub fn collection(&self, name: &str) -> Result<&Collection, ApiError> {
        self.schema
            .collection(name)
            .ok_or_else(|| ApiError::not_found(format!("There is no collection '{name}'.")))
    }

    /// 401 when an anonymous caller is refused (credentials would help), 403 otherwise.
    pub fn authorize(
        &self,
        collection: &Collection,
        method: Method,
        identity: &Identity,
    ) -> Result<(), ApiError> {
        if collection.allows(method, identity) {
            return Ok(());
        }
        let what = format!("{} on '{}'", method.as_str(), collection.name);
        if !identity.authenticated {
            Err(ApiError::unauthorized(format!("{what} needs credentials.")))
        } else {
            Err(ApiError::forbidden(format!(
                "{what} is not allowed for this identity."
            )))
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found("There is no item with that id."),
            StoreError::Refused(Refused::Invalid(errors)) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid", "The item is not valid.")
                    .with_details(json!(errors))
            }
            StoreError::Refused(Refused::VersionMismatch { current }) => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "version_conflict",
                format!("If-Match does not match: the item is at version {current}."),
            ),
            other => ApiError::internal(other),
        }
    }
}
