//! Forwarding an HTTP exchange (a send, a long poll, a Server-Sent Events stream, a DELETE)
//! to the node that has its connection: both bodies stream, so an event stream reaches the
//! client event by event and a large send is never held whole here.

use super::{is_hop_header, FORWARDED};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use router::NodeId;

pub(super) async fn proxy(
    http: &reqwest::Client,
    node: NodeId,
    target: &str,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let mut headers = passed_on(&parts.headers);
    if let Ok(value) = HeaderValue::from_str(&node.to_string()) {
        headers.insert(FORWARDED, value);
    }
    let mut outgoing = http.request(parts.method, target).headers(headers);
    if has_body(&parts.headers) {
        outgoing = outgoing.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        // Nothing listens there any more: the node died since its last heartbeat, and its
        // connections with it. The endpoint's own answer for a connection it does not have.
        Err(error) if error.is_connect() => {
            tracing::debug!(%error, "the node that had a connection is gone");
            return (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "No Connection with that ID",
            )
                .into_response();
        }
        Err(error) => {
            tracing::warn!(%error, "the node that has a connection did not answer a forwarded request");
            return (
                StatusCode::BAD_GATEWAY,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "The server that has this connection did not answer.",
            )
                .into_response();
        }
    };
    let status = answer.status();
    // This node's own CORS layer answers for the client, as for every other request.
    let mut answered = passed_on(answer.headers());
    let cors: Vec<_> = answered
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in cors {
        answered.remove(name);
    }
    let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
    *response.status_mut() = status;
    *response.headers_mut() = answered;
    response
}

/// The end-to-end headers (authorization, content type and length, cookies, the client's
/// user agents, …).
fn passed_on(headers: &HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if !is_hop_header(name) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

/// Whether the request has a body to pass on (a GET or DELETE has none, and is sent
/// without one rather than chunked).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}
