//! The caller's identity as an axum extractor: handlers name what they need
//! (`Caller(identity)`) instead of threading headers and the query to the authenticator.

use super::Authenticator;
use crate::api_error::ApiError;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use negotiate::Identity;

/// The identity of the request's credentials: anonymous without any, 401 for invalid ones.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl<S> FromRequestParts<S> for Caller
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let auth = Authenticator::from_ref(state);
        auth.identify_request(&parts.headers, parts.uri.query())
            .map(Caller)
    }
}

/// The server identity (a server API key or a service account): 401 without credentials,
/// 403 with a client's.
#[derive(Debug, Clone)]
pub struct ServerCaller(pub Identity);

impl<S> FromRequestParts<S> for ServerCaller
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Caller(identity) = Caller::from_request_parts(parts, state).await?;
        if identity.is_server {
            Ok(ServerCaller(identity))
        } else if !identity.authenticated {
            Err(ApiError::unauthorized(
                "This endpoint needs the server's credentials.",
            ))
        } else {
            Err(ApiError::forbidden(
                "This endpoint is for the server identity only.",
            ))
        }
    }
}
