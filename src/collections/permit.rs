//! The collection permission as an axum extractor: a handler that takes [`Permitted`] runs
//! only for a caller the collection's rule lets use the request's method.

use super::schema::{Collection, Method};
use super::service::Collections;
use crate::api_error::ApiError;
use crate::auth::extract::Caller;
use crate::auth::Authenticator;
use axum::extract::{FromRef, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use negotiate::Identity;
use std::sync::Arc;

/// The caller's identity (401 for invalid credentials), and the collection of the path
/// (404) if the schema lets that identity use the request's method on it (401 for an
/// anonymous caller, 403 otherwise).
#[derive(Debug, Clone)]
pub struct Permitted {
    pub identity: Identity,
    pub method: Method,
    name: String,
}

impl Permitted {
    /// The collection the permission is for.
    pub fn collection<'a>(&self, collections: &'a Collections) -> Result<&'a Collection, ApiError> {
        collections.collection(&self.name)
    }
}

impl FromRef<Arc<Collections>> for Authenticator {
    fn from_ref(collections: &Arc<Collections>) -> Self {
        collections.auth.clone()
    }
}

/// The schema's method for a request: `POST …/_listen` and `…/_unlisten` are LISTEN.
fn method_of(parts: &Parts) -> Option<Method> {
    let path = parts.uri.path();
    Some(match parts.method {
        axum::http::Method::GET => Method::Get,
        axum::http::Method::POST if path.ends_with("/_listen") || path.ends_with("/_unlisten") => {
            Method::Listen
        }
        axum::http::Method::POST => Method::Post,
        axum::http::Method::PUT => Method::Put,
        axum::http::Method::PATCH => Method::Patch,
        axum::http::Method::DELETE => Method::Delete,
        _ => return None,
    })
}

impl FromRequestParts<Arc<Collections>> for Permitted {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        collections: &Arc<Collections>,
    ) -> Result<Self, ApiError> {
        let Caller(identity) = Caller::from_request_parts(parts, collections).await?;
        let params = RawPathParams::from_request_parts(parts, collections)
            .await
            .map_err(|rejection| {
                ApiError::bad_request(format!("The path is not valid: {}", rejection.body_text()))
            })?;
        let name = params
            .iter()
            .find(|(key, _)| *key == "collection")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| ApiError::not_found("There is no collection in this path."))?;
        let method = method_of(parts).ok_or_else(|| {
            ApiError::bad_request(format!("{} is not a collection method.", parts.method))
        })?;
        let collection = collections.collection(&name)?;
        collections.authorize(collection, method, &identity)?;
        Ok(Self {
            identity,
            method,
            name,
        })
    }
}
