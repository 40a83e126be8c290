//! The seam between the connection layer and the application (the hub layer).

use crate::connection::TransportConnection;
use crate::identity::{Credentials, Identity};
use axum::http::StatusCode;
use std::future::Future;

/// A refusal to create a connection, answered before anything else happens.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
        }
    }
}

pub trait ConnectionHandler: Send + Sync + 'static {
    /// Judge the credentials of a request that creates a connection (negotiate, or a WebSocket
    /// without `id`). The identity is recorded with the connection for its whole life.
    fn authenticate(&self, credentials: &Credentials) -> Result<Identity, Rejection>;

    /// `GET {hub}` without `id` (neither a WebSocket nor an EventSource): the older
    /// Azure-style connection info `{ "url", "accessToken" }`, if the application offers it.
    /// `None` answers 400 (a connection id is required).
    fn connection_info(
        &self,
        _credentials: &Credentials,
        _headers: &http::HeaderMap,
    ) -> Option<Result<serde_json::Value, Rejection>> {
        None
    }

    /// Run one connection until it ends. Returning closes the connection's outbox.
    fn on_connected(
        &self,
        connection: TransportConnection,
    ) -> impl Future<Output = ()> + Send + 'static;
}
