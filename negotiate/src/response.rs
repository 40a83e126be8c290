//! Small response builders shared by the endpoint's handlers.

use crate::handler::Rejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "could not serialise a response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The plain-text answers ASP.NET Core gives on the connection endpoint.
pub(crate) fn text(status: StatusCode, message: &'static str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        message,
    )
        .into_response()
}

/// A refused request, in the product's JSON error shape.
pub(crate) fn rejection(refused: &Rejection) -> Response {
    json(
        refused.status,
        &serde_json::json!({ "error": { "code": refused.code, "message": refused.message } }),
    )
}

/// Keep browsers and proxies from caching or holding back a streamed or polled response.
pub(crate) fn no_cache(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}
