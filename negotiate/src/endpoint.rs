//! The connection endpoint: its shared state and the axum router that serves it.

use crate::dispatcher::dispatch;
use crate::handler::ConnectionHandler;
use crate::manager::ConnectionManager;
use crate::negotiate::negotiate;
use crate::options::ConnectionOptions;
use axum::routing::{any, post};
use axum::Router;
use std::sync::Arc;

pub(crate) struct Endpoint<H> {
    pub handler: Arc<H>,
    pub manager: Arc<ConnectionManager>,
    pub options: ConnectionOptions,
}

/// The routes of one connection endpoint, to be nested at the hub's path
/// (`Router::new().nest("/api/_rt/signalr", negotiate::endpoint(handler, options))`).
///
/// Must be called inside a tokio runtime: it starts the expiry heartbeat.
pub fn endpoint<H: ConnectionHandler>(handler: Arc<H>, options: ConnectionOptions) -> Router {
    let manager = Arc::new(ConnectionManager::default());
    manager.spawn_expiry(options.disconnect_timeout);
    let state = Arc::new(Endpoint {
        handler,
        manager,
        options,
    });
    Router::new()
        .route("/negotiate", post(negotiate::<H>))
        .route("/", any(dispatch::<H>))
        .with_state(state)
}
