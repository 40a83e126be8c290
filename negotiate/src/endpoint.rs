//! The connection endpoint: its shared state and the axum router that serves it.

use crate::dispatcher::dispatch;
use crate::handler::ConnectionHandler;
use crate::manager::ConnectionManager;
use crate::negotiate::negotiate;
use crate::options::ConnectionOptions;
use axum::routing::{any, post};
use axum::Router;
use std::borrow::Cow;
use std::sync::Arc;

pub(crate) struct Endpoint<H> {
    pub handler: Arc<H>,
    pub manager: Arc<ConnectionManager>,
    pub options: ConnectionOptions,
}

/// The connections of an endpoint, as the application may look them up: cheap to clone.
#[derive(Clone, Default)]
pub struct Connections {
    manager: Arc<ConnectionManager>,
}

impl Connections {
    /// Connections whose tokens start with `prefix`: the application's hint of where a
    /// connection lives, for a server behind a load balancer without sticky sessions (a
    /// cluster node puts its node id there, so the node that gets a transport request for a
    /// token it does not know can tell where to send it). The random part after it keeps all
    /// of its entropy; clients keep treating the token as opaque.
    pub fn with_token_prefix(prefix: &str) -> Self {
        Self {
            manager: Arc::new(ConnectionManager::with_token_prefix(prefix)),
        }
    }

    /// Whether a transport request presenting `token` is this endpoint's to serve.
    pub fn knows_token(&self, token: &str) -> bool {
        self.manager.get(token).is_some()
    }

    /// The public id of the connection a client named with `presented`: a version 0 client
    /// knows its token as its `connectionId` and sends that (to REST endpoints that take a
    /// connection id); anything else is taken to be a public id already and comes back as is.
    /// The caller still checks that the connection is the caller's own.
    pub fn public_id<'a>(&self, presented: &'a str) -> Cow<'a, str> {
        match self.manager.legacy_public_id(presented) {
            Some(id) => Cow::Owned(id.as_str().to_owned()),
            None => Cow::Borrowed(presented),
        }
    }
}

/// The routes of one connection endpoint, to be nested at the hub's path
/// (`Router::new().nest("/api/_rt/signalr", negotiate::endpoint(handler, options))`).
///
/// Must be called inside a tokio runtime: it starts the expiry heartbeat.
pub fn endpoint<H: ConnectionHandler>(handler: Arc<H>, options: ConnectionOptions) -> Router {
    endpoint_with(handler, options, &Connections::default())
}

/// [`endpoint`] over `connections`, which the application keeps to resolve ids.
pub fn endpoint_with<H: ConnectionHandler>(
    handler: Arc<H>,
    options: ConnectionOptions,
    connections: &Connections,
) -> Router {
    let manager = connections.manager.clone();
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
