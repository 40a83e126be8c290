//! The web console at `/_console`: plain HTML, CSS and JavaScript modules embedded in the
//! binary (no build step, nothing fetched from elsewhere). It talks to rthub through the
//! public APIs (SignalR for the live parts, REST and `/metrics` for the rest), so it is also
//! an example of them; [`api`] adds the few reads it needs that no other API gives.

pub mod api;

use crate::api_error::ApiPath as Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Each embedded file with its content type. The SignalR bundle is vendored from
/// `@microsoft/signalr`'s `dist/browser` (with its license header) so the console needs no CDN.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../console/index.html"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../../console/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/console.js"),
    ),
    (
        "views.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/views.js"),
    ),
    (
        "chart.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/chart.js"),
    ),
    (
        "signalr.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/signalr.min.js"),
    ),
];

/// Only this origin's scripts, styles and connections: the console holds a server credential,
/// so nothing injected into a page (an item's text, say) may run or phone elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn routes() -> Router {
    Router::new()
        .route("/_console", get(|| async { asset("index.html") }))
        .route("/_console/", get(|| async { asset("index.html") }))
        .route(
            "/_console/{file}",
            get(|Path(file): Path<String>| async move { asset(&file) }),
        )
}

fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, kind, body)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "no-cache"),
                (header::CONTENT_SECURITY_POLICY, CSP),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            *body,
        )
            .into_response(),
        None => crate::api_error::ApiError::not_found(format!("No console file '{name}'."))
            .into_response(),
    }
}
